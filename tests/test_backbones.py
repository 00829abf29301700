"""Every backbone preset honours the contract of STYLE.md; tests are generated from the registry."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from uir.errors import UirError
from uir.models import PRESETS, create_backbone
from uir.models.layers import mask_pyramid, masked_mean, pad_to_multiple
from uir.models.speed import count_macs, format_speed_table, speed_table

TINY = [name for name in PRESETS if name.endswith("-tiny")]

# Published parameter counts: NAFNet (Chen et al. 2022: the SIDD width-32 model and the GoPro one MaskDCPT uses),
# Restormer (Zamir et al. 2022), PromptIR (Potlapalli et al. 2023). Our PromptIR lacks 0.21 M parameters of
# convolutions that the released code defines and never uses.
PUBLISHED_PARAMS = {"nafnet-32": 29.1e6, "nafnet-64": 67.9e6, "restormer-48": 26.13e6, "promptir-48": 35.59e6}


def _tiny(name: str, **overrides: object) -> torch.nn.Module:
    """The preset with seeded weights; zero-initialised parameters (NAFNet's residual scales, which make every
    block the identity at initialisation and would hide bugs in it) are drawn at random too."""
    torch.manual_seed(0)
    net = create_backbone(name, **overrides)
    with torch.no_grad():
        for param in net.parameters():
            if param.abs().sum() == 0:
                param.normal_(std=0.1)
    return net


def _patch_mask(height: int, width: int, patch: int, seed: int = 0) -> torch.Tensor:
    """A ``(1, 1, H, W)`` MaskDCPT-style mask: half of the ``patch × patch`` cells hidden."""
    generator = torch.Generator().manual_seed(seed)
    cells = (torch.rand(1, 1, -(-height // patch), -(-width // patch), generator=generator) > 0.5).float()
    return cells.repeat_interleave(patch, 2).repeat_interleave(patch, 3)[..., :height, :width]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds(name: str) -> None:
    with torch.device("meta"):
        net = create_backbone(name)
    assert len(net.feature_dims) >= 2 and net.size_multiple >= 8


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_published_presets_have_the_published_size(name: str) -> None:
    with torch.device("meta"):
        params = sum(p.numel() for p in create_backbone(name).parameters())
    assert params == pytest.approx(PUBLISHED_PARAMS[name], rel=0.01)


@pytest.mark.parametrize("name", [n for n in PRESETS if n.endswith("-cpu")])
def test_cpu_presets_are_cpu_sized(name: str) -> None:
    with torch.device("meta"):
        params = sum(p.numel() for p in create_backbone(name).parameters())
    assert 1e6 <= params <= 4e6


@pytest.mark.parametrize("name", TINY)
def test_contract_on_odd_sizes(name: str, odd_photo: torch.Tensor) -> None:
    net = _tiny(name).eval()
    lq = odd_photo.repeat(2, 1, 1, 1)
    with torch.no_grad():
        feats = net.encode(lq)
        restored = net.decode(feats, lq)
        direct = net(lq)
    assert restored.shape == lq.shape
    assert tuple(f.shape[1] for f in feats) == net.feature_dims
    assert all(f.shape[0] == 2 for f in feats)
    assert torch.equal(restored, direct)
    assert torch.equal(net(lq[:1]), net(lq[:1])), "not deterministic"


@pytest.mark.parametrize("name", TINY)
def test_memory_layout_does_not_change_results(name: str, odd_photo: torch.Tensor) -> None:
    channels_last, contiguous = _tiny(name).eval(), _tiny(name, channels_last=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(channels_last(odd_photo), contiguous(odd_photo), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", TINY)
def test_same_seed_same_weights(name: str) -> None:
    first, second = _tiny(name).state_dict(), _tiny(name).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name: str) -> None:
    net = _tiny(name).train()
    lq = torch.rand(1, 3, 21, 19, requires_grad=True)
    net(lq).square().mean().backward()
    assert lq.grad is not None and lq.grad.abs().sum() > 0
    missing = [key for key, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("stem", [1, 2])
@pytest.mark.parametrize("name", TINY)
def test_mask_hides_pixels_at_every_level(name: str, stem: int) -> None:
    net = _tiny(name, stem=stem).eval()
    height, width = 37, 53
    mask = _patch_mask(height, width, patch=8)
    lq = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    other = torch.where(mask.bool(), lq, torch.rand(lq.shape, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        feats, feats_other = net.encode(lq, mask), net.encode(other, mask)
    masks = mask_pyramid(pad_to_multiple(mask, net.size_multiple), len(feats), net.stem_factor)
    for level, (f, g, m) in enumerate(zip(feats, feats_other, masks, strict=True)):
        assert torch.equal(f, g), f"hidden pixels change the features of level {level}"
        assert f.abs().sum() > 0
        assert torch.all(f * (1 - m) == 0), f"hidden positions are not zero at level {level}"


@pytest.mark.parametrize("stem", [1, 2])
@pytest.mark.parametrize("name", TINY)
def test_visible_features_ignore_the_hidden_area(name: str, stem: int) -> None:
    """Sparse-convolution semantics: growing the image by a hidden area changes no visible feature.

    This fails if any position-mixing op (3×3 or depthwise conv, attention sums, pooling) sees non-zero values
    at hidden positions, e.g. biases or norms propagated there; sizes are multiples so padding plays no part.
    """
    net = _tiny(name, stem=stem).eval()
    side = 64
    lq = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(3))
    mask = _patch_mask(side, side, patch=8)
    canvas = torch.cat([lq, torch.rand(1, 3, side, side)], dim=3)
    canvas_mask = torch.cat([mask, torch.zeros_like(mask)], dim=3)
    with torch.no_grad():
        feats, canvas_feats = net.encode(lq, mask), net.encode(canvas, canvas_mask)
    for level, (f, g) in enumerate(zip(feats, canvas_feats, strict=True)):
        torch.testing.assert_close(g[..., : f.shape[-1]], f, atol=1e-5, rtol=1e-4, msg=f"level {level} differs")
        assert g[..., f.shape[-1] :].abs().sum() == 0


@pytest.mark.parametrize("name", TINY)
def test_all_visible_mask_is_no_mask(name: str, odd_photo: torch.Tensor) -> None:
    net = _tiny(name).eval()
    with torch.no_grad():
        plain = net.encode(odd_photo)
        masked = net.encode(odd_photo, torch.ones_like(odd_photo[:, :1]))
    for f, g in zip(plain, masked, strict=True):
        torch.testing.assert_close(f, g)


def test_masked_statistics_use_visible_positions_only() -> None:
    x = torch.rand(2, 4, 6, 8)
    mask = (torch.rand(2, 1, 6, 8) > 0.5).float()
    expected = torch.stack([x[b][:, mask[b, 0].bool()].mean(dim=1) for b in range(2)])
    torch.testing.assert_close(masked_mean(x, mask)[..., 0, 0], expected)
    coarse = mask_pyramid(mask, 2)[1]
    assert coarse.shape == (2, 1, 3, 4)
    assert torch.equal(coarse, mask.reshape(2, 1, 3, 2, 4, 2).amax(dim=(3, 5)))


class _ShiftedBlock(torch.nn.Module):
    """A minimal conditioned block: adds ``Linear(cond)`` per channel (stands in for AMIRNet's FTB)."""

    uses_cond = True

    def __init__(self, channels: int | None = None, dim: int | None = None, **_: object) -> None:
        super().__init__()
        self.shift = torch.nn.Linear(4, channels or dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cond: torch.Tensor | None = None):
        return x + self.shift(cond)[:, :, None, None]


@pytest.mark.parametrize("name", TINY)
def test_conditioned_blocks_swap_in_through_the_factory(name: str) -> None:
    net = _tiny(name, encoder_block=_ShiftedBlock).eval()
    lq = torch.rand(2, 3, 24, 40)
    cond = torch.rand(2, 4)
    with torch.no_grad():
        restored = net(lq, cond=cond)
        assert not torch.equal(restored, net(lq, cond=cond.flip(0)))
        assert torch.equal(restored, net.decode(net.encode(lq, cond=cond), lq, cond=cond))


def test_wrong_names_and_inputs_say_what_to_do() -> None:
    with pytest.raises(UirError, match="nafnet-tiny"):
        create_backbone("nafnet-huge")
    with pytest.raises(UirError, match="width"):
        create_backbone("nafnet-tiny", widht=4)
    net = create_backbone("restormer-tiny")
    with pytest.raises(UirError, match="mask"):
        net.encode(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 8, 8))
    with pytest.raises(UirError, match="conditioned"):
        net.decode(net.encode(torch.rand(1, 3, 16, 16)), torch.rand(1, 3, 16, 16), cond=torch.rand(1, 4))


def test_overrides_and_stem() -> None:
    net = create_backbone("nafnet-tiny", width=4, stem=2)
    assert net.feature_dims[0] == 4 and net.size_multiple == 32
    assert net(torch.rand(1, 3, 37, 53)).shape == (1, 3, 37, 53)


def test_macs_count_convolutions_exactly() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8))
    assert count_macs(net, 16, 16) == 16 * 16 * (8 * 3 * 9 + 8 * 9)


def test_speed_table_runs_and_formats() -> None:
    rows = speed_table(["nafnet-tiny"], sizes=(32, 64), repeats=1, time_budget=0.0, progress=False)
    assert rows[0]["latency_s"][32] is not None and rows[0]["latency_s"][64] is None
    table = format_speed_table(rows)
    assert "| nafnet-tiny |" in table and "–" in table


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxscript") is None,
    reason="onnx and onnxscript are not installed",
)
@pytest.mark.parametrize("name", TINY)
def test_tiny_presets_export_to_onnx_for_any_size(name: str, tmp_path) -> None:
    net = _tiny(name).eval()
    # Sizes from 2·size_multiple: below, the bottleneck is 1 pixel and convolutions take another code path.
    height = torch.export.Dim("height", min=2 * net.size_multiple, max=8192)
    width = torch.export.Dim("width", min=2 * net.size_multiple, max=8192)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 37, 53),), path, dynamo=True, dynamic_shapes={"lq": {2: height, 3: width}})
    if importlib.util.find_spec("onnxruntime") is None:
        return
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    lq = torch.rand(1, 3, 35, 71)
    (restored,) = session.run(None, {session.get_inputs()[0].name: lq.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(restored), net(lq), rtol=1e-4, atol=1e-5)


def test_icnr_starts_every_pixel_shuffle_as_nearest_neighbour_upsampling() -> None:
    """ICNR: the 4 sub-pixels of each output channel start with one kernel, so each 2×2 output block is constant;
    without it they are 4 independent phases (the source of a grid)."""
    from uir.models.layers import PixelHead, ShuffleUp

    x = torch.rand(2, 8, 5, 7, generator=torch.Generator().manual_seed(0))
    for layer in (ShuffleUp(8, 4, icnr=True), ShuffleUp(8, 4, kernel_size=3, icnr=True), PixelHead(8, 3, 2, icnr=True)):
        out = layer(x)
        for di, dj in ((0, 1), (1, 0), (1, 1)):
            torch.testing.assert_close(out[..., di::2, dj::2], out[..., 0::2, 0::2], rtol=0, atol=1e-6)
    plain = ShuffleUp(8, 4)(x)
    assert not torch.allclose(plain[..., 1::2, 1::2], plain[..., 0::2, 0::2], atol=1e-3)
    net = create_backbone("nafnet-fr")
    assert net.stem_factor == 1 and all(torch.equal(u.conv.weight[0], u.conv.weight[3]) for u in net.ups)


def test_local_pooling_is_a_clipped_window_mean_and_global_when_the_image_fits() -> None:
    """TLC (``NAFNet.set_local_pooling``): each position pools a window kept inside the image; an image no larger
    than the window gets the global mean, so the network's output is unchanged."""
    from uir.models.layers import local_mean

    x = torch.rand(1, 2, 11, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    brute = torch.zeros_like(x)
    for i in range(11):
        for j in range(13):
            top, left = min(max(i - 2, 0), 11 - 5), min(max(j - 2, 0), 13 - 5)
            brute[..., i, j] = x[..., top : top + 5, left : left + 5].mean(dim=(-2, -1))
    assert torch.allclose(local_mean(x, 5), brute, atol=1e-6)
    assert torch.equal(local_mean(x, 20), x.mean(dim=(2, 3), keepdim=True).expand_as(x))
    net = create_backbone("nafnet-tiny").eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.15, generator=torch.Generator().manual_seed(1))
    lq = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = net(lq)
        net.set_local_pooling(64)  # windows of 96 px at full resolution: the image fits
        assert torch.allclose(net(lq), whole, atol=1e-5)  # measured 3e-6 (outputs up to 10)
        net.set_local_pooling(8)  # 12 px: local statistics change the output
        assert (net(lq) - whole).abs().max() > 1e-2  # measured 0.046
        net.set_local_pooling(None)
        assert torch.equal(net(lq), whole)


def test_a_model_file_can_ask_for_local_pooling(tmp_path) -> None:
    """``test_pooling`` in a file's metadata (``scripts/ship_weights.py --test-pooling CROP``) turns TLC on."""
    from uir.checkpoint import export_safetensors
    from uir.pretrained import load_model

    state = create_backbone("nafnet-tiny").state_dict()
    export_safetensors(tmp_path / "plain.safetensors", state, {"backbone": "nafnet-tiny"})
    export_safetensors(tmp_path / "tlc.safetensors", state, {"backbone": "nafnet-tiny", "test_pooling": "8"})
    assert load_model(tmp_path / "plain.safetensors").backbone.encoders[0][0].pool_window is None
    net = load_model(tmp_path / "tlc.safetensors").backbone
    assert net.encoders[0][0].pool_window == 12 and net.middle[0].pool_window == 1  # 1.5 · 8 / 16, at least 1
