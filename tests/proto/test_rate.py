"""Commands per second (issue 8), on a server with command_rate = 20 and
command_burst = 5: a client that pipelines many commands in one write is
slowed down, not refused. In SMTP, IMAP and POP3, N commands sent at once
take at least (N - burst) / rate seconds (a lower bound, so a loaded
machine cannot make it fail), each gets its normal reply in order, and
the connection is still usable afterwards."""
import socket
import time

import pytest

from conftest import Tern

RATE = 20
BURST = 5
N = 40
CONFIG = """workers = 1
command_rate = %d
command_burst = %d
""" % (RATE, BURST)


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("rate"), extra_config=CONFIG)
    t.start()
    yield t
    t.stop()


class Lines:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self, timeout=30):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            assert left > 0, "no reply within %ss: %r" % (timeout, self.buf)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            assert chunk, "closed early: %r" % self.buf
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply_smtp(self):
        """One SMTP reply (multi-line too): its last line."""
        while True:
            line = self.line()
            if len(line) < 4 or line[3:4] != b"-":
                return line

    def until_tagged(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return line


def min_seconds(commands):
    # A small slack for the millisecond rounding of the timers.
    return (commands - BURST) / RATE - 0.1


def test_smtp_pipelined_commands_are_slowed_not_refused(slow):
    with socket.create_connection((slow.host, slow.port("smtp"))) as s:
        r = Lines(s)
        assert r.line().startswith(b"220 ")
        s.sendall(b"EHLO client.test\r\n")
        assert r.reply_smtp().startswith(b"250 ")
        time.sleep(BURST / RATE + 0.2)  # the bucket is full again
        t0 = time.monotonic()
        s.sendall(b"NOOP\r\n" * N)
        replies = [r.reply_smtp() for _ in range(N)]
        elapsed = time.monotonic() - t0
        assert all(x.startswith(b"250 ") for x in replies), replies
        assert elapsed >= min_seconds(N), elapsed
        # still a normal session: a transaction goes through
        s.sendall(b"MAIL FROM:<a@client.test>\r\n")
        assert r.reply_smtp().startswith(b"250 ")
        s.sendall(b"RSET\r\nQUIT\r\n")
        assert r.reply_smtp().startswith(b"250 ")
        assert r.reply_smtp().startswith(b"221 ")
    assert "rate-limited" in slow.log()


def test_imap_pipelined_commands_are_slowed_not_refused(slow):
    with socket.create_connection((slow.host, slow.port("imap"))) as s:
        r = Lines(s)
        assert r.line().startswith(b"* OK")
        s.sendall(b'a LOGIN "%s" "%s"\r\n' % (slow.user.encode(),
                                              slow.password.encode()))
        assert r.until_tagged(b"a").startswith(b"a OK")
        time.sleep(BURST / RATE + 0.2)
        t0 = time.monotonic()
        s.sendall(b"".join(b"t%d NOOP\r\n" % i for i in range(N)))
        for i in range(N):
            tag = b"t%d" % i
            assert r.until_tagged(tag).startswith(tag + b" OK")
        elapsed = time.monotonic() - t0
        assert elapsed >= min_seconds(N), elapsed
        s.sendall(b"s SELECT INBOX\r\n")
        assert r.until_tagged(b"s").startswith(b"s OK")
        s.sendall(b"z LOGOUT\r\n")
        assert r.until_tagged(b"z").startswith(b"z OK")


def test_pop3_pipelined_commands_are_slowed_not_refused(slow):
    with socket.create_connection((slow.host, slow.port("pop3"))) as s:
        r = Lines(s)
        assert r.line().startswith(b"+OK")
        s.sendall(b"USER %s\r\n" % slow.user.encode())
        assert r.line().startswith(b"+OK")
        s.sendall(b"PASS %s\r\n" % slow.password.encode())
        assert r.line().startswith(b"+OK")
        time.sleep(BURST / RATE + 0.2)
        t0 = time.monotonic()
        s.sendall(b"NOOP\r\n" * N)
        replies = [r.line() for _ in range(N)]
        elapsed = time.monotonic() - t0
        assert all(x.startswith(b"+OK") for x in replies), replies
        assert elapsed >= min_seconds(N), elapsed
        s.sendall(b"STAT\r\n")
        assert r.line().startswith(b"+OK ")
        s.sendall(b"QUIT\r\n")
        assert r.line().startswith(b"+OK")


def test_half_closed_client_gets_every_reply(slow):
    """A client that pipelines, then shuts down its sending side, still
    reads every reply: the throttled commands run before the EOF is
    acted on, and queued replies are sent before the close."""
    with socket.create_connection((slow.host, slow.port("smtp"))) as s:
        r = Lines(s)
        assert r.line().startswith(b"220 ")
        s.sendall(b"HELO client.test\r\n" + b"NOOP\r\n" * 20)
        s.shutdown(socket.SHUT_WR)
        replies = [r.reply_smtp() for _ in range(21)]
        assert all(x.startswith(b"250") for x in replies), replies
        s.settimeout(10)
        assert s.recv(100) == b""
