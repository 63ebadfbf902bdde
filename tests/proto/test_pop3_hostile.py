"""Hostile and exact POP3 input against a real ternd: bad arguments and
numbers, commands in the wrong state, control bytes, the 255-octet line
limit (RFC 2449 4), a pipelined flood, and exact multi-line bytes
(dot-stuffing and CRLF for a message stored with bare LF, RFC 1939 3)."""
import os
import socket
import time

import pytest

from pop3_helpers import Pop, deliver, imap_login, pop_login


@pytest.fixture(scope="module")
def box(tern):
    deliver(tern, 3, tag="hostile")
    return tern


def test_bad_arguments(box):
    p = pop_login(box)
    bad = ["RETR", "RETR 0", "RETR -1", "RETR +1", "RETR 1x", "RETR 0x1",
           "RETR 4294967296", "RETR 99999999999999999999", "RETR 4",
           "TOP 1", "TOP 1 -1", "TOP 1 x", "TOP 4 1", "TOP 1 1 1",
           "LIST 0", "LIST 1 2", "LIST x", "DELE", "DELE 1 2", "DELE 4",
           "UIDL abc", "UIDL 0", "NOOP x", "STAT x", "RSET x"]
    for c in bad:
        r = p.cmd(c)
        assert r.startswith("-ERR"), (c, r)
    assert p.cmd("STAT").startswith("+OK 3 ")
    assert p.cmd("DELE 1").startswith("+OK")
    for c in ("DELE 1", "RETR 1", "TOP 1 0", "LIST 1", "UIDL 1"):
        r = p.cmd(c)
        assert r.startswith("-ERR"), (c, r)
    assert p.cmd("LIST").startswith("+OK 2 ")
    assert [ln.split()[0] for ln in p.multi()] == ["2", "3"]
    assert p.cmd("UIDL").startswith("+OK")
    assert [ln.split()[0] for ln in p.multi()] == ["2", "3"]
    assert p.cmd("RSET").startswith("+OK")
    assert p.cmd("LIST 1").startswith("+OK 1 ")
    # TOP with more lines than the body has is the whole message
    assert p.cmd("TOP 1 1000").startswith("+OK")
    top = p.multi()
    assert p.cmd("RETR 1").startswith("+OK")
    assert p.multi() == top
    assert p.cmd("QUIT").startswith("+OK")
    p.close()
    p = pop_login(box)
    assert p.cmd("STAT").startswith("+OK 3 ")  # RSET undid the DELE
    p.cmd("QUIT")
    p.close()


def test_wrong_state(box):
    p = Pop(box)
    for c in ("STAT", "LIST", "RETR 1", "DELE 1", "RSET", "TOP 1 1",
              "UIDL", "NOOP"):
        assert p.cmd(c).startswith("-ERR"), c
    assert p.cmd("PASS x").startswith("-ERR")  # no USER
    p.login(box.user, box.password)
    for c in ("USER x", "PASS x", "AUTH PLAIN", "STLS"):
        assert p.cmd(c).startswith("-ERR"), c
    assert p.cmd("STAT").startswith("+OK 3 ")
    p.cmd("QUIT")
    p.close()
    p = Pop(box)
    assert p.cmd("QUIT").startswith("+OK")  # from AUTHORIZATION
    assert p.closed()
    p.close()


def test_control_bytes_and_junk(box):
    p = pop_login(box)
    for junk in (b"NO\0OP", b"STAT\x01", b"\x1b[A", b"", b" STAT",
                 b"\xff\xfe\xfd", "STÄT".encode(), b"STATS", b"ST",
                 b"RETR\t1"):
        p.send(junk + b"\r\n")
        r = p.line()
        assert r.startswith("-ERR"), (junk, r)
    assert p.cmd("STAT").startswith("+OK 3 ")
    p.cmd("QUIT")
    p.close()


def test_line_limit(box):
    p = pop_login(box)
    assert p.cmd("NOOP" + " " * 251).startswith("+OK")  # 255 octets
    assert "too long" in p.cmd("NOOP" + " " * 252)
    assert "too long" in p.cmd("RETR " + "1" * 100000)
    assert p.cmd("STAT").startswith("+OK 3 ")
    p.cmd("QUIT")
    p.close()


def test_pipelined_flood(box):
    p = pop_login(box)
    p.send("NOOP\r\n" * 3000 + "LIST\r\nUIDL\r\nRETR 2\r\nTOP 3 0\r\nSTAT\r\n")
    for _ in range(3000):
        assert p.line() == "+OK"
    assert p.line().startswith("+OK 3 ")
    assert len(p.multi()) == 3
    assert p.line().startswith("+OK")
    assert len(p.multi()) == 3
    assert p.line().startswith("+OK")
    assert any("hostile 1" in ln for ln in p.multi())
    assert p.line().startswith("+OK")
    assert p.multi()[-1] == ""
    assert p.line().startswith("+OK 3 ")
    p.cmd("QUIT")
    p.close()


def _raw_retr(tern, cmd):
    """The exact bytes of a multi-line reply, up to the terminator."""
    p = pop_login(tern)
    p.send(cmd + "\r\n")
    data = p.buf
    while not data.endswith(b"\r\n.\r\n"):
        chunk = p.sock.recv(65536)
        assert chunk
        data += chunk
    p.buf = b""
    p.cmd("QUIT")
    p.close()
    return data


def test_exact_bytes_for_bare_lf_message(fresh_tern):
    t = fresh_tern
    msg = (b"From: a@example.org\nSubject: lf\n\n.\n..x\nbody\n.\n"
           b"\r\nlast without newline")
    m = imap_login(t)
    m.sock.sendall(b"a1 APPEND INBOX {%d}\r\n" % len(msg))
    assert m.line().startswith("+")
    m.sock.sendall(msg + b"\r\n")
    while True:
        ln = m.line()
        if ln.startswith("a1 "):
            assert " OK" in ln, ln
            break
    m.close()
    data = _raw_retr(t, "RETR 1")
    head, body = data.split(b"\r\n", 1)
    assert head.startswith(b"+OK")
    assert body == (b"From: a@example.org\r\nSubject: lf\r\n\r\n..\r\n"
                    b"...x\r\nbody\r\n..\r\n\r\nlast without newline\r\n"
                    b".\r\n")
    data = _raw_retr(t, "TOP 1 2")
    assert data.split(b"\r\n", 1)[1] == (
        b"From: a@example.org\r\nSubject: lf\r\n\r\n..\r\n...x\r\n.\r\n")
    data = _raw_retr(t, "TOP 1 0")
    assert data.split(b"\r\n", 1)[1] == (
        b"From: a@example.org\r\nSubject: lf\r\n\r\n.\r\n")


def test_connection_limit_per_ip(fresh_tern):
    from pop3_helpers import reconfigure
    t = fresh_tern
    reconfigure(t, workers="1", max_connections_per_ip="2")
    held = []
    deadline = time.time() + 10
    while len(held) < 2:
        # the fixture's readiness probes may still count for a moment
        p = Pop(t)
        if p.greeting.startswith("+OK"):
            held.append(p)
        else:
            p.close()
            assert time.time() < deadline, p.greeting
            time.sleep(0.05)
    p = Pop(t)
    assert p.greeting.startswith("-ERR [SYS/TEMP]"), p.greeting
    assert p.closed()
    p.close()
    for h in held:
        assert h.cmd("QUIT").startswith("+OK")
        h.close()
    time.sleep(0.2)
    p = pop_login(t)
    p.cmd("QUIT")
    p.close()
