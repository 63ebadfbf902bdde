"""COMPRESS=DEFLATE (RFC 4978) with a client that really deflates: Python's
zlib on the raw socket (raw deflate, wbits=-15, Z_SYNC_FLUSH after each
command), over implicit TLS and over plain TCP; a second COMPRESS is
NO [COMPRESSIONACTIVE]; a big APPEND/FETCH round trip through both
directions of the stream."""
import os
import shutil
import time
import zlib

import pytest

from test_imap_helpers import Raw, msg, new_account


class ZRaw(Raw):
    """Raw, plus deflate in both directions once compress() is called."""

    zout = zin = None
    wire_in = wire_out = 0

    def compress(self):
        line, unt = self.cmd("COMPRESS DEFLATE")
        assert line.split()[1] == "OK", line
        assert self.buf == b""  # nothing may follow the OK uncompressed
        self.zout = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zin = zlib.decompressobj(-15)
        return line

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.zout is not None:
            data = self.zout.compress(data) + self.zout.flush(
                zlib.Z_SYNC_FLUSH)
        self.wire_out += len(data)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; buffered %r" % self.buf)
        self.wire_in += len(chunk)
        if self.zin is not None:
            chunk = self.zin.decompress(chunk)
        self.buf += chunk


def _session(tern, tls):
    addr, pw = new_account(tern)
    r = ZRaw(tern, tls=tls)
    r.login(addr, pw)
    return r


def test_capability_and_state(tern):
    r = ZRaw(tern)
    line, _ = r.cmd("COMPRESS DEFLATE")
    assert line.split()[1] == "BAD"  # before login
    addr, pw = new_account(tern)
    r.login(addr, pw)
    line, unt = r.cmd("CAPABILITY")
    assert b" COMPRESS=DEFLATE" in unt[0]
    line, _ = r.cmd("COMPRESS LZMA")
    assert line.split()[1] == "BAD"
    line, _ = r.cmd("COMPRESS")
    assert line.split()[1] == "BAD"
    r.close()


def _round_trip(r):
    line, unt = r.cmd("NOOP")
    assert line.split()[1] == "OK"
    line, unt = r.cmd("SELECT INBOX")
    assert line.split()[1] == "OK"
    body = ("".join("line %d of a long and repetitive body\r\n" % i
                    for i in range(4000))
            + os.urandom(3000).hex() + "\r\n")
    data = msg("deflated", body=body)
    r.send("a1 APPEND INBOX {%d}\r\n" % len(data))
    assert r.line().startswith(b"+")
    r.send(data + b"\r\n")
    line, _ = r.tagged("a1")
    assert line.split()[1] == "OK", line
    line, unt = r.cmd("FETCH 1 (BODY.PEEK[])")
    assert line.split()[1] == "OK"
    assert len(unt) == 1 and data in unt[0]
    line, unt = r.cmd("COMPRESS DEFLATE")
    assert line.split()[1] == "NO"
    assert "[COMPRESSIONACTIVE]" in line
    line, unt = r.cmd("LOGOUT")
    assert line.split()[1] == "OK"
    assert any(u.startswith(b"* BYE") for u in unt)
    return len(data)


def test_compress_over_tls(tern):
    r = _session(tern, True)
    r.compress()
    size = _round_trip(r)
    # the stream really is compressed: far fewer bytes on the wire than
    # the message went up and came back
    assert r.wire_out < size / 2, (r.wire_out, size)
    assert r.wire_in < size / 2, (r.wire_in, size)
    r.close()


def test_compress_plain_tcp(tern):
    r = _session(tern, False)
    r.compress()
    _round_trip(r)
    r.close()


def test_pipelined_after_compress(tern):
    """Two commands in one compressed write, then a third split across
    two writes: the server inflates across segment boundaries."""
    r = _session(tern, True)
    r.compress()
    r.send("p1 NOOP\r\np2 CAPABILITY\r\n")
    line, _ = r.tagged("p1")
    assert line.split()[1] == "OK"
    line, unt = r.tagged("p2")
    assert line.split()[1] == "OK"
    # already active: no longer offered
    assert b"NOTIFY" in unt[0] and b"COMPRESS=DEFLATE" not in unt[0]
    r.send("p3 NO")
    r.send("OP\r\n")
    line, _ = r.tagged("p3")
    assert line.split()[1] == "OK"
    r.close()


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="no mbsync")
def test_mbsync_uses_compress(tern, tmp_path):
    """isync 1.4 turns COMPRESS=DEFLATE on by itself when offered: a full
    sync of two folders runs over the compressed stream."""
    from test_imap_clients import _maildir_msgs, _mbsync, _mbsyncrc
    from test_imap_helpers import login
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.create("Work")
    for i in range(3):
        m.append("INBOX", None, None, msg("in%d" % i))
    m.append("Work", None, None, msg("work"))
    m.logout()
    before = tern.log().count("compress mechanism=deflate")
    rc, local = _mbsyncrc(tern, tmp_path, addr, pw)
    _mbsync(rc)
    assert len(_maildir_msgs(local / "INBOX")) == 3
    assert len(_maildir_msgs(local / "Work")) == 1
    deadline = time.time() + 5
    while (tern.log().count("compress mechanism=deflate") <= before and
           time.time() < deadline):
        time.sleep(0.1)
    assert tern.log().count("compress mechanism=deflate") > before


def test_idle_pushes_over_compress(tern):
    """In IDLE the server frees its compressor after each flush and
    starts a fresh raw deflate stream for the next push: the client's
    one inflater reads them all, and the stream goes on after DONE."""
    from test_imap_helpers import login
    addr, pw = new_account(tern)
    r = ZRaw(tern)
    r.login(addr, pw)
    r.compress()
    r.cmd("SELECT INBOX")
    line, _ = r.cmd("NOTIFY SET (selected (MessageNew MessageExpunge)) "
                    "(personal (MessageNew MessageExpunge MailboxName))")
    assert line.split()[1] == "OK", line
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling"
    m = login(tern, addr, pw)
    for n in range(1, 4):
        m.append("INBOX", None, None, msg("push %d" % n))
        assert r.line() == b"* %d EXISTS" % n
        assert r.line() == b"* %d RECENT" % n
    m.create("Folder")
    assert r.line() == b'* LIST () "/" "Folder"'
    m.append("Folder", None, None, msg("elsewhere"))
    assert r.line().startswith(b'* STATUS "Folder" (MESSAGES 1 ')
    r.send("DONE\r\n")
    line, _ = r.tagged("i")
    assert line == "i OK Idle completed."
    line, unt = r.cmd("FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: push 3" in unt[0]
    m.logout()
    r.close()
