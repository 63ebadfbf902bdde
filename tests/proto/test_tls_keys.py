"""The TLS private keys live only in the keys process (issue 8,
docs/security.md "The keys process"): every worker signs its handshakes
through a channel to it. Handshakes work with RSA and ECDSA certificates,
TLS 1.2 and 1.3, on every TLS listener (implicit TLS and STARTTLS), with
each signature scheme; the key's bytes (its DER, PEM text, RSA primes and
private exponent, EC private scalar, both byte orders) are in no worker's,
the queue's or the master's memory, while the scan finds them in the keys
process; SIGHUP serves a new certificate and key; a restarted worker and
a restarted keys process sign again."""
import datetime
import imaplib
import ipaddress
import os
import poplib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from conftest import Tern


def make_cert(directory, kind):
    """Write cert.pem and key.pem (root's 0600) of a new RSA 2048 or EC
    P-256 key into directory; return the certificate's DER."""
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         "mail.example.test")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    kpath = os.path.join(directory, "key.pem")
    fd = os.open(kpath + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(directory, "cert.pem.new"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.rename(kpath + ".new", kpath)
    os.rename(os.path.join(directory, "cert.pem.new"),
              os.path.join(directory, "cert.pem"))
    return cert.public_bytes(serialization.Encoding.DER)


def served_der(t, ctx=None):
    ctx = ctx or client_ctx()
    with socket.create_connection((t.host, t.port("imaps")), timeout=30) as s:
        with ctx.wrap_socket(s) as ts:
            return ts.getpeercert(binary_form=True)


def client_ctx(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def start_with(tmp_path_factory, name, kind, extra_config=""):
    t = Tern(tmp_path_factory.mktemp(name), extra_config=extra_config)
    der = make_cert(t.dir, kind)  # the quickstart keeps an existing one
    t.start()
    t.cert_der = der
    return t


@pytest.fixture(scope="module", params=["rsa", "ec"])
def kt(request, tmp_path_factory):
    t = start_with(tmp_path_factory, "keys-" + request.param, request.param)
    t.kind = request.param
    yield t
    t.stop()


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


def check_tls(sock, t, version):
    assert sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                              ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert sock.getpeercert(binary_form=True) == t.cert_der


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_handshakes_every_listener(kt, version):
    ctx = client_ctx(version)
    m = imaplib.IMAP4_SSL(kt.host, kt.port("imaps"), ssl_context=ctx)
    check_tls(m.sock, kt, version)
    m.login(kt.user, kt.password)
    m.logout()
    m = imaplib.IMAP4(kt.host, kt.port("imap"))
    m.starttls(ssl_context=ctx)
    check_tls(m.sock, kt, version)
    m.login(kt.user, kt.password)
    m.logout()
    p = poplib.POP3_SSL(kt.host, kt.port("pop3s"), context=ctx)
    check_tls(p.sock, kt, version)
    p.user(kt.user)
    p.pass_(kt.password)
    p.quit()
    p = poplib.POP3(kt.host, kt.port("pop3"))
    p.stls(context=ctx)
    check_tls(p.sock, kt, version)
    p.quit()
    with smtplib.SMTP_SSL(kt.host, kt.port("submissions"), context=ctx,
                          timeout=30) as s:
        check_tls(s.sock, kt, version)
        s.login(kt.user, kt.password)
    for name in ("submission", "smtp"):
        with smtplib.SMTP(kt.host, kt.port(name), timeout=30) as s:
            s.starttls(context=ctx)
            check_tls(s.sock, kt, version)
            s.ehlo()


# (s_client version flag, -sigalgs, the "Peer signature type" expected)
SIGALGS = {
    "rsa": [("-tls1_2", "RSA+SHA256", "RSA"),          # PKCS#1 v1.5
            ("-tls1_2", "RSA+SHA512", "RSA"),
            ("-tls1_2", "rsa_pss_rsae_sha256", "RSA-PSS"),
            ("-tls1_3", "rsa_pss_rsae_sha256", "RSA-PSS"),
            ("-tls1_3", "rsa_pss_rsae_sha512", "RSA-PSS")],
    "ec": [("-tls1_2", "ECDSA+SHA256", "ECDSA"),
           ("-tls1_2", "ECDSA+SHA384", "ECDSA"),
           ("-tls1_2", "ECDSA+SHA512", "ECDSA"),
           ("-tls1_3", "ecdsa_secp256r1_sha256", "ECDSA")],
}


def test_signature_schemes(kt):
    for flag, sigalgs, expect in SIGALGS[kt.kind]:
        # -ign_eof: wait for the server to close after LOGOUT (with TLS
        # 1.3 the greeting may come after s_client saw its stdin end)
        r = subprocess.run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % kt.port("imaps"), flag,
                            "-sigalgs", sigalgs, "-crlf", "-ign_eof"],
                           input="a1 LOGOUT\n", capture_output=True,
                           text=True, timeout=30)
        out = r.stdout + r.stderr
        assert "Peer signature type: %s\n" % expect in out, (sigalgs, out)
        assert "* OK" in out and "a1 OK" in out, (sigalgs, out)


def test_no_rsa_key_exchange(kt):
    """The stub refuses RSA decryption: no suite needs it (ECDHE only)."""
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % kt.port("imaps"), "-tls1_2",
                        "-cipher", "AES128-GCM-SHA256"],
                       input="", capture_output=True, text=True, timeout=30)
    assert "* OK" not in r.stdout


# Memory scan.

def key_needles(path):
    """Byte strings that only a copy of the private key contains."""
    with open(path, "rb") as f:
        pem = f.read()
    key = serialization.load_pem_private_key(pem, None)
    out = {}
    for fmt in (serialization.PrivateFormat.PKCS8,
                serialization.PrivateFormat.TraditionalOpenSSL):
        out["der-%s" % fmt.name] = key.private_bytes(
            serialization.Encoding.DER, fmt, serialization.NoEncryption())
    lines = pem.split(b"\n")
    out["pem-line"] = lines[2]   # 64 base64 characters of the key
    if isinstance(key, rsa.RSAPrivateKey):
        nums = key.private_numbers()
        ints = {"p": nums.p, "q": nums.q, "d": nums.d}
    else:
        ints = {"scalar": key.private_numbers().private_value}
    for name, n in ints.items():
        size = (n.bit_length() + 7) // 8
        # big-endian (DER, OpenSSL's BN_bn2bin) and little-endian (the
        # words of a BIGNUM on a little-endian machine)
        out[name + "-be"] = n.to_bytes(size, "big")
        out[name + "-le"] = n.to_bytes(size, "little")
    return out


REGION_MAX = 1 << 31  # sanitizer shadow maps: terabytes of zero pages
CHUNK = 16 << 20


def memory_hits(pid, needles):
    """{needle name} found in the readable memory of pid."""
    hits = set()
    longest = max(len(v) for v in needles.values())
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    try:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or hi - lo > REGION_MAX:
                continue
            if len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]"):
                continue
            pos, tail = lo, b""
            while pos < hi:
                try:
                    data = os.pread(fd, min(CHUNK, hi - pos), pos)
                except OSError:
                    break
                if not data:
                    break
                block = tail + data
                for name, needle in needles.items():
                    if name not in hits and needle in block:
                        hits.add(name)
                tail = block[-longest:]
                pos += len(data)
    finally:
        os.close(fd)
    return hits


def live_children(t):
    out = {}
    for kind, pid in re.findall(r"child-started kind=(\w+) index=\d+ "
                                r"pid=(\d+)", t.log()):
        pid = int(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == t.proc.pid:
            out[pid] = kind
    return out


def test_key_bytes_only_in_keys_process(kt):
    kids = live_children(kt)
    assert "worker" in kids.values() and "queue" in kids.values(), kids
    # Handshakes on every worker first (several connections: the kernel
    # spreads them), so the signing path has run where it is scanned.
    for _ in range(8):
        served_der(kt)
    needles = key_needles(os.path.join(kt.dir, "key.pem"))
    for pid, kind in sorted(kids.items()):
        if kind == "keys":
            continue
        hits = memory_hits(pid, needles)
        assert not hits, "%s %d holds the private key: %s" % (kind, pid,
                                                             sorted(hits))
    hits = memory_hits(kt.proc.pid, needles)
    assert not hits, "the master holds the private key: %s" % sorted(hits)
    # The scan does find a key where there is one.
    keys = [p for p, k in kids.items() if k == "keys"]
    assert len(keys) == 1, kids
    assert memory_hits(keys[0], needles), "scan found nothing in keys"


def wait_log(t, text, timeout=20):
    deadline = time.time() + timeout
    while text not in t.log():
        assert time.time() < deadline, "no %r in the log:\n%s" % (
            text, t.log()[-3000:])
        time.sleep(0.05)


def test_sighup_new_certificate_and_key(tmp_path_factory):
    t = start_with(tmp_path_factory, "keys-reload", "rsa")
    try:
        assert served_der(t) == t.cert_der
        # held across the reload: its worker keeps the old keys process
        old = imaplib.IMAP4_SSL(t.host, t.port("imaps"),
                                ssl_context=client_ctx())
        old_workers = [p for p, k in live_children(t).items()
                       if k == "worker"]
        new_der = make_cert(t.dir, "ec")
        os.kill(t.proc.pid, signal.SIGHUP)
        wait_log(t, "reloaded generation=1")
        # an old worker may accept until it has read its SIGUSR1
        for pid in old_workers:
            wait_log(t, "[%d] info worker - retiring" % pid)
        for _ in range(6):
            assert served_der(t) == new_der
        for version in VERSIONS:
            assert served_der(t, client_ctx(version)) == new_der
        old.login(t.user, t.password)
        old.logout()
        # the old generation's keys process ends after its workers
        wait_log(t, "child-exited kind=keys")
        # a key that does not match its certificate: the reload fails,
        # the current certificate is still served
        good = open(os.path.join(t.dir, "cert.pem"), "rb").read()
        make_cert(t.dir, "ec")
        with open(os.path.join(t.dir, "cert.pem"), "wb") as f:
            f.write(good)
        os.kill(t.proc.pid, signal.SIGHUP)
        wait_log(t, "does not match certificate")
        wait_log(t, "reload-failed")
        assert served_der(t) == new_der
        t.cert_der = new_der
    finally:
        t.stop()


def test_restarted_worker_and_keys_process_sign(tmp_path_factory):
    t = start_with(tmp_path_factory, "keys-restart", "ec",
                   extra_config="workers = 1\n")
    try:
        assert served_der(t) == t.cert_der
        kids = live_children(t)
        worker = [p for p, k in kids.items() if k == "worker"][0]
        os.kill(worker, signal.SIGKILL)
        wait_log(t, "child-died kind=worker pid=%d signal=9" % worker)
        t._wait_ready()
        for version in VERSIONS:
            assert served_der(t, client_ctx(version)) == t.cert_der
        keys = [p for p, k in live_children(t).items() if k == "keys"][0]
        worker = [p for p, k in live_children(t).items()
                  if k == "worker"][0]
        os.kill(keys, signal.SIGKILL)
        wait_log(t, "keys-restarted generation=1")
        # the old worker's channel died with the keys process: it
        # retires, a new one takes over
        wait_log(t, "child-exited kind=worker pid=%d" % worker)
        t._wait_ready()
        for version in VERSIONS:
            assert served_der(t, client_ctx(version)) == t.cert_der
        m = imaplib.IMAP4_SSL(t.host, t.port("imaps"),
                              ssl_context=client_ctx())
        m.login(t.user, t.password)
        m.logout()
    finally:
        t.stop()
