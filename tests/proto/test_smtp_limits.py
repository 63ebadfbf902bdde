"""SMTP limits on a server with a small configuration: message size,
recipients, quota per recipient, sending limit per plan, command timeout,
plaintext AUTH refused without TLS, the Sent copy, drain on SIGTERM."""
import smtplib
import ssl

import pytest

from test_smtp_helpers import (auth_plain, body_of, connect, messages,
                               reconfigure)

CONFIG = """smtp_max_message_size = 20K
smtp_max_recipients = 3
smtp_timeout = 2s
smtp_save_sent = yes
plan tiny {
\tquota_messages = 1
}
plan limited {
\tsend_per_hour = 2
\tmax_recipients = 2
}
plan small {
\tmax_message_size = 2K
}
"""

PW = "Secret-pass-123"


@pytest.fixture(scope="module")
def lim(tmp_path_factory):
    from conftest import Tern
    t = Tern(tmp_path_factory.mktemp("smtplimits"))
    t.start()
    try:
        reconfigure(t, replace=[("plaintext_auth_loopback = yes",
                                 "plaintext_auth_loopback = no")],
                    append=CONFIG)
        for addr, plan in (("full", "tiny"), ("limited", "limited"),
                           ("small", "small")):
            t.add_account("%s@%s" % (addr, t.domain), PW, plan=plan)
        yield t
    finally:
        t.stop()


def send_raw(r, data):
    assert r.cmd("DATA")[0] == 354
    r.send(data + b".\r\n")
    return r.reply()


def test_message_too_big(lim):
    r = connect(lim)
    assert r.cmd("MAIL FROM:<x@remote.example> SIZE=30000")[0] == 552
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % lim.user)[0] == 250
    code, lines = send_raw(r, b"Subject: big\r\n\r\n" +
                           (b"x" * 998 + b"\r\n") * 25)
    assert code == 552 and lines[0].startswith("5.3.4")
    # The session goes on after the refusal.
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % lim.user)[0] == 250
    code, _ = send_raw(r, b"Subject: fits\r\n\r\n" + b"y" * 1000 + b"\r\n")
    assert code == 250
    r.close()


def test_plan_message_size_per_recipient(lim):
    small = "small@" + lim.domain
    r = connect(lim)
    assert r.cmd("MAIL FROM:<x@remote.example> SIZE=5000")[0] == 250
    code, lines = r.cmd("RCPT TO:<%s>" % small)
    assert code == 552 and lines[0].startswith("5.3.4")
    assert r.cmd("RCPT TO:<%s>" % lim.user)[0] == 250
    r.cmd("RSET")
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % small)[0] == 250
    code, _ = send_raw(r, b"Subject: s\r\n\r\n" + b"z" * 3000 + b"\r\n")
    assert code == 552
    r.close()


def test_too_many_recipients(lim):
    r = connect(lim)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    for i in range(3):
        assert r.cmd("RCPT TO:<%s>" % lim.user)[0] == 250
    code, lines = r.cmd("RCPT TO:<%s>" % lim.user)
    assert code == 452 and lines[0].startswith("4.5.3")
    code, _ = send_raw(r, b"Subject: three\r\n\r\nx\r\n")
    assert code == 250
    r.close()


def test_quota_full_does_not_block_others(lim):
    full = "full@" + lim.domain
    r = connect(lim)
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % full)[0] == 250
    assert send_raw(r, b"Subject: q1\r\n\r\nfirst\r\n")[0] == 250
    assert len(messages(lim, full)) == 1
    assert r.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    code, lines = r.cmd("RCPT TO:<%s>" % full)
    assert code == 452 and lines[0].startswith("4.2.2")
    assert r.cmd("RCPT TO:<%s>" % lim.user)[0] == 250
    data = b"Subject: q2\r\n\r\nsecond\r\n"
    assert send_raw(r, data)[0] == 250
    r.close()
    assert len(messages(lim, full)) == 1
    body_of(messages(lim, lim.user)[-1], data)


def test_plaintext_auth_refused_without_tls(lim):
    r = connect(lim, "submission")
    code, lines = r.cmd("EHLO client.example")
    assert not any(ln.startswith("AUTH") for ln in lines)
    code, lines = auth_plain(r, lim.user, lim.password)
    assert code == 538 and lines[0].startswith("5.7.11")
    r.starttls()
    code, lines = r.cmd("EHLO client.example")
    assert any(ln.startswith("AUTH") for ln in lines)
    assert auth_plain(r, lim.user, lim.password)[0] == 235
    r.close()


def test_sending_limit(lim):
    user = "limited@" + lim.domain
    r = connect(lim, "submissions")
    assert auth_plain(r, user, PW)[0] == 235
    assert r.cmd("MAIL FROM:<%s>" % user)[0] == 250
    assert r.cmd("RCPT TO:<a@remote.example>")[0] == 250
    assert r.cmd("RCPT TO:<b@remote.example>")[0] == 250
    # plan max_recipients = 2 applies before the hourly limit
    assert r.cmd("RCPT TO:<c@remote.example>")[0] == 452
    assert send_raw(r, b"Subject: l1\r\n\r\nx\r\n")[0] == 250
    assert r.cmd("MAIL FROM:<%s>" % user)[0] == 250
    code, lines = r.cmd("RCPT TO:<%s>" % lim.user)
    assert code == 451 and lines[0].startswith("4.7.1")
    assert "try again after" in lines[0] and "UTC" in lines[0]
    r.close()
    show = lim.ctl("account", "show", user)
    assert show.returncode == 0


def test_sent_copy_without_duplicate(lim):
    data = (b"From: %s\r\nSubject: sent-copy\r\n"
            b"Message-ID: <sent-copy-1@test>\r\n\r\nbody\r\n"
            % lim.user.encode())
    for _ in range(2):
        with smtplib.SMTP_SSL(lim.host, lim.port("submissions"),
                              context=ssl._create_unverified_context()) as s:
            s.login(lim.user, lim.password)
            s.sendmail(lim.user, ["friend@remote.example"], data)
    sent = [m for m in messages(lim, lim.user, "Sent") if m.endswith(data)]
    assert len(sent) == 1
    assert sent[0] == data


def test_command_timeout(lim):
    r = connect(lim)
    # smtp_timeout = 2s: the server says goodbye on its own.
    code, lines = r.reply()
    assert code == 421 and lines[0].startswith("4.4.2")
    assert r.closed()
