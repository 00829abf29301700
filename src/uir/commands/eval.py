"""``uir eval``: run models on a benchmark protocol and write JSON, a markdown table and image grids."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from uir.errors import UirError

EPILOG = """examples:
  uir eval --model identity nlm dcp classic-best --benchmark uir-5d --data-root ../shared/data --out runs/eval
  uir eval --model runs/base/best.safetensors --benchmark 3d --data-root ~/datasets --out runs/eval3d
  uir eval --model identity --benchmark real --data-root ../shared/data --out runs/real --limit 5
  uir eval --model default --benchmark real-noise --data-root ../shared/data --out runs/polyu --task auto
  uir eval --model default nlm --pairs my/noisy my/clean --out runs/mine
  uir eval --model default --benchmark fidelity --data-root ../shared/data --out runs/fid --task auto --strength 0.5
  uir eval --list

--task scores the models as `uir restore` runs them (the analysis and the tone guard included; `auto` is what
`uir restore` does by default; --strength as `uir restore --strength`, default auto); without them, the bare
networks. --pairs scores any two folders of images with the
same names (degraded, clean); every image needs its partner. Each set's table also gives the tone: the outputs'
mean-luminance ratio to their inputs and colour shift (uir.metrics.tone).

Benchmarks: 3d, 5d, uir-5d, unseen-noise, mixed, all-types, fidelity, real-noise, real (docs/BENCHMARKS.md).
--data-root defaults to $UIR_DATA_ROOT. A set whose data is missing is reported with the files and layout it expects.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score models on a benchmark (PSNR/SSIM, PIQE/NIQE), side by side",
        description="Run every model on the same inputs of a benchmark protocol and score them.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("--model", nargs="+", metavar="M", help="registered names or checkpoint paths")
    p.add_argument("--benchmark", help="protocol name (default uir-5d)")
    p.add_argument(
        "--pairs", nargs=2, type=Path, metavar=("LQ_DIR", "GT_DIR"), help="score your own pairs instead of a benchmark"
    )
    p.add_argument("--pairs-task", default="unknown", help="the task label of --pairs (for task-aware baselines)")
    p.add_argument(
        "--task",
        nargs="+",
        metavar="NAME",
        help="score the models as `uir restore --task NAME...` runs them (auto: its default), not the bare networks",
    )
    p.add_argument(
        "--strength",
        metavar="S",
        help="with --task (auto when --task is not given): how much of the correction, 0-1 or auto (default auto)",
    )
    p.add_argument(
        "--companion",
        default="auto",
        metavar="NAME",
        help="with --task: the fine-damage companion, auto (the one shipped for each --model), none, or a name or file",
    )
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"), help="where the data sets are")
    p.add_argument("--out", type=Path, help="output folder (results.json, results.md, grids/)")
    p.add_argument("--cache", type=Path, help="where synthetic sets are cached (default OUT/cache)")
    p.add_argument("--limit", type=int, help="at most N images per set (a quick look, not a benchmark)")
    p.add_argument("--grid", type=int, default=3, help="images per set in the comparison grid (default 3)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--list", action="store_true", help="list the benchmarks and the registered models")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from uir.api import check_strength, check_task, load  # heavy: run() loads it, not `uir --help`
    from uir.benchmarks import PROTOCOLS, get_protocol, pairs_protocol  # heavy: run() loads it, not `uir --help`
    from uir.evaluate import (  # heavy: run() loads it, not `uir --help`
        evaluate,
        model_identity,
        to_markdown,
        write_results,
    )
    from uir.restorers import available_restorers, load_restorer  # heavy: run() loads it, not `uir --help`

    if args.list:
        for p in PROTOCOLS.values():
            print(f"{p.name:<14} {p.description}")
            for s in p.sets:
                print(f"{'':<16}{s.name:<26} {s.kind:<10} {s.task:<14} {' | '.join(s.paths)}")
        print(f"\nmodels: {', '.join(available_restorers())}")
        return 0
    if not args.model:
        raise UirError("say which models to evaluate with --model (see uir eval --list)")
    if args.out is None:
        raise UirError("say where to write the results with --out")
    task = check_task(args.task) if args.task else None
    strength = check_strength(args.strength) if args.strength is not None else "auto"
    if args.strength is not None and task is None:
        task = check_task("auto")  # a strength is the pipeline's: score it as uir restore runs it
    if args.pairs:
        if args.benchmark:
            raise UirError("--pairs scores your own pairs: give it or --benchmark, not both")
        if args.pairs_task != "unknown" and args.pairs_task != "clean":
            check_task(args.pairs_task)
        protocol = pairs_protocol(*args.pairs, task=args.pairs_task)
        args.data_root = args.data_root or Path(".")
    else:
        if args.data_root is None:
            raise UirError("say where the data is with --data-root (or set UIR_DATA_ROOT)")
        if not args.data_root.is_dir():
            raise UirError(f"{args.data_root}: no such folder")
        protocol = get_protocol(args.benchmark or "uir-5d")
    if task is None:
        restorers = [load_restorer(spec, device=args.device) for spec in args.model]
    else:
        restorers = [
            load(spec, device=args.device, companion=args.companion).as_restorer(task, strength) for spec in args.model
        ]
    name_apart(restorers, args.model)
    identities = [model_identity(r, spec) for r, spec in zip(restorers, args.model, strict=True)]
    result = evaluate(
        restorers,
        protocol,
        args.data_root,
        args.out,
        cache_dir=args.cache,
        limit=args.limit,
        grid_images=args.grid,
        device=args.device,
        identities=identities,
    )
    json_path, md_path = write_results(result, args.out)
    print(to_markdown(result))
    print(f"wrote {json_path}, {md_path} and {args.out / 'grids'}/")
    return 0


def name_apart(restorers: list, specs: list[str]) -> None:
    """Model files whose names clash (``a/final.safetensors``, ``b/final.safetensors``) take ``<folder>/<name>``."""
    names = [getattr(r, "name", "") for r in restorers]
    for restorer, spec, name in zip(restorers, specs, names, strict=True):
        path = Path(spec)
        if names.count(name) > 1 and path.is_file():
            restorer.name = f"{path.parent.name}/{name}"
