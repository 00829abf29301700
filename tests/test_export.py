"""ONNX export: dynamic H and W really work, the file matches torch, and the onnxruntime engine restores alike."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import uir
from conftest import write_tiny_model
from uir.cli import main
from uir.errors import UirError
from uir.export import CHECK_IMAGE, OnnxRestorer, export_onnx, prefers_onnx
from uir.models.backbones import create_backbone
from uir.restorers import load_restorer

ONNX_INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not ONNX_INSTALLED, reason="the onnx extra is not installed (pip install 'uir[onnx]')")
LABELS = ["noise", "haze", "rain-streaks"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def tiny_weights(tiny_model_file: Path) -> Path:
    """A nafnet-tiny with seeded random non-trivial weights (untrained NAFNet blocks start as identities)."""
    return tiny_model_file


@pytest.fixture(scope="module")
def photo_file(folder: Path) -> Path:
    """A 37×53 crop of a real photo, as a PNG."""
    path = folder / "photo.png"
    Image.open(CHECK_IMAGE).convert("RGB").crop((150, 60, 203, 97)).save(path)
    return path


@pytest.fixture(scope="module")
def tiny_export(folder: Path, tiny_weights: Path, photo_file: Path) -> tuple[Path, str]:
    """``uir export --onnx`` of the tiny model: the file and what the command printed."""
    if not ONNX_INSTALLED:
        pytest.skip("the onnx extra is not installed")
    path = folder / "tiny.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["export", "--onnx", "--model", str(tiny_weights), "-o", str(path), "--check", str(photo_file)])
    assert code == 0
    return path, printed.getvalue()


@needs_onnx
def test_cli_prints_the_report(tiny_export: tuple[Path, str]) -> None:
    path, printed = tiny_export
    assert f"exported tiny to {path}" in printed and "dynamo exporter" in printed and "dynamic H and W" in printed
    assert "checked on photo.png (37×53): max |onnxruntime − torch| = " in printed
    assert "torch " in printed and "onnxruntime " in printed and " s " in printed


@needs_onnx
@pytest.mark.parametrize("size", [(37, 53), (45, 71), (5, 7)])
def test_tiny_export_matches_torch_at_odd_sizes(tiny_export: tuple[Path, str], tiny_weights: Path, size) -> None:
    onnx_model, torch_model = OnnxRestorer(tiny_export[0]), load_restorer(str(tiny_weights))
    lq = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    restored = onnx_model.restore(lq)
    assert restored.shape == lq.shape
    torch.testing.assert_close(restored, torch_model.restore(lq), rtol=0, atol=1e-5)  # measured: 1.9e-6


@needs_onnx
def test_the_file_describes_the_model(tiny_export: tuple[Path, str]) -> None:
    model = uir.load(str(tiny_export[0]))  # .onnx files load through the registered loader
    assert isinstance(model.restorer, OnnxRestorer)
    assert model.name == "tiny" and model.labels == LABELS
    assert model.restorer.size_multiple == create_backbone("nafnet-tiny").size_multiple
    assert model.restorer.tile_size == 1024  # ModelRestorer's default


@needs_onnx
def test_default_model_export_matches_torch_on_a_photo_crop(folder: Path) -> None:
    import onnxruntime

    crop = folder / "crop.png"
    Image.open(CHECK_IMAGE).convert("RGB").crop((150, 60, 246, 124)).save(crop)  # 64×96
    report = export_onnx("default", folder / "default.onnx", check=crop, runs=1)
    assert report.model == "nafnet-fr-v2.1" and report.exporter == "dynamo" and report.image_size == (64, 96)
    assert report.file_bytes == (folder / "default.onnx").stat().st_size > 1_000_000
    # The file run by onnxruntime itself against the backbone run by torch itself, on the photo and on a seeded
    # image of a size the graph pads inside.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(folder / "default.onnx"), options, providers=["CPUExecutionProvider"])
    backbone = load_restorer("default").backbone
    photo = np.asarray(Image.open(crop), np.float32).transpose(2, 0, 1)[None] / 255
    seeded = np.random.default_rng(0).random((1, 3, 67, 97), dtype=np.float32)
    diffs = []
    for lq in (photo, seeded):
        by_onnx = session.run(None, {"lq": lq})[0]
        with torch.no_grad():
            by_torch = backbone(torch.from_numpy(lq)).numpy()
        assert by_onnx.shape == lq.shape
        diffs.append(np.abs(np.clip(by_onnx, 0, 1) - np.clip(by_torch, 0, 1)).max())
    assert max(diffs) < 5e-6  # measured: 3.0e-7 and 7.2e-7
    assert report.max_abs_diff == pytest.approx(diffs[0], rel=0.1)  # the report measured the same difference


@needs_onnx
def test_restore_with_the_onnx_engine_matches_torch_and_new_weights_export_again(
    tmp_path: Path, tiny_weights: Path, photo_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UIR_CACHE", str(tmp_path / "cache"))
    weights = Path(shutil.copy(tiny_weights, tmp_path / "tiny.safetensors"))
    for engine in ("torch", "onnx"):
        args = ["restore", str(photo_file), "-o", str(tmp_path / engine), "--model", str(weights)]
        assert main([*args, "--engine", engine]) == 0
    cached = list((tmp_path / "cache" / "onnx").glob("tiny-*.onnx"))
    assert len(cached) == 1
    by_torch, by_onnx = (np.asarray(Image.open(tmp_path / e / "photo.png"), np.int16) for e in ("torch", "onnx"))
    assert by_torch.shape == by_onnx.shape == (37, 53, 3)
    assert np.abs(by_torch - by_onnx).max() <= 1
    # The second load runs the cached file: nothing is exported again.
    with monkeypatch.context() as patch:
        patch.setattr("uir.export._write_onnx", lambda *args: pytest.fail("exported twice"))
        assert uir.load(str(weights), engine="onnx").restorer.path == cached[0]
        paired = uir.load(str(weights), engine="onnx", companion=str(weights))  # a companion runs on the same engine
        assert isinstance(paired.companion, OnnxRestorer) and paired.companion.path == cached[0]
    # Other weights in the same file: a new export, which runs the new weights.
    write_tiny_model(weights, seed=1)
    model = uir.load(str(weights), engine="auto")
    assert isinstance(model.restorer, OnnxRestorer) and model.restorer.path != cached[0]
    assert sorted((tmp_path / "cache" / "onnx").glob("tiny-*.onnx")) == sorted([*cached, model.restorer.path])
    lq = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(2))
    new_weights = uir.load(str(weights), engine="torch").restore_tensor(lq)
    assert (model.restore_tensor(lq) - new_weights).abs().max().item() < 1e-5  # measured: 1.3e-6
    assert (uir.load(str(tiny_weights)).restore_tensor(lq) - new_weights).abs().mean().item() > 0.1  # 0.45


def test_classic_baselines_are_not_exportable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UirError, match="classic baseline") as info:
        export_onnx("identity", tmp_path / "identity.onnx")
    assert "\n" not in str(info.value)
    assert main(["export", "--onnx", "--model", "nlm", "-o", str(tmp_path / "nlm.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classic baseline" in err
    with pytest.raises(UirError, match="classic baseline"):
        uir.load("identity", engine="onnx")


def test_missing_onnx_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else find_spec(name, *a))
    with pytest.raises(UirError, match=r"pip install 'uir\[onnx\]'"):
        export_onnx("default", tmp_path / "default.onnx")
    assert not prefers_onnx("default")


def test_engine_choice(tmp_path: Path) -> None:
    assert not prefers_onnx("identity") and not prefers_onnx("default", "cuda")
    assert prefers_onnx("default") == prefers_onnx("fast") == prefers_onnx("run/best.safetensors") == ONNX_INSTALLED
    with pytest.raises(UirError, match="unknown engine"):
        uir.load("identity", engine="tensorrt")
    assert main(["export", "--model", "default", "-o", str(tmp_path / "x.onnx")]) == 2  # no format given


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--check IMAGE" in out
    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    assert "--engine" in capsys.readouterr().out
