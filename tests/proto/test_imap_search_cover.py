"""SEARCH with ASCII needles of 5 to 48 characters: the index is asked
for the needle's covering trigrams (one every 3 characters and the last)
and tern_cover checks their offsets (store_fts.c). On a mailbox where
the needle is in a third of the messages (so the matches are mapped to
UIDs by the merge pass), with some messages not in the index yet (their
rows deferred: blobs.fts = 0 and no row) and some expunged, every
answer must equal the scan of every message (all blobs marked
unindexed) and the answer worked out from the messages themselves."""
import os

import pytest

from test_imap_helpers import Raw, new_account
from test_imap_search_fts import (db_conn, fill_inbox, fts_states,
                                  hfts_states, wait_states)

N = 90


def message(i):
    """Message i (1-based): the needle "needlework" in the body of every
    third, in the Subject of every fifth, in a part header of every
    seventh (TEXT only), and near misses elsewhere."""
    subject = "note %d" % i
    if i % 5 == 0:
        subject += " NeedleWork club"
    body = "plain words %d\r\n" % i
    if i % 3 == 0:
        body += "some xneedleworkx here\r\n"
    elif i % 3 == 1:
        body += "needle work, needlewor k, eedlework\r\n"
    if i == 17:
        body += "the%s end\r\n" % ("y" * 60)
    head = ["From: user%d@example.org" % i, "To: box@example.test",
            "Subject: " + subject]
    if i % 7 == 0:
        head += ["MIME-Version: 1.0",
                 "Content-Type: multipart/mixed; boundary=bb"]
        body = ("--bb\r\nContent-Type: text/plain\r\n\r\n" + body +
                "--bb\r\nContent-Type: application/octet-stream\r\n"
                "Content-Description: needlework pattern\r\n\r\n"
                "AAAA\r\n--bb--\r\n")
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def has(i, where):
    m = message(i).decode().lower()
    head, body = m.split("\r\n\r\n", 1)
    if where == "subject":
        return "needlework" in head.split("subject: ", 1)[1].split("\r\n")[0]
    if where == "body":
        # the text part only (the part header is not BODY)
        return "needlework" in body.split("content-description")[0]
    return "needlework" in m


def search(r, crit):
    tag, lines = r.cmd("UID SEARCH " + crit)
    assert " OK " in tag, (crit, tag)
    return [int(x) for l in lines if l.startswith(b"* SEARCH")
            for x in l.split()[2:]]


CRITS = ["TEXT needlework", "BODY needlework", "SUBJECT needlework",
         "TEXT NEEDLEWORK", "BODY xneedleworkx", "TEXT needl",
         "NOT TEXT needlework", "NOT BODY needlework",
         "OR BODY needlework SUBJECT needlework",
         "OR TEXT needlework TEXT \"plain words 4\"",
         "TEXT needlework UID 10:60", "TEXT needlework NOT SUBJECT club",
         "BODY \"needle work\"", "TEXT \"needlewor k\"", "BODY eedlework",
         "TEXT \"plain words 17\"", "BODY the" + "y" * 60,
         "BODY " + "y" * 48, "FROM user17@example.org", "TEXT zzzzzzz"]


def pend(db, ids):
    """Leave blobs ids as the commit thread leaves them until it writes
    their deferred rows: fts and hfts 0, no index row."""
    with db_conn(db) as c:
        for bid in ids:
            c.execute("UPDATE blobs SET fts = 0, hfts = 0 WHERE id = ?",
                      (bid,))
            c.execute("DELETE FROM blob_fts WHERE rowid = ?", (bid,))
            c.execute("DELETE FROM blob_hfts WHERE rowid = ?", (bid,))


def test_cover_equals_scan_with_pending_and_expunged(fresh_tern):
    r, _ = fill_inbox(fresh_tern, [message(i) for i in range(1, N + 1)])
    db = os.path.join(fresh_tern.datadir, "tern.db")
    wait_states(fts_states, db, lambda st: 0 not in st)
    wait_states(hfts_states, db, lambda st: 0 not in st)
    with db_conn(db) as c:
        blob = dict(c.execute("SELECT uid, blob_id FROM messages"))
    assert len(blob) == N
    # messages 30, 35, 42, 45 and 61 (needle in body, subject, part
    # header, both; none) are not in the index
    pend(db, [blob[u] for u in (30, 35, 42, 45, 61)])
    # 15, 21 (matches) and 22 gone: sequence numbers shift
    assert " OK " in r.cmd("STORE 15,21,22 +FLAGS (\\Deleted)")[0]
    assert " OK " in r.cmd("EXPUNGE")[0]
    uids = [u for u in range(1, N + 1) if u not in (15, 21, 22)]
    indexed = {c: search(r, c) for c in CRITS}
    # the same from a scan of every message
    with db_conn(db) as c:
        c.execute("UPDATE blobs SET fts = 0, hfts = 0")
    scanned = {c: search(r, c) for c in CRITS}
    assert indexed == scanned
    text = [u for u in uids if has(u, "text")]
    body = [u for u in uids if has(u, "body")]
    subj = [u for u in uids if has(u, "subject")]
    assert 30 in body and 35 in subj and 42 in text and 45 in body
    assert len(body) * 20 >= N  # mapped by the merge pass
    assert scanned["TEXT needlework"] == text
    assert scanned["BODY needlework"] == body
    assert scanned["SUBJECT needlework"] == subj
    assert scanned["TEXT NEEDLEWORK"] == text
    assert scanned["BODY xneedleworkx"] == body
    assert scanned["NOT TEXT needlework"] == [u for u in uids
                                                  if u not in text]
    assert scanned["OR BODY needlework SUBJECT needlework"] == \
        sorted(set(body) | set(subj))
    assert scanned["TEXT needlework UID 10:60"] == \
        [u for u in text if 10 <= u <= 60]
    assert scanned["BODY \"needle work\""] == \
        [u for u in uids if u % 3 == 1]
    assert scanned["BODY eedlework"] == \
        [u for u in uids if u % 3 != 2]
    assert scanned["BODY the" + "y" * 60] == [17]
    assert scanned["BODY " + "y" * 48] == [17]
    assert scanned["TEXT zzzzzzz"] == []
    r.cmd("LOGOUT")


@pytest.mark.parametrize("needle,expect", [
    ("abcde", [1]), ("bcdef", [1]), ("abcdef", [1]), ("ABCDEFG", [1]),
    ("abcdx", []), ("xbcde", []), ("abc def", [2]), ("c de", [2]),
    ("abcdefghijklmnop", [1]), ("abcdefghijklmnoq", []),
])
def test_cover_offsets(tern, needle, expect):
    # message 1 holds the trigrams of "abcdx" (abc, bcd, and a "dx" in
    # "dxy") but not the string; every covering trigram of the needle
    # must sit at its own offset
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    for i, body in enumerate((b"abcdefghijklmnop qrs dxy cdx",
                              b"abc defgh")):
        m = b"Subject: t\r\n\r\n" + body + b"\r\n"
        r.send("a%d APPEND INBOX {%d+}\r\n" % (i, len(m)))
        r.send(m + b"\r\n")
        assert " OK " in r.tagged("a%d" % i)[0]
    assert " OK " in r.cmd("SELECT INBOX")[0]
    assert search(r, 'BODY "%s"' % needle) == expect
    r.cmd("LOGOUT")
