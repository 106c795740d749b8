#!/usr/bin/env bash
# What a restart costs: time from starting `glint serve` again (after SIGKILL, and after
# SIGTERM) to its first 2xx, and its memory then, for a small and a large ring holding the
# same ~1,000 pending records. The ring file is evicted from the page cache before each
# restart (fsync, then POSIX_FADV_DONTNEED), so the restart reads from disk as after a reboot.
#
#   loadtest/restart.sh [SLOTS...]     default: 65536 16777216 (32 MiB and 8 GiB rings)
#
# Environment: GLINT=path/to/glint (default: target/release/glint, built if missing),
# PENDING (records written before the restarts, default 1000), KEEP=1 keeps the work dir.
# One worker thread and the default 512-byte slots; loopback only; every step is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "restart.sh: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
[ $# -gt 0 ] || set -- 65536 16777216
WORK=$(mktemp -d /tmp/glint-restart.XXXXXX)
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "restart.sh: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

python3 - "$GLINT" "$WORK" "${PENDING:-1000}" "$@" <<'PY'
import os, signal, socket, subprocess, sys, time

glint, work, pending, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(s) for s in sys.argv[4:]]

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def first_2xx(port, deadline):
    """Polls every millisecond until a beacon gets a 2xx; returns the time it arrived."""
    req = b"GET /p.gif?e=restart-probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(req)
                head = s.recv(64)
                if head[9:10] == b"2":
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.001)
    raise SystemExit("restart.sh: no 2xx within the time limit")

def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0

def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)

def serve(data, slots, port):
    args = [glint, "serve", "--listen", f"127.0.0.1:{port}", "--admin-listen", "off",
            "--threads", "1", "--ring-slots", str(slots), "--data-dir", data]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "..", f"serve-{slots}.log"), "a"))

def stop(proc, sig):
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise SystemExit("restart.sh: the server did not stop within 60 s")

print(f"{'ring slots':>10} {'ring file':>10} {'restart after':>13} {'first 2xx':>10} {'RSS then':>10} {'peak RSS':>10}")
for slots in sizes:
    data = os.path.join(work, f"data-{slots}")
    os.makedirs(data)
    port = free_port()
    proc = serve(data, slots, port)
    first_2xx(port, time.monotonic() + 120)
    subprocess.run([glint, "loadgen", f"http://127.0.0.1:{port}/p.gif?e=restart", "-n", str(pending),
                    "-c", "4", "-t", "1"], check=True, stdout=subprocess.DEVNULL)
    ring = os.path.join(data, "ring-000.glr")
    for name, sig in (("SIGKILL", signal.SIGKILL), ("SIGTERM", signal.SIGTERM)):
        stop(proc, sig)
        evict(ring)
        started = time.monotonic()
        proc = serve(data, slots, port)
        answered = first_2xx(port, started + 300)
        rss, hwm = status_kib(proc.pid, "VmRSS"), status_kib(proc.pid, "VmHWM")
        print(f"{slots:>10} {os.path.getsize(ring) / 2**20:>7.0f} MiB {name:>13} "
              f"{(answered - started) * 1000:>7.1f} ms {rss / 1024:>6.1f} MiB {hwm / 1024:>6.1f} MiB", flush=True)
    stop(proc, signal.SIGTERM)
    os.remove(ring)
PY
