"""``uir serve``: a page and a JSON API for restoring photos, served by one local process."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import sys
from typing import Any

from uir.api import Inspector, load
from uir.commands._parts import add_part_arguments
from uir.errors import UirError

logger = logging.getLogger(__name__)

# What uvicorn may hold: open connections (beyond: 503), seconds an idle keep-alive connection stays, the largest
# request head in bytes, and seconds Ctrl-C waits for answers in flight (jobs stop at their next tile at once).
CONNECTION_LIMITS = {
    "http": "h11",  # the parser whose head limit below applies (httptools, if installed, would ignore it)
    "limit_concurrency": 64,
    "timeout_keep_alive": 5,
    "h11_max_incomplete_event_size": 16 * 1024,
    "timeout_graceful_shutdown": 10,
}

EPILOG = """examples:
  uir serve                                       the shipped model at http://127.0.0.1:8000/
  uir serve --model runs/nafnet/final.safetensors --port 8080
  uir serve --host 0.0.0.0 --max-upload-mb 20     reachable from other machines (no authentication!)
  curl -F file=@photo.jpg http://127.0.0.1:8000/v1/restore -o restored.png

The page restores dropped photos and shows before | after and what the model saw. The API: POST /v1/restore
(image in, image out: PNG for PNG/JPEG/WebP/BMP, TIFF for TIFF, bit depth and alpha kept), POST /v1/inspect
(image in, JSON out), GET /v1/models, GET /healthz, and the OpenAPI schema at /openapi.json. Everything is served
by uir itself; nothing is loaded from the internet. Needs the serve extra: pip install 'uir[serve]'.

On loopback (the default) the server answers only to the Host names localhost, 127.0.0.1 and [::1], and refuses
posts from other sites' pages. Limits and their memory cost: docs/serving.md.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a restoration page and a JSON API",
        description="Serve a page and a JSON API that restore and inspect photos with one model.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--model", default="default", help="a registered name or a checkpoint path (default: shipped)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--engine", choices=("torch", "onnx"), default="torch", help="what runs the model (default torch)")
    p.add_argument(
        "--companion",
        default="auto",
        metavar="NAME",
        help="the fine-damage companion: auto (default: the one shipped for --model), none, or a name or file",
    )
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MiB (default 50; 413 beyond)")
    p.add_argument(
        "--max-pixels", type=int, default=25_000_000, help="largest image in pixels (default 25 M: ~1.5 GiB to restore)"
    )
    p.add_argument("--workers", type=int, default=1, help="images restored at once (default 1)")
    p.add_argument("--queue", type=int, default=4, help="requests waiting for a worker before 503 (default 4)")
    p.add_argument(
        "--job-timeout", type=float, default=300.0, help="seconds one image may run, then 504 (default 300; 0: none)"
    )
    p.add_argument("--upload-timeout", type=float, default=60.0, help="seconds an upload may take (default 60)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this Host name, and take posts from its pages: a reverse proxy's public name "
        "(repeatable; given beyond loopback, the server answers to these names only)",
    )
    add_part_arguments(p)  # what /v1/inspect and the page report
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    missing = [name for name in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise UirError(f"uir serve needs {', '.join(missing)}: pip install 'uir[serve]'")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.workers < 1 or args.queue < 0:
        raise UirError("--max-upload-mb and --max-pixels must be positive, --workers >= 1 and --queue >= 0")
    if args.job_timeout < 0 or args.upload_timeout <= 0:
        raise UirError("--job-timeout must be >= 0 (0: no limit) and --upload-timeout positive")
    import uvicorn

    from uir.serve.app import Limits, create_app  # optional: the serve extra (FastAPI, uvicorn)
    from uir.serve.guards import LOCAL_HOSTS  # optional: the serve extra

    loopback = is_loopback(args.host)
    model = load(args.model, device=args.device, engine=args.engine, companion=args.companion)
    limits = Limits(
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        workers=args.workers,
        queue_size=args.queue,
        job_timeout=args.job_timeout or None,
        upload_timeout=args.upload_timeout,
        allowed_hosts=allowed_hosts(args.host, args.allowed_host, LOCAL_HOSTS if loopback else None),
    )
    inspector = Inspector.from_files(args.classifier, args.tree, args.perceiver, device=args.device)
    inspector.denoiser = model.companion  # /v1/inspect measures a clean-looking photo's grain as the route does
    app = create_app(model, limits=limits, inspector=inspector)
    if not loopback:
        print(
            f"uir: warning: listening on {args.host}, reachable from the network, with no authentication: "
            "anyone who can reach this port can use it",
            file=sys.stderr,
            flush=True,
        )
    print(f"uir: serving {model.name} at {url(args.host, args.port)} (Ctrl-C to stop)", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", **CONNECTION_LIMITS)
    )
    server.handle_exit = _stopping_jobs_first(server.handle_exit, app.state.pool)  # type: ignore[method-assign]
    server.run()
    return 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("::")
        (True, True, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def allowed_hosts(host: str, extra: list[str], local: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The Host names the server answers to: on loopback (``local``: its names), those, the bound one and
    ``extra``; beyond loopback (``local`` None), any (None) unless ``extra`` names some: then those and the bound
    address.

    Example:
        >>> allowed_hosts("0.0.0.0", [], None), allowed_hosts("::", ["Photos.example.com"], None)
        (None, ('::', 'photos.example.com'))
    """
    names = [host.strip("[]").lower(), *(name.strip("[]").lower() for name in extra)]
    if local is not None:
        return tuple(dict.fromkeys([*local, *names]))
    return tuple(dict.fromkeys(names)) if extra else None


def url(host: str, port: int) -> str:
    """The URL of a server bound to ``host``: IPv6 addresses in brackets.

    Example:
        >>> url("::", 8000), url("127.0.0.1", 80)
        ('http://[::]:8000/', 'http://127.0.0.1:80/')
    """
    bare = host.strip("[]")
    return f"http://[{bare}]:{port}/" if ":" in bare else f"http://{host}:{port}/"


def _stopping_jobs_first(handle_exit: Any, pool: Any) -> Any:
    """uvicorn's signal handler, preceded by stopping every job at its next tile: Ctrl-C waits a tile, not a job."""

    def handle(sig: int, frame: object) -> None:
        pool.stop_all("the server is stopping")
        handle_exit(sig, frame)

    return handle
