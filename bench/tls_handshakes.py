"""Full TLS handshakes per second against a running ternd's imaps port
(docs/performance.md, "TLS handshakes and the keys process"): each
connection makes a new handshake (no session reuse), reads the IMAP
greeting and closes. Loopback only.

  python3 bench/tls_handshakes.py PORT [SECONDS] [THREADS] [1.2|1.3]

Prints handshakes/s and the median and 99th percentile time of one
handshake (connect to greeting)."""
import socket
import ssl
import sys
import threading
import time


def run(port, seconds, threads, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = ctx.maximum_version = v
    times = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def loop():
        mine = []
        while time.monotonic() < end:
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                with ctx.wrap_socket(s) as ts:
                    ts.recv(100)
            mine.append(time.monotonic() - t0)
        with lock:
            times.extend(mine)

    ths = [threading.Thread(target=loop) for _ in range(threads)]
    t0 = time.monotonic()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.monotonic() - t0
    times.sort()
    n = len(times)
    print("%d handshakes in %.1f s: %.0f/s, median %.2f ms, p99 %.2f ms"
          % (n, wall, n / wall, times[n // 2] * 1000,
             times[min(n - 1, n * 99 // 100)] * 1000))


if __name__ == "__main__":
    a = sys.argv[1:]
    run(int(a[0]), float(a[1]) if len(a) > 1 else 10,
        int(a[2]) if len(a) > 2 else 1, a[3] if len(a) > 3 else "1.3")
