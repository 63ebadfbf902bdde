"""SMTP with real clients: smtplib (plain on the MX port, STARTTLS + AUTH on
submission, implicit TLS on submissions), swaks and curl. Every accepted
message is read back from the store and compared byte for byte."""
import base64
import concurrent.futures
import smtplib
import ssl
import subprocess

from test_smtp_helpers import (auth_plain, body_of, connect, messages,
                               queue_entries)


def msg(subject, body="Hello.\r\n"):
    return ("From: sender@remote.example\r\nTo: demo\r\nSubject: %s\r\n"
            "Message-ID: <%s@test>\r\n\r\n%s" % (subject, subject, body)
            ).encode()


def ctx():
    return ssl._create_unverified_context()


def test_ehlo_keywords(tern):
    r = connect(tern, ehlo=False)
    code, lines = r.cmd("EHLO client.example")
    assert code == 250
    kw = [ln.split()[0] for ln in lines[1:]]
    for k in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8",
              "ENHANCEDSTATUSCODES", "STARTTLS", "CHUNKING", "DSN"):
        assert k in kw
    # The MX port offers AUTH only inside TLS.
    assert "AUTH" not in kw
    r.starttls()
    code, lines = r.cmd("EHLO client.example")
    kw = [ln.split()[0] for ln in lines[1:]]
    assert "AUTH" in kw and "STARTTLS" not in kw
    assert any(ln.startswith("AUTH PLAIN LOGIN SCRAM-SHA-256")
               for ln in lines)
    r.close()


def test_inbound_smtplib_byte_exact(tern):
    before = len(messages(tern, tern.user))
    data = msg("inbound1", "line one\r\n.leading dot\r\n..two\r\n\r\nend\r\n")
    with smtplib.SMTP(tern.host, tern.port("smtp")) as s:
        s.ehlo("client.example")
        refused = s.sendmail("sender@remote.example", [tern.user], data)
        assert refused == {}
    # 250 was sent only after the commit: the message is readable now.
    got = messages(tern, tern.user)
    assert len(got) == before + 1
    hdr = body_of(got[-1], data)
    assert hdr.startswith(b"Return-Path: <sender@remote.example>\r\n"
                          b"Received: from client.example (unknown "
                          b"[127.0.0.1])\r\n")
    assert b"by mail.%s (tern) with ESMTP id " % tern.domain.encode() in hdr
    assert b"for <%s>" % tern.user.encode() in hdr
    assert b"using" not in hdr


def test_inbound_starttls_trace(tern):
    data = msg("inbound-tls")
    with smtplib.SMTP(tern.host, tern.port("smtp")) as s:
        s.ehlo("client.example")
        s.starttls(context=ctx())
        s.ehlo("client.example")
        s.sendmail("", [tern.user], data)
    hdr = body_of(messages(tern, tern.user)[-1], data)
    assert hdr.startswith(b"Return-Path: <>\r\n")
    assert b"(using TLSv1." in hdr and b"with cipher" in hdr
    assert b"with ESMTPS id" in hdr


def test_submission_starttls_auth_local_and_remote(tern):
    data = msg("submitted")
    with smtplib.SMTP(tern.host, tern.port("submission")) as s:
        s.ehlo("client.example")
        s.starttls(context=ctx())
        s.ehlo("client.example")
        s.login(tern.user, tern.password)
        refused = s.sendmail(tern.user, [tern.user, "Friend@Remote.Example"],
                             data)
        assert refused == {}
    hdr = body_of(messages(tern, tern.user)[-1], data)
    assert hdr.startswith(b"Return-Path: <%s>\r\n" % tern.user.encode())
    assert b"with ESMTPSA id" in hdr
    # More than one recipient: no "for" clause.
    assert b"\tfor <" not in hdr
    q = [e for e in queue_entries(tern) if e[3].endswith(data)]
    assert len(q) == 1
    sender, envid, ret, blob, rcpts = q[0]
    assert sender == tern.user
    assert [r[0] for r in rcpts] == ["Friend@Remote.Example"]
    # Relayed copies carry a Received: but no Return-Path:.
    assert blob.startswith(b"Received: from client.example")


def test_submissions_implicit_tls(tern):
    data = msg("implicit")
    with smtplib.SMTP_SSL(tern.host, tern.port("submissions"),
                          context=ctx()) as s:
        s.ehlo("client.example")
        s.login(tern.user, tern.password)
        s.sendmail(tern.user, [tern.user], data)
    body_of(messages(tern, tern.user)[-1], data)


def test_auth_login_and_scram(tern):
    r = connect(tern, "submissions")
    code, lines = r.cmd("AUTH LOGIN")
    assert code == 334 and base64.b64decode(lines[0]) == b"Username:"
    code, _ = r.cmd(base64.b64encode(tern.user.encode()).decode())
    assert code == 334
    code, lines = r.cmd(base64.b64encode(tern.password.encode()).decode())
    assert code == 235 and lines[0].startswith("2.7.0")
    assert r.cmd("AUTH PLAIN")[0] == 503
    r.close()


def test_null_sender_and_verbs(tern):
    r = connect(tern)
    assert r.cmd("NOOP")[0] == 250
    code, lines = r.cmd("VRFY demo")
    assert code == 252 and lines[0].startswith("2.5.0")
    assert r.cmd("HELP")[0] == 214
    assert r.cmd("RSET")[0] == 250
    assert r.cmd("MAIL FROM:<>")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 250
    assert r.cmd("RSET")[0] == 250
    assert r.cmd("DATA")[0] == 503
    assert r.cmd("FOO")[0] == 500
    code, lines = r.cmd("QUIT")
    assert code == 221 and lines[0].startswith("2.0.0")
    assert r.closed()


def test_swaks_inbound_and_submission(tern):
    before = len(messages(tern, tern.user))
    r = subprocess.run(
        ["swaks", "--server", "%s:%d" % (tern.host, tern.port("smtp")),
         "--from", "swaks@remote.example", "--to", tern.user,
         "--helo", "swaks.example", "--header", "Subject: swaks-in",
         "--body", "via swaks"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        ["swaks", "--server", "%s:%d" % (tern.host, tern.port("submission")),
         "--tls", "--auth", "PLAIN", "--auth-user", tern.user,
         "--auth-password", tern.password, "--from", tern.user,
         "--to", tern.user, "--helo", "swaks.example",
         "--header", "Subject: swaks-sub", "--body", "via swaks tls"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # Bounces the queue drops in meanwhile (earlier tests' remote
    # recipients) are not ours to count.
    got = [g for g in messages(tern, tern.user)[before:]
           if b"multipart/report" not in g]
    assert len(got) == 2
    assert b"Subject: swaks-in" in got[0] and b"via swaks" in got[0]
    assert b"Subject: swaks-sub" in got[1] and b"ESMTPSA" in got[1]


def test_curl_submission(tern, tmp_path):
    data = msg("curl", "sent with curl\r\n.dot line\r\n")
    f = tmp_path / "mail.eml"
    f.write_bytes(data)
    r = subprocess.run(
        ["curl", "-sS", "--insecure", "--ssl-reqd",
         "smtp://%s:%d" % (tern.host, tern.port("submission")),
         "--user", "%s:%s" % (tern.user, tern.password),
         "--mail-from", tern.user, "--mail-rcpt", tern.user,
         "--upload-file", str(f)], capture_output=True, text=True,
        timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    body_of(messages(tern, tern.user)[-1], data)


def test_alias_dedup(tern):
    r = tern.ctl("alias", "add", "team@" + tern.domain, tern.user)
    assert r.returncode == 0, r.stdout + r.stderr
    before = len(messages(tern, tern.user))
    data = msg("alias")
    with smtplib.SMTP(tern.host, tern.port("smtp")) as s:
        s.sendmail("x@remote.example", [tern.user, "team@" + tern.domain,
                                        "TEAM@" + tern.domain.upper()], data)
    got = messages(tern, tern.user)
    assert len(got) == before + 1
    body_of(got[-1], data)


def test_group_commit_concurrent(tern):
    before = len(messages(tern, tern.user))

    def send(i):
        data = msg("parallel-%d" % i, "message %d\r\n" % i)
        with smtplib.SMTP(tern.host, tern.port("smtp"), timeout=60) as s:
            s.sendmail("p%d@remote.example" % i, [tern.user], data)
        return data

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        sent = list(ex.map(send, range(24)))
    got = messages(tern, tern.user)
    for data in sent:
        assert sum(1 for g in got if g.endswith(data)) == 1
    # The queue process may drop a bounce for an earlier test's remote
    # recipient into this INBOX meanwhile; anything else is a duplicate.
    extra = [g for g in got[before:]
             if not any(g.endswith(data) for data in sent)]
    assert all(b"multipart/report" in g for g in extra), extra[:1]
    assert len(got) - len(extra) == before + 24


def test_dsn_parameters_queued(tern):
    r = connect(tern, "submissions")
    assert auth_plain(r, tern.user, tern.password)[0] == 235
    assert r.cmd("MAIL FROM:<%s> RET=HDRS ENVID=env+2B1 SIZE=100"
                 % tern.user)[0] == 250
    assert r.cmd("RCPT TO:<dsn@remote.example> NOTIFY=SUCCESS,DELAY "
                 "ORCPT=rfc822;dsn+40remote.example")[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send("Subject: dsn-test\r\n\r\nx\r\n.\r\n")
    assert r.code() == 250
    r.close()
    e = [q for q in queue_entries(tern) if b"dsn-test" in q[3]][0]
    assert e[1] == "env+2B1" and e[2] == "HDRS"
    assert e[4] == [("dsn@remote.example", "rfc822;dsn+40remote.example",
                     "SUCCESS,DELAY")]


def test_smtputf8(tern):
    r = connect(tern)
    assert r.cmd("MAIL FROM:<d\u00e9@remote.example>")[0] == 501
    assert r.cmd("MAIL FROM:<d\u00e9@remote.example> SMTPUTF8")[0] == 250
    assert r.cmd("RCPT TO:<%s>" % tern.user)[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send("Subject: caf\u00e9\r\n\r\nutf8\r\n.\r\n")
    assert r.code() == 250
    r.cmd("RSET")
    assert r.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, lines = r.cmd("RCPT TO:<j\u00f6rg@%s>" % tern.domain)
    assert code == 553 and lines[0].startswith("5.6.7")
    r.close()
    assert b"with UTF8SMTP id" in messages(tern, tern.user)[-1]


def test_auth_scram_sha256(tern):
    import hashlib
    import hmac
    import os

    def b64(x):
        return base64.b64encode(x).decode()

    r = connect(tern, "submissions")
    first_bare = "n=%s,r=%s" % (tern.user, b64(os.urandom(18)))
    code, lines = r.cmd("AUTH SCRAM-SHA-256 " +
                        b64(("n,," + first_bare).encode()))
    assert code == 334
    sfirst = base64.b64decode(lines[0]).decode()
    d = dict(kv.split("=", 1) for kv in sfirst.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", tern.password.encode(),
                                 base64.b64decode(d["s"]), int(d["i"]))
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    final_wo = "c=biws,r=" + d["r"]
    am = ",".join([first_bare, sfirst, final_wo]).encode()
    sig = hmac.new(hashlib.sha256(ck).digest(), am, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(ck, sig))
    code, lines = r.cmd(b64((final_wo + ",p=" + b64(proof)).encode()))
    # RFC 4954: the server-final message comes as a last challenge.
    assert code == 334
    sk = hmac.new(salted, b"Server Key", "sha256").digest()
    assert base64.b64decode(lines[0]).decode() == \
        "v=" + b64(hmac.new(sk, am, "sha256").digest())
    code, lines = r.cmd("")
    assert code == 235
    r.close()
