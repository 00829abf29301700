"""The ``uir`` command line: a thin front-end over the public Python API.

Each subcommand lives in ``uir.commands.<name>`` and exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
User errors (``UirError``) print one line and exit 2; per-file failures are summed up by the subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from uir.errors import UirError
from uir.version import __version__

# Subcommand modules, in the order ``uir --help`` lists them.
COMMANDS = ("degrade", "restore", "inspect", "eval", "train", "perceive", "export", "bench-speed", "data", "serve")

EPILOG = """examples:
  uir degrade --list                                  every degradation type and its parameter ranges
  uir degrade photo.jpg -t haze -s 0.6 -o out/        add haze of severity 0.6
  uir degrade --sheet photo.jpg -o sheet.png          every type at 5 severities, labelled
  uir data check ../shared/data/derain/Rain100L       what a data folder holds
  uir eval --model nlm dcp --benchmark uir-5d --data-root ../shared/data --out runs/eval
  uir train configs/nafnet_cpu_5d.yaml                train a model (resumable; DDP under torchrun)
  uir restore photos/ -o out/ --model runs/nafnet_cpu_5d/final.safetensors
  uir export --onnx -o nafnet.onnx                    the default model as ONNX, checked with onnxruntime
  uir bench-speed                                     cost and CPU latency of every backbone preset

Run 'uir COMMAND --help' for the options and examples of each command.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' line breaks."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uir",
        description="uir: universal image restoration. Degrade, evaluate, train and restore, in one toolkit.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"uir {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"uir.commands.{name.replace('-', '_')}")
        module.add_parser(subparsers, _Formatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``uir`` command; returns the exit code (0 ok, 1 some inputs failed, 2 usage or user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="uir: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except UirError as exc:
        print(f"uir: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (e.g. `uir degrade --list | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("uir: interrupted", file=sys.stderr)
        return 130
