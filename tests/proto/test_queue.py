"""Outbound queue (issue 7): a sender tern delivers to MX hosts found
through a DNS server started here, on loopback only.

  dns      a tiny UDP DNS server (MX, A, AAAA; NXDOMAIN for unknown names)
  remote   a second tern for remote.test (MX mx.remote.test -> 127.0.0.1)
  sink     a Python SMTP server on 127.0.0.2 at the same port as remote's
           SMTP listener (so one remote_smtp_port serves both); its
           answers depend on the recipient: tempfail* 451 once, hold*
           451 while holding, reject* 550 5.1.1, else 250
  oldsink  the same on 127.0.0.4 without 8BITMIME, PIPELINING, DSN
  sender   the tern for example.test that sends through its queue

Every wait is bounded; every address is on 127.0.0.0/8.
"""
import email
import email.policy
import imaplib
import os
import socket
import smtplib
import struct
import threading
import time

import pytest

from conftest import Tern

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
    """A small SMTP server; messages are kept in self.messages."""

    def __init__(self, host, port, eightbit=True, pipelining=True, dsn=True):
        self.host, self.port = host, port
        self.eightbit, self.pipelining, self.dsn = eightbit, pipelining, dsn
        self.messages = []   # dicts: mail, rcpts, data, ehlo
        self.commands = []   # every command line seen
        self.seen = {}       # rcpt -> times seen
        self.holding = True
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
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
        return b"".join(b"250%s%s\r\n" % (b" " if i == len(lines) - 1
                                            else b"-", l.encode())
                        for i, l in enumerate(lines))

    def _serve(self, c):
        c.settimeout(30)
        f = c.makefile("rb")
        c.sendall(b"220 sink.test ESMTP\r\n")
        tx = None
        ehlo = None
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
                elif verb == "RSET":
                    tx = None
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


# ---------------------------------------------------------------- fixtures

RECORDS = {
    ("remote.test", "MX"): [(10, "mx.remote.test")],
    ("mx.remote.test", "A"): ["127.0.0.1"],
    ("sink.test", "MX"): [(10, "mx.sink.test")],
    ("mx.sink.test", "A"): ["127.0.0.2"],
    ("old.test", "MX"): [(10, "mx.old.test")],
    ("mx.old.test", "A"): ["127.0.0.4"],
    # equal preferences: both tried in random order; the first is dead
    ("multi.test", "MX"): [(10, "mx1.multi.test"), (20, "mx2.multi.test")],
    ("mx1.multi.test", "A"): ["127.0.0.3"],
    ("mx2.multi.test", "A"): ["127.0.0.2"],
    ("nullmx.test", "MX"): [(0, "")],
    ("implicit.test", "A"): ["127.0.0.2"],
    ("dead.test", "MX"): [(10, "mx.dead.test")],
    ("mx.dead.test", "A"): ["127.0.0.3"],
}


@pytest.fixture(scope="module")
def dns():
    d = DNSServer(RECORDS)
    yield d
    d.stop()


def _loopback_ok(addr):
    s = socket.socket()
    try:
        s.bind((addr, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The remote tern and both sinks on the remote's SMTP port. Ports
    are random and other suites may run at the same time: when a sink
    cannot bind, start the remote again on other ports (bounded)."""
    if not _loopback_ok("127.0.0.2") or not _loopback_ok("127.0.0.4"):
        pytest.skip("127.0.0.2 and 127.0.0.4 are not usable here")
    t = Tern(tmp_path_factory.mktemp("remote"), domain="remote.test")
    for _attempt in range(5):
        t.start()
        sinks = []
        try:
            sinks.append(Sink("127.0.0.2", t.port("smtp")))
            sinks.append(Sink("127.0.0.4", t.port("smtp"), eightbit=False,
                              pipelining=False, dsn=False))
            break
        except OSError:
            for s in sinks:
                s.stop()
            t.stop()
            t.base = None
    else:
        pytest.fail("no port usable by the remote and the sinks")
    yield t, sinks[0], sinks[1]
    for s in sinks:
        s.stop()
    t.stop()


@pytest.fixture(scope="module")
def remote(net):
    return net[0]


@pytest.fixture(scope="module")
def sink(net):
    return net[1]


@pytest.fixture(scope="module")
def oldsink(net):
    return net[2]


def _sender_config(dns, remote, **extra):
    conf = {
        "dns_resolver": "127.0.0.1:%d" % dns.port,
        "remote_smtp_port": str(remote.port("smtp")),
        "queue_retry_min": "1s",
        "queue_retry_max": "2s",
        "queue_max_age": "1h",
    }
    conf.update(extra)
    return "\n".join("%s = %s" % kv for kv in conf.items())


@pytest.fixture(scope="module")
def sender(tmp_path_factory, dns, remote, sink, oldsink):
    t = Tern(tmp_path_factory.mktemp("sender"), domain="example.test",
             extra_config=_sender_config(dns, remote))
    t.start()
    yield t
    t.stop()


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


# ---------------------------------------------------------------- tests


def test_deliver_to_remote_tern(sender, remote):
    submit(sender, ["demo@remote.test"], "to remote tern")
    got = find_in_inbox(remote, "Subject: to remote tern")
    assert got, sender.log()[-3000:]
    assert wait_for(lambda: queue_empty(sender), timeout=10)
    # The remote offers STARTTLS: the queue used it.
    assert "tls-ok host=mx.remote.test" in sender.log()


def test_several_recipients_one_transaction_and_dot_stuffing(sender, sink):
    body = "line one\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n"
    submit(sender, ["a@sink.test", "b@sink.test"], "two rcpts", body=body)
    got = sink.find("Subject: two rcpts")
    assert len(got) == 1, sender.log()[-3000:]
    assert sorted(got[0]["rcpts"]) == ["a@sink.test", "b@sink.test"]
    assert got[0]["data"].endswith(body.encode())
    assert got[0]["ehlo"].startswith("EHLO ")


def test_tempfail_is_retried(sender, sink):
    submit(sender, ["tempfail1@sink.test"], "retry me")
    got = sink.find("Subject: retry me", timeout=30)
    assert got, sender.log()[-3000:]
    assert sink.seen["tempfail1@sink.test"] >= 2
    assert wait_for(lambda: queue_empty(sender), timeout=10)


def test_reject_bounces_to_sender(sender, sink):
    submit(sender, ["reject1@sink.test", "fine1@sink.test"], "bounce me")
    got = find_in_inbox(sender, "reject1@sink.test")
    assert got, sender.log()[-3000:]
    msg, parts = dsn_parts(got[0])
    assert msg["From"].startswith("Mail Delivery System")
    report = parts[1].as_string()
    assert "Final-Recipient: rfc822; reject1@sink.test" in report
    assert "Action: failed" in report
    assert "Status: 5.1.1" in report
    assert "550 5.1.1" in report
    assert "fine1@sink.test" not in report
    assert b"Subject: bounce me" in got[0]
    assert sink.find("Subject: bounce me")[0]["rcpts"] == ["fine1@sink.test"]
    assert wait_for(lambda: queue_empty(sender), timeout=10)


def test_dsn_notify_never_suppresses_bounce(sender, sink):
    with smtplib.SMTP(sender.host, sender.port("submission"), timeout=30) as s:
        s.ehlo("client.test")
        s.login(sender.user, sender.password)
        s.sendmail(sender.user, ["reject2@sink.test"],
                   b"Subject: never tell\r\n\r\nx\r\n",
                   rcpt_options=["NOTIFY=NEVER"])
    assert wait_for(lambda: "reject2@sink.test" in sink.seen, timeout=20)
    assert wait_for(lambda: queue_empty(sender), timeout=10)
    assert not [m for m in inbox(sender) if b"never tell" in m]


def test_null_mx_bounces(sender):
    submit(sender, ["user@nullmx.test"], "null mx")
    got = find_in_inbox(sender, "user@nullmx.test")
    assert got, sender.log()[-3000:]
    _msg, parts = dsn_parts(got[0])
    assert "Status: 5.1.10" in parts[1].as_string()


def test_unknown_domain_bounces(sender):
    submit(sender, ["user@nosuchdomain.test"], "no such domain")
    got = find_in_inbox(sender, "user@nosuchdomain.test")
    assert got, sender.log()[-3000:]
    _msg, parts = dsn_parts(got[0])
    assert "Status: 5.1.2" in parts[1].as_string()


def test_implicit_mx(sender, sink):
    submit(sender, ["someone@implicit.test"], "implicit mx")
    assert sink.find("Subject: implicit mx"), sender.log()[-3000:]


def test_next_mx_when_first_is_down(sender, sink):
    submit(sender, ["x@multi.test"], "second mx")
    assert sink.find("Subject: second mx"), sender.log()[-3000:]


def test_8bit_converted_for_old_server(sender, oldsink):
    text = "Grüße aus Köln, ça va?\r\n"
    submit(sender, ["u@old.test"], "eight bit", body=text,
           extra_headers="MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n")
    got = oldsink.find("Subject: eight bit")
    assert got, sender.log()[-3000:]
    data = got[0]["data"]
    assert all(b < 0x80 for b in data)
    assert b"BODY=8BITMIME" not in got[0]["mail"].encode()
    m = email.message_from_bytes(data)
    assert m["Content-Transfer-Encoding"] == "quoted-printable"
    assert m.get_payload(decode=True).decode("utf-8") == text.replace(
        "\r\n", "\n") or m.get_payload(decode=True).decode("utf-8") == text
    # No PIPELINING and HELO-less EHLO worked; no DSN params sent.
    assert "NOTIFY=" not in " ".join(oldsink.commands)


def test_8bit_passed_with_8bitmime(sender, sink):
    text = "Grüße\r\n"
    submit(sender, ["e@sink.test"], "eight pass", body=text,
           extra_headers="MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n")
    got = sink.find("Subject: eight pass")
    assert got, sender.log()[-3000:]
    assert "BODY=8BITMIME" in got[0]["mail"]
    assert text.encode() in got[0]["data"]


def test_kill9_loses_nothing(sender, sink):
    subjects = ["held %d" % i for i in range(5)]
    sink.holding = True
    for i, subj in enumerate(subjects):
        submit(sender, ["hold%d@sink.test" % i], subj)
    # Every one has been tried at least once and is still queued.
    assert wait_for(lambda: all(sink.seen.get("hold%d@sink.test" % i, 0)
                                for i in range(5)), timeout=20)
    sender.kill9()
    sink.holding = False
    sender.start()
    for subj in subjects:
        got = sink.find("Subject: " + subj, timeout=30)
        assert len(got) == 1, (subj, sender.log()[-3000:])
    assert wait_for(lambda: queue_empty(sender), timeout=10)


def test_unreachable_bounces_at_max_age(tmp_path_factory, dns, remote):
    t = Tern(tmp_path_factory.mktemp("expire"), domain="example.test",
             extra_config=_sender_config(dns, remote, queue_max_age="3s"))
    t.start()
    try:
        submit(t, ["user@dead.test"], "too old")
        got = find_in_inbox(t, "user@dead.test", timeout=30)
        assert got, t.log()[-3000:]
        _msg, parts = dsn_parts(got[0])
        report = parts[1].as_string()
        assert "Action: failed" in report
        assert "gave up after" in report
        assert wait_for(lambda: queue_empty(t), timeout=10)
    finally:
        t.stop()


def test_smarthost(tmp_path_factory, dns, remote, sink):
    t = Tern(tmp_path_factory.mktemp("smart"), domain="example.test",
             extra_config=_sender_config(
                 dns, remote,
                 queue_smarthost="127.0.0.2:%d" % remote.port("smtp")))
    t.start()
    try:
        # No DNS record for this domain: only the smarthost can take it.
        submit(t, ["someone@elsewhere.test"], "via smarthost")
        got = sink.find("Subject: via smarthost")
        assert got, t.log()[-3000:]
        assert got[0]["rcpts"] == ["someone@elsewhere.test"]
        assert wait_for(lambda: queue_empty(t), timeout=10)
    finally:
        t.stop()
