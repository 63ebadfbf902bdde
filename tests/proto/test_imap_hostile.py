"""Hostile input over raw sockets: bounded lines and literals, huge
sequence sets, deep SEARCH nesting, malformed commands (BAD, the
connection stays usable), too many errors (BYE), the pre-login timeout
is set, LOGIN refused on the plain port without TLS unless loopback."""
import time

from test_imap_helpers import Raw, login, msg, new_account


def test_malformed_commands_stay_usable(tern):
    r = Raw(tern)
    for bad in ("", "a1", "a2 FOO", "a3 LOGIN", '* NOOP', "a4 NOOP (",
                'a5 NOOP "abc', "a6 SELECT INBOX", "a7 FETCH 1 FLAGS"):
        if bad == "":
            r.send("\r\n")
            continue
        r.send(bad + "\r\n")
        ln = r.line().decode()
        assert " BAD " in ln, (bad, ln)
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    r.close()


def test_too_many_errors_bye(tern):
    r = Raw(tern)
    saw_bye = False
    for i in range(30):
        try:
            r.send("x%d FOO\r\n" % i)
            ln = r.line()
        except (EOFError, OSError):
            break
        if ln.startswith(b"* BYE"):
            saw_bye = True
            break
    assert saw_bye
    assert r.closed()


def test_long_line_and_big_literals(tern):
    r = Raw(tern)
    r.send(b"a1 NOOP " + b"x" * 200000 + b"\r\n")
    ln = r.line()
    assert b"BAD" in ln and b"TOOBIG" in ln
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    # a synchronising literal that is too big is refused before it is sent
    r.send("a2 LOGIN {999999999}\r\n")
    ln = r.line()
    assert ln.startswith(b"a2 NO [TOOBIG]"), ln
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    # a non-synchronising one is skipped
    r.send(b"a3 LOGIN {100000+}\r\n" + b"y" * 100000 + b" x\r\n")
    ln = r.line()
    assert ln.startswith(b"a3 NO [TOOBIG]"), ln
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    # a literal size nobody can skip ends the connection
    r.send("a4 LOGIN {99999999999999999999+}\r\n")
    assert r.line().startswith(b"* BYE")
    assert r.closed()


def test_plain_login_refused_on_non_loopback_rules(tern):
    # The quickstart allows plaintext on loopback; the capability says so.
    r = Raw(tern, tls=False)
    assert b"STARTTLS" in r.greeting
    assert b"AUTH=PLAIN" in r.greeting
    r.login(tern.user, tern.password)
    r.close()


def test_huge_sequence_sets_and_search_depth(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    for i in range(3):
        m.append("INBOX", None, None, msg("h%d" % i))
    m.logout()
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    t = time.time()
    line, unt = r.cmd("UID FETCH 1:4294967294 (UID)")
    assert " OK " in line and len(unt) == 3
    line, unt = r.cmd("UID FETCH 1:* (UID)")
    assert len(unt) == 3
    line, unt = r.cmd("UID STORE 1:4294967294 +FLAGS.SILENT (\\Seen)")
    assert " OK " in line
    line, unt = r.cmd("SEARCH UID 1:4294967294,5:4000000000")
    assert unt == [b"* SEARCH 1 2 3"]
    sets = ",".join("%d:%d" % (i * 10, i * 10 + 5) for i in range(1, 3000))
    line, unt = r.cmd("UID FETCH %s (UID)" % sets)
    assert " OK " in line
    assert time.time() - t < 30
    line, unt = r.cmd("FETCH 1:4 (UID)")
    assert " BAD " in line
    line, unt = r.cmd("FETCH 0 (UID)")
    assert " BAD " in line
    deep = "NOT " * 100 + "ALL"
    line, unt = r.cmd("SEARCH " + deep)
    assert " BAD " in line
    nested = "(" * 15 + "ALL" + ")" * 15
    line, unt = r.cmd("SEARCH " + nested)
    assert " OK " in line and unt == [b"* SEARCH 1 2 3"]
    line, unt = r.cmd("SEARCH " + "(" * 40 + "ALL" + ")" * 40)
    assert " BAD " in line
    line, unt = r.cmd("SEARCH " + " ".join(["OR ALL"] * 30) + " ALL")
    assert " OK " in line
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    r.close()


def test_bad_fetch_and_store_items(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("f"))
    m.logout()
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    for bad in ("FETCH 1 (BODY[HEADER.FIELDS ()])", "FETCH 1 (BODY[0])",
                "FETCH 1 (BODY[1.2.3.)", "FETCH 1 BODY[]<1.0>",
                "FETCH 1 (FLAGS ALL)", "FETCH 1 ()", "FETCH 1 (BINARY[TEXT])",
                "FETCH a (FLAGS)", "STORE 1 FLAGS.NOISY (\\Seen)",
                "STORE 1 +FLAGS (\\Recentx)", "COPY", "SEARCH SINCE 1-Foo-2000",
                "SEARCH LARGER x", "UID FOO 1", "APPEND"):
        line, _ = r.cmd(bad)
        assert " BAD " in line, (bad, line)
    line, _ = r.cmd("FETCH 1 (BODY.PEEK[5])")
    assert " OK " in line
    r.close()


def test_append_limits(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    caps = r.cmd("CAPABILITY")[1][0].decode()
    limit = int(caps.split("APPENDLIMIT=")[1].split()[0])
    r.send("a APPEND INBOX {%d}\r\n" % (limit + 1))
    ln = r.line()
    assert ln.startswith(b"a NO [TOOBIG]"), ln
    r.send("b APPEND INBOX {0}\r\n")
    ln = r.line()
    assert ln.startswith(b"b NO"), ln
    line, _ = r.cmd('APPEND INBOX "bad date" {3+}\r\nabc')
    assert " BAD " in line
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    r.close()


def test_state_rules(tern):
    r = Raw(tern)
    for c in ("SELECT INBOX", "LIST \"\" *", "FETCH 1 FLAGS", "IDLE"):
        line, _ = r.cmd(c)
        assert " BAD " in line, (c, line)
    r.login(tern.user, tern.password)
    line, _ = r.cmd("LOGIN a b")
    assert " BAD " in line
    line, _ = r.cmd("STARTTLS")
    assert " BAD " in line
    line, _ = r.cmd("FETCH 1 FLAGS")
    assert " BAD " in line
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling"
    r.send("NOT DONE\r\n")
    assert r.line().startswith(b"i BAD")
    line, _ = r.cmd("NOOP")
    assert " OK " in line
    r.close()


def test_starttls_drops_injected_plaintext(tern):
    r = Raw(tern, tls=False)
    # A command pipelined after STARTTLS must not run inside TLS.
    r.send("s STARTTLS\r\nx CAPABILITY\r\n")
    line, _ = r.tagged("s")
    assert line.startswith("s OK")
    import ssl
    r.sock = ssl._create_unverified_context().wrap_socket(r.sock)
    r.buf = b""
    line, unt = r.cmd("NOOP")
    assert line.startswith("t1 OK"), line
    assert unt == []
    r.close()
