"""``uir train``: train a model from a YAML config, resume it, or run it under torchrun with DDP."""

from __future__ import annotations

import argparse
from pathlib import Path

from uir.errors import UirError

EPILOG = """examples:
  uir train configs/nafnet_cpu_5d.yaml
  uir train configs/nafnet_cpu_5d.yaml --set optim.lr=5e-4 --set data.batch_size=4 --out runs/lr5e-4
  uir train configs/tiny_test.yaml --set data.sources.0.repeat=2 --set train.device=cpu
  uir train runs/nafnet_cpu_5d --resume                continue a run exactly where it stopped
  torchrun --nproc_per_node 2 -m uir train configs/nafnet_cpu_5d.yaml     DDP (gloo on CPU, NCCL on GPU)

The run folder (--out, default train.out_dir/train.run, or the config's name) receives config.yaml (the
resolved config), log.csv, curves.png, last.ckpt (every train.ckpt_every steps, at the end, and on Ctrl-C or
SIGTERM: the run stops after the current step, saves, and exits with 130 or 143), best.safetensors (best mean
validation PSNR) and final.safetensors (EMA weights; `uir eval --model` and `uir restore --model` take them).
--set KEY=VALUE overrides any config key (dotted path, list entries by index; VALUE is YAML). Paths may use
${UIR_DATA_ROOT}. Give a run folder instead of CONFIG to resume with its saved config.
"""

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a restoration model from a YAML config (resumable, DDP under torchrun)",
        description="Train a model: AdamW with warm-up and cosine decay, EMA, mixed tasks, validation PSNR.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("config", metavar="CONFIG", help="a YAML config, or a run folder (uses its config.yaml)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. optim.lr=1e-3 or data.sources.0.repeat=2 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last.ckpt")
    p.add_argument("--out", type=Path, help="the run folder (default: train.out_dir / train.run or CONFIG's name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def resolve(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The config file and the run folder ``args`` name (a run folder as CONFIG means its config.yaml)."""
    config = Path(args.config)
    if config.is_dir():
        if not (config / "config.yaml").is_file():
            raise UirError(f"{config}: a folder without config.yaml; give a YAML config or a run folder")
        return config / "config.yaml", args.out or config
    if not config.is_file():
        raise UirError(f"{config}: no such config file")
    return config, args.out


def run(args: argparse.Namespace) -> int:
    from uir.config import expand_path, load_config  # heavy: run() loads it, not `uir --help`
    from uir.train import train  # heavy: run() loads it, not `uir --help`

    config, out = resolve(args)
    cfg = load_config(config, args.set)
    out = out or expand_path(cfg.train.out_dir, "train.out_dir") / (cfg.train.run or config.stem)
    result = train(cfg, out, resume=args.resume, progress=not args.no_progress)
    if result.rank != 0:
        return 0
    if result.stopped:
        print(f"stopped by {result.stopped} at step {result.step}; continue with: uir train {out} --resume")
        return EXIT_CODES.get(result.stopped, 1)
    scores = ", ".join(f"{k} {v:.2f} dB" for k, v in result.val.items())
    print(f"trained {result.step} steps; wrote {out}/" + (f" (validation PSNR: {scores})" if scores else ""))
    return 0
