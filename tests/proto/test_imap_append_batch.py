"""APPEND through the commit thread's group commit (src/store/store_commit.c):
many sessions appending at once each get their own UIDs and every
acknowledged message is stored exactly once; a MULTIAPPEND past the
open-file limit (its files parked and fsynced by the thread) is whole;
one job over quota in a batch fails alone; and the appending session
takes its new messages as \\Recent in the commit itself (RFC 3501
2.3.2)."""
import re
import threading
import uuid

from test_imap_helpers import Raw, msg, new_account

SESSIONS = 8
APPENDS_EACH = 12


def _append_cmd(tag, box, data):
    # LITERAL+ (RFC 7888): the whole command in one write
    return b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag.encode(), box.encode(),
                                              len(data), data)


def _appenduid(line):
    m = re.search(r"\[APPENDUID (\d+) ([0-9:,]+)\]", line)
    assert m, line
    uids = []
    for part in m.group(2).split(","):
        lo, _, hi = part.partition(":")
        uids += list(range(int(lo), int(hi or lo) + 1))
    return int(m.group(1)), uids


def _subjects_by_uid(r):
    line, unt = r.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS "
                      "(SUBJECT)])")
    assert " OK " in line, line
    out = {}
    for u in unt:
        m = re.match(rb"\* \d+ FETCH \(UID (\d+) .*Subject: (\S+)", u,
                     re.S)
        if m:
            out[int(m.group(1))] = m.group(2).decode()
    return out


def test_concurrent_appends_each_once(tern):
    accounts = [new_account(tern) for _ in range(2)]
    barrier = threading.Barrier(SESSIONS)
    acked = [[] for _ in range(SESSIONS)]  # (uidvalidity, uid, subject)
    errors = []

    def run(i):
        try:
            addr, pw = accounts[i % 2]
            r = Raw(tern, tls=False)
            r.login(addr, pw)
            barrier.wait(30)
            for k in range(APPENDS_EACH):
                subj = "s%d-m%d-%s" % (i, k, uuid.uuid4().hex[:8])
                tag = "a%d" % k
                r.send(_append_cmd(tag, "INBOX", msg(subj, "b %s\r\n"
                                                     % subj)))
                line, _ = r.tagged(tag)
                assert " OK " in line, line
                uv, uids = _appenduid(line)
                assert len(uids) == 1, line
                acked[i].append((uv, uids[0], subj))
            r.cmd("LOGOUT")
        except Exception as e:  # reported below, in the test's thread
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,))
               for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for a, (addr, pw) in enumerate(accounts):
        mine = [x for i in range(a, SESSIONS, 2) for x in acked[i]]
        assert len(mine) == SESSIONS // 2 * APPENDS_EACH
        uids = [u for _, u, _ in mine]
        assert len(set(uids)) == len(uids), "a UID given twice"
        assert len({uv for uv, _, _ in mine}) == 1
        r = Raw(tern, tls=False)
        r.login(addr, pw)
        line, unt = r.cmd("SELECT INBOX")
        assert b"* %d EXISTS" % len(mine) in unt, unt
        stored = _subjects_by_uid(r)
        # exactly the acknowledged messages, each under its APPENDUID
        assert stored == {u: s for _, u, s in mine}
        r.cmd("LOGOUT")


def test_multiappend_past_open_file_limit(tern):
    addr, pw = new_account(tern)
    r = Raw(tern, tls=False)
    r.login(addr, pw)
    subjects = ["multi-%02d-%s" % (k, uuid.uuid4().hex[:6])
                for k in range(40)]
    parts = []
    for s in subjects:
        data = msg(s, ("line of %s\r\n" % s) * 50)
        parts.append(b"{%d+}\r\n%s" % (len(data), data))
    r.send(b"m APPEND INBOX " + b" ".join(parts) + b"\r\n")
    line, _ = r.tagged("m")
    assert " OK " in line, line
    _, uids = _appenduid(line)
    assert len(uids) == len(subjects)
    line, unt = r.cmd("SELECT INBOX")
    assert b"* 40 EXISTS" in unt
    assert _subjects_by_uid(r) == dict(zip(uids, subjects))
    # the bodies are whole (the parked files were fsynced, not emptied)
    line, unt = r.cmd("UID FETCH %d BODY.PEEK[TEXT]" % uids[-1])
    assert (("line of %s\r\n" % subjects[-1]) * 50).encode() in unt[0]
    r.cmd("LOGOUT")


QUOTA_CONFIG = """plan three {
\tquota_messages = 3
}
"""


def test_overquota_job_fails_alone(tern_factory):
    t = tern_factory("appendquota", extra_config=QUOTA_CONFIG)
    small = "small@%s" % t.domain
    t.add_account(small, "pw-small-123", plan="three")
    other, other_pw = new_account(t)
    n_small, n_other = 6, 4
    barrier = threading.Barrier(n_small + n_other)
    replies = {}
    errors = []

    def run(name, addr, pw):
        try:
            r = Raw(t, tls=False)
            r.login(addr, pw)
            data = msg(name)
            barrier.wait(30)
            r.send(_append_cmd("q", "INBOX", data))
            replies[name] = r.tagged("q")[0]
            r.cmd("LOGOUT")
        except Exception as e:
            errors.append(repr(e))

    jobs = [("s%d" % i, small, "pw-small-123") for i in range(n_small)]
    jobs += [("o%d" % i, other, other_pw) for i in range(n_other)]
    threads = [threading.Thread(target=run, args=j) for j in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    ok_small = [n for n in replies if n[0] == "s" and " OK " in replies[n]]
    no_small = [n for n in replies if n[0] == "s" and n not in ok_small]
    assert len(ok_small) == 3, replies
    assert all("[OVERQUOTA]" in replies[n] for n in no_small), replies
    assert all(" OK " in replies["o%d" % i] for i in range(n_other)), \
        replies
    for addr, pw, want in ((small, "pw-small-123", ok_small),
                           (other, other_pw,
                            ["o%d" % i for i in range(n_other)])):
        r = Raw(t, tls=False)
        r.login(addr, pw)
        r.cmd("SELECT INBOX")
        assert sorted(_subjects_by_uid(r).values()) == sorted(want)
        r.cmd("LOGOUT")


def test_appender_takes_recent_in_commit(tern):
    addr, pw = new_account(tern)
    a = Raw(tern, tls=False)
    a.login(addr, pw)
    b = Raw(tern, tls=False)
    b.login(addr, pw)
    line, unt = a.cmd("SELECT INBOX")
    assert b"* 0 RECENT" in unt
    # b appends while a has INBOX selected; nobody took it yet
    line, _ = b.cmd("APPEND INBOX {%d+}\r\n%s" % (len(msg("by-b")),
                                                  msg("by-b").decode()))
    assert " OK " in line
    # a's APPEND takes b's message and its own: both \Recent for a
    a.send(_append_cmd("x", "INBOX", msg("by-a")))
    line, unt = a.tagged("x")
    assert " OK " in line, line
    assert b"* 2 EXISTS" in unt and b"* 2 RECENT" in unt, unt
    line, unt = a.cmd("FETCH 1:* (FLAGS)")
    assert all(b"\\Recent" in u for u in unt) and len(unt) == 2, unt
    a.send(_append_cmd("y", "INBOX", msg("by-a-2")))
    line, unt = a.tagged("y")
    assert b"* 3 EXISTS" in unt and b"* 3 RECENT" in unt, unt
    # nobody else gets them
    c = Raw(tern, tls=False)
    c.login(addr, pw)
    line, unt = c.cmd("SELECT INBOX")
    assert b"* 3 EXISTS" in unt and b"* 0 RECENT" in unt, unt
    # an EXAMINE session (read-only) appending takes none: it shows the
    # new message as \Recent without taking it (as for any new message)
    line, unt = c.cmd("EXAMINE INBOX")
    c.send(_append_cmd("z", "INBOX", msg("by-c")))
    line, unt = c.tagged("z")
    assert " OK " in line and b"* 4 EXISTS" in unt, unt
    assert b"* 1 RECENT" in unt, unt
    # ... so a takes that one at its next command
    line, unt = a.cmd("NOOP")
    assert b"* 4 EXISTS" in unt and b"* 4 RECENT" in unt, unt
    for r in (a, b, c):
        r.cmd("LOGOUT")
