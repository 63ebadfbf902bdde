#!/usr/bin/python3
"""SEARCH TEXT / BODY on a large mailbox (issue 5: goal < 50 ms on
100,000 messages). Starts ternd --quickstart in a temporary directory on
loopback, fills one mailbox with N distinct messages by MULTIAPPEND
(1000 per command, one commit each), then times SEARCH (and SORT,
THREAD) over IMAP (send to tagged OK, median of several runs, server
and client on the same machine). Not a test: prints figures for docs/performance.md.

  bench/search_text.py [N]        (default 20000; build/ternd first)

With BENCH_DIR=DIR the server's directory is DIR and is kept; a later
run on the same DIR (e.g. with another TERND binary) skips the filling
when INBOX already holds N messages, so two builds are compared on the
same data. BENCH_MATCH=REGEX times only the SEARCH criteria it matches
(and no SORT/THREAD); BENCH_RUNS=N runs each N times (default 7).
Besides the wall time it prints the server's CPU time per command
(utime + stime of every ternd process, averaged over the runs).
"""
import os
import random
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "proto"))

from conftest import Tern  # noqa: E402
from test_imap_helpers import Raw  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def vocabulary(rng, n=5000):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))
            for _ in range(n)]


def message(rng, words, i, n):
    body = " ".join(rng.choice(words) for _ in range(200))
    if i % (n // 10) == 7:
        body += " raremarker"          # 10 messages
    if i % 50 == 3:
        body += " commonmarker"        # 2 %
    return ("From: user%d@example.org\r\nTo: demo@example.test\r\n"
            "Subject: message %d %s\r\nMessage-ID: <%d@bench>\r\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n%s\r\n"
            % (i % 300, i, rng.choice(words), i, body)).encode()


def fill(r, n, rng):
    words = vocabulary(rng)
    i = 0
    t0 = time.time()
    while i < n:
        batch = min(1000, n - i)
        r.send("f%d APPEND INBOX" % i)
        for _ in range(batch):
            m = message(rng, words, i, n)
            r.send(" {%d+}\r\n" % len(m))
            r.send(m)
            i += 1
        r.send("\r\n")
        tag, _ = r.tagged("f%d" % (i - batch))
        assert " OK " in tag, tag
    return time.time() - t0


def server_cpu(tern):
    """utime + stime (seconds) of every ternd process of this server
    (its session: started with start_new_session)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(st[3]) == tern.proc.pid:     # field 6: session id
            total += int(st[11]) + int(st[12])
    return total / os.sysconf("SC_CLK_TCK")


def timed(r, crit, cmd="SEARCH ", runs=RUNS, tern=None):
    best = []
    hits = None
    cpu0 = server_cpu(tern) if tern else 0
    for k in range(runs):
        t0 = time.perf_counter()
        tag, lines = r.cmd(cmd + crit)
        best.append(time.perf_counter() - t0)
        assert " OK " in tag, tag
        hits = sum(len(l.split()) - 2 for l in lines
                   if l.startswith(b"* SEARCH") or l.startswith(b"* SORT"))
    cpu = (server_cpu(tern) - cpu0) / runs * 1000 if tern else 0
    best.sort()
    return best[len(best) // 2] * 1000, best[0] * 1000, hits, cpu


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    keep = os.environ.get("BENCH_DIR")
    only = os.environ.get("BENCH_MATCH")
    d = keep or tempfile.mkdtemp(prefix="tern-bench-")
    tern = Tern(d)
    try:
        tern.start()
        r = Raw(tern, timeout=600)
        r.login(tern.user, tern.password)
        tag, lines = r.cmd("SELECT INBOX")
        have = [int(l.split()[1]) for l in lines if l.endswith(b" EXISTS")]
        if have and have[0] == n:
            print("reusing %d messages in %s" % (n, d))
        else:
            assert not have or have[0] == 0, "INBOX holds %s" % have
            secs = fill(r, n, random.Random(5))
            print("filled %d messages in %.1f s" % (n, secs))
            assert " OK " in r.cmd("SELECT INBOX")[0]
        for crit in ("TEXT raremarker", "BODY raremarker",
                     "TEXT commonmarker", "BODY commonmarker",
                     "TEXT 99@bench",
                     "TEXT absentword", "TEXT example.org",
                     "TEXT user17@example.org", "BODY rm",
                     'SUBJECT "no such subject"',
                     'SUBJECT "message 99999"',
                     'SUBJECT "message 7"',
                     'FROM "user17@example.org"',
                     'TEXT "no such phrase"',
                     'BODY "raremarker no"'):
            if only and not re.search(only, crit):
                continue
            med, low, hits, cpu = timed(r, crit, tern=tern)
            print("SEARCH %-28s %6d hits  median %7.1f ms  best %7.1f ms"
                  "  server cpu %6.1f ms" % (crit, hits, med, low, cpu))
        for cmd, crit in () if only else (("SORT ", "(DATE) UTF-8 ALL"),
                          ("SORT ", "(SUBJECT) UTF-8 ALL"),
                          ("THREAD ", "REFERENCES UTF-8 ALL")):
            med, low, hits, _ = timed(r, crit, cmd, 3)
            print("%s%-28s median %7.1f ms  best %7.1f ms"
                  % (cmd, crit, med, low))
        r.cmd("LOGOUT")
    finally:
        tern.stop()
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
