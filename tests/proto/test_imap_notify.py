"""NOTIFY (RFC 5465) over raw IMAP: STATUS for unselected mailboxes when
mail arrives by SMTP or another session appends, expunges or flags;
EXISTS/FETCH/EXPUNGE for the selected mailbox between commands;
MailboxName and SubscriptionChange as LIST; events from another worker
process; NOTIFY NONE stops them; syntax errors. Every wait is bounded."""
import re
import smtplib
import socket
import time
import uuid

import pytest

from test_imap_helpers import Raw, login, msg, new_account

WAIT = 10  # seconds for an event that must come


def _read_until(r, pattern, timeout=WAIT):
    """Lines until one matches pattern (bytes regex): (match, lines)."""
    seen = []
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError("no line matching %r; got %r"
                                 % (pattern, seen))
        r.sock.settimeout(left)
        try:
            ln = r.line()
        except socket.timeout:
            continue
        seen.append(ln)
        m = re.fullmatch(pattern, ln)
        if m:
            return m, seen


def _quiet(r, seconds=1.0):
    """Whatever arrives unasked within `seconds` (should be nothing)."""
    got = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        r.sock.settimeout(max(0.05, deadline - time.time()))
        try:
            got.append(r.line())
        except socket.timeout:
            break
    r.sock.settimeout(WAIT)
    return got


def _watcher(tern, addr, pw, notify):
    r = Raw(tern)
    r.login(addr, pw)
    line, unt = r.cmd("NOTIFY " + notify)
    assert line.split()[1] == "OK", line
    return r, unt


def _smtp(tern, addr, subject):
    s = smtplib.SMTP(tern.host, tern.port("smtp"), timeout=20)
    s.sendmail("someone@remote.example", [addr], msg(subject))
    s.quit()


def test_capability_lists_notify(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    line, unt = r.cmd("CAPABILITY")
    assert b" NOTIFY" in unt[0]
    r.close()


def test_status_for_unselected_mailboxes(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    assert m.create("Work")[0] == "OK"
    r, unt = _watcher(tern, addr, pw,
                      "SET STATUS (selected (MessageNew MessageExpunge)) "
                      "(mailboxes (INBOX Work) (MessageNew MessageExpunge "
                      "FlagChange))")
    # NOTIFY SET STATUS: the current state of each watched mailbox
    assert any(re.fullmatch(rb'\* STATUS "INBOX" \(MESSAGES 0 UIDNEXT 1 '
                            rb'UIDVALIDITY \d+ UNSEEN 0\)', u) for u in unt)
    assert any(u.startswith(b'* STATUS "Work" (MESSAGES 0 ') for u in unt)
    # mail by SMTP: pushed between commands, no IDLE
    _smtp(tern, addr, "by smtp")
    mt, _ = _read_until(r, rb'\* STATUS "INBOX" \(MESSAGES (\d+) UIDNEXT '
                           rb'(\d+) UIDVALIDITY \d+ UNSEEN (\d+)\)')
    assert mt.groups() == (b"1", b"2", b"1")
    # another session appends to Work
    m.append("Work", None, None, msg("appended"))
    mt, _ = _read_until(r, rb'\* STATUS "Work" \(MESSAGES (\d+) UIDNEXT '
                           rb'(\d+) .*\)')
    assert mt.groups() == (b"1", b"2")
    # a mailbox nobody watches: nothing
    m.append("Sent", None, None, msg("not watched"))
    assert _quiet(r, 1.5) == []
    # a flag change, then an expunge in Work
    m.select("Work")
    m.store("1", "+FLAGS", "(\\Seen)")
    mt, _ = _read_until(r, rb'\* STATUS "Work" \(MESSAGES 1 .* UNSEEN '
                           rb'(\d+)\)')
    assert mt.group(1) == b"0"
    m.store("1", "+FLAGS", "(\\Deleted)")
    _read_until(r, rb'\* STATUS "Work" \(MESSAGES 1 .* UNSEEN 0\)')
    m.expunge()
    _read_until(r, rb'\* STATUS "Work" \(MESSAGES 0 UIDNEXT 2 .*\)')
    # still a working session
    line, _ = r.cmd("NOOP")
    assert line.split()[1] == "OK"
    r.close()
    m.logout()


def test_status_in_idle_too(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.create("Lists/rust")
    r, _ = _watcher(tern, addr, pw,
                    "SET (subtree Lists (MessageNew MessageExpunge))")
    line, _ = r.cmd("SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling"
    m.append("Lists/rust", None, None, msg("to the list"))
    _read_until(r, rb'\* STATUS "Lists/rust" \(MESSAGES 1 UIDNEXT 2 .*\)')
    m.append("INBOX", None, None, msg("inbox, selected"))
    mt, _ = _read_until(r, rb'\* (\d+) EXISTS')
    assert mt.group(1) == b"1"
    r.send("DONE\r\n")
    line, unt = r.tagged("i")
    assert line == "i OK Idle completed."
    assert not any(b"STATUS \"INBOX\"" in u for u in unt)
    r.close()
    m.logout()


def test_selected_mailbox_events_between_commands(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("ENABLE IMAP4rev2")
    r.cmd("SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected (MessageNew (UID FLAGS) "
                    "MessageExpunge FlagChange))")
    assert line.split()[1] == "OK", line
    m.append("INBOX", None, None, msg("one"))
    _read_until(r, rb'\* 1 EXISTS')
    mt, _ = _read_until(r, rb'\* 1 FETCH \((.*)\)')
    assert mt.group(1) == b"UID 1 FLAGS ()"
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Flagged \\Deleted)")
    _read_until(r, rb'\* 1 FETCH \(FLAGS \(\\Flagged \\Deleted\)\)')
    m.expunge()
    _read_until(r, rb'\* 1 EXPUNGE')
    line, unt = r.cmd("NOOP")
    assert line.split()[1] == "OK" and unt == []
    r.close()
    m.logout()


def test_selected_delayed_holds_expunge(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("one"))
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected-delayed (MessageNew "
                    "MessageExpunge))")
    assert line.split()[1] == "OK", line
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.append("INBOX", None, None, msg("two"))
    _read_until(r, rb'\* 2 EXISTS')
    assert not any(ln.endswith(b"EXPUNGE") for ln in _quiet(r, 1.0))
    line, unt = r.cmd("NOOP")
    assert b"* 1 EXPUNGE" in unt
    r.close()
    m.logout()


def test_mailbox_name_and_subscription_events(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    r, _ = _watcher(tern, addr, pw,
                    "SET (personal (MailboxName SubscriptionChange))")
    assert m.create("Proj")[0] == "OK"
    _read_until(r, rb'\* LIST \(\) "/" "Proj"')
    assert m.rename("Proj", "Proj2")[0] == "OK"
    _read_until(r, rb'\* LIST \(\) "/" "Proj2" \("OLDNAME" \("Proj"\)\)')
    assert m.subscribe("Proj2")[0] == "OK"
    _read_until(r, rb'\* LIST \(\\Subscribed\) "/" "Proj2"')
    assert m.unsubscribe("Proj2")[0] == "OK"
    _read_until(r, rb'\* LIST \(\) "/" "Proj2"')
    assert m.delete("Proj2")[0] == "OK"
    _read_until(r, rb'\* LIST \(\\NonExistent\) "/" "Proj2"')
    r.close()
    m.logout()


def _worker_pid(tern, client_name, timeout=5):
    pat = re.compile(r"worker\d*\[(\d+)\] info imap \S+ id client=%s\b"
                     % re.escape(client_name))
    deadline = time.time() + timeout
    while time.time() < deadline:
        mt = pat.search(tern.log())
        if mt:
            return int(mt.group(1))
        time.sleep(0.05)
    return None


def test_events_reach_other_worker_processes(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.create("Work")
    watchers, pids = [], set()
    for _ in range(16):
        r = Raw(tern)
        name = "notify-%s" % uuid.uuid4().hex[:12]
        r.cmd('ID ("name" "%s")' % name)
        pid = _worker_pid(tern, name)
        assert pid is not None
        r.login(addr, pw)
        line, _ = r.cmd("NOTIFY SET (mailboxes Work (MessageNew "
                        "MessageExpunge)) (personal (MailboxName))")
        assert line.split()[1] == "OK"
        watchers.append(r)
        pids.add(pid)
        if len(pids) >= 2 and len(watchers) >= 3:
            break
    if len(pids) < 2:
        for r in watchers:
            r.close()
        pytest.skip("only one worker process serves IMAP here")
    m.append("Work", None, None, msg("for everyone"))
    for r in watchers:
        _read_until(r, rb'\* STATUS "Work" \(MESSAGES 1 UIDNEXT 2 .*\)')
    m.create("Fresh")
    for r in watchers:
        _read_until(r, rb'\* LIST \(\) "/" "Fresh"')
        r.close()
    m.logout()


def test_notify_none_stops_events(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    r, _ = _watcher(tern, addr, pw,
                    "SET (inboxes (MessageNew MessageExpunge)) "
                    "(personal (MailboxName))")
    m.append("INBOX", None, None, msg("seen"))
    _read_until(r, rb'\* STATUS "INBOX" \(MESSAGES 1 .*\)')
    line, _ = r.cmd("NOTIFY NONE")
    assert line.split()[1] == "OK"
    m.append("INBOX", None, None, msg("not seen"))
    m.create("Quiet")
    assert _quiet(r, 2.0) == []
    line, unt = r.cmd("NOOP")
    assert unt == []
    r.close()
    m.logout()


def test_notify_syntax(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    line, _ = r.cmd("NOTIFY NONE")
    assert line.split()[1] == "BAD"  # not authenticated
    r.login(addr, pw)
    bad = ["NOTIFY", "NOTIFY FOO", "NOTIFY SET", "NOTIFY SET STATUS",
           "NOTIFY SET (personal (MessageNew))",
           "NOTIFY SET (personal (FlagChange))",
           "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
           "NOTIFY SET (selected (MailboxName))",
           "NOTIFY SET (subtree (MailboxName))",
           "NOTIFY SET (nowhere (MailboxName))",
           "NOTIFY SET (selected (MessageNew MessageExpunge)) "
           "(selected-delayed (MessageNew MessageExpunge))",
           "NOTIFY SET (personal ())"]
    for c in bad:
        line, _ = r.cmd(c)
        assert line.split()[1] == "BAD", (c, line)
    line, _ = r.cmd("NOTIFY SET (personal (AnnotationChange))")
    assert line.split()[1:3] == ["NO", "[BADEVENT"], line
    line, _ = r.cmd("NOTIFY SET (personal NONE) (mailboxes INBOX "
                    "(MailboxName))")
    assert line.split()[1] == "OK", line
    line, _ = r.cmd("NOTIFY NONE")
    assert line.split()[1] == "OK", line
    r.close()


def test_held_while_a_command_runs_then_overflow(tern):
    """Notifications wait for the tagged reply of a running command (an
    APPEND whose literal is slow to come); past the pending limit the
    session gets NOTIFICATIONOVERFLOW and NOTIFY is off (RFC 5465 5.8)."""
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    r, _ = _watcher(tern, addr, pw, "SET (personal (MailboxName))")
    data = msg("slow literal")

    def start_append(tag):
        r.send("%s APPEND Drafts {%d}\r\n" % (tag, len(data)))
        assert r.line().startswith(b"+")

    start_append("a1")
    m.create("Held")
    assert _quiet(r, 1.5) == []  # held: a command is running
    r.send(data + b"\r\n")
    line, _ = r.tagged("a1")
    assert line.split()[1] == "OK", line
    _read_until(r, rb'\* LIST \(\) "/" "Held"')
    # now more than 32 KB of notifications while the next APPEND waits
    start_append("a2")
    long = "x" * 200
    for i in range(200):
        assert m.create("Held/%s%03d" % (long, i))[0] == "OK"
    r.send(data + b"\r\n")
    line, unt = r.tagged("a2")
    assert line.split()[1] == "OK", line
    assert not any(b"LIST" in u for u in unt)
    mt, seen = _read_until(r, rb'\* OK \[NOTIFICATIONOVERFLOW\].*')
    assert seen == [mt.group(0)]
    m.create("After")
    assert _quiet(r, 1.5) == []  # NOTIFY is off
    r.close()
    m.logout()
