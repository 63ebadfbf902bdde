"""The persisted view snapshot of a large mailbox (store_view_snap.c):
the first SELECT of a mailbox of more than STORE_VIEW_SNAP_MIN_MSGS
(5,000) messages writes one (ternd logs view-snapshot-write); flag and
keyword changes, expunges and deliveries follow in another session;
after a restart (no worker has the view cached) a QRESYNC SELECT and a
plain SELECT read the snapshot plus only the rows changed since (the
view-loaded line says how many came from where), and what they show is
exactly what a session that was never cold sees. Then a change of every
message (more than STORE_VIEW_SNAP_MAX_DELTA) makes the next cold load
write a new snapshot, which the one after reads with no row at all.

workers = 1, so every SELECT after a restart is the worker's first."""
import re
import smtplib
import time

import pytest

from conftest import Tern
from test_imap_helpers import (Raw, listing, listing_flags, msg,
                               multiappend, new_account)

N = 5200
FLAGGED = [2, 2500, 5199]
KEYWORDS = [3, 100, 4000]
TOUCHED = 7  # \Seen set and taken away again: same flags, new MODSEQ
GONE = [1, 50, 51, 52, 3000, 5200]

LOADED_RE = re.compile(
    r"view-loaded mailbox_id=\d+ messages=(\d+) snapshot=(\d) "
    r"from_snapshot=(\d+) from_rows=(\d+) expunged_since=(\d+) "
    r"snapshot_save=(\d)")
WRITE_RE = re.compile(r"view-snapshot-write mailbox_id=\d+ messages=(\d+) "
                      r"modseq=(\d+) bytes=\d+ written=(\d)")
# a write that did not get the lock in time (the index thread may still
# be writing the fill's index rows): the test restarts and tries again
FAILED_RE = re.compile(r"view-snapshot-write-failed ")
TRIES = 5
FETCH_RE = re.compile(rb"\* (\d+) FETCH \((.*)\)$")


def _wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("viewsnap"),
             extra_config="workers = 1\n")
    t.start()
    t.acct = new_account(t)
    r = Raw(t)
    r.login(*t.acct)
    multiappend(r, N)
    r.close()
    yield t
    t.stop()


def _session(t, enable=None):
    r = Raw(t)
    r.login(*t.acct)
    if enable:
        line, _ = r.cmd("ENABLE " + enable)
        assert " OK " in line, line
    return r


def _loads(t):
    return [tuple(int(x) for x in m.groups())
            for m in LOADED_RE.finditer(t.log())]


def _writes(t):
    return [tuple(int(x) for x in m.groups())
            for m in WRITE_RE.finditer(t.log())]


def _select(t, r, params=""):
    """SELECT on r; the view-loaded figures of the read it caused:
    (messages, snapshot, from_snapshot, from_rows, expunged_since,
    snapshot_save)."""
    before = len(_loads(t))
    line, unt = r.cmd("SELECT INBOX" + params)
    assert "OK [READ-WRITE]" in line, (line, unt)
    loads = _wait(lambda: _loads(t)[before:], "the view-loaded line")
    assert len(loads) == 1, loads
    return unt, loads[0]


def _select_saving(t, expect, params=""):
    """A cold SELECT that must write a snapshot; restarted and tried
    again (bounded) while the write loses the lock. Returns the SELECT's
    untagged lines and the write's figures."""
    for _ in range(TRIES):
        writes, failed = len(_writes(t)), len(FAILED_RE.findall(t.log()))
        r = _session(t)
        unt, load = _select(t, r, params)
        assert load == expect, load
        _wait(lambda: (len(_writes(t)) > writes or
                       len(FAILED_RE.findall(t.log())) > failed),
              "the snapshot write")
        r.close()
        w = _writes(t)[writes:]
        if w:
            assert len(w) == 1, w
            return unt, w[0]
        t.restart()
    raise AssertionError("the snapshot write failed %d times" % TRIES)


def _code(unt, name):
    for u in unt:
        mt = re.search(rb"\[" + name + rb" (\d+)\]", u)
        if mt:
            return int(mt.group(1))
    raise AssertionError("no %s in %r" % (name, unt[:10]))


def _uidset(text):
    out = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        out.update(range(int(a), int(b or a) + 1))
    return out


def _store(r, uids, what):
    line, _ = r.cmd("UID STORE %s %s" % (",".join(map(str, uids)), what))
    assert " OK " in line, (uids, what, line)


def _append(r, flags, subject):
    m = msg(subject)
    r.send("ap APPEND INBOX (%s) {%d+}\r\n" % (flags, len(m)))
    r.send(m + b"\r\n")
    line, _ = r.tagged("ap")
    return int(re.search(r"APPENDUID \d+ (\d+)", line).group(1))


def _changes(t, model):
    """Flags, keywords, expunges and deliveries after the snapshot, in a
    session whose view is the worker's cached one. Returns the UIDs of
    the new messages that stay and of the one expunged again."""
    b = _session(t)
    line, _ = b.cmd("SELECT INBOX")
    assert " OK " in line, line
    _store(b, FLAGGED, "+FLAGS.SILENT (\\Flagged)")
    _store(b, KEYWORDS, "+FLAGS.SILENT ($Work $Later)")
    _store(b, [100], "-FLAGS.SILENT ($Later)")
    _store(b, [TOUCHED], "+FLAGS.SILENT (\\Seen)")
    _store(b, [TOUCHED], "-FLAGS.SILENT (\\Seen)")
    for u in FLAGGED:
        model[u] = model[u] | {b"\\Flagged"}
    for u in KEYWORDS:
        model[u] = model[u] | {b"$Work", b"$Later"}
    model[100] = model[100] - {b"$Later"}
    new = [_append(b, "$New", "kw"), _append(b, "\\Seen", "seen"),
           _append(b, "", "plain")]
    sm = smtplib.SMTP(t.host, t.port("smtp"), timeout=20)
    sm.sendmail("someone@remote.example", [t.acct[0]], msg("by smtp"))
    sm.quit()
    line, _ = b.cmd("NOOP")
    line, unt = b.cmd("UID SEARCH UID %d:*" % (new[-1] + 1))
    new.append(int(unt[0].split()[2]))
    model[new[0]] = frozenset({b"$New"})
    model[new[1]] = frozenset({b"\\Seen"})
    model[new[2]] = model[new[3]] = frozenset()
    _store(b, [new[0]], "+FLAGS.SILENT (\\Answered)")
    model[new[0]] = model[new[0]] | {b"\\Answered"}
    again = new.pop(2)
    _store(b, GONE + [again], "+FLAGS.SILENT (\\Deleted)")
    line, _ = b.cmd("UID EXPUNGE %s" % ",".join(map(str, GONE + [again])))
    assert " OK " in line, line
    for u in GONE + [again]:
        del model[u]
    warm = listing(b)
    b.close()
    return new, again, warm


def _check_listing(got, model, warm):
    assert got == warm
    assert [g[1] for g in got] == sorted(model)
    for _, uid, flags, _ in got:
        assert flags == model[uid], (uid, flags, model[uid])


def test_snapshot_then_changes_then_cold_select(srv):
    t = srv
    model = {u: frozenset() for u in range(1, N + 1)}
    # no snapshot yet: every row read, one is written
    unt, w = _select_saving(t, (N, 0, 0, N, 0, 1))
    uv = _code(unt, b"UIDVALIDITY")
    h0 = _code(unt, b"HIGHESTMODSEQ")
    assert w == (N, h0, 1), w
    writes = len(_writes(t))

    new, again, warm = _changes(t, model)
    changed = FLAGGED + KEYWORDS + [TOUCHED]
    t.restart()

    # cold, QRESYNC: snapshot minus GONE, plus the changed and new rows
    c = _session(t, "QRESYNC")
    unt, load = _select(t, c, " (QRESYNC (%d %d))" % (uv, h0))
    kept = N - len(GONE) - len(changed)
    assert load == (len(model), 1, kept, len(changed) + len(new),
                    len(GONE), 0), load
    assert _code(unt, b"UIDVALIDITY") == uv
    exists = [int(u.split()[1]) for u in unt if u.endswith(b" EXISTS")]
    assert exists == [len(model)]
    van = [u for u in unt if u.startswith(b"* VANISHED (EARLIER) ")]
    assert len(van) == 1, unt
    assert _uidset(van[0].split()[3].decode()) == set(GONE + [again])
    fetched = {}
    for u in unt:
        if FETCH_RE.match(u):
            uid = int(re.search(rb"UID (\d+)", u).group(1))
            fetched[uid] = listing_flags(u)
    assert sorted(fetched) == sorted(changed + new)
    for uid, flags in fetched.items():
        assert flags == model[uid], (uid, flags)
    _check_listing(listing(c), model, warm)
    c.close()
    assert len(_writes(t)) == writes  # a small change: no new snapshot

    # cold again, a plain SELECT
    t.restart()
    d = _session(t)
    unt, load = _select(t, d)
    assert load == (len(model), 1, kept, len(changed) + len(new),
                    len(GONE), 0), load
    assert [int(u.split()[1]) for u in unt
            if u.endswith(b" EXISTS")] == [len(model)]
    _check_listing(listing(d), model, warm)

    # every message changed: the next cold load writes a new snapshot
    line, _ = d.cmd("UID STORE 1:* +FLAGS.SILENT (\\Answered)")
    assert " OK " in line, line
    for u in model:
        model[u] = model[u] | {b"\\Answered"}
    warm = listing(d)
    d.close()
    t.restart()
    unt, w = _select_saving(t, (len(model), 1, 0, len(model), len(GONE), 1))
    assert w == (len(model), _code(unt, b"HIGHESTMODSEQ"), 1), w
    t.restart()
    f = _session(t, "CONDSTORE")
    unt, load = _select(t, f)
    assert load == (len(model), 1, len(model), 0, 0, 0), load
    _check_listing(listing(f), model, warm)
    f.close()
