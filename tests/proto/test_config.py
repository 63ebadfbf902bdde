"""ternd's config handling: --check-config, file:line errors, the docs
table in sync with the key tables, and the quickstart layout."""
import os
import subprocess

from conftest import TERND


def run(*args):
    return subprocess.run([TERND] + list(args), capture_output=True,
                          text=True, timeout=60)


def test_docs_match_key_table():
    doc = run("--config-doc")
    assert doc.returncode == 0
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "docs", "config.md")) as f:
        text = f.read()
    # Every generated table line must be in docs/config.md verbatim.
    for line in doc.stdout.splitlines():
        if line.startswith("| `"):
            assert line in text, "docs/config.md is missing: " + line


def test_check_config_ok(tmp_path):
    (tmp_path / "c.pem").write_text("x")
    conf = tmp_path / "tern.conf"
    conf.write_text("hostname = mx.example.org\n"
                    "listener in {\n port = 2525\n protocol = smtp\n}\n")
    r = run("--check-config", "-c", str(conf))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_check_config_errors(tmp_path):
    conf = tmp_path / "tern.conf"
    conf.write_text("hostname = a\n\nworkers = lots\n")
    r = run("--check-config", "-c", str(conf))
    assert r.returncode == 1
    assert r.stderr.strip() == "%s:3: workers: expected a number" % conf

    conf.write_text("listener x {\n port = 25\n protocol = smtp\n tls = starttls\n}\n")
    r = run("--check-config", "-c", str(conf))
    assert r.returncode == 1
    assert "listener x uses TLS but no certificate block is configured" in r.stderr

    r = run("--check-config", "-c", str(tmp_path / "missing.conf"))
    assert r.returncode == 1
    assert "missing.conf:0: cannot open" in r.stderr


def test_bad_arguments():
    r = run("--ports", "notanumber", "--quickstart", "/nonexistent")
    assert r.returncode == 2
    r = run("--frobnicate", "x")
    assert r.returncode == 2


def test_quickstart_layout(tmp_path):
    d = tmp_path / "qs"
    r = run("--quickstart", str(d), "--ports", "30000", "--check-config")
    assert r.returncode == 0, r.stderr
    for name in ("tern.conf", "cert.pem", "key.pem", "demo-password",
                 "data/tern.db"):
        assert (d / name).exists(), name
    assert oct((d / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct((d / "demo-password").stat().st_mode & 0o777) == "0o600"
    conf = (d / "tern.conf").read_text()
    assert "port = 30993" in conf and "port = 30025" in conf
    assert "plaintext_auth_loopback = yes" in conf
    password = (d / "demo-password").read_text().strip()
    assert len(password) >= 12
    # A second run keeps the account and its password.
    r = run("--quickstart", str(d), "--ports", "30000", "--check-config")
    assert r.returncode == 0
    assert (d / "demo-password").read_text().strip() == password
    cert = subprocess.run(["openssl", "x509", "-in", str(d / "cert.pem"),
                           "-noout", "-text"], capture_output=True, text=True)
    assert "DNS:mail.example.test" in cert.stdout
    assert "DNS:localhost" in cert.stdout
