#!/usr/bin/env python3
"""Memory per idle IMAP connection: start a quickstart ternd on loopback,
open N connections (plain IMAP or implicit TLS), log each in, SELECT
INBOX, optionally NOTIFY SET over INBOX and two folders, enter IDLE, then
report the RSS growth of the worker processes divided by N.

  bench/imap_idle_rss.py [-n 2000] [--tls] [--notify] [--compress]
                         [--accounts 100] [--parallel K]

--parallel K (with --tls): K TLS handshakes at a time, not one after
the other, as when many clients reconnect at once (each handshake
allocates and frees about 34 KB in the worker).

Not a timed test; figures go to docs/performance.md."""
import argparse
import os
import select
import socket
import ssl
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "proto"))
from conftest import Tern, children  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def read_until(sock, buf, token, deadline):
    while token not in buf:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(buf[-200:])
        buf += chunk
    return buf.split(token, 1)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--notify", action="store_true")
    ap.add_argument("--compress", action="store_true")
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--parallel", type=int, default=1)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tern-rss-")
    t = Tern(tmp, extra_config="max_connections_per_ip = 100000\n")
    t.start()
    try:
        users = []
        for i in range(a.accounts):
            addr = "rss%d@%s" % (i, t.domain)
            t.add_account(addr, "secret-pass-1")
            users.append(addr)
        port = t.port("imaps" if a.tls else "imap")
        ctx = ssl._create_unverified_context()

        def handshakes(batch, deadline):
            """TLS handshakes of a batch of connected sockets, all at
            once; the greeting is read afterwards."""
            pend = []
            for s in batch:
                s.setblocking(False)
                pend.append(ctx.wrap_socket(s, do_handshake_on_connect=False))
            done = []
            while pend:
                if time.time() > deadline:
                    raise TimeoutError("handshakes")
                waiting_r, waiting_w = [], []
                for s in pend:
                    try:
                        s.do_handshake()
                        done.append(s)
                    except ssl.SSLWantReadError:
                        waiting_r.append(s)
                    except ssl.SSLWantWriteError:
                        waiting_w.append(s)
                pend = waiting_r + waiting_w
                if pend:
                    poll = select.poll()
                    for s in waiting_r:
                        poll.register(s, select.POLLIN)
                    for s in waiting_w:
                        poll.register(s, select.POLLOUT)
                    poll.poll(1000)
            for s in done:
                s.setblocking(True)
                s.settimeout(30)
            return done

        def opened(count):
            socks = []
            deadline = time.time() + 120 + count / 10
            if a.tls and a.parallel > 1:
                for i in range(0, count, a.parallel):
                    batch = [socket.create_connection((t.host, port),
                                                      timeout=30)
                             for _ in range(min(a.parallel, count - i))]
                    for s in handshakes(batch, deadline):
                        socks.append([s, read_until(s, b"", b"\r\n",
                                                    deadline)])
                count = 0
            for i in range(count):
                s = socket.create_connection((t.host, port), timeout=30)
                if a.tls:
                    s = ctx.wrap_socket(s)
                # paced by the greeting: the accept queue never overflows
                socks.append([s, read_until(s, b"", b"\r\n", deadline)])
            for i, p in enumerate(socks):
                p[0].sendall(('a LOGIN "%s" "secret-pass-1"\r\n' % users[
                    i % len(users)]).encode())
            for p in socks:
                p[1] = read_until(p[0], p[1], b"a OK", deadline)
                p[1] = read_until(p[0], p[1], b"\r\n", deadline)
            zs = []
            for p in socks:
                cmds = ""
                if a.notify:
                    cmds += ("n NOTIFY SET (selected (MessageNew "
                             "MessageExpunge)) (mailboxes (Sent Drafts) "
                             "(MessageNew MessageExpunge))"
                             " (personal (MailboxName))\r\n")
                cmds += "s SELECT INBOX\r\ni IDLE\r\n"
                data = cmds.encode()
                if a.compress:
                    p[0].sendall(b"c COMPRESS DEFLATE\r\n")
                    p[1] = read_until(p[0], p[1], b"c OK DEFLATE active.\r\n",
                                      deadline)
                    zo = zlib.compressobj(6, zlib.DEFLATED, -15)
                    data = zo.compress(data) + zo.flush(zlib.Z_SYNC_FLUSH)
                    zs.append((zo, zlib.decompressobj(-15)))
                p[0].sendall(data)
            for i, p in enumerate(socks):
                if a.compress:
                    plain = b""
                    while b"+ idling\r\n" not in plain:
                        p[0].settimeout(max(0.1, deadline - time.time()))
                        plain += zs[i][1].decompress(p[0].recv(65536))
                else:
                    p[1] = read_until(p[0], p[1], b"+ idling\r\n", deadline)
            return socks

        kids = children(t.proc.pid)
        warm = opened(20)
        for s, _ in warm:
            s.close()
        time.sleep(1.0)
        before = {k: rss_kb(k) for k in kids}
        t0 = time.time()
        socks = opened(a.n)
        took = time.time() - t0
        time.sleep(1.0)
        after = {k: rss_kb(k) for k in kids}
        grow = sum(after[k] - before[k] for k in kids)
        print("connections=%d tls=%s notify=%s compress=%s accounts=%d "
              "parallel=%d setup=%.1fs" % (a.n, a.tls, a.notify, a.compress,
                                           a.accounts, a.parallel, took))
        for k in kids:
            print("  pid %d rss %d kB -> %d kB" % (k, before[k], after[k]))
        print("rss growth %d kB, %.1f kB per idle connection"
              % (grow, grow / a.n))
        for s, _ in socks:
            s.close()
    finally:
        t.stop()


if __name__ == "__main__":
    main()
