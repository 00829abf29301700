"""Tests for ``uir serve``: the API and page through FastAPI's TestClient, with the identity or a fake model."""

from __future__ import annotations

import io
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import uir
from uir.cli import main

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
with warnings.catch_warnings():  # Starlette >= 1.0 warns that its TestClient wants httpx2; httpx still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from uir.serve.app import Limits, create_app  # noqa: E402

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


class SlowModel:
    """A fake model whose restore waits for ``release`` (to fill the queue deterministically) and adds 0.1."""

    name = "slow-fake"
    labels = ["noise"]
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def restore_tensor(self, image: torch.Tensor) -> torch.Tensor:
        self.started.release()
        assert self.release.wait(30)
        return (image + 0.1).clamp(0, 1)


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
    assert float(response.headers["x-uir-seconds"]) >= 0
    assert "restore;dur=" in response.headers["server-timing"]
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


def test_inspect(client: TestClient, rng: np.random.Generator) -> None:
    data = encode(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    response = client.post("/v1/inspect", files=upload(data, "../../etc/passwd.png"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["path"] == "passwd.png" and (report["width"], report["height"]) == (W, H)
    assert report["piqe_grade"] in ("excellent", "good", "fair", "poor", "bad") and report["verdict"]
    assert report["seconds"] >= 0


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
        def restore_tensor(self, image: torch.Tensor) -> torch.Tensor:
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


# Metadata, schema and the page.


def test_health_models_and_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "model": "identity", "pending": 0}
    models = client.get("/v1/models").json()
    assert models["models"] == [{"name": "identity", "labels": [], "device": "cpu"}]
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
    assert response.headers["x-uir-model"] == "nafnet-small-uir"
    assert Image.open(io.BytesIO(response.content)).size == (W, H)


# The command.


def test_serve_without_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'uir[serve]'" in err


def test_serve_command_runs_uvicorn(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    assert main(["serve", "--model", "identity", "--port", "8123", "--queue", "2", "--max-pixels", "1000"]) == 0
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8123
    limits = calls[0]["app"].state.limits
    assert (limits.queue_size, limits.max_pixels) == (2, 1000)
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out


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
