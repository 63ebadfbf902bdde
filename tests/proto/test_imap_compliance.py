"""RFC details a run of an independent IMAP test suite against tern
showed wrong (each test below is our own, with our own messages): the
largest UID 4294967295 in a set (RFC 9051 section 9, nz-number), ...
"""
import re

from test_imap_helpers import Raw, msg, new_account


def _selected(tern, n):
    addr, pw = new_account(tern)
    r = Raw(tern)
    r.login(addr, pw)
    for i in range(n):
        data = msg("m%d" % i)
        r.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        line, _ = r.tagged("a")
        assert " OK " in line, line
    line, _ = r.cmd("SELECT INBOX")
    assert " OK " in line, line
    return r


def _search(r, text):
    line, unt = r.cmd(text)
    assert " OK " in line, line
    found = [u for u in unt if u.startswith(b"* SEARCH")]
    assert len(found) == 1, unt
    return [int(x) for x in found[0].split()[2:]]


def test_uid_set_up_to_the_largest_uid(tern):
    r = _selected(tern, 3)
    assert _search(r, "UID SEARCH UID 1:4294967295") == [1, 2, 3]
    assert _search(r, "UID SEARCH UID 4294967295") == []
    # above the last UID: a range to 2^32-1 is empty, "n:*" is not
    assert _search(r, "UID SEARCH UID 4:4294967295") == []
    assert _search(r, "UID SEARCH UID 4:*") == [3]
    line, unt = r.cmd("UID FETCH 2:4294967295 (FLAGS)")
    assert line.endswith("OK Fetch completed."), line
    assert [re.match(rb"\* (\d+) FETCH", u).group(1) for u in unt] == \
        [b"2", b"3"]
    line, _ = r.cmd("UID SEARCH UID 1:4294967296")
    assert " BAD " in line, line
    r.close()
