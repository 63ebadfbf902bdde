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
same data.
"""
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "proto"))

from conftest import Tern  # noqa: E402
from test_imap_helpers import Raw  # noqa: E402

RUNS = 7


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


def timed(r, crit, cmd="SEARCH ", runs=RUNS):
    best = []
    hits = None
    for k in range(runs):
        t0 = time.perf_counter()
        tag, lines = r.cmd(cmd + crit)
        best.append(time.perf_counter() - t0)
        assert " OK " in tag, tag
        hits = sum(len(l.split()) - 2 for l in lines
                   if l.startswith(b"* SEARCH") or l.startswith(b"* SORT"))
    best.sort()
    return best[len(best) // 2] * 1000, best[0] * 1000, hits


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    keep = os.environ.get("BENCH_DIR")
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
                     "TEXT absentword", "TEXT example.org",
                     "TEXT user17@example.org", "BODY rm",
                     'SUBJECT "no such subject"',
                     'SUBJECT "message 99999"',
                     'SUBJECT "message 7"',
                     'FROM "user17@example.org"',
                     'TEXT "no such phrase"',
                     'BODY "raremarker no"'):
            med, low, hits = timed(r, crit)
            print("SEARCH %-28s %6d hits  median %7.1f ms  best %7.1f ms"
                  % (crit, hits, med, low))
        for cmd, crit in (("SORT ", "(DATE) UTF-8 ALL"),
                          ("SORT ", "(SUBJECT) UTF-8 ALL"),
                          ("THREAD ", "REFERENCES UTF-8 ALL")):
            med, low, hits = timed(r, crit, cmd, 3)
            print("%s%-28s median %7.1f ms  best %7.1f ms"
                  % (cmd, crit, med, low))
        r.cmd("LOGOUT")
    finally:
        tern.stop()
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
