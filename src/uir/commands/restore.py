"""``uir restore``: restore photos with a model (a learned checkpoint or a classic baseline)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from torch import Tensor

from uir import io
from uir.commands._batch import output_names, run_each
from uir.errors import UirError

logger = logging.getLogger(__name__)

EPILOG = """examples:
  uir restore photo.jpg -o out/                               the shipped default model
  uir restore photo.jpg -o out/ --compare                     also out/photo_compare.jpg, before | after
  uir restore photos/ -o out/ --report                        also out/<name>.json: time, scores before/after
  uir restore photo.jpg -o out/ --model runs/nafnet/final.safetensors
  uir restore photos/ "more/*.png" -o out/ --model nlm          a classic baseline (see uir eval --list)
  uir restore big.tif -o out/ --model M --tile 512 --device cuda
  uir restore photo.jpg -o out/ --engine torch                run in torch even where onnxruntime could

Outputs keep the input's size, bit depth, alpha and gray mode, as OUT/<name>.<ext> with the input's extension
(JPEG inputs are written as PNG, to add no second compression). Inputs are never overwritten. Images larger
than the tile are restored in overlapping tiles, so memory stays bounded. The default model is the one shipped
inside uir (`default`, see docs/models/); `uir eval --list` names the others.

--engine auto (the default) runs learned models on the CPU with onnxruntime when the onnx extra is installed
(pip install 'uir[onnx]'; faster than torch), exporting the model once into ~/.cache/uir/onnx ($UIR_CACHE), and
with torch otherwise. .onnx files (uir export) always run with onnxruntime.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "restore",
        help="restore photos with a model",
        description="Restore photos: files, folders and glob patterns.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--model", default="default", help="a checkpoint path or a registered name (default: the shipped model)"
    )
    p.add_argument("--compare", action="store_true", help="also write OUT/<name>_compare.jpg: input | restored")
    p.add_argument(
        "--report",
        action="store_true",
        help="also write OUT/<name>.json: model, time, and what uir inspect says before and after",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--tile", type=int, help="tile side in pixels (default: the model's; 0 = whole image)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (default 32)")
    p.add_argument(
        "--engine", choices=("auto", "torch", "onnx"), default="auto", help="what runs the model (default auto)"
    )
    p.add_argument("--overwrite", action="store_true", help="allow writing over an input file")
    p.add_argument("-r", "--recursive", action="store_true", help="look for images in sub-folders too")
    p.set_defaults(run=run)


def _suffix(path: Path) -> str:
    ext = path.suffix.lower()
    return ".png" if ext in (".jpg", ".jpeg", ".webp", ".bmp") else ext


def run(args: argparse.Namespace) -> int:
    from uir.api import load
    from uir.viz import before_after

    if args.tile is not None and args.tile < 0:
        raise UirError(f"--tile must be 0 or positive, got {args.tile}")
    logging.getLogger("uir.export").setLevel(logging.INFO)  # say so when the first use exports (~15 s)
    model = load(args.model, device=args.device, engine=args.engine)
    paths = io.list_images(args.inputs, recursive=args.recursive)
    names = {p: Path(f"{out}{_suffix(p)}") for p, out in output_names(paths, args.out, "").items()}

    def work(path: Path) -> None:
        source = io.read_image(path)
        start = time.perf_counter()
        restored = model.restore_tensor(source.image, tile=args.tile, overlap=args.overlap)
        seconds = time.perf_counter() - start
        io.save_like(names[path], restored, source, overwrite=args.overwrite, protected=paths)
        if args.report:
            report = restore_report(path, names[path], model.name, seconds, source.image, restored)
            io.write_text(names[path].with_suffix(".json"), report, overwrite=args.overwrite, protected=paths)
        if args.compare:
            picture = before_after(source.image, restored, model.name)
            compare = names[path].with_name(f"{names[path].stem}_compare.jpg")
            io.write_image(compare, io.to_tensor(picture), overwrite=args.overwrite, protected=paths)

    return run_each(paths, work, desc="restoring")


def restore_report(source: Path, output: Path, model: str, seconds: float, before: Tensor, after: Tensor) -> str:
    """The ``--report`` JSON of one image: files, model, time, and ``uir inspect``'s view before and after."""
    from uir.inspection import Inspector

    inspector = Inspector()
    report = {
        "input": str(source),
        "output": str(output),
        "model": model,
        "seconds": round(seconds, 4),
        "before": inspector.inspect(before, str(source)).to_dict(),
        "after": inspector.inspect(after, str(output)).to_dict(),
    }
    return json.dumps(report, indent=2) + "\n"
