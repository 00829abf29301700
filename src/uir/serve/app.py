"""The FastAPI application behind ``uir serve``: the page, ``/v1/restore``, ``/v1/inspect``, models and health.

FastAPI (with uvicorn to run it) was chosen because it works fully offline, is tested in-process with its
``TestClient`` (no socket, no browser), and writes the OpenAPI schema of the API from the code itself. The
interactive docs pages are turned off: they load their scripts from a CDN, and this server takes nothing from the
internet.

Uploads are decoded in memory (``uir.io.decode_image``) and results encoded in a private temporary folder that is
always removed: nothing a client sends becomes a path. Inference runs in a bounded ``InferencePool``; a full queue
answers 503 with ``Retry-After``. Every error is a one-line ``{"detail": ...}``, never a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uir import __version__, io
from uir.api import Inspector, Model
from uir.errors import UirError
from uir.serve.pool import InferencePool, PoolFull

logger = logging.getLogger(__name__)

STATIC = resources.files("uir.serve") / "static"
# What ``uir restore`` writes for each input format: JPEG, WebP and BMP become PNG (no second compression).
MEDIA_TYPES = {".png": "image/png", ".tiff": "image/tiff"}
# Room for the multipart envelope around the file itself.
_FORM_SLACK = 64 * 1024
Upload = Annotated[UploadFile, File(description="a PNG, JPEG, TIFF, BMP or WebP file")]
_FORM_HELP = "send the image as multipart/form-data in the field 'file' (curl -F file=@photo.jpg)"


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Attributes:
        max_upload_mb: largest upload in MiB (413 beyond).
        max_pixels: largest image in pixels, width times height (413 beyond), checked before decoding.
        workers: inference threads.
        queue_size: requests allowed to wait for a worker (503 with ``Retry-After`` beyond).
        retry_after: seconds a refused client is told to wait.
    """

    max_upload_mb: float = 50.0
    max_pixels: int = 40_000_000
    workers: int = 1
    queue_size: int = 4
    retry_after: int = 5

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def create_app(model: Model, *, limits: Limits | None = None, inspector: Inspector | None = None) -> FastAPI:
    """The application serving ``model`` (already loaded: the one model in memory) within ``limits``.

    Args:
        model: what ``uir.load`` returned (or any object with ``name``, ``labels``, ``device`` and
            ``restore_tensor((1, 3, H, W)) -> (1, 3, H, W)``).
        limits: upload size, pixel count, pool and queue; defaults from ``Limits``.
        inspector: what ``/v1/inspect`` uses (``Inspector.from_files`` with a classifier, tree or perceiver);
            default: the scores alone.

    Returns:
        A FastAPI app; ``app.state.pool`` is its ``InferencePool``.
    """
    limits = limits or Limits()
    inspector = inspector or Inspector()
    pool = InferencePool(workers=limits.workers, queue_size=limits.queue_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(
        title="uir",
        version=__version__,
        description="Restore and inspect photos with one all-in-one restoration model.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.model = model
    app.state.limits = limits
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _add_routes(app, model, inspector, pool, limits)
    app.add_middleware(_BodyLimit, max_bytes=limits.max_bytes + _FORM_SLACK, limit_mb=limits.max_upload_mb)
    return app


def _add_routes(app: FastAPI, model: Model, inspector: Inspector, pool: InferencePool, limits: Limits) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/healthz", summary="Liveness: the model is loaded")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": model.name, "pending": pool.pending}

    @app.get("/v1/models", summary="The model this server runs")
    def models() -> dict[str, Any]:
        info = {"name": model.name, "labels": list(model.labels), "device": str(model.device)}
        return {"models": [info], "limits": {"max_upload_mb": limits.max_upload_mb, "max_pixels": limits.max_pixels}}

    @app.post(
        "/v1/restore",
        summary="Restore an image",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/tiff": {}}, "description": "the restored image"}},
    )
    async def restore(file: Upload) -> Response:
        """The restored image at full size: PNG for PNG, JPEG, WebP and BMP inputs, TIFF for TIFF; bit depth,
        alpha and gray mode kept. Headers: ``X-Uir-Model``, ``X-Uir-Seconds`` (the model's time) and
        ``Server-Timing`` (decode, restore, encode)."""
        name, data = await _upload(file, limits)
        body, suffix, timings = await _in_pool(pool, limits, _restore_job, model, data, name)
        stem = PurePosixPath(name).stem or "image"
        headers = {
            "X-Uir-Model": model.name,
            "X-Uir-Seconds": f"{timings['restore']:.3f}",
            "Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items()),
            "Content-Disposition": _attachment(f"{stem}_restored{suffix}"),
        }
        return Response(body, media_type=MEDIA_TYPES[suffix], headers=headers)

    @app.post("/v1/inspect", summary="Say what is wrong with an image")
    async def inspect(file: Upload) -> dict[str, Any]:
        """PIQE (with its grade), NIQE and a verdict (``uir inspect --json``), plus ``seconds`` taken."""
        name, data = await _upload(file, limits)
        return await _in_pool(pool, limits, _inspect_job, inspector, data, name)


def _restore_job(model: Model, data: bytes, name: str) -> tuple[bytes, str, dict[str, float]]:
    """Decode, restore and encode like ``uir restore``; the encoded bytes, their suffix and each step's seconds."""
    start = time.perf_counter()
    source = io.decode_image(data, name)
    decoded = time.perf_counter()
    restored = model.restore_tensor(source.image)
    done = time.perf_counter()
    suffix = io.restored_suffix(f".{source.format}")
    with tempfile.TemporaryDirectory(prefix="uir-serve-") as folder:
        body = io.save_like(Path(folder) / f"restored{suffix}", restored, source).read_bytes()
    timings = {"decode": decoded - start, "restore": done - decoded, "encode": time.perf_counter() - done}
    return body, suffix, timings


def _inspect_job(inspector: Inspector, data: bytes, name: str) -> dict[str, Any]:
    start = time.perf_counter()
    report = inspector.inspect(io.decode_image(data, name).image).to_dict()
    report["path"] = name
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


async def _in_pool(pool: InferencePool, limits: Limits, fn: Any, *args: Any) -> Any:
    """Run a job in the pool; user errors become 400, a full queue 503, anything else a one-line 500."""
    try:
        return await pool.run(fn, *args)
    except PoolFull as err:
        detail = f"the server is busy ({err}); retry in {limits.retry_after} s"
        raise HTTPException(503, detail, headers={"Retry-After": str(limits.retry_after)}) from err
    except UirError as err:
        raise HTTPException(400, _one_line(str(err))) from err
    except Exception as err:
        logger.exception("request failed")
        raise HTTPException(500, f"internal error ({type(err).__name__}); the server keeps running") from err


async def _upload(file: UploadFile, limits: Limits) -> tuple[str, bytes]:
    """The upload's display name (never used as a path) and bytes, within the size and pixel limits."""
    name = _display_name(file.filename)
    data = await file.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        detail = f"{name}: larger than this server's limit of {limits.max_upload_mb:g} MiB (uir serve --max-upload-mb)"
        raise HTTPException(413, detail)
    _check_pixels(data, name, limits.max_pixels)
    return name, data


def _check_pixels(data: bytes, name: str, max_pixels: int) -> None:
    """413 when the header announces more than ``max_pixels`` (read before any decoding); else let decoding judge."""
    try:
        with Image.open(BytesIO(data)) as pil:
            width, height = pil.size
    except Image.DecompressionBombError as err:
        raise HTTPException(413, f"{name}: absurd image size ({_one_line(str(err))})") from err
    except Exception:
        return  # not an image, or a damaged one: decode_image says so in uir's words
    if width * height > max_pixels:
        detail = f"{name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, over this server's limit of"
        raise HTTPException(413, f"{detail} {max_pixels / 1e6:g} (uir serve --max-pixels)")


def _display_name(filename: str | None) -> str:
    """The client's file name reduced to a safe base name for messages and downloads; ``upload`` when none."""
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = re.sub(r'["<>]', "_", base).strip(" .")[:120]
    return base or "upload"


def _attachment(filename: str) -> str:
    """A Content-Disposition for ``filename``: an ASCII fallback, and the UTF-8 name (RFC 6266), since headers
    are latin-1 and a client's name may be anything."""
    fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    where = ", ".join(".".join(str(p) for p in e.get("loc", ())) + f": {e.get('msg', '')}" for e in errors[:3])
    return JSONResponse({"detail": f"bad request ({where}): {_FORM_HELP}"}, status_code=422)


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, told by Content-Length or counted as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int, limit_mb: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit_mb = limit_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI re-raises an HTTPException from the body reader as it is.
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> str:
        return f"upload larger than this server's limit of {self.limit_mb:g} MiB (uir serve --max-upload-mb)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps({"detail": self._detail()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
