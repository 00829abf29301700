"""Perceive-IR: the quality perceiver (tiers, training, export/load) and the quality-aware loss around any backbone."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from uir.checkpoint import load_checkpoint
from uir.config import Config, config_from_dict
from uir.errors import UirError
from uir.methods.perceiver import (
    PerceiverTraining,
    TierDataset,
    export_perceiver,
    load_perceiver,
    synthetic_medium,
    task_weights,
    tier_accuracy,
)
from uir.methods.quality_aware import QualityAware, build_quality_aware
from uir.models.backbones import create_backbone
from uir.models.heads.perceiver import PerceiverHead, QualityPerceiver
from uir.train import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny_test.yaml"


def _perceiver(name: str = "nafnet-tiny") -> QualityPerceiver:
    encoder = create_backbone(name)
    return QualityPerceiver(encoder, PerceiverHead(encoder.feature_dims, embed_dim=8, prompt_tokens=2))


def _batch(size: int = 24, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, size, size, generator=g)
    return {
        "lq": (gt + 0.3 * torch.randn(2, 3, size, size, generator=g)).clamp(0, 1),
        "gt": gt,
        "label": torch.tensor([0, 1]),
    }


# --------------------------------------------------------------------------- stage 1: tiers and the perceiver


def test_synthetic_medium_is_a_milder_redraw_of_the_same_degradation() -> None:
    from uir.degradations import degrade

    gt = torch.rand(1, 3, 33, 41, generator=torch.Generator().manual_seed(1))
    lq, record = degrade(gt, "noise", severity=0.8, seed=3)
    records = [record.to_dict()]
    medium = synthetic_medium(lq, gt, records, scale=0.3)
    assert torch.equal(medium, synthetic_medium(lq, gt, records, scale=0.3))  # deterministic: resume is exact
    assert 0 < (medium - gt).abs().mean() < (lq - gt).abs().mean()
    blended = synthetic_medium(lq, gt, [None], scale=0.3)  # no record (noisy/paired source): a blend
    assert torch.allclose(blended, gt + 0.3 * (lq - gt))


def test_task_weights_balance_the_tasks_of_a_batch() -> None:
    weights = task_weights(torch.tensor([0, 0, 0, 2]))
    assert torch.allclose(weights, torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2]))


def test_perceiver_learns_the_tiers_of_one_batch() -> None:
    torch.manual_seed(0)
    method = PerceiverTraining(create_backbone("nafnet-tiny"), ["a", "b"], embed_dim=8, prompt_tokens=2)
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    batch = _batch()
    for _ in range(40):
        loss, logs = method(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert logs["accuracy"] == 1.0 and loss.item() < 0.5
    assert method.head.prompts.grad is not None and next(method.backbone.parameters()).grad is not None
    probs = method.perceiver().eval().perceive(batch["gt"][0])
    assert list(probs) == ["low", "medium", "high"] and abs(sum(probs.values()) - 1) < 1e-5


def _write_tiers(root: Path) -> Path:
    """A manifest of 4 rows (2 tasks, 2 folds) of 30×37 images."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        high = rng.integers(0, 255, (30, 37, 3)).astype(np.int16)
        noise = rng.normal(0, 60, high.shape)
        for tier, amount in (("low", 1.0), ("medium", 0.4), ("high", 0.0)):
            image = np.clip(high + amount * noise, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / f"{i}_{tier}.png")
        row = {t: f"{i}_{t}.png" for t in ("low", "medium", "high")}
        rows.append({**row, "task": ["noise", "haze"][i % 2], "fold": i // 2})
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as file:
        writer = csv.DictWriter(file, ["low", "medium", "high", "task", "fold"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def test_manifest_tiers_feed_the_perceiver(tmp_path: Path) -> None:
    manifest = _write_tiers(tmp_path)
    dataset = TierDataset(manifest, crop=16, flip=True, folds=[1])
    sample = dataset[0]
    assert len(dataset) == 2 and sample["lq"].shape == sample["medium"].shape == (3, 16, 16)
    assert sample["label"] == "noise"
    method = PerceiverTraining(create_backbone("nafnet-tiny"), ["noise", "haze"], tiers="manifest", embed_dim=8)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in ("lq", "medium", "gt")}
    loss, _ = method({**batch, "label": torch.tensor([0, 1])})
    assert loss.isfinite()
    with pytest.raises(UirError, match="no 'medium'"):
        method({k: batch[k] for k in ("lq", "gt")})
    accuracy = tier_accuracy(method.perceiver().eval(), [{**batch, "label": ["noise", "haze"]}])
    assert set(accuracy) == {"noise", "haze", "all"} and 0 <= accuracy["all"] <= 1
    (tmp_path / "bad.csv").write_text("low,high\na,b\n")
    with pytest.raises(UirError, match="lacks column"):
        TierDataset(tmp_path / "bad.csv")


# --------------------------------------------------------------------------- stage 2: the quality-aware loss


def _proxy() -> torch.nn.Module:
    return create_backbone("nafnet-tiny").eval().requires_grad_(False)


@pytest.mark.parametrize("term", ["l1", "clip", "dpl"])
@pytest.mark.parametrize("name", ["nafnet-tiny", "restormer-tiny"])
def test_each_loss_term_trains_the_restorer_and_nothing_frozen(term: str, name: str) -> None:
    torch.manual_seed(0)
    weights = {"pixel_weight": 0.0, "clip_weight": 0.0, "dpl_weight": 0.0} | {
        {"l1": "pixel_weight", "clip": "clip_weight", "dpl": "dpl_weight"}[term]: 1.0
    }
    perceiver, proxy = _perceiver(), _proxy()
    method = QualityAware(
        create_backbone(name), ["a", "b"], perceiver=perceiver, proxies=[proxy], probe_patch=16, **weights
    )
    loss, logs = method(_batch())
    loss.backward()
    grads = [p.grad for p in method.backbone.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), term
    frozen = [*perceiver.parameters(), *proxy.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in frozen)
    assert {id(p) for p in method.parameters()} == {id(p) for p in method.backbone.parameters()}
    assert not any(key.startswith(("perceiver", "_frozen")) for key in method.state_dict())
    assert logs[term].isfinite()


def test_alpha_is_measured_per_task_on_a_fixed_probe_and_kept_in_buffers() -> None:
    torch.manual_seed(0)
    method = QualityAware(
        create_backbone("nafnet-tiny"),
        ["a", "b", "c"],
        perceiver=_perceiver(),
        proxies=[_proxy(), _proxy()],
        probe_size=4,
        probe_patch=16,
        probe_every=2,
    )
    method(_batch(seed=0))
    assert (method.probe_task[:2] >= 0).all() and (method.probe_task[2:] < 0).all()
    probe = method.probe_lq.clone()
    method(_batch(seed=1))  # probe full, step 1: not measured yet
    assert torch.equal(method.alpha, torch.ones(2, 3))
    method(_batch(seed=2))  # step 2: measured; task c has no probe images and keeps alpha 1
    assert torch.equal(method.probe_lq[:2], probe[:2])
    assert set(method.alpha[:, :2].flatten().tolist()) <= {0.75, 1.25}
    assert torch.equal(method.alpha[:, 2], torch.ones(2))
    assert not method.proxy_psnr[:, :2].isnan().any()
    fresh = QualityAware(
        create_backbone("nafnet-tiny"), ["a", "b", "c"], perceiver=_perceiver(), proxies=[_proxy(), _proxy()],
        probe_size=4, probe_patch=16, probe_every=2,
    )  # fmt: skip
    fresh.load_state_dict(method.state_dict())
    assert torch.equal(fresh.alpha, method.alpha) and int(fresh.step) == 3


# --------------------------------------------------------------------------- the two stages through uir.train


def _config(**sections: dict) -> Config:
    raw = yaml.safe_load(CONFIG.read_text())
    raw["optim"] |= {"total_iters": 2, "warmup_iters": 0, "ema_decay": 0.0}
    raw["train"] |= {"val_every": 0, "ckpt_every": 0}
    raw["val"] |= {"max_images": 1}
    for key, value in sections.items():
        raw[key] = {**raw[key], **value} if key != "method" else value
    return config_from_dict(raw)


def test_two_stages_train_export_and_load(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UIR_DATA_ROOT", str(tiny_data))
    stage1 = _config(method={"name": "perceiver", "medium_mix": "3d", "embed_dim": 8, "prompt_tokens": 2})
    assert train(stage1, tmp_path / "perceiver", progress=False).finished
    assert "head.prompts" in load_checkpoint(tmp_path / "perceiver" / "last.ckpt")["method"]
    exported = export_perceiver(tmp_path / "perceiver")
    image = torch.rand(3, 29, 31)
    from_run, from_file = load_perceiver(tmp_path / "perceiver"), load_perceiver(exported)
    assert from_run.perceive(image) == pytest.approx(from_file.perceive(image))
    with pytest.raises(UirError, match="not a quality perceiver"):
        load_perceiver(tmp_path / "perceiver" / "final.safetensors")

    stage2 = _config(
        model={"backbone": "restormer-tiny"},
        method={
            "name": "quality-aware",
            "perceiver": str(exported),
            "proxies": [str(tmp_path / "perceiver")],
            "probe_patch": 16,
            "probe_size": 2,
        },
    )
    run = tmp_path / "restorer"
    assert train(stage2, run, stop_at=1, progress=False).step == 1
    assert train(stage2, run, resume=True, progress=False).step == 2
    state = load_checkpoint(run / "last.ckpt")["method"]
    assert "alpha" in state and not any(k.startswith("perceiver") for k in state)


def test_quality_aware_needs_a_perceiver(tmp_path: Path) -> None:
    with pytest.raises(UirError, match="method.perceiver"):
        _config(method={"name": "quality-aware"})
    cfg = _config(method={"name": "quality-aware", "perceiver": str(tmp_path / "missing")})
    with pytest.raises(UirError, match="does not exist"):
        build_quality_aware(create_backbone("nafnet-tiny"), cfg.method, labels=["noise"])
