"""SORT, UID SORT, ESORT (RFC 5256, 5957, 5267), THREAD=ORDEREDSUBJECT and
THREAD=REFERENCES on small corpora whose answers were worked out by hand
from the RFC's rules (see the comments), and SEARCH BODY/TEXT served by
the full-text index: decoded base64 and quoted-printable text, substrings,
short needles, deduplicated blobs in two mailboxes, index rows removed
with the blob."""
import base64
import os
import sqlite3
import time

import pytest

from test_imap_helpers import Raw, new_account


def append(r, box, data, date=None, flags="()"):
    dt = (' "%s"' % date) if date else ""
    r.send("a%d APPEND %s %s%s {%d+}\r\n" % (r.n, box, flags, dt, len(data)))
    r.send(data + b"\r\n")
    tag, _ = r.tagged("a%d" % r.n)
    r.n += 1
    assert " OK " in tag, tag


def mk(hdrs, body=b"x\r\n"):
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + body


def untagged(lines, word):
    out = [l.decode() for l in lines if l.startswith(b"* " + word.encode())]
    assert len(out) == 1, lines
    return out[0]


def nums(line, word):
    rest = line[len("* " + word):].split()
    return [int(x) for x in rest]


def session(tern):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    return r


def shifted(r, box="INBOX"):
    """Append a filler and expunge it, so UIDs are sequence numbers + 1."""
    append(r, box, mk(["Subject: filler"]))
    assert "OK" in r.cmd("SELECT %s" % box)[0]
    assert "OK" in r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")[0]
    assert "OK" in r.cmd("EXPUNGE")[0]


# Sizes: 2 < 4 < 3 < 1 (bodies of 100, 500, 1000, 2000 bytes dominate).
# ARRIVAL (INTERNALDATE): 3 (2 Jan) 4 (3 Jan) 2 (4 Jan) 1 (5 Jan).
# DATE in UTC: 2 (1 Jan 10:00) 3 (no Date: its INTERNALDATE, 2 Jan
# 00:00) 4 (2 Jan 14:00) 1 (3 Jan 10:00).
SORT_CORPUS = [
    (["From: \"Zed Zulu\" <zed@x.example>", "To: Bob <bob@y.example>",
      "Cc: carol@z.example", "Subject: Re: banana",
      "Date: Wed, 3 Jan 2024 10:00:00 +0000"], 2000,
     "05-Jan-2024 00:00:00 +0000"),
    (["From: alice@x.example", "To: dave@y.example", "Subject: apple",
      "Date: Mon, 1 Jan 2024 12:00:00 +0200"], 100,
     "04-Jan-2024 00:00:00 +0000"),
    (["From: Mallory <aaa@x.example>", "To: Ann <zoe@y.example>",
      "Cc: Al <aaron@z.example>", "Subject: [list] Cherry"], 1000,
     "02-Jan-2024 00:00:00 +0000"),
    (["From: bob <Bob@x.example>", "To: alice@y.example",
      "Subject: =?utf-8?Q?Apple?=",
      "Date: Tue, 2 Jan 2024 09:00:00 -0500"], 500,
     "03-Jan-2024 00:00:00 +0000"),
]


@pytest.fixture(scope="module")
def sorted_box(tern):
    r = session(tern)
    shifted(r)
    for hdrs, size, date in SORT_CORPUS:
        append(r, "INBOX", mk(hdrs, b"y" * size + b"\r\n"), date)
    assert "OK" in r.cmd("SELECT INBOX")[0]
    yield r
    r.cmd("LOGOUT")


@pytest.mark.parametrize("keys,expect", [
    ("ARRIVAL", [3, 4, 2, 1]),
    ("DATE", [2, 3, 4, 1]),
    ("SIZE", [2, 4, 3, 1]),
    # addr-mailbox: aaa alice Bob zed (i;ascii-casemap)
    ("FROM", [3, 2, 4, 1]),
    # bob dave zoe alice
    ("TO", [4, 1, 2, 3]),
    # "" "" (missing Cc, mailbox order) aaron carol
    ("CC", [2, 4, 3, 1]),
    # base subjects: banana apple Cherry Apple; apple = Apple keeps
    # mailbox order
    ("SUBJECT", [2, 4, 1, 3]),
    # display names, else addr-spec: "Zed Zulu" alice@x.example Mallory bob
    ("DISPLAYFROM", [2, 4, 3, 1]),
    # Bob dave@y.example Ann alice@y.example
    ("DISPLAYTO", [4, 3, 1, 2]),
    ("REVERSE SIZE", [1, 3, 4, 2]),
    # REVERSE does not reverse the mailbox-order tie-break (2 before 4)
    ("REVERSE SUBJECT", [3, 1, 2, 4]),
    ("SUBJECT REVERSE DATE", [4, 2, 1, 3]),
    ("REVERSE ARRIVAL SIZE", [1, 2, 4, 3]),
])
def test_sort_keys(sorted_box, keys, expect):
    tag, lines = sorted_box.cmd("SORT (%s) UTF-8 ALL" % keys)
    assert " OK " in tag, tag
    assert nums(untagged(lines, "SORT"), "SORT") == expect


# A field that starts with a group: its first address structure in
# ENVELOPE is the group start (NIL NIL "name" NIL), so CC/TO sort by the
# group's name (RFC 5256 3 "addr-mailbox of the first ... address") and
# DISPLAYTO too (RFC 5957 3: no addr-name, no addr-host: addr-mailbox).
GROUP_CORPUS = [
    ["From: x@example.org", "To: zeta-team: ann@a.example;",
     "Cc: Crew: bo@b.example;, al@c.example", "Subject: one"],
    ["From: x@example.org", "To: mike@m.example", "Cc: dora@d.example",
     "Subject: two"],
    ["From: x@example.org", "To: Ann <alpha@a.example>", "Cc: nobody:;",
     "Subject: three"],
]


@pytest.mark.parametrize("keys,expect", [
    # zeta-team mike alpha (not ann, the group's first member)
    ("TO", [3, 2, 1]),
    # Crew dora nobody (not bo; not "" for the empty group)
    ("CC", [1, 2, 3]),
    ("REVERSE CC", [3, 2, 1]),
    # zeta-team mike@m.example Ann
    ("DISPLAYTO", [3, 2, 1]),
    ("REVERSE DISPLAYTO", [1, 2, 3]),
])
def test_sort_group_first(tern, keys, expect):
    r = session(tern)
    for hdrs in GROUP_CORPUS:
        append(r, "INBOX", mk(hdrs))
    assert "OK" in r.cmd("SELECT INBOX")[0]
    _, lines = r.cmd("FETCH 1 ENVELOPE")
    assert b'((NIL NIL "zeta-team" NIL)' in b"".join(lines)
    tag, lines = r.cmd("SORT (%s) UTF-8 ALL" % keys)
    assert " OK " in tag, tag
    assert nums(untagged(lines, "SORT"), "SORT") == expect
    r.cmd("LOGOUT")


def test_uid_sort_and_criteria(sorted_box):
    tag, lines = sorted_box.cmd("UID SORT (SUBJECT) UTF-8 ALL")
    assert " OK " in tag
    assert nums(untagged(lines, "SORT"), "SORT") == [3, 5, 2, 4]
    tag, lines = sorted_box.cmd(
        'SORT (ARRIVAL) US-ASCII FROM "x.example" SUBJECT apple')
    assert nums(untagged(lines, "SORT"), "SORT") == [4, 2]
    tag, lines = sorted_box.cmd("SORT (DATE) UTF-8 SUBJECT nothing-here")
    assert untagged(lines, "SORT") == "* SORT"


def test_esort(sorted_box):
    r = sorted_box
    tag, lines = r.cmd("SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL",
                       tag="es1")
    assert " OK " in tag
    assert untagged(lines, "ESEARCH") == \
        '* ESEARCH (TAG "es1") MIN 2 MAX 3 COUNT 4 ALL 2,4,1,3'
    tag, lines = r.cmd("UID SORT RETURN (ALL) (SIZE) UTF-8 ALL", tag="es2")
    assert untagged(lines, "ESEARCH") == \
        '* ESEARCH (TAG "es2") UID ALL 3,5,4,2'
    tag, lines = r.cmd("SORT RETURN () (ARRIVAL) UTF-8 1:2", tag="es3")
    assert untagged(lines, "ESEARCH") == '* ESEARCH (TAG "es3") ALL 2,1'
    tag, lines = r.cmd("SORT RETURN (COUNT) (ARRIVAL) UTF-8 SUBJECT zzz",
                       tag="es4")
    assert untagged(lines, "ESEARCH") == '* ESEARCH (TAG "es4") COUNT 0'


def test_sort_errors(sorted_box):
    r = sorted_box
    assert r.cmd("SORT (SUBJECT) KOI8-R ALL")[0].split()[1:3] == \
        ["NO", "[BADCHARSET"]
    assert r.cmd("SORT (NOSUCHKEY) UTF-8 ALL")[0].split()[1] == "BAD"
    assert r.cmd("SORT (REVERSE) UTF-8 ALL")[0].split()[1] == "BAD"
    assert r.cmd("SORT () UTF-8 ALL")[0].split()[1] == "BAD"
    assert r.cmd("SORT (DATE) UTF-8")[0].split()[1] == "BAD"
    assert r.cmd("SORT RETURN (SAVE2) (DATE) UTF-8 ALL")[0].split()[1] == \
        "BAD"
    assert r.cmd("THREAD NOSUCH UTF-8 ALL")[0].split()[1] == "BAD"


def test_capabilities(sorted_box):
    _, lines = sorted_box.cmd("CAPABILITY")
    caps = untagged(lines, "CAPABILITY").split()
    for c in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
              "THREAD=REFERENCES"):
        assert c in caps


# THREAD corpus (sequence numbers 1-10):
#  1 <a@t> "Plan"                     1 Jan 10:00
#  2 <b@t> "Re: Plan"  References a   1 Jan 11:00
#  3 <c@t> "Re: Plan"  References a b 1 Jan 12:00
#  4 <d@t> "Re: Plan"  In-Reply-To a  1 Jan 10:30
#  5 <e@t> "Other"     References <missing@t>  1 Jan 09:00
#  6 <f@t> "Re: Other" References <missing@t>  1 Jan 09:30
#  7 <g@t> "Lunch"     no references  2 Jan 10:00
#  8 <h@t> "Re: Lunch" no references  2 Jan 11:00
#  9 <i@t> "Fwd: Plan" no references  3 Jan 10:00
# 10 no Message-ID "Solo"             4 Jan 10:00
THREAD_CORPUS = [
    ("<a@t>", "Plan", "", "Mon, 1 Jan 2024 10:00:00 +0000"),
    ("<b@t>", "Re: Plan", "References: <a@t>",
     "Mon, 1 Jan 2024 11:00:00 +0000"),
    ("<c@t>", "Re: Plan", "References: <a@t>\r\n <b@t>",
     "Mon, 1 Jan 2024 12:00:00 +0000"),
    ("<d@t>", "Re: Plan", "In-Reply-To: <a@t>",
     "Mon, 1 Jan 2024 10:30:00 +0000"),
    ("<e@t>", "Other", "References: <missing@t>",
     "Mon, 1 Jan 2024 09:00:00 +0000"),
    ("<f@t>", "Re: Other", "References: <missing@t>",
     "Mon, 1 Jan 2024 09:30:00 +0000"),
    ("<g@t>", "Lunch", "", "Tue, 2 Jan 2024 10:00:00 +0000"),
    ("<h@t>", "Re: Lunch", "", "Tue, 2 Jan 2024 11:00:00 +0000"),
    ("<i@t>", "Fwd: Plan", "", "Wed, 3 Jan 2024 10:00:00 +0000"),
    (None, "Solo", "", "Thu, 4 Jan 2024 10:00:00 +0000"),
]


@pytest.fixture(scope="module")
def thread_box(tern):
    r = session(tern)
    shifted(r)
    for mid, subj, extra, date in THREAD_CORPUS:
        hdrs = ["From: t@example.org", "Subject: " + subj, "Date: " + date]
        if mid:
            hdrs.append("Message-ID: " + mid)
        if extra:
            hdrs.append(extra)
        append(r, "INBOX", mk(hdrs))
    assert "OK" in r.cmd("SELECT INBOX")[0]
    yield r
    r.cmd("LOGOUT")


def test_thread_references(thread_box):
    # (1) a <- b <- c, a <- d, dummy <missing@t> <- e, f; the rest roots.
    # (3) the dummy stays: a root with two children. (4) roots by date:
    # dummy (its first child e, 09:00), a, g, h, i, 10. (5) h "Re: Lunch"
    # joins g "Lunch", i "Fwd: Plan" joins a "Plan" (replies under the
    # non-reply). (6) a's children by date: d 10:30, b 11:00, i 3 Jan.
    tag, lines = thread_box.cmd("THREAD REFERENCES UTF-8 ALL")
    assert " OK " in tag, tag
    assert untagged(lines, "THREAD") == \
        "* THREAD ((5)(6))(1 (4)(2 3)(9))(7 8)(10)"
    tag, lines = thread_box.cmd("UID THREAD REFERENCES UTF-8 ALL")
    assert untagged(lines, "THREAD") == \
        "* THREAD ((6)(7))(2 (5)(3 4)(10))(8 9)(11)"


def test_thread_orderedsubject(thread_box):
    # Groups by base subject, each in date order, the first the parent:
    # Other (5 6), Plan (1 4 2 3 9), Lunch (7 8), Solo (10); threads by
    # their first message's date.
    tag, lines = thread_box.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert " OK " in tag, tag
    assert untagged(lines, "THREAD") == \
        "* THREAD (5 6)(1 (4)(2)(3)(9))(7 8)(10)"


def test_thread_criteria(thread_box):
    _, lines = thread_box.cmd("THREAD REFERENCES UTF-8 SUBJECT Lunch")
    assert untagged(lines, "THREAD") == "* THREAD (7 8)"
    # Without 1 (a), its children meet under the dummy <a@t>: a root
    # dummy with two children (b, d) stays; i "Fwd: Plan" has the same
    # base subject as the dummy's first child and joins it.
    _, lines = thread_box.cmd("THREAD REFERENCES UTF-8 2:4,9")
    assert untagged(lines, "THREAD") == "* THREAD ((4)(2 3)(9))"
    _, lines = thread_box.cmd("THREAD ORDEREDSUBJECT UTF-8 SUBJECT none")
    assert untagged(lines, "THREAD") == "* THREAD"


def test_thread_loops_and_duplicates(tern):
    r = session(tern)
    # x references y, y references x (a loop); z duplicates x's id.
    for mid, refs, date in [("<x@l>", "<y@l>", "1"), ("<y@l>", "<x@l>", "2"),
                            ("<x@l>", "", "3")]:
        append(r, "INBOX", mk(["Subject: s" + date, "Message-ID: " + mid,
                               "References: " + refs if refs else "X: y",
                               "Date: Mon, %s Jan 2024 10:00:00 +0000"
                               % date]))
    assert "OK" in r.cmd("SELECT INBOX")[0]
    # x's parent is the dummy y; then y is message 2 whose parent would
    # be x: that makes a loop, so y stays a root with child x. The
    # duplicate <x@l> (3) is unique and alone.
    _, lines = r.cmd("THREAD REFERENCES UTF-8 ALL")
    assert untagged(lines, "THREAD") == "* THREAD (2 1)(3)"
    r.cmd("LOGOUT")


def test_thread_own_references_replace_presumed_parent(tern):
    # 2 (<r@w>) references <p@w> <q@w>: q is presumed a child of p, and
    # r a child of q. Then q itself (4) references r: RFC 5256 5 (1)(C)
    # breaks q's presumed parent p first, and the link q -> r is not
    # made (r is q's child: a loop), so q is a root with its child r,
    # and p is alone. Roots by date: 3 (1 Jan), 4 (3 Jan), 1 (5 Jan).
    r = session(tern)
    for mid, subj, refs, day in [("<p@w>", "Alpha", "", 5),
                                 ("<r@w>", "Beta", "<p@w> <q@w>", 2),
                                 ("<s@w>", "Gamma", "", 1),
                                 ("<q@w>", "Delta", "<r@w>", 3)]:
        hdrs = ["Subject: " + subj, "Message-ID: " + mid,
                "Date: Mon, %d Jan 2024 10:00:00 +0000" % day]
        if refs:
            hdrs.append("References: " + refs)
        append(r, "INBOX", mk(hdrs))
    assert "OK" in r.cmd("SELECT INBOX")[0]
    _, lines = r.cmd("THREAD REFERENCES UTF-8 ALL")
    assert untagged(lines, "THREAD") == "* THREAD (3)(4 2)(1)"
    r.cmd("LOGOUT")


# ---- full-text SEARCH BODY / TEXT ----

FTS_CORPUS = [
    # 1: base64 text part
    mk(["From: a@example.org", "Subject: one", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=b"],
       b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n" +
       base64.encodebytes("zanzibar quokka xzqx\r\n".encode()) +
       b"--b--\r\n"),
    # 2: quoted-printable with a soft line break and UTF-8
    mk(["From: b@example.org", "Subject: two", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable"],
       b"caf=C3=A9 ma=\r\nrmalade\r\n"),
    # 3: an attachment whose filename and bytes hold the word
    mk(["From: c@example.org", "Subject: three", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=c"],
       b"--c\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--c\r\n"
       b"Content-Type: application/octet-stream; name=budgetreport.bin\r\n"
       b"Content-Disposition: attachment; filename=budgetreport.bin\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n" +
       base64.encodebytes(b"budgetreport \x00\x01") + b"--c--\r\n"),
    # 4: the word only in the header
    mk(["From: d@example.org", "Subject: =?utf-8?Q?platypus?=",
        "Content-Type: text/html"],
       b"<p>a <b>wombat</b></p>\r\n"),
    # 5: a folded subject whose encoded-words join across the fold, and
    # words on both sides of a plain fold
    mk(["From: e@example.org",
        "Subject: =?utf-8?Q?echid?=\r\n =?utf-8?Q?na?= left\r\n right",
        "X-Tag: kestrel"]),
]


@pytest.fixture(scope="module")
def fts_box(tern):
    r = session(tern)
    for m in FTS_CORPUS:
        append(r, "INBOX", m)
    assert "OK" in r.cmd("SELECT INBOX")[0]
    yield r
    r.cmd("LOGOUT")


def search(r, crit):
    tag, lines = r.cmd("SEARCH " + crit)
    assert " OK " in tag, tag
    return nums(untagged(lines, "SEARCH"), "SEARCH")


@pytest.mark.parametrize("crit,expect", [
    ("BODY quokka", [1]),          # base64 decoded
    ("BODY QUOKKA", [1]),          # case-insensitive
    ("BODY nziba", [1]),           # substring, not a word
    ("BODY zq", [1]),              # 2 characters: scanned, not indexed
    ("BODY marmalade", [2]),       # quoted-printable soft line break
    ("BODY \"caf\xc3\xa9 marm\"", [2]),
    ("BODY budgetreport", []),     # attachment: neither name nor bytes
    ("BODY platypus", []),         # header only
    ("TEXT platypus", [4]),        # TEXT includes the (decoded) header
    ("TEXT c@example.org", [3]),
    ("BODY wombat", [4]),          # HTML markup removed
    ("BODY \"see attached\"", [3]),
    ("OR BODY quokka BODY marmalade", [1, 2]),
    ("NOT BODY quokka", [2, 3, 4, 5]),
    ("BODY \"q\\\"x\"", []),       # a quote inside the needle
    ("TEXT \"\"", [1, 2, 3, 4, 5]),  # empty string matches everything
    # header keys are narrowed by the index too, with the same answers
    ("SUBJECT platypus", [4]),
    ("SUBJECT echidna", [5]),      # encoded-words joined across a fold
    ("SUBJECT \"left right\"", [5]),  # spans a fold: scanned
    ("FROM e@example", [5]),
    ("HEADER X-Tag kestrel", [5]),
    ("HEADER Subject kestrel", []),  # in another field of the header
    ("SUBJECT wombat", []),        # only in the body
    ("NOT SUBJECT echidna", [1, 2, 3, 4]),
])
def test_search_body_text(fts_box, crit, expect):
    if "\xc3" in crit:
        raw = crit.encode("latin-1")
        fts_box.send(b"u1 SEARCH CHARSET UTF-8 BODY {%d+}\r\n%s\r\n"
                     % (len(raw) - len(b"BODY \"\"") + 0,
                        raw[len(b"BODY \""):-1]))
        tag, lines = fts_box.tagged("u1")
        assert " OK " in tag
        assert nums(untagged(lines, "SEARCH"), "SEARCH") == expect
        return
    assert search(fts_box, crit) == expect


def test_search_dedup_and_gc(fresh_tern):
    # the full-text rows are in index.db, beside tern.db (created with
    # its tables when the server opens the store)
    db = os.path.join(fresh_tern.datadir, "index.db")

    def rows():
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            return c.execute("SELECT count(*) FROM blob_fts").fetchone()[0]
        finally:
            c.close()

    r = session(fresh_tern)
    base = rows()
    m = mk(["Subject: dedup", "Message-ID: <dd@t>"], b"echidna\r\n")
    assert "OK" in r.cmd("CREATE Other")[0]
    append(r, "INBOX", m)
    append(r, "Other", m)
    # the commit thread writes the row right after the commit, in a
    # transaction of its own (store_fts_defer): wait for it, bounded
    deadline = time.time() + 10
    while rows() != base + 1 and time.time() < deadline:
        time.sleep(0.05)
    assert rows() == base + 1      # one index row per blob
    for box in ("INBOX", "Other"):
        assert "OK" in r.cmd("SELECT " + box)[0]
        assert search(r, "BODY echidna") == [1]
    assert "OK" in r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")[0]
    assert "OK" in r.cmd("EXPUNGE")[0]
    assert "OK" in r.cmd("SELECT INBOX")[0]
    assert search(r, "BODY echidna") == [1]
    assert rows() == base + 1
    assert "OK" in r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")[0]
    assert "OK" in r.cmd("EXPUNGE")[0]
    deadline = time.time() + 10
    while rows() != base and time.time() < deadline:
        time.sleep(0.1)
    assert rows() == base          # collected after the blob
    r.cmd("LOGOUT")


def test_search_text_not_utf8(tern):
    # A raw 8-bit header that is not valid UTF-8: "caf" + U+00E9 + a stray
    # continuation byte. The trigram index splits it into other
    # characters than the needle "caf\xe9"; such blobs are candidates for
    # every non-ASCII needle, so the exact check still finds it.
    r = session(tern)
    append(r, "INBOX", b"Subject: caf\xc3\xa9\xa9 au lait\r\n\r\nnothing\r\n")
    append(r, "INBOX", mk(["Subject: plain"], b"other\r\n"))
    assert "OK" in r.cmd("SELECT INBOX")[0]
    needle = "caf\u00e9".encode()
    r.send(b"u1 SEARCH CHARSET UTF-8 TEXT {%d+}\r\n%s\r\n"
           % (len(needle), needle))
    tag, lines = r.tagged("u1")
    assert " OK " in tag, tag
    assert nums(untagged(lines, "SEARCH"), "SEARCH") == [1]
    assert search(r, "TEXT lait") == [1]     # ASCII needles use the index
    r.cmd("LOGOUT")
