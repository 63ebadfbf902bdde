"""The first SELECT of a large mailbox in a worker reads its view on the
worker's read thread (imap_cmd_select.c, store_reader.c), not on the
event loop. The test hook TERN_TEST_VIEW_LOAD_HOLD holds such a load
after its snapshot was read (while the named file exists; "<file>.held"
says it is held), so the tests can act during the load without timing:
another connection of the same worker (workers = 1) gets its answers, a
change committed meanwhile reaches the selecting session as a normal
untagged update afterwards (the SELECT itself shows the snapshot), a
pipelined command waits its turn, and a client that disconnects during
the load costs nothing (the server goes on; the sanitizer builds check
for leaks at exit).

The mailbox has had more than IMAP_VIEW_THREAD_MIN_UIDS (1000) UIDs but
holds fewer than IMAP_VIEW_CACHE_MIN_MSGS (1000) messages, so the
worker's view cache never keeps it and every SELECT of it goes through
the read thread."""
import os
import re
import smtplib
import time

import pytest

from conftest import Tern
from test_imap_helpers import Raw, msg, multiappend, new_account

FILLED = 1100
GONE = 150  # UIDs 1..150 expunged: 950 messages, UIDNEXT 1101
LEFT = FILLED - GONE


def _wait(cond, what, timeout=30):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("selthread")
    # relative to the worker's working directory, the data directory
    # (the worker runs as another user when the tests run as root)
    old = os.environ.get("TERN_TEST_VIEW_LOAD_HOLD")
    os.environ["TERN_TEST_VIEW_LOAD_HOLD"] = "view-load-hold"
    t = Tern(d, extra_config="workers = 1\n")
    t.start()
    t.hold = hold = os.path.join(t.datadir, "view-load-hold")
    addr, pw = new_account(t)
    r = Raw(t)
    r.login(addr, pw)
    multiappend(r, FILLED)
    line, _ = r.cmd("SELECT INBOX")
    assert " OK " in line, line
    line, _ = r.cmd("UID STORE 1:%d +FLAGS.SILENT (\\Deleted)" % GONE)
    assert " OK " in line, line
    line, _ = r.cmd("EXPUNGE")
    assert " OK " in line, line
    r.close()
    # that SELECT put the 1,100 messages in the worker's view cache:
    # start afresh without it
    t.restart()
    t.acct = (addr, pw)
    yield t
    if os.path.exists(hold):
        os.remove(hold)
    t.stop()
    if old is None:
        del os.environ["TERN_TEST_VIEW_LOAD_HOLD"]
    else:
        os.environ["TERN_TEST_VIEW_LOAD_HOLD"] = old


def _hold(t):
    with open(t.hold, "w"):
        pass


def _release(t):
    os.remove(t.hold)
    _wait(lambda: not os.path.exists(t.hold + ".held"), "release")


def _held(t):
    _wait(lambda: os.path.exists(t.hold + ".held"), "the held load")


def _exists(unt):
    return [int(u.split()[1]) for u in unt if u.endswith(b" EXISTS")]


def _code(unt, name):
    for u in unt:
        mt = re.search(rb"\[" + name + rb" (\d+)\]", u)
        if mt:
            return int(mt.group(1))
    return None


def _session(t, qresync=True):
    r = Raw(t)
    r.login(*t.acct)
    if qresync:
        line, _ = r.cmd("ENABLE QRESYNC")
        assert " OK " in line, line
    return r


def _uids(r):
    line, unt = r.cmd("UID SEARCH ALL")
    assert " OK " in line, line
    for u in unt:
        if u.startswith(b"* SEARCH"):
            return [int(x) for x in u.split()[2:]]
    return []


def test_load_off_the_loop_and_change_meanwhile(srv):
    t = srv
    b = _session(t)
    line, unt = b.cmd("SELECT INBOX")  # not held: no hold file yet
    assert " OK " in line, line
    assert _exists(unt) == [LEFT]
    h0 = _code(unt, b"HIGHESTMODSEQ")
    uv = _code(unt, b"UIDVALIDITY")
    uids0 = _uids(b)
    assert len(uids0) == LEFT and uids0[0] == GONE + 1

    _hold(t)
    a = _session(t)
    # the SELECT and a pipelined NOOP in one packet
    a.send("a1 SELECT INBOX (QRESYNC (%d %d))\r\na2 NOOP\r\n" % (uv, h0))
    _held(t)
    # the worker's loop answers the other connection meanwhile
    line, _ = b.cmd("NOOP")
    assert " OK " in line, line
    line, _ = b.cmd("UID STORE 500 +FLAGS (\\Flagged)")
    assert " OK " in line, line
    line, _ = b.cmd("UID STORE 600 +FLAGS.SILENT (\\Deleted)")
    assert " OK " in line, line
    line, _ = b.cmd("UID EXPUNGE 600")
    assert " OK " in line, line
    m = msg("during the load")
    b.send("b9 APPEND INBOX {%d+}\r\n" % len(m))
    b.send(m + b"\r\n")
    line, _ = b.tagged("b9")
    assert " OK " in line and "APPENDUID %d %d" % (uv, FILLED + 1) in line
    # and a delivery over SMTP (250 only once it is committed)
    sm = smtplib.SMTP(t.host, t.port("smtp"), timeout=20)
    sm.sendmail("someone@remote.example", [t.acct[0]], msg("by smtp"))
    sm.quit()
    _release(t)

    # SELECT shows the snapshot: before B's changes
    line, unt = a.tagged("a1")
    assert "OK [READ-WRITE]" in line, (line, unt)
    assert _exists(unt) == [LEFT]
    assert _code(unt, b"HIGHESTMODSEQ") == h0
    assert _code(unt, b"UIDNEXT") == FILLED + 1
    assert not [u for u in unt if b"VANISHED" in u or b"FETCH" in u], unt
    # then the changes, as untagged updates of the next command
    line, unt = a.tagged("a2")
    assert " OK " in line, line
    assert _exists(unt) == [LEFT + 2], unt
    assert b"* VANISHED 600" in unt, unt
    fl = [u for u in unt if b"FETCH" in u]
    # UID 500 is message 350 (UIDs 1..150 are gone)
    assert len(fl) == 1, unt
    assert fl[0].startswith(b"* %d FETCH " % (500 - GONE)), fl
    assert b"\\Flagged" in fl[0], fl
    want = [u for u in uids0 if u != 600] + [FILLED + 1, FILLED + 2]
    assert _uids(a) == want
    line, unt = a.cmd("UID FETCH 500 (FLAGS)")
    assert b"\\Flagged" in unt[0], unt
    a.close()
    b.close()


def test_qresync_through_the_thread(srv):
    """A QRESYNC SELECT whose view is read on the thread (right after
    the first test's changes): VANISHED (EARLIER) and the FETCH of the
    changed message, nothing else; EXAMINE the same way."""
    t = srv
    b = _session(t)
    line, unt = b.cmd("STATUS INBOX (HIGHESTMODSEQ UIDVALIDITY MESSAGES)")
    assert " OK " in line, line
    mt = re.search(rb"HIGHESTMODSEQ (\d+)", unt[0])
    since = int(mt.group(1))
    uv = int(re.search(rb"UIDVALIDITY (\d+)", unt[0]).group(1))
    line, _ = b.cmd("SELECT INBOX")
    assert " OK " in line, line
    for cmd in ("UID STORE 700 +FLAGS (\\Seen)",
                "UID STORE 701 +FLAGS.SILENT (\\Deleted)",
                "UID EXPUNGE 701"):
        line, _ = b.cmd(cmd)
        assert " OK " in line, (cmd, line)
    line, unt = b.cmd("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
    hnow = int(re.search(rb"HIGHESTMODSEQ (\d+)", unt[0]).group(1))
    n = int(re.search(rb"MESSAGES (\d+)", unt[0]).group(1))

    c = _session(t)
    line, unt = c.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, since))
    assert "OK [READ-WRITE]" in line, (line, unt)
    assert _exists(unt) == [n]
    assert _code(unt, b"HIGHESTMODSEQ") == hnow
    assert b"* VANISHED (EARLIER) 701" in unt, unt
    fl = [u for u in unt if b"FETCH" in u]
    assert len(fl) == 1 and b"UID 700 " in fl[0] and b"\\Seen" in fl[0], fl
    c.close()

    e = _session(t, qresync=False)
    line, unt = e.cmd("EXAMINE INBOX")
    assert "OK [READ-ONLY]" in line, line
    assert _exists(unt) == [n]
    e.close()
    b.close()


def test_disconnect_during_the_load(srv):
    t = srv
    addr = t.acct[0]

    def settled():
        # every session of the account that logged in is logged out
        text = t.log()
        return (text.count("login user=%s " % addr) ==
                text.count("disconnect user=%s " % addr))

    _wait(settled, "the earlier sessions to end")
    _hold(t)
    d = _session(t)
    d.send("d1 SELECT INBOX\r\nd2 FETCH 1:* (FLAGS)\r\n")
    _held(t)
    d.close()
    _wait(settled, "the disconnect")
    done = t.log().count("view-load-done-after-close")
    _release(t)
    _wait(lambda: t.log().count("view-load-done-after-close") > done,
          "the load's end")
    # the worker goes on
    f = _session(t)
    line, unt = f.cmd("SELECT INBOX")
    assert " OK " in line, line
    line, _ = f.cmd("LOGOUT")
    f.close()
