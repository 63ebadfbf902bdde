#!/usr/bin/env python3
"""QRESYNC reconnect on a large mailbox (issue 5): start a quickstart
ternd on loopback, fill INBOX with M messages (MULTIAPPEND), remember
UIDVALIDITY and HIGHESTMODSEQ, change the flags of 5 messages and
expunge 5 others from a second session, then reconnect with
SELECT INBOX (QRESYNC (uidvalidity modseq)) and report the bytes the
server sent for that SELECT and the time it took (median of R).

  bench/qresync_reconnect.py [-m 100000] [-r 5]

Bounded; loopback only. Not a timed test; figures go to
docs/performance.md."""
import argparse
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "proto"))
from conftest import Tern  # noqa: E402
from rawimap import Imap, fill  # noqa: E402


def message(i):
    return b"From: x@example.org\r\nSubject: m\r\n\r\nbody %d\r\n" % i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", type=int, default=100000)
    ap.add_argument("-r", type=int, default=5)
    a = ap.parse_args()
    t = Tern(tempfile.mkdtemp(prefix="tern-qresync-"))
    t.start()
    try:
        t0 = time.time()
        c = Imap(t, t.user, t.password)
        fill(c, a.m, message)
        print("filled %d messages in %.0f s" % (a.m, time.time() - t0))
        c.cmd("ENABLE QRESYNC")
        lines, _ = c.cmd("SELECT INBOX")
        text = b"".join(lines).decode()
        uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", text).group(1))
        modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
        c.close()
        other = Imap(t, t.user, t.password)
        other.cmd("SELECT INBOX")
        other.cmd("UID STORE 10,20,30,40,50 +FLAGS (\\Seen)")
        other.cmd("UID STORE 60,70,80,90,100 +FLAGS (\\Deleted)")
        other.cmd("UID EXPUNGE 60,70,80,90,100")
        other.close()
        times, size, vanished, fetches = [], 0, b"", 0
        for _ in range(a.r):
            c = Imap(t, t.user, t.password)
            c.cmd("ENABLE QRESYNC")
            t1 = time.perf_counter()
            lines, size = c.cmd("SELECT INBOX (QRESYNC (%d %d))"
                                % (uidvalidity, modseq))
            times.append((time.perf_counter() - t1) * 1000)
            vanished = b"".join(l for l in lines if b"VANISHED" in l)
            fetches = sum(1 for l in lines if b" FETCH " in l)
            c.close()
        times.sort()
        print("QRESYNC SELECT on %d messages: %d bytes, %d FETCH, %s"
              % (a.m, size, fetches, vanished.strip().decode()))
        print("time ms: median %.1f best %.1f (of %d)"
              % (times[len(times) // 2], times[0], a.r))
    finally:
        t.stop()


if __name__ == "__main__":
    main()
