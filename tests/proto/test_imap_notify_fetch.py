"""NOTIFY (RFC 5465) with CONDSTORE/QRESYNC and MessageNew fetch-att:
STATUS for unselected mailboxes carries HIGHESTMODSEQ once the client
enabled CONDSTORE or QRESYNC (RFC 5465 5.2-5.4, RFC 7162), and
MessageNew (fetch-att) sends those items (ENVELOPE, header fields,
partial bodies...) for each new message of the selected mailbox, after
its EXISTS, for mail delivered by SMTP. Every wait is bounded."""
import re

from test_imap_helpers import Raw, login, msg, new_account
from test_imap_notify import _quiet, _read_until, _smtp


def _session(tern, addr, pw, *cmds):
    r = Raw(tern)
    r.login(addr, pw)
    for c in cmds:
        line, _ = r.cmd(c)
        assert line.split()[1] == "OK", (c, line)
    return r


def _highestmodseq(r, box):
    line, unt = r.cmd('STATUS %s (HIGHESTMODSEQ)' % box)
    assert line.split()[1] == "OK", line
    m = re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(unt))
    return int(m.group(1))


def test_status_has_highestmodseq_with_condstore(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    assert m.create("Work")[0] == "OK"
    r = _session(tern, addr, pw, "ENABLE CONDSTORE")
    line, unt = r.cmd("NOTIFY SET STATUS (mailboxes (INBOX Work) "
                      "(MessageNew MessageExpunge FlagChange))")
    assert line.split()[1] == "OK", line
    st = [u for u in unt if u.startswith(b'* STATUS "INBOX"')]
    assert len(st) == 1 and re.fullmatch(
        rb'\* STATUS "INBOX" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ '
        rb'UNSEEN 0 HIGHESTMODSEQ \d+\)', st[0]), unt
    # a delivery by SMTP: the new HIGHESTMODSEQ is the mailbox's
    _smtp(tern, addr, "modseq by smtp")
    mt, _ = _read_until(r, rb'\* STATUS "INBOX" \(MESSAGES 1 UIDNEXT 2 '
                           rb'UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ '
                           rb'(\d+)\)')
    first = int(mt.group(1))
    # a flag change moves only HIGHESTMODSEQ and UNSEEN
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Seen)")
    mt, _ = _read_until(r, rb'\* STATUS "INBOX" \(MESSAGES 1 UIDNEXT 2 '
                           rb'UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ '
                           rb'(\d+)\)')
    second = int(mt.group(1))
    assert second > first
    assert second == _highestmodseq(r, "INBOX")
    r.close()
    m.logout()


def test_status_has_highestmodseq_with_qresync_not_without(tern):
    addr, pw = new_account(tern)
    plain = _session(tern, addr, pw)
    line, _ = plain.cmd("NOTIFY SET (inboxes (MessageNew MessageExpunge))")
    assert line.split()[1] == "OK", line
    qr = _session(tern, addr, pw, "ENABLE QRESYNC")
    line, _ = qr.cmd("NOTIFY SET (inboxes (MessageNew MessageExpunge))")
    assert line.split()[1] == "OK", line
    _smtp(tern, addr, "to both")
    mt, _ = _read_until(qr, rb'\* STATUS "INBOX" \((.*)\)')
    assert re.fullmatch(rb'MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ '
                        rb'HIGHESTMODSEQ \d+', mt.group(1)), mt.group(1)
    mt, _ = _read_until(plain, rb'\* STATUS "INBOX" \((.*)\)')
    assert re.fullmatch(rb'MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+',
                        mt.group(1)), mt.group(1)
    qr.close()
    plain.close()


def test_message_new_header_fields(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw, "SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected (MessageNew (UID "
                    "BODY.PEEK[HEADER.FIELDS (From Subject)]) "
                    "MessageExpunge))")
    assert line.split()[1] == "OK", line
    _smtp(tern, addr, "hello by smtp")
    _read_until(r, rb'\* 1 EXISTS')
    mt, _ = _read_until(r, rb'(?s)\* 1 FETCH \((.*)\)')
    got = mt.group(1)
    assert got.startswith(b"UID 1 BODY[HEADER.FIELDS (FROM SUBJECT)] {"), got
    lit = got.split(b"}\r\n", 1)[1]
    assert b"Subject: hello by smtp\r\n" in lit
    assert b"From: someone@remote.example\r\n" not in lit  # header From
    assert b"From: sender@remote.example\r\n" in lit
    assert b"Date:" not in lit and lit.endswith(b"\r\n\r\n")
    # PEEK: not \Seen, and between commands, nothing more
    assert _quiet(r, 0.5) == []
    line, unt = r.cmd("FETCH 1 (FLAGS)")
    assert unt == [b"* 1 FETCH (FLAGS (\\Recent))"], unt
    # a second delivery: its own FETCH with the next sequence number
    _smtp(tern, addr, "second one")
    _read_until(r, rb'\* 2 EXISTS')
    mt, _ = _read_until(r, rb'(?s)\* 2 FETCH \((.*)\)')
    assert mt.group(1).startswith(b"UID 2 BODY[HEADER.FIELDS"), mt.group(1)
    assert b"Subject: second one" in mt.group(1)
    r.close()


def test_message_new_envelope_in_idle_with_condstore(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw, "ENABLE CONDSTORE", "SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected (MessageNew (UID ENVELOPE "
                    "RFC822.SIZE BODY.PEEK[TEXT]<0.5>) MessageExpunge)) "
                    "(personal (MessageNew MessageExpunge))")
    assert line.split()[1] == "OK", line
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling"
    _smtp(tern, addr, "enveloped")
    _read_until(r, rb'\* 1 EXISTS')
    mt, _ = _read_until(r, rb'(?s)\* 1 FETCH \((.*)\)')
    got = mt.group(1)
    assert re.match(rb'UID 1 MODSEQ \(\d+\) RFC822\.SIZE \d+ ENVELOPE '
                    rb'\("Mon, 1 Jan 2024 10:00:00 \+0000" "enveloped" ',
                    got), got
    assert got.endswith(b"BODY[TEXT]<0> {5}\r\nHello"), got
    r.send("DONE\r\n")
    line, _ = r.tagged("i")
    assert line == "i OK Idle completed."
    r.close()


def test_message_new_uid_flags_carry_modseq_with_condstore(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    r = _session(tern, addr, pw, "ENABLE CONDSTORE", "SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected (MessageNew (UID FLAGS) "
                    "MessageExpunge))")
    assert line.split()[1] == "OK", line
    m.append("INBOX", None, None, msg("appended"))
    _read_until(r, rb'\* 1 EXISTS')
    mt, _ = _read_until(r, rb'\* 1 FETCH \((.*)\)')
    assert re.fullmatch(rb'UID 1 FLAGS \(\\Recent\) MODSEQ \(\d+\)|'
                        rb'UID 1 FLAGS \(\) MODSEQ \(\d+\)',
                        mt.group(1)), mt.group(1)
    r.close()
    m.logout()


def test_message_new_fetch_att_checked(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    cases = [
        # would set \Seen: a notification must not change the mailbox
        ("(selected (MessageNew (UID BODY[]) MessageExpunge))", "BAD"),
        ("(selected (MessageNew (RFC822) MessageExpunge))", "BAD"),
        ("(selected (MessageNew (NOSUCHITEM) MessageExpunge))", "BAD"),
        ("(selected (MessageNew () MessageExpunge))", "BAD"),
        # unbounded bodies are refused
        ("(selected (MessageNew (BODY.PEEK[]) MessageExpunge))", "NO"),
        ("(selected (MessageNew (BODY.PEEK[TEXT]<0.100000>) "
         "MessageExpunge))", "NO"),
        ("(selected (MessageNew (BINARY.PEEK[1]) MessageExpunge))", "NO"),
        # fine
        ("(selected (MessageNew (BODY.PEEK[]<0.2048>) MessageExpunge))",
         "OK"),
        ("(selected (MessageNew (BINARY.SIZE[1] BODYSTRUCTURE "
         "INTERNALDATE EMAILID PREVIEW) MessageExpunge))", "OK"),
        ("(selected (MessageNew (RFC822.HEADER BODY.PEEK[1.MIME]) "
         "MessageExpunge))", "OK"),
        ("(selected (MessageNew (UID) MessageExpunge))", "OK"),
    ]
    for spec, want in cases:
        line, _ = r.cmd("NOTIFY SET " + spec)
        assert line.split()[1] == want, (spec, line)
    r.close()


def _fetches_within(r, seconds, tag=None):
    """Untagged lines (and the tagged one, if tag) within `seconds`."""
    got = []
    if tag is not None:
        line, unt = r.tagged(tag)
        got += unt + [line.encode()]
    got += _quiet(r, seconds)
    return got


def test_message_new_once_whatever_comes_first(tern):
    # The event can be read before or after a command that syncs the
    # view (NOOP here, an APPEND by the session itself): the FETCH of the
    # new message comes exactly once either way.
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw, "SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected (MessageNew (UID ENVELOPE) "
                    "MessageExpunge))")
    assert line.split()[1] == "OK", line
    for i in range(1, 4):
        _smtp(tern, addr, "race %d" % i)
        r.send("n%d NOOP\r\n" % i)
        got = _fetches_within(r, 1.0, "n%d" % i)
        fetches = [g for g in got if g.startswith(b"* %d FETCH (UID %d "
                                                  b"ENVELOPE" % (i, i))]
        assert len(fetches) == 1, got
        assert b'"race %d"' % i in fetches[0]
    data = msg("own append")
    r.send("a APPEND INBOX {%d+}\r\n" % len(data))
    r.send(data + b"\r\n")
    got = _fetches_within(r, 1.0, "a")
    assert len([g for g in got if g.startswith(b"* 4 FETCH (UID 4 ")]) == 1, \
        got
    r.close()
