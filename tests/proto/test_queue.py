"""Outbound queue (issue 7): a sender tern delivers to MX hosts found
through a DNS server started here, on loopback only.

  dns      a tiny UDP DNS server (MX, A, AAAA; NXDOMAIN for unknown names)
  remote   a second tern for remote.test (MX mx.remote.test -> 127.0.0.1)
  sink     a Python SMTP server on 127.0.0.2 at the same port as remote's
           SMTP listener (so one remote_smtp_port serves both); its
           answers depend on the recipient: tempfail* 451 once, hold*
           451 while holding, reject* 550 5.1.1, else 250
  oldsink  the same on 127.0.0.4 without 8BITMIME, PIPELINING, DSN
  sender   the tern for example.test that sends through its queue

Every wait is bounded; every address is on 127.0.0.0/8.
"""
import email
import smtplib

import pytest

from conftest import Tern
from queue_helpers import (DNSServer, Sink, _loopback_ok, dsn_parts,
                           find_in_inbox, inbox, queue_empty, submit,
                           wait_for)

# ---------------------------------------------------------------- fixtures

RECORDS = {
    ("remote.test", "MX"): [(10, "mx.remote.test")],
    ("mx.remote.test", "A"): ["127.0.0.1"],
    ("sink.test", "MX"): [(10, "mx.sink.test")],
    ("mx.sink.test", "A"): ["127.0.0.2"],
    ("old.test", "MX"): [(10, "mx.old.test")],
    ("mx.old.test", "A"): ["127.0.0.4"],
    # equal preferences: both tried in random order; the first is dead
    ("multi.test", "MX"): [(10, "mx1.multi.test"), (20, "mx2.multi.test")],
    ("mx1.multi.test", "A"): ["127.0.0.3"],
    ("mx2.multi.test", "A"): ["127.0.0.2"],
    ("nullmx.test", "MX"): [(0, "")],
    ("implicit.test", "A"): ["127.0.0.2"],
    ("dead.test", "MX"): [(10, "mx.dead.test")],
    ("mx.dead.test", "A"): ["127.0.0.3"],
}


@pytest.fixture(scope="module")
def dns():
    d = DNSServer(RECORDS)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The remote tern and both sinks on the remote's SMTP port. Ports
    are random and other suites may run at the same time: when a sink
    cannot bind, start the remote again on other ports (bounded)."""
    if not _loopback_ok("127.0.0.2") or not _loopback_ok("127.0.0.4"):
        pytest.skip("127.0.0.2 and 127.0.0.4 are not usable here")
    t = Tern(tmp_path_factory.mktemp("remote"), domain="remote.test")
    for _attempt in range(5):
        t.start()
        sinks = []
        try:
            sinks.append(Sink("127.0.0.2", t.port("smtp")))
            sinks.append(Sink("127.0.0.4", t.port("smtp"), eightbit=False,
                              pipelining=False, dsn=False))
            break
        except OSError:
            for s in sinks:
                s.stop()
            t.stop()
            t.base = None
    else:
        pytest.fail("no port usable by the remote and the sinks")
    yield t, sinks[0], sinks[1]
    for s in sinks:
        s.stop()
    t.stop()


@pytest.fixture(scope="module")
def remote(net):
    return net[0]


@pytest.fixture(scope="module")
def sink(net):
    return net[1]


@pytest.fixture(scope="module")
def oldsink(net):
    return net[2]


def _sender_config(dns, remote, **extra):
    conf = {
        "dns_resolver": "127.0.0.1:%d" % dns.port,
        "remote_smtp_port": str(remote.port("smtp")),
        "queue_retry_min": "1s",
        "queue_retry_max": "2s",
        "queue_max_age": "1h",
    }
    conf.update(extra)
    return "\n".join("%s = %s" % kv for kv in conf.items())


@pytest.fixture(scope="module")
def sender(tmp_path_factory, dns, remote, sink, oldsink):
    t = Tern(tmp_path_factory.mktemp("sender"), domain="example.test",
             extra_config=_sender_config(dns, remote))
    t.start()
    yield t
    t.stop()


# ---------------------------------------------------------------- tests


def test_deliver_to_remote_tern(sender, remote):
    submit(sender, ["demo@remote.test"], "to remote tern")
    got = find_in_inbox(remote, "Subject: to remote tern")
    assert got, sender.log()[-3000:]
    assert wait_for(lambda: queue_empty(sender), timeout=10)
    # The remote offers STARTTLS: the queue used it.
    assert "tls-ok host=mx.remote.test" in sender.log()


def test_several_recipients_one_transaction_and_dot_stuffing(sender, sink):
    body = "line one\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n"
    submit(sender, ["a@sink.test", "b@sink.test"], "two rcpts", body=body)
    got = sink.find("Subject: two rcpts")
    assert len(got) == 1, sender.log()[-3000:]
    assert sorted(got[0]["rcpts"]) == ["a@sink.test", "b@sink.test"]
    assert got[0]["data"].endswith(body.encode())
    assert got[0]["ehlo"].startswith("EHLO ")


def test_remote_without_starttls(sender, sink):
    # The sink offers no STARTTLS: the queue delivers in plaintext and
    # never sends the command.
    submit(sender, ["notls@sink.test"], "no starttls")
    got = sink.find("Subject: no starttls")
    assert len(got) == 1, sender.log()[-3000:]
    assert "STARTTLS" not in sink.commands
    assert ("delivered to=<notls@sink.test> host=mx.sink.test tls=no"
            in sender.log())


def test_starttls_refused_carries_on_in_plaintext(sender, sink):
    # Offered but refused with 454 (RFC 3207 4): opportunistic TLS goes
    # on without it on the same connection.
    sink.refuse_starttls = True
    sink.renew()  # a session kept open for reuse has no STARTTLS offer
    try:
        submit(sender, ["tlsrefused@sink.test"], "starttls refused")
        got = sink.find("Subject: starttls refused")
    finally:
        sink.refuse_starttls = False
        sink.renew()
    assert len(got) == 1, sender.log()[-3000:]
    assert "STARTTLS" in sink.commands
    log = sender.log()
    assert "starttls-refused host=mx.sink.test code=454" in log
    assert "delivered to=<tlsrefused@sink.test> host=mx.sink.test tls=no" \
        in log


def test_tempfail_is_retried(sender, sink):
    submit(sender, ["tempfail1@sink.test"], "retry me")
    got = sink.find("Subject: retry me", timeout=30)
    assert got, sender.log()[-3000:]
    assert sink.seen["tempfail1@sink.test"] >= 2
    assert wait_for(lambda: queue_empty(sender), timeout=10)


def test_reject_bounces_to_sender(sender, sink):
    submit(sender, ["reject1@sink.test", "fine1@sink.test"], "bounce me")
    got = find_in_inbox(sender, "reject1@sink.test")
    assert got, sender.log()[-3000:]
    msg, parts = dsn_parts(got[0])
    assert msg["From"].startswith("Mail Delivery System")
    report = parts[1].as_string()
    assert "Final-Recipient: rfc822; reject1@sink.test" in report
    assert "Action: failed" in report
    assert "Status: 5.1.1" in report
    assert "550 5.1.1" in report
    assert "fine1@sink.test" not in report
    assert b"Subject: bounce me" in got[0]
    assert sink.find("Subject: bounce me")[0]["rcpts"] == ["fine1@sink.test"]
    assert wait_for(lambda: queue_empty(sender), timeout=10)


def test_dsn_notify_never_suppresses_bounce(sender, sink):
    with smtplib.SMTP(sender.host, sender.port("submission"), timeout=30) as s:
        s.ehlo("client.test")
        s.login(sender.user, sender.password)
        s.sendmail(sender.user, ["reject2@sink.test"],
                   b"Subject: never tell\r\n\r\nx\r\n",
                   rcpt_options=["NOTIFY=NEVER"])
    assert wait_for(lambda: "reject2@sink.test" in sink.seen, timeout=20)
    assert wait_for(lambda: queue_empty(sender), timeout=10)
    assert not [m for m in inbox(sender) if b"never tell" in m]


def _send_notify(t, rcpt, subject, notify):
    with smtplib.SMTP(t.host, t.port("submission"), timeout=30) as s:
        s.ehlo("client.test")
        s.login(t.user, t.password)
        s.sendmail(t.user, [rcpt], b"Subject: %s\r\n\r\nx\r\n"
                   % subject.encode(), rcpt_options=["NOTIFY=" + notify])


def test_relayed_dsn_only_from_a_server_without_dsn(sender, sink, oldsink):
    """RFC 3461 6.2.2: NOTIFY=SUCCESS handed to a server that does not
    offer DSN gets an "Action: relayed" report from us, with the header
    only; a server that offers DSN got NOTIFY and reports itself; without
    SUCCESS there is no success report at all."""
    _send_notify(sender, "r1@old.test", "relay report", "SUCCESS,FAILURE")
    got = find_in_inbox(sender, "r1@old.test")
    assert got, sender.log()[-3000:]
    msg, parts = dsn_parts(got[0])
    assert msg["Subject"] == "Successful Mail Relay Report"
    report = parts[1].as_string()
    assert "Final-Recipient: rfc822; r1@old.test" in report
    assert "Action: relayed" in report and "Status: 2." in report
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert oldsink.find("Subject: relay report")
    assert "NOTIFY=" not in " ".join(oldsink.commands)

    _send_notify(sender, "r2@sink.test", "remote reports", "SUCCESS")
    _send_notify(sender, "r3@old.test", "no success asked", "FAILURE")
    assert sink.find("Subject: remote reports")
    assert oldsink.find("Subject: no success asked")
    assert wait_for(lambda: queue_empty(sender), timeout=10)
    assert "NOTIFY=SUCCESS" in " ".join(sink.commands)
    reports = [m for m in inbox(sender) if b"delivery-status" in m]
    assert not [m for m in reports if b"r2@sink.test" in m or
                b"r3@old.test" in m]
    assert sender.log().count("dsn-sent action=relayed") == 1


def test_null_mx_bounces(sender):
    submit(sender, ["user@nullmx.test"], "null mx")
    got = find_in_inbox(sender, "user@nullmx.test")
    assert got, sender.log()[-3000:]
    _msg, parts = dsn_parts(got[0])
    assert "Status: 5.1.10" in parts[1].as_string()


def test_unknown_domain_bounces(sender):
    submit(sender, ["user@nosuchdomain.test"], "no such domain")
    got = find_in_inbox(sender, "user@nosuchdomain.test")
    assert got, sender.log()[-3000:]
    _msg, parts = dsn_parts(got[0])
    assert "Status: 5.1.2" in parts[1].as_string()


def test_implicit_mx(sender, sink):
    submit(sender, ["someone@implicit.test"], "implicit mx")
    assert sink.find("Subject: implicit mx"), sender.log()[-3000:]


def test_next_mx_when_first_is_down(sender, sink):
    submit(sender, ["x@multi.test"], "second mx")
    assert sink.find("Subject: second mx"), sender.log()[-3000:]


def test_8bit_converted_for_old_server(sender, oldsink):
    text = "Grüße aus Köln, ça va?\r\n"
    submit(sender, ["u@old.test"], "eight bit", body=text,
           extra_headers="MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n")
    got = oldsink.find("Subject: eight bit")
    assert got, sender.log()[-3000:]
    data = got[0]["data"]
    assert all(b < 0x80 for b in data)
    assert b"BODY=8BITMIME" not in got[0]["mail"].encode()
    m = email.message_from_bytes(data)
    assert m["Content-Transfer-Encoding"] == "quoted-printable"
    assert m.get_payload(decode=True).decode("utf-8") == text.replace(
        "\r\n", "\n") or m.get_payload(decode=True).decode("utf-8") == text
    # No PIPELINING and HELO-less EHLO worked; no DSN params sent.
    assert "NOTIFY=" not in " ".join(oldsink.commands)


def test_8bit_passed_with_8bitmime(sender, sink):
    text = "Grüße\r\n"
    submit(sender, ["e@sink.test"], "eight pass", body=text,
           extra_headers="MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n")
    got = sink.find("Subject: eight pass")
    assert got, sender.log()[-3000:]
    assert "BODY=8BITMIME" in got[0]["mail"]
    assert text.encode() in got[0]["data"]


def test_kill9_loses_nothing(sender, sink):
    subjects = ["held %d" % i for i in range(5)]
    sink.holding = True
    for i, subj in enumerate(subjects):
        submit(sender, ["hold%d@sink.test" % i], subj)
    # Every one has been tried at least once and is still queued.
    assert wait_for(lambda: all(sink.seen.get("hold%d@sink.test" % i, 0)
                                for i in range(5)), timeout=20)
    sender.kill9()
    sink.holding = False
    sender.start()
    for subj in subjects:
        got = sink.find("Subject: " + subj, timeout=30)
        assert len(got) == 1, (subj, sender.log()[-3000:])
    assert wait_for(lambda: queue_empty(sender), timeout=10)


def test_unreachable_bounces_at_max_age(tmp_path_factory, dns, remote):
    t = Tern(tmp_path_factory.mktemp("expire"), domain="example.test",
             extra_config=_sender_config(dns, remote, queue_max_age="3s"))
    t.start()
    try:
        submit(t, ["user@dead.test"], "too old")
        got = find_in_inbox(t, "user@dead.test", timeout=30)
        assert got, t.log()[-3000:]
        _msg, parts = dsn_parts(got[0])
        report = parts[1].as_string()
        assert "Action: failed" in report
        assert "gave up after" in report
        assert wait_for(lambda: queue_empty(t), timeout=10)
    finally:
        t.stop()


def test_smarthost_without_tls_refused_by_default(tmp_path_factory, dns,
                                                 remote, sink):
    """queue_smarthost_tls_verify defaults to yes: the sink offers no
    STARTTLS, so nothing is sent to it and the mail stays queued."""
    t = Tern(tmp_path_factory.mktemp("smartv"), domain="example.test",
             extra_config=_sender_config(
                 dns, remote,
                 queue_smarthost="127.0.0.2:%d" % remote.port("smtp")))
    t.start()
    try:
        submit(t, ["someone@elsewhere.test"], "plain smarthost refused")
        assert wait_for(lambda: "does not offer STARTTLS" in t.log(),
                        timeout=30), t.log()[-3000:]
        assert not sink.find("Subject: plain smarthost refused", timeout=1)
        assert not queue_empty(t)
        assert "host-failed host=127.0.0.2" in t.log()
    finally:
        t.stop()


def test_smarthost(tmp_path_factory, dns, remote, sink):
    t = Tern(tmp_path_factory.mktemp("smart"), domain="example.test",
             extra_config=_sender_config(
                 dns, remote,
                 queue_smarthost="127.0.0.2:%d" % remote.port("smtp"),
                 queue_smarthost_tls_verify="no"))
    t.start()
    try:
        # No DNS record for this domain: only the smarthost can take it.
        submit(t, ["someone@elsewhere.test"], "via smarthost")
        got = sink.find("Subject: via smarthost")
        assert got, t.log()[-3000:]
        assert got[0]["rcpts"] == ["someone@elsewhere.test"]
        assert wait_for(lambda: queue_empty(t), timeout=10)
    finally:
        t.stop()


def test_delay_warning_once(tmp_path_factory, dns, remote, sink):
    """queue_delay_warning: one RFC 3464 "delayed" DSN per message still
    queued after that long; none for NOTIFY without DELAY; none for the
    null sender (a message forwarded by an alias from MAIL FROM:<>)."""
    t = Tern(tmp_path_factory.mktemp("delay"), domain="example.test",
             extra_config=_sender_config(dns, remote,
                                         queue_delay_warning="2s"))
    t.start()
    held = ["holdwarn@sink.test", "holdquiet@sink.test",
            "holdnull@sink.test"]
    sink.holding = True
    try:
        r = t.ctl("alias", "add", "fwdnull@example.test", held[2])
        assert r.returncode == 0, r.stdout + r.stderr
        submit(t, [held[0]], "slow one")
        with smtplib.SMTP(t.host, t.port("submission"), timeout=30) as s:
            s.login(t.user, t.password)
            s.sendmail(t.user, [held[1]],
                       b"Subject: slow quiet\r\n\r\nx\r\n",
                       rcpt_options=["NOTIFY=FAILURE"])
        with smtplib.SMTP(t.host, t.port("smtp"), timeout=30) as s:
            s.sendmail("", ["fwdnull@example.test"],
                       b"Subject: slow null\r\n\r\nx\r\n")
        got = find_in_inbox(t, "Action: delayed", timeout=30)
        assert len(got) == 1, t.log()[-3000:]
        msg, parts = dsn_parts(got[0])
        assert msg["Subject"] == "Delayed Mail (still being retried)"
        assert msg["To"] == "<%s>" % t.user
        report = parts[1].as_string()
        assert "Final-Recipient: rfc822; holdwarn@sink.test" in report
        assert "Status: 4.3.0" in report
        assert "Will-Retry-Until: " in report
        assert "451 4.3.0 held" in report
        assert "holdquiet" not in report and "holdnull" not in report
        assert parts[2].get_content_type() == "text/rfc822-headers"
        assert b"Subject: slow one" in got[0]
        # Every held message is retried twice more, well past the 2 s:
        # still only that one warning.
        seen = {a: sink.seen.get(a, 0) for a in held}
        assert wait_for(lambda: all(sink.seen.get(a, 0) >= seen[a] + 2
                                    for a in held), timeout=30), seen
        dsns = [m for m in inbox(t) if b"delivery-status" in m]
        assert len(dsns) == 1, [m[:300] for m in dsns]
        assert t.log().count("dsn-sent action=delayed") == 1
        # Released: delivered, and no further report to anyone.
        sink.holding = False
        for subj in ("slow one", "slow quiet", "slow null"):
            assert len(sink.find("Subject: " + subj)) == 1, subj
        assert wait_for(lambda: queue_empty(t), timeout=15)
        assert len([m for m in inbox(t) if b"delivery-status" in m]) == 1
        assert "dsn-sent action=failed" not in t.log()
    finally:
        sink.holding = False
        t.stop()


def test_delay_warning_off(tmp_path_factory, dns, remote, sink):
    t = Tern(tmp_path_factory.mktemp("nodelay"), domain="example.test",
             extra_config=_sender_config(dns, remote,
                                         queue_delay_warning="0"))
    t.start()
    sink.holding = True
    try:
        submit(t, ["holdoff@sink.test"], "slow off")
        assert wait_for(lambda: sink.seen.get("holdoff@sink.test", 0) >= 4,
                        timeout=30)
        sink.holding = False
        assert len(sink.find("Subject: slow off")) == 1
        assert wait_for(lambda: queue_empty(t), timeout=15)
        assert "dsn-sent" not in t.log()
        assert not [m for m in inbox(t) if b"delivery-status" in m]
    finally:
        sink.holding = False
        t.stop()


def _reuse_tern(tmp_path_factory, dns, remote, name):
    # One connection per domain at a time: the next message for the
    # domain waits for the first session, then takes over its connection.
    t = Tern(tmp_path_factory.mktemp(name), domain="example.test",
             extra_config=_sender_config(dns, remote,
                                         queue_max_per_domain="1"))
    t.start()
    return t


def test_connection_reuse(tmp_path_factory, dns, remote, sink):
    t = _reuse_tern(tmp_path_factory, dns, remote, "reuse")
    try:
        before = sink.connections
        rsets = sink.commands.count("RSET")
        subjects = ["reuse %d" % i for i in range(3)]
        for i, subj in enumerate(subjects):
            submit(t, ["reuse%d@sink.test" % i], subj)
        for subj in subjects:
            assert len(sink.find("Subject: " + subj)) == 1, t.log()[-3000:]
        assert wait_for(lambda: queue_empty(t), timeout=10)
        # Three transactions on one connection, RSET between them.
        assert sink.connections - before == 1, t.log()[-3000:]
        assert sink.commands.count("RSET") - rsets == 2
        assert t.log().count("reused=yes") == 2
    finally:
        t.stop()


def test_connection_reuse_stale(tmp_path_factory, dns, remote, sink):
    # The idle connection answers RSET with 421 and closes: the next
    # message goes on a new connection, nothing is lost or bounced.
    t = _reuse_tern(tmp_path_factory, dns, remote, "stale")
    sink.rset_reply = b"421 4.3.2 closing idle connection\r\n"
    try:
        before = sink.connections
        subjects = ["stale %d" % i for i in range(2)]
        for i, subj in enumerate(subjects):
            submit(t, ["stale%d@sink.test" % i], subj)
        for subj in subjects:
            assert len(sink.find("Subject: " + subj)) == 1, t.log()[-3000:]
        assert wait_for(lambda: queue_empty(t), timeout=10)
        assert sink.connections - before == 2
        assert "reuse-failed host=mx.sink.test" in t.log()
        assert not [m for m in inbox(t) if b"delivery-status" in m]
    finally:
        sink.rset_reply = None
        t.stop()
