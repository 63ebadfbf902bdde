"""Helpers shared by the outbound queue tests (test_queue.py,
test_queue_dkim.py): a tiny DNS server, an SMTP sink, submission and
bounded waits. Loopback addresses only; every wait is bounded."""
import email
import email.policy
import imaplib
import smtplib
import socket
import struct
import threading
import time

# ---------------------------------------------------------------- DNS


def _dns_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


class DNSServer:
    """Answers MX/A/AAAA from a table; everything else is NXDOMAIN."""

    def __init__(self, records):
        self.records = records  # {(name, "MX"|"A"): [...]}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def names(self):
        return {n for (n, _t) in self.records}

    def _answer(self, data):
        if len(data) < 12:
            return None
        qid, _flags, qd = struct.unpack("!HHH", data[:6])
        if qd != 1:
            return None
        pos, labels = 12, []
        while pos < len(data) and data[pos] != 0 and len(labels) < 64:
            n = data[pos]
            labels.append(data[pos + 1:pos + 1 + n].decode(errors="replace"))
            pos += 1 + n
        pos += 1
        if pos + 4 > len(data):
            return None
        qtype, _qclass = struct.unpack("!HH", data[pos:pos + 4])
        question = data[12:pos + 4]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        tname = {15: "MX", 1: "A", 28: "AAAA"}.get(qtype)
        answers = []
        for value in self.records.get((name, tname), []):
            if tname == "MX":
                rdata = struct.pack("!H", value[0]) + _dns_name(value[1])
            elif tname == "A":
                rdata = socket.inet_aton(value)
            else:
                rdata = socket.inet_pton(socket.AF_INET6, value)
            answers.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, 60,
                                       len(rdata)) + rdata)
        rcode = 0 if name in self.names() else 3
        if ("servfail", name) in self.records:
            rcode = 2
        flags = 0x8180 | rcode
        head = struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0)
        return head + question + b"".join(answers)

    def _run(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply is not None:
                self.sock.sendto(reply, addr)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


# ---------------------------------------------------------------- SMTP sink


class Sink:
    """A small SMTP server; messages are kept in self.messages. It never
    does TLS; with refuse_starttls it offers STARTTLS and answers 454."""

    def __init__(self, host, port, eightbit=True, pipelining=True, dsn=True):
        self.host, self.port = host, port
        self.eightbit, self.pipelining, self.dsn = eightbit, pipelining, dsn
        self.refuse_starttls = False
        self.rset_reply = None  # e.g. b"421 ...": sent to RSET, then close
        self.generation = 0     # see renew()
        self.connections = 0  # sessions accepted so far
        self.messages = []   # dicts: mail, rcpts, data, ehlo
        self.commands = []   # every command line seen
        self.seen = {}       # rcpt -> times seen
        self.holding = True
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]  # port 0: the one chosen
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def renew(self):
        """After changing what the sink offers: sessions that said EHLO
        before answer their next RSET (a reused connection) with 421 and
        close, so the client says EHLO again on a new connection."""
        with self.lock:
            self.generation += 1

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _rcpt_reply(self, addr):
        local = addr.split("@")[0].lower()
        with self.lock:
            n = self.seen.get(addr, 0) + 1
            self.seen[addr] = n
        if local.startswith("reject"):
            return b"550 5.1.1 <%s>: no such user here\r\n" % addr.encode()
        if local.startswith("tempfail") and n == 1:
            return b"451 4.3.0 try again later\r\n"
        if local.startswith("hold") and self.holding:
            return b"451 4.3.0 held\r\n"
        return b"250 2.1.5 ok\r\n"

    def _ehlo(self):
        lines = ["sink.test hello"]
        if self.pipelining:
            lines.append("PIPELINING")
        lines.append("SIZE 10000000")
        if self.eightbit:
            lines.append("8BITMIME")
        if self.dsn:
            lines.append("DSN")
        lines.append("ENHANCEDSTATUSCODES")
        if self.refuse_starttls:
            lines.append("STARTTLS")
        return b"".join(b"250%s%s\r\n" % (b" " if i == len(lines) - 1
                                            else b"-", l.encode())
                        for i, l in enumerate(lines))

    def _serve(self, c):
        c.settimeout(30)
        f = c.makefile("rb")
        c.sendall(b"220 sink.test ESMTP\r\n")
        tx = None
        ehlo = None
        gen = self.generation
        try:
            for _ in range(10000):
                line = f.readline(4096)
                if not line:
                    return
                cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
                self.commands.append(cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    ehlo = cmd
                    gen = self.generation
                    c.sendall(self._ehlo())
                elif verb == "HELO":
                    c.sendall(b"250 sink.test\r\n")
                elif verb == "MAIL":
                    tx = {"mail": cmd, "rcpts": [], "ehlo": ehlo}
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif verb == "RCPT":
                    addr = cmd.split("<", 1)[1].split(">", 1)[0]
                    reply = self._rcpt_reply(addr)
                    if reply.startswith(b"250") and tx is not None:
                        tx["rcpts"].append(addr)
                    c.sendall(reply)
                elif verb == "DATA":
                    if tx is None or not tx["rcpts"]:
                        c.sendall(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    c.sendall(b"354 go ahead\r\n")
                    body = []
                    for _ in range(1000000):
                        dl = f.readline(100000)
                        if not dl or dl == b".\r\n":
                            break
                        body.append(dl[1:] if dl.startswith(b".") else dl)
                    tx["data"] = b"".join(body)
                    with self.lock:
                        self.messages.append(tx)
                    tx = None
                    c.sendall(b"250 2.0.0 queued as sink\r\n")
                elif verb == "STARTTLS":
                    c.sendall(b"454 4.7.0 TLS not available now\r\n")
                elif verb == "RSET":
                    tx = None
                    if self.rset_reply is not None:
                        c.sendall(self.rset_reply)
                        return
                    if gen != self.generation:
                        c.sendall(b"421 4.3.2 sink changed, reconnect\r\n")
                        return
                    c.sendall(b"250 ok\r\n")
                elif verb == "QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"502 5.5.2 unknown\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def find(self, needle, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                got = [m for m in self.messages
                       if needle.encode() in m.get("data", b"")]
            if got:
                return got
            time.sleep(0.1)
        return []

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


def _loopback_ok(addr):
    s = socket.socket()
    try:
        s.bind((addr, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------- helpers


def submit(t, rcpts, subject, body="hello\r\n", extra_headers="",
           raw=None):
    msg = raw or ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
                  "Message-ID: <%s@example.test>\r\n%s\r\n%s"
                  % (t.user, rcpts[0], subject, subject.replace(" ", "."),
                     extra_headers, body))
    with smtplib.SMTP(t.host, t.port("submission"), timeout=30) as s:
        s.ehlo("client.test")
        s.login(t.user, t.password)
        if isinstance(msg, str):
            msg = msg.encode("utf-8")
        s.sendmail(t.user, rcpts, msg)


def wait_for(pred, timeout=30, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def inbox(t, user=None, password=None):
    """Every message of the INBOX as bytes."""
    m = imaplib.IMAP4(t.host, t.port("imap"))
    try:
        m.login(user or t.user, password or t.password)
        m.select("INBOX")
        _typ, data = m.search(None, "ALL")
        out = []
        for num in data[0].split():
            _typ, d = m.fetch(num, "(RFC822)")
            out.append(d[0][1])
        return out
    finally:
        try:
            m.logout()
        except Exception:
            pass


def find_in_inbox(t, needle, timeout=30):
    return wait_for(lambda: [m for m in inbox(t) if needle.encode() in m],
                    timeout=timeout, step=0.3)


def queue_empty(t):
    return "queue is empty" in t.ctl("queue", "list").stdout


def dsn_parts(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert parts[1].get_content_type() == "message/delivery-status"
    return msg, parts
