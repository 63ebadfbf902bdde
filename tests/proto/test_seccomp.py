"""seccomp (issue 8, docs/security.md): every worker, the queue process
and the keys process run under a seccomp filter of src/lib/sandbox.c
(/proc/PID/status shows "Seccomp: 2" and "NoNewPrivs: 1") while the
master is not filtered;
the server still serves all protocols with it (the whole suite runs
filtered). `seccomp = no` leaves the children unfiltered."""
import re
import smtplib
import imaplib
import poplib
import time

import pytest

from conftest import Tern

TWO_WORKERS = "workers = 2\n"


def status(pid):
    res = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            res[k] = v.strip()
    return res


def live_children(t):
    """{pid: kind} of the children the master started and that still
    run, from its log lines "child-started kind=K index=I pid=P"."""
    out = {}
    for kind, pid in re.findall(r"child-started kind=(\w+) index=\d+ "
                                r"pid=(\d+)", t.log()):
        pid = int(pid)
        try:
            if int(status(pid)["PPid"]) == t.proc.pid:
                out[pid] = kind
        except (OSError, KeyError):
            pass
    return out


@pytest.fixture
def two(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("seccomp"), extra_config=TWO_WORKERS)
    t.start()
    yield t
    t.stop()


def wait_children(t, want, timeout=20):
    """live_children once their kinds are want (the queue starts after
    the workers answer: right after start() it may not be there yet)."""
    deadline = time.time() + timeout
    kids = live_children(t)
    while sorted(kids.values()) != want and time.time() < deadline:
        time.sleep(0.05)
        kids = live_children(t)
    return kids


def test_children_filtered_master_not(two):
    kids = wait_children(two, ["keys", "queue", "worker", "worker"])
    # the keys process (docs/security.md) has its own, tighter filter
    assert sorted(kids.values()) == ["keys", "queue", "worker", "worker"], \
        kids
    master = status(two.proc.pid)
    # (a container may filter everything already: then the master shows
    # its filters, and each child exactly one more)
    base = int(master.get("Seccomp_filters", "0"))
    assert master["NoNewPrivs"] == "0" or base > 0
    if base == 0:
        assert master["Seccomp"] == "0"
    for pid, kind in kids.items():
        # The filter is the last step of a child's start-up; the readiness
        # probes of start() may all have gone to the other worker.
        deadline = time.time() + 20
        st = status(pid)
        while st["Seccomp"] != "2" and time.time() < deadline:
            time.sleep(0.05)
            st = status(pid)
        assert st["Seccomp"] == "2", (kind, pid, st["Seccomp"])
        assert st["NoNewPrivs"] == "1", (kind, pid)
        if "Seccomp_filters" in st:
            assert int(st["Seccomp_filters"]) == base + 1, (kind, pid)
    # a filtered server serves every protocol
    with smtplib.SMTP(two.host, two.port("submission"), timeout=30) as s:
        s.login(two.user, two.password)
        s.sendmail(two.user, [two.user],
                   b"Subject: sandboxed\r\n\r\nhello\r\n")
    m = imaplib.IMAP4(two.host, two.port("imap"))
    m.login(two.user, two.password)
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1
    m.logout()
    p = poplib.POP3(two.host, two.port("pop3"), timeout=30)
    p.user(two.user)
    p.pass_(two.password)
    assert p.stat()[0] >= 1
    p.quit()
    assert "seccomp-failed" not in two.log()


def test_seccomp_off(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("noseccomp"),
             extra_config="workers = 1\nseccomp = no\n")
    t.start()
    try:
        kids = wait_children(t, ["keys", "queue", "worker"])
        assert sorted(kids.values()) == ["keys", "queue", "worker"], kids
        # both children past the point where the filter would go on
        deadline = time.time() + 20
        while t.log().count("seccomp-off") < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert t.log().count("seccomp-off") == 2, t.log()[-2000:]
        base = status(t.proc.pid)["Seccomp"]
        for pid in kids:
            assert status(pid)["Seccomp"] == base
    finally:
        t.stop()
