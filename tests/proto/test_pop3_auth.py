"""POP3 authorization against a real ternd: plain-text logins refused
without TLS (RFC 2595), STLS discarding pipelined plaintext, AUTH PLAIN
and SCRAM-SHA-256 with and without an initial response (RFC 5034), the
[AUTH] response code (RFC 3206), cancel, and the failed-login delay."""
import time

import pytest

from pop3_helpers import Pop, b64, reconfigure, scram_client, unb64


@pytest.fixture
def strict(tern_factory):
    """A server that refuses password logins without TLS, even from
    loopback (the production default)."""
    t = tern_factory("strict")
    reconfigure(t, plaintext_auth_loopback="no")
    return t


def capa(p):
    assert p.cmd("CAPA").startswith("+OK")
    return p.multi()


def test_plaintext_refused_without_tls(strict):
    p = Pop(strict, "pop3")
    caps = capa(p)
    assert "STLS" in caps and "USER" not in caps
    assert "SASL SCRAM-SHA-256" in caps  # no PLAIN without TLS
    assert p.cmd("USER %s" % strict.user).startswith("-ERR [AUTH]")
    assert p.cmd("PASS %s" % strict.password).startswith("-ERR [AUTH]")
    cred = b64("\0%s\0%s" % (strict.user, strict.password))
    assert p.cmd("AUTH PLAIN " + cred).startswith("-ERR [AUTH]")
    assert p.cmd("AUTH").startswith("+OK")
    assert p.multi() == ["SCRAM-SHA-256"]
    # an unknown mechanism is that, not a TLS problem
    r = p.cmd("AUTH CRAM-MD5")
    assert r.startswith("-ERR") and "[AUTH]" not in r, r
    p.stls()
    caps = capa(p)
    assert "USER" in caps and "STLS" not in caps
    assert "SASL PLAIN SCRAM-SHA-256" in caps
    p.login(strict.user, strict.password)
    assert p.cmd("QUIT").startswith("+OK")
    p.close()


def test_scram_allowed_without_tls(strict):
    p = Pop(strict, "pop3")
    c = scram_client(strict.user, strict.password)
    r = p.cmd("AUTH SCRAM-SHA-256 " + b64(next(c)))
    assert r.startswith("+ "), r
    r = p.cmd(b64(c.send(unb64(r[2:]))))
    assert r.startswith("+ "), r
    r = p.cmd(c.send(unb64(r[2:])))  # empty line after server-final
    assert r.startswith("+OK"), r
    p.close()


def test_stls_discards_pipelined_plaintext(tern):
    p = Pop(tern, "pop3")
    # USER is pipelined in the same packet as STLS; the password sent
    # inside TLS is the right one, so had USER run, PASS would log in.
    p.send("STLS\r\nUSER %s\r\n" % tern.user)
    assert p.line().startswith("+OK")
    assert p.buf == b""
    from pop3_helpers import CTX
    p.sock = CTX.wrap_socket(p.sock)
    r = p.cmd("PASS %s" % tern.password)
    assert r.startswith("-ERR") and "USER first" in r, r
    p.login(tern.user, tern.password)
    p.cmd("QUIT")
    p.close()


def test_stls_errors(tern):
    p = Pop(tern, "pop3s")
    assert p.cmd("STLS").startswith("-ERR")  # already TLS
    p.close()
    p = Pop(tern, "pop3")
    assert p.cmd("STLS now").startswith("-ERR")
    p.stls()
    assert p.cmd("STLS").startswith("-ERR")
    p.login(tern.user, tern.password)
    assert p.cmd("STLS").startswith("-ERR")  # not in TRANSACTION
    assert p.cmd("QUIT").startswith("+OK")
    p.close()


def test_auth_plain_with_and_without_initial_response(tern):
    cred = b64("\0%s\0%s" % (tern.user, tern.password))
    p = Pop(tern)
    assert p.cmd("AUTH PLAIN " + cred).startswith("+OK")
    assert p.cmd("STAT").startswith("+OK")
    p.cmd("QUIT")
    p.close()
    p = Pop(tern)
    assert p.cmd("AUTH PLAIN") == "+ "  # empty challenge
    assert p.cmd(cred).startswith("+OK")
    p.cmd("QUIT")
    p.close()
    # authorization identity equal to the user is accepted too
    p = Pop(tern)
    cred = b64("%s\0%s\0%s" % (tern.user, tern.user, tern.password))
    assert p.cmd("auth plain " + cred).startswith("+OK")
    p.cmd("QUIT")
    p.close()


def test_auth_scram_sha_256(tern):
    for initial in (True, False):
        p = Pop(tern)
        c = scram_client(tern.user, tern.password)
        first = b64(next(c))
        if initial:
            r = p.cmd("AUTH SCRAM-SHA-256 " + first)
        else:
            assert p.cmd("AUTH SCRAM-SHA-256") == "+ "
            r = p.cmd(first)
        assert r.startswith("+ "), r
        r = p.cmd(b64(c.send(unb64(r[2:]))))
        assert r.startswith("+ "), r  # server-final as a challenge
        r = p.cmd(c.send(unb64(r[2:])))
        assert r.startswith("+OK"), r
        assert p.cmd("STAT").startswith("+OK")
        p.cmd("QUIT")
        p.close()


def test_auth_failures_keep_the_session_usable(tern):
    p = Pop(tern)
    bad = b64("\0%s\0wrong password" % tern.user)
    assert p.cmd("AUTH PLAIN " + bad).startswith("-ERR [AUTH]")
    assert p.cmd("AUTH CRAM-MD5").startswith("-ERR")
    assert p.cmd("AUTH PLAIN !!!notbase64").startswith("-ERR")
    # "=" is an empty initial response (RFC 5034 4); for PLAIN that is
    # the same as none: the server asks with an empty challenge.
    assert p.cmd("AUTH PLAIN =") == "+ "
    assert p.cmd("*").startswith("-ERR")
    assert p.cmd("AUTH PLAIN") == "+ "
    assert p.cmd("*").startswith("-ERR")  # RFC 5034 4: cancelled
    assert p.cmd("AUTH PLAIN") == "+ "
    assert p.cmd("A" * 5000).startswith("-ERR")  # over-long response
    assert p.cmd("STAT").startswith("-ERR")  # still AUTHORIZATION
    c = scram_client(tern.user, "wrong password")
    r = p.cmd("AUTH SCRAM-SHA-256 " + b64(next(c)))
    assert r.startswith("+ ")
    try:
        msg = b64(c.send(unb64(r[2:])))
    except AssertionError:
        pytest.fail("SCRAM client failed early")
    assert p.cmd(msg).startswith("-ERR [AUTH]")
    assert p.cmd("PASS x").startswith("-ERR")  # USER first
    assert p.cmd("AUTH").startswith("+OK")
    assert p.multi() == ["PLAIN", "SCRAM-SHA-256"]
    p.login(tern.user, tern.password)
    assert p.cmd("AUTH PLAIN x").startswith("-ERR")  # wrong state
    assert p.cmd("USER x").startswith("-ERR")
    p.cmd("QUIT")
    p.close()


def test_failed_login_delay(fresh_tern):
    """Failures beyond the free ones are answered late (the same throttle
    as SMTP AUTH); the delay holds pipelined commands, in order."""
    t = fresh_tern
    p = Pop(t)
    times = []
    for _ in range(3):
        assert p.cmd("USER %s" % t.user).startswith("+OK")
        start = time.monotonic()
        assert p.cmd("PASS wrong").startswith("-ERR [AUTH]")
        times.append(time.monotonic() - start)
    assert times[0] < 0.4 and times[1] < 0.4, times
    assert times[2] >= 0.45, times
    start = time.monotonic()
    p.send("USER %s\r\nPASS wrong\r\nUSER %s\r\nPASS %s\r\nSTAT\r\n"
           % (t.user, t.user, t.password))
    replies = [p.line() for _ in range(5)]
    assert time.monotonic() - start >= 0.9
    assert replies[0].startswith("+OK")
    assert replies[1].startswith("-ERR [AUTH]")
    assert replies[2].startswith("+OK") and replies[3].startswith("+OK")
    assert replies[4].startswith("+OK 0 ")
    p.cmd("QUIT")
    p.close()


def test_capa_lists(tern):
    """RFC 2449 5: the whole list, before and after login."""
    p = Pop(tern)  # implicit TLS
    assert p.greeting.startswith("+OK")
    assert capa(p) == ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                       "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION tern",
                       "USER", "SASL PLAIN SCRAM-SHA-256"]
    p.login(tern.user, tern.password)
    # no login mechanisms once logged in (RFC 2449 5 allows the change)
    assert capa(p) == ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                       "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION tern"]
    p.cmd("QUIT")
    p.close()
    p = Pop(tern, "pop3")  # loopback plaintext allowed by the quickstart
    assert capa(p)[-3:] == ["USER", "SASL PLAIN SCRAM-SHA-256", "STLS"]
    p.close()
