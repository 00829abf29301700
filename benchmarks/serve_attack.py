"""Abuse of `uir serve` on loopback: abandoned bombs, abandoned big jobs, floods of large uploads; memory per megapixel.

    python benchmarks/serve_attack.py [--model default] [--uploads 10] [--upload-mb 49] [--max-pixels 40000000]
    python benchmarks/serve_attack.py --memory 1 4 16

Starts `uir serve` in a subprocess (a free loopback port, torch engine, default limits but ``--max-pixels``, by
default the former 40 M so that 6000x6000 reaches the decoder) and, printing what it sees:

1. sends five truncated JPEGs of 776 bytes that announce 6000x6000 and hangs up on each; then reads /healthz until
   nothing is pending and times a 64x64 restore (a real user arriving after the attack);
2. sends five large valid photos, waits until they are all pending, lets the first restore for 3 s, hangs up on
   each and times how long the server takes to be idle again (a running job stops at its next tile);
3. makes the server busy with five uploads that stall after their headers (they hold every place), then posts
   ``--uploads`` concurrent uploads of ``--upload-mb`` MiB and reports their answers and the server's resident
   memory (VmRSS sampled every 20 ms), which nothing else moves;
4. the same while five large restores run and wait (the server's memory then moves with the restores too);
5. the same uploads to the idle server: ``workers + queue`` are received, the rest refused.

``--memory`` instead measures, in a fresh process per size, the peak resident memory of one restore through the
server's job (``uir.serve.app._restore_job``: decode, restore with the default tiling, encode) of noisy PNGs of the
given megapixels, with the default model on the torch engine. Requires the serve extra.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def truncated_jpeg(side: int = 6000, size: int = 776) -> bytes:
    """A JPEG that announces ``side``² pixels, cut to ``size`` bytes, the last two its end marker (EOI)."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (128, 128, 128)).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()[: size - 2] + b"\xff\xd9"


def noisy_png(side: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (side // 8 + 1, side // 8 + 1, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(small).resize((side, side), Image.BICUBIC), dtype=np.int16)
    noisy = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def raw_post(port: int, body: bytes, content_type: str, length: int | None = None) -> socket.socket:
    """Send a POST /v1/restore announcing ``length`` bytes (default: the body's) on a new connection; the socket,
    unread (to hang up on)."""
    head = (
        f"POST /v1/restore HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head + body)
    return sock


def request(port: int, method: str, path: str, body: bytes | None = None, content_type: str = "", timeout: float = 600):
    """``(status, seconds, body)`` of one request; status 0 when the connection failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type} if body else {})
        response = connection.getresponse()
        data = response.read()
        return response.status, time.perf_counter() - start, data
    except OSError:
        return 0, time.perf_counter() - start, b""
    finally:
        connection.close()


def pending(port: int) -> int:
    return json.loads(request(port, "GET", "/healthz", timeout=10)[2])["pending"]


def wait_pending(port: int, until: int, limit: float = 120.0) -> float:
    """Seconds until /healthz shows ``until`` pending (or ``limit``)."""
    start = time.perf_counter()
    while pending(port) != until and time.perf_counter() - start < limit:
        time.sleep(0.05)
    return time.perf_counter() - start


def proc_memory(pid: int, key: str) -> float:
    """A /proc/<pid>/status memory figure (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The peak of a process's VmRSS, sampled every 20 ms while in a ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_memory(self.pid, "VmRSS"))
            time.sleep(0.02)


def flood_and_report(pid: int, port: int, args: argparse.Namespace, state: str) -> None:
    """Send ``args.uploads`` concurrent uploads of ``args.upload_mb`` MiB; print the answers and the server's RSS.

    The RSS before is read just before the flood: in state 4 it already holds the restore that is running.
    """
    before = proc_memory(pid, "VmRSS")
    with RssSampler(pid) as rss:
        results = upload_flood(port, args.uploads, args.upload_mb)
    print(f"{state}; {args.uploads} concurrent uploads of {args.upload_mb:g} MiB: {summary(results)}")
    print(f"   server RSS {before:.0f} MiB before, peak {rss.peak:.0f} MiB during the uploads")


def upload_flood(port: int, count: int, megabytes: float) -> list[tuple[int, float]]:
    """``count`` concurrent uploads of random bytes; their ``(status, seconds)``."""
    data = np.random.default_rng(1).integers(0, 256, int(megabytes * 2**20), dtype=np.uint8).tobytes()
    body, content_type = multipart(data, "big.png")
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def send() -> None:
        status, seconds, _ = request(port, "POST", "/v1/restore", body, content_type)
        with lock:
            results.append((status, seconds))

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def start_server(model: str, max_pixels: int) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "uir", "serve", "--port", str(port), "--model", model, "--engine", "torch"]
    command += ["--max-pixels", str(max_pixels)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            pending(port)
            return server, port
        except (OSError, ValueError):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"the server did not start: {server.stderr.read()[-2000:]}") from None
            time.sleep(0.5)


def summary(results: list[tuple[int, float]]) -> str:
    codes = sorted({code for code, _ in results})
    counts = ", ".join(f"{code} x {sum(1 for c, _ in results if c == code)}" for code in codes)
    return f"{counts}; slowest answer {max(s for _, s in results):.2f} s"


def attack(args: argparse.Namespace) -> int:
    server, port = start_server(args.model, args.max_pixels)
    print(
        f"uir serve --model {args.model} --max-pixels {args.max_pixels} (workers 1, queue 4), {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; server RSS at start "
        f"{proc_memory(server.pid, 'VmRSS'):.0f} MiB"
    )
    small = multipart(noisy_png(64), "small.png")
    big = [multipart(noisy_png(args.big_side, seed=i), f"big{i}.png") for i in range(5)]
    try:
        request(port, "POST", "/v1/restore", *small)  # warm-up

        bomb = truncated_jpeg()
        body, content_type = multipart(bomb, "bomb.jpg")
        status, _, detail = request(port, "POST", "/v1/restore", body, content_type)
        print(f"1. one truncated 6000x6000 JPEG of {len(bomb)} bytes, answered: {status} {detail.decode()[:140]}")
        for sock in [raw_post(port, body, content_type) for _ in range(5)]:
            sock.close()
        idle = wait_pending(port, 0)
        status, seconds, _ = request(port, "POST", "/v1/restore", *small)
        print(
            f"   five sent and abandoned: idle (pending 0) after {idle:.2f} s; then a 64x64 restore: {status} in "
            f"{seconds:.2f} s"
        )

        sockets = [raw_post(port, *big[i]) for i in range(5)]
        wait_pending(port, 5)
        time.sleep(3)  # the first is restoring
        for sock in sockets:
            sock.close()
        start = time.perf_counter()
        wait_pending(port, 0)
        status, seconds, _ = request(port, "POST", "/v1/restore", *small)
        print(
            f"2. five {args.big_side}x{args.big_side} PNGs pending, the first restoring for 3 s, then abandoned: "
            f"idle after {time.perf_counter() - start:.2f} s; then a 64x64 restore: {status} in {seconds:.2f} s"
        )

        stalled = [raw_post(port, b"--x", "multipart/form-data; boundary=x", 10**6) for _ in range(5)]
        wait_pending(port, 5)
        flood_and_report(server.pid, port, args, "3. five stalled uploads hold every place")
        for sock in stalled:
            sock.close()
        wait_pending(port, 0)

        busy = [threading.Thread(target=request, args=(port, "POST", "/v1/restore", *big[i])) for i in range(5)]
        for thread in busy:
            thread.start()
        wait_pending(port, 5)
        flood_and_report(server.pid, port, args, "4. five restores pending")
        for thread in busy:
            thread.join()

        wait_pending(port, 0)
        flood_and_report(server.pid, port, args, "5. idle")
        print(f"server peak resident memory over the whole run (VmHWM): {proc_memory(server.pid, 'VmHWM'):.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


MEMORY_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {here!r})
    import uir
    from serve_attack import noisy_png
    from uir.serve.app import _restore_job

    def status(key):
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
        return int(line.split()[1]) / 1024

    model = uir.load("default", engine="torch")
    _restore_job(model, noisy_png(64), "warm.png", ("auto",), "auto", lambda: None)
    data = noisy_png({side})
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = status("VmRSS")
    start = time.perf_counter()
    _restore_job(model, data, "photo.png", ("auto",), "auto", lambda: None)
    print(before, status("VmHWM"), time.perf_counter() - start, len(data))
    """
)


def memory(megapixels: list[float]) -> int:
    print(
        f"one restore through the server's job, default model, torch, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print("megapixels  side   PNG MiB  RSS before  peak RSS  job's peak  MiB per MP  seconds")
    for mp in megapixels:
        side = int(round((mp * 1e6) ** 0.5))
        code = MEMORY_CHILD.format(here=str(Path(__file__).parent), side=side)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        before, peak, seconds, size = (float(x) for x in out.split())
        job = peak - before
        print(
            f"{side * side / 1e6:10.1f}  {side:5d}  {size / 2**20:7.1f}  {before:10.0f}  {peak:8.0f}  {job:10.0f}  "
            f"{job / (side * side / 1e6):10.1f}  {seconds:7.1f}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="what the server runs (default: the shipped model)")
    parser.add_argument("--uploads", type=int, default=10, help="concurrent large uploads")
    parser.add_argument("--upload-mb", type=float, default=49.0, help="size of each large upload in MiB")
    parser.add_argument("--big-side", type=int, default=2048, help="side of the large photos that keep it busy")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="the server's --max-pixels")
    parser.add_argument("--memory", type=float, nargs="+", metavar="MP", help="measure memory per megapixel")
    args = parser.parse_args()
    return memory(args.memory) if args.memory else attack(args)


if __name__ == "__main__":
    sys.exit(main())
