"""``uir export``: export a learned model to ONNX (dynamic H and W) and check it against torch on a photo."""

from __future__ import annotations

import argparse
from pathlib import Path

from uir.errors import UirError

EPILOG = """examples:
  uir export --onnx -o nafnet.onnx                                the shipped default model
  uir export --onnx --model runs/nafnet/final.safetensors -o mine.onnx --check photo.png
  uir export --onnx -o nafnet.onnx --opset 18 --no-check
  uir restore photo.jpg -o out/ --model nafnet.onnx              run the export with onnxruntime

The file holds the weights and the model's name, labels and size multiple (ONNX metadata); its input `lq` and
output `restored` are (1, 3, H, W) float32 in [0, 1], any H and W (pad to the size multiple first for sizes
below twice it, as uir does). The check runs torch and onnxruntime on a photo at its own size (by default
examples/clean/chelsea.png, 300×451) and prints the max abs difference and the median time of each, with
the CPU threads of OMP_NUM_THREADS. Needs the onnx extra: pip install 'uir[onnx]'.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a learned model to ONNX and check it with onnxruntime",
        description="Export a learned model to ONNX with dynamic height and width, checked against torch.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("--onnx", action="store_true", help="export to ONNX (the one format so far)")
    p.add_argument("--model", default="default", help="a checkpoint path or a shipped model (default: default)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--check", type=Path, metavar="IMAGE", help="photo to compare on (default: chelsea.png)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with torch")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per engine in the check (default 3)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from uir.export import export_onnx  # heavy: run() loads it, not `uir --help`

    if not args.onnx:
        raise UirError("say which format to export to: --onnx (the one format so far)")
    if args.out.suffix != ".onnx":
        raise UirError(f"{args.out}: the output file must end in .onnx")
    if args.check is not None and args.no_check:
        raise UirError("--check and --no-check contradict each other")
    if args.runs < 1:
        raise UirError(f"--runs must be at least 1, got {args.runs}")
    check = False if args.no_check else (args.check or True)
    report = export_onnx(args.model, args.out, opset=args.opset, check=check, runs=args.runs)
    print(report.summary())
    return 0
