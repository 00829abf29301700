"""Train one or more runs side by side so that each ends (cosine schedule complete) within a wall-clock budget.

Each run starts with ``uir train``; after ``--calibrate`` seconds its measured iterations per second (the
``it_per_s`` column of its log.csv, all runs sharing the machine) fix ``optim.total_iters`` so that it finishes
by the deadline; the run is stopped with SIGTERM (it saves ``last.ckpt``) and resumed with that total, which
retargets the cosine schedule. Used for the shipped model on a lent GPU, where the time is fixed and the speed
unknown in advance.

    python scripts/train_to_budget.py --minutes 19 --out runs/gpu \\
        small=configs/nafnet_small_uir.yaml cpu=configs/nafnet_small_uir.yaml,model.backbone=nafnet-cpu

A run is ``NAME=CONFIG[,KEY=VALUE...]`` (the pairs go to ``--set``). Logs go to ``OUT/NAME.log``; this script's
own progress goes to stdout. Run it detached (``setsid``) to let the runs outlive the shell that started them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from uir.errors import UirError
from uir.runlog import median_rate, read_log


def launch(name: str, config: str, sets: list[str], out: Path, *, resume: bool = False) -> subprocess.Popen:
    """Start ``uir train`` for one run, detached in its own session, appending to ``OUT/NAME.log``."""
    command = [sys.executable, "-m", "uir", "train", config, "--out", str(out / name), "--no-progress"]
    command += ["--resume"] if resume else []
    for item in sets:
        command += ["--set", item]
    log = (out / f"{name}.log").open("a")
    print(f"{name}: {' '.join(command)}", flush=True)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def measured_rate(log_csv: Path) -> float | None:
    """The median ``it_per_s`` of the rows after the first (the first holds the start-up); None before any row."""
    try:
        return median_rate(read_log(log_csv))
    except UirError:
        return None


def last_step(log_csv: Path) -> int:
    try:
        return int(read_log(log_csv)[-1]["step"])
    except UirError:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="NAME=CONFIG[,KEY=VALUE...]")
    parser.add_argument("--minutes", type=float, required=True, help="the wall-clock budget from start to end")
    parser.add_argument("--calibrate", type=float, default=120, help="seconds of training before the rate is read")
    parser.add_argument("--reserve", type=float, default=0.06, help="fraction of the time kept for validation etc.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    start = time.monotonic()
    deadline = start + args.minutes * 60
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for spec in args.runs:
        name, _, rest = spec.partition("=")
        config, *sets = rest.split(",")
        runs[name] = (config, sets)
    procs = {name: launch(name, c, s, args.out) for name, (c, s) in runs.items()}
    time.sleep(args.calibrate)
    for name, proc in procs.items():
        log_csv = args.out / name / "log.csv"
        rate = measured_rate(log_csv)
        if rate is None or proc.poll() is not None:
            print(f"{name}: no rate measured (exit code {proc.poll()}); see {args.out / name}.log", flush=True)
            continue
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        step = last_step(log_csv)
        left = (deadline - time.monotonic()) * (1 - args.reserve) - 20  # 20 s to restart the run
        total = step + max(int(rate * left), 1000)
        print(f"{name}: {rate:.2f} it/s at step {step}; resuming to total_iters={total}", flush=True)
        procs[name] = launch(name, str(args.out / name), [f"optim.total_iters={total}"], args.out, resume=True)
    for name, proc in procs.items():
        code = proc.wait()
        print(f"{name}: finished with exit code {code} after {(time.monotonic() - start) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
