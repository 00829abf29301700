"""Tests for ``uir serve``: the API and page through FastAPI's TestClient, with the identity or a fake model."""

from __future__ import annotations

import asyncio
import io
import re
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import uir
from conftest import cut_jpeg
from uir.cli import main

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
with warnings.catch_warnings():  # Starlette >= 1.0 warns that its TestClient wants httpx2; httpx still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import uir.serve.pool  # noqa: E402
from uir.api import Plan  # noqa: E402
from uir.restore import tiled  # noqa: E402
from uir.serve.app import Limits, create_app  # noqa: E402
from uir.serve.guards import LOCAL_HOSTS  # noqa: E402
from uir.serve.pool import PoolFull  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the same, when a client is made

H, W = 37, 53


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    if array.dtype == np.uint16 and array.ndim == 3:
        import cv2

        ok, data = cv2.imencode(".png" if fmt == "PNG" else ".tiff", np.ascontiguousarray(array[..., [2, 1, 0, 3]]))
        assert ok
        return data.tobytes()
    Image.fromarray(array).save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.png") -> dict:
    return {"file": (name, data, "application/octet-stream")}


KEPT = Plan(("auto",), "no-brightening", "a fake's plan")


class SlowModel:
    """A fake model whose restore waits for ``release`` (to fill the queue deterministically) and adds 0.1."""

    name = "slow-fake"
    labels = ["noise"]
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.calls = 0

    def restore_planned(
        self, image: torch.Tensor, task: object = None, strength: object = None, stop_check: object = None
    ) -> list:
        self.calls += 1
        self.started.release()
        assert self.release.wait(30)
        return [((image + 0.1).clamp(0, 1), KEPT)]


class TiledModel:
    """A fake model restoring in 8-pixel tiles through ``uir.restore.tiled``; ``on_tile(n)`` runs in the n-th tile."""

    name = "tiled-fake"
    labels: list[str] = []
    device = torch.device("cpu")

    def __init__(self, on_tile: Callable[[int], None]) -> None:
        self.on_tile = on_tile
        self.tiles = 0

    def restore_planned(
        self,
        image: torch.Tensor,
        task: object = None,
        strength: object = None,
        stop_check: Callable[[], object] | None = None,
    ) -> list:
        def piece(x: torch.Tensor) -> torch.Tensor:
            self.tiles += 1
            self.on_tile(self.tiles)
            return x

        return [(tiled(piece, image, tile=8, overlap=2, stop_check=stop_check), KEPT)]


def multipart(data: bytes, name: str = "photo.png") -> tuple[bytes, str]:
    boundary = "uir-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def asgi_post(app: object, messages: list[dict], gone: asyncio.Event, content_type: str) -> int:
    """POST /v1/restore straight through ASGI: ``messages`` are the body, then the client hangs up once ``gone``
    is set (it never does if nobody sets it). Returns the status answered."""
    pending = list(messages)

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    statuses: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", content_type.encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/restore",
        "raw_path": b"/v1/restore",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)  # type: ignore[operator]
    return statuses[0]


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait (up to ``limit`` seconds) for ``condition``; the caller asserts it afterwards."""
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def identity() -> uir.Model:
    return uir.load("identity")


@pytest.fixture
def client(identity: uir.Model) -> Iterator[TestClient]:
    with TestClient(create_app(identity, limits=Limits(max_upload_mb=0.05, max_pixels=100_000))) as test_client:
        yield test_client


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# Good images: same size, format family, bit depth and alpha as `uir restore`.


@pytest.mark.parametrize(
    ("dtype", "channels", "fmt", "media", "mode"),
    [
        (np.uint8, 3, "PNG", "image/png", "RGB"),
        (np.uint8, 4, "PNG", "image/png", "RGBA"),
        (np.uint8, 3, "JPEG", "image/png", "RGB"),
        (np.uint8, 3, "WEBP", "image/png", "RGB"),
        (np.uint8, 3, "BMP", "image/png", "RGB"),
        (np.uint8, 3, "TIFF", "image/tiff", "RGB"),
        (np.uint8, 1, "PNG", "image/png", "L"),
    ],
)
def test_restore_8bit(client: TestClient, rng: np.random.Generator, dtype, channels, fmt, media, mode) -> None:
    array = rng.integers(0, 256, (H, W, channels), dtype=dtype)
    response = client.post("/v1/restore", files=upload(encode(array.squeeze(), fmt), f"my photo.{fmt.lower()}"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    assert response.headers["x-uir-model"] == "identity"
    timing = dict(part.split(";dur=") for part in response.headers["server-timing"].split(", "))
    assert list(timing) == ["decode", "restore", "encode"]
    assert abs(float(response.headers["x-uir-seconds"]) * 1000 - float(timing["restore"])) < 0.6  # ms, rounding
    suffix = ".tiff" if fmt == "TIFF" else ".png"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f"attachment; filename=\"my photo_restored{suffix}\"; filename*=UTF-8''my%20photo")
    restored = Image.open(io.BytesIO(response.content))
    assert restored.size == (W, H) and restored.mode == mode
    if fmt in ("PNG", "BMP", "TIFF", "WEBP"):  # lossless in, identity model: the same pixels out
        assert np.array_equal(np.asarray(restored), array.squeeze())


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_restore_16bit_with_alpha_is_exact(client: TestClient, rng: np.random.Generator, fmt: str) -> None:
    array = rng.integers(0, 65536, (H, W, 4), dtype=np.uint16)
    response = client.post("/v1/restore", files=upload(encode(array, fmt), f"deep.{fmt.lower()}"))
    assert response.status_code == 200, response.text
    import cv2

    decoded = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16 and decoded.shape == (H, W, 4)
    assert np.array_equal(decoded[..., [2, 1, 0, 3]], array)


def test_a_name_in_any_script_downloads_under_its_own_name(client: TestClient, rng: np.random.Generator) -> None:
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    response = client.post("/v1/restore", files=upload(data, "фото 写真.png"))
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert 'filename="____ ___restored.png"' in disposition  # the ASCII fallback
    assert "filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE%20%E5%86%99%E7%9C%9F_restored.png" in disposition


def test_inspect(client: TestClient, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    import uir.serve.app

    clock = iter(np.arange(100.0, 200.0, 0.625))  # each reading 0.625 s after the one before
    monkeypatch.setattr(uir.serve.app, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    response = client.post("/v1/inspect", files=upload(data, "../../etc/passwd.png"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["path"] == "passwd.png" and (report["width"], report["height"]) == (W, H)
    assert report["piqe_grade"] in ("excellent", "good", "fair", "poor", "bad") and report["verdict"]
    assert report["seconds"] == 0.625  # from the reading before decoding to the one after the report


# Bad input: 4xx with the CLI's one-line message, never a 500; the server keeps serving.


def bad_upload(case: str, rgb8: np.ndarray) -> bytes:
    if case == "empty":
        return b""
    if case == "text":
        return b"hello, not a picture\n"
    if case == "gif":
        return encode(rgb8, "GIF")
    if case in ("truncated-png", "truncated-jpeg"):
        data = encode(rgb8, "PNG" if case == "truncated-png" else "JPEG")
        return data[: len(data) * 2 // 3]
    if case == "corrupt":
        data = bytearray(encode(rgb8, "PNG"))
        data[100:140] = bytes(40)
        return bytes(data)
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("empty", "empty file"),
        ("text", "not an image (or an unsupported format)"),
        ("gif", "not an image (or an unsupported format)"),
        ("truncated-png", "truncated or corrupt image data"),
        ("truncated-jpeg", "truncated or corrupt image data"),
        ("corrupt", "truncated or corrupt image data"),
    ],
)
@pytest.mark.parametrize("endpoint", ["/v1/restore", "/v1/inspect"])
def test_bad_images(client: TestClient, rng: np.random.Generator, endpoint: str, case: str, reason: str) -> None:
    rgb8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    response = client.post(endpoint, files=upload(bad_upload(case, rgb8), "bad.png"))
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"bad.png: {reason}") and "\n" not in detail
    assert client.get("/healthz").status_code == 200
    good = client.post(endpoint, files=upload(encode(rgb8)))
    assert good.status_code == 200


def test_same_message_as_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture, client: TestClient) -> None:
    (tmp_path / "bad.png").write_bytes(b"hello, not a picture\n")
    assert main(["restore", str(tmp_path / "bad.png"), "-o", str(tmp_path / "out"), "--model", "identity"]) == 1
    detail = client.post("/v1/restore", files=upload(b"hello, not a picture\n", "bad.png")).json()["detail"]
    assert detail.removeprefix("bad.png") in capsys.readouterr().err


def test_missing_field_is_one_line_422(client: TestClient) -> None:
    response = client.post("/v1/restore", data={"image": "x"})
    assert response.status_code == 422
    assert "field 'file'" in response.json()["detail"]


@pytest.mark.parametrize("side", [150, 200])  # the file alone is over, or the whole request is (said by its length)
def test_oversized_upload_is_413(client: TestClient, rng: np.random.Generator, side: int) -> None:
    noise = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)  # 67 or 120 KB of PNG, over 0.05 MiB
    response = client.post("/v1/restore", files=upload(encode(noise), "big.png"))
    assert response.status_code == 413 and "limit of 0.05 MiB" in response.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_streamed_upload_without_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        for _ in range(20):
            yield bytes(10_000)

    headers = {"content-type": "multipart/form-data; boundary=b"}
    response = client.post("/v1/restore", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_too_many_pixels_is_413(client: TestClient) -> None:
    flat = np.zeros((400, 400, 3), np.uint8)  # compresses to ~1 KB, but 160 000 pixels > 100 000
    response = client.post("/v1/restore", files=upload(encode(flat), "wide.png"))
    assert response.status_code == 413
    assert (
        response.json()["detail"]
        == "wide.png: 400x400 is 0.2 megapixels, over this server's limit of 0.1 (uir serve --max-pixels)"
    )


def test_nothing_left_on_disk(client: TestClient, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as folder:
        monkeypatch.setattr(tempfile, "tempdir", folder)
        data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        assert client.post("/v1/restore", files=upload(data, "/tmp/evil/../x.png")).status_code == 200
        assert client.post("/v1/restore", files=upload(b"junk", "x.png")).status_code == 400
        assert list(Path(folder).iterdir()) == []


def test_internal_error_is_one_line_500(rng: np.random.Generator) -> None:
    class Broken(SlowModel):
        def restore_planned(
            self, image: torch.Tensor, task: object = None, strength: object = None, stop_check: object = None
        ) -> list:
            raise RuntimeError("boom\nwith a second line")

    with TestClient(create_app(Broken())) as client:
        response = client.post("/v1/restore", files=upload(encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))))
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error (RuntimeError); the server keeps running"}
        assert client.get("/healthz").status_code == 200


# Load: concurrent requests, and a full queue answered with 503 + Retry-After.


def test_concurrent_requests(identity: uir.Model, rng: np.random.Generator) -> None:
    arrays = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(6)]
    results: dict[int, bytes] = {}
    with TestClient(create_app(identity, limits=Limits(workers=2, queue_size=4))) as client:

        def send(i: int) -> None:
            response = client.post("/v1/restore", files=upload(encode(arrays[i]), f"{i}.png"))
            assert response.status_code == 200
            results[i] = response.content

        threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sorted(results) == list(range(6))
    for i, data in results.items():
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), arrays[i])


def test_full_queue_is_503_with_retry_after(rng: np.random.Generator) -> None:
    model = SlowModel()
    app = create_app(model, limits=Limits(workers=1, queue_size=1, retry_after=7))
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    codes: list[int] = []
    with TestClient(app) as client:
        threads = [
            threading.Thread(target=lambda: codes.append(client.post("/v1/restore", files=upload(data)).status_code))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        assert model.started.acquire(timeout=30)  # one is running...
        deadline = time.monotonic() + 30
        while app.state.pool.pending < 2 and time.monotonic() < deadline:  # ... and one waits
            time.sleep(0.01)
        refused = client.post("/v1/restore", files=upload(data))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
        assert "busy" in refused.json()["detail"]
        assert client.get("/healthz").json()["pending"] == 2  # health answers while the pool is full
        model.release.set()
        for thread in threads:
            thread.join(30)
        assert codes == [200, 200]
        again = client.post("/v1/restore", files=upload(data))
        assert again.status_code == 200 and again.headers["x-uir-model"] == "slow-fake"


# Abuse: bombs, abandoned and endless jobs, uploads to a busy server, foreign hosts and sites.


def test_a_cut_jpeg_announcing_many_pixels_is_400_truncated(client: TestClient) -> None:
    response = client.post(
        "/v1/restore", files=upload(cut_jpeg(Image.new("RGB", (301, 297), (90, 120, 150)), 40), "bomb.jpg")
    )
    assert response.status_code == 400, response.status_code  # not decoded as 301x297 of grey
    detail = response.json()["detail"]
    assert (
        detail.startswith("bomb.jpg: truncated or corrupt image data: image file is truncated") and "\n" not in detail
    )


def test_a_jpeg_of_absurdly_many_segments_is_400_and_read_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (31, 29), (90, 120, 150)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    padded = data[:2] + b"\xff\xfe\x00\x02" * 12_000 + data[2:]  # 12,000 empty comments: Pillow walks each in Python
    on_loop: list[bool] = []
    check = uir.io.check_jpeg

    def spy(*args: object) -> None:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        check(*args)

    monkeypatch.setattr(uir.io, "check_jpeg", spy)
    response = client.post("/v1/restore", files=upload(padded, "many.jpg"))
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "many.jpg: truncated or corrupt image data: more than 10000 JPEG segments"
    assert on_loop == [False]  # checked in a worker thread: the event loop kept serving others
    assert client.get("/healthz").json()["pending"] == 0


def test_a_busy_server_refuses_an_upload_without_reading_it(rng: np.random.Generator) -> None:
    model = SlowModel()
    app = create_app(model, limits=Limits(workers=1, queue_size=0, retry_after=7))
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    body, content_type = multipart(data)
    read: list[bool] = []

    def chunks() -> Iterator[bytes]:
        read.append(True)
        yield body

    with TestClient(app) as client:
        running = threading.Thread(target=lambda: client.post("/v1/restore", files=upload(data)))
        running.start()
        assert model.started.acquire(timeout=30)
        refused = client.post("/v1/restore", content=chunks(), headers={"content-type": content_type})
        model.release.set()
        running.join(30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
        assert read == []  # the body was never asked for
        assert client.get("/healthz").json()["pending"] == 0


def test_every_answer_frees_its_place(client: TestClient, rng: np.random.Generator) -> None:
    good = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    flat = encode(np.zeros((400, 400, 3), np.uint8))

    def streamed() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n' + bytes(200_000)

    answers = [
        client.post("/v1/restore", files=upload(good)).status_code,
        client.post("/v1/inspect", files=upload(good)).status_code,
        client.post("/v1/restore", files=upload(b"junk")).status_code,
        client.post("/v1/restore", files=upload(flat)).status_code,
        client.post("/v1/restore", data={"image": "x"}).status_code,
        client.post(
            "/v1/restore", content=streamed(), headers={"content-type": "multipart/form-data; boundary=b"}
        ).status_code,
    ]
    assert answers == [200, 200, 400, 413, 422, 413]
    assert client.app.state.pool.pending == 0


def test_a_queued_job_whose_client_has_gone_is_dropped(rng: np.random.Generator) -> None:
    model = SlowModel()
    app = create_app(model, limits=Limits(workers=1, queue_size=1))
    pool = app.state.pool
    body, content_type = multipart(encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)))
    message = {"type": "http.request", "body": body, "more_body": False}

    async def scenario() -> tuple[int, int, int]:
        stays, leaves = asyncio.Event(), asyncio.Event()
        running = asyncio.ensure_future(asgi_post(app, [message], stays, content_type))
        assert await asyncio.to_thread(model.started.acquire, timeout=30)
        waiting = asyncio.ensure_future(asgi_post(app, [message], leaves, content_type))
        await until(lambda: pool.pending == 2)
        leaves.set()  # the second client hangs up while its job waits
        await until(lambda: pool.pending == 1)
        pending_after = pool.pending
        model.release.set()
        return pending_after, await running, await waiting

    try:
        pending_after, first, second = asyncio.run(scenario())
    finally:
        model.release.set()
        pool.shutdown()
    assert pending_after == 1 and first == 200 and second == 503
    assert model.calls == 1  # the dropped job never ran


def test_a_slow_upload_is_408_and_frees_its_place(identity: uir.Model) -> None:
    app = create_app(identity, limits=Limits(upload_timeout=0.2))
    body, content_type = multipart(b"x" * 1000)
    first = {"type": "http.request", "body": body[:100], "more_body": True}  # and the rest never comes

    async def scenario() -> int:
        return await asyncio.wait_for(asgi_post(app, [first], asyncio.Event(), content_type), 30)

    assert asyncio.run(scenario()) == 408
    assert app.state.pool.pending == 0
    app.state.pool.shutdown()


def test_a_job_over_its_time_limit_stops_between_tiles(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    clock = [0.0]
    monkeypatch.setattr(uir.serve.pool, "monotonic", lambda: clock[0])

    def one_second_per_tile(_: int) -> None:
        clock[0] += 1.0

    model = TiledModel(one_second_per_tile)
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    with TestClient(create_app(model, limits=Limits(job_timeout=3.5))) as client:
        response = client.post("/v1/restore", files=upload(data, "long.png"))
    assert response.status_code == 504, response.status_code
    detail = response.json()["detail"]
    assert detail.startswith("long.png: stopped after this server's limit of 3.5 s") and "--job-timeout" in detail
    everything = TiledModel(lambda _: None)
    everything.restore_planned(torch.zeros(1, 3, H, W))
    assert model.tiles == 4 < everything.tiles  # the check before the fifth tile saw 4 s


def test_stopping_the_server_stops_the_running_job_at_the_next_tile(rng: np.random.Generator) -> None:
    def ctrl_c_during_the_second_tile(n: int) -> None:
        if n == 2:
            app.state.pool.stop_all("the server is stopping")

    model = TiledModel(ctrl_c_during_the_second_tile)
    app = create_app(model)
    with TestClient(app) as client:
        response = client.post("/v1/restore", files=upload(encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))))
    assert response.status_code == 503 and response.json()["detail"].startswith("photo.png: stopped (the server is")
    assert model.tiles == 2


@pytest.fixture
def local_client(identity: uir.Model) -> Iterator[TestClient]:
    """A server that answers to the loopback names only, as ``uir serve`` on 127.0.0.1."""
    app = create_app(identity, limits=Limits(allowed_hosts=LOCAL_HOSTS))
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost", 200),
        ("LocalHost.:9", 200),
        ("[::1]:8000", 200),
        ("evil.example:8000", 400),  # DNS rebinding: a page whose name now points at 127.0.0.1
        ("127.0.0.1.evil.example", 400),
        ("testserver", 400),
        ("", 400),
    ],
)
def test_a_loopback_server_answers_to_local_names_only(local_client: TestClient, host: str, status: int) -> None:
    response = local_client.get("/v1/models", headers={"host": host})
    assert response.status_code == status
    if status == 400:
        detail = response.json()["detail"]
        assert detail.startswith("this server answers to 127.0.0.1, ::1, localhost only") and "\n" not in detail


@pytest.mark.parametrize(
    ("origin", "status"),
    [(None, 200), ("http://127.0.0.1:8000", 200), ("http://evil.example", 403), ("null", 403)],
)
def test_a_post_from_another_site_is_403(
    local_client: TestClient, rng: np.random.Generator, origin: str | None, status: int
) -> None:
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    headers = {} if origin is None else {"origin": origin}
    response = local_client.post("/v1/restore", files=upload(data), headers=headers)
    assert response.status_code == status
    if status == 403:
        assert response.json()["detail"].startswith("cross-site request refused")
    assert local_client.get("/healthz", headers={"origin": "http://evil.example"}).status_code == 200  # reads pass


@pytest.mark.parametrize(
    ("host", "origin", "status"),
    [
        ("127.0.0.1:8000", "https://photos.example.com", 200),  # a proxy that rewrites Host (nginx's default)
        ("photos.example.com", "https://photos.example.com", 200),  # a proxy that forwards Host
        ("127.0.0.1:8000", "https://evil.example", 403),
        ("evil.example", None, 400),
    ],
)
def test_behind_a_reverse_proxy_its_public_name_is_allowed(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator, host: str, origin: str | None, status: int
) -> None:
    app = serve_command(monkeypatch, ["--allowed-host", "Photos.Example.com"]).config.app
    assert app.state.limits.allowed_hosts == (*LOCAL_HOSTS, "photos.example.com")
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    headers = {"host": host} | ({} if origin is None else {"origin": origin})
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.post("/v1/restore", files=upload(data), headers=headers).status_code == status


# Metadata, schema and the page.


def test_health_models_and_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "model": "identity", "pending": 0}
    models = client.get("/v1/models").json()
    assert models["models"] == [{"name": "identity", "labels": [], "device": "cpu", "companion": None}]
    schema = client.get("/openapi.json").json()
    assert {"/v1/restore", "/v1/inspect", "/v1/models", "/healthz"} <= set(schema["paths"])
    assert "image/png" in schema["paths"]["/v1/restore"]["post"]["responses"]["200"]["content"]
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN


def test_page_and_static_files_are_offline(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert sorted(assets) == ["/static/app.js", "/static/style.css"]
    for text in [page.text] + [client.get(asset).text for asset in assets]:
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text, re.IGNORECASE)
        assert not re.search(r"\burl\(", text)  # CSS url(...): fonts or images from elsewhere
    for asset in assets:
        assert client.get(asset).status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_default_model_on_a_small_image(rng: np.random.Generator) -> None:
    with TestClient(create_app(uir.load())) as client:
        data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        response = client.post("/v1/restore", files=upload(data))
    assert response.status_code == 200
    assert response.headers["x-uir-model"] == "nafnet-fr-v2.1"
    assert Image.open(io.BytesIO(response.content)).size == (W, H)


# The command.


def test_serve_without_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'uir[serve]'" in err


def serve_command(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> object:
    """Run ``uir serve --model identity argv`` with uvicorn's loop replaced by nothing; the uvicorn.Server it made."""
    import uvicorn

    servers: list[object] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: servers.append(self))
    assert main(["serve", "--model", "identity", *argv]) == 0
    return servers[0]


def test_serve_command_runs_uvicorn(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    argv = ["--port", "8123", "--queue", "2", "--max-pixels", "1000", "--job-timeout", "7", "--upload-timeout", "9"]
    config = serve_command(monkeypatch, argv).config
    assert (config.host, config.port) == ("127.0.0.1", 8123)
    limits = config.app.state.limits
    assert (limits.queue_size, limits.max_pixels, limits.job_timeout, limits.upload_timeout) == (2, 1000, 7, 9)
    out, err = capsys.readouterr()
    assert "http://127.0.0.1:8123/" in out and err == ""


def test_serve_sets_uvicorn_connection_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from uir.commands.serve import CONNECTION_LIMITS

    config = serve_command(monkeypatch, []).config
    defaults = uvicorn.Config(app=None)
    for key, value in CONNECTION_LIMITS.items():
        assert getattr(config, key) == value, key
    # uvicorn alone takes any number of connections and waits for ever on Ctrl-C
    assert defaults.limit_concurrency is None and defaults.timeout_graceful_shutdown is None
    assert config.limit_concurrency is not None and config.timeout_graceful_shutdown is not None


@pytest.mark.parametrize(
    ("host", "url", "allowed"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/", LOCAL_HOSTS),
        ("::1", "http://[::1]:8000/", LOCAL_HOSTS),
        ("0.0.0.0", "http://0.0.0.0:8000/", None),
        ("::", "http://[::]:8000/", None),
        ("0.0.0.0 --allowed-host photos.example.com", "http://0.0.0.0:8000/", ("0.0.0.0", "photos.example.com")),
    ],
)
def test_serve_host_url_warning_and_allowed_hosts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, host: str, url: str, allowed: tuple | None
) -> None:
    server = serve_command(monkeypatch, ["--host", *host.split()])
    out, err = capsys.readouterr()
    assert f" at {url} " in out
    assert server.config.app.state.limits.allowed_hosts == allowed
    if not host.startswith(("127.", "::1")):  # beyond loopback: one line of warning
        assert err.count("\n") == 1 and "no authentication" in err and "reachable from the network" in err
    else:
        assert err == ""


def test_ctrl_c_stops_the_running_job_before_uvicorn_winds_down(monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve_command(monkeypatch, [])
    pool = server.config.app.state.pool
    started = threading.Event()

    def work(check: Callable[[], None]) -> None:  # a job between its tiles, for at most 30 s
        started.set()
        for _ in range(3000):
            check()
            time.sleep(0.01)

    job = uir.serve.pool.Job()
    future = pool.submit(work, job.check, job=job)
    assert started.wait(30)
    server.handle_exit(signal.SIGINT, None)  # what Ctrl-C calls
    assert server.should_exit  # uvicorn's own handler ran too
    with pytest.raises(uir.serve.pool.JobStopped, match="the server is stopping"):
        future.result(timeout=60)
    with pytest.raises(PoolFull, match="the server is stopping"):
        pool.reserve()
    pool.shutdown()


def test_inspect_uses_the_parts_the_server_was_given(identity, rng: np.random.Generator) -> None:  # noqa: ANN001
    class Classifier:
        def classify(self, lq: object) -> dict[str, float]:
            return {"haze": 0.9, "noise": 0.1}

    app = create_app(identity, inspector=uir.Inspector(classifier=Classifier()))
    with TestClient(app) as client:
        data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        report = client.post("/v1/inspect", files=upload(data, "a.png")).json()
    assert report["degradations"] == {"haze": 0.9, "noise": 0.1}
    assert report["verdict"] == "looks degraded by haze (90%)"


def test_restore_takes_a_task_and_says_what_the_tone_guard_allowed(rng: np.random.Generator) -> None:
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    with TestClient(create_app(uir.load("identity"))) as client:
        response = client.post("/v1/restore?task=noise&task=jpeg", files=upload(data))
        assert response.status_code == 200
        assert response.headers["X-Uir-Tone"].startswith("keep; ")
        assert response.headers["X-Uir-Restored-By"] == "identity"
        bad = client.post("/v1/restore?task=night", files=upload(data))
        assert bad.status_code == 422 and bad.json()["detail"].startswith("unknown task 'night'")


def test_restore_takes_a_strength_and_says_what_was_applied(rng: np.random.Generator) -> None:
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    with TestClient(create_app(uir.load("identity"))) as client:
        response = client.post("/v1/restore?task=noise&strength=0.25", files=upload(data))
        assert response.status_code == 200
        assert response.headers["X-Uir-Strength"] == "0.25"
        assert "strength 0.25 as asked" in response.headers["X-Uir-Tone"]
        untouched = client.post("/v1/restore?strength=0", files=upload(data))
        assert untouched.headers["X-Uir-Restored-By"] == "none"
        for bad in ("1.5", "half", "nan"):
            answer = client.post(f"/v1/restore?strength={bad}", files=upload(data))
            assert answer.status_code == 422 and answer.json()["detail"].startswith("strength must be auto or")
