"""TLS session resumption on the implicit-TLS ports (IMAPS, POP3S,
submissions) and after STARTTLS: TLS 1.3 with stateless tickets, which
every worker process can decrypt (the contexts are made before the
master forks), and TLS 1.2 with tickets. Each reconnect must resume,
whichever worker accepts it; a reconnect without the session must not."""
import socket
import ssl

import pytest

from test_imap_helpers import new_account


def _ctx(version):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.minimum_version = c.maximum_version = version
    return c


def _greeted(tern, port_name, c, session=None, starttls=None):
    """Connect, read the greeting (TLS 1.3 tickets come after the
    handshake, with the first data), return (session, reused)."""
    raw = socket.create_connection((tern.host, tern.port(port_name)),
                                   timeout=10)
    if starttls is not None:
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(starttls[0])
        while not f.readline().startswith(starttls[1]):
            pass
        f.close()
    s = c.wrap_socket(raw, session=session)
    try:
        if starttls is None:
            s.recv(4096)
        else:
            s.sendall(starttls[2])
            s.recv(4096)
        return s.session, s.session_reused
    finally:
        s.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3,
                                     ssl.TLSVersion.TLSv1_2])
@pytest.mark.parametrize("port_name,starttls", [
    ("imaps", None),
    ("pop3s", None),
    ("imap", (b"a STARTTLS\r\n", b"a OK", b"b NOOP\r\n")),
])
def test_resumption(tern, version, port_name, starttls):
    c = _ctx(version)
    session, reused = _greeted(tern, port_name, c, starttls=starttls)
    assert not reused and session is not None
    # two workers: eight reconnects land on both, and all must resume
    for _ in range(8):
        new, reused = _greeted(tern, port_name, c, session=session,
                               starttls=starttls)
        assert reused, port_name
        session = new if new is not None else session
    # a fresh context has no session to offer
    _, reused = _greeted(tern, port_name, _ctx(version), starttls=starttls)
    assert not reused


def test_resumed_session_works(tern):
    addr, pw = new_account(tern)
    c = _ctx(ssl.TLSVersion.TLSv1_3)
    session, _ = _greeted(tern, "imaps", c)
    raw = socket.create_connection((tern.host, tern.port("imaps")),
                                   timeout=10)
    s = c.wrap_socket(raw, session=session)
    f = s.makefile("rwb")
    assert f.readline().startswith(b"* OK")
    assert s.session_reused
    f.write(b'a LOGIN "%s" "%s"\r\n' % (addr.encode(), pw.encode()))
    f.flush()
    assert f.readline().startswith(b"a OK")
    f.write(b"b LOGOUT\r\n")
    f.flush()
    assert f.readline().startswith(b"* BYE")
    s.close()
