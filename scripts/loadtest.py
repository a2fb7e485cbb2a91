"""Load test: many shoppers at once through the public API, as a Space or share link would see.

Starts the app (`app.py`) on a loopback port, or uses a running one (--url, loopback only), and
drives it with gradio_client sessions in threads, on the same machine, so the load generator
competes for the same cores as the server (as the targets assume). Three phases:

  single      one shopper: photo + text /search (and text-only /search, /select) one after another
  concurrent  N shoppers at once, each doing photo + text /search then /reply, several times
  memory      many short sessions (4 at a time), then a wait for their state to expire:
              the server's resident memory before, after the load and after expiry

Prints p50 / p95 / max per endpoint and phase, errors, throughput and server memory.
Photos are real user photos (validation split; catalog photos if there are none), texts are
everyday tweaks.

    python scripts/loadtest.py                          # all phases, own server
    python scripts/loadtest.py --sessions 8 --searches 8 --phases single,concurrent
    python scripts/loadtest.py --url http://127.0.0.1:7860/ --phases single
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gradio_client import Client, handle_file  # noqa: E402

from fashion_rag import settings  # noqa: E402
from fashion_rag.data.photos import load_photos  # noqa: E402

TWEAKS = ["in red", "no stripes", "for summer", "something darker", "in black for the office",
          "same but casual", "in softer colours for fall", "in blue"]
LIMITS = {"sessions": 64, "searches": 50, "memory_sessions": 1000, "seconds": 1800}  # bounds
PHASES = ("single", "concurrent", "memory")
TLS = ssl.create_default_context()  # one verified TLS context for every client request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process, from /proc (Linux); None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, TypeError, ValueError):
        pass
    return None


def start_server(port: int, env: dict[str, str], timeout: float = 600.0) -> subprocess.Popen:
    """`python app.py` on a loopback port; returns once the page answers."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the app did not answer within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used, from /proc (Linux); None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, TypeError, ValueError, IndexError):
        return None


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Recorder:
    """Latencies (ms) per (phase, endpoint) and errors, from many threads."""

    def __init__(self):
        self.times: dict[tuple[str, str], list[float]] = {}
        self.errors: dict[tuple[str, str], list[str]] = {}
        self.lock = threading.Lock()

    def call(self, phase: str, endpoint: str, fn):
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            with self.lock:
                self.errors.setdefault((phase, endpoint), []).append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        with self.lock:
            self.times.setdefault((phase, endpoint), []).append((time.perf_counter() - started) * 1000)
        return result

    def rows(self) -> list[dict]:
        keys = sorted(set(self.times) | set(self.errors), key=lambda k: (PHASES.index(k[0]), k[1]))
        rows = []
        for phase, endpoint in keys:
            ms = sorted(self.times.get((phase, endpoint), []))
            pick = (lambda q: ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]) if ms else (lambda q: float("nan"))
            rows.append({"phase": phase, "endpoint": endpoint, "calls": len(ms),
                         "errors": len(self.errors.get((phase, endpoint), [])),
                         "p50": statistics.median(ms) if ms else float("nan"), "p95": pick(0.95),
                         "max": ms[-1] if ms else float("nan")})
        return rows


class Shopper:
    """One browser-like session: its own gradio_client Client (own session hash)."""

    def __init__(self, url: str, download: bool, fresh_tls: bool = False):
        # gradio_client downloads every output file by default (a browser fetches images itself,
        # over kept-alive connections), and with ssl_verify=True each of its HTTP requests builds
        # a TLS context from the CA bundle (~18 ms of CPU, even for http://). A context built once
        # (still verifying certificates, for https Spaces) is passed instead unless `fresh_tls`.
        self.client = Client(url, verbose=False, ssl_verify=True if fresh_tls else TLS,
                             **({} if download else {"download_files": False}))

    def search(self, photo: str | None, text: str, k: int = 12):
        return self.client.predict(handle_file(photo) if photo else None, text, "auto", 0.5, k,
                                   [], [], [], [], [], "", "", "", "", api_name="/search")

    def reply(self):
        return self.client.predict(api_name="/reply")

    def select(self, index: int = 0):
        return self.client.predict(index, api_name="/select")

    def close(self) -> None:
        self.client.close()


def phase_single(connect: Callable[[], Shopper], rec: Recorder, photos: list[str], runs: int) -> None:
    shopper = connect()
    for _ in range(2):  # warm-up, not recorded
        shopper.search(photos[-1], TWEAKS[-1]), shopper.search(None, TWEAKS[-1]), shopper.select(0)
    for n in range(runs):
        photo, tweak = photos[n % len(photos)], TWEAKS[n % len(TWEAKS)]
        rec.call("single", "/search photo+text", lambda: shopper.search(photo, tweak))
        rec.call("single", "/select", lambda: shopper.select(0))
        rec.call("single", "/search text", lambda: shopper.search(None, tweak))
    shopper.close()


def phase_concurrent(connect: Callable[[], Shopper], rec: Recorder, photos: list[str], sessions: int,
                     searches: int) -> float:
    """Wall time of the phase (s); every shopper starts together."""
    barrier = threading.Barrier(sessions)

    def shop(n: int) -> None:
        shopper = rec.call("concurrent", "connect", connect)
        barrier.wait()
        if shopper is None:
            return
        for i in range(searches):
            photo, tweak = photos[(n * searches + i) % len(photos)], TWEAKS[(n + i) % len(TWEAKS)]
            rec.call("concurrent", "/search photo+text", lambda: shopper.search(photo, tweak))
            rec.call("concurrent", "/reply", shopper.reply)
        shopper.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(shop, range(sessions)))
    return time.perf_counter() - started


def phase_memory(connect: Callable[[], Shopper], rec: Recorder, photos: list[str], count: int) -> None:
    """`count` short sessions, 4 at a time; each connects, searches once with a reply, and leaves."""
    def visit(n: int) -> None:
        shopper = rec.call("memory", "connect", connect)
        if shopper is None:
            return
        rec.call("memory", "/search photo+text", lambda: shopper.search(photos[n % len(photos)], TWEAKS[n % 8]))
        rec.call("memory", "/reply", shopper.reply)
        closing.submit(shopper.close)  # gradio_client's close waits up to 1 s for its heartbeat

    with ThreadPoolExecutor(16) as closing, ThreadPoolExecutor(4) as pool:
        list(pool.map(visit, range(count)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="a running app on this machine (default: start app.py on a free port); start it "
                   "with FASHION_RAG_UPLOADS_PER_MINUTE raised, as all shoppers here share one address")
    p.add_argument("--pid", type=int, help="the running app's process id, for its memory (with --url)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    p.add_argument("--single-runs", type=int, default=20, help="photo + text searches of the single shopper")
    p.add_argument("--sessions", type=int, default=8, help="concurrent shoppers")
    p.add_argument("--searches", type=int, default=8, help="photo + text searches (+ replies) per shopper")
    p.add_argument("--memory-sessions", type=int, default=200, help="short sessions in the memory phase")
    p.add_argument("--ttl", type=float, default=60.0,
                   help="session time-to-live (s) of the server this script starts (FASHION_RAG_SESSION_TTL)")
    p.add_argument("--download", action="store_true",
                   help="clients also download every result image, as gradio_client does by default")
    p.add_argument("--fresh-tls", action="store_true",
                   help="clients build a TLS context per request (gradio_client's default) instead of sharing one")
    p.add_argument("--json", type=Path, help="also save the raw figures here")
    args = p.parse_args(argv)
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    if unknown := set(args.phases) - set(PHASES):
        p.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.url and urllib.parse.urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("--url must be on this machine (127.0.0.1 or localhost): this is a load test")
    for name, bound in LIMITS.items():
        if name != "seconds" and not 1 <= getattr(args, name) <= bound:
            p.error(f"--{name.replace('_', '-')} must be between 1 and {bound}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    photos = load_photos("validation")["path"].tolist()[::7] or \
        [str(p) for p in sorted((settings.CATALOG_DIR / "images").glob("*.jpg"))[:50]]
    if not photos:
        raise SystemExit("No photos to search with: no user photos and no catalog images.")
    proc, pid, url = None, args.pid, args.url
    if url is None:
        port = free_port()
        started = time.perf_counter()
        # Every simulated shopper comes from 127.0.0.1: the per-address upload limit (20 a minute,
        # tests/test_serving.py) would refuse most of them, so this server lifts it.
        proc = start_server(port, {"FASHION_RAG_SESSION_TTL": str(args.ttl), "FASHION_RAG_UPLOADS_PER_MINUTE": "100000",
                                   "FASHION_RAG_UPLOADS_PER_MINUTE_ALL": "100000"})
        pid, url = proc.pid, f"http://127.0.0.1:{port}/"
        print(f"app started in {time.perf_counter() - started:.1f} s at {url} (session TTL {args.ttl:g} s)")
    rec, memory, info = Recorder(), {}, {}
    connect = functools.partial(Shopper, url, args.download, args.fresh_tls)
    timer = threading.Timer(LIMITS["seconds"], lambda: os._exit(3))  # the whole run is bounded
    timer.daemon = True
    timer.start()
    try:
        memory["start"] = rss_mb(pid)
        if "single" in args.phases:
            phase_single(connect, rec, photos, args.single_runs)
        if "concurrent" in args.phases:
            server_cpu, client_cpu = cpu_seconds(pid), own_cpu_seconds()
            wall = phase_concurrent(connect, rec, photos, args.sessions, args.searches)
            searches = args.sessions * args.searches
            info["concurrent searches/s"] = searches / wall
            if server_cpu is not None:  # CPU per search + reply, on the server and in the clients
                info["server CPU ms per search+reply"] = (cpu_seconds(pid) - server_cpu) * 1000 / searches
            info["client CPU ms per search+reply"] = (own_cpu_seconds() - client_cpu) * 1000 / searches
        if "memory" in args.phases:
            memory["before sessions"] = rss_mb(pid)
            phase_memory(connect, rec, photos, args.memory_sessions)
            memory[f"after {args.memory_sessions} sessions"] = rss_mb(pid)
            if proc is not None:  # our own server: we know its TTL, so wait for expiry
                time.sleep(args.ttl * 1.25 + 10)  # the expiry thread runs every ttl / 4
                memory["after expiry"] = rss_mb(pid)
    finally:
        timer.cancel()
        if proc is not None:
            stop_server(proc)
    rows = rec.rows()
    print(f"\n{'phase':<11} {'endpoint':<20} {'calls':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    print("-" * 73)
    for r in rows:
        print(f"{r['phase']:<11} {r['endpoint']:<20} {r['calls']:>6} {r['errors']:>6} "
              f"{r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f}")
    for name, value in info.items():
        print(f"{name}: {value:.2f}")
    if any(v is not None for v in memory.values()):
        print("server memory (RSS): " + ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items() if v is not None))
    for (phase, endpoint), errors in rec.errors.items():
        print(f"errors in {phase} {endpoint}: {len(errors)}, e.g. {errors[0]}")
    result = {"rows": rows, "info": info, "memory": memory, "sessions": args.sessions, "fresh_tls": args.fresh_tls,
              "samples": {f"{phase} {endpoint}": ms for (phase, endpoint), ms in rec.times.items()},
              "download": args.download, "errors": sum(len(e) for e in rec.errors.values())}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
