"""Several sessions on one mailbox: new mail, flag changes and expunges
seen at the next command; sequence numbers never shift under FETCH/STORE/
SEARCH; IDLE pushes an SMTP delivery and an APPEND from another session
(the sessions may live in different worker processes)."""
import smtplib
import socket

import pytest

from test_imap_helpers import Raw, login, msg, new_account


def test_two_sessions_see_changes(tern):
    addr, pw = new_account(tern)
    a = Raw(tern)
    a.login(addr, pw)
    b = Raw(tern)
    b.login(addr, pw)
    m = login(tern, addr, pw)
    for i in range(3):
        m.append("INBOX", None, None, msg("x%d" % i))
    line, unt = a.cmd("SELECT INBOX")
    assert b"* 3 RECENT" in unt  # a selected first (RFC 3501 2.3.2)
    line, unt = b.cmd("SELECT INBOX")
    assert b"* 0 RECENT" in unt
    # b flags and expunges message 2; a sees the flag change at once but
    # not the expunge while it runs a non-UID FETCH.
    line, _ = b.cmd("STORE 2 +FLAGS (\\Deleted)")
    line, unt = a.cmd("FETCH 1 (FLAGS)")
    assert b"* 2 FETCH (FLAGS (\\Deleted \\Recent))" in unt
    line, _ = b.cmd("EXPUNGE")
    m.append("INBOX", None, None, msg("new"))
    line, unt = a.cmd("FETCH 3 (UID)")
    assert b"* 3 FETCH (UID 3)" in unt
    assert b"* 4 EXISTS" in unt
    assert not any(u.endswith(b"EXPUNGE") for u in unt)
    line, unt = a.cmd("SEARCH ALL")
    assert not any(u.endswith(b"EXPUNGE") for u in unt)
    assert b"* SEARCH 1 3 4" in unt
    line, unt = a.cmd("NOOP")
    assert unt == [b"* 2 EXPUNGE"]
    line, unt = a.cmd("FETCH 1:* (UID)")
    assert unt == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)",
                   b"* 3 FETCH (UID 4)"]
    # a UID command may expunge
    b.cmd("STORE 1 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    line, unt = a.cmd("UID FETCH 1:* (FLAGS)")
    assert b"* 1 EXPUNGE" in unt
    a.close()
    b.close()
    m.logout()


def _smtp_ready(tern):
    try:
        s = smtplib.SMTP(tern.host, tern.port("smtp"), timeout=10)
        s.ehlo()
        s.quit()
        return True
    except (OSError, smtplib.SMTPException):
        return False


def _pushed_exists(idlers, exists, recent):
    """Each idler gets "* EXISTS" then "* n RECENT"; exactly one of them
    (whatever its process) took the new message as \\Recent (RFC 3501
    2.3.2). recent: each idler's count so far, updated."""
    import re
    takers = []
    for i, r in enumerate(idlers):
        r.sock.settimeout(20)
        assert r.line() == b"* %d EXISTS" % exists
        m = re.fullmatch(rb"\* (\d+) RECENT", r.line())
        assert m, "no RECENT after EXISTS"
        n = int(m.group(1))
        assert n in (recent[i], recent[i] + 1), (n, recent[i])
        if n > recent[i]:
            takers.append(i)
        recent[i] = n
    assert len(takers) == 1, takers
    return takers[0]


def test_idle_sees_smtp_delivery_and_append(tern):
    addr, pw = new_account(tern)
    idlers = []
    for _ in range(3):   # several connections: likely several workers
        r = Raw(tern)
        r.login(addr, pw)
        r.cmd("SELECT INBOX")
        r.send("i IDLE\r\n")
        assert r.line() == b"+ idling"
        idlers.append(r)
    recent = [0] * len(idlers)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("appended"))
    _pushed_exists(idlers, 1, recent)
    assert _smtp_ready(tern), "SMTP listener not accepting mail"
    s = smtplib.SMTP(tern.host, tern.port("smtp"), timeout=20)
    s.sendmail("someone@remote.example", [addr], msg("by smtp"))
    s.quit()
    _pushed_exists(idlers, 2, recent)
    for r in idlers:
        r.send("DONE\r\n")
        line, _ = r.tagged("i")
        assert line == "i OK Idle completed."
        line, unt = r.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: by smtp" in unt[0]
        r.close()
    m.logout()


def _worker_pid(tern, client_name, timeout=5):
    """The pid of the worker process that logged `id client=NAME`."""
    import re
    import time
    pat = re.compile(r"worker\d*\[(\d+)\] info imap \S+ id client=%s\b"
                     % re.escape(client_name))
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = pat.search(tern.log())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    return None


def test_idle_push_across_worker_processes(tern):
    """Idlers proven (by the log) to live in at least two worker
    processes all get EXISTS, flag FETCH and EXPUNGE pushed."""
    import uuid
    addr, pw = new_account(tern)
    idlers, pids = [], set()
    for _ in range(16):
        r = Raw(tern)
        name = "idler-%s" % uuid.uuid4().hex[:12]
        r.cmd('ID ("name" "%s")' % name)
        pid = _worker_pid(tern, name)
        assert pid is not None, "no id log line for %s" % name
        r.login(addr, pw)
        r.cmd("SELECT INBOX")
        r.send("i IDLE\r\n")
        assert r.line() == b"+ idling"
        idlers.append((r, pid))
        pids.add(pid)
        if len(pids) >= 2 and len(idlers) >= 3:
            break
    if len(pids) < 2:
        for r, _ in idlers:
            r.close()
        pytest.skip("only one worker process serves IMAP here")
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("pushed"))
    taker = _pushed_exists([r for r, _ in idlers], 1, [0] * len(idlers))
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Flagged \\Deleted)")
    for i, (r, _) in enumerate(idlers):
        assert r.line() == b"* 1 FETCH (FLAGS (\\Flagged \\Deleted%s))" % (
            b" \\Recent" if i == taker else b"")
    m.expunge()
    for r, _ in idlers:
        assert r.line() == b"* 1 EXPUNGE"
        r.send("DONE\r\n")
        line, _ = r.tagged("i")
        assert line == "i OK Idle completed."
        r.close()
    m.logout()
