"""Remote certificate verification in the outbound queue (issue 8).

  ca        a test CA and a leaf certificate it signed for mx.trusted.test,
            smart.test and 127.0.0.1, made here with the openssl CLI
  dns       a tiny UDP DNS server on loopback (queue_helpers.DNSServer)
  selfsig   a tern for remote.test with its quickstart (self-signed) cert
  trusted   a tern for trusted.test serving the CA-signed leaf

  (a) opportunistic STARTTLS to an MX whose certificate cannot be
      verified still delivers, and the log says tls=unverified:<reason>;
      with the CA configured, the MX is tls=verified;
  (b) a smarthost whose certificate does not verify (unknown CA, or a
      name the certificate is not for) is refused with a temporary error
      while queue_smarthost_tls_verify is on (the default), and the same
      smarthost is used once the test's CA is configured.
Loopback only; every wait is bounded; every server is stopped.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import Tern
from queue_helpers import DNSServer, find_in_inbox, queue_empty, submit, \
    wait_for

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="no openssl CLI")


def _openssl(*args, cwd):
    subprocess.run([OPENSSL] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ca"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=tern test CA", "-keyout", "ca.key",
             "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
             "/CN=mx.trusted.test", "-keyout", "leaf.key", "-out",
             "leaf.csr", cwd=d)
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:mx.trusted.test,DNS:smart.test,"
                "IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-days", "2", "-out", "leaf.pem",
             "-extfile", "leaf.ext", cwd=d)
    return d


@pytest.fixture(scope="module")
def dns():
    d = DNSServer({
        ("remote.test", "MX"): [(10, "mx.remote.test")],
        ("mx.remote.test", "A"): ["127.0.0.1"],
        ("trusted.test", "MX"): [(10, "mx.trusted.test")],
        ("mx.trusted.test", "A"): ["127.0.0.1"],
        ("smart.test", "A"): ["127.0.0.1"],
        # the same server under a name its certificate is not for
        ("wrongname.test", "A"): ["127.0.0.1"],
    })
    yield d
    d.stop()


@pytest.fixture(scope="module")
def selfsig(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("selfsig"), domain="remote.test")
    t.start()
    yield t
    t.stop()


@pytest.fixture(scope="module")
def trusted(tmp_path_factory, ca):
    d = tmp_path_factory.mktemp("trusted")
    # The quickstart keeps a certificate that is already there.
    shutil.copy(os.path.join(ca, "leaf.pem"), os.path.join(d, "cert.pem"))
    shutil.copy(os.path.join(ca, "leaf.key"), os.path.join(d, "key.pem"))
    os.chmod(os.path.join(d, "key.pem"), 0o600)
    t = Tern(d, domain="trusted.test")
    t.start()
    yield t
    t.stop()


def _sender(tmp_path_factory, name, dns, port, **extra):
    conf = {
        "dns_resolver": "127.0.0.1:%d" % dns.port,
        "remote_smtp_port": str(port),
        "queue_retry_min": "1s",
        "queue_retry_max": "2s",
        "queue_max_age": "1h",
    }
    conf.update(extra)
    t = Tern(tmp_path_factory.mktemp(name), domain="example.test",
             extra_config="\n".join("%s = %s" % kv for kv in conf.items()))
    t.start()
    return t


def _delivered(t, rcpt):
    m = re.search(r"delivered to=<%s> host=\S+ tls=(\S+)" % re.escape(rcpt),
                  t.log())
    return m.group(1) if m else None


def test_unverifiable_mx_still_gets_the_mail(tmp_path_factory, dns,
                                             selfsig):
    t = _sender(tmp_path_factory, "opp", dns, selfsig.port("smtp"))
    try:
        submit(t, ["demo@remote.test"], "opportunistic unverified")
        assert find_in_inbox(selfsig, "Subject: opportunistic unverified"), \
            t.log()[-3000:]
        assert wait_for(lambda: _delivered(t, "demo@remote.test"))
        tls = _delivered(t, "demo@remote.test")
        assert tls.startswith("unverified:"), tls
        assert "self-signed" in tls, tls
        assert re.search(r"tls-ok host=mx\.remote\.test version=TLSv1\.[23] "
                         r"tls=unverified:", t.log())
    finally:
        t.stop()


def test_mx_verified_with_the_ca(tmp_path_factory, ca, dns, trusted):
    t = _sender(tmp_path_factory, "oppca", dns, trusted.port("smtp"),
                queue_tls_ca_file=os.path.join(ca, "ca.pem"))
    try:
        submit(t, ["demo@trusted.test"], "opportunistic verified")
        assert find_in_inbox(trusted, "Subject: opportunistic verified"), \
            t.log()[-3000:]
        assert wait_for(lambda: _delivered(t, "demo@trusted.test"))
        assert _delivered(t, "demo@trusted.test") == "verified"
    finally:
        t.stop()


def _refused(t, needle):
    return wait_for(lambda: needle in t.log(), timeout=30)


@pytest.mark.parametrize("host,reason", [
    # the CA is not in the system store
    ("smart.test", "not verified (unable-to-get-local-issuer-certificate)"),
])
def test_smarthost_untrusted_cert_refused(tmp_path_factory, dns, trusted,
                                          host, reason):
    t = _sender(tmp_path_factory, "smartbad", dns, trusted.port("smtp"),
                queue_smarthost="%s:%d" % (host, trusted.port("smtp")))
    try:
        submit(t, ["demo@trusted.test"], "smarthost untrusted")
        assert _refused(t, "certificate of %s %s" % (host, reason)), \
            t.log()[-3000:]
        assert "host-failed host=%s" % host in t.log()
        # temporary: still queued, retried, never delivered
        assert not queue_empty(t)
        assert not find_in_inbox(trusted, "Subject: smarthost untrusted",
                                 timeout=2)
        assert _delivered(t, "demo@trusted.test") is None
    finally:
        t.stop()


def test_smarthost_name_mismatch_refused_even_with_the_ca(tmp_path_factory,
                                                          ca, dns, trusted):
    t = _sender(tmp_path_factory, "smartname", dns, trusted.port("smtp"),
                queue_tls_ca_file=os.path.join(ca, "ca.pem"),
                queue_smarthost="wrongname.test:%d" % trusted.port("smtp"))
    try:
        submit(t, ["demo@trusted.test"], "smarthost wrong name")
        assert _refused(t, "certificate of wrongname.test not verified "
                           "(hostname-mismatch)"), t.log()[-3000:]
        assert not queue_empty(t)
    finally:
        t.stop()


@pytest.mark.parametrize("host", ["smart.test", "127.0.0.1"])
def test_smarthost_verified_with_the_ca(tmp_path_factory, ca, dns, trusted,
                                        host):
    """By name (DNS subjectAltName) and by address (IP subjectAltName)."""
    t = _sender(tmp_path_factory, "smartok", dns, trusted.port("smtp"),
                queue_tls_ca_file=os.path.join(ca, "ca.pem"),
                queue_smarthost="%s:%d" % (host, trusted.port("smtp")))
    subject = "smarthost verified %s" % host
    try:
        submit(t, ["demo@trusted.test"], subject)
        assert find_in_inbox(trusted, "Subject: " + subject), \
            t.log()[-3000:]
        assert wait_for(lambda: _delivered(t, "demo@trusted.test"))
        assert _delivered(t, "demo@trusted.test") == "verified"
        assert wait_for(lambda: queue_empty(t), timeout=10)
    finally:
        t.stop()


def test_bad_ca_file_fails_the_start(tmp_path_factory, dns, selfsig):
    with pytest.raises(RuntimeError) as e:
        t = _sender(tmp_path_factory, "badca", dns, selfsig.port("smtp"),
                    queue_tls_ca_file="/nonexistent/ca.pem")
        t.stop()
    assert "cannot load CA certificates /nonexistent/ca.pem" in str(e.value)
