"""Where a training step's time goes on this machine: waiting for data, forward, backward, optimizer, EMA.

Builds the run of a config exactly as ``uir train`` does (its data, loader workers, model, optimizer, EMA), runs
``--steps`` steps after ``--warmup`` untimed ones, and splits each step's wall time into phases. It also times the
loader's own work (one batch synthesized in this process, the work a loader worker does per step), which says how
far the workers are from keeping up. Prints training samples per hour and the share of the step spent inside
forward/backward (issue #19's two figures). Nothing is written outside a temporary folder.

Usage (from the repository root, with the shared data):
    OMP_NUM_THREADS=2 UIR_DATA_ROOT=../shared/data python benchmarks/train_step_profile.py \
        configs/nafnet_small_uir_cpu_finetune.yaml --steps 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from uir import build
from uir.config import load_config
from uir.distributed import init_distributed
from uir.train import Trainer, update_ema

PHASES = ("data", "forward", "backward", "optimizer", "ema")


def profile(
    trainer: Trainer, steps: int, warmup: int, channels_last: bool = False, compile_model: bool = False
) -> dict[str, list[float]]:
    """Run ``warmup + steps`` steps of ``trainer``; seconds per phase of each timed step.

    ``channels_last``: the network and each batch in NHWC memory order; ``compile_model``: the method through
    ``torch.compile`` (inductor; its compilation happens in the warm-up steps). Experiments: training does neither.
    """
    cfg = trainer.cfg
    layout = torch.channels_last if channels_last else torch.contiguous_format
    trainer.method.to(memory_format=layout)
    model = torch.compile(trainer.model) if compile_model else trainer.model
    loader, _ = build.build_loader(trainer.data, cfg.data, seed=cfg.train.seed, start_step=0)
    batches = iter(loader)
    times: dict[str, list[float]] = defaultdict(list)
    for index in range(warmup + steps):
        marks = [time.perf_counter()]
        batch = next(batches)
        batch = {k: v.contiguous(memory_format=layout) if k in ("lq", "gt") else v for k, v in batch.items()}
        marks.append(time.perf_counter())
        loss, _ = model(batch)
        marks.append(time.perf_counter())
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        if cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainer.method.parameters(), cfg.optim.grad_clip)
        trainer.optimizer.step()
        trainer.scheduler.step()
        marks.append(time.perf_counter())
        if trainer.ema is not None:
            update_ema(trainer.ema, trainer.backbone, cfg.optim.ema_decay)
        marks.append(time.perf_counter())
        if index >= warmup:
            for phase, start, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
                times[phase].append(end - start)
    return times


def synthesis_seconds(trainer: Trainer, batches: int) -> float:
    """Median seconds to make one batch of samples in this process (what one loader worker does per step)."""
    _, sampler = build.build_loader(trainer.data, trainer.cfg.data, seed=trainer.cfg.train.seed, start_step=10_000)
    keys = iter(sampler)
    seconds = []
    for _ in range(batches):
        batch = next(keys)
        start = time.perf_counter()
        for key in batch:
            trainer.data.dataset[key]
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def matmul_gflops(side: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matrix-product speed, the ceiling a convolution step is measured against."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(side, side, generator=generator), torch.randn(side, side, generator=generator)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * side**3 * repeats / (time.perf_counter() - start) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="a training config (e.g. configs/nafnet_small_uir_cpu_finetune.yaml)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--channels-last", action="store_true", help="try NHWC memory order (an experiment)")
    parser.add_argument("--compile", action="store_true", help="try torch.compile (an experiment)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, ["val.sources=[]", *args.set])
    dist = init_distributed(cfg.train.device)
    with tempfile.TemporaryDirectory(prefix="uir-profile-") as folder:
        trainer = Trainer(cfg, Path(folder) / "run", dist)
        times = profile(trainer, args.steps, args.warmup, args.channels_last, args.compile)
        synth = synthesis_seconds(trainer, 5)
    step = sum(statistics.mean(times[p]) for p in PHASES)
    batch = cfg.data.batch_size
    print(
        f"{args.config} (batch {batch} of {cfg.data.crop}², {cfg.data.num_workers} loader worker(s)), "
        f"{args.steps} steps after {args.warmup}{', channels-last' if args.channels_last else ''}"
        f"{', torch.compile' if args.compile else ''}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', 'unset')}, "
        f"LD_PRELOAD={os.environ.get('LD_PRELOAD', 'unset')}"
    )
    print(f"a 2048² fp32 matmul here: {matmul_gflops():.0f} GFLOP/s")
    print(f"{'phase':10s} {'mean s':>8s} {'share':>6s}")
    for phase in PHASES:
        mean = statistics.mean(times[phase])
        print(f"{phase:10s} {mean:8.4f} {100 * mean / step:5.1f}%")
    inside = statistics.mean(times["forward"]) + statistics.mean(times["backward"])
    print(f"step: {step:.3f} s ({1 / step:.2f} it/s), {batch * 3600 / step:,.0f} training samples per hour")
    print(f"inside forward/backward: {100 * inside / step:.1f}% of the step")
    print(f"one batch synthesized in this process: {synth:.3f} s (a loader worker's work per step, on a busy CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
