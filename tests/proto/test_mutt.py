"""mutt (Debian's mutt 2.x) as a user runs it: sending in batch mode over
the submissions port with SMTP AUTH, then reading the INBOX over IMAPS in
a pseudo-terminal, copying every message to a local mbox, flagging one,
deleting one, and quitting (which expunges). imaplib then checks what mutt
left on the server."""
import mailbox
import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from test_imap_helpers import login, new_account

pytestmark = pytest.mark.skipif(shutil.which("mutt") is None,
                                reason="no mutt")


def _muttrc(tern, tmp_path, addr, pw):
    rc = tmp_path / "muttrc"
    rc.write_text(
        'set from="%(addr)s"\n'
        'set smtp_url="smtps://%(addr)s@127.0.0.1:%(smtps)d/"\n'
        'set smtp_pass="%(pw)s"\n'
        'set folder="imaps://%(addr)s@127.0.0.1:%(imaps)d/"\n'
        'set imap_pass="%(pw)s"\n'
        'set spoolfile="+INBOX"\n'
        'set certificate_file="%(cert)s"\n'
        "set ssl_verify_host=no\n"
        'set record=""\n'
        "set mbox_type=mbox\n"
        "set confirmcreate=no\nset confirmappend=no\n"
        "set move=no\nset quit=yes\nset delete=yes\nset mark_old=no\n"
        'set header_cache=""\nset message_cachedir=""\n'
        % {"addr": addr, "pw": pw, "smtps": tern.port("submissions"),
           "imaps": tern.port("imaps"), "cert": tmp_path / "certs"})
    # mutt trusts the certificates in certificate_file without asking.
    shutil.copy(os.path.join(tern.dir, "cert.pem"), tmp_path / "certs")
    return rc


def _mutt_send(rc, to, subject, body):
    r = subprocess.run(["mutt", "-n", "-F", str(rc), "-s", subject, to],
                       input=body, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def _mutt_interactive(rc, keys, timeout=40):
    """Run mutt on a pty with keys pushed at start-up; it must exit by
    itself (the keys end with <quit>). Returns what it drew."""
    cmd = ["mutt", "-n", "-F", str(rc), "-e", 'push "%s"' % keys]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "vt100"
        os.execvp(cmd[0], cmd)
    out = b""
    deadline = time.time() + timeout
    status = None
    try:
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                out += data
            p, st = os.waitpid(pid, os.WNOHANG)
            if p:
                status = st
                break
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None, "mutt did not exit: %r" % out[-500:]
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out[-500:]
    return out


def test_mutt_send_read_flag_delete(tern, tmp_path):
    addr, pw = new_account(tern)
    rc = _muttrc(tern, tmp_path, addr, pw)
    for word in ("alpha", "bravo", "charlie"):
        _mutt_send(rc, addr, "mutt %s" % word, "body of %s\n" % word)

    m = login(tern, addr, pw)
    deadline = time.time() + 20
    while time.time() < deadline:
        typ, data = m.select("INBOX", readonly=True)
        if int(data[0]) == 3:
            break
        time.sleep(0.2)
    assert int(data[0]) == 3
    m.logout()

    out = tmp_path / "out.mbox"
    keys = ("<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter>"
            "<untag-pattern>~A<enter>"
            "<tag-pattern>~s bravo<enter><tag-prefix><flag-message>"
            "<untag-pattern>~A<enter>"
            "<tag-pattern>~s charlie<enter><tag-prefix><delete-message>"
            "<quit>" % out)
    _mutt_interactive(rc, keys)

    copied = {}
    for message in mailbox.mbox(str(out)):
        copied[message["Subject"]] = message.get_payload()
    assert copied == {"mutt alpha": "body of alpha\n",
                      "mutt bravo": "body of bravo\n",
                      "mutt charlie": "body of charlie\n"}

    m = login(tern, addr, pw)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    seen = {}
    for item in data:
        if isinstance(item, tuple):
            subject = item[1].decode().strip()
            seen[subject] = item[0].decode()
    m.logout()
    assert sorted(seen) == ["Subject: mutt alpha", "Subject: mutt bravo"]
    assert "\\Flagged" in seen["Subject: mutt bravo"]
    assert "\\Flagged" not in seen["Subject: mutt alpha"]
    # Copying does not read a message: nothing became \Seen.
    assert all("\\Seen" not in f for f in seen.values())
