"""Helpers for the IMAP protocol tests: imaplib connections over implicit
TLS and STARTTLS, and a raw transcript client that understands literals."""
import imaplib
import re
import socket
import ssl
import uuid


def ctx():
    return ssl._create_unverified_context()


def imaps(tern):
    return imaplib.IMAP4_SSL(tern.host, tern.port("imaps"),
                             ssl_context=ctx(), timeout=20)


def login(tern, user=None, password=None):
    m = imaps(tern)
    typ, _ = m.login(user or tern.user, password or tern.password)
    assert typ == "OK"
    return m


def new_account(tern, password="secret-pass-1"):
    addr = "u%s@%s" % (uuid.uuid4().hex[:10], tern.domain)
    tern.add_account(addr, password)
    return addr, password


def msg(subject, body="Hello.\r\n", frm="sender@remote.example",
        extra=""):
    return ("From: %s\r\nTo: demo@example.test\r\nSubject: %s\r\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n%s"
            "Message-ID: <%s@test>\r\n\r\n%s"
            % (frm, subject, extra, uuid.uuid4().hex, body)).encode()


class Raw:
    """A raw IMAP client: send a command, read untagged lines (with their
    literals inlined) up to the tagged reply."""

    def __init__(self, tern, tls=True, port=None, timeout=20):
        if port is None:
            port = tern.port("imaps" if tls else "imap")
        self.sock = socket.create_connection((tern.host, port),
                                             timeout=timeout)
        if tls:
            self.sock = ctx().wrap_socket(self.sock)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; buffered %r" % self.buf)
        self.buf += chunk

    def raw_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(self):
        """One response line with literals inlined (bytes)."""
        out = b""
        while True:
            ln = self.raw_line()
            out += ln
            if ln.endswith(b"}") and b"{" in ln:
                num = ln[ln.rindex(b"{") + 1:-1].rstrip(b"+")
                if num.isdigit():
                    out += b"\r\n" + self.read_bytes(int(num))
                    continue
            return out

    def tagged(self, tag):
        untagged = []
        while True:
            ln = self.line()
            if ln.startswith(tag.encode() + b" "):
                return ln.decode("utf-8", "replace"), untagged
            untagged.append(ln)

    def cmd(self, text, tag=None):
        if tag is None:
            self.n += 1
            tag = "t%d" % self.n
        self.send("%s %s\r\n" % (tag, text))
        return self.tagged(tag)

    def login(self, user, password):
        r, _ = self.cmd('LOGIN "%s" "%s"' % (user, password))
        assert r.split()[1] == "OK", r
        return r

    def closed(self, timeout=10):
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def multiappend(r, n):
    """n small messages into INBOX over r (a logged-in Raw), 500 per
    MULTIAPPEND with LITERAL+: subjects and bodies m0.., body 0..."""
    done = 0
    while done < n:
        k = min(500, n - done)
        parts = ["f%d APPEND INBOX" % done]
        for i in range(done, done + k):
            m = "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)
            parts.append(" {%d+}\r\n%s" % (len(m), m))
        r.send("".join(parts) + "\r\n")
        line, _ = r.tagged("f%d" % done)
        assert " OK " in line, line
        done += k


LISTING_FETCH_RE = re.compile(rb"\* (\d+) FETCH \((.*)\)$")


def listing_flags(u):
    """The flags of a FETCH line, without \\Recent (whoever selects
    first after a delivery has it)."""
    f = set(re.search(rb"FLAGS \(([^)]*)\)", u).group(1).split())
    f.discard(b"\\Recent")
    return frozenset(f)


def listing(r):
    """[(seq, uid, flags, modseq)] of the mailbox selected on r."""
    line, unt = r.cmd("FETCH 1:* (UID FLAGS MODSEQ)")
    assert " OK " in line, line
    out = []
    for u in unt:
        if u.startswith(b"* OK [HIGHESTMODSEQ "):
            continue  # CONDSTORE enabled by this FETCH (RFC 7162 3.1)
        mt = LISTING_FETCH_RE.match(u)
        assert mt, u
        out.append((int(mt.group(1)),
                    int(re.search(rb"UID (\d+)", u).group(1)),
                    listing_flags(u),
                    int(re.search(rb"MODSEQ \((\d+)\)", u).group(1))))
    return out

