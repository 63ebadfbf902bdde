"""STORE, EXPUNGE, UID EXPUNGE, CLOSE, COPY, MOVE, FETCH's implicit
\\Seen and POP3 QUIT write on the worker's commit thread (group commit),
like APPEND: the replies wait for the durable COMMIT, pipelined commands
wait for the write before them, other sessions see the change once it is
answered, a client that goes away meanwhile leaves a healthy server and
an all-or-nothing change, and a write that fails (SQLITE_BUSY: the test
holds the write lock) answers NO / -ERR and changes nothing."""
import os
import re
import select
import socket
import sqlite3
import struct
import time

from pop3_helpers import Pop, deliver
from test_imap_helpers import Raw, login, msg, new_account


def _fill(tern, addr, pw, n):
    m = login(tern, addr, pw)
    for i in range(n):
        m.append("INBOX", None, None, msg("m%d" % i))
    m.logout()


def _selected(tern, addr, pw, cmd="SELECT INBOX", tls=True):
    r = Raw(tern, tls=tls)
    r.login(addr, pw)
    line, _ = r.cmd(cmd)
    assert " OK " in line, line
    return r


def _flags(r, seqs):
    """{seq: set of flags} from FETCH seqs (FLAGS)."""
    line, unt = r.cmd("FETCH %s (FLAGS)" % seqs)
    assert " OK " in line, line
    out = {}
    for u in unt:
        m = re.fullmatch(rb"\* (\d+) FETCH \(FLAGS \(([^)]*)\)\)", u)
        if m:
            out[int(m.group(1))] = set(m.group(2).split())
    return out


def _no_worker_died(tern):
    assert "child-died" not in tern.log()


def test_pipelined_store_and_fetch(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    r = _selected(tern, addr, pw)
    # one packet: every command waits for the write before it
    r.send("a STORE 1 +FLAGS (\\Seen)\r\nb FETCH 1 (FLAGS)\r\n"
           "c STORE 1:3 FLAGS (\\Flagged k1)\r\nd FETCH 1:3 (FLAGS)\r\n"
           "e STORE 2 -FLAGS.SILENT (k1)\r\nf FETCH 2 (FLAGS)\r\n")
    line, unt = r.tagged("a")
    assert line == "a OK Store completed."
    assert unt == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))"]
    line, unt = r.tagged("b")
    assert unt == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))"]
    line, unt = r.tagged("c")
    assert line == "c OK Store completed."
    assert b"* 1 FETCH (FLAGS (\\Flagged \\Recent k1))" in unt
    line, unt = r.tagged("d")
    assert unt[-3:] == [b"* %d FETCH (FLAGS (\\Flagged \\Recent k1))" % i
                        for i in (1, 2, 3)]
    line, unt = r.tagged("e")
    assert line == "e OK Store completed." and unt == []
    line, unt = r.tagged("f")
    assert unt == [b"* 2 FETCH (FLAGS (\\Flagged \\Recent))"]
    r.close()


def test_pipelined_move_and_copy(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    r = _selected(tern, addr, pw)
    line, _ = r.cmd("CREATE Dst")
    assert line.endswith("Create completed."), line
    line, unt = r.cmd("STATUS Dst (UIDVALIDITY)")
    v = int(re.search(rb"UIDVALIDITY (\d+)", unt[0]).group(1))
    r.send("a MOVE 1 Dst\r\nb FETCH 1:* (UID)\r\nc COPY 1 Dst\r\n"
           "d STATUS Dst (MESSAGES)\r\n")
    line, unt = r.tagged("a")
    assert line == "a OK Move completed."
    assert unt == [b"* OK [COPYUID %d 1 1] Moved UIDs." % v, b"* 1 EXPUNGE"]
    line, unt = r.tagged("b")
    assert unt == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]
    line, unt = r.tagged("c")
    assert line == "c OK [COPYUID %d 2 2] Copy completed." % v
    line, unt = r.tagged("d")
    assert unt == [b'* STATUS "Dst" (MESSAGES 2)']
    r.close()


def test_two_connections_store_at_once(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 4)
    conns = [_selected(tern, addr, pw) for _ in range(4)]
    # all four at once (likely more than one worker): each its own flag
    for i, r in enumerate(conns):
        r.send("s STORE %d +FLAGS (\\Seen)\r\nt STORE 1:4 +FLAGS (w%d)\r\n"
               % (i + 1, i))
    for i, r in enumerate(conns):
        line, unt = r.tagged("s")
        assert line == "s OK Store completed.", line
        line, unt = r.tagged("t")
        assert line == "t OK Store completed.", line
        assert len(unt) >= 4
    for r in conns:
        flags = _flags(r, "1:4")
        for seq in range(1, 5):
            assert b"\\Seen" in flags[seq]
            assert {b"w0", b"w1", b"w2", b"w3"} <= flags[seq], flags
        r.close()


def test_expunge_with_idle_client(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 5)
    idler = _selected(tern, addr, pw)
    idler.send("i IDLE\r\n")
    assert idler.line() == b"+ idling"
    a = _selected(tern, addr, pw)
    line, _ = a.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    assert line.endswith("OK Store completed.")
    line, unt = a.cmd("EXPUNGE")
    assert line.endswith("OK Expunge completed.")
    assert unt == [b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
    idler.sock.settimeout(20)
    pushed = []
    while len([x for x in pushed if x.endswith(b"EXPUNGE")]) < 2:
        pushed.append(idler.line())
    assert [x for x in pushed if x.endswith(b"EXPUNGE")] == \
        [b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
    idler.send("DONE\r\n")
    line, _ = idler.tagged("i")
    assert line == "i OK Idle completed."
    # UID EXPUNGE takes only the UIDs named; CLOSE the rest
    a.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")  # UIDs 1 and 3
    line, unt = a.cmd("UID EXPUNGE 3")
    assert line.endswith("OK Expunge completed.") and unt == [b"* 2 EXPUNGE"]
    line, _ = a.cmd("CLOSE")
    assert line.endswith("OK Close completed.")
    line, unt = idler.cmd("NOOP")
    assert [u for u in unt if u.endswith(b"EXPUNGE")] == \
        [b"* 2 EXPUNGE", b"* 1 EXPUNGE"]
    line, unt = a.cmd("STATUS INBOX (MESSAGES)")
    assert b'* STATUS "INBOX" (MESSAGES 1)' in unt
    for r in (a, idler):
        r.close()


def test_qresync_vanished_after_expunge(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("ENABLE QRESYNC")
    r.cmd("SELECT INBOX")
    r.cmd("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    line, unt = r.cmd("EXPUNGE")
    assert re.fullmatch(r"\S+ OK \[HIGHESTMODSEQ \d+\] Expunge completed.",
                        line), line
    assert unt == [b"* VANISHED 1,3"]
    r.close()


def _hangup(r, text):
    """Send text and close at once. Plain TCP with nothing unread: the
    server reads text before the end of the stream (no RST)."""
    r.send(text)
    r.sock.shutdown(socket.SHUT_WR)
    r.sock.close()


def _until(fn, what):
    """Poll fn() (bounded: 20 s) until it returns true."""
    for _ in range(400):
        if fn():
            return
        time.sleep(0.05)
    raise AssertionError("never: " + what)


def test_client_gone_while_store_or_expunge_pending(tern):
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 5)
    check = _selected(tern, addr, pw)
    for i in range(15):
        r = _selected(tern, addr, pw, tls=False)
        _hangup(r, "a STORE 1:5 +FLAGS (g%d)\r\n" % i)

        def done():
            # at any moment the change is all there or absent
            flags = _flags(check, "1:5")
            have = [b"g%d" % i in flags[s] for s in range(1, 6)]
            assert all(have) or not any(have), flags
            return all(have)
        _until(done, "STORE of a closed session")
    check.cmd("STORE 4:5 +FLAGS.SILENT (\\Deleted)")
    r = _selected(tern, addr, pw, tls=False)
    _hangup(r, "a EXPUNGE\r\n")
    gone = []

    def expunged():
        line, unt = check.cmd("NOOP")
        gone.extend(u for u in unt if u.endswith(b"EXPUNGE"))
        return len(gone) > 0
    _until(expunged, "EXPUNGE of a closed session")
    assert gone == [b"* 5 EXPUNGE", b"* 4 EXPUNGE"]
    check.close()
    _no_worker_died(tern)


def test_pop3_dele_quit_then_new_session(tern):
    addr, pw = new_account(tern)
    deliver(tern, 4, to=addr, tag="cj")
    p = Pop(tern)
    p.login(addr, pw)
    # pipelined (RFC 2449 6.6): the +OK of QUIT after the durable removal
    p.send("DELE 1\r\nDELE 3\r\nQUIT\r\n")
    assert p.line().startswith("+OK")
    assert p.line().startswith("+OK")
    assert p.line() == "+OK Bye, 2 messages removed"
    assert p.closed()
    q = Pop(tern)
    q.login(addr, pw)
    assert q.cmd("STAT").startswith("+OK 2 ")
    assert q.cmd("QUIT") == "+OK Bye, 0 messages removed"
    imap = _selected(tern, addr, pw)
    line, unt = imap.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = b" ".join(unt)
    assert b"cj 1" in subjects and b"cj 3" in subjects
    assert b"cj 0" not in subjects and b"cj 2" not in subjects
    imap.close()


def test_pop3_client_gone_during_quit(tern):
    addr, pw = new_account(tern)
    deliver(tern, 3, to=addr, tag="gone")
    p = Pop(tern, "pop3")  # plain: see _hangup
    p.login(addr, pw)
    p.send("DELE 1\r\nDELE 2\r\n")
    assert p.line().startswith("+OK") and p.line().startswith("+OK")
    p.send("QUIT\r\n")
    p.sock.shutdown(socket.SHUT_WR)
    p.sock.close()
    # the maildrop lock goes once the update is over (bounded wait)
    for _ in range(200):
        q = Pop(tern)
        q.send("USER %s\r\n" % addr)
        q.line()
        r = q.cmd("PASS " + pw)
        if r.startswith("+OK"):
            break
        assert "[IN-USE]" in r, r
        q.close()
        time.sleep(0.05)
    else:
        raise AssertionError("maildrop still locked")
    assert q.cmd("STAT").startswith("+OK 1 ")
    q.cmd("QUIT")
    _no_worker_died(tern)


def _db(tern):
    con = sqlite3.connect(os.path.join(tern.datadir, "tern.db"),
                          timeout=30, isolation_level=None)
    return con


def test_write_fails_busy_then_works(fresh_tern):
    """The test holds SQLite's write lock: the commit thread's batch gets
    SQLITE_BUSY (after its busy wait) and each command answers as a
    temporary failure with nothing changed; after the release all of it
    works."""
    tern = fresh_tern
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 2)
    deliver(tern, 1, to=addr, tag="busy")
    a = _selected(tern, addr, pw)
    b = _selected(tern, addr, pw)
    c = _selected(tern, addr, pw)
    line, _ = c.cmd("CREATE Dst")
    assert line.endswith("Create completed."), line
    line, _ = b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert line.endswith("OK Store completed.")
    p = Pop(tern)
    p.login(addr, pw)
    assert p.cmd("DELE 3").startswith("+OK")
    con = _db(tern)
    con.execute("BEGIN IMMEDIATE")
    try:
        a.send("s STORE 2 +FLAGS (\\Flagged)\r\n")
        b.send("e EXPUNGE\r\n")
        c.send("m MOVE 2 Dst\r\n")
        p.send("QUIT\r\n")
        # each batch waits out the busy timeout (5 s) twice, whole and
        # job by job: a few batches in a row under load
        for r in (a, b, c):
            r.sock.settimeout(120)
        p.sock.settimeout(120)
        line, unt = a.tagged("s")
        assert line == "s NO [UNAVAILABLE] Internal error, try again later."
        line, unt = b.tagged("e")
        assert line == "e NO [UNAVAILABLE] Internal error, try again later."
        assert not any(u.endswith(b"EXPUNGE") for u in unt)
        line, unt = c.tagged("m")
        assert line == "m NO [UNAVAILABLE] Internal error, try again later."
        assert not any(u.endswith(b"EXPUNGE") for u in unt)
        assert p.line().startswith("-ERR [SYS/TEMP]")
    finally:
        con.rollback()
        con.close()
    assert b"\\Flagged" not in _flags(a, "2")[2]
    line, unt = a.cmd("STORE 2 +FLAGS (\\Flagged)")
    assert line.endswith("OK Store completed.")
    assert b"* 2 FETCH (FLAGS (\\Flagged \\Recent))" in unt
    line, unt = b.cmd("EXPUNGE")
    assert line.endswith("OK Expunge completed.")
    assert [u for u in unt if u.endswith(b"EXPUNGE")] == [b"* 1 EXPUNGE"]
    line, unt = c.cmd("STATUS Dst (MESSAGES)")
    assert b'* STATUS "Dst" (MESSAGES 0)' in unt
    q = Pop(tern)
    q.login(addr, pw)
    assert q.cmd("STAT").startswith("+OK 2 ")
    q.cmd("QUIT")
    line, unt = c.cmd("MOVE 2 Dst")
    assert line.endswith("OK Move completed.")
    for r in (a, b, c):
        r.close()


def _one_worker(tern_factory):
    """A server with one worker: two connections share its loop."""
    return tern_factory(name="oneworker", extra_config="workers = 1\n")


def _loop_free_while_pending(pending, other):
    """pending has sent a write that waits for the held write lock (its
    commit thread waits out the busy timeout, 5 s, twice): the loop
    still answers another connection, and pending's reply has not come
    yet. On a loop that waited for the lock itself, the NOOP would be
    answered only after that reply."""
    line, _ = other.cmd("NOOP")
    assert line.endswith("OK NOOP completed."), line
    readable, _, _ = select.select([pending.sock], [], [], 0)
    assert not readable and not pending.buf, \
        "the write was answered before the NOOP"


def test_fetch_implicit_seen(tern_factory):
    """A non-PEEK body fetch sets \\Seen through the commit thread: the
    FETCH shows it, the pipelined command after it and another session
    see it; with the write lock held it answers NO and sets nothing, while
    a PEEK (no write) is answered and the loop answers other sessions;
    after the release it works."""
    tern = _one_worker(tern_factory)
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 2)
    r = _selected(tern, addr, pw, tls=False)
    r.send("a FETCH 1 BODY[]\r\nb FETCH 1 (FLAGS)\r\n")
    line, unt = r.tagged("a")
    assert line == "a OK Fetch completed.", line
    assert len(unt) == 1 and unt[0].startswith(
        b"* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[] {"), unt
    assert b"m0" in unt[0]
    line, unt = r.tagged("b")
    assert unt == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))"]
    other = _selected(tern, addr, pw, cmd="EXAMINE INBOX")
    assert b"\\Seen" in _flags(other, "1")[1]
    assert b"\\Seen" not in _flags(other, "2")[2]
    con = _db(tern)
    con.execute("BEGIN IMMEDIATE")
    try:
        r.sock.settimeout(120)
        line, unt = r.cmd("FETCH 2 BODY.PEEK[]")
        assert line.endswith("OK Fetch completed."), line
        assert b"FLAGS" not in unt[0]
        r.send("h FETCH 2 BODY[]\r\n")
        _loop_free_while_pending(r, other)
        line, unt = r.tagged("h")
        assert line.endswith(
            "NO [UNAVAILABLE] Internal error, try again later."), line
        assert unt == []
    finally:
        con.rollback()
        con.close()
    assert b"\\Seen" not in _flags(other, "2")[2]
    line, unt = r.cmd("FETCH 2 (BODY[TEXT])")
    assert line.endswith("OK Fetch completed."), line
    assert unt[0].startswith(b"* 2 FETCH (FLAGS (\\Seen \\Recent) "
                             b"BODY[TEXT] {"), unt
    assert b"\\Seen" in _flags(other, "2")[2]
    # already seen: no write, no FLAGS
    line, unt = r.cmd("FETCH 1:2 (BODY[HEADER])")
    assert line.endswith("OK Fetch completed.")
    assert all(b"FLAGS" not in u for u in unt)
    r.close()
    other.close()
    _no_worker_died(tern)


def _names(r, cmd='LIST "" "*"'):
    line, unt = r.cmd(cmd)
    assert " OK " in line, line
    return {u.rsplit(b" ", 1)[1].strip(b'"') for u in unt}


def test_mailbox_commands_on_commit_thread(tern_factory):
    """CREATE, RENAME, DELETE, SUBSCRIBE and UNSUBSCRIBE write on the
    commit thread: pipelined commands see each change, errors keep their
    codes, and with the write lock held each answers NO [UNAVAILABLE]
    and changes nothing while the loop answers other sessions; after the
    release they work."""
    tern = _one_worker(tern_factory)
    addr, pw = new_account(tern)
    r = _selected(tern, addr, pw, tls=False)
    other = _selected(tern, addr, pw, cmd="EXAMINE INBOX")
    r.send("a CREATE Work/Projects\r\nb RENAME Work Job\r\n"
           "c SUBSCRIBE Job/Projects\r\nd LSUB \"\" \"*\"\r\n"
           "e CREATE Job\r\nf DELETE Nope\r\ng UNSUBSCRIBE Nope\r\n")
    line, _ = r.tagged("a")
    assert re.fullmatch(r"a OK \[MAILBOXID \(\S+\)\] Create completed\.",
                        line), line
    assert r.tagged("b")[0] == "b OK Rename completed."
    assert r.tagged("c")[0] == "c OK Subscribe completed."
    line, unt = r.tagged("d")
    assert any(u.endswith(b'"Job/Projects"') for u in unt), unt
    assert r.tagged("e")[0] == "e NO [ALREADYEXISTS] Mailbox already exists."
    assert r.tagged("f")[0] == "f NO [NONEXISTENT] Mailbox doesn't exist."
    assert r.tagged("g")[0] == "g OK Unsubscribe completed."
    names = _names(r)
    assert b"Job/Projects" in names and b"Work" not in names
    con = _db(tern)
    con.execute("BEGIN IMMEDIATE")
    try:
        r.sock.settimeout(120)
        # each waits out the busy timeout (5 s) twice: three of them
        for i, cmd in enumerate(("CREATE Held", "RENAME Job Held2",
                                 "SUBSCRIBE Held3")):
            r.send("h%d %s\r\n" % (i, cmd))
            _loop_free_while_pending(r, other)
            line, _ = r.tagged("h%d" % i)
            assert line.endswith(
                "NO [UNAVAILABLE] Internal error, try again later."), line
    finally:
        con.rollback()
        con.close()
    names = _names(r)
    assert b"Held" not in names and b"Held2" not in names
    assert b"Job/Projects" in names
    subs = _names(r, 'LSUB "" "*"')
    assert b"Job/Projects" in subs and b"Held3" not in subs
    line, _ = r.cmd("DELETE Job/Projects")
    assert line.endswith("OK Delete completed."), line
    assert b"Job/Projects" not in _names(r)
    line, _ = r.cmd("CREATE Held")
    assert line.endswith("Create completed."), line
    r.close()
    other.close()
    _no_worker_died(tern)


def _reset(sock):
    """Close with an RST (SO_LINGER 0): the server sees it at once, even
    with its input paused."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def test_client_reset_while_write_waits(fresh_tern):
    """The test holds the write lock, so the writes wait on the commit
    thread while their clients reset the connection: the sessions close
    meanwhile, the jobs finish after the release and find them gone (no
    use after free under ASan), and each change is all there or absent."""
    tern = fresh_tern
    addr, pw = new_account(tern)
    _fill(tern, addr, pw, 3)
    deliver(tern, 1, to=addr, tag="rst")
    r = _selected(tern, addr, pw, tls=False)
    p = Pop(tern, "pop3")
    p.login(addr, pw)
    # the delivered message: the STORE's 1:3 stay the same three
    # messages in every later view, whenever this delete commits
    assert p.cmd("DELE 4").startswith("+OK")
    before = tern.log().count("disconnect")
    con = _db(tern)
    con.execute("BEGIN IMMEDIATE")
    try:
        # the reply to the NOOP comes after the STORE behind it was read
        r.send("a NOOP\r\nb STORE 1:3 +FLAGS (gone)\r\n")
        line, _ = r.tagged("a")
        p.send("NOOP\r\nQUIT\r\n")
        assert p.line().startswith("+OK")
        _reset(r.sock)
        _reset(p.sock)
        _until(lambda: tern.log().count("disconnect") >= before + 2,
               "the server saw both resets")
    finally:
        con.rollback()
        con.close()
    check = _selected(tern, addr, pw)

    def store_done():
        flags = _flags(check, "1:3")
        have = [b"gone" in flags[s] for s in range(1, 4)]
        assert all(have) or not any(have), flags
        return all(have) or "write-done-after-close" in tern.log()
    _until(store_done, "the STORE job ended")

    def pop_free():
        q = Pop(tern)
        q.send("USER %s\r\n" % addr)
        q.line()
        ok = q.cmd("PASS " + pw).startswith("+OK")
        if ok:
            stat = q.cmd("STAT")
            assert stat.startswith(("+OK 3 ", "+OK 4 ")), stat
            q.cmd("QUIT")
        q.close()
        return ok
    _until(pop_free, "the maildrop lock released")
    check.close()
    _no_worker_died(tern)
