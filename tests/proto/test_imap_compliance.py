"""RFC details a run of an independent IMAP test suite against tern
showed wrong (each test below is our own, with our own messages): the
largest UID 4294967295 in a set (RFC 9051 section 9, nz-number), ...
"""
import re

from test_imap_helpers import Raw, msg, new_account


def _selected(tern, n):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    for i in range(n):
        data = msg("m%d" % i)
        r.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        line, _ = r.tagged("a")
        assert " OK " in line, line
    line, _ = r.cmd("SELECT INBOX")
    assert " OK " in line, line
    return r


def _search(r, text):
    line, unt = r.cmd(text)
    assert " OK " in line, line
    found = [u for u in unt if u.startswith(b"* SEARCH")]
    assert len(found) == 1, unt
    return [int(x) for x in found[0].split()[2:]]


def test_uid_set_up_to_the_largest_uid(tern):
    r = _selected(tern, 3)
    assert _search(r, "UID SEARCH UID 1:4294967295") == [1, 2, 3]
    assert _search(r, "UID SEARCH UID 4294967295") == []
    # above the last UID: a range to 2^32-1 is empty, "n:*" is not
    assert _search(r, "UID SEARCH UID 4:4294967295") == []
    assert _search(r, "UID SEARCH UID 4:*") == [3]
    line, unt = r.cmd("UID FETCH 2:4294967295 (FLAGS)")
    assert line.endswith("OK Fetch completed."), line
    assert [re.match(rb"\* (\d+) FETCH", u).group(1) for u in unt] == \
        [b"2", b"3"]
    line, _ = r.cmd("UID SEARCH UID 1:4294967296")
    assert " BAD " in line, line
    r.close()


def test_condstore_enabled_while_selected_gets_highestmodseq(tern):
    """RFC 7162 3.1: the first CONDSTORE-enabling command while a mailbox
    is selected makes the server send HIGHESTMODSEQ."""
    r = _selected(tern, 2)
    line, unt = r.cmd("STATUS INBOX (HIGHESTMODSEQ)")
    assert " OK " in line, line
    highest = [u for u in unt if u.startswith(b"* OK [HIGHESTMODSEQ ")]
    assert len(highest) == 1, unt
    m = re.search(rb"HIGHESTMODSEQ (\d+)\)", b"".join(
        u for u in unt if u.startswith(b"* STATUS")))
    assert highest[0].startswith(b"* OK [HIGHESTMODSEQ %s]" % m.group(1))
    # once only
    line, unt = r.cmd("FETCH 1 (MODSEQ)")
    assert not [u for u in unt if b"HIGHESTMODSEQ" in u], unt
    r.close()
    r = _selected(tern, 1)
    line, unt = r.cmd("FETCH 1 (MODSEQ)")
    assert [u for u in unt if u.startswith(b"* OK [HIGHESTMODSEQ ")], unt
    # SELECT (CONDSTORE) says it once, in the SELECT's own responses
    line, unt = r.cmd("SELECT INBOX (CONDSTORE)")
    assert len([u for u in unt if b"HIGHESTMODSEQ" in u]) == 1, unt
    r.close()


def test_esearch_min_max_modseq_is_of_the_returned_message(tern):
    """RFC 4731 3.2: SEARCH RETURN (MIN) or (MAX) with a MODSEQ key
    reports the MODSEQ of the message(s) returned."""
    r = _selected(tern, 3)
    mods = {}
    for seq in (3, 2, 1):  # decreasing MODSEQ along the sequence
        line, unt = r.cmd("STORE %d +FLAGS (\\Seen)" % seq)
        assert " OK " in line, line
    line, unt = r.cmd("FETCH 1:3 (MODSEQ)")
    for u in unt:
        m = re.match(rb"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", u)
        if m:
            mods[int(m.group(1))] = int(m.group(2))
    assert mods[1] > mods[2] > mods[3], mods

    def esearch(ret):
        line, unt = r.cmd('SEARCH RETURN (%s) MODSEQ "/flags/\\\\seen" all 1'
                          % ret)
        assert " OK " in line, line
        return [u for u in unt if u.startswith(b"* ESEARCH")][0]
    assert esearch("MIN").endswith(b"MIN 1 MODSEQ %d" % mods[1])
    assert esearch("MAX").endswith(b"MAX 3 MODSEQ %d" % mods[3])
    assert esearch("MIN MAX").endswith(b"MODSEQ %d" % mods[1])
    assert esearch("COUNT").endswith(b"COUNT 3 MODSEQ %d" % mods[1])
    r.close()


def test_brackets_are_atom_characters_outside_fetch_sections(tern):
    """RFC 9051 ATOM-CHAR/ASTRING-CHAR: '[', ']' and '}' may be in an
    atom; only a fetch-att's section "[...]" may hold spaces."""
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    name = "x!#$'+,-.09:;<=>?@^_`|[}"  # '&' is mUTF-7's
    line, _ = r.cmd("SELECT %s" % name)
    assert line.split()[1] == "NO", line  # parsed: no such mailbox
    line, _ = r.cmd("CREATE %s" % name)
    assert " OK " in line, line
    line, unt = r.cmd('LIST "" x!#*')
    assert " OK " in line, line
    assert any(u.endswith(b'"' + name.encode() + b'"') or
               u.endswith(b" " + name.encode()) for u in unt), unt
    line, _ = r.cmd("SELECT a]b[c")
    assert line.split()[1] == "NO", line
    # a section still takes spaces and parentheses
    data = msg("brackets")
    r.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
    assert " OK " in r.tagged("a")[0]
    r.cmd("SELECT INBOX")
    line, unt = r.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert " OK " in line and b"Subject: brackets" in unt[0], unt
    line, _ = r.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject))")
    assert line.split()[1] == "BAD", line
    r.close()


def test_refused_literal_plus_arriving_late_is_skipped(tern):
    """A non-synchronising literal (RFC 7888) of a refused APPEND is
    skipped even when its bytes come after the NO: the message's lines
    are never taken for commands."""
    addr, pw = new_account(tern)
    r = Raw(tern, tls=False)
    r.login(addr, pw)
    body = b"a1 CREATE Hijacked\r\nSubject: x\r\n\r\nb\r\n"
    r.send(b"t APPEND Nonexistent {%d+}\r\n" % len(body))
    line, _ = r.tagged("t")
    assert line.startswith("t NO [TRYCREATE]"), line
    # nothing else was buffered: the server went idle before the bytes
    r.send(body + b"\r\n")
    line, unt = r.cmd("LIST \"\" *")
    assert " OK " in line and not any(b"Hijacked" in u for u in unt), unt
    assert not [u for u in unt if b"BAD" in u], unt
    # a synchronising one is not asked for: the command just ends
    r.send(b"u APPEND Nonexistent {%d}\r\n" % len(body))
    line, unt = r.tagged("u")
    assert line.startswith("u NO [TRYCREATE]") and unt == [], (line, unt)
    line, _ = r.cmd("NOOP")
    assert line.endswith("OK NOOP completed."), line
    r.close()


def test_sent_dates_by_the_day_as_written(tern):
    """RFC 9051 6.4.4: SENTBEFORE/SENTON/SENTSINCE compare the Date:
    field's date disregarding time and zone (not its UTC day)."""
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    dates = ["Sun, 25 Mar 2007 00:30:00 +0200",   # 24 Mar in UTC
             "Sat, 24 Mar 2007 23:30:00 -0500",   # 25 Mar in UTC
             "Sun, 25 Mar 2007 12:00:00 +0000"]
    for d in dates:
        data = ("From: a@b.example\r\nSubject: d\r\nDate: %s\r\n\r\nx\r\n"
                % d).encode()
        r.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        assert " OK " in r.tagged("a")[0]
    r.cmd("SELECT INBOX")
    assert _search(r, "SEARCH SENTON 25-Mar-2007") == [1, 3]
    assert _search(r, "SEARCH SENTON 24-Mar-2007") == [2]
    assert _search(r, "SEARCH SENTBEFORE 25-Mar-2007") == [2]
    assert _search(r, "SEARCH SENTSINCE 25-Mar-2007") == [1, 3]
    assert _search(r, "SEARCH NOT SENTON 25-Mar-2007") == [2]
    r.close()


def test_store_reply_announces_other_sessions_keywords_first(tern):
    """A keyword another session set appears in FLAGS before any FETCH
    shows it (RFC 9051 7.3.5), also in the FETCH that answers STORE."""
    addr, pw = new_account(tern)
    a = Raw(tern)
    a.login(addr, pw)
    data = msg("kw")
    a.send(b"t APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
    assert " OK " in a.tagged("t")[0]
    assert " OK " in a.cmd("SELECT INBOX")[0]
    b = Raw(tern)
    b.login(addr, pw)
    assert " OK " in b.cmd("SELECT INBOX")[0]
    assert " OK " in b.cmd("STORE 1 +FLAGS ($Other)")[0]
    line, unt = a.cmd("STORE 1 +FLAGS (\\Seen)")
    assert " OK " in line, line
    flags = [i for i, u in enumerate(unt)
             if u.startswith(b"* FLAGS ") and b"$Other" in u]
    fetch = [i for i, u in enumerate(unt)
             if b"FETCH" in u and b"$Other" in u]
    assert flags and fetch and flags[0] < fetch[0], unt
    a.close()
    b.close()


def _blob_hash(tern, uid):
    import os
    import sqlite3
    con = sqlite3.connect(os.path.join(tern.datadir, "tern.db"), timeout=30)
    try:
        (h,) = con.execute("SELECT b.hash FROM messages m JOIN blobs b"
                           " ON b.id = m.blob_id WHERE m.uid = ?"
                           " ORDER BY m.id DESC LIMIT 1", (uid,)).fetchone()
    finally:
        con.close()
    return h


def _blob_row(tern, h):
    import os
    import sqlite3
    con = sqlite3.connect(os.path.join(tern.datadir, "tern.db"), timeout=30)
    try:
        return con.execute("SELECT count(*) FROM blobs WHERE hash = ?",
                           (h,)).fetchone()[0] > 0
    finally:
        con.close()


def test_fetch_overtaken_by_an_expunge_elsewhere(tern):
    """A long FETCH whose last message another session expunges (and
    whose blob is collected) while the client is slow to read: that
    message is left out with OK [EXPUNGEISSUED] (RFC 5530), not a NO."""
    import time
    addr, pw = new_account(tern)
    b = Raw(tern, tls=False)
    b.login(addr, pw)
    n, size = 150, 100 * 1024
    for i in range(n):
        data = msg("big%d" % i, body="x" * size + "\r\n")
        b.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        assert " OK " in b.tagged("a")[0]
    assert " OK " in b.cmd("SELECT INBOX")[0]
    last = _blob_hash(tern, n)
    a = Raw(tern, tls=False)
    a.login(addr, pw)
    assert " OK " in a.cmd("SELECT INBOX")[0]
    # 15 MB of answer that a is slow to read: the server waits for the
    # socket long before the last message
    a.send("f FETCH 1:* (BODY.PEEK[])\r\n")
    a.line()  # the first response has begun: the rows were read
    line, _ = b.cmd("STORE %d +FLAGS.SILENT (\\Deleted)" % n)
    assert " OK " in line, line
    assert " OK " in b.cmd("EXPUNGE")[0]
    deadline = time.monotonic() + 30
    while _blob_row(tern, last) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _blob_row(tern, last), "blob not collected"
    a.sock.settimeout(60)
    line, unt = a.tagged("f")
    assert line == "f OK [EXPUNGEISSUED] Some messages were already " \
        "expunged.", line
    a.close()
    b.close()
