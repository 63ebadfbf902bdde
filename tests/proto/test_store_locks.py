"""SQLite's locks in the server's processes. POSIX record locks belong to
a process and go with any close() of the file in that process, so a
stray open/close of tern.db next to a live connection silently drops
SQLite's SHARED lock. A reader elsewhere (ternctl, a backup, a test)
then sees itself as the last connection when it closes, and deletes the
WAL and its index while the server still writes to them: from then on
nothing the server commits is visible to any new connection, and the
queue and the workers part ways."""
import os
import smtplib
import sqlite3
import time

from conftest import children
from test_smtp_helpers import messages


def db_openers(tern):
    """{pid: inode} of the master's children that have tern.db open."""
    path = os.path.join(tern.datadir, "tern.db")
    want = os.stat(path).st_ino
    out = {}
    for pid in children(tern.proc.pid):
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                if target == path and os.stat(target).st_ino == want:
                    out[pid] = want
        except OSError:
            continue     # a process that went away meanwhile
    return out


def lock_holders(inode):
    """The pids holding a POSIX lock on that inode (/proc/locks)."""
    pids = set()
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if "->" in fields:
                continue     # a waiter, not a holder
            if fields[1] == "POSIX" and \
                    int(fields[5].rsplit(":", 1)[1]) == inode:
                pids.add(int(fields[4]))
    return pids


def wait_openers(tern, count, timeout=20):
    deadline = time.time() + timeout
    while True:
        got = db_openers(tern)
        if len(got) >= count or time.time() > deadline:
            return got
        time.sleep(0.05)


def test_every_process_with_the_database_holds_its_lock(tern):
    # both workers (each with its commit thread's second connection)
    # and the queue
    openers = wait_openers(tern, 3)
    assert len(openers) >= 3, openers
    held = lock_holders(next(iter(openers.values())))
    missing = sorted(p for p in openers if p not in held)
    assert not missing, (missing, sorted(held))


def test_outside_reader_does_not_split_the_wal(tern):
    """Open and close a connection of our own (the last one, if the
    server's locks were gone), then deliver: the new message must be
    seen by a new connection."""
    wait_openers(tern, 3)
    con = sqlite3.connect(os.path.join(tern.datadir, "tern.db"), timeout=30)
    con.execute("SELECT count(*) FROM messages").fetchall()
    con.close()
    before = len(messages(tern, tern.user))
    data = (b"From: a@remote.example\r\nSubject: after a reader\r\n\r\n"
            b"body\r\n")
    with smtplib.SMTP(tern.host, tern.port("smtp"), timeout=20) as s:
        assert s.sendmail("a@remote.example", [tern.user], data) == {}
    assert len(messages(tern, tern.user)) == before + 1
