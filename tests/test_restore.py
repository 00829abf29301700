"""Tiled restoring and the `uir restore` command, with the `identity` baseline or tiny seeded networks."""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import uir
from conftest import write_tiny_model
from uir import io
from uir.cli import main
from uir.commands import restore as restore_command
from uir.restore import tiled

SHIPPED_CLASSES = ("noise", "haze", "rain-streaks", "motion-blur", "low-light", "clean")


def seeded(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def seeded_conv(kernel: int) -> torch.nn.Conv2d:
    """A 3→3 ``kernel×kernel`` conv (zero padding) with seeded weights: a local function of radius ``kernel // 2``."""
    conv = torch.nn.Conv2d(3, 3, kernel, padding=kernel // 2).requires_grad_(False)
    generator = torch.Generator().manual_seed(1)
    conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / kernel)
    conv.bias.copy_(0.1 * torch.randn(3, generator=generator))
    return conv


def raised_cosine(overlap: int) -> torch.Tensor:
    """The documented blending weights of a tile over the ``overlap`` pixels it shares with the next one."""
    return 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)


@pytest.mark.parametrize(("tile", "overlap"), [(16, 4), (20, 0), (64, 8)])
def test_tiling_a_pointwise_function_is_exact(tile: int, overlap: int) -> None:
    x = seeded(1, 3, 37, 53)
    y = tiled(lambda t: t * 0.5 + 0.1, x, tile=tile, overlap=overlap)
    torch.testing.assert_close(y, x * 0.5 + 0.1, rtol=0, atol=1e-6)  # measured: 1.2e-7 (rounding)


# Measured max |tiled − whole| for a seeded conv on a seeded 37×53 image, tile 24, overlap 8 (as large as the conv's
# receptive field or more): 0.0207 (3×3) and 0.136 (5×5). Not 0: a tile's outermost pixels, wrong because the conv
# zero-pads at the cut, keep the raised cosine's first weights (0.0096, 0.084); with plain averaging they weigh 1/2
# (error 1.09 and 1.22), without overlap 1 (1.91 and 1.67).
@pytest.mark.parametrize(("kernel", "atol"), [(3, 0.025), (5, 0.16)])
def test_tiling_a_local_function_with_enough_overlap_matches_the_whole_image(kernel: int, atol: float) -> None:
    x, conv = seeded(1, 3, 37, 53), seeded_conv(kernel)
    whole = conv(x)
    assert (tiled(conv, x, tile=24, overlap=8) - whole).abs().max().item() < atol
    hard_seams = (tiled(conv, x, tile=24, overlap=0) - whole).abs().max().item()
    assert hard_seams > 10 * atol  # the alternative the tolerance must reject


def test_tiles_are_blended_with_raised_cosine_weights() -> None:
    """Each tile returns one constant: the output is then the blend of the tiles' weights alone."""
    height, width, tile, overlap = 37, 53, 24, 8
    rows, cols = torch.meshgrid(torch.arange(height * 1.0), torch.arange(width * 1.0), indexing="ij")
    coords = torch.stack([rows, cols, torch.zeros_like(rows)])[None]  # each tile knows where it is
    values: dict[tuple[int, int], float] = {}

    def constant(piece: torch.Tensor) -> torch.Tensor:
        top, left = int(piece[0, 0, 0, 0]), int(piece[0, 1, 0, 0])
        assert piece.shape[-2] <= tile and piece.shape[-1] <= tile
        values[top, left] = seeded(1, seed=1000 * top + left).item()
        return torch.full_like(piece, values[top, left])

    blended = tiled(constant, coords, tile=tile, overlap=overlap)[0, 0]
    tops, lefts = sorted({t for t, _ in values}), sorted({left for _, left in values})
    assert tops[0] == lefts[0] == 0 and tops[-1] == height - tile and lefts[-1] == width - tile
    for starts in (tops, lefts):  # neighbours share at least ``overlap`` pixels
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    # Where exactly two tiles meet (rows only the top ones cover, columns the first two share), the blend follows
    # the raised cosine from the first tile's value to the second's.
    seam = slice(lefts[1], tile)
    assert tile - lefts[1] == overlap
    first, second = values[0, 0], values[0, lefts[1]]
    profile = (blended[: tops[1], seam] - first) / (second - first)
    torch.testing.assert_close(profile, raised_cosine(overlap).expand_as(profile), rtol=0, atol=1e-5)
    # Everywhere, no step between neighbouring pixels is steeper than the raised cosine's steepest step,
    # sin(π / 2·overlap) of the tiles' spread (0.195 here; measured 0.147, while plain averaging and hard seams
    # both give 0.5).
    steps = max((blended[1:] - blended[:-1]).abs().max().item(), (blended[:, 1:] - blended[:, :-1]).abs().max().item())
    spread = max(values.values()) - min(values.values())
    assert steps <= math.sin(math.pi / (2 * overlap)) * spread


def test_tiling_a_real_network_matches_the_whole_image(tmp_path: Path, odd_photo: torch.Tensor) -> None:
    """A seeded NAFNet without down-sampling levels (so every tile sits on the whole image's pixel grid), loaded
    from a model file like any other, restored in tiles smaller than the image."""
    path = write_tiny_model(tmp_path / "flat.safetensors", encoder_blocks=(), decoder_blocks=(), middle_blocks=2)
    model = uir.load(str(path))
    whole = model.restore_tensor(odd_photo, tile=0)
    assert (whole - odd_photo).abs().mean().item() > 0.1  # the network really changes the photo (0.21)
    error = (model.restore_tensor(odd_photo, tile=24, overlap=8) - whole).abs().max().item()
    assert error < 0.02  # measured: 0.0165 (plain averaging of the overlaps: 0.34; no overlap: 0.58)
    assert (model.restore_tensor(odd_photo, tile=24, overlap=0) - whole).abs().max().item() > 10 * error


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


def test_report_holds_time_and_scores_before_and_after(
    tmp_path: Path, photo: torch.Tensor, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = itertools.count(100.0, 1.25)  # the restore's two clock readings are 1.25 s apart
    monkeypatch.setattr(restore_command, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    io.write_image(tmp_path / "in" / "cat.png", photo)
    argv = ["restore", str(tmp_path / "in"), "--model", str(tiny_model_file), "--engine", "torch", "--report"]
    assert main([*argv, "-o", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "cat.json").read_text())
    assert report["model"] == "tiny" and report["seconds"] == 1.25
    assert report["output"] == str(tmp_path / "out" / "cat.png")
    lq = io.read_image(tmp_path / "in" / "cat.png").image
    restored = uir.load(str(tiny_model_file)).restore_tensor(lq)
    for key, image in (("before", lq), ("after", restored)):  # the tiny network changes the scores a lot
        expected = uir.inspect_image(image, classifier=None)
        assert (report[key]["piqe"], report[key]["niqe"]) == pytest.approx((expected.piqe, expected.niqe)), key
    assert abs(report["before"]["piqe"] - report["after"]["piqe"]) > 10
    assert {"piqe", "piqe_grade", "niqe", "verdict", "degradations"} <= set(report["before"])
    assert set(report["before"]["degradations"]) == set(SHIPPED_CLASSES)  # the shipped classifier's view
    assert main([*argv, "-o", str(tmp_path / "bare"), "--classifier", "none"]) == 0
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


def test_tile_and_overlap_options_reach_the_tiler(
    tmp_path: Path, tiny_model_file: Path, odd_photo: torch.Tensor
) -> None:
    """The tiny network's output depends on the tiles it sees, so the file tells which tiling ran."""
    io.write_image(tmp_path / "in" / "photo.png", odd_photo)
    lq = io.read_image(tmp_path / "in" / "photo.png").image
    argv = ["restore", str(tmp_path / "in"), "--model", str(tiny_model_file), "--engine", "torch"]
    assert main([*argv, "-o", str(tmp_path / "out"), "--tile", "40", "--overlap", "8"]) == 0
    written = io.read_image(tmp_path / "out" / "photo.png").image
    model = uir.load(str(tiny_model_file))
    expected = model.restore_tensor(lq, tile=40, overlap=8)
    assert (written - expected).abs().max().item() <= 0.5 / 255 + 1e-6  # 8-bit rounding only
    for other in ({"tile": 0}, {"tile": 40}, {"tile": 48, "overlap": 8}):  # whole image, default overlap, other tile
        assert (written - model.restore_tensor(lq, **other)).abs().max().item() > 10 / 255, other


def test_engine_auto_falls_back_to_torch_without_onnxruntime(
    tmp_path: Path,
    tiny_model_file: Path,
    odd_photo: torch.Tensor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a)
    )
    monkeypatch.setenv("UIR_CACHE", str(tmp_path / "cache"))
    io.write_image(tmp_path / "in" / "photo.png", odd_photo)
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file)]) == 0
    by_torch = uir.load(str(tiny_model_file), engine="torch").restore_tensor(
        io.read_image(tmp_path / "in" / "photo.png").image
    )
    assert (io.read_image(tmp_path / "out" / "photo.png").image - by_torch).abs().max().item() <= 0.5 / 255 + 1e-6
    assert not (tmp_path / "cache").exists()  # nothing was exported
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # chosen up front, not after a failure


def test_recursive_restores_sub_folders_into_distinct_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = ["a.png", "sub/a.png", "sub/b.jpg", "sub/deeper/A.png", ".hidden/c.png"]
    for name in inputs:
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)).save(tmp_path / "in" / name)
    argv = ["restore", str(tmp_path / "in"), "--model", "identity"]
    assert main([*argv, "-o", str(tmp_path / "flat")]) == 0
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a.png"]
    assert main([*argv, "-o", str(tmp_path / "out"), "-r"]) == 0
    # Sorted input order; clashing names (case-insensitively) are numbered; hidden folders are skipped.
    outputs = {"a.png": "a.png", "a-2.png": "sub/a.png", "b.png": "sub/b.jpg", "A-3.png": "sub/deeper/A.png"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(outputs)
    for output, source in outputs.items():
        restored, original = (io.read_image(p).image for p in (tmp_path / "out" / output, tmp_path / "in" / source))
        assert torch.equal(restored, original), output
