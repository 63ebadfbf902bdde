"""Real clients against the IMAP server: mbsync (isync 1.4) syncing a
multi-folder account both ways and again after changes on both sides,
curl's IMAP support, and openssl s_client for STARTTLS."""
import os
import re
import shutil
import subprocess

import pytest

from test_imap_helpers import login, msg, new_account


def _maildir_msgs(path):
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    return out


def _mbsyncrc(tern, tmp_path, addr, pw):
    local = tmp_path / "Mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount t\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\n"
        "SSLType IMAPS\nCertificateFile %s\n\n"
        "IMAPStore t-remote\nAccount t\n\n"
        "MaildirStore t-local\nPath %s/\nInbox %s/INBOX\n"
        "SubFolders Verbatim\n\n"
        "Channel t\nFar :t-remote:\nNear :t-local:\nPatterns *\n"
        "Create Both\nExpunge Both\nSync All\nSyncState *\n"
        % (tern.port("imaps"), addr, pw,
           os.path.join(tern.dir, "cert.pem"), local, local))
    return rc, local


def _mbsync(rc):
    r = subprocess.run(["mbsync", "-c", str(rc), "-a"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="no mbsync")
def test_mbsync_roundtrip(tern, tmp_path):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.create("Lists/dev")
    for i in range(3):
        m.append("INBOX", None, None, msg("in%d" % i))
    m.append("Lists/dev", "(\\Seen)", None, msg("dev1"))
    m.logout()
    rc, local = _mbsyncrc(tern, tmp_path, addr, pw)
    _mbsync(rc)
    assert len(_maildir_msgs(local / "INBOX")) == 3
    assert len(_maildir_msgs(local / "Lists" / "dev")) == 1
    assert os.path.isdir(local / "Sent")
    # local changes: a new message in a new folder, a flag, a deletion
    newdir = local / "Local"
    for sub in ("cur", "new", "tmp"):
        (newdir / sub).mkdir(parents=True)
    (newdir / "new" / "1.local").write_bytes(msg("from local"))
    inbox = _maildir_msgs(local / "INBOX")
    name = os.path.basename(inbox[0])
    base, _, flags = name.partition(":2,")
    flags = "".join(sorted(set(flags + "F")))
    os.rename(inbox[0], str(local / "INBOX" / "cur" / (base + ":2," + flags)))
    os.unlink(inbox[1])
    # server changes at the same time
    m = login(tern, addr, pw)
    m.append("Lists/dev", None, None, msg("dev2"))
    m.logout()
    _mbsync(rc)
    m = login(tern, addr, pw)
    typ, data = m.select("Local")
    assert typ == "OK" and data == [b"1"]
    m.select("INBOX")
    typ, data = m.search(None, "ALL")
    assert len(data[0].split()) == 2
    typ, data = m.search(None, "FLAGGED")
    assert len(data[0].split()) == 1
    m.logout()
    assert len(_maildir_msgs(local / "Lists" / "dev")) == 2
    # a third run changes nothing: no duplicates, no losses
    _mbsync(rc)
    assert len(_maildir_msgs(local / "INBOX")) == 2
    assert len(_maildir_msgs(local / "Lists" / "dev")) == 2
    m = login(tern, addr, pw)
    assert m.select("Lists/dev")[1] == [b"2"]
    assert m.select("Local")[1] == [b"1"]
    m.logout()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_curl_imap(tern):
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    m.append("INBOX", None, None, msg("curl me", "body for curl\r\n"))
    m.logout()
    base = "imaps://127.0.0.1:%d" % tern.port("imaps")
    r = subprocess.run(["curl", "-sS", "-k", base + "/", "-u",
                        "%s:%s" % (addr, pw)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout and "Sent" in r.stdout
    r = subprocess.run(["curl", "-sS", "-k", base + "/INBOX;UID=1", "-u",
                        "%s:%s" % (addr, pw)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Subject: curl me" in r.stdout and "body for curl" in r.stdout
    r = subprocess.run(["curl", "-sS", "-k", base + "/INBOX?ALL", "-u",
                        "%s:%s" % (addr, pw)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "SEARCH 1" in r.stdout, r.stdout + r.stderr
    # STARTTLS on the plain port
    r = subprocess.run(["curl", "-sS", "-k", "--ssl-reqd",
                        "imap://127.0.0.1:%d/INBOX;UID=1" % tern.port("imap"),
                        "-u", "%s:%s" % (addr, pw)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "body for curl" in r.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_openssl_starttls(tern):
    script = "a LOGIN %s %s\na SELECT INBOX\na LOGOUT\n" % (
        tern.user, tern.password)
    r = subprocess.run(["openssl", "s_client", "-quiet", "-starttls",
                        "imap", "-connect",
                        "127.0.0.1:%d" % tern.port("imap")],
                       input=script, capture_output=True, text=True,
                       timeout=30)
    assert "a OK [READ-WRITE]" in r.stdout, r.stdout + r.stderr
    assert "* BYE" in r.stdout


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="no fetchmail")
def test_fetchmail_imap(tern, tmp_path):
    """fetchmail over IMAPS: 'keep' fetches the unseen messages and marks
    them \\Seen; a second run finds nothing new; 'nokeep fetchall'
    fetches everything and expunges it."""
    addr, pw = new_account(tern)
    m = login(tern, addr, pw)
    for i in range(3):
        m.append("INBOX", None, None, msg("fm%d" % i, "body %d\r\n" % i))
    m.logout()
    out = tmp_path / "mbox"
    mda = tmp_path / "mda.sh"
    mda.write_text("#!/bin/sh\ncat >> %s\necho >> %s\n" % (out, out))
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"

    def run(opts):
        rc.write_text(
            "poll 127.0.0.1 with proto IMAP service %d\n"
            "  user '%s' there with password '%s' is root here\n"
            "  ssl no sslcertck %s mda '%s'\n"
            % (tern.port("imaps"), addr, pw, opts, mda))
        rc.chmod(0o600)
        env = dict(os.environ, HOME=str(tmp_path))
        return subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog",
                               "-v"], capture_output=True, text=True,
                              env=env, timeout=120)

    r = run("keep")
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_text()
    assert all(("Subject: fm%d" % i) in text for i in range(3)), text
    assert all(("body %d" % i) in text for i in range(3)), text
    m = login(tern, addr, pw)
    m.select("INBOX")
    assert m.search(None, "UNSEEN")[1] == [b""]
    assert m.search(None, "ALL")[1] == [b"1 2 3"]
    m.logout()
    # nothing unseen: exit code 1 means "no mail"
    r = run("keep")
    assert r.returncode == 1, r.stdout + r.stderr
    assert out.read_text().count("Subject: fm") == 3
    r = run("nokeep fetchall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_text().count("Subject: fm") == 6
    m = login(tern, addr, pw)
    assert m.select("INBOX")[1] == [b"0"]
    m.logout()
