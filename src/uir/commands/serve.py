"""``uir serve``: a page and a JSON API for restoring photos, served by one local process."""

from __future__ import annotations

import argparse
import importlib.util
import logging

from uir.commands._parts import add_part_arguments
from uir.errors import UirError

logger = logging.getLogger(__name__)

EPILOG = """examples:
  uir serve                                       the shipped model at http://127.0.0.1:8000/
  uir serve --model runs/nafnet/final.safetensors --port 8080
  uir serve --host 0.0.0.0 --max-upload-mb 20     reachable from other machines (no authentication!)
  curl -F file=@photo.jpg http://127.0.0.1:8000/v1/restore -o restored.png

The page restores dropped photos and shows before | after and what the model saw. The API: POST /v1/restore
(image in, image out: PNG for PNG/JPEG/WebP/BMP, TIFF for TIFF, bit depth and alpha kept), POST /v1/inspect
(image in, JSON out), GET /v1/models, GET /healthz, and the OpenAPI schema at /openapi.json. Everything is served
by uir itself; nothing is loaded from the internet. Needs the serve extra: pip install 'uir[serve]'.
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
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MiB (default 50; 413 beyond)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image in pixels (default 40 M)")
    p.add_argument("--workers", type=int, default=1, help="images restored at once (default 1)")
    p.add_argument("--queue", type=int, default=4, help="requests waiting for a worker before 503 (default 4)")
    add_part_arguments(p)  # what /v1/inspect and the page report
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    missing = [name for name in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise UirError(f"uir serve needs {', '.join(missing)}: pip install 'uir[serve]'")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.workers < 1 or args.queue < 0:
        raise UirError("--max-upload-mb and --max-pixels must be positive, --workers >= 1 and --queue >= 0")
    import uvicorn

    import uir
    from uir.serve.app import Limits, create_app

    model = uir.load(args.model, device=args.device, engine=args.engine)
    limits = Limits(
        max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels, workers=args.workers, queue_size=args.queue
    )
    inspector = uir.Inspector.from_files(args.classifier, args.tree, args.perceiver, device=args.device)
    app = create_app(model, limits=limits, inspector=inspector)
    print(f"uir: serving {model.name} at http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
