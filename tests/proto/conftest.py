"""Shared fixtures for protocol tests: start a real ternd on free loopback
ports with a fresh data directory (ternd --quickstart), and clean up.

Fixtures:
  tern        one server per test module
  fresh_tern  one server per test
Both yield a Tern object: host, port(name), user, password, domain,
datadir, ctl(*args, input=None), add_account(address, password, plan=None),
restart(), stop(), log().
Helpers: blob_bytes(datadir, hash) reads a stored message's bytes from
its pack or its own file; blob_stores(datadir) lists the files that hold
message bytes.
"""
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TERND = os.environ.get("TERND", os.path.join(ROOT, "build", "ternd"))
TERNCTL = os.environ.get("TERNCTL", os.path.join(ROOT, "build", "ternctl"))

LISTENERS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
}


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def children(pid):
    """The pids whose parent is pid, from /proc (a process that exits
    while it is read is left out)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def pick_base():
    """A base such that base+25 ... base+995 are all free."""
    for _ in range(200):
        # Any base works (the highest port is base+995). A wide choice
        # makes two concurrent runs unlikely to pick the same ports, and
        # staying below the ephemeral range (32768-60999 here) keeps the
        # clients' own sockets off them.
        base = random.randrange(20000, 32768 - 996)
        if all(_port_free(base + p) for p in LISTENERS.values()):
            return base
    raise RuntimeError("no free port range found")


def blob_bytes(datadir, hash_):
    """The bytes of blob hash_: from its pack (schema step 16, small
    messages) when its row names one, else from its own file."""
    con = sqlite3.connect(os.path.join(datadir, "tern.db"), timeout=30)
    try:
        row = con.execute("SELECT pack, off, size FROM blobs WHERE hash = ?",
                          (hash_,)).fetchone()
    finally:
        con.close()
    if row is not None and row[0] is not None:
        with open(os.path.join(datadir, "packs", "%016x" % row[0]),
                  "rb") as f:
            f.seek(row[1])
            data = f.read(row[2])
        assert len(data) == row[2], "pack %016x is short" % row[0]
        return data
    with open(os.path.join(datadir, "blobs", hash_[:2], hash_[2:]),
              "rb") as f:
        return f.read()


def blob_stores(datadir):
    """Every file holding message bytes: the packs and the blob files."""
    out = []
    for sub in ("packs", "blobs"):
        for root, _dirs, files in os.walk(os.path.join(datadir, sub)):
            out += [os.path.join(root, f) for f in files]
    return sorted(out)


class Tern:
    host = "127.0.0.1"

    def __init__(self, directory, domain="example.test", extra_config=""):
        self.dir = str(directory)
        self.domain = domain
        self.user = "demo@" + domain
        self.datadir = os.path.join(self.dir, "data")
        self.extra_config = extra_config
        self.proc = None
        self.base = None
        self.password = None
        self._logfile = os.path.join(self.dir, "ternd.log")

    def port(self, name):
        return self.base + LISTENERS[name]

    def start(self):
        # A port range picked here may be taken by a concurrent test run
        # before ternd binds it: then ternd exits and, on a first start,
        # we try another range.
        auto = self.base is None
        for attempt in range(5):
            if self.base is None:
                self.base = pick_base()
            try:
                self._start_once()
                break
            except RuntimeError:
                if not auto or attempt == 4 or self.proc.poll() is None:
                    raise
                self.proc = None
                self.base = None
                if self.extra_config:
                    # written for the old ports: generate it again
                    os.remove(os.path.join(self.dir, "tern.conf"))
        with open(os.path.join(self.dir, "demo-password")) as f:
            self.password = f.read().strip()

    def _start_once(self):
        os.makedirs(self.dir, exist_ok=True)
        if self.extra_config:
            self._write_extra_config()
        log = open(self._logfile, "ab")
        self.proc = subprocess.Popen(
            [TERND, "--quickstart", self.dir, "--domain", self.domain,
             "--ports", str(self.base)],
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        self._wait_ready()

    def _write_extra_config(self):
        # The quickstart regenerates tern.conf while its first line is the
        # marker; generate it once, then append our settings and drop the
        # marker so the next runs keep them.
        conf = os.path.join(self.dir, "tern.conf")
        if not os.path.exists(conf):
            subprocess.run([TERND, "--quickstart", self.dir, "--domain",
                            self.domain, "--ports", str(self.base),
                            "--check-config"], check=True,
                           stdout=subprocess.DEVNULL)
        with open(conf) as f:
            text = f.read()
        if text.startswith("# generated by ternd --quickstart"):
            text = text.split("\n", 1)[1]
            # Main keys must come before the first block.
            text = self.extra_config.strip() + "\n" + text
            with open(conf, "w") as f:
                f.write(text)

    def _wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        # The master logs (at info) "started ... workers=N" once every
        # socket is bound, so only then are the ports ours and not
        # another run's; then one "child-started" per worker and one
        # for the queue process.
        while not self._children_started() and time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ternd exited with %s:\n%s"
                                   % (self.proc.returncode, self.log()))
            time.sleep(0.05)
        deadline = time.time() + timeout
        pending = set(LISTENERS)
        while pending and time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ternd exited with %s:\n%s"
                                   % (self.proc.returncode, self.log()))
            for name in list(pending):
                try:
                    socket.create_connection((self.host, self.port(name)),
                                             timeout=1).close()
                    pending.discard(name)
                except OSError:
                    pass
            if pending:
                time.sleep(0.05)
        if pending:
            raise RuntimeError("ternd not listening on %s:\n%s"
                               % (sorted(pending), self.log()))

    def _children_started(self):
        pid = self.proc.pid
        text = self.log()
        m = re.search(r"master\[%d\] info master - started pid=%d "
                      r"listeners=\d+ workers=(\d+)" % (pid, pid), text)
        if m is None:
            return False
        def started(kind):
            return text.count("master[%d] info master - child-started "
                              "kind=%s " % (pid, kind))
        # (counted by kind: the keys process starts first, the queue
        # last, after the workers already answer)
        return started("worker") >= int(m.group(1)) and started("queue")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        # Whatever the master left behind in its process group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        self.check_sanitizers()

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:")

    def check_sanitizers(self):
        """A sanitizer report in any ternd process fails the test, even
        when the master restarted the worker and the client never saw it."""
        text = self.log()
        for mark in self.SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                raise AssertionError("sanitizer report in %s:\n%s"
                                     % (self._logfile, text[i:i + 3000]))

    def kill9(self):
        self.stop(sig=signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        try:
            with open(self._logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def ctl(self, *args, input=None, check=False):
        return subprocess.run([TERNCTL, "-d", self.datadir] + list(args),
                              input=input, capture_output=True, text=True,
                              check=check, timeout=60)

    def add_account(self, address, password, plan=None):
        args = ["account", "add", address, "--password-stdin"]
        if plan:
            args += ["--plan", plan]
        r = self.ctl(*args, input=password + "\n")
        if r.returncode != 0:
            raise RuntimeError("ternctl account add failed: %s%s"
                               % (r.stdout, r.stderr))
        return r


def _make(tmp_path_factory, name, **kw):
    t = Tern(tmp_path_factory.mktemp(name), **kw)
    t.start()
    return t


@pytest.fixture(scope="module")
def tern(tmp_path_factory):
    t = _make(tmp_path_factory, "tern")
    yield t
    t.stop()


@pytest.fixture
def fresh_tern(tmp_path_factory):
    t = _make(tmp_path_factory, "fresh")
    yield t
    t.stop()


@pytest.fixture
def tern_factory(tmp_path_factory):
    """Start extra servers: tern_factory(domain=..., extra_config=...)."""
    started = []

    def make(name="extra", **kw):
        t = _make(tmp_path_factory, name, **kw)
        started.append(t)
        return t
    yield make
    for t in started:
        t.stop()
