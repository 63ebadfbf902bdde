"""Two tern instances exchange mail (issue 7's headline test).

  dns       a tiny UDP DNS server on loopback (queue_helpers.DNSServer):
            remote.test MX 10 mx.remote.test, mx.remote.test A 127.0.0.1
  receiver  a tern for remote.test, the MX of the recipient domain
  sender    a tern for example.test (and ed.test) whose queue resolves
            through dns and connects to the receiver's SMTP port

Mail is submitted on the sender's submission port, read back with
imaplib from the receiver's INBOX, and its DKIM signature (keys made
with `ternctl dkim generate`) is verified with Debian's python3-dkim on
that copy: the Return-Path and Received fields the receiver prepends sit
above the signature and outside h=, so they must not break it.
Loopback only; every wait is bounded; both servers are stopped.
"""
import re
import smtplib

import pytest

from conftest import Tern
from queue_helpers import (DNSServer, find_in_inbox, queue_empty, submit,
                           wait_for)

dkim = pytest.importorskip("dkim")


@pytest.fixture(scope="module")
def dns():
    d = DNSServer({
        ("remote.test", "MX"): [(10, "mx.remote.test")],
        ("mx.remote.test", "A"): ["127.0.0.1"],
    })
    yield d
    d.stop()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("receiver"), domain="remote.test")
    t.start()
    yield t
    t.stop()


@pytest.fixture(scope="module")
def sender(tmp_path_factory, dns, receiver):
    conf = "\n".join([
        "dns_resolver = 127.0.0.1:%d" % dns.port,
        "remote_smtp_port = %d" % receiver.port("smtp"),
        "queue_retry_min = 1s",
        "queue_retry_max = 2s",
    ])
    t = Tern(tmp_path_factory.mktemp("sender"), domain="example.test",
             extra_config=conf)
    t.start()
    yield t
    t.stop()


def txt_record(t, domain):
    r = t.ctl("dkim", "show", domain)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if "IN TXT" in l][0]
    name = line.split()[1] if line.startswith("record:") else line.split()[0]
    return name, "".join(re.findall(r'"([^"]*)"', line)).encode()


def verify(data, name, record):
    def dnsfunc(qname, timeout=5):
        return record if qname.decode().lower() == name.lower() else None
    return dkim.verify(data, dnsfunc=dnsfunc)


def generate(t, domain, *args):
    r = t.ctl("dkim", "generate", domain, *args)
    assert r.returncode == 0, r.stdout + r.stderr


def received_copy(receiver, sender, subject):
    got = find_in_inbox(receiver, "Subject: " + subject, timeout=30)
    assert len(got) == 1, (len(got), sender.log()[-3000:])
    data = got[0]
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [l.split(b":", 1)[0].lower() for l in head.split(b"\r\n")
             if l and l[:1] not in b" \t"]
    # The receiver's trace fields come first, then the signature.
    assert names[0] == b"return-path", names
    assert b"received" in names
    assert names.index(b"received") < names.index(b"dkim-signature"), names
    return data


def sig_tag(data, tag):
    head = data.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", head,
                  re.S | re.M | re.I)
    assert m, head
    value = re.sub(rb"\s+", b"", m.group(1)).decode()
    return dict(t.split("=", 1) for t in value.split(";") if t)[tag]


def test_rsa_signed_mail_arrives_in_other_terns_inbox(sender, receiver):
    generate(sender, "example.test", "--selector", "two1")
    name, record = txt_record(sender, "example.test")
    assert name == "two1._domainkey.example.test."
    submit(sender, ["demo@remote.test"], "tern to tern rsa",
           body="Hello  from one tern \r\n\r\n.to another\r\n",
           extra_headers="Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n")
    data = received_copy(receiver, sender, "tern to tern rsa")
    assert sig_tag(data, "a") == "rsa-sha256"
    assert sig_tag(data, "d") == "example.test"
    assert b"\r\n.to another\r\n" in data  # dot-stuffing undone
    assert verify(data, name, record), (data, sender.log()[-3000:])
    # The verifier is not a rubber stamp.
    assert not verify(data.replace(b"Hello", b"Jello"), name, record)
    assert wait_for(lambda: queue_empty(sender), timeout=10)
    # The receiver offers STARTTLS: the queue used it; its quickstart
    # certificate is self-signed, so it is not verified (RFC 7435: the
    # mail goes anyway, the log says so).
    assert "tls-ok host=mx.remote.test" in sender.log()
    assert re.search(r"delivered to=<demo@remote\.test> host=mx\.remote"
                     r"\.test tls=unverified:\S*self-signed", sender.log())


def test_ed25519_signed_mail_arrives_in_other_terns_inbox(sender, receiver):
    assert sender.ctl("domain", "add", "ed.test").returncode == 0
    sender.add_account("ed@ed.test", "edpassword")
    generate(sender, "ed.test", "--selector", "two2", "--algorithm",
             "ed25519")
    name, record = txt_record(sender, "ed.test")
    msg = ("From: Ed <ed@ed.test>\r\nTo: <demo@remote.test>\r\n"
           "Subject: tern to tern ed25519\r\n"
           "Message-ID: <two2@ed.test>\r\n\r\nhi from ed\r\n")
    with smtplib.SMTP(sender.host, sender.port("submission"),
                      timeout=30) as s:
        s.login("ed@ed.test", "edpassword")
        s.sendmail("ed@ed.test", ["demo@remote.test"], msg.encode())
    data = received_copy(receiver, sender, "tern to tern ed25519")
    assert sig_tag(data, "a") == "ed25519-sha256"
    assert sig_tag(data, "d") == "ed.test"
    assert b"Return-Path: <ed@ed.test>" in data
    assert verify(data, name, record), (data, sender.log()[-3000:])
    assert not verify(data.replace(b"hi from", b"hi frum"), name, record)
    assert wait_for(lambda: queue_empty(sender), timeout=10)
