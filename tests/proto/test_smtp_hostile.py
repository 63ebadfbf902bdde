"""Raw-socket transcripts of hostile SMTP clients: pipelining in one
packet, smuggling variants, BDAT chunks, relay tricks, oversized lines,
error limits, STARTTLS injection, AUTH abuse."""
import base64
import ssl

import pytest

from test_smtp_helpers import (Raw, auth_plain, body_of, connect, messages,
                               queue_entries)


def rcpt_transaction(r, tern, sender="x@remote.example"):
    assert r.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 250


def test_pipelining_one_packet(tern):
    before = len(messages(tern, tern.user))
    r = connect(tern, ehlo=False)
    r.send("EHLO pipe.example\r\nMAIL FROM:<p@remote.example>\r\n"
           "RCPT TO:<%s>\r\nRCPT TO:<nobody@%s>\r\n"
           "RCPT TO:<x@remote.example>\r\nDATA\r\n" % (tern.user, tern.domain))
    assert r.code() == 250
    assert r.code() == 250
    assert r.code() == 250
    code, lines = r.reply()
    assert code == 550 and lines[0].startswith("5.1.1")
    code, lines = r.reply()
    assert code == 554 and lines[0].startswith("5.7.1")
    assert r.code() == 354
    data = b"Subject: pipe\r\n\r\nbody\r\n"
    # Content, end, and the next transaction in one packet.
    r.send(data + b".\r\nMAIL FROM:<q@remote.example>\r\nRCPT TO:<%s>\r\n"
           b"DATA\r\n" % tern.user.encode())
    assert r.code() == 250
    assert r.code() == 250
    assert r.code() == 250
    assert r.code() == 354
    r.send(b"second\r\n.\r\nQUIT\r\n")
    assert r.code() == 250
    assert r.code() == 221
    got = messages(tern, tern.user)
    assert len(got) == before + 2
    body_of(got[-2], data)
    body_of(got[-1], b"second\r\n")


def test_data_pipelined_with_content_refused(tern):
    before = len(messages(tern, tern.user))
    r = connect(tern)
    rcpt_transaction(r, tern)
    r.send("DATA\r\nSubject: early\r\n\r\nx\r\n.\r\n")
    code, lines = r.reply()
    assert code == 503
    # The early bytes were dropped, not run as commands nor stored.
    assert r.cmd("NOOP")[0] == 250
    r.close()
    assert len(messages(tern, tern.user)) == before


@pytest.mark.parametrize("variant", [
    b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r\n.\r\r\n",
])
def test_smuggling_variants_never_end_data(tern, variant):
    before = len(messages(tern, tern.user))
    q_before = len(queue_entries(tern))
    r = connect(tern)
    rcpt_transaction(r, tern)
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: smuggle\r\n\r\nbody" + variant +
           b"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"
           b"Subject: smuggled\r\n\r\nevil\r\n" % tern.user.encode())
    # Nothing so far may be answered: DATA has not ended.
    r.send(b"\r\n.\r\n")
    code, lines = r.reply()
    assert code == 550 and lines[0].startswith("5.6.0"), (code, lines)
    assert r.cmd("NOOP")[0] == 250
    r.close()
    assert len(messages(tern, tern.user)) == before
    assert len(queue_entries(tern)) == q_before


def test_dot_stuffing_exact(tern):
    r = connect(tern)
    rcpt_transaction(r, tern)
    assert r.cmd("DATA")[0] == 354
    wire = (b"Subject: dots\r\n\r\n..\r\n...\r\n..x\r\n. \r\nx.\r\n"
            b".\tt\r\n\r\n..\r\n.\r\n")
    want = (b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n \r\nx.\r\n"
            b"\tt\r\n\r\n.\r\n")
    r.send(wire)
    assert r.code() == 250
    r.close()
    body_of(messages(tern, tern.user)[-1], want)


def test_mail_loop_refused(tern):
    """RFC 5321 6.3: more than smtp_max_received (100) Received: fields
    is a loop: 554 5.4.6 after DATA and after BDAT LAST, nothing stored;
    exactly 100 is accepted, and the session goes on."""
    before = len(messages(tern, tern.user))
    hops = "".join("Received: from h%d by h%d; Tue, 1 Dec 2026 10:00:00 "
                   "+0000\r\n" % (i, i + 1) for i in range(101))
    looped = hops + "Subject: loop\r\n\r\nReceived: in the body\r\n"
    r = connect(tern)
    rcpt_transaction(r, tern)
    assert r.cmd("DATA")[0] == 354
    r.send(looped + ".\r\n")
    code, text = r.reply()
    assert code == 554 and text[0].startswith("5.4.6"), text
    rcpt_transaction(r, tern)
    data = looped.encode()
    r.send(b"BDAT %d LAST\r\n" % len(data) + data)
    code, text = r.reply()
    assert code == 554 and text[0].startswith("5.4.6"), text
    ok = hops.split("\r\n", 1)[1] + "Subject: 100 hops\r\n\r\nhi\r\n"
    rcpt_transaction(r, tern)
    assert r.cmd("DATA")[0] == 354
    r.send(ok + ".\r\n")
    assert r.code() == 250
    r.close()
    stored = messages(tern, tern.user)
    assert len(stored) == before + 1


def test_empty_message_and_binary_bytes(tern):
    r = connect(tern)
    rcpt_transaction(r, tern)
    assert r.cmd("DATA")[0] == 354
    r.send(b".\r\n")
    assert r.code() == 250
    rcpt_transaction(r, tern)
    assert r.cmd("DATA")[0] == 354
    data = b"Subject: 8bit\r\n\r\n\xff\xfe caf\xc3\xa9\r\n"
    r.send(data + b".\r\n")
    assert r.code() == 250
    r.close()
    body_of(messages(tern, tern.user)[-1], data)


def test_bdat_chunks(tern):
    r = connect(tern)
    rcpt_transaction(r, tern)
    parts = [b"Subject: bdat\r\n\r\n", b"line with\r\n.\r\n dot\r\n",
             b"last\r\n"]
    r.send(b"BDAT %d\r\n%s" % (len(parts[0]), parts[0]))
    code, lines = r.reply()
    assert code == 250
    # Two chunks pipelined in one packet, the second LAST.
    r.send(b"BDAT %d\r\n%sBDAT %d LAST\r\n%s" % (
        len(parts[1]), parts[1], len(parts[2]), parts[2]))
    assert r.code() == 250
    assert r.code() == 250
    # BDAT then MAIL pipelined: the next transaction follows at once.
    r.send(b"MAIL FROM:<b@remote.example>\r\nRCPT TO:<%s>\r\n"
           b"BDAT 0 LAST\r\n" % tern.user.encode())
    assert r.code() == 250
    assert r.code() == 250
    assert r.code() == 250
    r.close()
    got = messages(tern, tern.user)
    body_of(got[-2], b"".join(parts))
    assert got[-1].startswith(b"Return-Path: <b@remote.example>\r\n")


def test_bdat_mixed_with_data_and_bad_sequence(tern):
    before = len(messages(tern, tern.user))
    r = connect(tern)
    # BDAT with no transaction: its chunk is read and dropped, then 503.
    r.send(b"BDAT 10\r\nNOOP\r\nNOOP")
    assert r.code() == 503
    assert r.cmd("NOOP")[0] == 250
    rcpt_transaction(r, tern)
    r.send(b"BDAT 5\r\nabcde")
    assert r.code() == 250
    assert r.cmd("DATA")[0] == 503
    assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 503
    assert r.cmd("RSET")[0] == 250
    # Bare LF inside BDAT content is refused like in DATA.
    rcpt_transaction(r, tern)
    r.send(b"BDAT 8 LAST\r\na\nb\r\nccc")
    code, lines = r.reply()
    assert code == 550 and lines[0].startswith("5.6.0")
    # A BDAT without a usable size ends the session (its bytes would
    # otherwise be read as commands).
    r.send(b"BDAT x\r\n")
    assert r.code() == 501
    assert r.code() == 421
    assert r.closed()
    assert len(messages(tern, tern.user)) == before


RELAY_CASES = [
    ("user@remote.example", 554),
    ("user@remote.example.", 554),
    ("demo%%remote.example@%(d)s", 550),
    ("@%(d)s:user@remote.example", 554),
    ("@a.example,@b.example:user@remote.example", 554),
    ('"user@remote.example"@%(d)s', 550),
    ("user@[127.0.0.1]", 554),
    ("user@[IPv6:::1]", 554),
    ("%(u)s@remote.example", 554),
    ("DEMO@%(D)s", 250),
    ("demo@%(d)s.", 250),
    ("@remote.example:demo@%(d)s", 250),
    ("demo@%(d)s@remote.example", 501),
    ("demo@%(d)s..", 501),
    ("nobody@%(d)s", 550),
]


def test_relay_tricks_denied(tern):
    q_before = len(queue_entries(tern))
    r = connect(tern)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    for addr, want in RELAY_CASES:
        a = addr % {"d": tern.domain, "D": tern.domain.upper(), "u": "demo"}
        code, lines = r.cmd("RCPT TO:<%s>" % a)
        assert code == want, (a, code, lines)
        if want == 554:
            assert lines[0].startswith("5.7.1")
        # keep under the error limit
        if code >= 500:
            r.cmd("RSET")
            r.close()
            r = connect(tern)
            assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    r.close()
    assert len(queue_entries(tern)) == q_before


def test_oversized_line(tern):
    r = connect(tern)
    r.send("NOOP " + "x" * 5000 + "\r\n")
    code, lines = r.reply()
    assert code == 500 and lines[0].startswith("5.5.2")
    assert r.cmd("NOOP")[0] == 250
    # A huge line without any LF is discarded too, then the session goes on.
    r.send("x" * 300000)
    r.send("\r\nNOOP\r\n")
    assert r.code() == 500
    assert r.code() == 250
    r.close()


def test_oversized_size_parameter(tern):
    r = connect(tern)
    code, lines = r.cmd("MAIL FROM:<x@remote.example> SIZE=99999999999999")
    assert code == 552 and lines[0].startswith("5.3.4")
    assert r.cmd("MAIL FROM:<x@remote.example> SIZE=-1")[0] == 501
    assert r.cmd("MAIL FROM:<x@remote.example> FOO=BAR")[0] == 555
    assert r.cmd("MAIL FROM:<x@remote.example> BODY=BINARYMIME")[0] == 555
    r.close()


def test_sequence_errors(tern):
    r = connect(tern, ehlo=False)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 503
    assert r.cmd("HELO client.example")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 503
    assert r.cmd("MAIL FROM:<x@remote.example> SIZE=10")[0] == 555
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 503
    assert r.cmd("DATA")[0] == 554
    r.close()


def test_error_limit_closes(tern):
    r = connect(tern)
    codes = []
    for _ in range(10):
        codes.append(r.cmd("BOGUS")[0])
    assert codes[:9] == [500] * 9
    code, lines = r.reply()
    assert code == 421 and lines[0].startswith("4.7.0")
    assert r.closed()


def test_http_request_closes(tern):
    r = Raw(tern.host, tern.port("smtp"))
    assert r.code() == 220
    r.send("GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    assert r.code() == 521
    assert r.closed()


def test_starttls_injection_discarded(tern):
    r = connect(tern)
    r.send("STARTTLS\r\nNOOP\r\nMAIL FROM:<inj@remote.example>\r\n")
    code, _ = r.reply()
    assert code == 220
    r.sock = ssl._create_unverified_context().wrap_socket(r.sock)
    r.buf = b""
    # The first reply inside TLS answers our EHLO, not the injected NOOP.
    code, lines = r.cmd("EHLO client.example")
    assert code == 250 and lines[0].startswith("mail.")
    # The injected MAIL was not run: a MAIL now is not "nested".
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    r.close()


def test_auth_rules_submission(tern):
    r = connect(tern, "smtp")
    code, lines = r.cmd("AUTH PLAIN AGZvbwBiYXI=")
    assert code == 538 and lines[0].startswith("5.7.11")
    r.close()
    r = connect(tern, "submission")
    code, lines = r.cmd("MAIL FROM:<%s>" % tern.user)
    assert code == 530 and lines[0].startswith("5.7.0")
    r.starttls()
    assert r.cmd("EHLO client.example")[0] == 250
    code, lines = auth_plain(r, tern.user, "wrong-password")
    assert code == 535 and lines[0].startswith("5.7.8")
    code, _ = r.cmd("AUTH LOGIN")
    assert code == 334
    code, lines = r.cmd("*")
    assert code == 501
    assert r.cmd("AUTH NONSENSE")[0] == 504
    assert r.cmd("AUTH PLAIN !!!")[0] == 501
    assert auth_plain(r, tern.user, tern.password)[0] == 235
    code, lines = r.cmd("MAIL FROM:<someone.else@%s>" % tern.domain)
    assert code == 553 and lines[0].startswith("5.7.1")
    code, lines = r.cmd("MAIL FROM:<>")
    assert code == 553
    assert r.cmd("MAIL FROM:<%s>" % tern.user.upper())[0] == 250
    r.close()


def test_auth_plain_authzid(tern):
    r = connect(tern, "submissions")
    # authzid different from authcid: refused.
    tok = base64.b64encode(b"other@" + tern.domain.encode() + b"\0" +
                           tern.user.encode() + b"\0" +
                           tern.password.encode()).decode()
    code, _ = r.cmd("AUTH PLAIN " + tok)
    assert code in (535, 501)
    r.close()
    r = connect(tern, "submissions")
    tok = base64.b64encode(tern.user.encode() + b"\0" + tern.user.encode() +
                           b"\0" + tern.password.encode()).decode()
    assert r.cmd("AUTH PLAIN " + tok)[0] == 235
    r.close()
