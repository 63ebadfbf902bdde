"""Disk full (issue 8): ternd runs with its whole directory on a small
tmpfs; a filler file takes the rest of the space. Then SMTP DATA answers
452 4.3.1 (a 4xx at least), APPEND answers NO, a POP3 QUIT after DELE
either fails and deletes nothing or succeeds and deletes (never half),
nothing acknowledged before is lost, the database passes its integrity
check, and all of it works again once the filler is removed. Needs root
(mount); otherwise skipped. The tmpfs is always unmounted."""
import os
import poplib
import smtplib
import sqlite3
import ssl
import subprocess
import tempfile

import pytest

from conftest import Tern
from test_imap_helpers import imaps, msg

CTX = ssl._create_unverified_context()
TMPFS_SIZE = "48m"


@pytest.fixture
def tmpfs_dir():
    if os.geteuid() != 0:
        pytest.skip("disk-full test needs root to mount a tmpfs "
                    "(running as uid %d)" % os.geteuid())
    mnt = tempfile.mkdtemp(prefix="tern-diskfull-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + TMPFS_SIZE,
                        "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip("mount -t tmpfs not permitted here: %s"
                    % (r.stderr.strip() or r.returncode))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        os.rmdir(mnt)


def fill(path):
    """Write zeros to path until the file system is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1 << 9):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError:
                    break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass


def deliver(tern, subject):
    """(reply code, message bytes, reply text) of one delivery."""
    data = msg(subject, body=("x" * 70 + "\r\n") * 300)
    s = smtplib.SMTP(tern.host, tern.port("smtp"), timeout=30)
    try:
        s.ehlo("client.example")
        code, _ = s.mail("sender@remote.example")
        assert code == 250
        code, text = s.rcpt(tern.user)
        if code != 250:
            return code, data, text
        try:
            code, text = s.data(data)
        except smtplib.SMTPDataError as e:  # refused before 354
            code, text = e.smtp_code, e.smtp_error
        return code, data, text
    finally:
        s.close()


def pop3(tern):
    p = poplib.POP3_SSL(tern.host, tern.port("pop3s"), context=CTX,
                        timeout=30)
    p.user(tern.user)
    p.pass_(tern.password)
    return p


def inbox(tern):
    con = sqlite3.connect(os.path.join(tern.datadir, "tern.db"), timeout=30)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return con.execute(
            "SELECT COUNT(*) FROM messages m JOIN mailboxes x"
            " ON m.mailbox_id = x.id JOIN accounts a ON x.account_id = a.id"
            " WHERE a.address = ? AND x.name = 'INBOX'",
            (tern.user,)).fetchone()[0]
    finally:
        con.close()


def check_full(tern):
    """While the disk is full: every write is refused with a temporary
    error and nothing changes."""
    before = inbox(tern)
    r = deliver(tern, "while full")
    assert 400 <= r[0] < 500, r[0]
    if r[0] == 452:
        assert b"4.3.1" in r[2], r[2]
    m = imaps(tern)
    try:
        m.login(tern.user, tern.password)
        typ, data = m.append("INBOX", None, None, msg("append full",
                                                      body="y" * 20000))
        assert typ == "NO", (typ, data)
        print("disk full: SMTP %d %r, APPEND NO %r" % (r[0], r[2], data))
    finally:
        m.logout()
    assert inbox(tern) == before
    p = pop3(tern)
    count = len(p.list()[1])
    assert count == before
    p.dele(1)
    try:
        p.quit()
        quit_ok = True
    except poplib.error_proto as e:
        print("disk full: POP3 QUIT %r" % (e,))
        quit_ok = False
    after = inbox(tern)
    assert after == (before - 1 if quit_ok else before), (quit_ok, after)
    return quit_ok


def test_disk_full(tmpfs_dir):
    tern = Tern(tmpfs_dir)
    tern.start()
    try:
        for i in range(3):
            assert deliver(tern, "before %d" % i)[0] == 250
        assert inbox(tern) == 3
        filler = os.path.join(tmpfs_dir, "filler")
        fill(filler)
        quit_ok = check_full(tern)
        # Still running, and the store intact.
        assert tern.proc.poll() is None
        os.unlink(filler)
        r = deliver(tern, "after")
        assert r[0] == 250, r
        m = imaps(tern)
        try:
            m.login(tern.user, tern.password)
            typ, data = m.append("INBOX", None, None, msg("append after"))
            assert typ == "OK", data
        finally:
            m.logout()
        left = 3 - (1 if quit_ok else 0) + 2
        assert inbox(tern) == left
        p = pop3(tern)
        assert len(p.list()[1]) == left
        for i in range(1, left + 1):
            text = b"\r\n".join(p.retr(i)[1])
            assert b"Subject: before" in text or b"after" in text, text[:300]
        p.dele(1)
        p.quit()
        assert inbox(tern) == left - 1
        print("disk full: POP3 QUIT after DELE %s"
              % ("succeeded (deleted)" if quit_ok else "failed, kept"))
    finally:
        tern.stop()
