"""FETCH through the worker's caches (imap_msg_cache.c: what never
changes about a message; store_blob_map_cached: small blobs read lately).
With one worker every session shares them. A message expunged by another
session may still be served to a session not yet told of the expunge, but
only with its own bytes; once told, it is gone. A mailbox deleted and made
again (a new id and UIDVALIDITY, same UIDs) serves its own messages' bytes
and sizes, and a second copy of a message (COPY: same blob, new UID) is
served right."""
import imaplib

import pytest

from conftest import Tern
from test_imap_helpers import ctx, msg, new_account


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    t = Tern(tmp_path_factory.mktemp("fcache"), extra_config="workers = 1")
    t.start()
    yield t
    t.stop()


def _conn(t, addr, pw):
    m = imaplib.IMAP4_SSL(t.host, t.port("imaps"), ssl_context=ctx(),
                          timeout=20)
    assert m.login(addr, pw)[0] == "OK"
    return m


def _body(m, n):
    typ, data = m.fetch(str(n), "(BODY.PEEK[])")
    assert typ == "OK", data
    parts = [d for d in data if isinstance(d, tuple)]
    return parts[0][1] if parts else None


def test_expunged_elsewhere_then_reported(one_worker):
    t = one_worker
    addr, pw = new_account(t)
    a = _conn(t, addr, pw)
    bodies = [msg("m%d" % i, "body %d\r\n" % i) for i in range(3)]
    for b in bodies:
        assert a.append("INBOX", None, None, b)[0] == "OK"
    a.select("INBOX")
    for i in range(3):
        assert _body(a, i + 1) == bodies[i]  # now cached
    b = _conn(t, addr, pw)
    b.select("INBOX")
    b.store("2", "+FLAGS", "(\\Deleted)")
    assert b.expunge()[0] == "OK"
    b.logout()
    # a was not told yet: message 2 is either served with its own bytes
    # or left out, never another message's
    got = _body(a, 2)
    assert got in (None, bodies[1]), got
    assert _body(a, 3) == bodies[2]
    typ, data = a.noop()
    assert typ == "OK"
    assert a.untagged_responses.get("EXPUNGE") == [b"2"], \
        a.untagged_responses
    # now sequence 2 is the former third message
    assert _body(a, 2) == bodies[2]
    # and sequence 3 no longer exists
    with pytest.raises(imaplib.IMAP4.error, match="Invalid messageset"):
        a.fetch("3", "(BODY.PEEK[])")
    a.logout()


def test_mailbox_made_again_and_copies(one_worker):
    t = one_worker
    addr, pw = new_account(t)
    m = _conn(t, addr, pw)
    old = [msg("old %d" % i, "old body %d\r\n" % i) for i in range(2)]
    new = [msg("new %d" % i, "new body, other length %d\r\n" % i)
           for i in range(2)]
    for round_ in range(3):
        assert m.create("Box")[0] == "OK"
        src = old if round_ % 2 == 0 else new
        for b in src:
            assert m.append("Box", None, None, b)[0] == "OK"
        assert m.select("Box")[0] == "OK"
        for i, b in enumerate(src):
            assert _body(m, i + 1) == b
            typ, data = m.fetch(str(i + 1), "(RFC822.SIZE)")
            assert b"RFC822.SIZE %d" % len(b) in data[0], data
        # a copy shares the blob; its UID and mailbox are new
        assert m.copy("1:2", "INBOX")[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        typ, data = m.fetch("1:*", "(UID)")
        n = len(data)
        assert _body(m, n - 1) == src[0]
        assert _body(m, n) == src[1]
        assert m.close()[0] == "OK"
        assert m.delete("Box")[0] == "OK"
    m.logout()


def test_many_sessions_same_messages(one_worker):
    """Sessions of two accounts read the same mailbox names with
    different mail: each sees its own bytes, through the shared cache."""
    t = one_worker
    conns = []
    for k in range(2):
        addr, pw = new_account(t)
        c = _conn(t, addr, pw)
        mine = [msg("acct %d msg %d" % (k, i), "x" * (100 * k + i) + "\r\n")
                for i in range(4)]
        for b in mine:
            assert c.append("INBOX", None, None, b)[0] == "OK"
        c.select("INBOX")
        conns.append((c, mine))
    for _ in range(3):
        for c, mine in conns:
            for i, b in enumerate(mine):
                assert _body(c, i + 1) == b
    for c, _ in conns:
        c.logout()
