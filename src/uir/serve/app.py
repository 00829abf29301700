"""The FastAPI application behind ``uir serve``: the page, ``/v1/restore``, ``/v1/inspect``, models and health.

FastAPI (with uvicorn to run it) was chosen because it works fully offline, is tested in-process with its
``TestClient`` (no socket, no browser), and writes the OpenAPI schema of the API from the code itself. The
interactive docs pages are turned off: they load their scripts from a CDN, and this server takes nothing from the
internet.

Uploads are decoded in memory (``uir.io.decode_image``) and results encoded in a private temporary folder that is
always removed: nothing a client sends becomes a path. Inference runs in a bounded ``InferencePool``; a full queue
answers 503 with ``Retry-After``. Every error is a one-line ``{"detail": ...}``, never a traceback.

What guards the server, outermost first: the Host and Origin headers (``HostGuard``: DNS rebinding, cross-site
posts), the body size (``BodyLimit``), a pool place taken before the body is read (``Admission``: a busy server
refuses an upload without receiving it, and the body must arrive within ``upload_timeout``), the pixel count read
from the header, the decoder's own checks (truncated files), and a per-job time limit checked between tiles. A job
whose client has gone is dropped if it waits and stopped at its next tile if it runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image

from uir import io
from uir.api import TASKS, Inspector, Model, check_strength, check_task
from uir.errors import UirError
from uir.serve.guards import SLOT, Admission, BodyLimit, HostGuard
from uir.serve.pool import InferencePool, Job, JobStopped, JobTimeout, PoolFull
from uir.version import __version__

logger = logging.getLogger(__name__)

STATIC = resources.files("uir.serve") / "static"
# What ``uir restore`` writes for each input format: JPEG, WebP and BMP become PNG (no second compression).
MEDIA_TYPES = {".png": "image/png", ".tiff": "image/tiff"}
# Room for the multipart envelope around the file itself.
_FORM_SLACK = 64 * 1024
Upload = Annotated[UploadFile, File(description="a PNG, JPEG, TIFF, BMP or WebP file")]
_FORM_HELP = "send the image as multipart/form-data in the field 'file' (curl -F file=@photo.jpg)"
# The requests that run a job: they take a pool place before their body is read.
_JOB_PATHS = ("/v1/restore", "/v1/inspect")


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Attributes:
        max_upload_mb: largest upload in MiB (413 beyond).
        max_pixels: largest image in pixels, width times height (413 beyond), checked before decoding. A running
            restore with the default model peaks near 60 MiB per megapixel (1.5 GiB at 25 M; docs/serving.md).
        workers: inference threads.
        queue_size: requests allowed to wait for a worker (503 with ``Retry-After`` beyond); uploads being
            received count among them.
        retry_after: seconds a refused client is told to wait.
        job_timeout: seconds one image may take once a worker runs it; stopped at the next tile beyond (504).
            None: no limit.
        upload_timeout: seconds the whole upload may take to arrive once its place is taken (408 beyond).
        allowed_hosts: the Host names served (any port; ``::1`` for ``[::1]``); others get 400. None: any.
    """

    max_upload_mb: float = 50.0
    max_pixels: int = 25_000_000
    workers: int = 1
    queue_size: int = 4
    retry_after: int = 5
    job_timeout: float | None = 300.0
    upload_timeout: float = 60.0
    allowed_hosts: tuple[str, ...] | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def create_app(model: Model, *, limits: Limits | None = None, inspector: Inspector | None = None) -> FastAPI:
    """The application serving ``model`` (already loaded: the one model in memory) within ``limits``.

    Args:
        model: what ``uir.load`` returned (or any object with ``name``, ``labels``, ``device`` and
            ``restore_planned((1, 3, H, W), task=..., stop_check=fn) -> [(restored, plan)]``, calling ``fn``
            between tiles).
        limits: upload size, pixel count, pool and queue, time limits and Host names; defaults from ``Limits``
            (any Host: ``uir serve`` on loopback passes ``LOCAL_HOSTS``).
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
    # The last added runs first: hosts, then size, then a pool place.
    app.add_middleware(
        Admission,
        pool=pool,
        paths=_JOB_PATHS,
        retry_after=limits.retry_after,
        upload_timeout=limits.upload_timeout,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_bytes + _FORM_SLACK, limit_mb=limits.max_upload_mb)
    app.add_middleware(HostGuard, allowed_hosts=limits.allowed_hosts)
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
        info["companion"] = None if model.companion is None else model.companion.name
        return {"models": [info], "limits": {"max_upload_mb": limits.max_upload_mb, "max_pixels": limits.max_pixels}}

    @app.post(
        "/v1/restore",
        summary="Restore an image",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/tiff": {}}, "description": "the restored image"}},
    )
    async def restore(
        request: Request,
        file: Upload,
        task: Annotated[list[str], Query(description=f"auto, or what is wrong: {', '.join(TASKS[1:])}")] = ["auto"],  # noqa: B006
        strength: Annotated[str, Query(description="how much of the correction: 0-1, or auto")] = "auto",
    ) -> Response:
        """The restored image at full size: PNG for PNG, JPEG, WebP and BMP inputs, TIFF for TIFF; bit depth,
        alpha and gray mode kept. ``?task=noise&task=jpeg`` says what is wrong (default ``auto``: the exposure is
        kept unless the photo is underexposed; see ``uir restore --help``); ``?strength=0.5`` scales the correction
        (default ``auto``: photos that look clean with high confidence, and that the model would change little or
        that are dark, come back as they are). Headers:
        ``X-Uir-Model``, ``X-Uir-Seconds`` (the restoration's time: both networks' where the companion ran),
        ``X-Uir-Tone`` (what the tone guard allowed, and why), ``X-Uir-Strength`` (the strength applied),
        ``X-Uir-Restored-By`` (the network whose output came back: the model or its fine-damage companion; ``none``
        when the input came back) and ``Server-Timing`` (decode, restore, encode)."""
        try:
            names, amount = check_task(task), check_strength(strength)
        except UirError as err:
            raise HTTPException(422, str(err)) from None
        name, data = await _upload(file, limits)
        body, suffix, timings, plan = await _in_pool(
            request, name, pool, limits, _restore_job, model, data, name, names, amount
        )
        stem = PurePosixPath(name).stem or "image"
        headers = {
            "X-Uir-Model": model.name,
            "X-Uir-Seconds": f"{timings['restore']:.3f}",
            "X-Uir-Tone": f"{plan.tone}; {plan.reason}".encode("ascii", "replace").decode(),
            "X-Uir-Strength": f"{plan.strength:g}",
            "X-Uir-Restored-By": plan.restored_by or "none",
            "Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items()),
            "Content-Disposition": _attachment(f"{stem}_restored{suffix}"),
        }
        return Response(body, media_type=MEDIA_TYPES[suffix], headers=headers)

    @app.post("/v1/inspect", summary="Say what is wrong with an image")
    async def inspect(request: Request, file: Upload) -> dict[str, Any]:
        """PIQE (with its grade), NIQE and a verdict (``uir inspect --json``), plus ``seconds`` taken."""
        name, data = await _upload(file, limits)
        return await _in_pool(request, name, pool, limits, _inspect_job, inspector, data, name)


def _restore_job(
    model: Model, data: bytes, name: str, task: tuple[str, ...], strength: float | str, check: Callable[[], None]
) -> tuple[bytes, str, dict[str, float], Any]:
    """Decode, restore and encode like ``uir restore``; the encoded bytes, their suffix, each step's seconds and
    the plan (what the tone guard allowed).

    ``check`` raises to stop the job; the model calls it between tiles.
    """
    start = time.perf_counter()
    source = io.decode_image(data, name)
    decoded = time.perf_counter()
    ((restored, plan),) = model.restore_planned(source.image, task=task, strength=strength, stop_check=check)
    restored = restored.cpu()
    done = time.perf_counter()
    suffix = io.restored_suffix(f".{source.format}")
    with tempfile.TemporaryDirectory(prefix="uir-serve-") as folder:
        body = io.save_like(Path(folder) / f"restored{suffix}", restored, source).read_bytes()
    timings = {"decode": decoded - start, "restore": done - decoded, "encode": time.perf_counter() - done}
    return body, suffix, timings, plan


def _inspect_job(inspector: Inspector, data: bytes, name: str, check: Callable[[], None]) -> dict[str, Any]:
    start = time.perf_counter()
    image = io.decode_image(data, name).image
    check()
    report = inspector.inspect(image).to_dict()
    report["path"] = name
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


async def _in_pool(request: Request, name: str, pool: InferencePool, limits: Limits, fn: Any, *args: Any) -> Any:
    """Run ``fn(*args, job.check)`` in the pool, in the place the request reserved, while watching its client.

    User errors become 400, a full queue or a stop 503, the time limit 504, anything else a one-line 500. A client
    that goes away drops its job (or stops it at the next tile), and so does the request being cancelled.
    """
    job = Job(limits.job_timeout)
    try:
        future = pool.submit(fn, *args, job.check, job=job, slot=request.scope.get(SLOT))
    except PoolFull as err:
        raise _busy(limits, err) from err
    result = asyncio.wrap_future(future)
    result.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even when nobody waits
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({result, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        job.stop("the request was cancelled")
        future.cancel()
        raise
    finally:
        gone.cancel()
    if not result.done():  # the client has gone: nobody will read an answer
        job.stop("the client has gone")
        future.cancel()
        raise HTTPException(503, "the client has gone")
    if result.cancelled():  # dropped from the queue by the pool's shutdown
        raise HTTPException(503, f"{name}: stopped (the server is stopping)")
    try:
        return result.result()
    except JobTimeout as err:
        detail = f"{name}: stopped after this server's limit of {limits.job_timeout:g} s per image"
        raise HTTPException(504, f"{detail} (uir serve --job-timeout); send a smaller image") from err
    except JobStopped as err:
        retry = {"Retry-After": str(limits.retry_after)}
        raise HTTPException(503, f"{name}: stopped ({err}); retry in {limits.retry_after} s", headers=retry) from err
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
    # In a thread: reading a header walks its segments in Python, and the event loop must keep answering others.
    await asyncio.to_thread(_check_pixels, data, name, limits.max_pixels)
    return name, data


async def _disconnected(request: Request) -> None:
    """Return when the client has gone (the body is read, so the next ASGI message is the disconnect)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # the server cannot say any more: take the client as gone
        return


def _busy(limits: Limits, err: Exception) -> HTTPException:
    detail = f"the server is busy ({err}); retry in {limits.retry_after} s"
    return HTTPException(503, detail, headers={"Retry-After": str(limits.retry_after)})


def _check_pixels(data: bytes, name: str, max_pixels: int) -> None:
    """413 when the header announces more than ``max_pixels`` (read before any decoding); else let decoding judge.

    A JPEG is first checked for a cut or absurdly many segments (400), before Pillow walks its header.
    """
    if data[:2] == b"\xff\xd8":
        try:
            io.check_jpeg(data, name)
        except UirError as err:
            raise HTTPException(400, _one_line(str(err))) from err
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
