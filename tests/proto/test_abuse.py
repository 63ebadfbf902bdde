"""Limits and abuse (issue 8), on one server with one worker, at most 3
connections per address and 2-second timeouts:
  - a 4th connection from the same address is refused with the
    protocol's temporary error in SMTP, IMAP and POP3, and a slot freed
    is usable again;
  - slowloris: a client trickling a byte every half second, never
    finishing its command, is cut at the timeout (the idle timer alone
    would never fire);
  - a client that pipelines big FETCHes and never reads its responses
    does not grow the worker's memory without bound, and others are
    still served."""
import os
import socket
import threading
import time

import pytest

from conftest import Tern, children
from test_imap_helpers import msg

CONFIG = """workers = 1
max_connections_per_ip = 3
smtp_timeout = 2s
imap_login_timeout = 2s
"""

REFUSED = {
    "smtp": b"421 4.7.0",
    "imap": b"* BYE [UNAVAILABLE]",
    "pop3": b"-ERR [SYS/TEMP]",
}
GREETING = {"smtp": b"220 ", "imap": b"* OK", "pop3": b"+OK"}


@pytest.fixture(scope="module")
def abuse(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("abuse"), extra_config=CONFIG)
    t.start()
    # The readiness probes of t.start() may still count for a moment.
    time.sleep(1)
    yield t
    t.stop()


def first_line(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def wait_closed(sock, timeout):
    """True when the server closes within timeout (reading everything)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_connections_per_ip(abuse, proto):
    port = abuse.port(proto)
    socks = [socket.create_connection((abuse.host, port)) for _ in range(3)]
    try:
        for s in socks:
            assert first_line(s).startswith(GREETING[proto])
        extra = socket.create_connection((abuse.host, port))
        line = first_line(extra)
        assert line.startswith(REFUSED[proto]), line
        assert wait_closed(extra, 5)
        extra.close()
        socks.pop().close()
        time.sleep(0.3)
        again = socket.create_connection((abuse.host, port))
        socks.append(again)
        assert first_line(again).startswith(GREETING[proto])
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)


SLOW_START = {"smtp": b"EHLO ", "imap": b"a1 LOGIN "}


# POP3 shares the line reader with SMTP (tests/unit/test_lib_conn.c covers
# it), but RFC 1939 makes its timeout at least 10 minutes: too slow here.
@pytest.mark.parametrize("proto", ["smtp", "imap"])
def test_slowloris_cut_at_timeout(abuse, proto):
    s = socket.create_connection((abuse.host, abuse.port(proto)))
    try:
        assert first_line(s).startswith(GREETING[proto])
        s.sendall(SLOW_START[proto])
        start = time.time()
        closed = False
        # timeout 2 s; a byte every 0.5 s keeps the idle timer happy
        while time.time() - start < 8:
            try:
                s.sendall(b"x")
            except OSError:
                closed = True
                break
            if wait_closed(s, 0.5):
                closed = True
                break
        took = time.time() - start
        assert closed, "a trickling client was never disconnected"
        assert took < 6, took
    finally:
        s.close()
    time.sleep(0.3)


def rss_kib(pid):
    total = 0
    for kid in children(pid):
        try:
            with open("/proc/%d/status" % kid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


def imap_cmd(sock, text, buf=b""):
    sock.sendall(text)
    tag = text.split(b" ", 1)[0]
    while not any(ln.startswith(tag + b" ") for ln in buf.split(b"\r\n")):
        chunk = sock.recv(65536)
        assert chunk, buf[-300:]
        buf += chunk
    return buf


def test_never_reading_client_bounded(abuse):
    big = msg("big", body=("z" * 998 + "\r\n") * 1000)   # ~1 MB
    s = socket.create_connection((abuse.host, abuse.port("imap")))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        first_line(s)
        imap_cmd(s, b"a LOGIN %s %s\r\n" % (abuse.user.encode(),
                                            abuse.password.encode()))
        imap_cmd(s, b"b APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
        imap_cmd(s, b"c SELECT INBOX\r\n")
        before = rss_kib(abuse.proc.pid)
        # 20000 FETCHes of 1 MB each, never reading a byte of the answers.
        burst = b"".join(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i
                         for i in range(20000))
        s.settimeout(3)
        sent = 0
        try:
            while sent < len(burst):
                sent += s.send(burst[sent:sent + 4096])
        except (socket.timeout, OSError):
            pass
        time.sleep(1)
        grown = rss_kib(abuse.proc.pid) - before
        # The output queue is capped at 16 MiB per connection; allow
        # buffers and the mapping of the message on top of that.
        print("never-reading client: sent %d of %d bytes, worker grew by "
              "%d KiB" % (sent, len(burst), grown))
        assert grown < 64 * 1024, "worker grew by %d KiB" % grown
        # Others are still served.
        o = socket.create_connection((abuse.host, abuse.port("imap")))
        try:
            assert first_line(o).startswith(b"* OK")
            assert b"d OK" in imap_cmd(o, b"d NOOP\r\n")
        finally:
            o.close()
    finally:
        s.close()
