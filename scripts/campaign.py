"""A training run that outlives the session: start or resume it with one command, stop it with another.

    python scripts/campaign.py run nafnet-fr-v2       # start, or resume where it stopped (detached; returns)
    python scripts/campaign.py status nafnet-fr-v2    # step, speed, last validation, time left
    python scripts/campaign.py stop nafnet-fr-v2      # checkpoint, stop, write the committed fallback and log
    python scripts/campaign.py run nafnet-fr-v2 --set optim.total_iters=15000   # resume, re-targeting the schedule

A campaign is a folder ``campaigns/NAME/`` holding ``campaign.yaml`` (``config``: the training config) and
``fallback.safetensors``: the run's EMA weights in fp16 with its step in the metadata, overwritten at each stop, so
the repository grows by one ~11 MB file version a stop. The full state (weights, EMA, AdamW moments, random
streams, data position) stays outside the work tree in ``RUNS/NAME/last.ckpt`` (``--runs``, default ``../runs``
beside the repository, or ``$UIR_CAMPAIGN_RUNS``).

``run`` resumes from ``last.ckpt`` when the machine still has it: an exact continuation. On a fresh machine it
warm-restarts from the fallback: weights and EMA from the fallback's EMA, the step, learning-rate schedule and
data position where the fallback was written, fresh AdamW moments and random streams. The first start (no
checkpoint, no step in the fallback) begins at step 0 from the fallback's weights (``model.init``). The run's
log is ``RUNS/NAME.log``; ``stop`` copies ``log.csv`` and ``curves.png`` to ``docs/models/NAME.log.csv`` and
``docs/models/NAME-curves.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = "last.ckpt"


CAMPAIGNS = ROOT / "campaigns"
DOCS = ROOT / "docs" / "models"


def campaign_dir(name: str) -> Path:
    folder = CAMPAIGNS / name
    if not (folder / "campaign.yaml").is_file():
        raise SystemExit(f"campaign: no {folder / 'campaign.yaml'}")
    return folder


def read_campaign(name: str) -> dict:
    spec = yaml.safe_load((campaign_dir(name) / "campaign.yaml").read_text()) or {}
    if "config" not in spec:
        raise SystemExit(f"campaign: {campaign_dir(name) / 'campaign.yaml'} names no config")
    return spec


def processes(run_dir: Path) -> list[int]:
    """The ``uir train`` main processes of ``run_dir`` (loader workers share the command line; the oldest wins)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().split()
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if "train" not in words:
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if any((cwd / w).resolve() == run_dir for w in words[words.index("train") + 1 :] if not w.startswith("-")):
            found.append((int(stat[21]), int(entry.name)))  # start time, pid
    found.sort()
    return [pid for _, pid in found[:1]]


def fallback_meta(path: Path) -> dict:
    from uir.checkpoint import read_safetensors

    meta, _ = read_safetensors(path)
    return {k: json.loads(v) if k == "campaign" else v for k, v in meta.items()}


def warm_checkpoint(meta: dict, run_dir: Path, fallback: Path, sets: list[str]) -> None:
    """A ``last.ckpt`` at the fallback's step, from its EMA weights and its run's config (``sets`` applied), with
    fresh optimizer moments: the schedule, data position and best validation score where the fallback left them."""
    from uir.config import load_config
    from uir.distributed import init_distributed
    from uir.train import Trainer

    campaign = meta["campaign"]
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "fallback-config.yaml"
    saved.write_text(yaml.safe_dump(json.loads(meta["config"])))
    cfg = load_config(saved, [f"model.init={fallback}", *sets])
    saved.unlink()
    trainer = Trainer(cfg, run_dir, init_distributed(cfg.train.device))
    if trainer.steps_per_epoch != campaign["sampler"]["steps_per_epoch"]:
        print(
            f"warning: {trainer.steps_per_epoch} steps an epoch here, {campaign['sampler']['steps_per_epoch']} "
            "when the fallback was written (other data?): the data position is not the same"
        )
    trainer.step = campaign["step"]
    trainer.best_psnr = campaign["best_psnr"]
    trainer.scheduler.last_epoch = trainer.step - 1
    trainer.scheduler.step()  # the learning rate of the schedule at the step
    trainer.save()


def prepare_environment(data_root: str | None) -> None:
    """``UIR_DATA_ROOT`` from the campaign when unset, and this checkout's ``src`` first on the children's path."""
    if data_root and "UIR_DATA_ROOT" not in os.environ:
        os.environ["UIR_DATA_ROOT"] = str((ROOT / data_root).resolve())
    paths = [str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def launch(args: list[str], log: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))}
    env.setdefault("MALLOC_MMAP_MAX_", "0")  # docs/speed.md: fewer page faults for a CNN's step on glibc
    command = [sys.executable, "-m", "uir", "train", *args, "--no-progress"]
    with log.open("a") as out:
        out.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n")
        out.flush()
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT, env=env
        )
    try:  # a run that cannot start (bad config, missing data) says so now, not in a log nobody reads
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        return proc.pid
    tail = log.read_text().strip().splitlines()[-1:]
    raise SystemExit(f"campaign: the run exited at once (code {code}): {tail[0] if tail else ''}")


def cmd_run(name: str, runs: Path, sets: list[str]) -> int:
    spec, folder = read_campaign(name), campaign_dir(name)
    run_dir, fallback = runs / name, folder / "fallback.safetensors"
    running = processes(run_dir)
    if running:
        print(f"{name}: already running (pid {running[0]}); log {runs / (name + '.log')}")
        return 0
    prepare_environment(spec.get("data_root"))
    runs.mkdir(parents=True, exist_ok=True)
    log = runs / f"{name}.log"
    meta = fallback_meta(fallback)
    step = int(meta["campaign"]["step"]) if meta.get("campaign") else 0
    if (run_dir / CHECKPOINT).is_file():
        from uir.checkpoint import load_checkpoint

        held = int(load_checkpoint(run_dir / CHECKPOINT)["step"])
        if held < step:  # a later stop elsewhere committed a newer fallback: do not go on from older weights
            raise SystemExit(
                f"campaign: {run_dir / CHECKPOINT} is at step {held} but the committed fallback is at step {step}; "
                f"move {run_dir} aside to warm-restart from the fallback"
            )
        how = "resuming exactly from " + str(run_dir / CHECKPOINT)
        args = [str(run_dir), "--out", str(run_dir), "--resume"]
    elif step:
        print(f"{name}: no {run_dir / CHECKPOINT}; warm restart at step {step} from {fallback}")
        warm_checkpoint(meta, run_dir, fallback, sets)
        history = DOCS / f"{name}.log.csv"
        if history.is_file():  # the log so far, as committed at the last stop (rows after `step` are dropped)
            shutil.copyfile(history, run_dir / "log.csv")
        how = f"warm restart at step {step} (fresh AdamW moments)"
        args = [str(run_dir), "--out", str(run_dir), "--resume"]
    else:
        config = (folder / spec["config"]) if (folder / spec["config"]).is_file() else ROOT / spec["config"]
        how = f"starting at step 0 from {fallback}"
        args = [str(config), "--out", str(run_dir), "--set", f"model.init={fallback}"]
    for item in sets:  # e.g. optim.total_iters=N: a resume re-targets the cosine schedule (not an exact continuation)
        args += ["--set", item]
    pid = launch(args, log)
    print(f"{name}: {how}; pid {pid}; log {log}; stop with: python scripts/campaign.py stop {name}")
    return 0


def cmd_status(name: str, runs: Path) -> int:
    from uir.errors import UirError
    from uir.runlog import read_log

    read_campaign(name)
    run_dir = runs / name
    try:
        rows = read_log(run_dir)
    except UirError:  # not started, or no row logged yet
        rows = []
    total = yaml.safe_load((run_dir / "config.yaml").read_text())["optim"]["total_iters"] if rows else None
    pids = processes(run_dir)
    print(f"{name}: {'running, pid ' + str(pids[0]) if pids else 'not running'}")
    if rows:
        last = rows[-1]
        rate = float(last["it_per_s"] or 0)
        left = (total - int(last["step"])) / rate / 3600 if rate else float("nan")
        print(f"step {last['step']} of {total}, {rate:.2f} it/s, {left:.1f} h left at that speed")
        val = [r for r in rows if r.get("psnr/mean")]
        if val:
            scores = {k.removeprefix("psnr/"): float(v) for k, v in val[-1].items() if k.startswith("psnr/") and v}
            print(f"validation at step {val[-1]['step']}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    return 0


def write_fallback(name: str, run_dir: Path, fallback: Path) -> dict:
    """The EMA weights of ``run_dir/last.ckpt`` in fp16 with the step and data position, atomically."""
    from uir.checkpoint import export_safetensors, load_checkpoint

    state = load_checkpoint(run_dir / CHECKPOINT)
    weights = state["ema"] if state.get("ema") is not None else state["backbone"]
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    campaign = {
        "name": name,
        "step": int(state["step"]),
        "sampler": state["sampler"],
        "total_iters": state["config"]["optim"]["total_iters"],
        "best_psnr": state["best_psnr"],
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    metadata = {
        "backbone": state["backbone_name"],
        "overrides": state["config"]["model"].get("overrides") or {},
        "labels": state["labels"],
        "config": state["config"],
        "step": int(state["step"]),
        "campaign": campaign,
    }
    export_safetensors(fallback, half, metadata)
    return campaign


def cmd_stop(name: str, runs: Path, timeout: float) -> int:
    folder = campaign_dir(name)
    run_dir = runs / name
    for pid in processes(run_dir):
        print(f"{name}: SIGTERM to pid {pid}; waiting for its checkpoint")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while processes(run_dir) and time.monotonic() < deadline:
            time.sleep(1)
        if processes(run_dir):
            raise SystemExit(f"campaign: pid {pid} still running after {timeout:.0f} s; nothing written")
    if not (run_dir / CHECKPOINT).is_file():
        raise SystemExit(f"campaign: no {run_dir / CHECKPOINT}; nothing to write")
    info = write_fallback(name, run_dir, folder / "fallback.safetensors")
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "log.csv", DOCS / f"{name}.log.csv")
    if (run_dir / "curves.png").is_file():
        shutil.copyfile(run_dir / "curves.png", DOCS / f"{name}-curves.png")
    print(
        f"{name}: step {info['step']} of {info['total_iters']}; wrote {folder / 'fallback.safetensors'} and "
        f"{DOCS / (name + '.log.csv')}; commit them, then `python scripts/campaign.py run {name}` resumes"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    global CAMPAIGNS, DOCS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["run", "status", "stop"])
    parser.add_argument("name", help="a folder of campaigns/")
    default_runs = os.environ.get("UIR_CAMPAIGN_RUNS") or str(ROOT.parent / "runs")
    parser.add_argument(
        "--runs", type=Path, default=Path(default_runs), help=f"full run states (default {default_runs})"
    )
    parser.add_argument("--timeout", type=float, default=300, help="stop: seconds to wait for the checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run: a config override")
    parser.add_argument("--campaigns", type=Path, help="where campaign folders are (default campaigns/; for tests)")
    parser.add_argument("--docs", type=Path, help="where stop copies the log and curves (default docs/models/)")
    args = parser.parse_args(argv)
    CAMPAIGNS = (args.campaigns or CAMPAIGNS).resolve()
    DOCS = (args.docs or DOCS).resolve()
    runs = args.runs.resolve()
    if args.action == "run":
        return cmd_run(args.name, runs, args.set)
    if args.action == "status":
        return cmd_status(args.name, runs)
    return cmd_stop(args.name, runs, args.timeout)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
