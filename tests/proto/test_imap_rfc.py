"""Details of RFC 9051 / RFC 3501 and extensions found in the issue 4
audit: APPEND UTF8 data (RFC 6855 4), FETCH of messages another session
expunged (OK [EXPUNGEISSUED], RFC 5530), the LIST response in SELECT for
IMAP4rev2 clients (RFC 9051 6.3.2), STATUS APPENDLIMIT (RFC 7889 4),
ENABLE of both IMAP4rev2 and UTF8=ACCEPT, FLAGS/PERMANENTFLAGS updated
when a new keyword appears (RFC 9051 7.3.5), the pre-login timeout,
quota, BINARY UNKNOWN-CTE, LSUB "%" parents, \\Recent (RFC 3501 2.3.2)."""
import re
import time

from test_imap_helpers import Raw, login, msg, new_account


def _session(tern, addr, pw):
    r = Raw(tern)
    r.login(addr, pw)
    return r


def test_append_utf8_data(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    body = "Subject: gr\u00fc\u00dfe\r\nFrom: J\u00f6rg <j@x.example>\r\n" \
           "\r\nK\u00e4se\r\n"
    data = body.encode()
    # before ENABLE UTF8=ACCEPT: refused, connection usable
    r.send(b"a APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(data), data))
    line, _ = r.tagged("a")
    assert line.startswith("a NO "), line
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    line, unt = r.cmd("ENABLE UTF8=ACCEPT")
    assert unt == [b"* ENABLED UTF8=ACCEPT"]
    # with flags and date, synchronising literal
    r.send(b'b APPEND INBOX (\\Seen) "02-Jan-2024 10:00:00 +0100" '
           b'UTF8 (~{%d}\r\n' % len(data))
    assert r.line().startswith(b"+")
    r.send(data + b")\r\n")
    line, _ = r.tagged("b")
    assert re.match(r"b OK \[APPENDUID \d+ 1\]", line), line
    # MULTIAPPEND mixing a UTF8 message and a plain one
    plain = msg("plain")
    r.send(b"c APPEND INBOX UTF8 (~{%d+}\r\n%s) {%d+}\r\n%s\r\n"
           % (len(data), data, len(plain), plain))
    line, _ = r.tagged("c")
    assert re.match(r"c OK \[APPENDUID \d+ 2:3\]", line), line
    # the ')' is required
    r.send(b"d APPEND INBOX UTF8 (~{%d+}\r\n%s\r\n" % (len(data), data))
    line, _ = r.tagged("d")
    assert line.startswith("d BAD"), line
    r.cmd("SELECT INBOX")
    line, unt = r.cmd("FETCH 1:3 (FLAGS INTERNALDATE BODY.PEEK[])")
    assert len(unt) == 3, unt
    assert data in unt[0] and b"\\Seen" in unt[0]
    assert b'INTERNALDATE "02-Jan-2024 10:00:00 +0100"' in unt[0] or \
        b'INTERNALDATE "02-Jan-2024 09:00:00 +0000"' in unt[0], unt[0]
    assert data in unt[1] and plain in unt[2]
    line, unt = r.cmd("STATUS INBOX (MESSAGES)")
    assert unt == [b'* STATUS "INBOX" (MESSAGES 3)']
    r.close()


def test_fetch_expunged_by_other_session(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    for i in range(3):
        m.append("INBOX", None, None, msg("x%d" % i))
    a = _session(tern, addr, pw)
    b = _session(tern, addr, pw)
    a.cmd("SELECT INBOX")
    b.cmd("SELECT INBOX")
    b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    # a still numbers message 2; its body is gone
    line, unt = a.cmd("FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert line.endswith("OK [EXPUNGEISSUED] Some messages were already "
                         "expunged."), line
    fetched = [u for u in unt if b" FETCH " in u]
    assert len(fetched) == 2
    assert fetched[0].startswith(b"* 1 FETCH (UID 1 ")
    assert fetched[1].startswith(b"* 3 FETCH (UID 3 ")
    assert not any(u.endswith(b"EXPUNGE") for u in unt)
    # nothing expunged in between: plain OK
    line, unt = a.cmd("FETCH 1 (UID)")
    assert line.endswith(" OK Fetch completed."), line
    line, unt = a.cmd("NOOP")
    assert unt == [b"* 2 EXPUNGE"]
    line, unt = a.cmd("FETCH 1:* (UID)")
    assert line.endswith(" OK Fetch completed.")
    assert unt == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]
    a.close()
    b.close()
    m.logout()


def test_rev2_select_list_and_enable(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    line, unt = r.cmd("ENABLE IMAP4rev2 UTF8=ACCEPT")
    assert unt == [b"* ENABLED IMAP4rev2 UTF8=ACCEPT"]
    line, unt = r.cmd("ENABLE UTF8=ACCEPT")
    assert unt == [b"* ENABLED"]
    line, unt = r.cmd("SELECT Sent")
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in unt, unt
    assert not any(u.endswith(b"RECENT") for u in unt)
    assert not any(b"[UNSEEN" in u for u in unt)
    line, unt = r.cmd("EXAMINE INBOX")
    assert unt[0] == b"* OK [CLOSED] Previous mailbox closed."
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in unt, unt
    assert "[READ-ONLY]" in line
    # an IMAP4rev1 session gets no LIST but RECENT
    r1 = _session(tern, addr, pw)
    line, unt = r1.cmd("SELECT Sent")
    assert not any(u.startswith(b"* LIST") for u in unt)
    assert b"* 0 RECENT" in unt
    r.close()
    r1.close()


def test_status_appendlimit(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    line, unt = r.cmd("CAPABILITY")
    limit = re.search(rb"APPENDLIMIT=(\d+)", unt[0]).group(1)
    line, unt = r.cmd("STATUS INBOX (MESSAGES APPENDLIMIT)")
    assert unt == [b'* STATUS "INBOX" (MESSAGES 0 APPENDLIMIT %s)' % limit]
    line, unt = r.cmd('LIST "" "Drafts" RETURN (STATUS (APPENDLIMIT))')
    assert unt[1] == b'* STATUS "Drafts" (APPENDLIMIT %s)' % limit, unt
    line, _ = r.cmd("STATUS INBOX (APPENDLIMIT BOGUS)")
    assert " BAD " in line
    r.close()


def test_new_keyword_updates_flags(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("k"))
    a = _session(tern, addr, pw)
    b = _session(tern, addr, pw)
    line, unt = a.cmd("SELECT INBOX")
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in unt
    b.cmd("SELECT INBOX")
    line, unt = a.cmd("STORE 1 +FLAGS ($Junk NonJunk)")
    assert unt == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk "
        b"NonJunk)",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
        b"\\Draft $Junk NonJunk \\*)] Flags permitted.",
        b"* 1 FETCH (FLAGS (\\Recent $Junk NonJunk))"], unt
    # a known keyword: no new FLAGS
    line, unt = a.cmd("STORE 1 -FLAGS ($Junk)")
    assert unt == [b"* 1 FETCH (FLAGS (\\Recent NonJunk))"], unt
    # the other session learns the keyword before the FETCH using it
    line, unt = b.cmd("NOOP")
    assert unt[0].startswith(b"* FLAGS (") and b"NonJunk" in unt[0], unt
    assert unt[-1] == b"* 1 FETCH (FLAGS (NonJunk))", unt
    line, unt = b.cmd("NOOP")
    assert unt == []
    a.close()
    b.close()
    m.logout()


def test_login_timeout(tern_factory):
    t = tern_factory("logintimeout", extra_config="imap_login_timeout = 1s")
    r = Raw(t, timeout=10)
    start = time.time()
    r.sock.settimeout(10)
    data = b""
    try:
        while True:
            chunk = r.sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    elapsed = time.time() - start
    assert b"* BYE" in data, data
    assert elapsed < 8, elapsed
    # a logged-in session is not cut by the login timeout
    r2 = Raw(t, timeout=10)
    r2.login(t.user, t.password)
    time.sleep(1.6)
    line, _ = r2.cmd("NOOP")
    assert " OK " in line
    r.close()
    r2.close()


QUOTA_CONFIG = """plan tinyq {
\tquota = 3K
\tquota_messages = 3
}
"""


def _reconfigure(t, append):
    import os
    conf = os.path.join(t.dir, "tern.conf")
    with open(conf) as f:
        text = f.read()
    if text.startswith("# generated by ternd --quickstart"):
        text = text.split("\n", 1)[1]
    with open(conf, "w") as f:
        f.write(text + "\n" + append)
    t.restart()


def test_quota_overquota(tern_factory):
    t = tern_factory("quota")
    _reconfigure(t, QUOTA_CONFIG)
    addr = "q@" + t.domain
    t.add_account(addr, "Quota-pass-1", plan="tinyq")
    r = Raw(t)
    r.login(addr, "Quota-pass-1")
    line, unt = r.cmd("GETQUOTAROOT INBOX")
    assert unt == [b'* QUOTAROOT "INBOX" ""',
                   b'* QUOTA "" (STORAGE 0 3 MESSAGE 0 3)'], unt
    line, _ = r.cmd("GETQUOTAROOT Nope")
    assert line.split()[1] == "NO", line
    small = b"Subject: s\r\n\r\n" + b"x" * 1000 + b"\r\n"
    for tag in ("a1", "a2"):
        r.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n"
               % (tag.encode(), len(small), small))
        line, _ = r.tagged(tag)
        assert " OK [APPENDUID" in line, line
    line, unt = r.cmd('GETQUOTA ""')
    assert unt == [b'* QUOTA "" (STORAGE 1 3 MESSAGE 2 3)'], unt
    # storage: a 1.5K message no longer fits (2 KiB used of 3)
    big = b"Subject: b\r\n\r\n" + b"y" * 1500 + b"\r\n"
    r.send(b"a3 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
    line, _ = r.tagged("a3")
    assert line.startswith("a3 NO [OVERQUOTA]"), line
    # a synchronising literal is refused before it is sent
    r.send(b"a4 APPEND INBOX {%d}\r\n" % len(big))
    line, _ = r.tagged("a4")
    assert line.startswith("a4 NO [OVERQUOTA]"), line
    # MULTIAPPEND past the message count stores nothing
    r.send(b"a5 APPEND Drafts {3+}\r\nabc {3+}\r\ndef\r\n")
    line, _ = r.tagged("a5")
    assert line.startswith("a5 NO [OVERQUOTA]"), line
    line, unt = r.cmd("STATUS Drafts (MESSAGES)")
    assert unt == [b'* STATUS "Drafts" (MESSAGES 0)']
    r.cmd("SELECT INBOX")
    # COPY of two would make 4 messages: refused, nothing copied
    line, _ = r.cmd("COPY 1:2 Archive")
    assert line.split()[1:3] == ["NO", "[OVERQUOTA]"], line
    line, unt = r.cmd("STATUS Archive (MESSAGES)")
    assert unt == [b'* STATUS "Archive" (MESSAGES 0)']
    line, _ = r.cmd("UID COPY 1 Archive")
    assert " OK [COPYUID" in line, line
    line, _ = r.cmd("COPY 2 Archive")
    assert line.split()[1:3] == ["NO", "[OVERQUOTA]"], line
    # MOVE does not add usage, so it works at the limit
    line, unt = r.cmd("MOVE 2 Trash")
    assert " OK " in line and b"* 2 EXPUNGE" in unt, (line, unt)
    line, unt = r.cmd('GETQUOTA ""')
    assert unt == [b'* QUOTA "" (STORAGE 2 3 MESSAGE 3 3)'], unt
    # expunging frees room again
    r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r.cmd("EXPUNGE")
    r.send(b"a6 APPEND INBOX {3+}\r\nabc\r\n")
    line, _ = r.tagged("a6")
    assert " OK [APPENDUID" in line, line
    r.close()


def test_binary_unknown_cte(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    raw = (b"Subject: cte\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--b--\r\n")
    m.append("INBOX", None, None, raw)
    m.logout()
    r = _session(tern, addr, pw)
    r.cmd("SELECT INBOX")
    line, unt = r.cmd("FETCH 1 (BINARY.PEEK[1])")
    assert line.endswith(" NO [UNKNOWN-CTE] Unknown "
                         "Content-Transfer-Encoding."), line
    assert unt == [b"* 1 FETCH (BINARY[1] NIL)"], unt
    line, unt = r.cmd("FETCH 1 (BINARY.SIZE[1])")
    assert " NO [UNKNOWN-CTE]" in line, line
    # the known one decodes; the message stays unseen with .PEEK
    line, unt = r.cmd("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] FLAGS)")
    assert line.endswith(" OK Fetch completed."), line
    assert b"BINARY[2] ~{4}\r\n\x00\x01\x02\xff" in unt[0], unt
    assert b"BINARY.SIZE[2] 4" in unt[0], unt
    assert b"FLAGS (\\Recent)" in unt[0], unt
    # BODY[] of the undecodable part is still served as it is stored
    line, unt = r.cmd("FETCH 1 (BODY.PEEK[1])")
    assert line.endswith(" OK Fetch completed.")
    assert b"begin 644 a" in unt[0]
    r.close()


def test_lsub_percent_unsubscribed_parent(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    assert " OK " in r.cmd("CREATE Club/Reports")[0]
    for name in ("Club/Reports", "Gone/Sub", "Gone/Sub/Deep", "Gone-x"):
        assert " OK " in r.cmd('SUBSCRIBE "%s"' % name)[0]
    line, unt = r.cmd('LSUB "" "%"')
    # RFC 3501 6.3.9: the unsubscribed parents, flagged \Noselect
    assert b'* LSUB (\\Noselect) "/" "Club"' in unt, unt
    assert b'* LSUB (\\Noselect) "/" "Gone"' in unt, unt
    assert b'* LSUB (\\Noselect) "/" "Gone-x"' in unt, unt
    assert not any(b"/Sub" in u or b"/Reports" in u for u in unt), unt
    line, unt = r.cmd('LSUB "" "*"')
    assert b'* LSUB () "/" "Club/Reports"' in unt, unt
    assert b'* LSUB (\\Noselect) "/" "Gone/Sub/Deep"' in unt, unt
    assert not any(u.endswith(b'"Club"') or u.endswith(b'"Gone"')
                   for u in unt), unt
    line, unt = r.cmd('LSUB "Gone/" "%"')
    assert unt == [b'* LSUB (\\Noselect) "/" "Gone/Sub"'], unt
    line, unt = r.cmd('LSUB "" "Nothing%"')
    assert unt == []
    r.close()


def test_select_parameters_unknown(tern):
    addr, pw = new_account(tern)
    r = _session(tern, addr, pw)
    line, _ = r.cmd("SELECT INBOX (FOO)")
    assert line.split()[1] == "BAD", line
    # QRESYNC without ENABLE QRESYNC (RFC 7162 3.2.5)
    line, _ = r.cmd("SELECT INBOX (QRESYNC (1 1))")
    assert line.split()[1] == "BAD", line
    line, _ = r.cmd("EXAMINE INBOX extra")
    assert line.split()[1] == "BAD", line
    line, _ = r.cmd("SELECT INBOX")
    assert "[READ-WRITE]" in line
    r.close()


def test_recent_flag(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("r1"))
    m.append("INBOX", "(\\Seen)", None, msg("r2"))
    ex, a, b, v2 = (_session(tern, addr, pw) for _ in range(4))
    line, unt = a.cmd("STATUS INBOX (MESSAGES RECENT)")
    assert unt == [b'* STATUS "INBOX" (MESSAGES 2 RECENT 2)']
    # EXAMINE sees them as recent but does not take them
    line, unt = ex.cmd("EXAMINE INBOX")
    assert b"* 2 RECENT" in unt, unt
    line, unt = a.cmd("SELECT INBOX")
    assert b"* 2 RECENT" in unt, unt
    line, unt = a.cmd("FETCH 1:2 (FLAGS)")
    assert unt == [b"* 1 FETCH (FLAGS (\\Recent))",
                   b"* 2 FETCH (FLAGS (\\Seen \\Recent))"], unt
    assert a.cmd("SEARCH RECENT")[1] == [b"* SEARCH 1 2"]
    assert a.cmd("SEARCH NEW")[1] == [b"* SEARCH 1"]
    assert a.cmd("SEARCH OLD")[1] == [b"* SEARCH"]
    line, unt = a.cmd("STATUS INBOX (RECENT)")
    assert unt == [b'* STATUS "INBOX" (RECENT 0)']
    # a later session: nothing recent
    line, unt = b.cmd("SELECT INBOX")
    assert b"* 0 RECENT" in unt, unt
    assert b.cmd("SEARCH RECENT")[1] == [b"* SEARCH"]
    assert b.cmd("SEARCH OLD")[1] == [b"* SEARCH 1 2"]
    # \\Recent cannot be stored, only seen
    line, unt = b.cmd("STORE 1 +FLAGS (\\Recent \\Flagged)")
    assert unt == [b"* 1 FETCH (FLAGS (\\Flagged))"], unt
    # IMAP4rev2: no \\Recent, no RECENT response
    v2.cmd("ENABLE IMAP4rev2")
    line, unt = v2.cmd("SELECT INBOX")
    assert not any(u.endswith(b"RECENT") for u in unt), unt
    # a new message goes to the first session that syncs: b
    m.append("INBOX", None, None, msg("r3"))
    line, unt = b.cmd("NOOP")
    assert b"* 3 EXISTS" in unt and b"* 1 RECENT" in unt, unt
    line, unt = b.cmd("FETCH 3 (FLAGS)")
    assert unt == [b"* 3 FETCH (FLAGS (\\Recent))"], unt
    line, unt = a.cmd("NOOP")
    assert unt == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))",
                   b"* 3 EXISTS", b"* 2 RECENT"], unt
    line, unt = a.cmd("FETCH 3 (FLAGS)")
    assert unt == [b"* 3 FETCH (FLAGS ())"], unt
    line, unt = v2.cmd("NOOP")
    assert unt == [b"* 3 EXISTS"], unt
    line, unt = v2.cmd("FETCH 1:3 (FLAGS)")
    assert not any(b"Recent" in u for u in unt), unt
    # an IMAP4rev2 session that syncs first does not take \Recent
    m.append("INBOX", None, None, msg("r4"))
    assert v2.cmd("NOOP")[1] == [b"* 4 EXISTS"]
    line, unt = b.cmd("NOOP")
    assert unt == [b"* 4 EXISTS", b"* 2 RECENT"], unt
    for r in (ex, a, b, v2):
        r.close()
    m.logout()


def _vmrss_kib(pid):
    """Anonymous resident memory (heap, stacks): the message blob is
    mmapped, and its pages count in VmRSS as they are sent, but they are
    the page cache, not memory the worker allocated."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("RssAnon:"):
                return int(ln.split()[1])
    return 0


def test_fetch_large_body_streams(tern):
    """A 24 MB BODY[] to a client that does not read: the worker's memory
    stays far below the message size (the body is streamed in slices as
    output drains), and the bytes then arrive complete."""
    import hashlib
    import uuid
    from test_imap_concurrent import _worker_pid
    addr, pw = new_account(tern)
    line_ = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
            b"0123456789\r\n"
    body = msg("big", (line_ * (24 * 1024 * 1024 // len(line_))).decode())
    m = login(tern, addr, pw)
    assert m.append("INBOX", None, None, body)[0] == "OK"
    m.logout()
    r = Raw(tern, timeout=60)
    name = "big-%s" % uuid.uuid4().hex[:12]
    r.cmd('ID ("name" "%s")' % name)
    pid = _worker_pid(tern, name)
    assert pid is not None
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    before = _vmrss_kib(pid)
    r.send("f FETCH 1 (BODY.PEEK[])\r\n")
    time.sleep(1.5)    # the worker fills what the socket takes, then waits
    during = _vmrss_kib(pid)
    assert during - before < 10 * 1024, (before, during)
    line, unt = r.tagged("f")
    assert line == "f OK Fetch completed.", line
    head = b"* 1 FETCH (BODY[] {%d}\r\n" % len(body)
    assert unt[0].startswith(head)
    got = unt[0][len(head):len(head) + len(body)]
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    r.close()


def test_nul_in_message_never_in_a_plain_literal(tern):
    """RFC 9051 4.3: no NUL inside a literal. A stored message with raw NUL
    bytes goes out with each NUL as 0x80 in BODY[] / RFC822 (same length,
    so partial ranges and RFC822.SIZE still agree); BINARY[] sends the
    exact bytes in a literal8."""
    addr, pw = new_account(tern)
    raw = b"Subject: nul\r\n\r\nbefore\x00middle\x00\x00after\r\n"
    m = login(tern, addr, pw)
    assert m.append("INBOX", None, None, raw)[0] == "OK"
    m.logout()
    r = _session(tern, addr, pw)
    r.cmd("SELECT INBOX")
    line, unt = r.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert line.endswith(" OK Fetch completed."), line
    want = raw.replace(b"\x00", b"\x80")
    assert b"RFC822.SIZE %d" % len(raw) in unt[0], unt
    assert b"BODY[] {%d}\r\n" % len(raw) + want in unt[0], unt
    assert b"\x00" not in unt[0]
    line, unt = r.cmd("FETCH 1 (BODY.PEEK[TEXT]<6.8>)")
    assert b"BODY[TEXT]<6> {8}\r\n\x80middle\x80" in unt[0], unt
    line, unt = r.cmd("FETCH 1 (BINARY.PEEK[1])")
    text = raw.split(b"\r\n\r\n", 1)[1]
    assert b"BINARY[1] ~{%d}\r\n" % len(text) + text in unt[0], unt
    r.cmd("LOGOUT")
