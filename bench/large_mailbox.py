#!/usr/bin/env python3
"""SELECT, QRESYNC reconnect, SORT and THREAD on a large mailbox
(issue 5, issue 9 "large mailbox"). Starts a quickstart ternd on
loopback, fills INBOX with M messages by MULTIAPPEND (1000 per command)
whose headers vary like real mail (display names, Re:/Fwd: subjects,
encoded words, References chains, Date), makes 10 changes from a second
session after remembering HIGHESTMODSEQ (5 flag changes, 5 expunges),
then times, each as send-to-tagged-OK over plain IMAP, median of R:

  SELECT INBOX (the first one after the server started, which each
  worker loads from the store, and the median, which may come from the
  worker's view cache), SELECT INBOX (QRESYNC (uidvalidity modseq)) on a
  fresh connection each time (and its bytes), SORT by each key, THREAD
  REFERENCES / ORDEREDSUBJECT.

  bench/large_mailbox.py [-m 100000] [-r 5] [--dir DIR] [--only select,sort]

With --dir the directory is kept, and a directory already filled by an
earlier run is reused as it is (no fill, the same 10 changes), so two
builds can be compared on the same data: copy the directory first, as a
newer build may migrate its database. TERND=... picks the binary.
Bounded; loopback only. Not a timed test; figures go to
docs/performance.md."""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "proto"))
from conftest import Tern  # noqa: E402
from rawimap import Imap, fill  # noqa: E402

NAMES = ["Alice Martin", "bob", "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=",
         "\"Smith, Carol\"", "", "Dave O'Neil", "Eve", "zed"]
SUBJECTS = ["quarterly report", "lunch on friday?", "=?UTF-8?B?"
            "w6RyZ2VyIG1pdCBkZXIgQmFobg==?=", "[list] release 1.%d",
            "meeting notes %d", "Invoice #%d", "build failed", "hello"]


def message(i):
    name = NAMES[i % len(NAMES)]
    frm = "%s <u%d@example.org>" % (name, i % 97) if name else \
        "u%d@example.org" % (i % 97)
    subj = SUBJECTS[(i // 3) % len(SUBJECTS)]
    if "%d" in subj:
        subj = subj % (i % 50)
    lead = ["", "Re: ", "RE: [list] ", "Fwd: ", "Re: Re: "][i % 5]
    # threads of about 5: each message refers to the previous ones
    root = i - i % 5
    refs = " ".join("<%d@bench>" % k for k in range(root, i))
    hdr = ("From: %s\r\nTo: Team %d <t%d@example.test>\r\n"
           "Cc: c%d@example.net\r\nSubject: %s%s\r\n"
           "Message-ID: <%d@bench>\r\n"
           "Date: Mon, %d Jan 2024 %02d:%02d:00 +0100\r\n"
           % (frm, i % 13, i % 13, i % 7, lead, subj, i, 1 + i % 28,
              (i * 7) % 24, i % 60))
    if refs:
        hdr += "References: %s\r\nIn-Reply-To: <%d@bench>\r\n" % (refs,
                                                                  i - 1)
    return (hdr + "\r\nbody %d\r\n" % i).encode()


def prepare(t, m, state_file):
    if os.path.exists(state_file):
        with open(state_file) as f:
            return json.load(f)
    t0 = time.time()
    c = Imap(t, t.user, t.password, timeout=600)
    fill(c, m, message)
    print("filled %d messages in %.0f s" % (m, time.time() - t0))
    c.cmd("ENABLE QRESYNC")
    lines, _ = c.cmd("SELECT INBOX")
    text = b"".join(lines).decode()
    st = {"uidvalidity": int(re.search(r"UIDVALIDITY (\d+)", text).group(1)),
          "modseq": int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1)),
          "m": m}
    c.close()
    other = Imap(t, t.user, t.password, timeout=600)
    other.cmd("SELECT INBOX")
    other.cmd("UID STORE 10,20,30,40,50 +FLAGS (\\Seen)")
    other.cmd("UID STORE 60,70,80,90,100 +FLAGS (\\Deleted)")
    other.cmd("UID EXPUNGE 60,70,80,90,100")
    other.close()
    with open(state_file, "w") as f:
        json.dump(st, f)
    return st


def timed(c, text, runs):
    times, size, lines = [], 0, []
    for _ in range(runs):
        t1 = time.perf_counter()
        lines, size = c.cmd(text)
        times.append((time.perf_counter() - t1) * 1000)
    times.sort()
    return times[len(times) // 2], times[0], size, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", type=int, default=100000)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("--dir")
    ap.add_argument("--only", default="select,qresync,sort,thread")
    a = ap.parse_args()
    only = a.only.split(",")
    d = a.dir or tempfile.mkdtemp(prefix="tern-bigbox-")
    t = Tern(d)
    t.start()
    try:
        st = prepare(t, a.m, os.path.join(d, "bench-state.json"))
        c = Imap(t, t.user, t.password, timeout=600)
        c.cmd("ENABLE QRESYNC")
        if "select" in only:
            times = []
            for _ in range(a.r):
                med, best, _, lines = timed(c, "SELECT INBOX", 1)
                times.append(med)
                c.cmd("UNSELECT")
            first = times[0]
            times.sort()
            print("SELECT INBOX (%s): first %.1f ms, median %.1f ms "
                  "best %.1f ms worst %.1f ms"
                  % (b"".join(l for l in lines if b"EXISTS" in l).strip()
                     .decode(), first, times[len(times) // 2], times[0],
                     times[-1]))
        if "qresync" in only:
            q = "SELECT INBOX (QRESYNC (%d %d))" % (st["uidvalidity"],
                                                   st["modseq"])
            times, size, lines = [], 0, []
            for _ in range(a.r):
                # a fresh connection each time, as a reconnecting client
                r = Imap(t, t.user, t.password, timeout=600)
                r.cmd("ENABLE QRESYNC")
                med, best, size, lines = timed(r, q, 1)
                times.append(med)
                r.close()
            times.sort()
            print("QRESYNC SELECT: %d bytes, %d FETCH, %s; median %.1f ms "
                  "best %.1f ms worst %.1f ms"
                  % (size, sum(1 for l in lines if b" FETCH " in l),
                     b"".join(l for l in lines if b"VANISHED" in l).strip()
                     .decode(), times[len(times) // 2], times[0],
                     times[-1]))
        c.cmd("SELECT INBOX")
        if "sort" in only:
            for key in ("ARRIVAL", "DATE", "SIZE", "SUBJECT", "FROM", "TO",
                        "CC", "DISPLAYFROM", "REVERSE DATE"):
                med, best, _, _ = timed(c, "SORT (%s) UTF-8 ALL" % key,
                                        a.r)
                print("SORT (%s): median %.1f ms best %.1f ms"
                      % (key, med, best))
        if "thread" in only:
            for alg in ("REFERENCES", "ORDEREDSUBJECT"):
                med, best, _, _ = timed(c, "THREAD %s UTF-8 ALL" % alg, a.r)
                print("THREAD %s: median %.1f ms best %.1f ms"
                      % (alg, med, best))
        c.close()
    finally:
        t.stop()
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
