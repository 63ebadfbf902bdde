"""POP3 against a real ternd: poplib over STLS and implicit TLS, every
command and error, the UPDATE rules (nothing deleted without QUIT), the
[IN-USE] lock, pipelining and hostile lines, and real clients (curl,
fetchmail, getmail6). STLS and SASL: test_pop3_auth.py; the store and
IMAP: test_pop3_store.py; hostile input: test_pop3_hostile.py."""
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

CTX = ssl._create_unverified_context()


def deliver(tern, n, to=None, tag="pop3"):
    """Put n messages into the INBOX of `to` over SMTP (port 25)."""
    to = to or tern.user
    bodies = []
    with smtplib.SMTP(tern.host, tern.port("smtp"), timeout=30) as s:
        for i in range(n):
            body = ("From: sender@example.org\r\nTo: %s\r\n"
                    "Subject: %s %d\r\nMessage-ID: <%s-%d-%f@example.org>\r\n\r\n"
                    "line one of %d\r\n.leading dot\r\nlast line\r\n"
                    % (to, tag, i, tag, i, time.time(), i))
            s.sendmail("sender@example.org", [to], body)
            bodies.append(body)
    return bodies


def login(tern, user=None, password=None):
    p = poplib.POP3_SSL(tern.host, tern.port("pop3s"), context=CTX, timeout=30)
    p.user(user or tern.user)
    p.pass_(password or tern.password)
    return p


@pytest.fixture
def box(fresh_tern):
    deliver(fresh_tern, 3)
    return fresh_tern


def test_capa_before_and_after_stls(tern):
    p = poplib.POP3(tern.host, tern.port("pop3"), timeout=30)
    caps = p.capa()
    assert "STLS" in caps and "UIDL" in caps and "TOP" in caps
    assert "RESP-CODES" in caps and "PIPELINING" in caps
    p.stls(context=CTX)
    caps = p.capa()
    assert "STLS" not in caps
    assert "PLAIN" in caps["SASL"]
    p.user(tern.user)
    p.pass_(tern.password)
    p.quit()


def test_stat_list_uidl_retr_top(box):
    p = login(box)
    count, size = p.stat()
    assert count == 3 and size > 0
    resp, listing, _ = p.list()
    assert len(listing) == 3
    sizes = [int(x.split()[1]) for x in listing]
    assert sum(sizes) == size
    resp, uidls, _ = p.uidl()
    ids = [u.split()[1] for u in uidls]
    assert len(set(ids)) == 3
    resp, lines, octets = p.retr(1)
    text = b"\r\n".join(lines)
    assert b"Subject: pop3 0" in text
    assert b"\r\n.leading dot" in text  # un-stuffed by poplib
    assert b"Received:" in text and b"Return-Path:" in text
    resp, lines, _ = p.top(2, 0)
    assert lines[-1] == b""  # header then the empty line, no body
    assert not any(b"line one" in l for l in lines)
    resp, lines, _ = p.top(2, 1)
    assert lines[-1] == b"line one of 1"
    assert p.list(2).startswith(b"+OK 2 ")
    assert p.uidl(2).split()[2] == ids[1].encode() if isinstance(ids[1], str) else ids[1]
    p.quit()


def test_uidl_stable_across_sessions(box):
    p = login(box)
    first = p.uidl()[1]
    p.quit()
    deliver(box, 1, tag="later")
    p = login(box)
    second = p.uidl()[1]
    p.quit()
    assert second[:3] == first
    assert len(second) == 4


def test_dele_quit_removes(box):
    p = login(box)
    p.dele(1)
    assert p.stat()[0] == 2
    with pytest.raises(poplib.error_proto, match="No such message"):
        p.retr(1)
    with pytest.raises(poplib.error_proto):
        p.dele(1)
    resp = p.quit()
    assert resp.startswith(b"+OK")
    p = login(box)
    assert p.stat()[0] == 2
    p.quit()


def test_rset_unmarks(box):
    p = login(box)
    p.dele(1)
    p.dele(2)
    p.rset()
    assert p.stat()[0] == 3
    p.quit()
    p = login(box)
    assert p.stat()[0] == 3
    p.quit()


def test_dropped_connection_deletes_nothing(box):
    p = login(box)
    p.dele(1)
    p.dele(2)
    # No QUIT. poplib's file object holds the socket open, so shut the
    # connection down for real before closing both.
    p.sock.shutdown(socket.SHUT_RDWR)
    p.file.close()
    p.sock.close()
    time.sleep(0.3)
    p = login(box)
    assert p.stat()[0] == 3
    p.quit()


def test_in_use(box):
    p = login(box)
    with pytest.raises(poplib.error_proto, match=r"IN-USE"):
        login(box)
    p.quit()
    # released after QUIT
    login(box).quit()


def test_new_mail_appears_at_next_login(box):
    p = login(box)
    assert p.stat()[0] == 3
    deliver(box, 1, tag="during")
    assert p.stat()[0] == 3
    p.quit()
    p = login(box)
    assert p.stat()[0] == 4
    p.quit()


def test_wrong_password_and_state_errors(tern):
    p = poplib.POP3_SSL(tern.host, tern.port("pop3s"), context=CTX, timeout=30)
    with pytest.raises(poplib.error_proto, match="Not logged in"):
        p.stat()
    p.user(tern.user)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("wrong password")
    p.quit()


def raw(tern, data, port="pop3", wait=0.5):
    s = socket.create_connection((tern.host, tern.port(port)), timeout=10)
    s.recv(1024)
    s.sendall(data)
    time.sleep(wait)
    out = b""
    s.settimeout(1)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def test_hostile_lines(tern):
    out = raw(tern, b"X" * 5000 + b"\r\nNOOP\r\nFOO\r\nSTAT\r\nCAPA\r\n")
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b"-ERR") and b"too long" in lines[0]
    assert lines[1].startswith(b"-ERR")  # NOOP before login
    assert lines[2].startswith(b"-ERR")  # unknown
    assert lines[3].startswith(b"-ERR")  # STAT before login
    assert lines[4].startswith(b"+OK")   # CAPA still answered


def test_pipelined_session(box):
    cmds = ("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 9\r\nDELE 1\r\nQUIT\r\n"
            % (box.user, box.password)).encode()
    out = raw(box, cmds, wait=1.5)
    assert out.count(b"+OK") >= 5
    assert b"-ERR No such message" in out
    p = login(box)
    assert p.stat()[0] == 2
    p.quit()


def test_sasl_plain(tern):
    import base64
    p = poplib.POP3_SSL(tern.host, tern.port("pop3s"), context=CTX, timeout=30)
    cred = base64.b64encode(("\0%s\0%s" % (tern.user, tern.password)).encode())
    resp = p._shortcmd("AUTH PLAIN " + cred.decode())
    assert resp.startswith(b"+OK")
    p.quit()


def test_curl(box):
    r = subprocess.run(["curl", "-sk", "--max-time", "30",
                        "pop3s://127.0.0.1:%d/1" % box.port("pop3s"),
                        "-u", "%s:%s" % (box.user, box.password)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"Subject: pop3 0" in r.stdout


def test_fetchmail_keep_and_nokeep(box, tmp_path):
    out = tmp_path / "mbox"
    rc = tmp_path / "fetchmailrc"
    mda = tmp_path / "mda.sh"
    mda.write_text("#!/bin/sh\ncat >> %s\necho >> %s\n" % (out, out))
    mda.chmod(0o755)

    def run(keep):
        rc.write_text(
            "poll 127.0.0.1 with proto POP3 service %d\n"
            "  user '%s' there with password '%s' is root here\n"
            "  ssl no sslcertck %s mda '%s'\n"
            % (box.port("pop3s"), box.user, box.password,
               "keep" if keep else "nokeep fetchall", mda))
        rc.chmod(0o600)
        env = dict(os.environ, HOME=str(tmp_path))
        return subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog",
                               "-v", "--idfile", str(tmp_path / "ids")],
                              capture_output=True, text=True, env=env,
                              timeout=120)

    r = run(True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_text().count("Subject: pop3") == 3
    p = login(box)
    assert p.stat()[0] == 3  # kept
    p.quit()
    r = run(False)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    p = login(box)
    assert p.stat()[0] == 0  # fetched and deleted
    p.quit()


def test_getmail6_keep_then_delete(box, tmp_path):
    """getmail6 (its own POP3 client over TLS): with delete off it fetches
    each message once across runs (its oldmail file remembers our UIDLs),
    then with delete on it removes what it fetched. Delivery is to files
    through an external MDA: getmail's Maildir writer refuses to run as
    root, which the test may be."""
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    mda = tmp_path / "mda.sh"
    mda.write_text('#!/bin/sh\nf=$(mktemp "%s/tmp/m.XXXXXX") || exit 75\n'
                   'cat > "$f" && mv "$f" "%s/new/"\n' % (maildir, maildir))
    mda.chmod(0o755)
    rc = tmp_path / "getmailrc"

    def run(delete, read_all=False):
        rc.write_text(
            "[retriever]\ntype = SimplePOP3SSLRetriever\n"
            "server = 127.0.0.1\nport = %d\nusername = %s\npassword = %s\n"
            "ca_certs = %s\nssl_cert_hostname = mail.%s\n"
            "[destination]\ntype = MDA_external\npath = %s\n"
            "allow_root_commands = true\n"
            "[options]\ndelete = %s\nread_all = %s\nverbose = 2\n"
            "received = false\ndelivered_to = false\n"
            % (box.port("pop3s"), box.user, box.password,
               os.path.join(box.dir, "cert.pem"), box.domain, mda,
               "true" if delete else "false",
               "true" if read_all else "false"))
        r = subprocess.run(["getmail", "--rcfile", str(rc),
                            "--getmaildir", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout + r.stderr

    def fetched():
        return sorted(f.read_text() for f in (maildir / "new").iterdir())

    run(False)
    first = fetched()
    assert len(first) == 3
    assert all("Subject: pop3" in m for m in first)
    assert any("\n.leading dot\n" in m for m in first)  # un-stuffed
    run(False)
    assert len(fetched()) == 3  # nothing fetched twice
    deliver(box, 1, tag="later")
    run(False)
    assert len(fetched()) == 4
    assert sum("Subject: later" in m for m in fetched()) == 1
    p = login(box)
    assert p.stat()[0] == 4  # all kept
    p.quit()
    run(True, read_all=True)
    assert len(fetched()) == 8
    p = login(box)
    assert p.stat()[0] == 0  # fetched and deleted
    p.quit()
