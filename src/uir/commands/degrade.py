"""``uir degrade``: synthesize degraded images with labels, list the types, draw the contact sheet."""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import torch

from uir import degradations as D
from uir import io
from uir.commands._batch import output_names, parse_floats, run_each
from uir.errors import UirError
from uir.viz import contact_sheet

EPILOG = """examples:
  uir degrade --list
  uir degrade photo.jpg -t rain-streaks -s 0.5 -o out/
  uir degrade photos/ -t random --mix 5d --seed 3 -o out/     a random type per image, from the 5-task mix
  uir degrade "shots/*.png" -t noise -s 0.33 --set noise.kind=gaussian -o out/
  uir degrade --sheet photo.jpg -o sheet.png

Each output is written as OUT/<name>.png with the record OUT/<name>.json beside it (type, severity, seed and
every parameter): the sample's label. Each image's seed is derived from --seed and its file name, so an image
gets the same degradation alone or in a folder. Outputs keep the input's bit depth, alpha and gray mode.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "degrade",
        help="add synthetic degradations to images (19 types, with labels)",
        description="Degrade images with any of the 19 types of the universal degradation space.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-t", "--type", default="random", help="degradation type (see --list), or 'random' (default)")
    p.add_argument("-s", "--severity", type=float, help="severity in [0, 1]; default: drawn from the mix")
    p.add_argument("--mix", default="all", help=f"mix for -t random: {', '.join(D.MIXES)} (default: all)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OP.PARAM=VALUE",
        help="fix one drawn parameter, e.g. noise.sigma=25 (repeatable)",
    )
    p.add_argument("-o", "--out", type=Path, help="output folder (or the sheet's file with --sheet)")
    p.add_argument("--overwrite", action="store_true", help="allow writing over an input file")
    p.add_argument("--list", action="store_true", help="list every type with its family and parameter ranges")
    p.add_argument("--sheet", metavar="IMAGE", help="write a labelled contact sheet of every type for IMAGE")
    p.add_argument("--severities", default="0.1,0.3,0.5,0.7,0.9", help="the sheet's columns (default 5 levels)")
    p.add_argument("--tile", type=int, default=192, help="the sheet's cell size in pixels (default 192)")
    p.add_argument("-r", "--recursive", action="store_true", help="look for images in sub-folders too")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(format_list())
        return 0
    if args.out is None:
        raise UirError("say where to write with -o/--out")
    if args.sheet:
        return write_sheet(args)
    if not args.inputs:
        raise UirError("give at least one INPUT image, folder or glob (or --list / --sheet)")
    return degrade_files(args)


def format_list() -> str:
    """The ``--list`` text: every type, its ops, and each op's severity mapping."""
    lines = [
        f"{len(D.TYPES)} degradation types ({len(D.SINGLE_TYPES)} single, {len(D.MIXED_TYPES)} mixed):",
        "",
    ]
    for name, kind in D.TYPES.items():
        lines.append(f"{name:<28} {kind.family:<12} {kind.summary}")
        if kind.mixed:
            parts = (f"{o} x{v:g}" if v != 1 else o for o, v in zip(kind.ops, kind.op_severities(1.0), strict=True))
            lines.append(f"{'':<30}ops: {' -> '.join(parts)} (each at severity x its factor)")
            continue
        for op_name in kind.ops:
            for r in D.get_op(op_name).ranges:
                unit = f" {r.unit}" if r.unit else ""
                lines.append(f"{'':<30}{r.name}: {r.at_zero} -> {r.at_one}{unit} ({r.mapping})")
    lines += ["", f"mixes for -t random: {', '.join(D.MIXES)}"]
    return "\n".join(lines)


def parse_sets(items: list[str]) -> dict[str, dict[str, object]]:
    """``["noise.sigma=25"]`` → ``{"noise": {"sigma": 25.0}}``; values are numbers when they parse as such."""
    overrides: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        op, dot, param = key.partition(".")
        if not sep or not dot or not op or not param:
            raise UirError(f"--set takes OP.PARAM=VALUE, got {item!r}")
        parsed: object = value
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                pass
        overrides.setdefault(op, {})[param] = parsed
    return overrides


def image_seed(base: int, path: Path) -> int:
    """The seed of one image: the base seed mixed with the file name (stable across runs and folders)."""
    return zlib.crc32(f"{base}:{path.name}".encode()) + (base << 32)


def degrade_files(args: argparse.Namespace) -> int:
    overrides = parse_sets(args.set)
    if args.severity is not None and not 0.0 <= args.severity <= 1.0:
        raise UirError(f"-s/--severity must be in [0, 1], got {args.severity}")
    if args.type != "random":
        D.get_type(args.type)
    mix = D.get_mix(args.mix)
    paths = io.list_images(args.inputs, recursive=args.recursive)
    names = output_names(paths, args.out, ".png")

    def work(path: Path) -> None:
        source = io.read_image(path)
        seed = image_seed(args.seed, path)
        if args.type == "random":
            drawn = mix.draw(D.base.param_generator(seed))
            severity = drawn.severity if args.severity is None else args.severity
            record = D.draw(drawn.type, severity, drawn.seed, _merge(mix.overrides.get(drawn.type, {}), overrides))
        else:
            severity = 0.5 if args.severity is None else args.severity
            record = D.draw(args.type, severity, seed, overrides)
        with torch.no_grad():
            lq = D.apply(source.image, record)
        out = names[path]
        io.save_like(out, lq, source, overwrite=args.overwrite, protected=paths)
        io.write_text(out.with_suffix(".json"), record.to_json() + "\n", overwrite=args.overwrite, protected=paths)

    return run_each(paths, work, desc="degrading")


def _merge(base: dict, extra: dict) -> dict[str, dict[str, object]]:
    """Per-op overrides of ``extra`` on top of those of ``base``."""
    return {op: {**base.get(op, {}), **extra.get(op, {})} for op in {*base, *extra}}


def write_sheet(args: argparse.Namespace) -> int:

    source = io.read_image(args.sheet)
    severities = parse_floats(args.severities, "--severities")
    sheet = contact_sheet(source.image, severities=severities, seed=args.seed, tile=args.tile)
    out = args.out if args.out.suffix else args.out / "sheet.png"
    io.write_image(out, io.to_tensor(sheet), overwrite=args.overwrite, protected=[Path(args.sheet)])
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
    return 0
