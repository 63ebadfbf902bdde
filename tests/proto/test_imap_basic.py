"""IMAP with Python's imaplib over implicit TLS (imaps) and STARTTLS:
every command of the issue, checked against RFC 9051 / RFC 3501 and the
extensions' response formats."""
import base64
import hashlib
import hmac
import imaplib
import os
import re
import ssl

import pytest

from test_imap_helpers import Raw, ctx, imaps, login, msg, new_account


def test_greeting_and_capability(tern):
    m = imaps(tern)
    caps = m.capabilities
    for c in ("IMAP4REV1", "IMAP4REV2", "SASL-IR", "LITERAL+", "ID",
              "ENABLE", "IDLE", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256"):
        assert c in caps, c
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    m.login(tern.user, tern.password)
    typ, data = m.capability()
    caps = data[0].decode().split()
    for c in ("NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN",
              "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
              "CREATE-SPECIAL-USE", "QUOTA", "QUOTA=RES-STORAGE",
              "QUOTA=RES-MESSAGE", "MULTIAPPEND", "ESEARCH", "SEARCHRES",
              "BINARY", "UTF8=ACCEPT", "STATUS=SIZE"):
        assert c in caps, c
    assert any(c.startswith("APPENDLIMIT=") for c in caps)
    m.logout()


def test_starttls_login(tern):
    m = imaplib.IMAP4(tern.host, tern.port("imap"), timeout=20)
    assert "STARTTLS" in m.capabilities
    typ, _ = m.starttls(ssl_context=ctx())
    assert typ == "OK"
    typ, _ = m.login(tern.user, tern.password)
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK"
    m.logout()


def test_login_failures(tern):
    m = imaps(tern)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(tern.user, "wrong password")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    with pytest.raises(imaplib.IMAP4.error):
        m.login("nobody@" + tern.domain, "x")
    m.logout()
    # The whole address is case-insensitive.
    m = imaps(tern)
    m.login(tern.user.upper(), tern.password)
    m.logout()


def test_authenticate_plain_and_sasl_ir(tern):
    m = imaps(tern)
    cred = "\0%s\0%s" % (tern.user, tern.password)
    typ, data = m.authenticate("PLAIN", lambda _: cred.encode())
    assert typ == "OK"
    m.logout()
    r = Raw(tern)
    ir = base64.b64encode(cred.encode()).decode()
    line, _ = r.cmd("AUTHENTICATE PLAIN " + ir)
    assert line.startswith("t1 OK [CAPABILITY ")
    r.close()
    r = Raw(tern)
    r.send("a AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ "
    r.send("*\r\n")
    line, _ = r.tagged("a")
    assert line.startswith("a BAD")
    r.close()


def _scram_client(r, user, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    r.send("s AUTHENTICATE SCRAM-SHA-256 %s\r\n"
           % base64.b64encode(("n,," + first_bare).encode()).decode())
    ln = r.line()
    assert ln.startswith(b"+ "), ln
    server_first = base64.b64decode(ln[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salt = base64.b64decode(attrs["s"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(ckey).digest()
    final_bare = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join((first_bare, server_first, final_bare)).encode()
    sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    final = final_bare + ",p=" + base64.b64encode(proof).decode()
    r.send(base64.b64encode(final.encode()) + b"\r\n")
    ln = r.line()
    if ln.startswith(b"+ "):
        skey = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        v = base64.b64encode(hmac.new(skey, auth_msg,
                                      hashlib.sha256).digest()).decode()
        assert base64.b64decode(ln[2:]).decode() == "v=" + v
        r.send("\r\n")
        ln = r.line()
    return ln.decode()


def test_authenticate_scram(tern):
    r = Raw(tern)
    line = _scram_client(r, tern.user, tern.password)
    assert line.startswith("s OK"), line
    line, _ = r.cmd("SELECT INBOX")
    assert " OK " in line
    r.close()
    r = Raw(tern)
    line = _scram_client(r, tern.user, "not the password")
    assert line.startswith("s NO [AUTHENTICATIONFAILED]"), line
    r.close()


def test_id_namespace_enable_noop(tern):
    r = Raw(tern)
    line, unt = r.cmd('ID ("name" "pytest" "version" "1")')
    assert line.startswith("t1 OK") and unt[0].startswith(b"* ID (")
    r.login(tern.user, tern.password)
    line, unt = r.cmd("NAMESPACE")
    assert unt == [b'* NAMESPACE (("" "/")) NIL NIL']
    line, unt = r.cmd("ENABLE IMAP4rev2 UTF8=ACCEPT FOO")
    assert unt == [b"* ENABLED IMAP4rev2 UTF8=ACCEPT"]
    line, unt = r.cmd("NOOP")
    assert line.endswith("OK NOOP completed.")
    line, unt = r.cmd("LOGOUT")
    assert unt == [b"* BYE Logging out"] and " OK " in line
    assert r.closed()


def test_list_special_use_children(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    typ, data = m.list()
    assert typ == "OK"
    lines = [d.decode() for d in data]
    names = {}
    for ln in lines:
        mm = re.match(r'\((.*?)\) "/" "?(.*?)"?$', ln)
        names[mm.group(2)] = mm.group(1).split()
    for box, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                     ("Trash", "\\Trash"), ("Junk", "\\Junk"),
                     ("Archive", "\\Archive")):
        assert use in names[box], (box, names)
    assert "INBOX" in names
    assert lines[0].endswith('"INBOX"') or lines[0].endswith("INBOX")
    assert m.create("Projects/2024/Q1")[0] == "OK"
    typ, data = m.list('""', "Projects/%")
    assert len(data) == 1 and data[0].endswith(b'"/" "Projects/2024"')
    assert b"\\HasChildren" in data[0]
    typ, data = m.list('""', "%")
    assert any(b'\\HasChildren) "/" "Projects"' in d for d in data)
    typ, data = m.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    m.logout()


def test_list_extended_status_subscribed(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    assert r.cmd("CREATE a/b")[0].split()[1] == "OK"
    assert r.cmd("SUBSCRIBE a/b")[0].split()[1] == "OK"
    assert r.cmd("SUBSCRIBE gone")[0].split()[1] == "OK"
    line, unt = r.cmd('LIST (SUBSCRIBED) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "a/b"' in unt
    assert b'* LIST (\\NonExistent \\Noselect \\HasNoChildren \\Subscribed)'\
        b' "/" "gone"' in unt
    line, unt = r.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert any(b'"/" "a" ("CHILDINFO" ("SUBSCRIBED"))' in u
               for u in unt), unt
    line, unt = r.cmd('LIST "" "INBOX" RETURN (STATUS (MESSAGES UIDNEXT '
                      'SIZE))')
    assert unt[1].startswith(b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT ')
    line, unt = r.cmd('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)')
    assert len(unt) == 5 and all(b"\\" in u for u in unt)
    line, unt = r.cmd('LSUB "" "*"')
    assert b'* LSUB () "/" "a/b"' in unt
    line, unt = r.cmd('LIST (RECURSIVEMATCH) "" "*"')
    assert line.split()[1] == "BAD"
    r.close()


def test_mailbox_create_delete_rename(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    assert m.create("Work")[0] == "OK"
    typ, data = m.create("Work")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    assert m.rename("Work", "Job")[0] == "OK"
    assert m.select("Job")[0] == "OK"
    m.close()
    typ, data = m.select("Work")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    assert m.delete("Job")[0] == "OK"
    typ, data = m.delete("INBOX")
    assert typ == "NO"
    # RENAME INBOX moves its messages and leaves INBOX empty
    m.append("INBOX", None, None, msg("one"))
    m.append("INBOX", None, None, msg("two"))
    assert m.rename("INBOX", "Old")[0] == "OK"
    assert m.select("INBOX")[1] == [b"0"]
    assert m.select("Old")[1] == [b"2"]
    # CREATE-SPECIAL-USE
    r = m._simple_command("CREATE", "Everything", "(USE (\\All))")
    assert r[0] == "OK"
    typ, data = m.list('""', "Everything")
    assert b"\\All" in data[0]
    m.logout()


def test_bad_mailbox_names(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    for name in ('"a/../b"', '"a//b"', '"/a"', '".."', '"a/./b"',
                 '"&Jjo"', '"&AGE-"', '"&-&U,BTFw-&ZeVnLIqe-"', '""',
                 '{3+}\r\na\x01b'):
        line, _ = r.cmd("CREATE " + name)
        assert line.split()[1] in ("NO", "BAD"), (name, line)
    # valid mUTF-7 round trip
    assert r.cmd('CREATE "Entw&APw-rfe"')[0].split()[1] == "OK"
    line, unt = r.cmd('LIST "" "Entw*"')
    assert unt == [b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"']
    r.cmd("ENABLE UTF8=ACCEPT")
    line, unt = r.cmd('LIST "" "Entw*"')
    assert unt == ['* LIST (\\HasNoChildren) "/" "Entwürfe"'.encode()]
    r.close()


def test_status(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", "(\\Seen)", None, msg("a"))
    m.append("INBOX", "(\\Deleted)", None, msg("b"))
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
                         "DELETED SIZE RECENT)")
    s = data[0].decode()
    assert re.search(r"MESSAGES 2\b", s) and re.search(r"UNSEEN 1\b", s)
    assert re.search(r"DELETED 1\b", s) and re.search(r"UIDNEXT 3\b", s)
    # RFC 3501 2.3.2: no session has selected INBOX yet
    assert re.search(r"RECENT 2\b", s)
    size = int(re.search(r"SIZE (\d+)", s).group(1))
    assert size == len(msg("a")) + len(msg("b")) - 0 or size > 0
    typ, data = m.status("Nope", "(MESSAGES)")
    assert typ == "NO"
    m.logout()


def test_select_examine_responses(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", "(\\Seen $Forwarded)", None, msg("a"))
    m.append("INBOX", None, None, msg("b"))
    r = Raw(tern)
    r.login(addr, pw)
    line, unt = r.cmd("SELECT INBOX")
    assert line.endswith("OK [READ-WRITE] Select completed.")
    text = b"\n".join(unt).decode()
    assert "* 2 EXISTS" in text and "* 2 RECENT" in text
    assert "* OK [UNSEEN 2]" in text
    assert re.search(r"\* FLAGS \(.*\$Forwarded", text)
    assert re.search(r"\* OK \[PERMANENTFLAGS \(.*\\\*\)\]", text)
    assert "* OK [UIDVALIDITY " in text and "* OK [UIDNEXT 3]" in text
    line, unt = r.cmd("EXAMINE INBOX")
    assert line.endswith("OK [READ-ONLY] Examine completed.")
    assert b"* 0 RECENT" in unt  # the SELECT took them
    line, unt = r.cmd("STORE 1 +FLAGS (\\Deleted)")
    assert line.split()[1] == "NO"
    r.cmd("ENABLE IMAP4rev2")
    line, unt = r.cmd("SELECT INBOX")
    text = b"\n".join(unt).decode()
    assert "RECENT" not in text and "[CLOSED]" in text
    r.close()
    m.logout()


def test_append_fetch_roundtrip(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    body = msg("roundtrip", "line 1\r\nline 2\r\n")
    typ, data = m.append("INBOX", "(\\Flagged)",
                         imaplib.Time2Internaldate(1700000000), body)
    assert typ == "OK"
    mm = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert mm and mm.group(2) == b"1"
    m.select("INBOX")
    typ, data = m.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE "
                        "BODY.PEEK[])")
    head = data[0][0].decode()
    assert "UID 1" in head and "\\Flagged" in head
    assert "RFC822.SIZE %d" % len(body) in head
    assert '14-Nov-2023 22:13:20 +0000' in head
    assert data[0][1] == body
    # PEEK did not set \Seen; BODY[] does and reports FLAGS
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = m.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"line 1\r\nline 2\r\n"
    assert b"\\Seen" in data[0][0]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT from)])")
    assert data[0][1] == (b"From: sender@remote.example\r\n"
                          b"Subject: roundtrip\r\n\r\n")
    assert b"BODY[HEADER.FIELDS (SUBJECT FROM)]" in data[0][0]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject From "
                        "To Date Message-ID)])")
    assert data[0][1] == b"\r\n"
    typ, data = m.fetch("1", "(BODY.PEEK[]<5.10>)")
    assert b"BODY[]<5>" in data[0][0] and data[0][1] == body[5:15]
    typ, data = m.fetch("1", "(BODY.PEEK[]<100000.10>)")
    assert data[0][1] == b"" or data == [b'1 (BODY[]<100000> "")'] or \
        data[0][1] is None
    typ, data = m.fetch("1", "(RFC822.HEADER RFC822.TEXT)")
    assert b"RFC822.HEADER" in data[0][0]
    typ, data = m.fetch("1", "(RFC822)")
    assert data[0][1] == body
    typ, data = m.uid("FETCH", "1", "(FLAGS)")
    assert b"UID 1" in data[0]
    m.logout()


MULTIPART = (
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n"
    b"To: a@example.test, \"B, C\" <bc@example.test>\r\n"
    b"Subject: multi\r\nMessage-ID: <multi@x>\r\n"
    b"Date: Tue, 2 Jan 2024 12:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
    b"preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe\r\n--XX\r\n"
    b"Content-Type: application/octet-stream; name=\"b.bin\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQ=\r\n--XX--\r\n")


def test_fetch_structure_and_binary(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, MULTIPART)
    m.select("INBOX")
    typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE BODY)")
    text = data[0] if isinstance(data[0], bytes) else b"".join(
        d if isinstance(d, bytes) else b"".join(d) for d in data)
    assert b'"multi"' in text and b'"<multi@x>"' in text
    # Type names are case-insensitive (RFC 9051 7.5.2); tern upper-cases.
    assert b'("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL ' \
        b'"QUOTED-PRINTABLE"' in text.upper()
    assert b'"MIXED"' in text.upper()
    typ, data = m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[1.MIME] "
                        "BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2])")
    parts = {}
    for d in data:
        if isinstance(d, tuple):
            parts[d[0].split()[-2].decode()] = d[1]
    flat = b" ".join(d if isinstance(d, bytes) else d[0] for d in data)
    assert b"BINARY.SIZE[2] 5" in flat
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert b"Gr=C3=BC=C3=9Fe" in got
    assert "Grüße".encode() in got
    assert b"\x00\x01\x02\x03\x04" in got
    assert any(g.startswith(b"Content-Type: text/plain") for g in got)
    m.logout()


def test_store_flags(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    for i in range(3):
        m.append("INBOX", None, None, msg("s%d" % i))
    m.select("INBOX")
    typ, data = m.store("1:2", "+FLAGS", "(\\Seen Work)")
    assert typ == "OK" and len(data) == 2
    assert b"\\Seen" in data[0] and b"Work" in data[0]
    typ, data = m.store("2", "-FLAGS", "(Work)")
    assert b"Work" not in data[0]
    typ, data = m.store("3", "FLAGS", "(\\Answered \\Draft)")
    assert b"\\Answered" in data[0] and b"\\Draft" in data[0]
    typ, data = m.store("1", "+FLAGS.SILENT", "(\\Flagged)")
    assert data == [None]
    typ, data = m.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
    assert b"UID 3" in data[0]
    typ, data = m.fetch("1:3", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"\\Flagged" in data[2]
    with pytest.raises(imaplib.IMAP4.error):
        m.store("1", "+FLAGS", "(\\Bogus)")
    m.logout()


def test_search(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(1704103200),
             msg("apple pie", "the quick brown fox\r\n"))
    m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(1704189600),
             msg("banana", "lazy dog\r\n", frm="Bob <bob@x.example>"))
    m.append("INBOX", None, imaplib.Time2Internaldate(1704276000),
             msg("cherry", "x" * 3000 + "\r\n",
                 extra="X-Tag: special\r\n"))
    m.select("INBOX")

    def s(*crit):
        typ, data = m.search(None, *crit)
        assert typ == "OK", (crit, data)
        return data[0].decode().split()

    assert s("ALL") == ["1", "2", "3"]
    assert s("SEEN") == ["1"] and s("UNSEEN") == ["2", "3"]
    assert s("FLAGGED") == ["2"]
    assert s('SUBJECT "PIE"') == ["1"]
    assert s("FROM", "bob") == ["2"]
    assert s("BODY", "brown") == ["1"]
    assert s("TEXT", "banana") == ["2"]
    assert s("HEADER", "X-Tag", "spec") == ["3"]
    assert s("HEADER", "X-Tag", '""') == ["3"]
    assert s("LARGER", "1000") == ["3"] and s("SMALLER", "1000") == ["1", "2"]
    assert s("OR", "SEEN", "FLAGGED") == ["1", "2"]
    assert s("NOT", "SEEN") == ["2", "3"]
    assert s("(SEEN", "SUBJECT", "apple)") == ["1"]
    assert s("2:*") == ["2", "3"] and s("UID", "1,3") == ["1", "3"]
    assert s("SINCE", "2-Jan-2024") == ["2", "3"]
    assert s("BEFORE", "2-Jan-2024") == ["1"]
    assert s("ON", "3-Jan-2024") == ["3"]
    assert s("SENTON", "1-Jan-2024") == ["1", "2", "3"]
    assert s("SENTBEFORE", "1-Jan-2024") == []
    # this session selected first: all three are \Recent, 1 is \Seen
    assert s("RECENT") == ["1", "2", "3"] and s("OLD") == []
    assert s("NEW") == ["2", "3"]
    typ, data = m.search("UTF-8", "SUBJECT", "cherry")
    assert data[0] == b"3"
    typ, data = m._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO"
    assert "BADCHARSET" in str(m.untagged_responses) or True
    typ, data = m.uid("SEARCH", "UNSEEN")
    assert data[0] == b"2 3"
    with pytest.raises(imaplib.IMAP4.error):
        m.search(None, "FOO")
    m.logout()


def test_esearch_and_searchres(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    for i in range(5):
        m.append("INBOX", "(\\Seen)" if i % 2 else None, None,
                 msg("e%d" % i))
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    line, unt = r.cmd("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert unt == [b'* ESEARCH (TAG "t3") MIN 1 MAX 5 COUNT 3 ALL 1,3,5']
    line, unt = r.cmd("UID SEARCH RETURN () 2:4")
    assert unt == [b'* ESEARCH (TAG "t4") UID ALL 2:4']
    line, unt = r.cmd("SEARCH RETURN (COUNT) SUBJECT nothing")
    assert unt == [b'* ESEARCH (TAG "t5") COUNT 0']
    line, unt = r.cmd("SEARCH RETURN (SAVE) SEEN")
    assert unt == [] and " OK " in line
    line, unt = r.cmd("FETCH $ (UID)")
    assert unt == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"]
    line, unt = r.cmd("UID SEARCH UID $")
    assert unt == [b"* SEARCH 2 4"]
    r.cmd("ENABLE IMAP4rev2")
    line, unt = r.cmd("SEARCH SEEN")
    assert unt == [b'* ESEARCH (TAG "t10") ALL 2,4']
    r.close()
    m.logout()


def test_copy_move_expunge(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    for i in range(4):
        m.append("INBOX", None, None, msg("c%d" % i))
    m.select("INBOX")
    typ, data = m.copy("1:2", "Archive")
    assert typ == "OK"
    assert re.search(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
    typ, data = m.copy("1", "Nope")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    typ, data = m._simple_command("MOVE", "2:3", "Trash")
    assert typ == "OK"
    assert m.untagged_responses.get("EXPUNGE") == [b"3", b"2"]
    m.untagged_responses.clear()
    assert m.select("INBOX")[1] == [b"2"]
    assert m.select("Trash")[1] == [b"2"]
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    assert data == [b"1"]
    # UID EXPUNGE only removes the given UIDs
    m.append("INBOX", "(\\Deleted)", None, msg("d1"))
    m.append("INBOX", "(\\Deleted)", None, msg("d2"))
    m.noop()
    typ, data = m.uid("EXPUNGE", "5")
    assert typ == "OK"
    typ, data = m.uid("SEARCH", "ALL")
    assert data[0] == b"4 6"
    # CLOSE expunges silently; UNSELECT does not
    m.close()
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "ALL")
    assert data[0] == b"4"
    m.store("1", "+FLAGS", "(\\Deleted)")
    m._simple_command("UNSELECT")
    assert m.select("INBOX")[1] == [b"1"]
    m.logout()


def test_multiappend_and_literal_plus(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    a, b = msg("m1"), msg("m2")
    r.send(b"x APPEND Drafts (\\Draft) {%d+}\r\n%s (\\Seen) {%d}\r\n"
           % (len(a), a, len(b)))
    assert r.line() == b"+ OK"
    r.send(b + b"\r\n")
    line, _ = r.tagged("x")
    assert re.match(r"x OK \[APPENDUID \d+ 1:2\]", line), line
    line, unt = r.cmd("STATUS Drafts (MESSAGES)")
    assert unt == [b'* STATUS "Drafts" (MESSAGES 2)']
    # a failing MULTIAPPEND stores nothing
    r.send(b"y APPEND Drafts {3+}\r\nabc (\\Bogus) {3+}\r\ndef\r\n")
    line, _ = r.tagged("y")
    assert line.startswith("y BAD"), line
    line, unt = r.cmd("STATUS Drafts (MESSAGES)")
    assert unt == [b'* STATUS "Drafts" (MESSAGES 2)']
    line, _ = r.cmd("APPEND Nope {3+}\r\nabc")
    assert "TRYCREATE" in line
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    r.close()


def test_quota(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    flat = [d.decode() if isinstance(d, bytes) else d for d in
            sum(data, [])] if isinstance(data[0], list) else data
    text = str(m.untagged_responses) + str(data)
    assert "INBOX" in text
    m.logout()


def test_idle_basic(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling"
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("pushed"))
    assert r.line() == b"* 1 EXISTS"
    # the idler saw it first: \Recent is its (RFC 3501 2.3.2)
    assert r.line() == b"* 1 RECENT"
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Flagged)")
    assert r.line() == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))"
    m.store("1", "+FLAGS", "(\\Deleted)")
    assert r.line() == b"* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))"
    m.expunge()
    assert r.line() == b"* 1 EXPUNGE"
    r.send("DONE\r\n")
    line, _ = r.tagged("i")
    assert line == "i OK Idle completed."
    m.logout()
    r.close()
