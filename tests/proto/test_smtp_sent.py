"""The per-domain Sent copy of submitted mail (issue 3): with
`ternctl domain save-sent DOMAIN yes` a message sent over submission
lands in the sender's Sent mailbox once, whether the client APPENDs its
own copy before or after sending (same Message-ID), and not at all when
the domain says no."""
import re
import smtplib
import uuid

from test_imap_helpers import ctx, login


def message(msgid, subject):
    return ("From: demo@example.test\r\nTo: friend@example.test\r\n"
            "Subject: %s\r\nMessage-ID: <%s>\r\n"
            "Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n\r\nHi.\r\n"
            % (subject, msgid)).encode()


def submit(tern, data):
    with smtplib.SMTP(tern.host, tern.port("submission"), timeout=30) as s:
        s.ehlo("client.example")
        s.starttls(context=ctx())
        s.ehlo("client.example")
        s.login(tern.user, tern.password)
        assert s.sendmail(tern.user, ["friend@example.test"], data) == {}


def sent_ids(tern):
    """Message-IDs of the demo account's Sent mailbox, in UID order."""
    m = login(tern)
    typ, data = m.select("Sent", readonly=True)
    assert typ == "OK"
    ids = []
    if int(data[0]) > 0:
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for item in data:
            if isinstance(item, tuple):
                mm = re.search(rb"<([^>]+)>", item[1])
                ids.append(mm.group(1).decode())
    m.logout()
    return ids


def append_sent(tern, data):
    m = login(tern)
    typ, resp = m.append("Sent", "(\\Seen)", None, data)
    m.logout()
    assert typ == "OK", resp
    return resp[0]


def test_save_sent_per_domain(tern):
    friend = tern.ctl("account", "add", "friend@example.test",
                      "--password-stdin", input="friend-pass-1\n")
    assert friend.returncode == 0, friend.stderr
    r = tern.ctl("domain", "save-sent", "example.test", "yes")
    assert r.returncode == 0, r.stdout + r.stderr

    # Sent by submission, then APPENDed by the client: one copy, and the
    # APPEND answers with the UID of the copy submission made.
    first = "%s@client.example" % uuid.uuid4().hex
    submit(tern, message(first, "first"))
    assert sent_ids(tern).count(first) == 1
    appended = append_sent(tern, message(first, "first"))
    assert b"APPENDUID" in appended
    assert sent_ids(tern).count(first) == 1

    # APPENDed first, then sent: still one copy.
    second = "%s@client.example" % uuid.uuid4().hex
    append_sent(tern, message(second, "second"))
    submit(tern, message(second, "second"))
    ids = sent_ids(tern)
    assert ids.count(second) == 1

    # A different message is a different copy.
    third = "%s@client.example" % uuid.uuid4().hex
    submit(tern, message(third, "third"))
    assert sent_ids(tern).count(third) == 1

    # The domain switched off: no copy from submission.
    r = tern.ctl("domain", "save-sent", "example.test", "no")
    assert r.returncode == 0
    fourth = "%s@client.example" % uuid.uuid4().hex
    before = len(sent_ids(tern))
    submit(tern, message(fourth, "fourth"))
    assert fourth not in sent_ids(tern)
    assert len(sent_ids(tern)) == before
    # And then APPEND stores the client's copy as usual.
    append_sent(tern, message(fourth, "fourth"))
    assert sent_ids(tern).count(fourth) == 1


def test_save_sent_bad_arguments(tern):
    r = tern.ctl("domain", "save-sent", "example.test", "maybe")
    assert r.returncode != 0 and "yes, no or default" in r.stderr
    r = tern.ctl("domain", "save-sent", "nowhere.example", "yes")
    assert r.returncode != 0 and "unknown domain" in r.stderr
    r = tern.ctl("domain", "save-sent", "example.test", "default")
    assert r.returncode == 0
