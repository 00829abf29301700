"""AMIRNet: FTB blocks, the degradation encoder, growing the tree without labels, resume, the tree picture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import load_script
from uir.checkpoint import load_checkpoint
from uir.config import config_from_dict, load_config, to_dict
from uir.errors import UirError
from uir.methods.amirnet import AMIRNet, purity, ssim_index, two_means
from uir.metrics import ssim
from uir.models import create_backbone
from uir.models.backbones import FTBlock, NAFBlock, NAFNet
from uir.train import train

ROOT = Path(__file__).resolve().parents[1]
TINY_NET = {"width": 8, "encoder_blocks": (1, 1), "middle_blocks": 1, "decoder_blocks": (1, 1)}


def _method(seed: int = 0, **kwargs: object) -> AMIRNet:
    torch.manual_seed(seed)
    options = {"grow_steps": (1, 2, 3), "reservoir_size": 16, "patch_size": 16, "augment_passes": 2} | kwargs
    return AMIRNet(create_backbone("nafnet-ftb-tiny"), **options)


def _batches(photo: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Two batches of 8 pairs from crops of a photo: half noisy, half darkened; labels 0 and 1."""
    generator = torch.Generator().manual_seed(0)
    gt = torch.cat([photo[..., i * 8 : i * 8 + 24, j * 12 : j * 12 + 24] for i in range(4) for j in range(4)])
    noisy = (gt[:8] + 0.2 * torch.randn(gt[:8].shape, generator=generator)).clamp(0, 1)
    lq = torch.cat([noisy, 0.3 * gt[8:]])
    label = torch.tensor([0] * 8 + [1] * 8)
    order = torch.randperm(16, generator=generator)
    lq, gt, label = lq[order], gt[order], label[order]
    return [{"lq": lq[:8], "gt": gt[:8], "label": label[:8]}, {"lq": lq[8:], "gt": gt[8:], "label": label[8:]}]


def _grow(method: AMIRNet, batches: list[dict[str, torch.Tensor]], levels: int = 1) -> AMIRNet:
    for batch in batches:
        method.observe(batch["lq"], batch["gt"], batch["label"])
    for _ in range(levels):
        method.grow()
    return method


def test_growing_a_level_splits_every_leaf_in_two(photo: torch.Tensor) -> None:
    method = _grow(_method(), _batches(photo), levels=3)
    labels = method.tree_labels
    assert method.depth == 4 and method.filled == 16 and (labels[:, 0] == 0).all()
    for level in range(1, 4):
        assert torch.equal(labels[:, level] // 2, labels[:, level - 1]), "a child is not under its parent"
        for parent in labels[:, level - 1].unique():
            children = labels[labels[:, level - 1] == parent, level]
            if (labels[:, level - 1] == parent).sum() >= 2:
                assert set(children.tolist()) == {2 * parent.item(), 2 * parent.item() + 1}
    # Noisy and darkened pairs respond very differently: the first split separates them.
    assert purity(labels[:, 1], method.true_labels) == 1.0


def test_pseudo_labels_are_deterministic_and_ignore_the_true_labels(photo: torch.Tensor) -> None:
    batches = _batches(photo)
    first = _grow(_method(), batches, levels=2).tree_labels
    assert torch.equal(first, _grow(_method(), batches, levels=2).tree_labels)
    relabelled = [{**b, "label": torch.zeros_like(b["label"])} for b in batches]
    assert torch.equal(first, _grow(_method(), relabelled, levels=2).tree_labels)


def test_two_means_orders_clusters_by_their_centres() -> None:
    generator = torch.Generator().manual_seed(0)
    far, near = 5 + torch.randn(6, 3, generator=generator) * 0.1, torch.randn(5, 3, generator=generator) * 0.1
    labels = two_means(torch.cat([far, near]), torch.Generator().manual_seed(1))
    assert labels.tolist() == [1] * 6 + [0] * 5
    assert two_means(torch.ones(4, 2), torch.Generator().manual_seed(0)).tolist() == [0, 0, 0, 0]


def test_tree_path_follows_the_branches(photo: torch.Tensor) -> None:
    method = _grow(_method(), _batches(photo), levels=2)
    paths = method.backbone.tree_paths(torch.rand(3, 3, 21, 27))
    assert all(len(p) == 3 and p[0] == 0 and p[1] // 2 == 0 and p[2] // 2 == p[1] for p in paths)
    assert method.tree_path(photo) == method.backbone.tree_paths(photo)[0]
    with pytest.raises(UirError, match="one image"):
        method.tree_path(torch.rand(2, 3, 16, 16))


def test_ftb_without_code_is_the_nafnet_block(odd_photo: torch.Tensor) -> None:
    torch.manual_seed(0)
    plain = NAFNet(**TINY_NET).eval()
    with torch.no_grad():
        for param in plain.parameters():  # non-zero residual scales, so that the blocks do something
            param.add_(0.05 * torch.randn_like(param))
    ftb = create_backbone("nafnet-ftb-tiny", **TINY_NET).eval()
    weights = {k.replace(".block.", "."): k for k in ftb.net.state_dict() if "modulation" not in k}
    ftb.net.load_state_dict({weights[k]: v for k, v in plain.state_dict().items()}, strict=False)
    with torch.no_grad():
        assert torch.equal(ftb.net(odd_photo), plain(odd_photo)), "cond=None must be the plain block, bit for bit"
        torch.testing.assert_close(ftb(odd_photo), plain(odd_photo), atol=1e-6, rtol=1e-6)  # zero-effect init
        block, x = FTBlock(8), torch.rand(2, 8, 9, 11)
        block.block.load_state_dict(NAFBlock(8).state_dict())
        torch.nn.init.normal_(block.modulation.weight)
        assert not torch.allclose(block(x, cond=torch.rand(2, 15)), block(x))


def test_gradients_reach_the_encoder_heads(photo: torch.Tensor) -> None:
    method = _grow(_method(replay_size=4), _batches(photo))
    loss, logs = method(_batches(photo)[0])
    loss.backward()
    assert logs["ce"] > 0 and logs["tree_depth"] == 2
    assert method.backbone.degradation.mask[0][0].weight.grad.abs().sum() > 0, "the CE must reach mask_1"
    method.zero_grad()
    with torch.no_grad():  # trained FTBs: the code matters, so every head and encoder layer gets a gradient
        for module in method.backbone.modules():
            if isinstance(module, FTBlock):
                module.modulation.weight.normal_(std=0.1)
    method(_batches(photo)[0])[0].backward()
    missing = [k for k, p in method.backbone.degradation.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient for {missing}"


def test_ssim_index_matches_the_metric() -> None:
    generator = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 24, 30, generator=generator)
    restored = (gt + 0.1 * torch.randn(gt.shape, generator=generator)).clamp(0, 1)
    assert float(ssim_index(restored, gt)) == pytest.approx(float(ssim(restored, gt).mean()), abs=1e-5)


def _raw_config(**method: object) -> dict:
    raw = to_dict(load_config(ROOT / "configs" / "tiny_test.yaml"))
    raw["model"] = {"backbone": "nafnet-ftb-tiny", "overrides": {}}
    raw["method"] = {"name": "amirnet", "grow_steps": [2, 4, 6], "reservoir_size": 8, "patch_size": 16}
    raw["method"] |= {"augment_passes": 2, "replay_size": 4, **method}
    raw["val"]["max_images"] = 1
    return raw


def test_config_errors_are_one_line() -> None:
    for method, expected in [
        ({"grow_steps": [4, 2]}, "grow_steps"),
        ({"grow_step": [2]}, "grow_step"),
        ({"replay_size": 99}, "replay_size"),
    ]:
        with pytest.raises(UirError, match=expected) as err:
            config_from_dict(_raw_config(**method))
        assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="nafnet-ftb-cpu") as err:
        AMIRNet(create_backbone("nafnet-tiny"))
    assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="patch_size") as err:
        _method(patch_size=32)({"lq": torch.rand(1, 3, 24, 24), "gt": torch.rand(1, 3, 24, 24)})
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def resumed_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 8-step run (levels grown after steps 2, 4, 6) uninterrupted, and stopped after step 3 and resumed."""
    runs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UIR_DATA_ROOT", str(tiny_data))
        cfg = config_from_dict(_raw_config())
        for stop in (None, 3):
            run_dir = tmp_path_factory.mktemp("run")
            train(cfg, run_dir, stop_at=stop, progress=False)
            if stop is not None:
                assert load_checkpoint(run_dir / "last.ckpt")["backbone"]["degradation.depth"] == 2
                train(cfg, run_dir, resume=True, progress=False)
            runs.append(run_dir)
    return runs[0], runs[1]


def test_a_resumed_run_keeps_the_tree(resumed_run: tuple[Path, Path]) -> None:
    full, resumed = (load_checkpoint(run / "last.ckpt") for run in resumed_run)
    assert full["step"] == resumed["step"] == 8 and full["backbone"]["degradation.depth"] == 4
    for key, value in full["method"].items():
        assert torch.equal(value, resumed["method"][key]), f"{key} differs after resuming"
    filled = min(int(full["method"]["seen"]), 8)
    assert filled == 6 and (full["method"]["tree_labels"][:filled, 3] >= 0).all()
    for key, value in full["backbone"].items():
        torch.testing.assert_close(resumed["backbone"][key], value, msg=f"backbone {key} differs")


def test_tree_script_draws_the_tree(
    resumed_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script("amirnet_tree", monkeypatch)
    out = tmp_path / "tree.png"
    assert script.main([str(resumed_run[0]), "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size[0] > 8 * 150 and image.size[1] > 4 * 56
    assert script.main([str(tmp_path)]) == 2  # no checkpoint: an error message, not a traceback


def test_without_grow_steps_the_tree_stays_a_root_and_nothing_is_kept(photo: torch.Tensor) -> None:
    """Issue 21's control arm: the same network and loss, no tree."""
    method = _method(grow_steps=()).train()
    for batch in _batches(photo) * 2:
        loss, logs = method(batch)
    assert method.depth == 1 and method.filled == 0 and float(logs["ce"]) == 0.0 and torch.isfinite(loss)
