"""``uir restore``: restore photos with a model (a learned checkpoint or a classic baseline)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from uir import io
from uir.api import (
    BLUR_SMALL_CHANGE_DB,
    GRAIN_CEILING,
    GRAIN_FLOOR,
    SMALL_CHANGE_DB,
    Inspector,
    Plan,
    check_strength,
    check_task,
    load,
)
from uir.commands._batch import output_names, run_each
from uir.commands._parts import add_part_arguments
from uir.errors import UirError
from uir.viz import before_after

if TYPE_CHECKING:
    from uir.inspection import Inspector

logger = logging.getLogger(__name__)

EPILOG = f"""examples:
  uir restore photo.jpg                                       the shipped default model, into restored/
  uir restore photo.jpg -o out/                               into out/
  uir restore photo.jpg -o out/ --compare                     also out/photo_compare.jpg, before | after
  uir restore photos/ -o out/ --report                        also out/<name>.json: time, degradations, scores
  uir restore photos/ -o out/ --skip-existing                 after a crash: only what is not written yet
  torchrun --nproc_per_node 4 -m uir restore photos/ -o out/ --device cuda     one GPU per process
  uir restore photo.jpg -o out/ --model runs/nafnet/final.safetensors
  uir restore photos/ "more/*.png" -o out/ --model nlm          a classic baseline (see uir eval --list)
  uir restore big.tif -o out/ --model M --tile 512 --device cuda
  uir restore photo.jpg -o out/ --engine torch                run in torch even where onnxruntime could
  uir restore dusk.jpg -o out/ --task noise                   only the grain: exposure, colour, contrast kept
  uir restore dark.png -o out/ --task low-light               brighten it (low-light enhancement)
  uir restore photo.jpg -o out/ --strength 0.5                half the correction: between input and output
  uir restore photo.jpg -o out/ --companion none              the default network alone, no fine-damage companion

What is restored (--task): `auto` (the default) keeps every photo's exposure, letting a model brighten it only
where the analysis (the shipped degradation classifier and the mean luminance) calls it underexposed; darker is
allowed (haze and rain removal darken). Naming what is wrong decides it yourself: a name holding low light allows
brightening; haze, rain or snow allow darkening only; the rest (noise, blur, JPEG...) keep the input's exposure,
colour and contrast above 16 px and change finer detail only. --report writes the decision and its reason.

How much (--strength): a number from 0 to 1 scales the correction (0.5: halfway between the input and the model's
output; 0: the input, unchanged); `auto` (the default) leaves a photo as it is where the analysis calls it clean
with high confidence and the model would change it little or the photo is dark (the report says so), and restores
the rest fully.

Fine damage: the default model has a companion network for grain and compression (nafnet-fr-fine2). A photo whose
restoration by the model stays at least {SMALL_CHANGE_DB:g} dB (PSNR) from it (real camera noise, a good JPEG) is
restored by the companion instead, its exposure and colour kept: under --task auto unless the photo looks
underexposed or its likeliest type is rain streaks; with --task naming only noise, camera-noise or jpeg; at any
--strength. Under --task auto a photo whose likeliest type is clean goes to it too when the companion finds grain in
its flat parts ({GRAIN_FLOOR:g}-{GRAIN_CEILING:g} of 255; the report's `grain`); a clean-looking one without such
grain --strength auto leaves as it is. Under --task auto, where the likeliest type is motion blur,
{BLUR_SMALL_CHANGE_DB:g} dB is close enough: the model barely deblurs, and sharpens the grain of a soft photo. The
report's `restored_by` says which network's output came back; --companion none turns it off.

Outputs keep the input's size, bit depth, alpha and gray mode, as OUT/<name>.<ext> with the input's extension
(JPEG inputs are written as PNG, to add no second compression). Inputs are never overwritten. Images larger
than the tile are restored in overlapping tiles, so memory stays bounded. The default model is the one shipped
inside uir (`default`, see docs/models/); `uir eval --list` names the others.

Under torchrun (or any launcher that sets RANK and WORLD_SIZE, across nodes too) every process takes every
WORLD_SIZE-th input, in sorted order, and writes the same files a single process would; with --device cuda each
uses GPU LOCAL_RANK. Outputs are written atomically, so with --skip-existing a file that exists is done.

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
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument(
        "-o", "--out", type=Path, default=Path("restored"), help="output folder (default: restored/, made if needed)"
    )
    p.add_argument(
        "--model", default="default", help="a checkpoint path or a registered name (default: the shipped model)"
    )
    p.add_argument(
        "--task",
        nargs="+",
        default=["auto"],
        metavar="NAME",
        help="what is wrong: auto (default: the analysis decides) or degradation names, e.g. --task noise jpeg",
    )
    p.add_argument(
        "--strength",
        default="auto",
        metavar="S",
        help="how much of the correction: 0-1, or auto (default: clean-looking photos are left as they are)",
    )
    p.add_argument("--compare", action="store_true", help="also write OUT/<name>_compare.jpg: input | restored")
    p.add_argument(
        "--report",
        action="store_true",
        help="also write OUT/<name>.json: model, time, and what uir inspect says before and after",
    )
    add_part_arguments(p, classifier_only=True)  # what --report names
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--tile", type=int, help="tile side in pixels (default: the model's; 0 = whole image)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (default 32)")
    p.add_argument(
        "--engine", choices=("auto", "torch", "onnx"), default="auto", help="what runs the model (default auto)"
    )
    p.add_argument(
        "--companion",
        default="auto",
        metavar="NAME",
        help="the fine-damage companion: auto (default: the one shipped for --model), none, or a name or file",
    )
    p.add_argument("--overwrite", action="store_true", help="allow writing over an input file")
    p.add_argument("--skip-existing", action="store_true", help="skip inputs whose output file already exists")
    p.add_argument("-r", "--recursive", action="store_true", help="look for images in sub-folders too")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    if args.tile is not None and args.tile < 0:
        raise UirError(f"--tile must be 0 or positive, got {args.tile}")
    taken = [t for t in args.task if Path(t).exists()]
    if taken:
        raise UirError(f"--task {taken[0]!r} is a file: put --task after the inputs, or write --task=NAME")
    if not args.inputs:
        raise UirError("say what to restore: one or more image files, folders or glob patterns")
    task, strength = check_task(args.task), check_strength(args.strength)
    logging.getLogger("uir.export").setLevel(logging.INFO)  # say so when the first use exports (~15 s)
    rank, world_size, local_rank = shard()
    device = args.device if world_size == 1 or not args.device.startswith("cuda") else f"cuda:{local_rank}"
    paths = io.list_images(args.inputs, recursive=args.recursive)
    names = output_names(paths, args.out, lambda p: io.restored_suffix(p.suffix))
    mine = sorted(paths)[rank::world_size]
    if world_size > 1:
        print(f"uir: process {rank + 1} of {world_size}: {len(mine)} of {len(paths)} input(s)", file=sys.stderr)
    if args.skip_existing:
        done = [p for p in mine if names[p].is_file()]
        mine = [p for p in mine if p not in done]
        if done:
            logger.warning("skipping %d input(s) whose output exists (--skip-existing)", len(done))
    if not mine:
        return 0
    model = load(args.model, device=device, engine=args.engine, companion=args.companion)
    inspector = Inspector.from_files(args.classifier, device=device) if args.report else None
    if inspector is not None and inspector.classifier is not None:
        model.analysis = inspector  # one classifier decides the plan and reports before and after
    if inspector is not None:
        inspector.denoiser = model.companion  # the report's grain, measured as the route measures it

    brightened: list[Path] = []
    untouched: list[Path] = []
    finer: list[Path] = []

    def work(path: Path) -> None:
        source = io.read_image(path)
        start = time.perf_counter()
        ((restored, plan),) = model.restore_planned(
            source.image, task=task, strength=strength, tile=args.tile, overlap=args.overlap
        )
        restored = restored.to(source.image.dtype).cpu()
        seconds = time.perf_counter() - start
        if plan.tone == "free" and plan.strength > 0:
            brightened.append(path)
        if plan.strength == 0 and strength == "auto":
            untouched.append(path)
        if model.companion is not None and plan.restored_by == model.companion.name:
            finer.append(path)
        io.save_like(names[path], restored, source, overwrite=args.overwrite, protected=paths)
        if inspector is not None:
            report = restore_report(path, names[path], model.name, seconds, source.image, restored, inspector, plan)
            io.write_text(names[path].with_suffix(".json"), report, overwrite=args.overwrite, protected=paths)
        if args.compare:
            picture = before_after(source.image, restored, plan.restored_by or "input, left as it is")
            compare = names[path].with_name(f"{names[path].stem}_compare.jpg")
            io.write_image(compare, io.to_tensor(picture), overwrite=args.overwrite, protected=paths)

    code = run_each(mine, work, desc="restoring" if world_size == 1 else f"restoring ({rank + 1}/{world_size})")
    if code == 0:
        print(f"uir: restored {len(mine)} image(s) into {args.out}{os.sep}", file=sys.stderr)
        if task == ("auto",) and brightened:
            said = ", ".join(p.name for p in brightened[:5]) + (", ..." if len(brightened) > 5 else "")
            print(f"uir: {len(brightened)} looked underexposed and may have been brightened: {said}", file=sys.stderr)
        if untouched:
            said = ", ".join(p.name for p in untouched[:5]) + (", ..." if len(untouched) > 5 else "")
            print(f"uir: {len(untouched)} looked clean and were left as they are: {said}", file=sys.stderr)
        if finer and model.companion is not None:
            said = ", ".join(p.name for p in finer[:5]) + (", ..." if len(finer) > 5 else "")
            who = f"{model.companion.name} (fine damage: grain, compression)"
            print(f"uir: {len(finer)} were restored by {who}: {said}", file=sys.stderr)
    return code


def shard() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` from the environment (torchrun sets them); ``(0, 1, 0)`` alone."""
    try:
        rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as err:
        raise UirError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({err})") from err
    if not 0 <= rank < world_size:
        raise UirError(f"RANK {rank} is not in [0, WORLD_SIZE {world_size})")
    return rank, world_size, local_rank


def restore_report(
    source: Path,
    output: Path,
    model: str,
    seconds: float,
    before: Tensor,
    after: Tensor,
    inspector: Inspector,
    plan: Plan | None = None,
) -> str:
    """The ``--report`` JSON of one image: files, model, time, what was done and why (``plan``), and
    ``inspector``'s view before and after."""
    report = {
        "input": str(source),
        "output": str(output),
        "model": model,
        "seconds": round(seconds, 4),
        **({"plan": plan.to_dict()} if plan is not None else {}),
        "before": inspector.inspect(before, str(source), None if plan is None else plan.grain).to_dict(),
        "after": inspector.inspect(after, str(output)).to_dict(),
    }
    return json.dumps(report, indent=2) + "\n"
