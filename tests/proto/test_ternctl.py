"""ternctl against a fresh data directory (no ternd needed): every noun,
good and bad paths, exit codes (0 ok, 1 failed, 2 usage) and messages."""
import subprocess

import pytest

from conftest import TERNCTL


def ctl(d, *args, input=None):
    return subprocess.run([TERNCTL, "-d", str(d)] + list(args), input=input,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def d(tmp_path):
    data = tmp_path / "data"
    r = ctl(data, "domain", "add", "Example.ORG.")
    assert r.returncode == 0, r.stderr
    return data


def test_domains(d):
    assert ctl(d, "domain", "list").stdout.split() == ["example.org"]
    r = ctl(d, "domain", "add", "example.org")
    assert r.returncode == 1 and "exists" in r.stderr
    r = ctl(d, "domain", "add", "bad_domain!")
    assert r.returncode == 2
    assert ctl(d, "domain", "add", "second.test").returncode == 0
    assert ctl(d, "domain", "del", "second.test").returncode == 0
    r = ctl(d, "domain", "del", "second.test")
    assert r.returncode == 1 and "unknown domain" in r.stderr


def test_accounts(d):
    r = ctl(d, "account", "add", "Alice@Example.org", "--password-stdin",
            input="s3cret pass\n")
    assert r.returncode == 0, r.stderr
    r = ctl(d, "account", "add", "alice@example.org", "--password-stdin",
            input="x\n")
    assert r.returncode == 1 and "exists" in r.stderr
    r = ctl(d, "account", "add", "bob@nowhere.test", "--password-stdin",
            input="x\n")
    assert r.returncode == 1 and "ternctl domain add nowhere.test" in r.stderr
    r = ctl(d, "account", "add", "not-an-address", "--password-stdin",
            input="x\n")
    assert r.returncode == 2
    r = ctl(d, "account", "add", "carol@example.org", "--plan", "nosuch",
            "--password-stdin", input="x\n")
    assert r.returncode == 1 and "unknown plan" in r.stderr
    r = ctl(d, "account", "list")
    assert "alice@example.org" in r.stdout and "standard" in r.stdout
    r = ctl(d, "account", "show", "alice@example.org")
    assert r.returncode == 0
    assert "plan      standard" in r.stdout
    assert "of 25 GiB" in r.stdout or "of 25 GB" in r.stdout
    assert "sent      0 in the last hour of 3000" in r.stdout
    assert ctl(d, "account", "plan", "alice@example.org",
               "professional").returncode == 0
    assert "professional" in ctl(d, "account", "show",
                                 "alice@example.org").stdout
    assert ctl(d, "account", "passwd", "alice@example.org", "--password-stdin",
               input="new pass\n").returncode == 0
    r = ctl(d, "account", "passwd", "zed@example.org", "--password-stdin",
            input="x\n")
    assert r.returncode == 1
    # the domain cannot go while it has accounts
    r = ctl(d, "domain", "del", "example.org")
    assert r.returncode == 1 and "still has" in r.stderr
    assert ctl(d, "account", "del", "alice@example.org").returncode == 0
    assert ctl(d, "account", "del", "alice@example.org").returncode == 1


def test_password_never_from_argv(d):
    r = ctl(d, "account", "add", "dave@example.org", "hunter2")
    assert r.returncode == 2


def test_import_hash(d):
    h = "$6$saltsalt$" + "x" * 86
    r = ctl(d, "account", "import", "eve@example.org", "--hash-stdin",
            input="not a hash\n")
    assert r.returncode == 1
    real = subprocess.run(["openssl", "passwd", "-6", "-salt", "abcdefgh",
                           "pw"], capture_output=True, text=True).stdout.strip()
    r = ctl(d, "account", "import", "eve@example.org", "--hash-stdin",
            input=real + "\n")
    assert r.returncode == 0, r.stderr
    assert h  # unused placeholder kept readable


def test_aliases(d):
    ctl(d, "account", "add", "a@example.org", "--password-stdin", input="p\n")
    r = ctl(d, "alias", "add", "sales@example.org", "a@example.org",
            "x@remote.test")
    assert r.returncode == 0, r.stderr
    assert ctl(d, "alias", "add", "@example.org", "a@example.org").returncode == 0
    out = ctl(d, "alias", "list").stdout
    assert "sales@example.org -> " in out and "@example.org -> a@example.org" in out
    assert ctl(d, "alias", "del", "sales@example.org").returncode == 0
    assert ctl(d, "alias", "del", "sales@example.org").returncode == 1


def test_plans_queue_status(d):
    out = ctl(d, "plan", "list").stdout
    for name in ("essential", "standard", "professional"):
        assert name in out
    assert "queue is empty" in ctl(d, "queue", "list").stdout
    r = ctl(d, "queue", "show", "12")
    assert r.returncode == 1
    r = ctl(d, "queue", "show", "abc")
    assert r.returncode == 2
    r = ctl(d, "status")
    assert r.returncode == 0
    assert "not running" in r.stdout and "domains   1" in r.stdout


def test_usage(d):
    r = ctl(d, "frobnicate")
    assert r.returncode == 2
    r = subprocess.run([TERNCTL, "help"], capture_output=True, text=True)
    assert r.returncode == 0 and "account add" in r.stdout
