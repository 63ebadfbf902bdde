"""POP3 on the shared store against a real ternd: the [IN-USE] lock
across processes, what removes messages (only QUIT) and what does not
(errors, shutdown), UIDL stability across sessions, restarts and IMAP
moves, IMAP seeing POP3 deletions (IDLE gets EXPUNGE) and POP3 seeing
IMAP expunges, and [SYS/TEMP] when a message cannot be read."""
import fcntl
import glob
import os
import re
import socket
import signal
import ssl
import time

import pytest

from conftest import blob_stores
from pop3_helpers import (Pop, deliver, imap_login, pop_login, reconfigure,
                          server_pid)


@pytest.fixture
def box(fresh_tern):
    deliver(fresh_tern, 3)
    return fresh_tern


def stat(tern):
    p = pop_login(tern)
    r = p.cmd("STAT")
    p.cmd("QUIT")
    p.close()
    return int(r.split()[1])


def lock_files(tern):
    return glob.glob(os.path.join(tern.datadir, "run", "pop3-*.lock"))


def test_in_use_lock_held_by_another_process(box):
    stat(box)  # creates the lock file
    [path] = lock_files(box)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = Pop(box)
        assert p.cmd("USER %s" % box.user).startswith("+OK")
        r = p.cmd("PASS %s" % box.password)
        assert r.startswith("-ERR [IN-USE]"), r
        assert p.cmd("STAT").startswith("-ERR")  # still AUTHORIZATION
    finally:
        os.close(fd)
    p.login(box.user, box.password)  # same connection, lock released
    assert p.cmd("STAT").startswith("+OK 3 ")
    p.cmd("QUIT")
    p.close()


def test_in_use_across_workers(fresh_tern):
    t = fresh_tern
    reconfigure(t, workers="2")
    deliver(t, 1)
    a = pop_login(t)
    pid_a = server_pid(t, a.sock, "pop3s")
    assert pid_a is not None
    other = None
    for _ in range(100):
        b = Pop(t)
        if server_pid(t, b.sock, "pop3s") not in (pid_a, None):
            other = b
            break
        b.close()
    assert other is not None, "no connection landed in the second worker"
    assert other.cmd("USER %s" % t.user).startswith("+OK")
    r = other.cmd("PASS %s" % t.password)
    assert r.startswith("-ERR [IN-USE]"), r
    assert a.cmd("DELE 1").startswith("+OK")
    assert a.cmd("QUIT").startswith("+OK")
    a.close()
    other.login(t.user, t.password)
    assert other.cmd("STAT").startswith("+OK 0 ")
    other.cmd("QUIT")
    other.close()


def test_too_many_errors_removes_nothing(box):
    p = pop_login(box)
    assert p.cmd("DELE 1").startswith("+OK")
    p.send("BOGUS\r\n" * 60)
    assert p.closed()
    p.close()
    assert stat(box) == 3


def test_shutdown_removes_nothing(box):
    p = pop_login(box)
    assert p.cmd("DELE 1").startswith("+OK")
    assert p.cmd("DELE 2").startswith("+OK")
    box.stop()
    try:
        r = p.line()
        assert r.startswith("-ERR [SYS/TEMP]"), r
    except (EOFError, ConnectionError, ssl.SSLError):
        pass
    p.close()
    box.start()
    assert stat(box) == 3


def test_uidl_stable_across_restart_and_imap_moves(fresh_tern):
    t = fresh_tern
    deliver(t, 4)
    p = pop_login(t)
    before = p.uidl()
    p.cmd("QUIT")
    p.close()
    values = list(before.values())
    assert len(set(values)) == 4
    for v in values:
        assert re.fullmatch(r"[\x21-\x7e]{1,70}", v), v
    m = imap_login(t)
    m.cmd("CREATE Kept")
    m.cmd("SELECT INBOX")
    uids = m.uids()
    m.cmd("UID MOVE %d Kept" % uids[1])
    m.cmd("UID COPY %d Kept" % uids[2])
    t.restart()
    p = pop_login(t)
    after = p.uidl()
    p.cmd("QUIT")
    p.close()
    # the others keep their values (under new message numbers)
    assert list(after.values()) == [values[0], values[2], values[3]]
    m = imap_login(t)
    m.cmd("SELECT Kept")
    m.cmd("UID MOVE 1:* INBOX")
    m.close()
    p = pop_login(t)
    again = p.uidl()
    p.cmd("QUIT")
    p.close()
    # both came back as new INBOX messages: new values, old ones unchanged
    assert list(again.values())[:3] == list(after.values())
    assert len(again) == 5 and len(set(again.values())) == 5
    assert not set(list(again.values())[3:]) & set(values)


def _recv_some(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return b""
    finally:
        sock.settimeout(20)


def test_imap_idle_sees_pop3_deletions(box):
    m = imap_login(box)
    m.cmd("SELECT INBOX")
    m.sock.sendall(b"i1 IDLE\r\n")
    assert m.line().startswith("+")
    p = pop_login(box)
    assert p.cmd("DELE 1").startswith("+OK")
    assert p.cmd("DELE 3").startswith("+OK")
    # DELE only marks: IMAP hears nothing before QUIT
    assert b"EXPUNGE" not in _recv_some(m.sock, 1.0)
    assert p.cmd("QUIT").startswith("+OK")
    p.close()
    m.sock.settimeout(10)
    expunges = []
    while len(expunges) < 2:
        ln = m.line()
        if ln.endswith(" EXPUNGE"):
            expunges.append(ln)
    m.sock.sendall(b"DONE\r\n")
    while not m.line().startswith("i1 "):
        pass
    assert len(m.uids()) == 1
    m.close()


def test_pop3_sees_imap_expunge_at_next_login(box):
    p = pop_login(box)
    assert p.cmd("STAT").startswith("+OK 3 ")
    m = imap_login(box)
    m.cmd("SELECT INBOX")
    first = m.uids()[0]
    m.cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)" % first)
    m.cmd("EXPUNGE")
    m.close()
    # the maildrop was fixed at login
    assert p.cmd("STAT").startswith("+OK 3 ")
    r = p.cmd("RETR 1")
    if r.startswith("+OK"):
        p.multi()
    else:
        # gone for good: no "try again" code for that
        assert r.startswith("-ERR") and "SYS/TEMP" not in r, r
    assert p.cmd("RETR 2").startswith("+OK")
    p.multi()
    assert p.cmd("DELE 1").startswith("+OK")
    assert p.cmd("QUIT").startswith("+OK")
    p.close()
    assert stat(box) == 2


def test_unreadable_message_is_sys_temp(box):
    blobs = blob_stores(box.datadir)
    assert blobs
    p = pop_login(box)
    # A directory in place of each pack and blob file: open works,
    # reading does not.
    for f in blobs:
        os.rename(f, f + ".aside")
        os.mkdir(f)
    try:
        r = p.cmd("RETR 1")
        assert r.startswith("-ERR [SYS/TEMP]"), r
        r = p.cmd("TOP 2 0")
        assert r.startswith("-ERR [SYS/TEMP]"), r
        assert p.cmd("STAT").startswith("+OK 3 ")
    finally:
        for f in blobs:
            os.rmdir(f)
            os.rename(f + ".aside", f)
    assert p.cmd("RETR 1").startswith("+OK")
    p.multi()
    p.cmd("QUIT")
    p.close()


def test_shutdown_waits_for_a_delayed_reply_then_says_goodbye(fresh_tern):
    """A session inside a failed-login delay when SIGTERM comes gets its
    reply, then the shutdown goodbye, instead of hanging until the
    worker's drain deadline."""
    t = fresh_tern
    p = Pop(t)
    for _ in range(2):  # the free failures
        p.cmd("USER %s" % t.user)
        assert p.cmd("PASS wrong").startswith("-ERR [AUTH]")
    p.cmd("USER %s" % t.user)
    p.send("PASS wrong\r\n")  # answered after about 500 ms
    time.sleep(0.1)
    start = time.monotonic()
    os.killpg(t.proc.pid, signal.SIGTERM)
    assert p.line().startswith("-ERR [AUTH]")
    r = p.line()
    assert r.startswith("-ERR [SYS/TEMP]"), r
    assert p.closed(timeout=5)
    assert time.monotonic() - start < 4
    p.close()
    t.stop()


def test_quit_ok_survives_kill9(box):
    """+OK to QUIT is said after the commit: killing every ternd process
    right after it loses nothing that was answered."""
    p = pop_login(box)
    assert p.cmd("DELE 2").startswith("+OK")
    assert p.cmd("QUIT").startswith("+OK")
    p.close()
    box.kill9()
    box.start()
    assert stat(box) == 2
    p = pop_login(box)
    assert p.cmd("TOP 2 0").startswith("+OK")
    assert any("Subject: pop3 2" in ln for ln in p.multi())
    p.cmd("QUIT")
    p.close()
