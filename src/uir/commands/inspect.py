"""``uir inspect``: what is wrong with these photos (quality scores, and what the learned parts given see)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uir import io
from uir.commands._batch import run_each
from uir.commands._parts import add_part_arguments
from uir.inspection import GRAIN_CEILING, GRAIN_FLOOR, Inspector

EPILOG = f"""examples:
  uir inspect photo.jpg                                   degradations, PIQE (with its grade), NIQE, a verdict
  uir inspect photos/ --json > report.json                one JSON object per image, in a list
  uir inspect photo.jpg --classifier runs/nafnet_maskdcpt_pretrain/classifier.safetensors
  uir inspect photo.jpg --tree runs/nafnet_amirnet/final.safetensors
  uir inspect photo.jpg --classifier none                 the no-reference scores alone

--classifier takes a MaskDCPT classifier (export_classifier's file, or the pre-training run folder) and names the
degradation types with their probabilities; by default it is the one shipped with uir, which knows the five types
the default model restores (noise, haze, rain-streaks, motion-blur, low-light) and clean. --tree takes an AMIRNet
model and gives the image's path through its tree; --perceiver takes a quality perceiver (low / medium / high
tiers). --denoiser (by default the default model's fine-damage companion) measures the grain of a photo the
classifier calls clean, as `uir restore` does: with {GRAIN_FLOOR:g} of 255 or more in its flat parts it is called
grainy (real camera noise the classifier does not see; noisy above {GRAIN_CEILING:g}). PIQE's grade: 0-20 excellent,
21-35 good, 36-50 fair, 51-80 poor, 81-100 bad. Learned parts look at the centre 512x512 crop at full resolution;
the scores are taken on the image shrunk to a 1024 long side.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="say what is wrong with photos",
        description="Inspect photos: no-reference quality, degradation types, tree path, quality tier.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    add_part_arguments(p)
    p.add_argument(
        "--denoiser",
        default="default",
        help="the network that measures a clean-looking photo's grain (default: the default model's fine-damage "
        "companion; none: not measured)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("-r", "--recursive", action="store_true", help="look for images in sub-folders too")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    inspector = Inspector.from_files(
        args.classifier, args.tree, args.perceiver, device=args.device, denoiser=args.denoiser
    )
    paths = io.list_images(args.inputs, recursive=args.recursive)
    reports = []

    def work(path: Path) -> None:
        report = inspector.inspect(io.read_image(path).image, str(path))
        reports.append(report.to_dict())
        if not args.json:
            print(report.to_text(), flush=True)

    code = run_each(paths, work, desc="inspecting")
    if args.json:
        print(json.dumps(reports, indent=2))
    return code
