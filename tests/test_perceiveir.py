"""Perceive-IR: the quality perceiver (tiers, training, export/load) and the quality-aware loss around any backbone."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import load_script
from uir.checkpoint import load_checkpoint
from uir.config import Config, config_from_dict
from uir.errors import UirError
from uir.methods.perceiver import (
    PerceiverConfig,
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
from uir.models.heads.perceiver import TIERS, PerceiverHead, QualityPerceiver
from uir.train import train

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "tiny_test.yaml"


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
    # mixed: per sample the manifest's medium (share 1), the synthetic blend (share 0), or some of each.
    for share, expected in ((1.0, batch["medium"]), (0.0, synthetic_medium(batch["lq"], batch["gt"], None, scale=0.4))):
        mixed = PerceiverTraining(create_backbone("nafnet-tiny"), ["noise"], tiers="mixed", manifest_share=share)
        assert torch.equal(mixed.medium(batch), expected)
    # Half: each sample of one batch chooses for itself (the manifest's medium here is all ones, unlike any blend).
    mixed.manifest_share = 0.5
    wide = {"lq": torch.rand(16, 3, 8, 8), "gt": torch.rand(16, 3, 8, 8), "medium": torch.ones(16, 3, 8, 8)}
    torch.manual_seed(0)
    from_manifest = (mixed.medium(wide) == 1).flatten(1).all(dim=1)
    assert 0 < int(from_manifest.sum()) < 16
    blend = synthetic_medium(wide["lq"], wide["gt"], None, scale=0.4)
    torch.manual_seed(0)  # the same seed, the same choices; the others are the synthetic blend
    assert torch.equal(mixed.medium(wide)[~from_manifest], blend[~from_manifest])
    with pytest.raises(UirError, match="mixed but the batch has no 'medium'"):
        mixed({k: batch[k] for k in ("lq", "gt")})
    with pytest.raises(ValueError, match="manifest_share"):
        PerceiverConfig(tiers="mixed", manifest_share=1.5).check()
    accuracy = tier_accuracy(method.perceiver().eval(), [{**batch, "label": ["noise", "haze"]}])
    assert set(accuracy) == {"noise", "haze", "all"}

    def stub(images: torch.Tensor) -> torch.Tensor:
        # The images come as lq, lq, medium, medium, gt, gt (tiers 0, 0, 1, 1, 2, 2) of noise, haze, noise...:
        # these logits rank all 3 noise images right and 1 of the 3 haze ones.
        return torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 2, 0]), 3).float()

    assert tier_accuracy(stub, [{**batch, "label": ["noise", "haze"]}]) == {"noise": 1.0, "haze": 1 / 3, "all": 4 / 6}
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


def test_dpl_skip_deepest_leaves_out_the_bottleneck_levels() -> None:
    perceiver = _perceiver()
    x = torch.rand(2, 3, 32, 32)
    levels = perceiver.features(x)
    skipped = QualityAware(
        create_backbone("nafnet-tiny"), ["a", "b"], perceiver=perceiver, dpl_skip_deepest=1, probe_patch=16
    )
    assert [f.shape for f in skipped.features(x)] == [f.shape for f in levels[:-1]]
    assert skipped(_batch(size=32))[1]["dpl"].isfinite()
    unchanged = QualityAware(create_backbone("nafnet-tiny"), ["a"], perceiver=perceiver)
    assert [f.shape for f in unchanged.features(x)] == [f.shape for f in levels]
    with pytest.raises(UirError, match=r"^method\.dpl_skip_deepest \(5\) leaves none of the feature net's 5 levels$"):
        QualityAware(create_backbone("nafnet-tiny"), ["a"], perceiver=perceiver, dpl_skip_deepest=len(levels))


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


# --------------------------------------------------------------------------- stage 2: the Perceive-IR network


def test_perceiveir_semantic_encoder_is_frozen_fixed_and_outside_the_state() -> None:
    first, second = create_backbone("perceiveir-tiny"), create_backbone("perceiveir-tiny", semantic_seed=1)
    assert not any(k.startswith(("semantic.", "_semantic")) for k in first.state_dict())
    assert all(not p.requires_grad for p in first.semantic.parameters())
    first.train()
    assert not first.semantic.training
    lq = torch.rand(2, 3, 29, 35)
    again = create_backbone("perceiveir-tiny")  # the same arguments rebuild the same random encoder
    for a, b, c in zip(first.semantic(lq), again.semantic(lq), second.semantic(lq), strict=True):
        assert torch.equal(a, b) and not torch.equal(a, c)
    assert [c.shape for c in first.conditions(lq)] == [torch.Size([2, 16 + 8])] * first.levels


def test_perceiveir_loads_a_trained_semantic_encoder(tmp_path: Path) -> None:
    from uir.checkpoint import export_safetensors

    torch.manual_seed(3)
    trained = create_backbone("nafnet-tiny")
    path = export_safetensors(tmp_path / "sem.safetensors", trained.state_dict(), {"backbone": "nafnet-tiny"})
    net = create_backbone("perceiveir-tiny", semantic_init=str(path))
    lq = torch.rand(1, 3, 24, 24)
    expected = trained.encode(lq)
    got = net.semantic(lq)
    assert len(got) == net.levels and torch.allclose(got[-1], expected[-1].mean(dim=(2, 3)))
    assert net(lq).shape == lq.shape
    with pytest.raises(UirError, match="semantic_init"):
        create_backbone("perceiveir-tiny", semantic_init=str(tmp_path / "missing.safetensors"))


def test_perceiveir_decoder_follows_the_code_and_the_semantics() -> None:
    torch.manual_seed(0)
    net = create_backbone("perceiveir-tiny").eval()
    with torch.no_grad():  # the guidance and prompt scales start at zero: draw them
        for block in net.modules():
            if hasattr(block, "guide"):
                block.guide[-1].weight.normal_(std=0.5)
                block.prompt_scale.weight.normal_(std=0.5)
    lq = torch.rand(2, 3, 24, 32)
    feats = net.encode(lq)
    with torch.no_grad():
        restored = net.decode(feats, lq)
        swapped = net.decode(feats, lq.flip(0))  # the same features, the other image's code and semantics
    assert not torch.allclose(restored[0], (swapped - lq.flip(0) + lq)[0])


def test_info_nce_pulls_crops_of_an_image_together_and_other_types_apart() -> None:
    from uir.methods.quality_aware import info_nce, two_crops

    z = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    label = torch.tensor([0, 0, 1, 1])
    aligned = info_nce(z, z, label, 0.1)
    assert aligned < info_nce(z, z.roll(1, 0), label, 0.1)
    assert info_nce(z, z.roll(1, 0), torch.zeros(4, dtype=torch.long)) == 0  # one type: no negatives
    first, second = two_crops(torch.rand(3, 3, 20, 24), 8, torch.Generator().manual_seed(0))
    assert first.shape == second.shape == (3, 3, 8, 8) and not torch.equal(first, second)


def test_quality_aware_trains_the_degradation_code_of_perceiveir() -> None:
    torch.manual_seed(0)
    method = QualityAware(
        create_backbone("perceiveir-tiny"), ["a", "b"], perceiver=_perceiver(), probe_patch=16,
        pixel_weight=0.0, clip_weight=0.0, dpl_weight=0.0, contrast_weight=0.1,
    )  # fmt: skip
    loss, logs = method(_batch())
    loss.backward()
    assert "cl" in logs and logs["cl"] > 0
    assert all(p.grad is not None for p in method.backbone.cfe.parameters())
    plain = QualityAware(create_backbone("nafnet-tiny"), ["a", "b"], perceiver=_perceiver(), probe_patch=16)
    assert "cl" not in plain(_batch())[1]


def test_perceiveir_trains_with_supervised_and_quality_aware(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UIR_DATA_ROOT", str(tiny_data))
    supervised = _config(model={"backbone": "perceiveir-tiny"}, method={"name": "supervised"})
    assert train(supervised, tmp_path / "sup", progress=False).finished
    from uir.checkpoint import export_safetensors

    perceiver = _perceiver()
    state = dict(perceiver.state_dict())
    meta = {"format": "uir-quality-perceiver", "backbone": "nafnet-tiny", "overrides": {}, "tiers": list(TIERS)}
    meta["head"] = {"embed_dim": 8, "prompt_tokens": 2}
    exported = export_safetensors(tmp_path / "perceiver.safetensors", state, meta)
    stage2 = _config(
        model={"backbone": "perceiveir-tiny"},
        method={"name": "quality-aware", "perceiver": str(exported), "probe_patch": 16, "probe_size": 2},
    )
    assert train(stage2, tmp_path / "qa", progress=False).finished


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_dinov2_semantic_encoder_from_a_local_directory(tmp_path: Path) -> None:
    import transformers

    config = transformers.Dinov2Config(
        hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, image_size=28, patch_size=14
    )
    transformers.Dinov2Model(config).save_pretrained(tmp_path / "dinov2")
    net = create_backbone("perceiveir-tiny", semantic_dinov2=str(tmp_path / "dinov2"))
    assert net.semantic.dims == (16,) * net.levels
    lq = torch.rand(1, 3, 29, 31)
    assert net(lq).shape == lq.shape
    with pytest.raises(UirError, match="config.json"):
        create_backbone("perceiveir-tiny", semantic_dinov2=str(tmp_path))


# --------------------------------------------------------------------------- stage 1: tiers by 2-fold cross-validation


def test_tiers_by_two_fold_cross_validation_feed_the_perceiver(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from uir.commands import perceive
    from uir.methods.perceiver import read_manifest
    from uir.tiers import fold_of

    monkeypatch.setenv("UIR_DATA_ROOT", str(tiny_data))
    parser = argparse.ArgumentParser()
    perceive.add_parser(parser.add_subparsers(), argparse.HelpFormatter)
    out = tmp_path / "tiers"
    args = parser.parse_args(["perceive", "tiers", str(CONFIG), "-o", str(out), "--iterations", "2", "--limit", "3"])
    args.set = ["train.device=cpu", "optim.ema_decay=0.0"]
    args.no_progress = True
    assert args.run(args) == 0
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 9 and {r["task"] for r in rows} >= {"rain-streaks", "noise"}
    assert {r["fold"] for r in rows} == {"0", "1"}
    for fold in (0, 1):  # each fold's restorer was trained on the other fold's pairs only
        trained = yaml.safe_load((out / "runs" / f"fold{fold}" / "config.yaml").read_text())
        assert all(
            s["root"].endswith(tuple(f"pairs/{fold}/{r['task']}" for r in rows)) for s in trained["data"]["sources"]
        )
    for row in rows:
        assert row["low"].startswith(f"pairs/{row['fold']}/") and (out / row["medium"]).is_file()
    assert [fold_of(f"{i}.png") for i in range(8)] == [1, 1, 0, 1, 1, 0, 1, 1]  # sha1: the same on every machine

    stage1 = _config(
        method={"name": "perceiver", "tiers": "manifest", "embed_dim": 8, "prompt_tokens": 2},
        data={"sources": [{"kind": "tiers", "root": str(out / "manifest.csv")}], "crop": 24},
        val={"sources": [{"kind": "tiers", "root": str(out / "manifest.csv")}], "crop": 24},
    )
    assert train(stage1, tmp_path / "perceiver", progress=False).finished
    with pytest.raises(UirError, match="layout and files"):
        _config(data={"sources": [{"kind": "tiers", "root": "m.csv", "files": [0, 2]}]})


# --------------------------------------------------------------------------- optional real weights (tiny stand-ins)


def test_vgg16_from_a_state_dict_file_is_l_dpl_feature_space(tmp_path: Path) -> None:
    from uir.methods.quality_aware import QualityAwareConfig
    from uir.models.frozen import VGG16Features

    torch.manual_seed(0)
    vgg = VGG16Features(taps=("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"))
    state = {f"features.{k}": v for k, v in vgg.features.state_dict().items()}
    torch.save(state | {"classifier.0.weight": torch.zeros(2, 2)}, tmp_path / "vgg16.pth")
    loaded = VGG16Features(tmp_path / "vgg16.pth")
    x = torch.rand(1, 3, 37, 53)
    assert [f.shape[1] for f in loaded.encode(x)] == [64, 128, 256, 512] == list(loaded.feature_dims)
    assert all(torch.equal(a, b) for a, b in zip(loaded.encode(x), vgg.encode(x), strict=False))
    assert not any(p.requires_grad for p in loaded.parameters())
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(UirError, match="lacks or misshapes"):
        VGG16Features(tmp_path / "bad.pth")

    method = QualityAware(
        create_backbone("nafnet-tiny"), ["a", "b"], perceiver=_perceiver(), feature_net=loaded, probe_patch=16
    )
    assert len(method.features(x)) == 4 and method(_batch())[1]["dpl"].isfinite()
    assert not any(k.startswith(("_frozen", "features")) for k in method.state_dict())
    config = QualityAwareConfig(perceiver="p", vgg=str(tmp_path / "missing.pth"))
    with pytest.raises(UirError, match="does not exist"):
        build_quality_aware(create_backbone("nafnet-tiny"), config, labels=["a"])


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_clip_image_tower_from_a_local_directory_is_the_perceiver_encoder(tmp_path: Path) -> None:
    import transformers

    config = transformers.CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2, image_size=32, patch_size=8
    )
    transformers.CLIPVisionModel(config).save_pretrained(tmp_path / "clip")
    method = PerceiverTraining(
        create_backbone("nafnet-tiny"), ["a", "b"], embed_dim=8, prompt_tokens=2, clip=str(tmp_path / "clip")
    )
    loss, _ = method(_batch())
    loss.backward()
    assert method.head.prompts.grad is not None
    assert not any(p.requires_grad for p in method.encoder.parameters())
    assert not any(k.startswith("_clip") for k in method.state_dict())
    assert list(method.perceiver().perceive(torch.rand(3, 29, 31))) == ["low", "medium", "high"]


def test_perceiver_report_scores_every_task_and_tier(
    tiny_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = load_script("perceiver_report")
    samples = list(report.held_out(tiny_data / "clean", (0, 5), "3d", 2, 32, 0.4))
    assert [s["label"] for s in samples] == [t for t in ("noise", "haze", "rain-streaks") for _ in range(2)]
    for s in samples:
        assert s["lq"].shape == s["medium"].shape == s["gt"].shape == (1, 3, 32, 32)
        milder = (s["medium"] - s["gt"]).abs().mean() < (s["lq"] - s["gt"]).abs().mean()
        assert milder, s["label"]
    restorer = _proxy()
    restored = list(report.held_out(tiny_data / "clean", (0, 5), "3d", 2, 32, 0.4, restorer))
    for s, r in zip(samples, restored, strict=True):
        assert torch.equal(s["lq"], r["lq"]) and torch.equal(s["gt"], r["gt"])
        with torch.no_grad():
            assert torch.equal(r["medium"], restorer(r["lq"]).clamp(0, 1))

    perceiver = _perceiver().eval()
    monkeypatch.setattr(report, "load_perceiver", lambda path: perceiver)
    argv = ["perceiver_report.py", "p.safetensors", "--data", str(tiny_data / "clean"), "--files", "0", "5"]
    monkeypatch.setattr("sys.argv", [*argv, "--mix", "3d", "--per-task", "2", "--crop", "32"])
    report.main()
    printed = capsys.readouterr().out
    with torch.no_grad():
        expected = tier_accuracy(perceiver, samples)
    rows = {line.split("|")[1].strip(): line for line in printed.splitlines() if line.startswith("| ")}
    assert {"noise", "haze", "rain-streaks", "**all**", "low", "medium", "high"} <= set(rows)
    assert f"**{expected['all']:.2f}**" in rows["**all**"]
    assert rows["haze"].split("|")[2].strip() == f"{expected['haze']:.2f}"
