#!/usr/bin/env python3
"""Delivery-to-IDLE push latency (issue 5): start a quickstart ternd on
loopback, put N IMAP clients in IDLE on the INBOXes of A accounts (N/A
clients each, spread over the two workers by the kernel), then deliver
D messages over SMTP one after another, each to one account in turn,
and time from the end of DATA (the client's final ".") to the
"* n EXISTS" each idler of that account receives. Prints the median,
p99 and maximum over all (delivery, idler) pairs, and the SMTP 250
latency for comparison.

  bench/idle_push_latency.py [-n 1000] [--accounts 100] [-d 1000]

Bounded: every wait has a deadline; loopback only. Not a timed test;
figures go to docs/performance.md."""
import argparse
import os
import selectors
import socket
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "proto"))
from conftest import Tern  # noqa: E402


def read_until(sock, buf, token, deadline):
    while token not in buf:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(buf[-200:])
        buf += chunk
    return buf.split(token, 1)[1]


def idlers(t, users, n, deadline):
    """n sockets in IDLE, idler i on users[i % len(users)]."""
    port = t.port("imap")
    socks = []
    for i in range(n):
        s = socket.create_connection((t.host, port), timeout=30)
        rest = read_until(s, b"", b"\r\n", deadline)
        s.sendall(('a LOGIN "%s" "secret-pass-1"\r\ns SELECT INBOX\r\n'
                   'i IDLE\r\n' % users[i % len(users)]).encode())
        read_until(s, rest, b"+ idling\r\n", deadline)
        s.setblocking(False)
        socks.append(s)
    return socks


def smtp_open(t):
    s = socket.create_connection((t.host, t.port("smtp")), timeout=30)
    # The final "." goes out alone after the body: without NODELAY,
    # Nagle holds it until the server's delayed ACK of the body (40 ms),
    # which then dominated every figure.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO bench.example\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    return s, f


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise EOFError("smtp closed")
        if line[3:4] == b" ":
            return line


def deliver(s, f, rcpt, i):
    s.sendall(b"MAIL FROM:<load@bench.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"
              % rcpt.encode())
    for _ in range(3):
        reply(f)
    s.sendall(b"Subject: push %d\r\n\r\nbody %d\r\n" % (i, i))
    t0 = time.perf_counter()
    s.sendall(b".\r\n")
    r = reply(f)
    assert r.startswith(b"250"), r
    return t0, time.perf_counter()


def wait_pushes(sel, want, t0, deadline):
    """Until every idler in want saw EXISTS: their latencies (s)."""
    got = []
    pending = set(want)
    while pending and time.perf_counter() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if b" EXISTS" in data and s in pending:
                got.append(time.perf_counter() - t0)
                pending.discard(s)
    return got, len(pending)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("-d", type=int, default=1000)
    a = ap.parse_args()
    t = Tern(tempfile.mkdtemp(prefix="tern-push-"),
             extra_config="max_connections_per_ip = 100000\n")
    t.start()
    try:
        users = ["push%d@%s" % (i, t.domain) for i in range(a.accounts)]
        for u in users:
            t.add_account(u, "secret-pass-1")
        socks = idlers(t, users, a.n, time.time() + 120 + a.n / 10)
        by_user = {u: [s for i, s in enumerate(socks)
                       if i % len(users) == j] for j, u in enumerate(users)}
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        smtp, f = smtp_open(t)
        lat, acks, missed = [], [], 0
        for i in range(a.d):
            u = users[i % len(users)]
            t0, t1 = deliver(smtp, f, u, i)
            acks.append(t1 - t0)
            got, lost = wait_pushes(sel, by_user[u], t0,
                                    time.perf_counter() + 10)
            lat += got
            missed += lost
        print("idlers=%d accounts=%d deliveries=%d pushes=%d missed=%d"
              % (a.n, a.accounts, a.d, len(lat), missed))
        print("push latency ms: median %.2f p99 %.2f max %.2f"
              % (pct(lat, 0.5), pct(lat, 0.99), max(lat) * 1000))
        print("SMTP 250 after DATA ms: median %.2f p99 %.2f"
              % (pct(acks, 0.5), pct(acks, 0.99)))
        smtp.close()
        for s in socks:
            s.close()
    finally:
        t.stop()


if __name__ == "__main__":
    main()
