"""Helpers for the POP3 protocol tests: delivery over SMTP, a raw POP3
line client (plain, STLS, implicit TLS), a minimal raw IMAP client for
the cross-protocol tests, config edits, and finding which ternd worker
process serves a connection."""
import base64
import hashlib
import hmac
import os
import re
import smtplib
import socket
import ssl
import time
import uuid

CTX = ssl._create_unverified_context()


def deliver(tern, n, to=None, tag="pop3"):
    """Put n messages into the INBOX of `to` over SMTP (port 25)."""
    to = to or tern.user
    with smtplib.SMTP(tern.host, tern.port("smtp"), timeout=30) as s:
        for i in range(n):
            body = ("From: sender@example.org\r\nTo: %s\r\n"
                    "Subject: %s %d\r\nMessage-ID: <%s-%d-%s@example.org>\r\n"
                    "\r\nline one of %d\r\n.leading dot\r\nlast line\r\n"
                    % (to, tag, i, tag, i, uuid.uuid4().hex, i))
            s.sendmail("sender@example.org", [to], body)


class Pop:
    """A raw POP3 client: one command, one reply line; multi() reads a
    multi-line body up to the lone "."."""

    def __init__(self, tern, port="pop3s", timeout=20):
        self.sock = socket.create_connection((tern.host, tern.port(port)),
                                             timeout=timeout)
        if port == "pop3s":
            self.sock = CTX.wrap_socket(self.sock)
        self.buf = b""
        self.greeting = self.line()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; buffered %r" % self.buf)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def multi(self):
        out = []
        while True:
            ln = self.line()
            if ln == ".":
                return out
            out.append(ln[1:] if ln.startswith(".") else ln)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def stls(self):
        r = self.cmd("STLS")
        assert r.startswith("+OK"), r
        self.sock = CTX.wrap_socket(self.sock)

    def login(self, user, password):
        r = self.cmd("USER " + user)
        assert r.startswith("+OK"), r
        r = self.cmd("PASS " + password)
        assert r.startswith("+OK"), r
        return r

    def uidl(self):
        r = self.cmd("UIDL")
        assert r.startswith("+OK"), r
        return dict(ln.split(" ", 1) for ln in self.multi())

    def closed(self, timeout=10):
        """True when the server closes the connection within timeout."""
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


def pop_login(tern, user=None, password=None, port="pop3s"):
    p = Pop(tern, port)
    p.login(user or tern.user, password or tern.password)
    return p


def scram_client(user, password):
    """A SCRAM-SHA-256 client (RFC 5802, RFC 7677): a generator that is
    sent each server message and yields each client message."""
    cnonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"),
                          cnonce)
    server_first = yield "n,," + bare
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                 base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    final_bare = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join((bare, server_first, final_bare)).encode()
    ckey = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    sig = hmac.new(hashlib.sha256(ckey).digest(), auth_msg,
                   hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    skey = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expect = base64.b64encode(hmac.new(skey, auth_msg,
                                       hashlib.sha256).digest()).decode()
    server_final = yield final_bare + ",p=" + base64.b64encode(proof).decode()
    assert server_final == "v=" + expect, server_final
    yield ""


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


class Imap:
    """A minimal raw IMAP client over implicit TLS: enough for SELECT,
    UID MOVE/STORE/EXPUNGE and IDLE in the cross-protocol tests."""

    def __init__(self, tern, timeout=20):
        s = socket.create_connection((tern.host, tern.port("imaps")),
                                     timeout=timeout)
        self.sock = CTX.wrap_socket(s)
        self.buf = b""
        self.n = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("IMAP connection closed")
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def cmd(self, text):
        self.n += 1
        tag = "a%d" % self.n
        self.sock.sendall(("%s %s\r\n" % (tag, text)).encode())
        untagged = []
        while True:
            ln = self.line()
            if ln.startswith(tag + " "):
                assert ln.split()[1] == "OK", (text, ln, untagged)
                return untagged
            untagged.append(ln)

    def uids(self):
        out = self.cmd("UID SEARCH ALL")
        line = [ln for ln in out if ln.startswith("* SEARCH")][0]
        return [int(x) for x in line.split()[2:]]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def imap_login(tern, user=None, password=None):
    m = Imap(tern)
    m.cmd('LOGIN "%s" "%s"' % (user or tern.user, password or tern.password))
    return m


def reconfigure(tern, **keys):
    """Stop tern, set main config keys (replacing the quickstart's values,
    and dropping the regenerate marker) and start it again."""
    tern.stop()
    conf = os.path.join(tern.dir, "tern.conf")
    with open(conf) as f:
        lines = f.read().split("\n")
    if lines[0].startswith("# generated by ternd --quickstart"):
        lines = lines[1:]
    for key, value in keys.items():
        pat = re.compile(r"^%s\s*=" % re.escape(key))
        lines = [ln for ln in lines if not pat.match(ln)]
        lines.insert(0, "%s = %s" % (key, value))
    with open(conf, "w") as f:
        f.write("\n".join(lines))
    tern.start()


def _tcp_inode(local_port, remote_port):
    """The inode of the loopback TCP socket local_port <-> remote_port."""
    want_l = "0100007F:%04X" % local_port
    want_r = "0100007F:%04X" % remote_port
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if parts[1] == want_l and parts[2] == want_r:
                return parts[9]
    return None


def server_pid(tern, sock, port_name):
    """The pid of the ternd process holding the server side of sock."""
    inode = _tcp_inode(tern.port(port_name), sock.getsockname()[1])
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != tern.proc.pid:
                continue
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == target:
                    return int(pid)
            except OSError:
                pass
    return None


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
