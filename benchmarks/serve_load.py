"""Load on `uir serve`: N concurrent clients on loopback restoring 512² photos; throughput, latency, peak memory.

    python benchmarks/serve_load.py --clients 8 --requests 6 [--workers 1] [--queue 4] [--engine torch]

Starts `uir serve` in a subprocess (its own port, the default model), waits for /healthz, then runs ``--clients``
threads that each POST ``--requests`` PNGs (512², a noisy crop of an example photo) to /v1/restore, back to back.
Every request is bounded by ``--timeout``. Prints: how many were answered 200, 503 (queue full, with Retry-After)
or anything else (should be none), throughput of the 200s, p50/p95 latency of the 200s and of all, and the
server's peak resident memory (VmHWM from /proc). Requires the serve extra (pip install 'uir[serve]').
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def photo_png(side: int = 512, seed: int = 0) -> bytes:
    """A ``side``² noisy crop of an example photo, as PNG bytes."""
    image = np.asarray(Image.open(ROOT / "examples" / "clean" / "astronaut.png").convert("RGB"), dtype=np.float64)
    crop = image[:side, :side]
    noisy = np.clip(crop + np.random.default_rng(seed).normal(0, 25, crop.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one ``file`` field, and its content type."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, timeout: float) -> tuple[int, float, str | None]:
    """``(status, seconds, Retry-After)`` of one request; status 0 for a connection failure or a timeout."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, time.perf_counter() - start, None
    except urllib.error.HTTPError as err:
        err.read()
        return err.code, time.perf_counter() - start, err.headers.get("Retry-After")
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0, time.perf_counter() - start, None


def peak_memory_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=6, help="requests per client")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--engine", default="torch")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take")
    args = parser.parse_args()

    port = free_port()
    command = [sys.executable, "-m", "uir", "serve", "--port", str(port), "--engine", args.engine]
    command += ["--workers", str(args.workers), "--queue", str(args.queue)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    print(f"the server did not start: {server.stderr.read()[-2000:]}", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        bodies = [multipart(photo_png(args.side, seed=i), f"photo{i}.png") for i in range(args.clients)]
        post(base + "/v1/restore", *bodies[0], args.timeout)  # warm-up: the first request loads everything
        results: list[tuple[int, float, str | None]] = []
        lock = threading.Lock()

        def client(i: int) -> None:
            for _ in range(args.requests):
                outcome = post(base + "/v1/restore", *bodies[i], args.timeout)
                with lock:
                    results.append(outcome)

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        memory = peak_memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    ok = [s for code, s, _ in results if code == 200]
    busy = [(s, after) for code, s, after in results if code == 503]
    other = sorted({code for code, _, _ in results if code not in (200, 503)})
    total = args.clients * args.requests
    print(
        f"{args.clients} clients x {args.requests} requests of {args.side}² PNG, server workers {args.workers}, "
        f"queue {args.queue}, engine {args.engine}, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"answered: {len(results)} of {total}: 200 x {len(ok)}, 503 x {len(busy)}, other {other or 'none'}")
    if busy:
        print(f"  every 503 had Retry-After: {all(after is not None for _, after in busy)}")
    print(f"wall {wall:.1f} s; throughput {len(ok) / wall:.2f} restored images/s")
    print(f"latency of the 200s: p50 {percentile(ok, 50):.2f} s, p95 {percentile(ok, 95):.2f} s")
    every = [s for _, s, _ in results]
    print(f"latency of all answers: p50 {percentile(every, 50):.2f} s, p95 {percentile(every, 95):.2f} s")
    print(f"server peak resident memory: {memory:.0f} MiB")
    return 0 if len(results) == total and not other else 1


if __name__ == "__main__":
    sys.exit(main())
