"""SMTP items of issue 3 that the other suites did not cover: enhanced
status codes on every reply, BDAT without valid recipients, catch-all and
alias senders, quota after DATA (552 5.2.2), connection limits per IP and
in total, DATA timeout and a slow client, failed-AUTH delays and the
per-account block, group commit across connections, the IPv6 trace.
Servers that need their own configuration run with workers = 1, so that
per-worker counters (connections, login failures) are deterministic."""
import re
import threading
import time

from test_smtp_helpers import (Raw, auth_plain, body_of, connect, messages,
                               wait_for)

ESC = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}( |$)")


def esc(r, command, want):
    """Send command, expect reply code want with an RFC 3463 code on
    every line (RFC 2034 3)."""
    code, lines = r.cmd(command)
    assert code == want, (command, code, lines)
    for ln in lines:
        assert ESC.match(ln), (command, code, lines)
    return lines


def test_enhanced_status_codes_everywhere(tern):
    d = tern.domain
    r = connect(tern)
    esc(r, "NOOP", 250)
    esc(r, "RSET", 250)
    esc(r, "VRFY someone", 252)
    esc(r, "HELP", 214)
    esc(r, "DATA", 503)
    esc(r, "MAIL FROM:<x@remote.example> SIZE=10", 250)
    esc(r, "MAIL FROM:<x@remote.example>", 503)
    esc(r, "DATA", 554)
    esc(r, "RCPT TO:<nobody@%s>" % d, 550)
    esc(r, "RCPT TO:<someone@remote.example>", 554)
    esc(r, "RCPT TO:<a@b@%s>" % d, 501)
    esc(r, "RCPT TO:<%s> FOO=1" % tern.user, 555)
    esc(r, "RCPT TO:<%s> NOTIFY=SOMETIMES" % tern.user, 501)
    esc(r, "RCPT TO:<%s>" % tern.user, 250)
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: esc\r\n\r\nx\r\n.\r\n")
    code, lines = r.reply()
    assert code == 250 and ESC.match(lines[0])
    r.close()
    r = connect(tern)
    esc(r, "VRFY", 501)
    esc(r, "EXPN list", 502)
    esc(r, "BOGUS", 500)
    esc(r, "RSET now", 501)
    esc(r, "MAIL TO:<x@remote.example>", 501)
    esc(r, "MAIL FROM:<x@remote.example> BODY=BINARYMIME", 555)
    esc(r, "AUTH PLAIN AGZvbwBiYXI=", 538)
    r.close()
    # (a new session: stay under smtp_max_errors)
    r = connect(tern)
    esc(r, "STARTTLS", 220)
    r.sock = __import__("ssl")._create_unverified_context().wrap_socket(
        r.sock)
    assert r.cmd("EHLO client.example")[0] == 250
    esc(r, "STARTTLS", 503)
    esc(r, "AUTH NONSENSE", 504)
    assert r.cmd("AUTH LOGIN")[0] == 334
    esc(r, "*", 501)
    esc(r, "AUTH PLAIN " + __import__("base64").b64encode(
        b"\0" + tern.user.encode() + b"\0" + tern.password.encode()
    ).decode(), 235)
    esc(r, "AUTH PLAIN AGZvbwBiYXI=", 503)
    esc(r, "QUIT", 221)
    r.close()
    r = connect(tern, "submission")
    esc(r, "MAIL FROM:<%s>" % tern.user, 530)
    r.close()


def test_bdat_without_valid_recipients(tern):
    before = len(messages(tern, tern.user))
    r = connect(tern)
    # Pipelined: MAIL ok, the only RCPT refused, BDAT LAST: RFC 3030
    # wants the chunk read and then "no valid recipients" (as DATA).
    r.send(b"MAIL FROM:<x@remote.example>\r\nRCPT TO:<nobody@%s>\r\n"
           b"BDAT 5 LAST\r\nabcde" % tern.domain.encode())
    assert r.code() == 250
    assert r.code() == 550
    code, lines = r.reply()
    assert code == 554 and lines[0].startswith("5.5.1"), (code, lines)
    # The chunk was not run as commands; the session goes on.
    assert r.cmd("NOOP")[0] == 250
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    r.close()
    assert len(messages(tern, tern.user)) == before


def test_catch_all_and_alias_sender(tern):
    other = "catch.example"
    assert tern.ctl("domain", "add", other).returncode == 0
    r = tern.ctl("alias", "add", "@" + other, tern.user)
    assert r.returncode == 0, r.stdout + r.stderr
    r = tern.ctl("alias", "add", "sales@" + tern.domain, tern.user)
    assert r.returncode == 0, r.stdout + r.stderr
    data = b"Subject: catch-all\r\n\r\nanyone\r\n"
    r = connect(tern)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<whoever@%s>" % other)[0] == 250
    assert r.cmd("RCPT TO:<Someone.Else@%s>" % other.upper())[0] == 250
    # the catch-all domain is local: relay tricks still go nowhere
    code, lines = r.cmd("RCPT TO:<@%s:x@remote.example>" % other)
    assert code == 554 and lines[0].startswith("5.7.1")
    assert r.cmd("DATA")[0] == 354
    r.send(data + b".\r\n")
    assert r.code() == 250
    r.close()
    got = messages(tern, tern.user)
    assert sum(1 for g in got if g.endswith(data)) == 1
    # Submission: an alias of the user is an allowed sender, an address
    # of another domain's catch-all is not the user's own.
    r = connect(tern, "submissions")
    assert auth_plain(r, tern.user, tern.password)[0] == 235
    assert r.cmd("MAIL FROM:<sales@%s>" % tern.domain)[0] == 250
    assert r.cmd("RSET")[0] == 250
    code, lines = r.cmd("MAIL FROM:<boss@remote.example>")
    assert code == 553 and lines[0].startswith("5.7.1")
    r.close()


def test_sending_limit_shown_by_ternctl(tern):
    r = connect(tern, "submissions")
    assert auth_plain(r, tern.user, tern.password)[0] == 235
    show = tern.ctl("account", "show", tern.user)
    m = re.search(r"sent\s+(\d+) in the last hour", show.stdout)
    assert m, show.stdout
    n = int(m.group(1))
    assert r.cmd("MAIL FROM:<%s>" % tern.user)[0] == 250
    assert r.cmd("RCPT TO:<a@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: count\r\n\r\nx\r\n.\r\n")
    assert r.code() == 250
    r.close()
    show = tern.ctl("account", "show", tern.user)
    m = re.search(r"sent\s+(\d+) in the last hour", show.stdout)
    assert m and int(m.group(1)) == n + 2, show.stdout


QUOTA_CONFIG = """plan q4k {
\tquota = 4K
}
"""


def test_quota_after_data(tern_factory):
    t = tern_factory(name="quota", extra_config="workers = 1\n")
    from test_smtp_helpers import reconfigure
    reconfigure(t, append=QUOTA_CONFIG)
    q = "q@" + t.domain
    t.add_account(q, "Quota-pass-123", plan="q4k")
    big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 100
    r = connect(t)
    # SIZE known at RCPT: refused at once, temporarily (RFC 3463 4.2.2).
    assert r.cmd("MAIL FROM:<x@remote.example> SIZE=%d" % len(big))[0] == 250
    code, lines = r.cmd("RCPT TO:<%s>" % q)
    assert code == 452 and lines[0].startswith("4.2.2"), (code, lines)
    assert r.cmd("RSET")[0] == 250
    # Size unknown at RCPT: the only recipient cannot take it after DATA.
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % q)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(big + b".\r\n")
    code, lines = r.reply()
    assert code == 552 and lines[0].startswith("5.2.2"), (code, lines)
    assert messages(t, q) == []
    # A small one still fits; the session went on.
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % q)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: small\r\n\r\nfits\r\n.\r\n")
    assert r.code() == 250
    r.close()
    assert len(messages(t, q)) == 1


def test_connection_limits(tern_factory):
    t = tern_factory(name="connlim", extra_config=(
        "workers = 1\nmax_connections = 3\nmax_connections_per_ip = 2\n"))
    # Connections just closed by the client (the start-up probes) may
    # still count for a moment: retry until greeted.
    held = []
    try:
        for _ in range(2):
            held.append(wait_for(lambda: _greeted(t, None), timeout=10))
            assert held[-1]
        # third from the same address: per-IP limit
        r = Raw(t.host, t.port("smtp"))
        code, lines = r.reply()
        assert code == 421 and lines[0].startswith("4.7.0"), (code, lines)
        assert r.closed()
        r.close()
        # another address is fine until the total is reached; past it
        # the worker closes the connection before any greeting
        held.append(wait_for(lambda: _greeted(t, "127.0.0.2"), timeout=10))
        assert held[-1]
        r = Raw(t.host, t.port("smtp"), source="127.0.0.3")
        try:
            code, lines = r.reply()
            assert code == 421 and lines[0].startswith("4."), (code, lines)
        except (EOFError, ConnectionResetError):
            pass
        assert r.closed()
        r.close()
        # the held sessions still work
        for h in held:
            assert h.cmd("NOOP")[0] == 250
    finally:
        for h in held:
            if h:
                h.close()
    # once they are gone, new connections are accepted again
    wait_for(lambda: _greets(t), timeout=10)
    assert _greets(t)


def _greeted(t, source):
    """A Raw connection that got its 220, or None."""
    r = Raw(t.host, t.port("smtp"), source=source)
    try:
        if r.code() == 220:
            return r
    except (EOFError, ConnectionResetError):
        pass
    r.close()
    return None


def _greets(t):
    r = Raw(t.host, t.port("smtp"))
    try:
        return r.code() == 220
    except EOFError:
        return False
    finally:
        r.close()


def test_data_timeout_and_slow_client(tern_factory):
    t = tern_factory(name="timeouts", extra_config=(
        "smtp_timeout = 2s\nsmtp_data_timeout = 2s\n"))
    # A slow but live client: pauses shorter than the timeout, the whole
    # transaction much longer than it.
    r = connect(t)
    assert r.cmd("MAIL FROM:<slow@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % t.user)[0] == 250
    assert r.cmd("DATA")[0] == 354
    data = b"Subject: slow\r\n\r\n" + b"".join(
        b"line %d\r\n" % i for i in range(8))
    start = time.time()
    for i in range(0, len(data), 10):
        r.send(data[i:i + 10])
        time.sleep(0.5)
    r.send(b".\r\n")
    assert r.code() == 250
    assert time.time() - start > 3
    r.close()
    body_of(messages(t, t.user)[-1], data)
    # A client that stops inside DATA: 421 4.4.2, nothing stored.
    before = len(messages(t, t.user))
    r = connect(t)
    assert r.cmd("MAIL FROM:<stall@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % t.user)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: stalled\r\n\r\nhalf a mess")
    start = time.time()
    code, lines = r.reply()
    assert code == 421 and lines[0].startswith("4.4.2"), (code, lines)
    assert 1.5 < time.time() - start < 10
    assert r.closed()
    r.close()
    assert len(messages(t, t.user)) == before


def test_failed_auth_delay_and_account_block(tern_factory):
    t = tern_factory(name="auththrottle", extra_config="workers = 1\n")
    victim = "victim@" + t.domain
    pw = "Victim-pass-123"
    t.add_account(victim, pw)
    # Two failures are answered at once, the third after a delay (the
    # log says which delay each answer got; the clock bounds it below,
    # never above, so a slow machine cannot fail the test).
    r = connect(t, "submission")
    for i in range(3):
        start = time.time()
        code, lines = auth_plain(r, victim, "wrong-%d" % i)
        took = time.time() - start
        assert code == 535 and lines[0].startswith("5.7.8")
        if i == 2:
            assert took >= 0.45, took
    r.close()
    assert re.findall(r"auth-failed user=%s delay=(\d+)" % re.escape(victim),
                      t.log()) == ["0", "0", "500"]
    # The right password is delayed as long (no early success for
    # parallel guessers), and then works.
    r = connect(t, "submission", source="127.0.0.2")
    start = time.time()
    assert auth_plain(r, victim, pw)[0] == 235
    assert time.time() - start >= 0.45
    r.close()
    assert "auth-ok user=%s delay=500" % victim in t.log()
    # Many failures for one account from many addresses, in parallel,
    # and many for unknown names from one address...
    b64 = __import__("base64").b64encode
    nobody = "nobody@" + t.domain
    conns = []
    for i in range(20):
        c = connect(t, "submission", source="127.0.1.%d" % (10 + i))
        c.send("AUTH PLAIN %s\r\n" % b64(
            b"\0" + victim.encode() + b"\0wrong").decode())
        conns.append(c)
    for i in range(17):
        c = connect(t, "submission")
        c.send("AUTH PLAIN %s\r\n" % b64(
            b"\0" + nobody.encode() + b"\0wrong").decode())
        conns.append(c)
    assert wait_for(lambda: t.log().count("auth-failed user=%s" % victim)
                    >= 23 and t.log().count("auth-failed user=%s" % nobody)
                    >= 17, timeout=20)
    try:
        # ... block that account from every address, right password or
        # not, and that address for every account.
        r = connect(t, "submission", source="127.0.0.3")
        code, lines = auth_plain(r, victim, pw)
        assert code == 454 and lines[0].startswith("4.7.0"), (code, lines)
        r.close()
        r = connect(t, "submission")
        code, lines = auth_plain(r, t.user, t.password)
        assert code == 454 and lines[0].startswith("4.7.0"), (code, lines)
        r.close()
        # other accounts from other addresses are not affected
        r = connect(t, "submission", source="127.0.0.4")
        assert auth_plain(r, t.user, t.password)[0] == 235
        r.close()
    finally:
        for c in conns:
            c.close()


def test_group_commit_across_connections(tern_factory):
    t = tern_factory(name="groupcommit", extra_config="workers = 1\n")
    n = 16
    sent = []
    for attempt in range(3):
        conns = []
        for i in range(n):
            r = connect(t)
            assert r.cmd("MAIL FROM:<g%d@remote.example>" % i)[0] == 250
            assert r.cmd("RCPT TO:<%s>" % t.user)[0] == 250
            assert r.cmd("DATA")[0] == 354
            data = b"Subject: gc %d %d\r\n\r\nbody\r\n" % (attempt, i)
            r.send(data)
            sent.append(data)
            conns.append(r)
        go = threading.Barrier(n)

        def finish(c):
            go.wait(timeout=10)
            c.send(b".\r\n")

        th = [threading.Thread(target=finish, args=(c,)) for c in conns]
        for x in th:
            x.start()
        for x in th:
            x.join(timeout=20)
        for c in conns:
            assert c.code() == 250
            c.close()
        batches = [int(b) for b in re.findall(r"batch=(\d+)", t.log())]
        if max(batches) > 1:
            break
    # Every 250 came after its commit: all messages are readable now.
    got = messages(t, t.user)
    for data in sent:
        assert sum(1 for g in got if g.endswith(data)) == 1
    assert max(batches) > 1, batches


def test_received_ipv6_literal(tern_factory):
    t = tern_factory(name="ipv6")
    from test_smtp_helpers import reconfigure
    t.host = "::1"
    reconfigure(t, replace=[("address = 127.0.0.1", "address = ::1")])
    data = b"Subject: v6\r\n\r\nover IPv6\r\n"
    r = connect(t)
    assert r.cmd("MAIL FROM:<v6@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % t.user)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(data + b".\r\n")
    assert r.code() == 250
    r.close()
    hdr = body_of(messages(t, t.user)[-1], data)
    assert b"(unknown [IPv6:::1])" in hdr, hdr


def test_postmaster_always_accepted(tern_factory):
    t = tern_factory(name="postmaster")
    data = b"Subject: to postmaster\r\n\r\nhello\r\n"
    r = connect(t)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    # RFC 5321 4.5.1 and 4.1.1.3, without any alias configured
    assert r.cmd("RCPT TO:<Postmaster>")[0] == 250
    assert r.cmd("RCPT TO:<POSTMASTER@%s>" % t.domain.upper())[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(data + b".\r\n")
    assert r.code() == 250
    # other names of the domain stay unknown
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    code, lines = r.cmd("RCPT TO:<postmasters@%s>" % t.domain)
    assert code == 550 and lines[0].startswith("5.1.1")
    r.close()
    got = messages(t, t.user)
    assert sum(1 for g in got if g.endswith(data)) == 1
    # an alias decides where it goes
    boss = "boss@" + t.domain
    t.add_account(boss, "Boss-pass-1234")
    assert t.ctl("alias", "add", "postmaster@" + t.domain,
                 boss).returncode == 0
    r = connect(t)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<postmaster@%s>" % t.domain)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(data + b".\r\n")
    assert r.code() == 250
    r.close()
    assert len(messages(t, boss)) == 1


def test_sending_limit_parallel_sessions(tern_factory):
    t = tern_factory(name="ratelimit")
    from test_smtp_helpers import reconfigure
    reconfigure(t, append="plan two {\n\tsend_per_hour = 2\n}\n")
    user = "two@" + t.domain
    t.add_account(user, "Two-pass-12345", plan="two")
    sessions = []
    for _ in range(2):
        r = connect(t, "submissions")
        assert auth_plain(r, user, "Two-pass-12345")[0] == 235
        assert r.cmd("MAIL FROM:<%s>" % user)[0] == 250
        # both pass the RCPT check: nothing is sent yet
        assert r.cmd("RCPT TO:<%s>" % user)[0] == 250
        assert r.cmd("RCPT TO:<%s>" % t.user)[0] == 250
        assert r.cmd("DATA")[0] == 354
        sessions.append(r)
    a, b = sessions
    a.send(b"Subject: first\r\n\r\nx\r\n.\r\n")
    assert a.code() == 250
    b.send(b"Subject: second\r\n\r\nx\r\n.\r\n")
    code, lines = b.reply()
    assert code == 451 and lines[0].startswith("4.7.1"), (code, lines)
    assert "try again after" in lines[0]
    a.close()
    b.close()
    assert [m for m in messages(t, t.user) if b"Subject: second" in m] == []
    assert len([m for m in messages(t, t.user)
                if b"Subject: first" in m]) == 1


def _dsns(t):
    from test_smtp_helpers import queue_entries
    return [q for q in queue_entries(t) if q[0] == ""]


def test_dsn_for_local_outcomes_after_250(tern_factory):
    t = tern_factory(name="dsn", extra_config="workers = 1\n")
    from test_smtp_helpers import reconfigure
    reconfigure(t, append=QUOTA_CONFIG)
    q = "q@" + t.domain
    t.add_account(q, "Quota-pass-123", plan="q4k")
    big = (b"Subject: big-dsn\r\nMessage-ID: <big@test>\r\n\r\n" +
           (b"body-line-" + b"y" * 68 + b"\r\n") * 100)

    def send(r, sender, rcpts, data, mail_params=""):
        assert r.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))[0] == 250
        for rc in rcpts:
            assert r.cmd("RCPT TO:%s" % rc)[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(data + b".\r\n")
        return r.reply()

    # The full mailbox is found only after DATA; the other recipient
    # takes the message, so 250 -- and the sender gets a failure report.
    r = connect(t)
    code, _ = send(r, "x@remote.example", ["<%s>" % q, "<%s>" % t.user], big)
    assert code == 250
    assert messages(t, q) == []
    d = _dsns(t)
    assert len(d) == 1
    sender, envid, ret, blob, rcpts = d[0]
    assert [x[0] for x in rcpts] == ["x@remote.example"]
    assert b"Content-Type: multipart/report; report-type=delivery-status" \
        in blob
    assert b"Auto-Submitted: auto-replied\r\n" in blob
    assert b"Final-Recipient: rfc822; %s\r\n" % q.encode() in blob
    assert b"Action: failed\r\nStatus: 5.2.2\r\n" in blob
    assert b"Content-Type: text/rfc822-headers" in blob
    assert b"Subject: big-dsn" in blob and b"body-line-" not in blob
    assert t.user.encode() not in blob.split(b"message/delivery-status")[1]
    # RET=FULL, ENVID and ORCPT come back; NOTIFY=NEVER gets nothing.
    code, _ = send(r, "x@remote.example",
                   ["<%s> ORCPT=rfc822;orig+40remote.example" % q,
                    "<%s> NOTIFY=NEVER" % t.user], big,
                   " RET=FULL ENVID=env+2B7")
    assert code == 250
    d = _dsns(t)
    assert len(d) == 2
    blob = d[1][3]
    assert b"Original-Envelope-Id: env+7\r\n" in blob
    assert b"Original-Recipient: rfc822;orig@remote.example\r\n" in blob
    assert b"Content-Type: message/rfc822" in blob and b"body-line-" in blob
    code, _ = send(r, "x@remote.example",
                   ["<%s> NOTIFY=NEVER" % q, "<%s>" % t.user], big)
    assert code == 250 and len(_dsns(t)) == 2
    # NOTIFY=SUCCESS: a "delivered" report.
    code, _ = send(r, "x@remote.example",
                   ["<%s> NOTIFY=SUCCESS,FAILURE" % t.user],
                   b"Subject: ok\r\n\r\nfine\r\n")
    assert code == 250
    d = _dsns(t)
    assert len(d) == 3
    assert b"Action: delivered\r\nStatus: 2.0.0\r\n" in d[2][3]
    assert b"(Success)" in d[2][3]
    # RET=FULL of a message over 1 MiB returns its header only.
    huge = b"Subject: huge-dsn\r\n\r\n" + (b"z" * 998 + b"\r\n") * 1200
    code, _ = send(r, "x@remote.example", ["<%s>" % q, "<%s>" % t.user],
                   huge, " RET=FULL")
    assert code == 250
    d = _dsns(t)
    assert len(d) == 4
    assert b"Subject: huge-dsn" in d[3][3] and b"zzzz" not in d[3][3]
    assert b"Content-Type: text/rfc822-headers" in d[3][3]
    assert len(d[3][3]) < 20000
    # The null sender never gets a report.
    code, _ = send(r, "", ["<%s>" % q, "<%s>" % t.user], big)
    assert code == 250 and len(_dsns(t)) == 4
    r.close()
    # A local sender finds the report in its INBOX, from <>.
    before = len(messages(t, t.user))
    r = connect(t, "submissions")
    assert auth_plain(r, t.user, t.password)[0] == 235
    code, _ = send(r, t.user, ["<%s>" % q, "<friend@remote.example>"], big)
    assert code == 250
    r.close()
    got = messages(t, t.user)
    assert len(got) == before + 1
    assert got[-1].startswith(b"Return-Path: <>\r\n")
    assert b"Action: failed\r\nStatus: 5.2.2\r\n" in got[-1]
    assert len(_dsns(t)) == 4


def test_junk_commands_limited(tern):
    r = connect(tern)
    # 100 free; each further one also counts as an error; 10 errors
    # close the session.
    r.send("NOOP\r\n" * 60 + "RSET\r\n" * 20 + "VRFY x\r\n" * 10 +
           "HELP\r\n" * 10 + "NOOP\r\n" * 9)
    codes = [r.code() for _ in range(109)]
    assert 421 not in codes
    r.send("NOOP\r\n")
    assert r.code() == 250
    code, lines = r.reply()
    assert code == 421 and lines[0].startswith("4.7.0"), (code, lines)
    assert r.closed()
    r.close()
    # an accepted message starts the count again
    r = connect(tern)
    for _ in range(2):
        r.send("NOOP\r\n" * 95)
        assert [r.code() for _ in range(95)] == [250] * 95
        assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
        assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(b"Subject: junk\r\n\r\nx\r\n.\r\n")
        assert r.code() == 250
    r.send("NOOP\r\n" * 95)
    assert [r.code() for _ in range(95)] == [250] * 95
    assert r.cmd("QUIT")[0] == 221
    r.close()


def test_remote_local_parts_keep_their_case(tern):
    from test_smtp_helpers import queue_entries
    r = connect(tern, "submissions")
    assert auth_plain(r, tern.user, tern.password)[0] == 235
    assert r.cmd("MAIL FROM:<%s>" % tern.user)[0] == 250
    for rc in ("Bob@remote.example", "bob@remote.example",
               "Bob@REMOTE.example"):
        assert r.cmd("RCPT TO:<%s>" % rc)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: case-test\r\n\r\nx\r\n.\r\n")
    assert r.code() == 250
    r.close()
    e = [q for q in queue_entries(tern) if b"case-test" in q[3]]
    assert len(e) == 1
    # RFC 5321 2.4: only the domain is case-insensitive
    assert [x[0] for x in e[0][4]] == ["Bob@remote.example",
                                        "bob@remote.example"]
