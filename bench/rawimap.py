"""A minimal IMAP client for the bench scripts that time single commands:
bytes and untagged lines of each reply are what they measure, which
imaplib hides. Loopback only, like the scripts that use it."""
import socket


class Imap:
    def __init__(self, t, user, pw, timeout=120):
        self.s = socket.create_connection((t.host, t.port("imap")),
                                          timeout=timeout)
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.n = 0
        self.cmd('LOGIN "%s" "%s"' % (user, pw))

    def cmd(self, text):
        """Send one command: (its untagged lines, bytes received)."""
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        lines, size = [], 0
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(text)
            size += len(line)
            if line.startswith(tag + b" "):
                assert b" OK" in line, line
                return lines, size
            lines.append(line)

    def close(self):
        self.cmd("LOGOUT")
        self.s.close()


def fill(c, m, message):
    """Append m messages to INBOX, message(i) each, 1,000 per MULTIAPPEND
    with non-synchronizing literals."""
    done = 0
    while done < m:
        k = min(1000, m - done)
        c.n += 1
        tag = b"t%d" % c.n
        parts = [tag + b" APPEND INBOX"]
        for j in range(k):
            body = message(done + j)
            parts.append(b" {%d+}\r\n" % len(body) + body)
        c.s.sendall(b"".join(parts) + b"\r\n")
        while True:
            line = c.f.readline()
            if not line:
                raise EOFError("APPEND")
            if line.startswith(tag + b" "):
                assert b" OK" in line, line
                break
        done += k
