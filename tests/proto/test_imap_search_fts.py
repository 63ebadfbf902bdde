"""SEARCH BODY/TEXT through the full-text index gives the same answers as
a scan of every message. The index skips the exact check for the
candidates it calls sure (ASCII needles on valid UTF-8 text without
characters it folds to ASCII, store_fts.c); these tests search tricky
messages (encoded-words, quoted-printable and base64 split inside words,
charset conversion, HTML, text split across lines and MIME boundaries,
case, Unicode folding, raw 8-bit headers) with many needles, first
through the index, then with every blob marked unindexed (blobs.fts = 0,
so each message is read and checked exactly), and compares."""
import base64
import contextlib
import os
import re
import sqlite3
import time

import pytest

from test_imap_helpers import Raw, new_account


def mk(hdrs, body=b"x\r\n"):
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + body


def b64(data):
    # short lines, so words are split across lines of the encoding
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 8] for i in range(0, len(enc), 8)) + b"\r\n"


CORPUS = [
    # encoded-words (Q and B, two charsets) and a fold inside one word
    mk(["From: =?iso-8859-1?Q?Andr=E9?= <andre@example.org>",
        "Subject: =?utf-8?B?UGxhdHlwdXMgY2Fmw6k=?= and\r\n"
        " =?utf-8?Q?echid?=\r\n =?utf-8?Q?na?= Zebra",
        "To: ZEBRA@example.org"],
       b"plain body with Wombat\r\n"),
    # quoted-printable: soft breaks inside words, hex in both cases
    mk(["Subject: qp", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable"],
       b"mar=\r\nmalade ca=c3=a9 NA=\r\nRWHAL over=3D=\r\nflow\r\n"
       b"line one ends with kestr=\r\n\r\nel next\r\n"),
    # base64 in short lines, latin-1 converted to UTF-8
    mk(["Subject: b64", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: base64"],
       b64("Quokka na\xefve gar\xe7on Stra\xdfe OKAPI\r\n".encode("latin-1"))),
    # windows-1252 and koi8-r parts, a word split across the boundary
    mk(["Subject: multi", "MIME-Version: 1.0",
        "Content-Type: multipart/alternative; boundary=zz"],
       b"--zz\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n"
       b"smart \x93quotes\x94 end with pango\r\n--zz\r\n"
       b"Content-Type: text/plain; charset=koi8-r\r\n\r\n"
       b"lin \xf0\xd2\xc9\xd7\xc5\xd4 tail\r\n"
       b"--zz\r\nContent-Type: text/html\r\n\r\n"
       b"<p>zan<b>zi</b>bar &amp; <i>ibis</i></p>\r\n--zz--\r\n"),
    # case and Unicode folding: Kelvin sign, long s, dotless i, sharp s,
    # fullwidth letters; the ASCII words beside them
    mk(["Subject: =?utf-8?Q?=E2=84=AAelvin?= fold",
        "Content-Type: text/plain; charset=utf-8"],
       "Kelvin \u212aelvin a\u017fk ask D\u0131ner STRASSE stra\u00dfe "
       "\uff2b\uff45\uff4c\uff56\uff49\uff4e CAF\u00c9 caf\u00e9\r\n"
       .encode()),
    # a raw 8-bit (latin-1) header: not UTF-8; body plain
    b"Subject: caf\xe9 au lait Kelvin\r\nX-Raw: \xc3\xa9\xa9\r\n\r\n"
    b"plain kelvin text\r\n",
    # an attachment (not searched by BODY), an embedded message and a
    # NUL byte inside a decoded text part
    mk(["Subject: attach", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=aa"],
       b"--aa\r\nContent-Type: text/plain\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n" +
       b64(b"nul\x00byte heron\r\n") +
       b"--aa\r\nContent-Type: application/octet-stream; name=gecko.bin\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"gecko inside") +
       b"--aa\r\nContent-Type: message/rfc822\r\n\r\n"
       b"Subject: inner lemur\r\n\r\ninner body marmot\r\n--aa--\r\n"),
    # a long line and many repeats of one word
    mk(["Subject: long"], (b"abc " * 5000) + b"needleinlongline\r\n"),
    # only the look-alikes: the index matches "kbc", "asz" and "nul  gap",
    # the exact check must not
    mk(["Subject: =?utf-8?Q?=E2=84=AAbc?=", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64"],
       b64("a\u017fz nul\x00\x00gap\r\n".encode())),
]

EXTRA_NEEDLES = [
    "echidna", "na Zebra", "Platypus caf", "marmalade", "narwhal",
    "over=flow", "kestrel", "quokka", "naive", "Strasse", "stra",
    "pango", "zanzibar", "zibar", "ibis", "& ibis", "bar &", "kelvin", "KELVIN",
    "elvin", "ask", "ASK", "dIner", "iner", "strasse", "Kelvin text",
    "au lait", "heron", "byte", "gecko", "lemur", "marmot",
    "needleinlongline", "abc abc", "andre", "Andr", "example.org",
    "end with pango", "pangolin", "lin \u041f", "o\nlin", "smart", "quotes", "x", "ab", "",
    "\u212aelvin", "\u017fk", "caf\u00e9", "CAF\u00c9", "stra\u00dfe",
    "\uff2b\uff45\uff4c", "na\u00efve", "gar\u00e7on",
    "\u041f\u0440\u0438\u0432\u0435\u0442", "\u043f\u0440\u0438",
    "D\u0131ner", "\u00e9\u00a9", "kbc", "KBC", "asz", "nul  gap", "l  g",
    "\u212abc", "a\u017fz",
]


def needles():
    out = set(EXTRA_NEEDLES)
    words = set()
    for m in CORPUS:
        words.update(w.decode() for w in re.findall(rb"[A-Za-z@.]{3,}", m))
    for w in sorted(words):
        out.update((w, w.upper(), w.lower()))
        if len(w) > 5:
            out.update((w[1:5], w[-4:].upper()))
    return sorted(out)


def search(r, key, needle):
    data = needle.encode()
    r.n += 1
    tag = "s%d" % r.n
    r.send(b"%s SEARCH CHARSET UTF-8 %s {%d+}\r\n%s\r\n"
           % (tag.encode(), key.encode(), len(data), data))
    tagged, lines = r.tagged(tag)
    assert " OK " in tagged, (key, needle, tagged)
    found = [l for l in lines if l.startswith(b"* SEARCH")]
    assert len(found) == 1, lines
    return [int(x) for x in found[0].split()[2:]]


@contextlib.contextmanager
def db_conn(db):
    """A connection to the server's database beside it (waiting up to
    30 s for its lock), committed when the block ends without error.
    The full-text tables (blob_fts, blob_hfts) are in index.db beside
    it, attached: their names reach them unqualified."""
    c = sqlite3.connect(db, timeout=30)
    index = os.path.join(os.path.dirname(db), "index.db")
    if os.path.exists(index):  # never created here (by root, for root)
        c.execute("ATTACH ? AS idx", (index,))
    try:
        yield c
        c.commit()
    finally:
        c.close()


def fts_states(db):
    with db_conn(db) as c:
        return dict(c.execute("SELECT fts, count(*) FROM blobs"
                              " GROUP BY fts").fetchall())


def wait_states(read, db, want, seconds=10):
    """read(db) (fts_states, hfts_states) once the commit thread has
    written the index rows: it does so right after the APPEND's commit,
    in a transaction of its own (store_fts_defer), so they may lag the
    OK by a moment. want(states) says when they are there; bounded."""
    deadline = time.time() + seconds
    while True:
        states = read(db)
        if want(states) or time.time() > deadline:
            return states
        time.sleep(0.05)


def indexed_states(db, want, seconds=10):
    return wait_states(fts_states, db, want, seconds)


def unindex(db):
    with db_conn(db) as c:
        c.execute("UPDATE blobs SET fts = 0")


def fill_inbox(tern, corpus):
    """A new account with corpus APPENDed to its INBOX, selected: the
    session and the account's (address, password)."""
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    for i, m in enumerate(corpus):
        r.send("a%d APPEND INBOX {%d+}\r\n" % (i, len(m)))
        r.send(m + b"\r\n")
        tag, _ = r.tagged("a%d" % i)
        assert " OK " in tag, tag
    assert " OK " in r.cmd("SELECT INBOX")[0]
    return r, (addr, pw)


def answers(r, words):
    return {(key, w): search(r, key, w) for key in ("BODY", "TEXT")
            for w in words}


def test_index_answers_equal_scan(fresh_tern):
    r, _ = fill_inbox(fresh_tern, CORPUS)
    db = os.path.join(fresh_tern.datadir, "tern.db")
    # exact (1); inexact (3): messages 5, 9 (fold to ASCII), 7, 9 (NUL);
    # raw 8-bit (2): message 6
    states = indexed_states(db, lambda st: st.get(1, 0) >= 5 and
                            st.get(3) == 3 and st.get(2) == 1)
    assert states.get(1, 0) >= 5 and states.get(3) == 3, states
    assert states.get(2) == 1, states
    words = needles()
    assert len(words) > 150
    indexed = answers(r, words)
    unindex(db)
    scanned = answers(r, words)
    diff = {k: (indexed[k], scanned[k]) for k in indexed
            if indexed[k] != scanned[k]}
    assert diff == {}
    # the answers are not trivially empty: spot checks worked out by hand
    assert scanned[("BODY", "marmalade")] == [2]
    assert scanned[("TEXT", "echidna")] == [1]
    assert scanned[("BODY", "kelvin")] == [5, 6]       # not U+212A
    assert scanned[("TEXT", "KELVIN")] == [5, 6]
    assert scanned[("BODY", "ask")] == [5]              # not a+U+017F+k
    assert scanned[("BODY", "zanzibar")] == []          # tags: spaces
    assert scanned[("BODY", "bar &")] == [4]            # entity decoded
    assert scanned[("BODY", "end with pango")] == [4]
    assert scanned[("BODY", "quokka")] == [3]
    assert scanned[("BODY", "stra\u00dfe")] == [3, 5]
    assert scanned[("BODY", "\u043f\u0440\u0438")] == []  # ASCII-only fold
    assert scanned[("BODY", "\u041f\u0440\u0438\u0432\u0435\u0442")] == [4]
    assert scanned[("BODY", "heron")] == [7]            # after a NUL
    assert scanned[("BODY", "marmot")] == [7]           # message/rfc822
    assert scanned[("BODY", "gecko")] == []             # attachment
    assert scanned[("BODY", "needleinlongline")] == [8]
    assert scanned[("TEXT", "")] == list(range(1, 10))
    for w in ("kbc", "KBC", "asz", "nul  gap"):
        assert scanned[("TEXT", w)] == []
    assert scanned[("TEXT", "\u212abc")] == [9]
    r.cmd("LOGOUT")


@pytest.mark.parametrize("crit,expect", [
    # sure candidates combined with other keys, and keys that need the
    # message row, read one by one for few candidates
    ("BODY marmalade LARGER 10", [2]),
    ("BODY marmalade SMALLER 10", []),
    ("NOT BODY marmalade", [1, 3]),
    ("OR BODY quokka BODY marmalade", [2, 3]),
    ("BODY quokka SUBJECT b64", [3]),
    ("BODY quokka SUBJECT qp", []),
    ("TEXT zebra BODY wombat", [1]),
    ("UID 2:3 BODY marmalade", [2]),
])
def test_sure_with_other_keys(tern, crit, expect):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    for i, m in enumerate(CORPUS[:3]):
        r.send("a%d APPEND INBOX {%d+}\r\n" % (i, len(m)))
        r.send(m + b"\r\n")
        tag, _ = r.tagged("a%d" % i)
        assert " OK " in tag, tag
    assert " OK " in r.cmd("SELECT INBOX")[0]
    tag, lines = r.cmd("SEARCH " + crit)
    assert " OK " in tag, tag
    got = [int(x) for l in lines if l.startswith(b"* SEARCH")
           for x in l.split()[2:]]
    assert got == expect
    r.cmd("LOGOUT")


PARTS = mk(["Subject: report", "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=pp"],
           b"--pp\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
           b"--pp\r\nContent-Type: application/pdf;\r\n"
           b" name=\"=?utf-8?Q?Bilan_annuel?=.pdf\"\r\n"
           b"Content-Disposition: attachment; filename=budgetreport.pdf\r\n"
           b"Content-Description: quarterly figures\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"secretbytes") +
           b"--pp\r\nContent-Type: message/rfc822\r\n\r\n"
           b"Subject: forwarded aardvark\r\nFrom: fwd@example.net\r\n\r\n"
           b"inner text\r\n--pp--\r\n")


@pytest.mark.parametrize("crit,expect", [
    # RFC 3501 6.4.4: TEXT is the header and the body of the message;
    # the MIME headers of the parts are part of it (as in Dovecot)
    ("TEXT budgetreport", [1]),             # Content-Disposition filename
    ("TEXT \"Bilan annuel.pdf\"", [1]),     # RFC 2047 in a parameter
    ("TEXT \"quarterly figures\"", [1]),    # Content-Description
    ("TEXT application/pdf", [1]),
    ("TEXT aardvark", [1]),                 # encapsulated message header
    ("TEXT fwd@example.net", [1]),
    ("TEXT secretbytes", []),               # an attachment's bytes: no
    ("BODY budgetreport", []),              # BODY: text parts only
    ("BODY aardvark", []),
    ("BODY \"inner text\"", [1]),
    ("SUBJECT aardvark", []),               # header keys: top header only
    ("HEADER Content-Disposition budgetreport", []),
])
def test_text_matches_part_headers(tern, crit, expect):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    r.send("a1 APPEND INBOX {%d+}\r\n" % len(PARTS))
    r.send(PARTS + b"\r\n")
    assert " OK " in r.tagged("a1")[0]
    r.send("a2 APPEND INBOX {%d+}\r\n" % len(CORPUS[0]))
    r.send(CORPUS[0] + b"\r\n")
    assert " OK " in r.tagged("a2")[0]
    assert " OK " in r.cmd("SELECT INBOX")[0]
    tag, lines = r.cmd("SEARCH " + crit)
    assert " OK " in tag, tag
    got = [int(x) for l in lines if l.startswith(b"* SEARCH")
           for x in l.split()[2:]]
    assert got == expect
    r.cmd("LOGOUT")


def test_text_reads_blobs_indexed_without_part_headers(fresh_tern):
    # A blob indexed before the part headers were in the index (schema
    # step 10 records the highest such blob id): the index cannot answer
    # TEXT for it, so it is read; BODY still trusts its index row.
    addr, pw = new_account(fresh_tern)
    r = Raw(fresh_tern)
    r.login(addr, pw)
    r.send("a1 APPEND INBOX {%d+}\r\n" % len(PARTS))
    r.send(PARTS + b"\r\n")
    assert " OK " in r.tagged("a1")[0]
    assert " OK " in r.cmd("SELECT INBOX")[0]
    db = os.path.join(fresh_tern.datadir, "tern.db")
    indexed_states(db, lambda st: st.get(1, 0) == 1)
    with db_conn(db) as c:
        (bid,) = c.execute("SELECT id FROM blobs WHERE fts = 1").fetchone()
        c.execute("UPDATE blob_fts SET hdr = 'Subject: report' WHERE rowid = ?",
                  (bid,))
        c.execute("UPDATE fts_layout SET old_max = ?", (bid,))
    for crit, expect in (("TEXT budgetreport", [1]), ("TEXT aardvark", [1]),
                         ("BODY \"see attached\"", [1]),
                         ("BODY budgetreport", []), ("TEXT nothinghere", [])):
        tag, lines = r.cmd("SEARCH " + crit)
        assert " OK " in tag, tag
        got = [int(x) for l in lines if l.startswith(b"* SEARCH")
               for x in l.split()[2:]]
        assert got == expect, crit
    r.cmd("LOGOUT")


# Header keys: SUBJECT, FROM, TO, CC and BCC are answered from the field
# index (blob_hfts: the decoded, unfolded fields, schema step 11), with
# white space in the needle too; other HEADER fields from the hdr column.
HEADER_CORPUS = CORPUS + [
    # 10: a fold between the words of the needle, tabs, two Subject fields
    mk(["Subject: no such\r\n subject here", "Subject: second one",
        "From: \"Smith, Carol\" <carol@example.net>",
        "To: a@example.org,\r\n\tb@example.org",
        "Cc: =?utf-8?Q?J=C3=B6rg_M=C3=BCller?= <jm@example.de>",
        "Bcc: hidden@example.com", "X-Mailer: tern\r\n test"]),
    # 11: the needle inside longer words ("xfoo barx"), a Kelvin sign in
    # From, a NUL-free encoded space
    mk(["Subject: xfoo barx Re: [list] quarterly report",
        "From: =?utf-8?Q?=E2=84=AAarl?= <karl@example.net>",
        "To: Team 7 <t7@example.test>"]),
]

HEADER_NEEDLES = [
    "no such subject", "such subject", "no such", "ch subj", "subject",
    "second one", "Smith, Carol", "smith, carol", "carol@example.net",
    "a@example.org, b@example.org", "org,\tb", "org, b", "J\u00f6rg M",
    "M\u00fcller", "hidden@", "tern test", "tern", "foo bar", "xfoo barx",
    "oo ba", "quarterly report", "[list]", "Re: [list]", "karl", "KARL",
    "\u212aarl", "Team 7", "t7@example.test", "no such thing",
    "caf\u00e9 au", "au lait Kelvin", "Platypus caf\u00e9 and echidna",
    "echidna Zebra", "and echid", "Andr\u00e9", "andr\u00e9 <andre",
]

HEADER_KEYS = ("SUBJECT", "FROM", "TO", "CC", "BCC", "HEADER Subject",
               "HEADER x-mailer", "HEADER BCC")


def unindex_fields(db):
    with db_conn(db) as c:
        c.execute("UPDATE blobs SET hfts = 0")
        c.execute("DELETE FROM blob_hfts")


def hfts_states(db):
    with db_conn(db) as c:
        return dict(c.execute("SELECT hfts, count(*) FROM blobs"
                              " GROUP BY hfts").fetchall())


def indexed_hfts(db):
    """hfts_states once every field row is written (wait_states)."""
    return wait_states(hfts_states, db, lambda st: 0 not in st)


def header_answers(r, words):
    return {(key, w): search(r, key, w) for key in HEADER_KEYS
            for w in words}


def test_header_keys_equal_scan(fresh_tern):
    r, (addr, pw) = fill_inbox(fresh_tern, HEADER_CORPUS)
    db = os.path.join(fresh_tern.datadir, "tern.db")
    states = indexed_hfts(db)
    # 6: raw 8-bit header; 5, 9 (Subject) and 11 (From): Kelvin sign
    assert states == {1: 7, 2: 1, 3: 3}, states
    words = sorted(set(HEADER_NEEDLES) | set(needles()))
    indexed = header_answers(r, words)
    unindex_fields(db)
    unindex(db)     # HEADER x-mailer: the text index's hdr column
    assert set(hfts_states(db)) == {0}
    scanned = header_answers(r, words)
    diff = {k: (indexed[k], scanned[k]) for k in indexed
            if indexed[k] != scanned[k]}
    assert diff == {}
    assert scanned[("SUBJECT", "no such subject")] == [10]   # folded
    assert scanned[("SUBJECT", "second one")] == []          # first only
    assert scanned[("HEADER Subject", "second one")] == [10]  # every one
    assert scanned[("SUBJECT", "foo bar")] == [11]           # in words
    assert scanned[("SUBJECT", "subject")] == [10]
    # the addresses as ENVELOPE has them, written out: the fold and tab
    # between the two are gone
    assert scanned[("TO", "org, b")] == [10]
    assert scanned[("TO", "org,\tb")] == []
    assert scanned[("CC", "J\u00f6rg M")] == [10]             # decoded
    assert scanned[("FROM", "karl")] == [11]                 # in address
    assert scanned[("FROM", "\u212aarl")] == [11]
    assert scanned[("BCC", "hidden@")] == [10]
    assert scanned[("HEADER x-mailer", "tern test")] == [10]
    assert scanned[("SUBJECT", "echidna Zebra")] == [1]
    r.cmd("LOGOUT")
    # blobs left unindexed (a store from before the field index, or
    # moved to index.db): filled by the index threads after a start
    fresh_tern.restart()
    assert set(indexed_hfts(db)) == set(states)
    r = Raw(fresh_tern)
    r.login(addr, pw)
    assert " OK " in r.cmd("SELECT INBOX")[0]
    again = header_answers(r, HEADER_NEEDLES)
    assert {k: v for k, v in again.items() if v != scanned[k]} == {}
    r.cmd("LOGOUT")


def test_address_keys_use_envelope(tern):
    # FROM/TO/CC/BCC: "the envelope structure's ... field" (RFC 9051
    # 6.4.4): comments and the white space around them are not part of
    # an address, a comment after one is its name, groups keep theirs.
    r, _ = fill_inbox(tern, [
        mk(["From: <quinn (work) @ (main) shop.example>",
            "To: ops (pager): ren@desk.example, =?utf-8?Q?S=C3=A9b?="
            " <seb@desk.example>;",
            "Cc: \"Lee, Ada\" <ada@lab.example>"]),
        mk(["From: quinn@shop.example (Quinn Q)", "To: solo@desk.example",
            "Cc: broken <<x@y"]),
    ])
    assert search(r, "FROM", "quinn@shop.example") == [1, 2]
    assert search(r, "FROM", "work") == []             # a comment
    assert search(r, "FROM", "Quinn Q <quinn@") == [2]  # comment as name
    assert search(r, "TO", "ops: ren@desk.example") == [1]
    assert search(r, "TO", "S\u00e9b <seb@") == [1]      # decoded name
    assert search(r, "TO", "pager") == []
    assert search(r, "CC", "Lee, Ada <ada@lab.example>") == [1]
    assert search(r, "CC", "broken <<x") == [2]  # unparsed: its text too
    # HEADER still looks at the text of the field
    assert search(r, "HEADER From", "(work)") == [1]
    r.cmd("LOGOUT")


def test_address_rows_redone_by_step13(fresh_tern):
    # A store from before schema step 13 has field index rows holding
    # the raw text (planted here, at version 12, in tern.db as then, and
    # in index.db): opening it drops them (steps 13 and 15) and the
    # index threads fill them again as ENVELOPE has the addresses.
    r, (addr, pw) = fill_inbox(fresh_tern, [
        mk(["From: <quinn (work) @ (main) shop.example>", "To: a@b.example"]),
    ])
    db = os.path.join(fresh_tern.datadir, "tern.db")
    assert 0 not in indexed_hfts(db)
    r.cmd("LOGOUT")
    with db_conn(db) as c:
        c.execute("UPDATE blob_hfts SET f_from = 'stale'")
        c.execute("CREATE VIRTUAL TABLE main.blob_hfts USING fts5(f_subject,"
                  " f_from, f_to, f_cc, f_bcc, tokenize = 'trigram')")
        c.execute("INSERT INTO main.blob_hfts(rowid, f_from)"
                  " SELECT id, 'stale' FROM blobs")
        c.execute("PRAGMA user_version = 12")
    fresh_tern.restart()
    states = indexed_hfts(db)
    with db_conn(db) as c:
        rows = c.execute("SELECT f_from FROM idx.blob_hfts").fetchall()
        gone = c.execute("SELECT count(*) FROM sqlite_master"
                         " WHERE name = 'blob_hfts'").fetchone()[0]
    assert rows == [("quinn@shop.example",)] and states == {1: 1}
    assert gone == 0  # not in tern.db any more
    r = Raw(fresh_tern)
    r.login(addr, pw)
    assert " OK " in r.cmd("SELECT INBOX")[0]
    assert search(r, "FROM", "quinn@shop.example") == [1]
    r.cmd("LOGOUT")


def test_header_every_field(tern):
    # HEADER (RFC 9051 6.4.4: "a header field with the specified
    # field-name") matches any field of the name; SUBJECT and the
    # address keys look at the first (ENVELOPE's), as before.
    r, _ = fill_inbox(tern, [
        mk(["Subject: kiwi first", "X-Note: alpha one",
            "X-Note: =?utf-8?Q?beta_tw=C3=B6?=", "Subject: mango second",
            "x-note: gamma\r\n three"]),
        mk(["Subject: plain", "X-Other: beta"]),
    ])
    assert search(r, "HEADER X-Note", "alpha") == [1]
    assert search(r, "HEADER X-Note", "beta tw\u00f6") == [1]  # decoded
    assert search(r, "HEADER x-NOTE", "gamma three") == [1]    # unfolded
    assert search(r, "HEADER X-Note", "one beta") == []  # not across two
    assert search(r, "HEADER X-Note", "") == [1]
    assert search(r, "NOT HEADER X-Note", "") == [2]
    assert search(r, "HEADER Subject", "mango") == [1]
    assert search(r, "SUBJECT", "mango") == []
    assert search(r, "SUBJECT", "kiwi") == [1]
    r.cmd("LOGOUT")


def test_header_keys_come_from_field_index(fresh_tern):
    # A planted field index row shows which answers come from the index:
    # an exact ASCII match on an exact row is trusted (sure), one on an
    # inexact row is checked against the message, and a message whose
    # row lacks the needle is not read at all.
    r, _ = fill_inbox(fresh_tern, HEADER_CORPUS[:3])
    db = os.path.join(fresh_tern.datadir, "tern.db")
    # plant into the rows only once the commit thread wrote them
    assert 0 not in indexed_hfts(db)
    assert 0 not in indexed_states(db, lambda st: 0 not in st)
    with db_conn(db) as c:
        ids = [b for (b,) in c.execute(
            "SELECT b.id FROM messages m JOIN blobs b ON b.id = m.blob_id"
            " ORDER BY m.uid")]
        c.execute("UPDATE blob_hfts SET f_subject = 'planted words here'"
                  " WHERE rowid IN (?, ?)", (ids[0], ids[1]))
        c.execute("UPDATE blobs SET hfts = 3 WHERE id = ?", (ids[1],))
        # other fields: each piece of the needle must be in hdr
        c.execute("UPDATE blob_fts SET hdr = 'Subject: b64' WHERE rowid = ?",
                  (ids[2],))
    assert search(r, "SUBJECT", "planted words") == [1]
    # HEADER looks at every Subject field, which the field index does
    # not hold: the message is read, and it has no such words
    assert search(r, "HEADER SUBJECT", "words here") == []
    assert search(r, "SUBJECT", "qp") == [2]       # short: every message
    assert search(r, "SUBJECT", "b64") == [3]
    assert search(r, "SUBJECT", "Platypus") == []  # its row lost it
    assert search(r, "HEADER Content-Type", "text/plain; charset") == [2]
    assert search(r, "HEADER MIME-Version", "1.0") == [2]
    assert search(r, "HEADER MIME-Version", " 1.0 ") == []  # trimmed
    assert search(r, "HEADER MIME-Version", "1.") == [2, 3]  # short: read
    r.cmd("LOGOUT")
