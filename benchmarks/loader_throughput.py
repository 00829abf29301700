"""How many training samples per second the data loader makes on this machine: what can feed a GPU.

    UIR_DATA_ROOT=.data python benchmarks/loader_throughput.py configs/nafnet_v2_gpu_study.yaml --workers 1 7 14

Prints, for the config's training data: the milliseconds one sample takes in this process (one core), per source
and overall, and the samples per second of a DataLoader with each number of workers (the config's batch size),
after a warm-up. A GPU run is starved when its steps per second times the batch size reach this figure.
"""

from __future__ import annotations

import argparse
import collections
import time

import torch

from uir import build
from uir.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=40, help="timed batches per worker count")
    parser.add_argument("--seconds", type=float, default=0, help="stop each worker count after this long (0: none)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    train_data = build.build_train_data(cfg.data, cfg.train.seed)
    _, sampler = build.build_loader(train_data, cfg.data, seed=0, start_step=1000)
    keys, per = iter(sampler), collections.defaultdict(list)
    start = time.perf_counter()
    for _ in range(max(1, 256 // cfg.data.batch_size)):
        for key in next(keys):
            t = time.perf_counter()
            train_data.dataset[key]
            per[key[0] if isinstance(key, tuple) else 0].append(time.perf_counter() - t)
    count = sum(len(v) for v in per.values())
    print(f"one process: {1000 * (time.perf_counter() - start) / count:.2f} ms/sample over {count} samples")
    for source, times in sorted(per.items()):
        print(f"  source {source}: {len(times)} samples, {1000 * sum(times) / len(times):.2f} ms/sample")
    for workers in args.workers:
        cfg.data.num_workers = workers
        loader, _ = build.build_loader(train_data, cfg.data, seed=0, start_step=2000)
        batches = iter(loader)
        for _ in range(2 * workers):  # warm-up: every worker has made a batch
            next(batches)
        t0, n = time.perf_counter(), 0
        while n < args.batches and not (args.seconds and time.perf_counter() - t0 > args.seconds):
            next(batches)
            n += 1
        rate = n * cfg.data.batch_size / (time.perf_counter() - t0)
        print(
            f"{workers:3d} workers: {rate:8.0f} samples/s ({rate / workers:.0f} per worker), "
            f"batch {cfg.data.batch_size}"
        )
        del batches, loader
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
