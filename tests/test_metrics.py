"""uir.metrics against independent references: scikit-image (PSNR/SSIM), pypiqe (PIQE), BasicSR and MATLAB (NIQE)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_example
from uir.errors import UirError
from uir.metrics import METRICS, get_metric, niqe, piqe, psnr, rgb_to_y, ssim
from uir.metrics.matlab import imresize, to_8bit_luma
from uir.metrics.piqe import piqe_gray

skimage_metrics = pytest.importorskip("skimage.metrics")
skimage_color = pytest.importorskip("skimage.color")

# NIQE of examples/clean/chelsea.png by BasicSR 1.4.2's numpy `calculate_niqe(cv2.imread(path), crop_border)`
# (its sdist, run outside the project; it matches MATLAB to 3e-7 on its baboon.png). BasicSR resizes in
# float32, we in float64 as MATLAB does: the two agree to ~4e-6 on this image.
BASICSR_NIQE_CHELSEA = {("y", 0): 2.6255243812915023, ("gray", 0): 2.57208331399021, ("y", 8): 2.569151954618002}
# MATLAB values published with pyiqa's calibration images (pyiqa sdist, ResultsCalibra/results_official.csv):
# NIQE by the authors' MATLAB release (rgb2gray), PIQE by MATLAB's piqe (2 decimals). The images are not
# shipped (TID2013, 590 KB each, under pyiqa's non-commercial licence); to run the check:
#   pip download --no-deps --no-binary :all: -d /tmp/pyiqa pyiqa==0.1.16   (8 MB, ~3 s)
#   tar xzf /tmp/pyiqa/pyiqa-0.1.16.tar.gz -C /tmp/pyiqa pyiqa-0.1.16/ResultsCalibra/dist_dir
#   UIR_MATLAB_CALIBRATION=/tmp/pyiqa/pyiqa-0.1.16/ResultsCalibra pytest tests/test_metrics.py
# NIQE matches on I04 only (1e-13); on I03, I06, I08, I19 we, like pyiqa's own port, differ by 0.0002-0.39.
MATLAB_NIQE = {"I04": 3.65492152353770}
MATLAB_PIQE = {"I03": 100.00, "I04": 21.62, "I06": 35.86, "I08": 41.15, "I19": 76.95}


def _pair(b: int = 3, h: int = 37, w: int = 53, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)
    restored = (gt + 0.08 * torch.randn(b, 3, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    return restored, gt


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("crop_border", [0, 4])
@pytest.mark.parametrize("y_channel", [False, True])
def test_psnr_ssim_match_skimage(crop_border: int, y_channel: bool) -> None:
    restored, gt = _pair()
    ours_psnr = psnr(restored, gt, crop_border=crop_border, y_channel=y_channel)
    ours_ssim = ssim(restored, gt, crop_border=crop_border, y_channel=y_channel)
    assert ours_psnr.shape == ours_ssim.shape == (3,)
    for i in range(3):
        a, b = _hwc(restored[i]), _hwc(gt[i])
        if y_channel:  # skimage's own BT.601 conversion, an independent check of rgb_to_y
            a, b = skimage_color.rgb2ycbcr(a)[..., :1] / 255, skimage_color.rgb2ycbcr(b)[..., :1] / 255
        if crop_border:
            a, b = (
                a[crop_border:-crop_border, crop_border:-crop_border],
                b[crop_border:-crop_border, crop_border:-crop_border],
            )
        ref_psnr = skimage_metrics.peak_signal_noise_ratio(b, a, data_range=1)
        ref_ssim = skimage_metrics.structural_similarity(
            b, a, data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert float(ours_psnr[i]) == pytest.approx(ref_psnr, abs=1e-6)
        assert float(ours_ssim[i]) == pytest.approx(ref_ssim, abs=1e-6)


def test_float32_input_and_single_image(odd_photo: torch.Tensor) -> None:
    noisy = (odd_photo + 0.05 * torch.randn(odd_photo.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    a, b = _hwc(noisy[0].double()), _hwc(odd_photo[0].double())
    ref = skimage_metrics.structural_similarity(
        b, a, data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert float(ssim(noisy, odd_photo)[0]) == pytest.approx(ref, abs=1e-6)
    assert psnr(noisy, odd_photo).dtype == torch.float64


def test_rgb_to_y_is_matlab_rgb2ycbcr() -> None:
    x, _ = _pair(b=1)
    expected = skimage_color.rgb2ycbcr(_hwc(x[0]))[..., 0] / 255
    np.testing.assert_allclose(rgb_to_y(x)[0, 0].numpy(), expected, atol=1e-12)
    assert float(rgb_to_y(torch.zeros(1, 3, 1, 1))) == pytest.approx(16 / 255)
    assert float(rgb_to_y(torch.ones(1, 3, 1, 1))) == pytest.approx(235 / 255)


def test_identical_images() -> None:
    _, gt = _pair()
    assert torch.isinf(psnr(gt, gt)).all()  # BasicSR and scikit-image return inf too
    assert torch.allclose(ssim(gt, gt), torch.ones(3, dtype=torch.float64))


def test_reference_metrics_reject_bad_input() -> None:
    restored, gt = _pair()
    with pytest.raises(UirError, match="differ in shape"):
        psnr(restored[:, :, :30], gt)
    with pytest.raises(UirError, match="at least 11x11"):
        ssim(restored, gt, crop_border=14)
    with pytest.raises(UirError, match="crop_border"):
        psnr(restored, gt, crop_border=20)
    with pytest.raises(UirError, match=r"\(B, 3, H, W\)"):
        psnr(restored[0], gt[0])


def test_imresize_matches_matlab_on_a_ramp() -> None:
    # MATLAB's antialiased bicubic halving samples output x (1-based) at input u = 2x - 0.5 with symmetric
    # normalized weights: a linear ramp comes out exact away from the borders, a constant everywhere.
    ramp = torch.arange(1, 17, dtype=torch.float64).repeat(16, 1).unsqueeze(0)
    half = imresize(ramp, 0.5)
    assert half.shape == (1, 8, 8)
    torch.testing.assert_close(half[0, 0, 2:6], torch.tensor([5.5, 7.5, 9.5, 11.5], dtype=torch.float64))
    torch.testing.assert_close(
        imresize(torch.full((1, 9, 7), 3.0, dtype=torch.float64), 0.5), torch.full((1, 5, 4), 3.0, dtype=torch.float64)
    )


@pytest.mark.parametrize(("convert_to", "crop_border"), list(BASICSR_NIQE_CHELSEA))
def test_niqe_matches_basicsr(convert_to: str, crop_border: int) -> None:
    chelsea = load_example("chelsea.png")
    score = niqe(chelsea, convert_to=convert_to, crop_border=crop_border)
    assert score.shape == (1,)
    assert float(score[0]) == pytest.approx(BASICSR_NIQE_CHELSEA[(convert_to, crop_border)], abs=1e-4)


def test_niqe_batch_is_per_image_and_rejects_small_images(photo: torch.Tensor) -> None:
    batch = torch.cat([photo, photo.flip(-1), photo * 0.8])
    scores = niqe(batch)
    torch.testing.assert_close(scores, torch.cat([niqe(x[None]) for x in batch]))
    with pytest.raises(UirError, match="at least 96x96"):
        niqe(photo[..., :95, :])
    with pytest.raises(UirError, match="convert_to"):
        niqe(photo, convert_to="lab")


def _gray_images() -> list[torch.Tensor]:
    rng = np.random.default_rng(0)
    smooth = torch.nn.functional.interpolate(
        torch.from_numpy(rng.random((1, 3, 12, 16))), size=(37, 53), mode="bicubic"
    )
    noisy = (smooth + 0.05 * torch.from_numpy(rng.standard_normal((1, 3, 37, 53)))).clamp(0, 1)
    return [
        to_8bit_luma(x, "gray")[0]
        for x in (noisy, load_example("chelsea.png"), load_example("coffee.png", (0, 0, 130, 101)))
    ]


def test_piqe_matches_pypiqe_on_the_same_gray_image() -> None:
    pypiqe = pytest.importorskip("pypiqe")
    for gray in _gray_images():
        assert piqe_gray(gray) == pytest.approx(pypiqe.piqe(gray.numpy())[0], abs=1e-9)


@pytest.mark.parametrize("box", [(150, 60, 278, 156), (0, 0, 300, 200)])
def test_piqe_matches_pypiqe_on_rgb(box: tuple[int, int, int, int]) -> None:
    # pypiqe converts with OpenCV (0.299/0.587/0.114 in fixed point), we with MATLAB's rgb2gray as MATLAB's
    # piqe does (and match MATLAB's published scores): a few gray levels differ by one, which can flip a
    # block's labels; each flip moves the score by at most 100 / (1 + active blocks), about 0.5 on a 300x200
    # crop. Tolerance: two such flips (1.0 on the 0-100 scale). Measured: 0.0003 and 0.378.
    pypiqe = pytest.importorskip("pypiqe")
    img = load_example("coffee.png", box)
    bgr = np.ascontiguousarray(np.round(_hwc(img[0].double()) * 255).astype(np.uint8)[..., ::-1])
    assert float(piqe(img)[0]) == pytest.approx(pypiqe.piqe(bgr)[0], abs=1.0)


def test_piqe_uniform_image_is_100() -> None:
    assert piqe(torch.full((2, 3, 40, 40), 0.3)).tolist() == [100.0, 100.0]
    assert piqe(torch.zeros(1, 3, 20, 20)).tolist() == [100.0]


@pytest.mark.skipif(
    not os.environ.get("UIR_MATLAB_CALIBRATION"), reason="set UIR_MATLAB_CALIBRATION (see MATLAB_NIQE's comment)"
)
def test_matlab_published_values() -> None:
    from PIL import Image

    folder = Path(os.environ["UIR_MATLAB_CALIBRATION"]) / "dist_dir"

    def load(name: str) -> torch.Tensor:
        array = np.asarray(Image.open(folder / f"{name}.bmp").convert("RGB"), dtype=np.float64) / 255
        return torch.from_numpy(array).permute(2, 0, 1)[None]

    for name, value in MATLAB_NIQE.items():
        assert float(niqe(load(name), convert_to="gray")[0]) == pytest.approx(value, abs=1e-5)
    for name, value in MATLAB_PIQE.items():
        assert float(piqe(load(name))[0]) == pytest.approx(value, abs=0.005)


def test_registry_flags_and_lookup() -> None:
    assert {"psnr", "ssim", "niqe", "piqe"} <= set(METRICS)
    for name, metric in METRICS.items():
        assert metric.name == name
        assert metric.higher_is_better == name.startswith(("psnr", "ssim"))
        assert metric.needs_reference == name.startswith(("psnr", "ssim"))
        assert metric.description
    assert get_metric("niqe").fn is niqe
    with pytest.raises(UirError, match="unknown metric 'brisque'; known: niqe, piqe, psnr"):
        get_metric("brisque")


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_is_batched_and_deterministic(name: str, photo: torch.Tensor) -> None:
    metric = get_metric(name)
    restored = (photo + 0.05 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    batch, gt = torch.cat([restored, photo]), torch.cat([photo, photo])
    args = (batch, gt) if metric.needs_reference else (batch,)
    first, second = metric.fn(*args), metric.fn(*args)
    assert first.shape == (2,) and first.dtype == torch.float64
    assert torch.equal(first, second)
    assert torch.isfinite(first[0])
    better = first[1] >= first[0] if metric.higher_is_better else first[1] <= first[0]
    assert better, f"{name}: the clean photo should not score worse than its noisy copy ({first.tolist()})"


def test_artifact_score_finds_a_faint_grid_and_nothing_else() -> None:
    """A 1/255 pattern on a quarter of the pixels of a real photo triples its 2-/4-px energy; a blur, the same photo
    one pixel over, σ5 noise and a brightness ramp do not add it (the score is the set's energy over the
    references')."""
    from uir.metrics import artifact_score, periodic_energy

    photo = load_example("chelsea.png")  # the whole example photo

    def score(x: torch.Tensor, reference: torch.Tensor = photo) -> float:
        return artifact_score([float(periodic_energy(x))], [float(periodic_energy(reference))])

    grid = photo.clone()
    grid[..., ::2, ::2] += 1 / 255
    assert score(grid) > 2.5  # measured 3.01
    column = photo.clone()
    column[..., :, ::4] += 1 / 255  # a 4-px column pattern, like a 2-level down/up-sampling leaves
    assert score(column) > 2.2  # measured 2.57
    assert score(torch.nn.functional.avg_pool2d(photo, 3, 1, 1, count_include_pad=False)) < 0.3  # measured 0.11
    assert score(photo[..., 1:, 3:], photo[..., :-1, :-3]) == pytest.approx(1.0, abs=0.1)  # measured 1.03
    noise = photo + torch.randn(photo.shape, generator=torch.Generator().manual_seed(0)) * 5 / 255
    assert score(noise) < 1.1  # measured 1.01
    ramp = 0.8 * photo + 0.2 * torch.linspace(0, 1, photo.shape[-1])
    assert score(ramp, 0.8 * photo) == pytest.approx(1.0, abs=1e-3)  # without the high-pass: far above 1
    assert artifact_score([2.0, 2.0], [1.0, 3.0]) == 1.0  # a ratio of sums (the mean of the ratios is 1.33)


def test_noise_sigma_reads_the_noise_added_to_a_photo() -> None:
    from uir.metrics.estimates import noise_sigma

    photo = load_example("coffee.png", (100, 100, 260, 300))  # a 160×200 crop: cup, saucer, table
    generator = torch.Generator().manual_seed(0)
    for sigma, tolerance in ((10, 1.0), (25, 1.0), (40, 3.0)):  # measured 10.35, 24.64, 37.49 (clipping)
        noisy = ((photo + torch.randn(photo.shape, generator=generator) * sigma / 255).clamp(0, 1) * 255).round() / 255
        assert float(noise_sigma(noisy)) == pytest.approx(sigma, abs=tolerance)
    assert float(noise_sigma(photo)) < 2.0  # measured 1.37


def test_residual_grain_counts_what_is_taken_from_flat_parts_not_from_texture() -> None:
    from uir.metrics.estimates import residual_grain

    h, w = 96, 128
    flat = torch.full((1, 3, h, w), 0.5)
    textured = flat.clone()
    stripes = 0.2 * torch.sin(torch.arange(w - w // 4) * 2.0)  # fine texture but in the left quarter
    textured[..., w // 4 :] += stripes
    generator = torch.Generator().manual_seed(0)
    grain = torch.randn(textured.shape, generator=generator) * 4 / 255
    # Grain everywhere, all of it taken out: its sigma.
    assert float(residual_grain(textured + grain, textured)) == pytest.approx(4.0, abs=0.4)
    # Half the texture taken out (a denoiser that smooths it): the flat quarter decides, nothing was taken there.
    smoothed = flat.clone()
    smoothed[..., w // 4 :] += stripes / 2
    assert float(residual_grain(textured, smoothed)) == 0.0
    assert float(residual_grain(textured, smoothed, share=1.0)) > 10  # every block: the texture counts
    # Blocks near black or white do not count (clipped grain is smaller than it is): the top-left quarter is the only
    # flat part (12 of 48 blocks; the flattest fifth is 9), near black, and the only part where anything was taken.
    striped = flat + 0.2 * torch.sin(torch.arange(w) * 2.0)
    taken = torch.zeros_like(striped)
    taken[..., : h // 2, : w // 2] = 6 / 255
    for level, expected in ((0.01, 0.0), (0.5, 6.0)):
        quarter = striped.clone()
        quarter[..., : h // 2, : w // 2] = level
        assert float(residual_grain(quarter + taken, quarter)) == pytest.approx(expected, abs=0.01), level
    with pytest.raises(ValueError, match="same shape"):
        residual_grain(flat, flat[..., :-1])
    with pytest.raises(ValueError, match="more than 16 pixels"):
        residual_grain(flat[..., :16, :40], flat[..., :16, :40])


def test_jpeg_quality_is_read_from_pixels_at_any_grid_offset_and_from_files() -> None:
    import io as bytes_io

    from PIL import Image

    from uir.degradations.compression import jpeg_compress
    from uir.metrics.estimates import jpeg_file_quality, jpeg_quality

    photo = load_example("coffee.png", (100, 100, 260, 300))
    for quality, offset in ((25, (0, 0)), (45, (3, 6)), (80, (7, 1)), (92, (2, 2))):
        assert float(jpeg_quality(jpeg_compress(photo, quality, offset=offset))) == quality
    # Too few coefficients survive quality 15 in a 160×200 crop to read the steps: no answer rather than a wrong one.
    assert np.isnan(float(jpeg_quality(jpeg_compress(photo, 15))))
    assert np.isnan(float(jpeg_quality(photo)))  # a PNG that was never a JPEG
    buffer = bytes_io.BytesIO()
    Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(buffer, "JPEG", quality=63)
    assert jpeg_file_quality(bytes_io.BytesIO(buffer.getvalue())) == 63.0
