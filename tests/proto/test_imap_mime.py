"""BODYSTRUCTURE and ENVELOPE on a corpus of messages (our own multipart,
nested message/rfc822, broken MIME and non-ASCII cases, plus the
test_email/data messages of Debian's libpython3.11-testsuite when it is
installed) checked against an independent parse by Python's email
package: content types, nesting, parameters, transfer encodings,
subject, message-id and sender addresses."""
import email
import email.policy
import email.utils
import glob
import os
import re

import pytest

from test_imap_helpers import Raw, login, new_account

OWN = {
    "alternative_in_mixed": (
        b"From: A <a@example.org>\r\nTo: b@example.test\r\n"
        b"Subject: alt\r\nMessage-ID: <alt@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n"
        b"\r\n--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        b"plain\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n<p>h\xc3\xa9</p>\r\n"
        b"--inner--\r\n--outer\r\nContent-Type: image/png; name=x.png\r\n"
        b"Content-Disposition: attachment; filename=x.png\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
        b"--outer--\r\n"),
    "nested_rfc822": (
        b"From: fwd@example.org\r\nTo: b@example.test\r\nSubject: Fwd: x\r\n"
        b"Message-ID: <fwd@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
        b"Content-Type: text/plain\r\n\r\nsee below\r\n--b1\r\n"
        b"Content-Type: message/rfc822\r\n\r\n"
        b"From: inner@example.net\r\nSubject: inner\r\n"
        b"Message-ID: <inner@x>\r\nContent-Type: multipart/mixed; "
        b"boundary=b2\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\n"
        b"deep\r\n--b2\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b2--\r\n"
        b"\r\n--b1--\r\n"),
    "broken_no_boundary": (
        b"From: x@example.org\r\nSubject: broken\r\nMessage-ID: <b@x>\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nno boundary here\r\n"),
    "broken_unterminated": (
        b"From: x@example.org\r\nSubject: unterminated\r\n"
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: text/plain\r\n\r\nnever closed\r\n"),
    "non_ascii_headers": (
        "From: Jörg Müller <joerg@example.org>\r\nTo: "
        "=?utf-8?b?w4Rnb24=?= <a@example.test>\r\nSubject: Grüße "
        "=?iso-8859-1?q?aus_K=F6ln?=\r\nMessage-ID: <na@x>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nÄpfel\r\n").encode(),
    "no_content_type": (
        b"From: plain@example.org\r\nSubject: bare\r\n\r\nbody\r\n"),
    "folded_subject": (
        b"From: f@example.org\r\nSubject: a very\r\n long\r\n\tsubject\r\n"
        b"Message-ID:\r\n <fold@x>\r\n\r\nbody\r\n"),
}


def corpus():
    items = sorted(OWN.items())
    data = "/usr/lib/python3.11/test/test_email/data"
    for path in sorted(glob.glob(os.path.join(data, "msg_*.txt"))):
        with open(path, "rb") as f:
            items.append((os.path.basename(path), f.read()))
    return items


def parse_sexp(data, pos=0):
    """Parse one IMAP value at data[pos:]; returns (value, pos)."""
    while data[pos:pos + 1] == b" ":
        pos += 1
    c = data[pos:pos + 1]
    if c == b"(":
        pos += 1
        out = []
        while True:
            while data[pos:pos + 1] == b" ":
                pos += 1
            if data[pos:pos + 1] == b")":
                return out, pos + 1
            v, pos = parse_sexp(data, pos)
            out.append(v)
    if c == b'"':
        pos += 1
        out = b""
        while data[pos:pos + 1] != b'"':
            if data[pos:pos + 1] == b"\\":
                pos += 1
            out += data[pos:pos + 1]
            pos += 1
        return out, pos + 1
    if c == b"{":
        end = data.index(b"}", pos)
        n = int(data[pos + 1:end])
        start = end + 3
        return data[start:start + n], start + n
    m = re.compile(rb"[^ ()]+").match(data, pos)
    tok = m.group(0)
    return (None if tok == b"NIL" else tok), m.end()


def fetch_item(line, name):
    i = line.index(name + b" ") + len(name) + 1
    return parse_sexp(line, i)[0]


def s(v):
    return None if v is None else v.decode("utf-8", "replace")


def params(lst):
    if not lst:
        return {}
    return {s(lst[i]).lower(): s(lst[i + 1]) for i in range(0, len(lst), 2)}


def expected(part):
    ctype = part.get_content_type()
    if part.get_content_maintype() == "multipart" and \
            not part.is_multipart():
        return ("text", "plain", None)
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        return ("multipart", part.get_content_subtype(),
                [expected(p) for p in part.get_payload()])
    if ctype in ("message/rfc822",) and part.is_multipart():
        return ("message", "rfc822", [expected(part.get_payload(0))])
    cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    return (part.get_content_maintype(), part.get_content_subtype(), cte)


def actual(bs):
    if isinstance(bs[0], list):
        # The leading lists are the parts; the subtype follows them, then
        # extension data (which has lists of its own).
        kids = []
        for b in bs:
            if not isinstance(b, list):
                break
            kids.append(b)
        sub = bs[len(kids)]
        return ("multipart", s(sub).lower(), [actual(k) for k in kids])
    typ, sub = s(bs[0]).lower(), s(bs[1]).lower()
    if typ == "message" and sub == "rfc822":
        return ("message", "rfc822", [actual(bs[8])])
    if typ == "text" and sub == "plain" and False:
        return (typ, sub, None)
    return (typ, sub, s(bs[5]).lower() if bs[5] is not None else "7bit")


def relax(e, a):
    """Broken text/plain fallbacks carry no encoding to compare."""
    if e[2] is None and a[:2] == ("text", "plain"):
        return e
    if isinstance(e[2], list) and isinstance(a[2], list) and \
            len(e[2]) == len(a[2]):
        return (a[0], a[1], [relax(x, y) for x, y in zip(e[2], a[2])])
    return a


# Broken MIME of the Debian corpus where Python's email package and tern
# read the structure differently; both readings are allowed, so tern's
# is pinned here (a change shows up) with the reason:
T, Q, B = "7bit", "quoted-printable", "base64"
DIVERGENT = {
    # A multipart/alternative inside multipart/mixed reuses the outer
    # boundary (RFC 2046 5.1.2 forbids it). tern gives the innermost
    # open multipart the boundary lines, which
    # keeps the text/html alternative and the GIF; Python gives them to
    # the outer one.
    "msg_15.txt": ("multipart", "mixed", [
        ("multipart", "alternative", [("text", "plain", Q),
                                      ("text", "html", Q)]),
        ("image", "gif", B)]),
    "msg_39.txt": ("multipart", "mixed", [
        ("multipart", "mixed", [
            ("multipart", "alternative",
             [("application", "octet-stream", B)] * 2)] * 3),
        ("text", "plain", T)]),
    # Delimiter lines with nothing between them: tern counts an empty
    # part (text/plain by default) for each, Python drops them.
    "msg_37.txt": ("multipart", "mixed", [
        ("text", "x-one", T), ("text", "plain", T), ("text", "x-two", T),
        ("text", "plain", T), ("text", "plain", T), ("text", "plain", T),
        ("text", "x-two", T)]),
}


@pytest.fixture(scope="module")
def mailbox(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    items = corpus()
    for name, data in items:
        typ, resp = m.append("INBOX", None, None, data)
        assert typ == "OK", (name, resp)
    m.logout()
    return addr, pw, items


def test_bodystructure_matches_python(tern, mailbox):
    addr, pw, items = mailbox
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    bad = []
    for i, (name, data) in enumerate(items, 1):
        line, unt = r.cmd("FETCH %d (BODYSTRUCTURE)" % i)
        assert " OK " in line
        bs = fetch_item(unt[0], b"BODYSTRUCTURE")
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        e, a = expected(msg), actual(bs)
        e = DIVERGENT.get(name, e)
        if relax(e, a) != e:
            bad.append((name, e, a))
        # parameters of the top part
        # RFC 2231 forms ("charset*") are reported as written, like
        # Dovecot does; Python decodes them, so compare plain ones only.
        raw_params = params(bs[2]) if not isinstance(bs[0], list) else {}
        if raw_params and "charset" in raw_params and \
                msg.get_param("charset"):
            want = email.utils.collapse_rfc2231_value(
                msg.get_param("charset"))
            assert params(bs[2]).get("charset", "").lower() == \
                want.lower(), name
    assert not bad, "\n".join(map(str, bad))
    r.close()


def _unfold(v):
    return re.sub(r"\r?\n(?=[ \t])", "", v).strip()


def test_envelope_matches_python(tern, mailbox):
    addr, pw, items = mailbox
    r = Raw(tern)
    r.login(addr, pw)
    r.cmd("SELECT INBOX")
    for i, (name, data) in enumerate(items, 1):
        line, unt = r.cmd("FETCH %d (ENVELOPE)" % i)
        env = fetch_item(unt[0], b"ENVELOPE")
        # The Debian corpus has LF line ends, our own messages CRLF.
        ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n"))
                if i >= 0]
        hdr_end = min(ends) if ends else -1
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        raw_subject = None
        mm = re.search(rb"^Subject:(.*(?:\r?\n[ \t].*)*)", data[:hdr_end]
                       if hdr_end > 0 else data, re.M | re.I)
        if mm:
            raw_subject = _unfold(mm.group(1).decode("utf-8", "replace")
                                  .rstrip("\r"))
        got = s(env[1])
        assert (got.strip() if got is not None else None) == raw_subject, \
            (name, got, raw_subject)
        if msg["Message-ID"] is not None:
            assert s(env[9]).strip() == _unfold(str(msg["Message-ID"])), name
        froms = email.utils.getaddresses(msg.get_all("From", []))
        if froms and froms[0][1] and "@" in froms[0][1] and env[2]:
            a = env[2][0]
            local, host = froms[0][1].rsplit("@", 1)
            assert (s(a[2]), s(a[3]).lower()) == (local, host.lower()), \
                (name, a, froms)
    r.close()
