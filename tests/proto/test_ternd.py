"""The daemon as a whole: the quickstart serves TLS on all seven ports
(checked with openssl s_client), workers are supervised, SIGHUP reloads,
SIGTERM stops in time, and a restart keeps the data."""
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import children

STARTTLS = {"smtp": "smtp", "submission": "smtp", "imap": "imap",
            "pop3": "pop3"}
IMPLICIT = ["submissions", "imaps", "pop3s"]


def s_client(port, starttls=None):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-servername", "mail.example.test", "-brief"]
    if starttls:
        cmd += ["-starttls", starttls]
    return subprocess.run(cmd, input="", capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("name", sorted(STARTTLS))
def test_starttls_ports(tern, name):
    r = s_client(tern.port(name), STARTTLS[name])
    out = r.stdout + r.stderr
    assert "Protocol version: TLSv1.3" in out, out


@pytest.mark.parametrize("name", IMPLICIT)
def test_implicit_tls_ports(tern, name):
    r = s_client(tern.port(name))
    out = r.stdout + r.stderr
    assert "Protocol version: TLSv1.3" in out, out


def test_tls_versions_refused(tern):
    # TLS 1.0 and 1.1 are refused.
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % tern.port("imaps"), "-tls1_1"],
                       input="", capture_output=True, text=True, timeout=30)
    assert "Protocol version: TLSv1.1" not in r.stdout + r.stderr
    assert r.returncode != 0
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % tern.port("imaps"), "-tls1_2",
                        "-brief"],
                       input="", capture_output=True, text=True, timeout=30)
    assert "Protocol version: TLSv1.2" in r.stdout + r.stderr


def tls13_suite(tern, offered=None):
    cmd = ["openssl", "s_client", "-connect",
           "127.0.0.1:%d" % tern.port("imaps"), "-tls1_3", "-brief"]
    if offered:
        cmd += ["-ciphersuites", offered]
    r = subprocess.run(cmd, input="", capture_output=True, text=True,
                       timeout=30)
    for ln in (r.stdout + r.stderr).splitlines():
        if ln.startswith("Ciphersuite:"):
            return ln.split(":", 1)[1].strip()
    return None


def test_tls13_suite_order(tern):
    # The server picks TLS 1.3 suites in its own order (docs/security.md):
    # ChaCha20-Poly1305 (the least memory per idle connection), then
    # AES-128-GCM, then AES-256-GCM, whatever order the client lists.
    assert tls13_suite(tern) == "TLS_CHACHA20_POLY1305_SHA256"
    assert tls13_suite(tern, "TLS_AES_256_GCM_SHA384:"
                       "TLS_AES_128_GCM_SHA256") == "TLS_AES_128_GCM_SHA256"
    assert tls13_suite(tern, "TLS_AES_256_GCM_SHA384") == \
        "TLS_AES_256_GCM_SHA384"


def wait_for(cond, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_worker_restarted(fresh_tern):
    master = fresh_tern.proc.pid
    # The listeners accept (backlog) before every child is forked.
    assert wait_for(lambda: len(children(master)) >= 2)  # workers + queue
    time.sleep(0.2)
    before = children(master)
    os.kill(before[0], signal.SIGKILL)
    assert wait_for(lambda: before[0] not in children(master)
                    and len(children(master)) == len(before))
    assert wait_for(lambda: "child-died" in fresh_tern.log())
    assert "signal=9" in fresh_tern.log()
    # Still serving on every port.
    fresh_tern._wait_ready()


def test_children_die_with_master(fresh_tern):
    """PR_SET_PDEATHSIG survives the drop to the run-as user (the kernel
    clears it when the uids change; it is set again after the drop): a
    SIGKILLed master leaves no worker, queue or keys process behind."""
    master = fresh_tern.proc.pid
    assert wait_for(lambda: len(children(master)) >= 3)  # keys, workers, queue
    time.sleep(0.5)
    kids = children(master)
    os.kill(master, signal.SIGKILL)
    fresh_tern.proc.wait(timeout=10)

    def alive():
        out = []
        for pid in kids:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                out.append(pid)
        return out
    assert wait_for(lambda: not alive(), timeout=15), alive()


def test_sighup_reload_keeps_connections(fresh_tern):
    master = fresh_tern.proc.pid
    s = socket.create_connection(("127.0.0.1", fresh_tern.port("pop3")))
    greeting = s.recv(1024)
    old = set(children(master))
    os.kill(master, signal.SIGHUP)
    assert wait_for(lambda: "reloaded" in fresh_tern.log())
    # the open connection still works after the reload
    s.sendall(b"NOOP\r\n")
    reply = s.recv(1024)
    assert reply, greeting
    s.sendall(b"QUIT\r\n")
    s.recv(1024)
    s.close()
    assert wait_for(lambda: not (old & set(children(master))), timeout=15)
    fresh_tern._wait_ready()


def test_sighup_bad_config_keeps_running(fresh_tern):
    conf = os.path.join(fresh_tern.dir, "tern.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.split("\n", 1)[1] + "\nbogus_key = 1\n")
    os.kill(fresh_tern.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "reload-failed" in fresh_tern.log())
    assert "unknown key 'bogus_key'" in fresh_tern.log()
    fresh_tern._wait_ready()
    with open(conf, "w") as f:
        f.write(text)


def test_sigterm_stops_quickly(fresh_tern):
    socks = [socket.create_connection(("127.0.0.1", fresh_tern.port("imap")))
             for _ in range(5)]
    for s in socks:
        s.recv(1024)
    start = time.time()
    fresh_tern.proc.send_signal(signal.SIGTERM)
    fresh_tern.proc.wait(timeout=15)
    assert time.time() - start < 11
    for s in socks:
        s.close()
    assert "stopped" in fresh_tern.log()
    fresh_tern.proc = None
    # The data survives a restart.
    fresh_tern.start()


def test_connection_greetings(tern):
    for name, pattern in (("smtp", rb"^220 "), ("imap", rb"^\* OK"),
                          ("pop3", rb"^\+OK")):
        s = socket.create_connection(("127.0.0.1", tern.port(name)), timeout=10)
        data = s.recv(1024)
        s.close()
        assert re.match(pattern, data), (name, data)


def peer_cert(port, servername):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=servername) as s:
            return s.getpeercert(binary_form=True)


def test_sni_picks_certificate_after_reload(fresh_tern, tmp_path):
    """A second certificate block, added by SIGHUP, serves its own name;
    every other name still gets the first (default) certificate."""
    cert, key = tmp_path / "other.pem", tmp_path / "other.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=other.example", "-addext",
                    "subjectAltName=DNS:other.example", "-days", "2",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = fresh_tern.port("imaps")
    assert b"other.example" not in peer_cert(port, "other.example")
    conf = os.path.join(fresh_tern.dir, "tern.conf")
    with open(conf) as f:
        text = f.read()
    # Drop the quickstart marker so the config is ours from now on.
    text = text.split("\n", 1)[1]
    with open(conf, "w") as f:
        f.write(text + "\ncertificate other {\n\tcert = %s\n\tkey = %s\n}\n"
                % (cert, key))
    os.kill(fresh_tern.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "reloaded" in fresh_tern.log())

    def served_other():
        try:
            return b"other.example" in peer_cert(port, "other.example")
        except OSError:
            return False
    assert wait_for(served_other, timeout=15)
    default = peer_cert(port, "mail.example.test")
    assert b"other.example" not in default
    assert b"mail.example.test" in default
    assert b"other.example" not in peer_cert(port, "unknown.example")
