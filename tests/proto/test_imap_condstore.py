"""CONDSTORE and QRESYNC (RFC 7162), OBJECTID (RFC 8474), SAVEDATE
(RFC 8514) and PREVIEW (RFC 8970): raw transcripts against a real ternd,
two sessions where one changes what the other resynchronises. mbsync
(isync 1.4) does not use CONDSTORE (no such string in its binary), so it
is not exercised here; test_imap_clients.py syncs with it while tern
advertises CONDSTORE and QRESYNC."""
import re

from test_imap_helpers import Raw, login, msg, new_account


def _session(tern, addr, pw):
    r = Raw(tern)
    r.login(addr, pw)
    return r


def _fill(tern, addr, pw, n, box="INBOX"):
    m = login(tern, addr, pw)
    for i in range(n):
        typ, _ = m.append(box, None, None, msg("m%d" % (i + 1),
                                               body="Body %d\r\n" % i))
        assert typ == "OK"
    m.logout()


def _code(line, name):
    """The number of a response code like [HIGHESTMODSEQ n]."""
    mt = re.search(r"\[%s (\d+)\]" % name, line)
    assert mt, line
    return int(mt.group(1))


def _select(r, box="INBOX", params=""):
    line, unt = r.cmd("SELECT %s%s" % (box, params))
    assert " OK " in line, (line, unt)
    hms = [u for u in unt if b"[HIGHESTMODSEQ" in u]
    assert len(hms) == 1, unt
    return line, unt, _code(hms[0].decode(), "HIGHESTMODSEQ")


def _fetch_modseq(line):
    mt = re.search(rb"MODSEQ \((\d+)\)", line)
    assert mt, line
    return int(mt.group(1))


def test_capabilities(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    line, unt = r.cmd("CAPABILITY")
    caps = unt[0].split()
    for c in (b"CONDSTORE", b"QRESYNC", b"OBJECTID", b"SAVEDATE",
              b"PREVIEW"):
        assert c in caps, unt
    line, unt = r.cmd("ENABLE CONDSTORE QRESYNC")
    assert unt == [b"* ENABLED CONDSTORE QRESYNC"], unt
    line, unt = r.cmd("ENABLE QRESYNC")
    assert unt == [b"* ENABLED"], unt
    r.close()


def test_select_highestmodseq_and_fetch_modseq(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    r = _session(tern, addr, pw)
    line, unt = r.cmd("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
    st = re.search(rb"HIGHESTMODSEQ (\d+)", unt[0])
    assert st, unt
    _, unt, hms = _select(r, params=" (CONDSTORE)")
    assert hms == int(st.group(1))
    line, unt = r.cmd("FETCH 1:* (UID MODSEQ)")
    assert len(unt) == 3
    seqs = [_fetch_modseq(u) for u in unt]
    assert seqs == sorted(seqs) and max(seqs) == hms, (seqs, hms)
    # after CONDSTORE, STORE responses carry MODSEQ and it grows
    line, unt = r.cmd("STORE 2 +FLAGS (\\Flagged)")
    assert len(unt) == 1 and b"\\Flagged" in unt[0], unt
    assert _fetch_modseq(unt[0]) > hms
    stored = _fetch_modseq(unt[0])
    # an implicit \Seen (BODY[]) reports its new MODSEQ (3.1.4)
    line, unt = r.cmd("FETCH 3 (BODY[TEXT])")
    assert b"\\Seen" in unt[0] and _fetch_modseq(unt[0]) > stored, unt
    seen = _fetch_modseq(unt[0])
    line, unt = r.cmd("FETCH 3 (MODSEQ)")
    assert _fetch_modseq(unt[0]) == seen, unt
    line, unt = r.cmd("STATUS INBOX (HIGHESTMODSEQ)")
    assert b"HIGHESTMODSEQ %d" % seen in unt[0], unt
    r.close()


def test_fetch_changedsince(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 4)
    r = _session(tern, addr, pw)
    _, _, hms = _select(r)
    line, unt = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
    # CONDSTORE enabled while selected (RFC 7162 3.1)
    assert " OK " in line and \
        unt == [b"* OK [HIGHESTMODSEQ %d] Highest" % hms], (line, unt)
    r.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
    line, unt = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
    assert len(unt) == 1 and unt[0].startswith(b"* 3 FETCH"), unt
    assert b"MODSEQ (" in unt[0] and b"\\Seen" in unt[0]
    line, unt = r.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    assert len(unt) == 4 and all(b"UID " in u for u in unt), unt
    # VANISHED needs QRESYNC and UID FETCH
    line, _ = r.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert line.split()[1] == "BAD", line
    line, _ = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE)")
    assert line.split()[1] == "BAD", line
    line, _ = r.cmd("FETCH 1:* (FLAGS) (FOO 1)")
    assert line.split()[1] == "BAD", line
    r.close()


def test_store_unchangedsince_modified(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 5)
    a = _session(tern, addr, pw)
    b = _session(tern, addr, pw)
    _, _, hms = _select(a)
    _select(b)
    # b changes message 2 and 4 after a read hms
    line, unt = b.cmd("STORE 2,4 +FLAGS (\\Answered)")
    assert " OK " in line
    # RFC 7162 3.1.3 example: the conflicting ones are MODIFIED, the
    # others change and report their new MODSEQ even with .SILENT
    line, unt = a.cmd("STORE 1:5 (UNCHANGEDSINCE %d) +FLAGS.SILENT "
                      "(\\Deleted)" % hms)
    assert re.search(r"OK \[MODIFIED 2,4\]", line), (line, unt)
    mine = [u for u in unt if re.match(rb"\* [135] FETCH \(MODSEQ", u)]
    assert len(mine) == 3, unt
    assert all(b"\\Deleted" not in u for u in unt
               if re.match(rb"\* [24] FETCH", u)), unt
    line, unt = a.cmd("FETCH 1:5 (FLAGS)")
    flags = {int(u.split()[1]): u for u in unt}
    assert b"\\Deleted" in flags[1] and b"\\Deleted" in flags[3]
    assert b"\\Deleted" not in flags[2] and b"\\Deleted" not in flags[4]
    # UID STORE reports UIDs; UNCHANGEDSINCE 0 always fails
    line, unt = a.cmd("UID STORE 1:2 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
    assert re.search(r"OK \[MODIFIED 1:2\]", line), line
    line, unt = a.cmd("FETCH 1:2 (FLAGS)")
    assert all(b"\\Seen" not in u for u in unt), unt
    line, _ = a.cmd("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)")
    assert line.split()[1] == "BAD", line
    a.close()
    b.close()


def test_search_modseq(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    r = _session(tern, addr, pw)
    _, _, hms = _select(r)
    r.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)")
    line, unt = r.cmd("FETCH 2 (MODSEQ)")
    assert unt[0].startswith(b"* OK [HIGHESTMODSEQ "), unt
    m2 = _fetch_modseq(unt[1])
    line, unt = r.cmd("SEARCH MODSEQ %d" % (hms + 1))
    assert unt == [b"* SEARCH 2 (MODSEQ %d)" % m2], unt
    line, unt = r.cmd('SEARCH MODSEQ "/flags/\\\\flagged" all %d'
                      % (hms + 1))
    assert unt == [b"* SEARCH 2 (MODSEQ %d)" % m2], unt
    line, unt = r.cmd("SEARCH MODSEQ %d" % (m2 + 1))
    assert unt == [b"* SEARCH"], unt
    line, unt = r.cmd("UID SEARCH RETURN (ALL) MODSEQ 1")
    assert re.match(rb"\* ESEARCH \(TAG \"t\d+\"\) UID ALL 1:3 MODSEQ %d$"
                    % m2, unt[0]), unt
    r.close()


def test_qresync_resync_after_changes(tern):
    """RFC 7162 3.2.5: a second session changes flags and expunges; the
    first reconnects with QRESYNC and gets exactly the changed
    messages' FETCH and VANISHED (EARLIER) of the expunged ones."""
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 8)
    a = _session(tern, addr, pw)
    a.cmd("ENABLE QRESYNC")
    line, unt, hms = _select(a)
    uidvalidity = _code(b" ".join(unt).decode(), "UIDVALIDITY")
    a.cmd("LOGOUT")
    a.close()

    b = _session(tern, addr, pw)
    _select(b)
    b.cmd("UID STORE 2,5 +FLAGS (\\Flagged)")
    b.cmd("UID STORE 3,7 +FLAGS (\\Deleted)")
    line, _ = b.cmd("EXPUNGE")
    assert " OK " in line
    b.cmd("UID STORE 8 +FLAGS (\\Seen)")
    b.cmd("LOGOUT")
    b.close()

    a = _session(tern, addr, pw)
    a.cmd("ENABLE QRESYNC")
    line, unt, new_hms = _select(a, params=" (QRESYNC (%d %d))"
                                 % (uidvalidity, hms))
    assert new_hms > hms
    assert b"* 6 EXISTS" in unt, unt
    van = [u for u in unt if u.startswith(b"* VANISHED")]
    assert van == [b"* VANISHED (EARLIER) 3,7"], unt
    fetches = [u for u in unt if b" FETCH " in u]
    uids = sorted(int(re.search(rb"UID (\d+)", f).group(1))
                  for f in fetches)
    assert uids == [2, 5, 8], fetches
    for f in fetches:
        assert b"MODSEQ (" in f and b"FLAGS (" in f, f
    # the changed message 2 is \Flagged; its MODSEQ is past hms
    f2 = [f for f in fetches if b"UID 2 " in f][0]
    assert b"\\Flagged" in f2 and _fetch_modseq(f2) > hms
    # VANISHED comes before the FETCHes (RFC 7162 3.2.5.1 example)
    assert unt.index(van[0]) < unt.index(fetches[0])

    # known-uids limits the answer
    a2 = _session(tern, addr, pw)
    a2.cmd("ENABLE QRESYNC")
    line, unt, _ = _select(a2, params=" (QRESYNC (%d %d 1:4 (1:4 1:4)))"
                           % (uidvalidity, hms))
    assert [u for u in unt if u.startswith(b"* VANISHED")] == \
        [b"* VANISHED (EARLIER) 3"], unt
    assert [u for u in unt if b" FETCH " in u and b"UID 2 " in u], unt
    assert not [u for u in unt if b"UID 5 " in u or b"UID 8 " in u], unt
    a2.close()

    # UIDVALIDITY mismatch: a plain SELECT, nothing extra
    a3 = _session(tern, addr, pw)
    a3.cmd("ENABLE QRESYNC")
    line, unt, _ = _select(a3, params=" (QRESYNC (%d %d))"
                           % (uidvalidity + 1, hms))
    assert not [u for u in unt if b"VANISHED" in u or b"FETCH" in u], unt
    a3.close()

    # UID FETCH (CHANGEDSINCE VANISHED) in the open session
    line, unt = a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)"
                      % hms)
    assert unt[0] == b"* VANISHED (EARLIER) 3,7", unt
    assert len(unt) == 4, unt
    a.close()


def test_qresync_vanished_live_and_closed(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 4)
    a = _session(tern, addr, pw)
    a.cmd("ENABLE QRESYNC")
    _select(a)
    b = _session(tern, addr, pw)
    _select(b)
    # another session's flag change: with QRESYNC, the UID comes too
    b.cmd("STORE 3 +FLAGS.SILENT (\\Flagged)")
    line, unt = a.cmd("NOOP")
    fetches = [u for u in unt if b"FETCH" in u]
    assert len(fetches) == 1 and re.fullmatch(
        rb"\* 3 FETCH \(UID 3 MODSEQ \(\d+\) FLAGS \(\\Flagged( \\Recent)?\)\)",
        fetches[0]), unt
    # and its own STORE without a UID: the UID too
    line, unt = a.cmd("STORE 4 +FLAGS (\\Seen)")
    assert len(unt) == 1 and re.fullmatch(
        rb"\* 4 FETCH \(UID 4 MODSEQ \(\d+\) FLAGS \(\\Seen( \\Recent)?\)\)",
        unt[0]), unt
    line, unt = a.cmd("STORE 4 -FLAGS.SILENT (\\Seen)")
    assert len(unt) == 1 and re.fullmatch(
        rb"\* 4 FETCH \(UID 4 MODSEQ \(\d+\)\)", unt[0]), unt
    b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    # another session's expunge: VANISHED, never EXPUNGE (3.2.10)
    line, unt = a.cmd("NOOP")
    assert b"* VANISHED 2" in unt, unt
    assert not [u for u in unt if u.endswith(b"EXPUNGE")], unt
    assert re.search(r"OK \[HIGHESTMODSEQ \d+\]", line), line
    # own EXPUNGE too, with HIGHESTMODSEQ in the tagged OK
    a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    line, unt = a.cmd("EXPUNGE")
    assert unt == [b"* VANISHED 1"] or b"* VANISHED 1" in unt, unt
    assert re.search(r"OK \[HIGHESTMODSEQ \d+\]", line), line
    # CLOSED on reselect (3.2.11)
    line, unt, _ = _select(a, box="Sent")
    assert unt[0] == b"* OK [CLOSED] Previous mailbox closed.", unt
    # an IMAP4rev1 session without QRESYNC still gets EXPUNGE
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    line, unt = b.cmd("EXPUNGE")
    assert b"* 1 EXPUNGE" in unt, unt
    a.close()
    b.close()


def test_objectid_savedate_preview(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    body = ("First line   of\r\n\r\nthe text.\r\n" + "x" * 400 + "\r\n")
    m.append("INBOX", None, None, msg("p1", body=body))
    m.logout()
    r = _session(tern, addr, pw)
    line, unt = r.cmd("CREATE Projects")
    mbid = re.search(r"OK \[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", line)
    assert mbid, line
    line, unt = r.cmd("STATUS Projects (MAILBOXID)")
    assert unt == [b'* STATUS "Projects" (MAILBOXID (%s))'
                   % mbid.group(1).encode()], unt
    line, unt, _ = _select(r)
    inbox_id = [u for u in unt if b"[MAILBOXID (" in u]
    assert len(inbox_id) == 1, unt
    line, unt = r.cmd("FETCH 1 (EMAILID THREADID SAVEDATE PREVIEW)")
    assert len(unt) == 1, unt
    e1 = re.search(rb"EMAILID \(([A-Za-z0-9_-]+)\)", unt[0]).group(1)
    assert b"THREADID NIL" in unt[0]
    assert re.search(rb'SAVEDATE "\d\d-[A-Z][a-z]{2}-\d{4} ', unt[0])
    pv = re.search(rb'PREVIEW "([^"]*)"', unt[0])
    assert pv, unt[0]
    assert pv.group(1).startswith(b"First line of the text. xxx"), pv
    assert len(pv.group(1)) == 256, len(pv.group(1))
    line, unt2 = r.cmd("FETCH 1 (PREVIEW (LAZY))")
    assert b"PREVIEW " in unt2[0] and " OK " in line
    # COPY keeps the EMAILID (RFC 8474 5.1)
    r.cmd("COPY 1 Projects")
    line, unt = r.cmd("EXAMINE Projects")
    line, unt = r.cmd("FETCH 1 (EMAILID)")
    assert re.search(rb"EMAILID \(([A-Za-z0-9_-]+)\)", unt[0]).group(1) \
        == e1
    # SAVEDATE search: saved today, not before today
    line, unt = r.cmd("SEARCH SAVEDATESUPPORTED")
    assert unt == [b"* SEARCH 1"], unt
    line, unt = r.cmd("SEARCH SAVEDBEFORE 1-Jan-2000")
    assert unt == [b"* SEARCH"], unt
    line, unt = r.cmd("SEARCH SAVEDSINCE 1-Jan-2000")
    assert unt == [b"* SEARCH 1"], unt
    r.close()


def test_hostile_modifiers(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 1)
    r = _session(tern, addr, pw)
    r.cmd("ENABLE QRESYNC")
    for bad in ("SELECT INBOX (QRESYNC)",
                "SELECT INBOX (QRESYNC ())",
                "SELECT INBOX (QRESYNC (0 1))",
                "SELECT INBOX (QRESYNC (1 x))",
                "SELECT INBOX (QRESYNC (1 1 a:b))",
                "SELECT INBOX (QRESYNC (1 1 1:2 (1)))",
                "SELECT INBOX (QRESYNC (99999999999 1))",
                "SELECT INBOX (QRESYNC (1 99999999999999999999999))"):
        line, _ = r.cmd(bad)
        assert line.split()[1] == "BAD", (bad, line)
    _select(r)
    for bad in ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                "FETCH 1 (FLAGS) (CHANGEDSINCE -1)",
                "FETCH 1 (FLAGS) CHANGEDSINCE",
                "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
                "STORE 1 (UNCHANGEDSINCE 1 2) +FLAGS (\\Seen)",
                "SEARCH MODSEQ",
                'SEARCH MODSEQ "/flags/\\\\seen" bogus 1'):
        line, _ = r.cmd(bad)
        assert line.split()[1] == "BAD", (bad, line)
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    r.close()


def test_qresync_vanished_in_idle_and_move(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    a = _session(tern, addr, pw)
    a.cmd("ENABLE QRESYNC")
    _select(a)
    b = _session(tern, addr, pw)
    _select(b)
    a.send("i1 IDLE\r\n")
    assert a.line().startswith(b"+"), "no IDLE continuation"
    b.cmd("STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    # pushed while idling: the flag change, then VANISHED (RFC 7162
    # 3.2.10); a few lines at most, each within the socket timeout
    got = []
    while b"* VANISHED 3" not in got and len(got) < 5:
        got.append(a.line())
    assert got[-1] == b"* VANISHED 3", got
    assert not [u for u in got if u.endswith(b"EXPUNGE")], got
    a.send("DONE\r\n")
    line, unt = a.tagged("i1")
    assert " OK " in line, (line, unt)
    # MOVE in a QRESYNC session: VANISHED, not EXPUNGE (RFC 6851 4.3)
    line, unt = a.cmd("UID MOVE 1 Archive")
    assert b"* VANISHED 1" in unt, unt
    assert not [u for u in unt if u.endswith(b"EXPUNGE")], unt
    assert re.search(r"OK \[HIGHESTMODSEQ \d+\] Move", line), line
    assert unt[0].startswith(b"* OK [COPYUID "), unt
    line, unt = a.cmd("UID FETCH 1:* (UID)")
    assert len(unt) == 1 and b"UID 2" in unt[0], unt
    a.close()
    b.close()
