"""Crash safety (issue 8): client threads deliver over SMTP, APPEND,
STORE and EXPUNGE over IMAP while the daemon is killed with SIGKILL at
random moments, several rounds. After each restart:
  - every acknowledged message (250 to DATA, OK to APPEND) is present
    exactly once, with the bytes that were sent (SMTP adds trace headers
    in front), and keeps its UID;
  - no message is half-written: every stored message is one we sent,
    complete; every referenced blob file exists;
  - an acknowledged EXPUNGE stays done, an acknowledged STORE stays set;
  - UIDs never go backwards (UIDVALIDITY unchanged, UIDNEXT above every
    UID seen, new UIDs above old ones);
  - SQLite's integrity check says ok and the quota counters match.
Clients are paused while the server is down and checked, so the check
sees a quiet store. The whole test is bounded to about 40 s of load."""
import imaplib
import os
import random
import re
import smtplib
import sqlite3
import threading
import time
import uuid

from conftest import blob_bytes, pick_base
from test_imap_helpers import imaps

ROUND_SECONDS = (0.4, 1.5)
TOTAL_SECONDS = 30
MIN_ROUNDS = 4
MAX_ROUNDS = 20
TOKEN_RE = re.compile(rb"X-Crash-Token: ([0-9a-f]{32})")


def make_msg(kind):
    tok = uuid.uuid4().hex
    body = "".join("%s line %d %s\r\n" % (kind, i, tok)
                   for i in range(random.randint(1, 400)))
    data = ("From: crash@remote.example\r\nTo: demo@example.test\r\n"
            "Subject: %s %s\r\nX-Crash-Token: %s\r\n"
            "Message-ID: <%s@crash>\r\n\r\n%s" % (kind, tok, tok, tok, body))
    return tok, data.encode()


class State:
    """What the clients did, shared by the threads under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}          # token -> bytes, every attempt
        self.acked = {}         # token -> mailbox, acknowledged deliveries
        self.expunge_tried = set()
        self.expunged = set()   # acknowledged EXPUNGE
        self.flagged = set()    # acknowledged STORE +FLAGS (\Flagged)
        self.errors = []        # unexpected protocol answers


class Clients:
    """Client threads that pause (park) while the server is down."""

    def __init__(self, tern, state):
        self.tern = tern
        self.st = state
        self.go = threading.Event()
        self.stop = False
        self.parked = {}
        self.threads = [threading.Thread(target=self._run, args=(f, n),
                                         daemon=True)
                        for n, f in enumerate((self._smtp, self._smtp,
                                               self._append, self._churn))]

    def start(self):
        self.go.set()
        for t in self.threads:
            t.start()

    def _run(self, body, n):
        while not self.stop:
            if not self.go.is_set():
                self.parked[n] = True
                self.go.wait(0.2)
                continue
            self.parked[n] = False
            try:
                body()
            except (OSError, EOFError, smtplib.SMTPException,
                    imaplib.IMAP4.error, imaplib.IMAP4.abort):
                time.sleep(0.02)
        self.parked[n] = True

    def pause(self, timeout=20):
        self.go.clear()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.parked) == len(self.threads) and \
                    all(self.parked.values()):
                return
            time.sleep(0.02)
        raise AssertionError("client threads did not pause")

    def resume(self):
        for k in self.parked:
            self.parked[k] = False
        self.go.set()

    def finish(self):
        self.stop = True
        self.go.set()
        for t in self.threads:
            t.join(30)

    def _smtp(self):
        s = smtplib.SMTP(self.tern.host, self.tern.port("smtp"), timeout=5)
        try:
            while self.go.is_set() and not self.stop:
                tok, data = make_msg("smtp")
                with self.st.lock:
                    self.st.sent[tok] = data
                s.sendmail("crash@remote.example", [self.tern.user], data)
                with self.st.lock:
                    self.st.acked[tok] = "INBOX"
        finally:
            s.close()

    def _login(self):
        m = imaps(self.tern)
        m.sock.settimeout(5)
        m.login(self.tern.user, self.tern.password)
        return m

    def _append(self):
        m = self._login()
        try:
            m.create("Crash")
            while self.go.is_set() and not self.stop:
                tok, data = make_msg("append")
                with self.st.lock:
                    self.st.sent[tok] = data
                typ, resp = m.append("Crash", None, None, data)
                if typ != "OK":
                    self.st.errors.append(("APPEND", resp))
                    continue
                with self.st.lock:
                    self.st.acked[tok] = "Crash"
        finally:
            m.shutdown()

    def _churn(self):
        """APPEND to Churn, flag one message, expunge another."""
        m = self._login()
        try:
            m.create("Churn")
            while self.go.is_set() and not self.stop:
                tok, data = make_msg("churn")
                with self.st.lock:
                    self.st.sent[tok] = data
                if m.append("Churn", None, None, data)[0] != "OK":
                    continue
                with self.st.lock:
                    self.st.acked[tok] = "Churn"
                self._churn_once(m)
        finally:
            m.shutdown()

    def _churn_once(self, m):
        typ, _ = m.select("Churn")
        if typ != "OK":
            return
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS "
                          "(X-Crash-Token)])")
        uids = {}
        for item in data:
            if isinstance(item, tuple):
                u = re.search(rb"UID (\d+)", item[0])
                t = TOKEN_RE.search(item[1])
                if u and t:
                    uids[t.group(1).decode()] = u.group(1).decode()
        toks = sorted(uids)
        with self.st.lock:
            alive = [t for t in toks if t not in self.st.expunge_tried]
        if len(alive) < 2:
            return
        victim, keep = random.sample(alive, 2)
        if m.uid("STORE", uids[keep], "+FLAGS", "(\\Flagged)")[0] == "OK":
            with self.st.lock:
                self.st.flagged.add(keep)
        with self.st.lock:
            self.st.expunge_tried.add(victim)
        if m.uid("STORE", uids[victim], "+FLAGS", "(\\Deleted)")[0] != "OK":
            return
        if m.expunge()[0] == "OK":
            with self.st.lock:
                self.st.expunged.add(victim)


def read_store(tern):
    """{mailbox: [(uid, flags, bytes)]} of the demo account, plus the
    store-wide checks that need the database itself."""
    con = sqlite3.connect(os.path.join(tern.datadir, "tern.db"), timeout=30)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = con.execute(
            "SELECT x.name, m.uid, m.flags, b.hash FROM messages m"
            " JOIN mailboxes x ON m.mailbox_id = x.id"
            " JOIN accounts a ON x.account_id = a.id"
            " JOIN blobs b ON m.blob_id = b.id"
            " WHERE a.address = ? ORDER BY x.name, m.uid",
            (tern.user,)).fetchall()
        used = con.execute(
            "SELECT a.used_messages, a.used_bytes, COUNT(m.id),"
            " COALESCE(SUM(m.size), 0) FROM accounts a"
            " LEFT JOIN mailboxes x ON x.account_id = a.id"
            " LEFT JOIN messages m ON m.mailbox_id = x.id"
            " WHERE a.address = ? GROUP BY a.id", (tern.user,)).fetchone()
        assert used[0] == used[2] and used[1] == used[3], \
            "quota counters %r differ from the messages" % (used,)
        low = con.execute(
            "SELECT b.hash, b.refcount, COUNT(m.id) FROM blobs b"
            " JOIN messages m ON m.blob_id = b.id GROUP BY b.id"
            " HAVING b.refcount < COUNT(m.id)").fetchall()
        assert not low, "blob refcount below its references: %r" % low
        boxes = dict(con.execute(
            "SELECT x.name, x.uidnext FROM mailboxes x JOIN accounts a"
            " ON x.account_id = a.id WHERE a.address = ?",
            (tern.user,)).fetchall())
    finally:
        con.close()
    out = {}
    for name, uid, flags, h in rows:
        try:
            data = blob_bytes(tern.datadir, h)
        except OSError:
            raise AssertionError("blob of %s/%d is missing" % (name, uid))
        out.setdefault(name, []).append((uid, flags, data))
    return out, boxes


class Checker:
    """Compares the store with the client record after every restart."""

    def __init__(self, tern, state):
        self.tern = tern
        self.st = state
        self.uid_of = {}        # token -> (mailbox, uid) first seen
        self.max_uid = {}       # mailbox -> highest UID seen so far
        self.uidvalidity = {}

    def check(self):
        store, uidnext = read_store(self.tern)
        with self.st.lock:
            sent = dict(self.st.sent)
            acked = dict(self.st.acked)
            expunged = set(self.st.expunged)
            tried = set(self.st.expunge_tried)
            flagged = set(self.st.flagged)
        seen = {}
        for box, msgs in store.items():
            top = max([u for u, _, _ in msgs], default=0)
            assert uidnext[box] - 1 >= self.max_uid.get(box, 0), \
                "UIDNEXT of %s went backwards" % box
            for uid, flags, data in msgs:
                self._check_one(box, uid, flags, data, sent, seen, flagged)
            assert uidnext[box] > top, (box, uidnext[box], top)
            self.max_uid[box] = max(self.max_uid.get(box, 0), top,
                                    uidnext[box] - 1)
        for tok, box in acked.items():
            if tok in expunged:
                assert tok not in seen, "expunged %s came back" % tok
            elif tok not in tried:
                assert seen.get(tok) == box, \
                    "acknowledged %s message %s is missing" % (box, tok)
        self._check_imap(uidnext)
        return sum(len(v) for v in store.values())

    def _check_one(self, box, uid, flags, data, sent, seen, flagged):
        m = TOKEN_RE.search(data)
        assert m, "%s/%d is not one of our messages: %r" % (box, uid,
                                                             data[:200])
        tok = m.group(1).decode()
        assert tok in sent, "%s/%d has an unknown token" % (box, uid)
        assert data.endswith(sent[tok]), \
            "%s/%d is not the bytes sent (half-written?)" % (box, uid)
        assert tok not in seen, "message %s stored twice" % tok
        seen[tok] = box
        prev = self.uid_of.setdefault(tok, (box, uid))
        assert prev == (box, uid), "%s changed UID: %r -> %r" % (
            tok, prev, (box, uid))
        if tok in flagged:
            assert flags & 4, "acknowledged \\Flagged lost on %s" % tok

    def _check_imap(self, uidnext):
        m = imaps(self.tern)
        try:
            m.login(self.tern.user, self.tern.password)
            for box in ("INBOX", "Crash", "Churn"):
                if box not in uidnext:
                    continue
                typ, data = m.status(box, "(UIDVALIDITY UIDNEXT)")
                assert typ == "OK", data
                v = re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)
                n = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
                assert self.uidvalidity.setdefault(box, v) == v, box
                assert n > self.max_uid.get(box, 0), (box, n)
        finally:
            m.logout()


def start_again(tern):
    """Restart after kill -9. Another test suite on this machine may take
    one of our ports while we are down: then move to a new port range (the
    clients ask tern.port() at each connection)."""
    for attempt in range(3):
        try:
            tern.start()
            time.sleep(0.1)
            if tern.proc.poll() is None:
                return
        except RuntimeError:
            if attempt == 2:
                raise
        tern.stop()
        tern.base = pick_base()
    raise AssertionError("ternd did not restart:\n" + tern.log()[-2000:])


def test_kill9_keeps_acknowledged_mail(fresh_tern):
    tern = fresh_tern
    state = State()
    clients = Clients(tern, state)
    checker = Checker(tern, state)
    start = time.time()
    rounds = 0
    clients.start()
    try:
        while rounds < MAX_ROUNDS and (rounds < MIN_ROUNDS or
                                       time.time() - start < TOTAL_SECONDS):
            time.sleep(random.uniform(*ROUND_SECONDS))
            tern.kill9()
            clients.pause()
            start_again(tern)
            checker.check()
            rounds += 1
            clients.resume()
        clients.pause()
        stored = checker.check()
    finally:
        clients.finish()
    assert not state.errors, state.errors[:5]
    # The test must have done something in each round on average.
    assert len(state.acked) >= rounds, (len(state.acked), rounds)
    print("crash: %d rounds, %d acknowledged, %d stored, %d expunged"
          % (rounds, len(state.acked), stored, len(state.expunged)))
