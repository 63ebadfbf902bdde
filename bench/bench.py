#!/usr/bin/env python3
"""Side-by-side benchmark: tern against Postfix + Dovecot (issue 9).

Started by bench/run.sh (which installs the packages and builds tload).
Everything runs in one temporary directory on loopback ports; every
process started here is stopped on exit, also on failure or a signal.
Loads come from build/bench/tload (C); this script only starts servers,
samples memory (PSS) and CPU of the server process trees, and prints the
table. Environment knobs: see DEFAULTS below.
"""
import json
import resource
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.environ.get("B", "build")
TERND = os.path.join(ROOT, B, "ternd")
TERNCTL = os.path.join(ROOT, B, "ternctl")
TLOAD = os.path.join(ROOT, B, "bench", "tload")

DEFAULTS = {
    "BENCH_RUNS": "3",          # runs per figure (median reported)
    "BENCH_PORT": "26000",      # tern base; Postfix/Dovecot use base+1000
    "BENCH_BIG": "100000",      # messages in the large mailbox
    "BENCH_IDLE": "10000",      # idle IMAP clients on tern
    "BENCH_IDLE_DOVECOT": "1000",  # idle clients on Dovecot (a process each)
    "BENCH_SECONDS": "5",       # duration of each timed IMAP/POP3 run
    "BENCH_ONLY": "",           # comma list of figure groups to run
}
ENV = {k: os.environ.get(k, v) for k, v in DEFAULTS.items()}
RUNS = int(ENV["BENCH_RUNS"])
SECS = ENV["BENCH_SECONDS"]
PASS = "benchpass"
DOMAIN = "example.test"
SMTP_USERS = (1, 50)    # u1..u50 receive the SMTP loads
IMAP_USERS = (101, 100)  # u101..u200 hold 50 messages each for IMAP/POP3
APPEND_USERS = (201, 10)  # u201..u210 take the APPEND load
HASH_USERS = (301, 10)    # u301..u310: argon2id on Dovecot too (LOGIN)
BIG_USER = 0             # u0 holds the large mailbox
CLK = os.sysconf("SC_CLK_TCK")

started = []  # (name, stop function)
tmp = None


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# ---- process tree accounting ----

def children_map():
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        m.setdefault(ppid, []).append(int(d))
    return m


def tree(roots):
    m = children_map()
    out, todo = [], list(roots)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(m.get(p, []))
    return out


def pss_kb(roots):
    total = 0
    for p in tree(roots):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cpu_secs(roots):
    """utime+stime of the live tree plus what its reaped children used."""
    total = 0
    for p in tree(roots):
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])
    return total / CLK


class PeakSampler:
    def __init__(self, roots):
        self.roots, self.peak, self.stop_ev = roots, 0, threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_ev.is_set():
            self.peak = max(self.peak, pss_kb(self.roots))
            self.stop_ev.wait(0.5)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        self.t.join()


gen_cpu = {}  # figure group -> [generator CPU s, wall s]


def tload(args, timeout=600):
    """Runs the load generator; also records its own CPU time, to show
    whether it, rather than the server, could be the bottleneck."""
    t0 = time.time()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen([TLOAD] + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    g = gen_cpu.setdefault(str(args[1]), [0.0, 0.0])
    g[0] += ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    g[1] += time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"tload {args}: {err}")
    return json.loads(out.strip().splitlines()[-1])


# ---- servers ----

class Tern:
    name = "tern"

    def __init__(self, base):
        self.base = base
        self.dir = os.path.join(tmp, "tern")
        self.smtp, self.sub = base + 25, base + 587
        self.imap, self.pop3 = base + 143, base + 110
        self.proc = None

    def setup(self):
        # the quickstart writes the config, certificate and data directory
        p = subprocess.Popen([TERND, "--quickstart", self.dir, "--ports",
                              str(self.base)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_port(self.imap)
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        conf = os.path.join(self.dir, "tern.conf")
        with open(conf) as f:
            text = f.read().split("\n", 1)[1]  # keep our edits
        # One load generator on one address drives thousands of commands
        # a second per connection: lift the per-IP and per-connection
        # abuse limits (Postfix and Dovecot have neither by default).
        text += ("\nmax_connections_per_ip = 20000\n"
                 "command_rate = 0\n"
                 "plan bench {\n\tsend_per_hour = 0\n}\n")
        with open(conf, "w") as f:
            f.write(text)
        self.logf = open(os.path.join(self.dir, "ternd.log"), "w")
        self.proc = subprocess.Popen([TERND, "-c", conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        started.append(("tern", self.stop))
        for port in (self.smtp, self.sub, self.imap, self.pop3):
            wait_port(port)

    def add_users(self, first, n, hashed=False):
        # tern stores argon2id hashes for every account
        for i in range(first, first + n):
            run([TERNCTL, "-d", os.path.join(self.dir, "data"), "account",
                 "add", f"u{i}@{DOMAIN}", "--plan", "bench",
                 "--password-stdin"], input=PASS + "\n", text=True,
                stdout=subprocess.DEVNULL)

    def roots(self):
        return [self.proc.pid]

    def stored(self, first, n):
        return None  # a 250 is only said once the message is on disk

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class PostfixDovecot:
    name = "Postfix+Dovecot"

    def __init__(self, base):
        self.base = base
        self.dir = os.path.join(tmp, "pd")
        self.smtp, self.sub = base + 25, base + 587
        self.imap, self.pop3 = base + 143, base + 110
        self.lmtp, self.auth = base + 24, base + 12
        self.pf_pid = self.dc_proc = None

    def setup(self, cert, key):
        d = self.dir
        pf, dc = os.path.join(d, "postfix"), os.path.join(d, "dovecot")
        for sub in ("postfix/etc", "postfix/spool", "postfix/lib",
                    "dovecot/run", "dovecot/state", "dovecot/mail"):
            os.makedirs(os.path.join(d, sub))
        os.chmod(tmp, 0o755)
        shutil.chown(os.path.join(pf, "lib"), "postfix", "postfix")
        shutil.chown(os.path.join(dc, "mail"), "nobody", "nogroup")
        self.maildir = os.path.join(dc, "mail")
        self.write_postfix(pf, cert, key)
        self.write_dovecot(dc)
        self.dc_proc = subprocess.Popen(
            ["dovecot", "-F", "-c", self.dc_conf],
            stdout=open(os.path.join(dc, "stdout.log"), "w"),
            stderr=subprocess.STDOUT)
        started.append(("dovecot", self.stop_dovecot))
        for port in (self.imap, self.pop3, self.lmtp, self.auth):
            wait_port(port)
        run(["postfix", "-c", self.pf_etc, "start"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(("postfix", self.stop_postfix))
        pidfile = os.path.join(pf, "spool", "pid", "master.pid")
        for _ in range(100):
            if os.path.exists(pidfile):
                break
            time.sleep(0.1)
        with open(pidfile) as f:
            self.pf_pid = int(f.read().split()[0])
        for port in (self.smtp, self.sub):
            wait_port(port)

    def write_postfix(self, pf, cert, key):
        self.pf_etc = etc = os.path.join(pf, "etc")
        main = f"""compatibility_level = 3.6
config_directory = {etc}
queue_directory = {pf}/spool
data_directory = {pf}/lib
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = pd.bench.test
mydomain = bench.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_transport = error:no local delivery
alias_maps =
alias_database =
relay_domains =
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp}
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{self.auth}
smtpd_peername_lookup = no
maillog_file_prefixes = /var, /dev/stdout, {tmp}
maillog_file = {pf}/maillog
biff = no
"""
        master = f"""127.0.0.1:{self.smtp} inet n - n - - smtpd
127.0.0.1:{self.sub} inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(master)
        self.vmailbox = os.path.join(etc, "vmailbox")
        open(self.vmailbox, "w").close()

    def write_dovecot(self, dc):
        self.dc_conf = os.path.join(dc, "dovecot.conf")
        self.passwd = os.path.join(dc, "passwd")
        open(self.passwd, "w").close()
        conf = f"""base_dir = {dc}/run
state_dir = {dc}/state
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# tern remembers verified logins (auth_cache_*); so does Dovecot here
auth_cache_size = 10M
auth_cache_ttl = 1 hour
log_path = {dc}/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1
default_client_limit = 20000
default_vsz_limit = 1G
mail_max_userip_connections = 20000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd}
}}
# high-performance login mode: login processes serve many clients
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = {os.cpu_count()}
  client_limit = 20000
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = {os.cpu_count()}
  client_limit = 20000
}}
service imap {{
  process_limit = 12000
}}
service pop3 {{
  process_limit = 1000
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp}
  }}
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {self.auth}
  }}
}}
service anvil {{
  client_limit = 40000
}}
"""
        with open(self.dc_conf, "w") as f:
            f.write(conf)

    def add_users(self, first, n, hashed=False):
        with open(self.passwd, "a") as f, open(self.vmailbox, "a") as v:
            for i in range(first, first + n):
                home = os.path.join(self.maildir, f"u{i}")
                pw = "{PLAIN}" + PASS
                if hashed:  # its own salt per user, Dovecot's defaults
                    pw = run(["doveadm", "-c", self.dc_conf, "pw", "-s",
                              "ARGON2ID", "-p", PASS], capture_output=True,
                             text=True).stdout.strip()
                f.write(f"u{i}@{DOMAIN}:{pw}:65534:65534::"
                        f"{home}::\n")
                v.write(f"u{i}@{DOMAIN} ok\n")
        # texthash maps are read at process start
        run(["postfix", "-c", self.pf_etc, "reload"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def roots(self):
        return [self.pf_pid, self.dc_proc.pid]

    def stored(self, first, n):
        total = 0
        for i in range(first, first + n):
            for sub in ("new", "cur"):
                try:
                    total += len(os.listdir(os.path.join(
                        self.maildir, f"u{i}", "Maildir", sub)))
                except FileNotFoundError:
                    pass
        return total

    def stop_postfix(self):
        subprocess.run(["postfix", "-c", self.pf_etc, "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                os.kill(self.pf_pid, 0)
            except (OSError, TypeError):
                return
            time.sleep(0.1)
        os.kill(self.pf_pid, signal.SIGKILL)

    def stop_dovecot(self):
        if self.dc_proc and self.dc_proc.poll() is None:
            self.dc_proc.send_signal(signal.SIGTERM)
            try:
                self.dc_proc.wait(20)
            except subprocess.TimeoutExpired:
                self.dc_proc.kill()


def populate_maildir_direct(pd, user, count, size):
    """Write the large mailbox straight into Dovecot's maildir (setup only;
    Dovecot indexes it at the first SELECT, which is not measured)."""
    home = os.path.join(pd.maildir, f"u{user}", "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)
    body_line = "benchmark body line abcdefghijklmnopqrstuvwxyz0123456789\r\n"
    t = int(time.time())
    for i in range(count):
        head = (f"From: bench <bench@sender.test>\r\nTo: <u{user}@{DOMAIN}>"
                f"\r\nSubject: bench message {i}\r\nMessage-ID: <{i}.big@"
                f"bench.test>\r\nDate: Tue, 01 Dec 2026 08:00:00 +0000\r\n"
                f"\r\n")
        msg = head + body_line * max(1, (size - len(head)) // len(body_line))
        with open(os.path.join(home, "cur", f"{t}.M{i}P1.bench:2,"), "w",
                  newline="") as f:
            f.write(msg)
    run(["chown", "-R", "nobody:nogroup", os.path.join(pd.maildir,
                                                        f"u{user}")])


# ---- figures ----

results = []  # (group, figure, unit, higher_better, tern_vals, pd_vals)


def record(figure, unit, higher, tv, pv):
    results.append((figure, unit, higher, tv, pv))
    log(f"{figure}: tern {fmt(tv)}  P+D {fmt(pv)}")


def fmt(vals):
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return num(med)
    return f"{num(med)} ({num(min(vals))}–{num(max(vals))})"


def num(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def smtp_run(srv, size, sessions, count, tls=False):
    first, n = SMTP_USERS
    before = srv.stored(first, n)
    cpu0 = cpu_secs(srv.roots())
    args = ["-o", "smtp", "-p", srv.sub if tls else srv.smtp, "-c", sessions,
            "-n", count, "-s", size, "-u", n, "-f", first, "-P", PASS,
            "-T", 120]
    if tls:
        args += ["-t", "-a"]
    with PeakSampler(srv.roots()) as ps:
        t0 = time.time()
        r = tload(args)
        accepted = r["ops"]
        t_acc = r["secs"]
        if accepted == 0:
            raise RuntimeError(f"{srv.name}: no message accepted "
                               f"({r['errors']} errors)")
        t_done = t_acc
        if before is not None:
            while srv.stored(first, n) < before + accepted:
                if time.time() - t0 > 180:
                    raise RuntimeError("Postfix did not deliver in 180 s")
                time.sleep(0.05)
            t_done = time.time() - t0
    cpu = cpu_secs(srv.roots()) - cpu0
    if r["errors"]:
        log(f"{srv.name} smtp errors: {r['errors']}")
    return {"accepted": accepted / t_acc, "stored": accepted / t_done,
            "cpu_per_1000": cpu / accepted * 1000, "peak_mb": ps.peak / 1024,
            "p99": r["p99_ms"]}


def figure_smtp(tern, pd, want):
    plan = [(5000, 1, 150), (5000, 10, 800), (5000, 50, 1500),
            (100000, 1, 60), (100000, 10, 300), (100000, 50, 500)]
    for size, sess, count in plan:
        tv, pv = [], []
        for _ in range(RUNS):
            tv.append(smtp_run(tern, size, sess, count))
            pv.append(smtp_run(pd, size, sess, count))
        label = f"SMTP inbound {size // 1000} KB, {sess} sessions"
        record(f"{label}: msgs/s stored ↑", "msgs/s", True,
               [x["stored"] for x in tv], [x["stored"] for x in pv])
        record(f"{label}: msgs/s accepted (250) ↑", "msgs/s", True,
               [x["accepted"] for x in tv], [x["accepted"] for x in pv])
        record(f"{label}: CPU s per 1000 msgs ↓", "s", False,
               [x["cpu_per_1000"] for x in tv],
               [x["cpu_per_1000"] for x in pv])
        if sess == 50:
            record(f"{label}: peak memory MB ↓", "MB", False,
                   [x["peak_mb"] for x in tv], [x["peak_mb"] for x in pv])
    sink_ceiling()
    tv, pv = [], []
    for _ in range(RUNS):
        tv.append(smtp_run(tern, 5000, 10, 500, tls=True))
        pv.append(smtp_run(pd, 5000, 10, 500, tls=True))
    record("Submission STARTTLS+AUTH 5 KB, 10 sessions (10 msgs/conn): "
           "msgs/s stored ↑", "msgs/s", True,
           [x["stored"] for x in tv], [x["stored"] for x in pv])


def sink_ceiling():
    """Postfix's smtp-sink accepts and discards: what tload itself can
    push through SMTP on this machine (the ceiling of the SMTP rows)."""
    port = int(ENV["BENCH_PORT"]) + 2025
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c",
                             f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started.append(("smtp-sink", sink.kill))
    try:
        wait_port(port)
        for sess in (10, 50):
            vals = [tload(["-o", "smtp", "-p", port, "-c", sess, "-n", 5000,
                           "-s", 5000, "-u", 50, "-T", 60])["rate"]
                    for _ in range(RUNS)]
            record(f"Generator ceiling, no mail server: tload into "
                   f"Postfix's smtp-sink (discards), 5 KB, {sess} sessions: "
                   f"msgs/s", "msgs/s", True, vals, [])
    finally:
        started.remove(("smtp-sink", sink.kill))
        sink.kill()
        sink.wait()


def imap_args(srv, mode, clients, users=None):
    # APPEND grows its mailboxes: keep it away from the mix's 50-message ones
    first, n = users or (APPEND_USERS if mode == "imap-append" else
                         IMAP_USERS)
    return ["-o", mode, "-p", srv.imap, "-c", clients, "-u", n, "-f", first,
            "-P", PASS, "-s", 5000, "-n", 10000000, "-T", SECS]


def settle(srv, limit=60.0):
    """Waits, at most limit seconds, until srv's processes use under 5% of
    a core over half a second. Why: work a server defers past its replies
    (tern writes the full-text index of a burst after it) must run on its
    own time, not beside the next run of the other server. Returns the
    seconds waited."""
    t0 = time.time()
    while time.time() - t0 < limit:
        a = cpu_secs(srv.roots())
        time.sleep(0.5)
        if cpu_secs(srv.roots()) - a < 0.025:
            break
    return time.time() - t0


def timed(srv, args, key="rate"):
    with PeakSampler(srv.roots()) as ps:
        r = tload(args)
    waited = settle(srv)
    if waited >= 1.0:
        log(f"{srv.name} {args[1]}: busy {waited:.1f} s after the run")
    if r.get("errors"):
        log(f"{srv.name} {args[1]} errors: {r['errors']}")
    return r[key], r, ps.peak / 1024


def figure_imap(tern, pd, want):
    for mode, clients, label in (
            ("imap-login", 10, "IMAP LOGIN+LOGOUT, 10 clients: logins/s ↑"),
            ("imap-fetch", 10, "IMAP FETCH BODY.PEEK[] (5 KB), 10 long "
                               "sessions: fetches/s ↑")):
        tv = [timed(tern, imap_args(tern, mode, clients))[0]
              for _ in range(RUNS)]
        pv = [timed(pd, imap_args(pd, mode, clients))[0]
              for _ in range(RUNS)]
        record(label, "ops/s", True, tv, pv)
    args = ("imap-login", 10, HASH_USERS)
    tv = [timed(tern, imap_args(tern, *args))[0] for _ in range(RUNS)]
    pv = [timed(pd, imap_args(pd, *args))[0] for _ in range(RUNS)]
    record("IMAP LOGIN+LOGOUT, 10 clients, argon2id on both (Dovecot "
           "ARGON2ID, auth cache on): logins/s ↑", "ops/s", True, tv, pv)
    for clients in (10, 100):
        tr = [timed(tern, imap_args(tern, "imap-mix", clients))
              for _ in range(RUNS)]
        pr = [timed(pd, imap_args(pd, "imap-mix", clients))
              for _ in range(RUNS)]
        label = f"IMAP mix, {clients} clients"
        record(f"{label}: ops/s ↑", "ops/s", True, [x[0] for x in tr],
               [x[0] for x in pr])
        record(f"{label}: p99 ms ↓", "ms", False,
               [x[1]["p99_ms"] for x in tr], [x[1]["p99_ms"] for x in pr])
        record(f"{label}: peak memory MB ↓", "MB", False,
               [x[2] for x in tr], [x[2] for x in pr])


def figure_append(tern, pd, want):
    # tern and Dovecot take turns, run by run, so both see the same disk
    # (its fsync time moves by 10x on a shared machine)
    for clients in (1, 10):
        tv, pv = [], []
        for _ in range(RUNS):
            tv.append(timed(tern, imap_args(tern, "imap-append",
                                            clients))[0])
            pv.append(timed(pd, imap_args(pd, "imap-append", clients))[0])
        s = "session" if clients == 1 else "sessions"
        record(f"IMAP APPEND 5 KB, {clients} long {s}: appends/s ↑",
               "ops/s", True, tv, pv)


def figure_pop3(tern, pd, want):
    first, n = IMAP_USERS

    def args(srv):
        return ["-o", "pop3", "-p", srv.pop3, "-c", 10, "-u", n, "-f", first,
                "-P", PASS, "-n", 10000000, "-T", SECS, "-k", 20]
    tr = [timed(tern, args(tern)) for _ in range(RUNS)]
    pr = [timed(pd, args(pd)) for _ in range(RUNS)]
    record("POP3 10 clients (login, 20 RETR of 5 KB, QUIT): RETR/s ↑",
           "RETR/s", True, [x[1]["retr_rate"] for x in tr],
           [x[1]["retr_rate"] for x in pr])
    record("POP3 10 clients: sessions/s ↑", "sessions/s", True,
           [x[0] for x in tr], [x[0] for x in pr])
    record("POP3 10 clients: peak memory MB ↓", "MB", False,
           [x[2] for x in tr], [x[2] for x in pr])


def idle_run(srv, n):
    first, users = IMAP_USERS
    base = pss_kb(srv.roots())
    p = subprocess.Popen([TLOAD, "-o", "imap-idle", "-p", str(srv.imap),
                          "-c", str(n), "-u", str(users), "-f", str(first),
                          "-P", PASS, "-T", "600"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    line = p.stderr.readline()
    ready = int(line.split()[1]) if line.startswith("ready") else 0
    time.sleep(2)
    held = pss_kb(srv.roots())
    p.stdin.close()
    p.wait(60)
    return ready, (held - base) / max(ready, 1), held / 1024


def figure_idle(tern, pd, want):
    tn, pn = int(ENV["BENCH_IDLE"]), int(ENV["BENCH_IDLE_DOVECOT"])
    tr = idle_run(tern, tn)
    time.sleep(2)
    pr = idle_run(pd, pn)
    record(f"IMAP IDLE: KB per connection (tern {tr[0]}, Dovecot {pr[0]} "
           f"clients) ↓", "KB", False, [tr[1]], [pr[1]])
    record("IMAP IDLE: whole server memory MB with those clients ↓", "MB",
           False, [tr[2]], [pr[2]])
    time.sleep(2)


def unindexed(tern):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        tern.dir, "data", "tern.db"), uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM blobs WHERE hfts = 0"
                           ).fetchone()[0]
    finally:
        con.close()


def index_catch_up(tern, out, limit=300):
    """Seconds until no blob waits for its index rows (bounded: a blob
    left unindexed shows as the limit, and is logged)."""
    t0 = time.time()
    left = unindexed(tern)
    while time.time() - t0 < limit and left > 0:
        time.sleep(0.1)
        left = unindexed(tern)
    if left > 0:
        log(f"tern: {left} blobs still unindexed after {limit} s")
    out.append(round(time.time() - t0, 1))


def figure_big(tern, pd, want):
    count = int(ENV["BENCH_BIG"])
    res_ix = []
    t0 = time.time()
    r = tload(["-o", "populate", "-p", tern.imap, "-c", 4, "-u", 1, "-f",
               BIG_USER, "-P", PASS, "-n", count, "-s", 800], timeout=1800)
    log(f"tern: {r['ops']} messages appended to u{BIG_USER} in "
        f"{time.time() - t0:.0f} s ({r['rate']:.0f}/s, MULTIAPPEND)")
    # tern indexes new mail after the replies (the index thread): how
    # long until the populate is indexed, measured while Dovecot's
    # maildir is written (Dovecot indexes in its untimed warm-up below)
    waiter = threading.Thread(target=index_catch_up, args=(tern, res_ix),
                              daemon=True)
    waiter.start()
    populate_maildir_direct(pd, BIG_USER, count, 800)
    waiter.join()
    record(f"Large mailbox ({count} msgs): full-text index done, s after "
           f"the last APPEND ↓", "s", False, res_ix, [])
    res = {}
    for srv in (tern, pd):
        args = ["-o", "imap-big", "-p", srv.imap, "-u", 1, "-f", BIG_USER,
                "-P", PASS, "-n", 1]
        tload(args, timeout=900)  # warm-up (Dovecot builds its index here)
        res[srv.name] = [tload(args, timeout=900) for _ in range(RUNS)]
    t, p = res["tern"], res["Postfix+Dovecot"]
    record(f"Large mailbox ({count} msgs): SELECT ms ↓", "ms", False,
           [x["select_ms"] for x in t], [x["select_ms"] for x in p])
    record(f"Large mailbox ({count} msgs): UID FETCH 1:* (UID FLAGS) ms ↓",
           "ms", False, [x["fetch_ms"] for x in t], [x["fetch_ms"] for x in p])
    record(f"Large mailbox ({count} msgs): SEARCH SUBJECT (no match) ms ↓",
           "ms", False, [x["search_ms"] for x in t],
           [x["search_ms"] for x in p])


def table():
    lines = ["| figure | tern | Postfix+Dovecot | ratio tern/P+D |",
             "|---|---|---|---|"]
    for figure, unit, higher, tv, pv in results:
        ratio = "-"
        if tv and pv and statistics.median(pv) > 0:
            ratio = f"{statistics.median(tv) / statistics.median(pv):.2f}"
        lines.append(f"| {figure} | {fmt(tv)} | {fmt(pv)} | {ratio} |")
    return "\n".join(lines)


def fsync_probe(n=100):
    """Median latency of a 4 KB write + fsync in the bench directory: the
    disk sets the ceiling of every durable figure, and it is shared."""
    path = os.path.join(tmp, "fsync-probe")
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            lat.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def cleanup():
    while started:
        name, stop = started.pop()
        try:
            stop()
        except Exception as e:  # keep stopping the others
            log(f"stopping {name}: {e}")


def on_signal(sig, frame):
    raise SystemExit(f"signal {sig}")


def main():
    global tmp
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    base = int(ENV["BENCH_PORT"])
    for p in (25, 587, 143, 110, 24, 12):
        for b in (base, base + 1000):
            for _ in range(20):
                if port_free(b + p):
                    break
                time.sleep(0.5)
            else:
                sys.exit(f"bench: port {b + p} is in use; set BENCH_PORT")
    tmp = tempfile.mkdtemp(prefix="tern-bench.")
    t_begin = time.time()
    only = set(x for x in ENV["BENCH_ONLY"].split(",") if x)
    probes = []
    try:
        probes.append(fsync_probe())
        tern, pd = Tern(base), PostfixDovecot(base + 1000)
        tern.setup()
        pd.setup(os.path.join(tern.dir, "cert.pem"),
                 os.path.join(tern.dir, "key.pem"))
        log(f"servers up in {tmp}; adding accounts")
        for srv in (tern, pd):
            srv.add_users(BIG_USER, 1)
            srv.add_users(*SMTP_USERS)
            srv.add_users(*IMAP_USERS)
            srv.add_users(*APPEND_USERS)
            srv.add_users(*HASH_USERS, hashed=True)
        time.sleep(1)
        for srv in (tern, pd):
            if only and not only & {"imap", "pop3", "idle", "big"}:
                break  # only figures that do not read the 50 messages
            t0 = time.time()
            r = tload(["-o", "populate", "-p", srv.imap, "-c", 10, "-u",
                       IMAP_USERS[1], "-f", IMAP_USERS[0], "-P", PASS, "-n",
                       50, "-s", 5000])
            log(f"{srv.name}: populated {r['ops']} messages in "
                f"{time.time() - t0:.1f} s (errors {r['errors']})")
        time.sleep(2)
        rest = ([pss_kb(tern.roots())], [pss_kb(pd.roots())])
        record("Memory at rest, whole server MB (PSS) ↓", "MB", False,
               [rest[0][0] / 1024], [rest[1][0] / 1024])
        groups = [("smtp", figure_smtp), ("imap", figure_imap),
                  ("append", figure_append),
                  ("pop3", figure_pop3), ("idle", figure_idle),
                  ("big", figure_big)]
        for name, fn in groups:
            if only and name not in only:
                continue
            t0 = time.time()
            try:
                fn(tern, pd, only)
            except Exception as e:
                log(f"figure group {name} failed: {e}")
            log(f"group {name} took {time.time() - t0:.0f} s")
        probes.append(fsync_probe())
    finally:
        cleanup()
        elapsed = time.time() - t_begin
        print()
        print(f"tern vs Postfix {pf_version()} + Dovecot {dc_version()}; "
              f"{RUNS} runs per figure, median (min–max); "
              f"↑ higher is better, ↓ lower is better; "
              f"{elapsed:.0f} s in total")
        print("fsync of 4 KB in the bench directory, median/p99 ms: " +
              ", ".join(f"{a:.1f}/{b:.1f}" for a, b in probes) +
              " (at start, at end)")
        print()
        print(table())
        print()
        print("load generator (tload) CPU while it ran, per mode: " +
              ", ".join(f"{k} {v[0] / v[1] * 100:.0f}% of one core"
                        for k, v in sorted(gen_cpu.items()) if v[1] > 0))
        if os.environ.get("BENCH_KEEP") != "1" and tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def pf_version():
    r = subprocess.run(["postconf", "-dh", "mail_version"],
                       capture_output=True, text=True)
    return r.stdout.strip()


def dc_version():
    r = subprocess.run(["dovecot", "--version"], capture_output=True,
                       text=True)
    return r.stdout.split()[0] if r.stdout else "?"


if __name__ == "__main__":
    main()
