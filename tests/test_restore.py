"""Tiled restoring and the `uir restore` command (with the `identity` baseline, so no weights are needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from uir import io
from uir.cli import main
from uir.restore import tiled

SHIPPED_CLASSES = ("noise", "haze", "rain-streaks", "motion-blur", "low-light", "clean")


@pytest.mark.parametrize(("tile", "overlap"), [(16, 4), (20, 0), (64, 8)])
def test_tiling_a_pointwise_function_is_exact(tile: int, overlap: int) -> None:
    x = torch.rand(1, 3, 37, 53)
    y = tiled(lambda t: t * 0.5 + 0.1, x, tile=tile, overlap=overlap)
    assert torch.allclose(y, x * 0.5 + 0.1, atol=1e-6)


def test_tiling_blends_a_local_function_smoothly() -> None:
    x = torch.rand(1, 3, 40, 70)
    blur = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    y = tiled(blur, x, tile=24, overlap=8)
    assert y.shape == x.shape
    assert (y - blur(x)).abs().max() < 0.2


def test_restore_keeps_16_bit_alpha_and_names(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.random.default_rng(0).integers(0, 65536, (37, 53, 4), dtype=np.uint16)
    io.write_image(
        src / "deep.v2.png", io.to_tensor(rgba[..., :3]), alpha=io.to_tensor(rgba[..., 3])[:, :1], bit_depth=16
    )
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(src / "photo.jpg")
    out = tmp_path / "out"
    assert main(["restore", str(src), "-o", str(out), "--model", "identity"]) == 0
    restored = io.read_image(out / "deep.v2.png")
    original = io.read_image(src / "deep.v2.png")
    assert restored.bit_depth == 16 and restored.alpha is not None
    assert torch.equal(restored.image, original.image) and torch.equal(restored.alpha, original.alpha)
    assert (out / "photo.png").is_file()


def test_restore_without_out_writes_into_restored_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    assert main(["restore", "photo.png", "--model", "identity"]) == 0
    assert np.array_equal(np.asarray(Image.open("restored/photo.png")), np.full((20, 30, 3), 90, np.uint8))
    assert f"restored 1 image(s) into restored{os.sep}" in capsys.readouterr().err


def test_restore_reports_bad_files_and_protects_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    before = (tmp_path / "a.png").read_bytes()
    assert main(["restore", str(tmp_path), "-o", str(tmp_path), "--model", "identity"]) == 1
    err = capsys.readouterr().err
    assert "bad.png" in err and "refusing to overwrite" in err and "Traceback" not in err
    assert (tmp_path / "a.png").read_bytes() == before
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path), "--model", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_report_holds_time_and_scores_before_and_after(tmp_path: Path, photo: torch.Tensor) -> None:
    io.write_image(tmp_path / "in" / "cat.png", photo)
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "identity", "--report"]) == 0
    report = json.loads((tmp_path / "out" / "cat.json").read_text())
    assert report["model"] == "identity" and report["seconds"] >= 0
    assert report["output"] == str(tmp_path / "out" / "cat.png")
    assert report["before"]["piqe"] == pytest.approx(report["after"]["piqe"])  # the identity changes nothing
    assert {"piqe", "piqe_grade", "niqe", "verdict", "degradations"} <= set(report["before"])
    assert set(report["before"]["degradations"]) == set(SHIPPED_CLASSES)  # the shipped classifier's view
    argv = ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "bare"), "--model", "identity", "--report"]
    assert main([*argv, "--classifier", "none"]) == 0
    assert json.loads((tmp_path / "bare" / "cat.json").read_text())["before"]["degradations"] is None


def test_skip_existing_restores_only_what_is_missing(tmp_path: Path, photo: torch.Tensor) -> None:
    for name in ("a", "b"):
        io.write_image(tmp_path / "in" / f"{name}.png", photo)
    argv = ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "identity"]
    assert main(argv) == 0
    (tmp_path / "out" / "a.png").write_bytes(b"kept")  # a finished output is never redone...
    (tmp_path / "out" / "b.png").unlink()  # ...a missing one is
    assert main([*argv, "--skip-existing"]) == 0
    assert (tmp_path / "out" / "a.png").read_bytes() == b"kept"
    assert torch.equal(io.read_image(tmp_path / "out" / "b.png").image, io.read_image(tmp_path / "in" / "b.png").image)


def test_two_processes_under_torchrun_write_what_one_writes(tmp_path: Path, photo: torch.Tensor) -> None:
    for i in range(5):
        io.write_image(tmp_path / "in" / f"{i}.png", photo[..., i * 8 : i * 8 + 40, :56].flip(-1 if i % 2 else -2))
    argv = ["restore", str(tmp_path / "in"), "--engine", "torch", "--model", "default"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    one = subprocess.run(
        [sys.executable, "-m", "uir", *argv, "-o", str(tmp_path / "one")], env=env, capture_output=True, text=True
    )
    assert one.returncode == 0, one.stderr[-2000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "uir"]
    two = subprocess.run([*launcher, *argv, "-o", str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "process 1 of 2: 3 of 5 input(s)" in two.stderr and "process 2 of 2: 2 of 5 input(s)" in two.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == [f"{i}.png" for i in range(5)] == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
