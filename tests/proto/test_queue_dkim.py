"""DKIM signing by the outbound queue (issue 7): keys made with
`ternctl dkim generate`, mail sent through the queue to an SMTP sink,
and the received bytes verified with an independent verifier, Debian's
python3-dkim (Ed25519 through python3-nacl), using the TXT record that
`ternctl dkim show` prints. Loopback only; every wait is bounded.
"""
import re
import smtplib

import pytest

from conftest import Tern
from queue_helpers import DNSServer, Sink, submit, wait_for

dkim = pytest.importorskip("dkim")


@pytest.fixture(scope="module")
def sink():
    s = Sink("127.0.0.1", 0)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dns():
    d = DNSServer({
        ("sink.test", "MX"): [(10, "mx.sink.test")],
        ("mx.sink.test", "A"): ["127.0.0.1"],
    })
    yield d
    d.stop()


@pytest.fixture(scope="module")
def sender(tmp_path_factory, dns, sink):
    conf = "\n".join([
        "dns_resolver = 127.0.0.1:%d" % dns.port,
        "remote_smtp_port = %d" % sink.port,
        "queue_retry_min = 1s",
        "queue_retry_max = 2s",
    ])
    t = Tern(tmp_path_factory.mktemp("dkim"), domain="example.test",
             extra_config=conf)
    t.start()
    yield t
    t.stop()


def txt_record(t, domain):
    """The TXT value (quoted strings joined) that ternctl publishes."""
    r = t.ctl("dkim", "show", domain)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if "IN TXT" in l][0]
    name = line.split()[1] if line.startswith("record:") else line.split()[0]
    return name, "".join(re.findall(r'"([^"]*)"', line)).encode()


def verify(data, name, record):
    seen = []

    def dnsfunc(qname, timeout=5):
        seen.append(qname)
        return record if qname.decode().lower() == name.lower() else None

    ok = dkim.verify(data, dnsfunc=dnsfunc)
    return ok, seen


def generate(t, domain, *args):
    r = t.ctl("dkim", "generate", domain, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "._domainkey.%s. IN TXT" % domain in r.stdout
    assert "PRIVATE" not in r.stdout
    return r.stdout


def sent(sink, subject, sender):
    got = sink.find("Subject: " + subject, timeout=30)
    assert len(got) == 1, sender.log()[-3000:]
    return got[0]


def sig_tags(data):
    head = data.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", head,
                  re.S | re.M | re.I)
    assert m, head
    value = re.sub(rb"\s+", b"", m.group(1)).decode()
    return dict(t.split("=", 1) for t in value.split(";") if t)


def test_rsa_signature_verifies(sender, sink):
    out = generate(sender, "example.test", "--selector", "rsa1")
    assert "k=rsa; p=" in out and "rsa-sha256 (2048 bits)" in out
    name, record = txt_record(sender, "example.test")
    assert name == "rsa1._domainkey.example.test."
    submit(sender, ["a@sink.test"], "rsa signed",
           body="Hello  there \r\n\r\n.dot line\r\n\r\n\r\n",
           extra_headers="Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n")
    data = sent(sink, "rsa signed", sender)["data"]
    assert data.startswith(b"DKIM-Signature:")
    tags = sig_tags(data)
    assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "example.test" and tags["s"] == "rsa1"
    # From oversigned; every present header of the set signed.
    assert tags["h"].split(":")[:2] == ["from", "from"]
    for h in ("to", "subject", "date", "message-id"):
        assert h in tags["h"].split(":")
    ok, seen = verify(data, name, record)
    assert ok, (data, sender.log()[-3000:])
    assert seen == [b"rsa1._domainkey.example.test."]
    # The verifier is not a rubber stamp.
    assert not verify(data.replace(b"Hello", b"Jello"), name, record)[0]
    assert not verify(b"From: <evil@example.test>\r\n" + data, name,
                      record)[0]


def test_ed25519_signature_verifies(sender, sink):
    assert sender.ctl("domain", "add", "ed.test").returncode == 0
    sender.add_account("ed@ed.test", "edpassword")
    out = generate(sender, "ed.test", "--selector", "ed1", "--algorithm",
                   "ed25519")
    assert "k=ed25519; p=" in out
    name, record = txt_record(sender, "ed.test")
    msg = ("From: Ed <ed@ed.test>\r\nTo: <b@sink.test>\r\n"
           "Subject: ed signed\r\nMessage-ID: <ed1@ed.test>\r\n\r\n"
           "hi from ed\r\n")
    with smtplib.SMTP(sender.host, sender.port("submission"),
                      timeout=30) as s:
        s.login("ed@ed.test", "edpassword")
        s.sendmail("ed@ed.test", ["b@sink.test"], msg.encode())
    data = sent(sink, "ed signed", sender)["data"]
    tags = sig_tags(data)
    assert tags["a"] == "ed25519-sha256" and tags["d"] == "ed.test"
    assert tags["s"] == "ed1"
    ok, _seen = verify(data, name, record)
    assert ok, (data, sender.log()[-3000:])
    assert not verify(data.replace(b"hi from", b"hi frum"), name, record)[0]


def test_signed_after_8bit_conversion(sender, sink):
    # example.test has its rsa1 key from the first test (or make one).
    if sender.ctl("dkim", "show", "example.test").returncode != 0:
        generate(sender, "example.test", "--selector", "rsa1")
    name, record = txt_record(sender, "example.test")
    sink.eightbit = False
    sink.renew()  # sessions kept open for reuse still offer 8BITMIME
    try:
        submit(sender, ["c@sink.test"], "eight signed",
               body="Grüße aus Köln\r\n",
               extra_headers="MIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Transfer-Encoding: 8bit\r\n")
        got = sent(sink, "eight signed", sender)
    finally:
        sink.eightbit = True
        sink.renew()
    data = got["data"]
    assert all(b < 0x80 for b in data)
    assert b"quoted-printable" in data
    ok, _seen = verify(data, name, record)
    assert ok, (data, sender.log()[-3000:])


def test_no_key_no_signature(sender, sink):
    assert sender.ctl("domain", "add", "plain.test").returncode == 0
    sender.add_account("p@plain.test", "plainpassword")
    with smtplib.SMTP(sender.host, sender.port("submission"),
                      timeout=30) as s:
        s.login("p@plain.test", "plainpassword")
        s.sendmail("p@plain.test", ["d@sink.test"],
                   b"From: <p@plain.test>\r\nSubject: not signed\r\n\r\nx\r\n")
    data = sent(sink, "not signed", sender)["data"]
    assert b"DKIM-Signature" not in data


def test_other_tenants_from_is_not_signed_as_theirs(sender, sink):
    # ed@ed.test writes From: example.test: signed as ed.test, not as
    # example.test (whose key the sender must not get).
    if sender.ctl("dkim", "show", "ed.test").returncode != 0:
        pytest.skip("needs the ed.test account of the ed25519 test")
    with smtplib.SMTP(sender.host, sender.port("submission"),
                      timeout=30) as s:
        s.login("ed@ed.test", "edpassword")
        s.sendmail("ed@ed.test", ["e@sink.test"],
                   b"From: <demo@example.test>\r\nSubject: spoof\r\n\r\nx\r\n")
    data = sent(sink, "spoof", sender)["data"]
    assert sig_tags(data)["d"] == "ed.test"


def test_body_parameter_passed_on(sender, sink):
    # A 7-bit message with BODY=8BITMIME: the queue passes on what MAIL
    # FROM said (stored with the entry) instead of guessing 7BIT.
    with smtplib.SMTP(sender.host, sender.port("submission"),
                      timeout=30) as s:
        s.ehlo("client.test")
        s.login(sender.user, sender.password)
        s.sendmail(sender.user, ["f@sink.test"],
                   b"From: <%s>\r\nSubject: body param\r\n\r\nx\r\n"
                   % sender.user.encode(), mail_options=["BODY=8BITMIME"])
    got = sent(sink, "body param", sender)
    assert "BODY=8BITMIME" in got["mail"]
    assert wait_for(lambda: "queue is empty" in
                    sender.ctl("queue", "list").stdout, timeout=10)
