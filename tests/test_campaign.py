"""scripts/campaign.py: a run that outlives the session, resumed exactly on the same machine and warm-restarted
from the committed fp16 fallback on a fresh one (issue 19)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, write_tiny_model
from uir.checkpoint import load_checkpoint, read_safetensors

SCRIPT = ROOT / "scripts" / "campaign.py"


def run_script(action: str, tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``scripts/campaign.py ACTION tiny`` with every folder under ``tmp``."""
    command = [sys.executable, str(SCRIPT), action, "tiny", "--runs", str(tmp / "runs")]
    command += ["--campaigns", str(tmp / "campaigns"), "--docs", str(tmp / "docs")]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def campaign(action: str, tmp: Path, env: dict[str, str]) -> str:
    done = run_script(action, tmp, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def logged_step(log: Path) -> int:
    if not log.is_file():
        return 0
    rows = list(csv.DictReader(log.open()))
    return int(rows[-1]["step"]) if rows else 0


def wait_for_step(log: Path, step: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while logged_step(log) < step:
        assert time.monotonic() < deadline, f"{log} did not reach step {step}"
        time.sleep(0.5)


@pytest.fixture
def no_orphans(tmp_path: Path) -> Iterator[None]:
    """Stop any training a failed assertion left running under ``tmp_path`` (its runs never end by themselves)."""
    yield
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(tmp_path).encode() in (entry / "cmdline").read_bytes():
                os.killpg(os.getpgid(int(entry.name)), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.mark.usefixtures("no_orphans")
def test_run_stop_resume_and_warm_restart(tmp_path: Path, tiny_data: Path) -> None:
    config = yaml.safe_load((ROOT / "configs" / "tiny_test.yaml").read_text())
    config["optim"]["total_iters"] = 100_000  # never ends by itself: stop has to stop it
    config["train"] |= {"log_every": 1, "val_every": 50, "ckpt_every": 10**6}  # last.ckpt only when stopped
    folder = tmp_path / "campaigns" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    (folder / "campaign.yaml").write_text("config: tiny.yaml\n")
    start = read_safetensors(write_tiny_model(folder / "fallback.safetensors", labels=("noise",)))[1]
    env = {**os.environ, "UIR_DATA_ROOT": str(tiny_data), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(ROOT / "src")
    run_dir, log = tmp_path / "runs" / "tiny", tmp_path / "runs" / "tiny" / "log.csv"

    # First start: step 0 from the fallback's weights (model.init).
    assert "starting at step 0" in campaign("run", tmp_path, env)
    assert "already running" in campaign("run", tmp_path, env)
    wait_for_step(log, 6)
    stopped = campaign("stop", tmp_path, env)
    first = load_checkpoint(run_dir / "last.ckpt")
    step = int(first["step"])
    assert f"step {step} of 100000" in stopped
    meta, weights = read_safetensors(folder / "fallback.safetensors")
    assert json.loads(meta["campaign"])["step"] == step and json.loads(meta["step"]) == step
    older = tmp_path / "older.ckpt"
    shutil.copyfile(run_dir / "last.ckpt", older)
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert torch.equal(weights["head.conv.weight"], first["ema"]["head.conv.weight"].half())
    assert not torch.equal(weights["head.conv.weight"], start["head.conv.weight"].half())
    assert logged_step(tmp_path / "docs" / "tiny.log.csv") == step

    # Same machine: an exact resume from last.ckpt.
    assert "resuming exactly" in campaign("run", tmp_path, env)
    wait_for_step(log, step + 4)
    campaign("stop", tmp_path, env)
    resumed = load_checkpoint(run_dir / "last.ckpt")
    second = int(resumed["step"])
    assert second >= step + 4

    # Fresh machine: no run folder; a warm restart at the fallback's step, the log history kept.
    shutil.rmtree(tmp_path / "runs")
    out = campaign("run", tmp_path, env)
    assert f"warm restart at step {second}" in out
    warm = load_checkpoint(run_dir / "last.ckpt")  # written before the run starts, at the fallback's step
    assert int(warm["step"]) == second and warm["optimizer"]["state"] == {}
    assert warm["scheduler"]["last_epoch"] == second and warm["best_psnr"] == resumed["best_psnr"]
    assert warm["optimizer"]["param_groups"][0]["lr"] == pytest.approx(resumed["optimizer"]["param_groups"][0]["lr"])
    assert all(torch.equal(warm["ema"][k], v) for k, v in warm["backbone"].items())
    fallback = read_safetensors(folder / "fallback.safetensors")[1]
    assert torch.equal(warm["backbone"]["head.conv.weight"].half(), fallback["head.conv.weight"])
    wait_for_step(log, second + 3)
    campaign("stop", tmp_path, env)
    rows = list(csv.DictReader(log.open()))
    steps = [int(r["step"]) for r in rows]
    assert steps[0] == 1 and steps == sorted(steps) and steps[-1] >= second + 3  # history up to the restart, then on
    assert "not running" in campaign("status", tmp_path, env)

    # A checkpoint older than the committed fallback (a later stop elsewhere) is not resumed from.
    shutil.copyfile(older, run_dir / "last.ckpt")
    done = run_script("run", tmp_path, env)
    assert done.returncode == 1 and "move" in done.stderr and "aside" in done.stderr


def test_a_run_that_cannot_start_says_why_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns" / "tiny"
    folder.mkdir(parents=True)
    (folder / "campaign.yaml").write_text(f"config: {ROOT / 'configs' / 'tiny_test.yaml'}\n")
    write_tiny_model(folder / "fallback.safetensors")
    env = {k: v for k, v in os.environ.items() if k != "UIR_DATA_ROOT"} | {"PYTHONPATH": str(ROOT / "src")}
    done = run_script("run", tmp_path, env)
    assert done.returncode == 1
    assert "the run exited at once" in done.stderr and "${UIR_DATA_ROOT} is not set" in done.stderr
    assert "Traceback" not in done.stderr
