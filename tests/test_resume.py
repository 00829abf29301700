"""Exact resume for every registered training method: a run stopped and resumed is the run never stopped.

Each method trains ``TOTAL`` steps on the tiny data twice: straight through, and stopped after each step of
``STOPS`` and resumed. Everything the final checkpoint holds must match bit for bit (weights, EMA, optimizer,
schedule, the method's own state, random states, ``best_psnr``), and so must the batches trained on, the log and
``best.safetensors``.

Only MaskDCPT draws from the global random generators by itself (its masks); the other methods train a backbone
with dropout (a test preset), so that a resume that loses the random state changes their weights too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import uir.train
from uir.checkpoint import export_safetensors, load_checkpoint, read_safetensors
from uir.config import Config, config_from_dict
from uir.methods import METHODS
from uir.models.backbones import PRESETS, FTBNAFNet, NAFBlock, NAFNet, create_backbone
from uir.models.heads.perceiver import TIERS, PerceiverHead, QualityPerceiver
from uir.train import Trainer, TrainResult, train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny_test.yaml"
TOTAL, STOPS = 8, (4, 6)  # validation after steps 2, 4 | 6 | 8
PENALTY = 5.0  # dB per step off the validation PSNR; tiny runs gain at most 4.2 dB in 2 steps

_DROPOUT = {"block": partial(NAFBlock, dropout=0.2)}
DROPOUT_PRESETS = {
    "test-nafnet-dropout": (NAFNet, {**PRESETS["nafnet-tiny"][1], **_DROPOUT}),
    "test-nafnet-ftb-dropout": (FTBNAFNet, {**PRESETS["nafnet-ftb-tiny"][1], **_DROPOUT}),
}

# Every registered method's tiny run: (backbone, method options). A new method fails here until it has one.
SETUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "supervised": ("test-nafnet-dropout", {}),
    "maskdcpt": ("nafnet-tiny", {"head_width": 8}),
    # Levels grow at the first step after step 2 (before the first stop) and after step 6 (right after a resume).
    "amirnet": (
        "test-nafnet-ftb-dropout",
        {"grow_steps": [2, 6], "reservoir_size": 4, "replay_size": 2, "patch_size": 16, "augment_passes": 2},
    ),
    "perceiver": ("test-nafnet-dropout", {"medium_mix": "3d", "embed_dim": 8, "prompt_tokens": 2}),
    # α is measured against one proxy at steps 0, 3 (before the first stop) and 6 (right after a resume).
    "quality-aware": ("test-nafnet-dropout", {"probe_size": 2, "probe_patch": 16, "probe_every": 3}),
}
# A piece of each method's own state (the checkpoint's "method" entry), besides its backbone.
OWN_STATE = {
    "maskdcpt": "head.fc.weight",
    "amirnet": "tree_labels",
    "perceiver": "head.prompts",
    "quality-aware": "alpha",
}
TIMINGS = {"it_per_s", "data_s"}  # log.csv columns that measure the machine, not the run


@dataclass
class Runs:
    """One method's straight run and its stopped-and-resumed twin (checkpoints, results, batches trained on)."""

    straight: Path
    resumed: Path
    results: tuple[TrainResult, TrainResult]
    at_stop: dict[str, Any]
    batches: tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The frozen helpers of quality-aware: a random quality perceiver and a random proxy restorer, exported."""
    root = tmp_path_factory.mktemp("helpers")
    torch.manual_seed(0)
    encoder = create_backbone("nafnet-tiny")
    perceiver = QualityPerceiver(encoder, PerceiverHead(encoder.feature_dims, embed_dim=8, prompt_tokens=2))
    meta = {"format": "uir-quality-perceiver", "backbone": "nafnet-tiny", "overrides": {}, "tiers": list(TIERS)}
    export_safetensors(
        root / "perceiver.safetensors", perceiver.state_dict(), meta | {"head": {"embed_dim": 8, "prompt_tokens": 2}}
    )
    proxy = create_backbone("nafnet-tiny").state_dict()
    export_safetensors(root / "proxy.safetensors", proxy, {"backbone": "nafnet-tiny"})
    return {"perceiver": str(root / "perceiver.safetensors"), "proxies": [str(root / "proxy.safetensors")]}


def _config(name: str, helpers: dict[str, Any]) -> Config:
    backbone, options = SETUPS[name]
    raw = yaml.safe_load(CONFIG.read_text())
    raw["model"] = {"backbone": backbone}
    raw["method"] = {"name": name, **options, **(helpers if name == "quality-aware" else {})}
    raw["optim"] |= {"total_iters": TOTAL}
    raw["train"] |= {"val_every": 2, "ckpt_every": 0}
    raw["val"] |= {"max_images": 1}
    return config_from_dict(raw)


def _train(cfg: Config, run_dir: Path, **options: Any) -> tuple[TrainResult, list[dict[str, torch.Tensor]]]:
    """``train``, returning the batches each step trained on too, with validation scores that fall.

    Tiny runs improve at every validation, so the best would come last and a resume that forgot the best so far
    would go unnoticed. The measured PSNR minus ``PENALTY`` dB per step puts the best at the first validation.
    """
    seen: list[dict[str, torch.Tensor]] = []
    train_step, validate, measure = Trainer.train_step, Trainer.validate, uir.train.validation_psnr

    def recording(self: Trainer, batch: dict[str, Any]) -> Any:
        seen.append({k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)})
        return train_step(self, batch)

    def falling(self: Trainer) -> dict[str, float]:
        penalty = PENALTY * self.step
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(uir.train, "validation_psnr", lambda *a: {k: v - penalty for k, v in measure(*a).items()})
            return validate(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "train_step", recording)
        patch.setattr(Trainer, "validate", falling)
        result = train(cfg, run_dir, progress=False, **options)
    return result, seen


@pytest.fixture(scope="module", params=sorted(METHODS))
def runs(
    request: pytest.FixtureRequest, tiny_data: Path, helpers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Runs:
    name = request.param
    assert name in SETUPS, f"add a tiny run of method {name!r} to SETUPS"
    straight, resumed = tmp_path_factory.mktemp(f"{name}-straight"), tmp_path_factory.mktemp(f"{name}-resumed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UIR_DATA_ROOT", str(tiny_data))
        for preset, value in DROPOUT_PRESETS.items():
            patch.setitem(PRESETS, preset, value)
        cfg = _config(name, helpers)
        reference, reference_batches = _train(cfg, straight)
        batches: list[dict[str, torch.Tensor]] = []
        for index, stop in enumerate((*STOPS, None)):
            result, seen = _train(cfg, resumed, stop_at=stop, resume=index > 0)
            batches += seen
            assert result.step == (stop or TOTAL)
            if index == 0:
                at_stop = load_checkpoint(resumed / "last.ckpt")
    assert reference.finished and result.finished
    return Runs(straight, resumed, (reference, result), at_stop, (reference_batches, batches))


def _checkpoints(runs: Runs) -> tuple[dict[str, Any], dict[str, Any]]:
    return load_checkpoint(runs.straight / "last.ckpt"), load_checkpoint(runs.resumed / "last.ckpt")


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two checkpoint values differ; tensors must be equal bit for bit (NaN included)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(a.keys() ^ b.keys())}"]
        return [d for key in a for d in _differences(a[key], b[key], f"{where}.{key}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where} length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        bits = a.dtype == b.dtype and a.shape == b.shape
        bits = bits and torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
        return [] if bits else [where]
    return [] if type(a) is type(b) and a == b else [f"{where}: {a!r} != {b!r}"]


def _log(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "log.csv").open() as file:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(file)]


def test_every_method_has_a_tiny_run() -> None:
    assert set(SETUPS) == set(METHODS)
    assert set(OWN_STATE) <= set(METHODS)


def test_resumed_run_ends_bit_exact(runs: Runs) -> None:
    straight, resumed = _checkpoints(runs)
    name = straight["config"]["method"]["name"]
    assert straight["step"] == TOTAL and straight["ema"] is not None and straight["optimizer"]["state"]
    if name in OWN_STATE:
        assert OWN_STATE[name] in straight["method"]
    moved = _differences(runs.at_stop["backbone"], straight["backbone"])
    assert len(moved) > len(straight["backbone"]) // 2, "the steps after the stop must change the weights"
    differences = _differences(straight, resumed)
    assert not differences, f"{len(differences)} differences, e.g. {differences[:4]}"


def test_resumed_run_continues_the_random_state(runs: Runs) -> None:
    straight, resumed = _checkpoints(runs)
    assert _differences(runs.at_stop["rng"][0]["torch"], straight["rng"][0]["torch"]), "no draws after the stop"
    differences = _differences(straight["rng"], resumed["rng"])
    assert not differences, f"the resumed run ends with other random states: {differences}"


def test_resumed_run_trains_on_the_same_batches(runs: Runs) -> None:
    straight, resumed = runs.batches
    assert len(straight) == len(resumed) == TOTAL
    for step, (a, b) in enumerate(zip(straight, resumed, strict=True)):
        assert not _differences(a, b), f"step {step} trained on another batch"


def test_resumed_run_keeps_the_best_psnr_and_its_weights(runs: Runs) -> None:
    scores = {int(row["step"]): float(row["psnr/mean"]) for row in _log(runs.straight) if row["psnr/mean"]}
    best = max(scores, key=scores.__getitem__)
    assert best <= STOPS[0] < max(scores), f"the best must come before the stop: {scores}"
    straight, resumed = (result.best_psnr for result in runs.results)
    assert straight == pytest.approx(scores[best], abs=1e-4)  # the log rounds to 6 digits
    assert resumed == straight, "the resumed run lost the best PSNR of before the stop"
    (meta, weights), (resumed_meta, resumed_weights) = (
        read_safetensors(run / "best.safetensors") for run in (runs.straight, runs.resumed)
    )
    assert int(meta["step"]) == best and int(resumed_meta["step"]) == best and meta["psnr"] == resumed_meta["psnr"]
    assert not _differences(weights, resumed_weights)
    assert [c["best_psnr"] for c in _checkpoints(runs)] == [straight, straight]


def test_resumed_run_logs_the_same_rows(runs: Runs) -> None:
    straight, resumed = _log(runs.straight), _log(runs.resumed)
    assert [row["step"] for row in resumed] == [row["step"] for row in straight] == ["2", "4", "6", "8"]
    for a, b in zip(straight, resumed, strict=True):
        changed = {k: (a[k], b[k]) for k in a if a[k] != b.get(k)}
        assert not changed, f"step {a['step']}: {changed}"


@pytest.mark.parametrize("runs", ["amirnet"], indirect=True)
def test_amirnet_grows_the_restored_tree_after_a_resume(runs: Runs) -> None:
    straight, resumed = _checkpoints(runs)
    tree = runs.at_stop["method"]["tree_labels"]
    assert int(runs.at_stop["backbone"]["degradation.depth"]) == 2 and (tree[:, 1] >= 0).all()
    assert (tree[:, 2] < 0).all(), "level 2 must grow after the resume"
    assert int(resumed["backbone"]["degradation.depth"]) == 3 and (resumed["method"]["tree_labels"][:, 2] >= 0).all()
    for key in ("tree_labels", "reservoir_lq", "reservoir_gt", "seen", "step"):
        assert not _differences(straight["method"][key], resumed["method"][key]), key
