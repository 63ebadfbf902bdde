#!/usr/bin/env python3
"""QRESYNC reconnect on a large mailbox (issue 5): start a quickstart
ternd on loopback, fill INBOX with M messages (MULTIAPPEND), remember
UIDVALIDITY and HIGHESTMODSEQ, change the flags of 5 messages and
expunge 5 others from a second session, then reconnect with
SELECT INBOX (QRESYNC (uidvalidity modseq)) and report the bytes the
server sent for that SELECT and the time it took (median of R).

  bench/qresync_reconnect.py [-m 100000] [-r 5] [--workers N]
                             [--restart] [--probe]

--restart restarts ternd after the changes, so that no worker has the
mailbox's view cached and the first reconnect that lands on each worker
reads the whole view (the times are printed in order). --probe keeps a
second connection sending NOOP during the reconnects and reports its
slowest round trip: with --workers 1 it shares the worker, so that is
how long the worker's loop was held by a SELECT.

Bounded; loopback only. Not a timed test; figures go to
docs/performance.md."""
import argparse
import os
import re
import sys
import tempfile
import threading
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
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--probe", action="store_true")
    a = ap.parse_args()
    extra = "workers = %d\n" % a.workers if a.workers > 0 else ""
    t = Tern(tempfile.mkdtemp(prefix="tern-qresync-"), extra_config=extra)
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
        if a.restart:
            t.restart()
        stop, rtts = threading.Event(), []
        if a.probe:
            p = Imap(t, t.user, t.password)

            def probe():
                # bounded: stops with the reconnects
                while not stop.is_set():
                    t2 = time.perf_counter()
                    p.cmd("NOOP")
                    rtts.append((time.perf_counter() - t2) * 1000)
            th = threading.Thread(target=probe)
            th.start()
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
        if a.probe:
            stop.set()
            th.join()
            p.close()
        print("times ms in order: %s"
              % " ".join("%.1f" % x for x in times))
        times.sort()
        print("QRESYNC SELECT on %d messages: %d bytes, %d FETCH, %s"
              % (a.m, size, fetches, vanished.strip().decode()))
        # the read thread's own figures (ternd logs each view it read,
        # and each view snapshot it wrote)
        for ln in t.log().splitlines():
            for ev in ("view-loaded", "view-snapshot-write"):
                if " %s " % ev in ln:
                    print(ev, ln.split(" %s " % ev, 1)[1])
        if a.probe and rtts:
            rtts.sort()
            print("probe NOOP ms: median %.2f max %.1f (of %d)"
                  % (rtts[len(rtts) // 2], rtts[-1], len(rtts)))
        print("time ms: median %.1f best %.1f (of %d)"
              % (times[len(times) // 2], times[0], a.r))
    finally:
        t.stop()


if __name__ == "__main__":
    main()
