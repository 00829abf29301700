"""MaskDCPT: no leak through the mask, the losses, one-batch overfitting, pre-train → fine-tune, the classifier."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import load_script
from uir import build
from uir.checkpoint import load_checkpoint, load_weights
from uir.config import Config, ModelConfig, config_from_dict
from uir.errors import UirError
from uir.methods import MaskDCPT, export_classifier, load_classifier
from uir.methods.maskdcpt import (
    default_patch_size,
    feature_masks,
    focal_loss,
    random_patch_mask,
    supervised_contrastive,
)
from uir.models.backbones import create_backbone
from uir.train import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny_test.yaml"
TINY = ["nafnet-tiny", "restormer-tiny", "promptir-tiny"]
LABELS = ["noise", "haze", "rain-streaks"]


def _method(name: str, **options: object) -> MaskDCPT:
    torch.manual_seed(0)
    return MaskDCPT(create_backbone(name), LABELS, head_width=8, **options)


def _batch(height: int = 32, width: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(4, 3, height, width, generator=g)
    lq = torch.stack([gt[0] + 0.2 * torch.randn(gt[0].shape, generator=g), 0.6 * gt[1] + 0.4, gt[2], 0.6 * gt[3] + 0.4])
    return {"lq": lq.clamp(0, 1), "gt": gt, "label": torch.tensor([0, 1, 2, 1])}


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("name", TINY)
def test_hidden_pixels_change_nothing_at_any_level(name: str) -> None:
    method = _method(name).eval()
    net = method.backbone
    height, width = 37, 53
    torch.manual_seed(5)  # the mask the training step below draws
    mask = random_patch_mask(1, height, width, patch_size=method.patch_size, ratio=0.5)
    lq = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    other = torch.where(mask.bool(), lq, torch.rand(lq.shape, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        feats, feats_other = net.encode(lq, mask), net.encode(other, mask)
        masks = feature_masks(mask, feats, net.size_multiple)
        for level, (f, g, m) in enumerate(zip(feats, feats_other, masks, strict=True)):
            assert torch.equal(f * m, g * m), f"hidden pixels change visible features of level {level}"
            assert torch.all(f * (1 - m) == 0) and f.abs().sum() > 0, f"level {level}: hidden positions not zero"
        assert torch.equal(method.head(feats, masks), method.head(feats_other, masks))
        # The whole training loss (the same mask) ignores the hidden pixels too.
        batch = {"gt": lq, "label": torch.tensor([1])}
        losses = []
        for image in (lq, other):
            torch.manual_seed(5)
            losses.append(method({**batch, "lq": image})[0])
    assert torch.equal(*losses)


@pytest.mark.parametrize("name", TINY)
def test_head_statistics_use_visible_positions_only(name: str) -> None:
    """Growing the image by a hidden area changes no logit: norms and pooling skip hidden positions."""
    method = _method(name).eval()
    side = 64
    lq = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(3))
    mask = random_patch_mask(1, side, side, patch_size=16, ratio=0.5, generator=torch.Generator().manual_seed(4))
    canvas = torch.cat([lq, torch.rand(1, 3, side, side)], dim=3)
    canvas_mask = torch.cat([mask, torch.zeros_like(mask)], dim=3)
    with torch.no_grad():
        logits = [
            method.head(feats, feature_masks(m, feats, method.backbone.size_multiple))
            for feats, m in ((method.backbone.encode(x, m), m) for x, m in ((lq, mask), (canvas, canvas_mask)))
        ]
    torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-4)


def test_mask_ratio_and_patch_size_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    mask = random_patch_mask(4, 64, 96, patch_size=16, ratio=0.5, generator=g)
    cells = mask.view(4, 1, 4, 16, 6, 16)
    assert torch.equal(cells.amin(dim=(3, 5)), cells.amax(dim=(3, 5))), "a patch is partly hidden"
    assert cells.amin(dim=(3, 5)).sum(dim=(1, 2, 3)).tolist() == [12.0] * 4
    odd = random_patch_mask(2, 37, 53, patch_size=8, ratio=0.25, generator=g)  # 5 × 7 cells, 9 hidden
    assert odd.shape == (2, 1, 37, 53) and (odd[:, :, ::8, ::8] == 0).sum().item() == 18
    assert random_patch_mask(1, 8, 8, patch_size=16, ratio=0.9).min() == 1  # one cell: stays visible
    assert [default_patch_size(create_backbone(n)) for n in TINY] == [16, 8, 8]
    assert [default_patch_size(create_backbone(n)) for n in ("nafnet-cpu", "restormer-cpu")] == [32, 16]

    method = _method("restormer-tiny", mask_ratio=0.75, patch_size=4)
    seen = []
    encode = method.backbone.encode
    monkeypatch.setattr(method.backbone, "encode", lambda lq, mask=None: seen.append(mask) or encode(lq, mask))
    method(_batch(32, 32))
    (used,) = seen
    assert used.shape == (4, 1, 32, 32) and (used[:, :, ::4, ::4] == 0).sum(dim=(1, 2, 3)).tolist() == [48] * 4


def test_default_cells_line_up_with_the_bottleneck() -> None:
    """Issue 21: with the backbone's deepest stride as the cell, half the bottleneck is hidden at ratio 0.5; a
    finer cell leaves most of it visible (a deep position is visible when any of its pixels is)."""
    torch.manual_seed(3)
    _, aligned = _method("nafnet-tiny")(_batch(64, 64))
    torch.manual_seed(3)
    _, finer = _method("nafnet-tiny", patch_size=4)(_batch(64, 64))
    assert aligned["visible_deep"].item() == 0.5
    assert finer["visible_deep"].item() > 0.8


# --------------------------------------------------------------------------- losses


def test_focal_loss_matches_a_hand_computation() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    target = torch.tensor([0, 2])
    expected = 0.0
    for row, t in zip(logits.tolist(), target.tolist(), strict=True):
        p = math.exp(row[t]) / sum(math.exp(v) for v in row)
        expected += -((1 - p) ** 2) * math.log(p) / 2
    assert focal_loss(logits, target, 2.0).item() == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(focal_loss(logits, target, 0.0), torch.nn.functional.cross_entropy(logits, target))


def test_contrastive_term_off_is_absent_and_on_is_finite() -> None:
    batch = _batch()
    off = _method("nafnet-tiny", contrastive_weight=0.0)
    torch.manual_seed(1)
    loss, logs = off(batch)
    assert off.projection is None and "contrastive" not in logs
    assert loss.item() == pytest.approx((logs["focal"] + logs["l1"]).item(), rel=1e-6)

    on = _method("nafnet-tiny", contrastive_weight=0.5, contrastive_temperature=0.2)
    torch.manual_seed(1)
    loss, logs = on(batch)
    assert math.isfinite(logs["contrastive"].item())
    assert loss.item() == pytest.approx((logs["focal"] + logs["l1"] + 0.5 * logs["contrastive"]).item(), rel=1e-5)
    loss.backward()
    grads = [p.grad for p in on.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), "every parameter gets a finite gradient"
    assert on.projection[0].weight.grad.abs().sum() > 0

    # Khosla et al.'s eq. 2, written out anchor by anchor.
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    labels = [0, 1, 0, 0, 1, 2]
    unit = [row / row.norm() for row in z]
    anchors = []
    for i in range(6):
        positives = [p for p in range(6) if p != i and labels[p] == labels[i]]
        if positives:
            denominator = sum(math.exp(float(unit[i] @ unit[a]) / 0.2) for a in range(6) if a != i)
            logs_p = [float(unit[i] @ unit[p]) / 0.2 - math.log(denominator) for p in positives]
            anchors.append(-sum(logs_p) / len(positives))
    expected = sum(anchors) / len(anchors)
    assert supervised_contrastive(z, torch.tensor(labels), 0.2).item() == pytest.approx(expected, rel=1e-5)

    # No positive pair in the batch: the term is 0 and pushes nothing.
    z = torch.randn(3, 8, requires_grad=True)
    value = supervised_contrastive(z, torch.tensor([0, 1, 2]))
    value.backward()
    assert value.item() == 0 and torch.equal(z.grad, torch.zeros_like(z))


def test_loss_overfits_one_batch() -> None:
    method = _method("nafnet-tiny")
    batch = _batch()
    optimizer = torch.optim.Adam(method.parameters(), lr=2e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(30):  # a fresh mask every step, as in training
        loss, _ = method(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3]), losses  # measured: about 0.25


# --------------------------------------------------------------------------- pre-train → fine-tune


def _config(**sections: dict) -> Config:
    raw = yaml.safe_load(CONFIG.read_text())
    raw["optim"] |= {"total_iters": 2, "warmup_iters": 0}
    raw["train"] |= {"val_every": 0, "ckpt_every": 0}
    raw["val"] |= {"max_images": 1}
    for key, value in sections.items():
        raw[key] = {**raw[key], **value} if key != "method" else value
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def pretrained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two MaskDCPT steps of nafnet-tiny on the tiny data."""
    run_dir = tmp_path_factory.mktemp("pretrain")
    cfg = _config(method={"name": "maskdcpt", "head_width": 8})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UIR_DATA_ROOT", str(tiny_data))
        assert train(cfg, run_dir, progress=False).finished
    return run_dir


def test_pretrain_then_finetune_starts_from_the_pretrained_backbone(
    pretrained: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = load_checkpoint(pretrained / "last.ckpt")
    assert state["labels"] == LABELS and "head.fc.weight" in state["method"]
    assert state["method"]["head.fc.weight"].shape[0] == len(LABELS)

    monkeypatch.setenv("UIR_DATA_ROOT", str(tiny_data))
    cfg = _config(model={"init": str(pretrained / "last.ckpt")})
    assert train(cfg, tmp_path, stop_at=0, progress=False).step == 0  # saves the initial weights, no step
    started = load_checkpoint(tmp_path / "last.ckpt")
    assert started["method"] == {}, "the classifier is dropped"
    for key, value in state["backbone"].items():
        assert torch.equal(started["backbone"][key], value), key

    moved = tmp_path.parent / f"{tmp_path.name}-pretrained.ckpt"  # the pre-training file may go away...
    shutil.copy(pretrained / "last.ckpt", moved)
    cfg = _config(model={"init": str(moved)}, optim={"total_iters": 2})
    train(cfg, tmp_path / "finetune", stop_at=1, progress=False)
    moved.unlink()
    assert train(cfg, tmp_path / "finetune", resume=True, progress=False).step == 2  # ...once fine-tuning started

    exported = build.build_backbone(ModelConfig("nafnet-tiny", init=str(pretrained / "final.safetensors")))
    for key, value in load_weights(pretrained / "final.safetensors").state.items():
        assert torch.equal(exported.state_dict()[key], value), key


def test_classifier_exports_and_loads(pretrained: Path) -> None:
    path = export_classifier(pretrained)
    assert path == pretrained / "classifier.safetensors"
    lq = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    from_file, from_run = load_classifier(path), load_classifier(pretrained)
    probs = from_file.classify(lq)
    assert list(probs) == LABELS and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert probs == pytest.approx(from_run.classify(lq[0]), abs=1e-6)
    with pytest.raises(UirError, match="not a MaskDCPT classifier"):
        load_classifier(pretrained / "final.safetensors")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method.mask_ratio=1.0"], r"mask_ratio must be in \[0, 1\)"),
        (["method.patch_size=0"], r"patch_size must be >= 1 or null"),
        (["method.contrastive_temperature=0"], r"contrastive_temperature > 0"),
        (["method.mask_ratoi=0.5"], r"unknown key 'method\.mask_ratoi'"),
        (["method.focal_gamma=-1"], r"focal_gamma and the loss weights must be >= 0"),
    ],
)
def test_config_errors_are_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(UirError, match=message) as err:
        config_from_dict({"method": {"name": "maskdcpt"}}, overrides)
    assert "\n" not in str(err.value)


def test_pretraining_initialises_amirnets_network(pretrained: Path) -> None:
    """MaskDCPT -> AMIRNet: a nafnet pre-training loads into the nafnet-ftb of the same size, each FTB starting as
    the pre-trained block (its modulation is zero), its degradation encoder and modulations left as they were."""
    torch.manual_seed(0)
    ftb = build.build_backbone(ModelConfig("nafnet-ftb-tiny", init=str(pretrained)))
    torch.manual_seed(0)
    fresh = create_backbone("nafnet-ftb-tiny")  # the same initialisation, not loaded
    base = create_backbone("nafnet-tiny")
    base.load_state_dict(load_checkpoint(pretrained / "last.ckpt")["backbone"])
    lq = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(ftb(lq), base(lq), atol=1e-6)
        assert torch.allclose(ftb(lq, cond=torch.rand(2, 15)), base(lq), atol=1e-6)
    mapped = ftb.base_state(base.state_dict())
    assert mapped is not None and all(torch.equal(ftb.state_dict()[k], v) for k, v in mapped.items())
    new_parts = [k for k in ftb.state_dict() if k not in mapped]
    assert new_parts and all(k.startswith("degradation.") or ".modulation." in k for k in new_parts)
    assert all(torch.equal(ftb.state_dict()[k], fresh.state_dict()[k]) for k in new_parts)
    assert not all(torch.equal(ftb.state_dict()[k], fresh.state_dict()[k]) for k in mapped)
    with pytest.raises(UirError, match="does not fit this backbone"):  # another size is still refused
        build.build_backbone(ModelConfig("nafnet-ftb-cpu", init=str(pretrained)))


def test_a_classifier_export_initialises_a_backbone_with_its_encoder(pretrained: Path) -> None:
    """model.init takes a classifier file's backbone (e.g. the shipped classifier-5d as a perceiver's encoder)."""
    from_file = build.build_backbone(ModelConfig("nafnet-tiny", init=str(export_classifier(pretrained))))
    from_run = build.build_backbone(ModelConfig("nafnet-tiny", init=str(pretrained)))
    assert all(torch.equal(v, from_run.state_dict()[k]) for k, v in from_file.state_dict().items())
    assert not all(
        torch.equal(v, create_backbone("nafnet-tiny").state_dict()[k]) for k, v in from_file.state_dict().items()
    )
    with pytest.raises(UirError, match="does not fit this backbone"):
        build.build_backbone(ModelConfig("restormer-tiny", init=str(pretrained / "classifier.safetensors")))


def test_init_and_classifier_errors_are_one_line(pretrained: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    cases = [
        (
            ModelConfig("nafnet-tiny", init=str(tmp_path / "nothing.ckpt")),
            r"^model\.init: .*nothing\.ckpt does not exist",
        ),
        (ModelConfig("nafnet-tiny", init=str(tmp_path / "junk.safetensors")), r"^model\.init: .*not a readable"),
        (
            ModelConfig("restormer-tiny", init=str(pretrained)),
            r"^model\.init: .* does not fit this backbone: \d+ missing",
        ),
    ]
    for model, message in cases:
        with pytest.raises(UirError, match=message) as err:
            build.build_backbone(model)
        assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="at least 2 classes") as err:
        MaskDCPT(create_backbone("nafnet-tiny"), ["noise"])
    with pytest.raises(UirError, match=r"classify takes one image"):
        load_classifier(pretrained).classify(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize("arch", ["nafnet", "restormer"])
def test_shipped_configs_pair_up(arch: str) -> None:
    from uir.config import load_config

    root = CONFIG.parent
    pretrain = load_config(root / f"{arch}_maskdcpt_pretrain.yaml")
    finetune = load_config(root / f"{arch}_maskdcpt_finetune.yaml")
    assert pretrain.method.name == "maskdcpt" and finetune.method.name == "supervised"
    assert pretrain.model.backbone == finetune.model.backbone == f"{arch}-cpu"
    assert finetune.model.init == f"runs/{arch}_maskdcpt_pretrain" and pretrain.data.num_workers == 0
    assert "all" in {s.mix for s in pretrain.data.sources} and "paired" in {s.kind for s in pretrain.data.sources}


def test_ship_weights_halves_a_classifier_that_still_loads(
    pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    from uir.checkpoint import read_safetensors

    script = load_script("ship_weights")
    source = export_classifier(pretrained)
    shipped = tmp_path / "shipped.safetensors"
    monkeypatch.setattr("sys.argv", ["ship_weights.py", str(source), str(shipped)])
    script.main()
    assert "largest change of a weight" in capsys.readouterr().out
    (meta, state), (half_meta, half) = read_safetensors(source), read_safetensors(shipped)
    assert half_meta == meta and half.keys() == state.keys()
    assert all(v.dtype == torch.float16 for v in half.values() if v.is_floating_point())
    lq = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert load_classifier(shipped).classify(lq) == pytest.approx(load_classifier(source).classify(lq), abs=1e-2)
    monkeypatch.setattr("sys.argv", ["ship_weights.py", str(source), str(source)])
    with pytest.raises(SystemExit, match="must not be SOURCE"):
        script.main()


def test_the_shipped_classifier_recipe_has_the_shipped_classes() -> None:
    from uir.config import load_config
    from uir.degradations import get_mix

    cfg = load_config(CONFIG.parent / "nafnet_classifier_5d.yaml")
    assert cfg.method.name == "maskdcpt" and cfg.model.backbone == "nafnet-cpu"
    labels = set()
    for source in cfg.data.sources:
        labels |= {source.label} if source.label else set(get_mix(source.mix).weights)
    assert labels == set(load_classifier("default").labels) == {*get_mix("5d").weights, "clean"}
