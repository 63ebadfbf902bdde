"""SELECT of a mailbox large enough for the per-worker view cache
(imap_view_cache.c, IMAP_VIEW_CACHE_MIN_MSGS = 1000): between rounds a
second session changes flags and keywords, expunges and appends; every
round several new connections (so both workers, each with its own cache,
are hit) SELECT and must see exactly the mailbox the test expects, and a
QRESYNC SELECT from the first round's state must report every UID
expunged since and every message changed since. A session selected
before the changes keeps its sequence numbers until told of the
expunges."""
import re

from test_imap_helpers import Raw, listing, multiappend, new_account

N = 1100
ROUNDS = 4
CONNS = 4


def _fill(tern, addr, pw, n):
    r = Raw(tern)
    r.login(addr, pw)
    multiappend(r, n)
    r.close()


def _select(r, params=""):
    line, unt = r.cmd("SELECT INBOX%s" % params)
    assert " OK " in line, (line, unt)
    exists = [int(u.split()[1]) for u in unt if u.endswith(b" EXISTS")]
    return unt, exists[0]


def _check(tern, addr, pw, model):
    for _ in range(CONNS):
        r = Raw(tern)
        r.login(addr, pw)
        r.cmd("ENABLE CONDSTORE")
        _, exists = _select(r)
        assert exists == len(model)
        got = listing(r)
        assert [g[0] for g in got] == list(range(1, len(model) + 1))
        assert [g[1] for g in got] == sorted(model)
        for _, uid, flags, _ in got:
            assert flags == model[uid], (uid, flags, model[uid])
        r.close()


def _change(tern, addr, pw, model, k):
    """Round k's changes: flags and a keyword on some, expunge others,
    append two."""
    r = Raw(tern)
    r.login(addr, pw)
    _select(r)
    uids = sorted(model)
    flag = uids[k * 7 % len(uids)]
    kw = uids[(k * 13 + 5) % len(uids)]
    gone = [uids[(k * 31 + j * 97) % len(uids)] for j in range(3)]
    gone = sorted(set(gone) - {flag, kw})
    line, _ = r.cmd("UID STORE %d +FLAGS (\\Flagged)" % flag)
    assert " OK " in line
    model[flag] = model[flag] | {b"\\Flagged"}
    line, _ = r.cmd("UID STORE %d +FLAGS ($round%d)" % (kw, k))
    assert " OK " in line
    model[kw] = model[kw] | {("$round%d" % k).encode()}
    line, _ = r.cmd("UID STORE %s +FLAGS.SILENT (\\Deleted)"
                    % ",".join(map(str, gone)))
    assert " OK " in line
    line, _ = r.cmd("UID EXPUNGE %s" % ",".join(map(str, gone)))
    assert " OK " in line
    for u in gone:
        del model[u]
    for j in range(2):
        m = "Subject: new %d %d\r\n\r\nx\r\n" % (k, j)
        line, _ = r.cmd("APPEND INBOX (\\Seen) {%d+}\r\n%s" % (len(m), m))
        uid = int(re.search(r"APPENDUID \d+ (\d+)", line).group(1))
        model[uid] = frozenset({b"\\Seen"})
    r.close()
    return gone, [flag, kw]


def test_big_view_cache_select_and_qresync(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, N)
    model = {u: frozenset() for u in range(1, N + 1)}
    _check(tern, addr, pw, model)
    # the state a reconnecting client remembers
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("ENABLE QRESYNC")
    unt, _ = _select(r)
    text = b" ".join(unt).decode()
    uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", text).group(1))
    modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
    r.close()
    # a session that stays selected through the changes
    old = Raw(tern)
    old.login(addr, pw)
    _select(old)
    vanished, changed = set(), set()
    for k in range(ROUNDS):
        gone, touched = _change(tern, addr, pw, model, k)
        vanished |= set(gone)
        changed = (changed | set(touched)) - vanished
        _check(tern, addr, pw, model)
        q = Raw(tern)
        q.login(addr, pw)
        q.cmd("ENABLE QRESYNC")
        unt, exists = _select(q, " (QRESYNC (%d %d))" % (uidvalidity,
                                                          modseq))
        assert exists == len(model)
        van = set()
        for u in unt:
            if u.startswith(b"* VANISHED (EARLIER) "):
                for part in u.split()[3].split(b","):
                    a, _, b = part.partition(b":")
                    van |= set(range(int(a), int(b or a) + 1))
        assert van == vanished, (van, vanished)
        fetched = {int(re.search(rb"UID (\d+)", u).group(1))
                   for u in unt if b" FETCH " in u}
        new = {u for u in model if u > N}
        assert fetched == changed | new, (fetched, changed, new)
        q.close()
    # the old session learns of the expunges only now, each once, and
    # ends with the model
    line, unt = old.cmd("NOOP")
    assert " OK " in line
    assert sum(1 for u in unt if u.endswith(b" EXPUNGE")) == len(vanished)
    got = listing(old)
    assert [g[1] for g in got] == sorted(model)
    old.close()
