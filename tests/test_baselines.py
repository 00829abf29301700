"""Classic baselines: every registered restorer keeps the contract, and each task baseline beats identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from uir import degradations as D
from uir.baselines import (
    BEST_FOR_TASK,
    ClassicBest,
    estimate_blur_kernel,
    estimate_noise_sigma,
    gaussian_psf,
    richardson_lucy,
    wiener_deconv,
)
from uir.baselines.base import linear_to_srgb, srgb_to_linear
from uir.errors import UirError
from uir.pretrained import ALIASES
from uir.restorers import Restorer, available_restorers, load_restorer

EXPECTED = {
    "identity",
    "nlm",
    "bm3d",
    "dcp",
    "wiener",
    "richardson-lucy",
    "clahe",
    "gamma",
    "retinex",
    "median",
    "guided",
    "classic-best",
}


def psnr(a: Tensor, b: Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a.double() - b.double()) ** 2)))


def test_registry_lists_every_baseline() -> None:
    assert set(available_restorers()) >= EXPECTED
    assert set(BEST_FOR_TASK.values()) <= EXPECTED


@pytest.mark.parametrize("name", available_restorers())
def test_contract_on_odd_sizes(name: str, odd_photo: Tensor) -> None:
    restorer = load_restorer(name)  # bm3d too: the test extra installs it
    assert isinstance(restorer, Restorer) and restorer.name == ALIASES.get(name, name)
    lq = torch.cat([odd_photo, odd_photo.flip(-1) * 0.5])  # (2, 3, 37, 53)
    tasks = ["noise", "haze"]
    out = restorer.restore(lq, tasks)
    assert out.shape == lq.shape and out.dtype == lq.dtype and out.device == lq.device
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, restorer.restore(lq, tasks)), "not deterministic"
    assert restorer.restore(lq.double(), tasks).dtype == torch.float64


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UirError, match="nlm"):
        load_restorer("no-such-baseline")


def test_bad_input_is_a_user_error() -> None:
    with pytest.raises(UirError, match=r"\(B, 3, H, W\)"):
        load_restorer("nlm").restore(torch.rand(3, 37, 53))


def test_noise_sigma_estimate() -> None:
    rng = np.random.default_rng(0)
    noisy = 0.5 + rng.normal(0, 20 / 255, (96, 128, 3)).astype(np.float32)
    for method in ("mad", "immerkaer"):
        assert abs(estimate_noise_sigma(noisy, method) * 255 - 20) < 2


def test_nlm_denoises_gaussian_noise(photo: Tensor) -> None:
    lq, _ = D.degrade(photo, "noise", 1 / 3, seed=0, overrides={"noise": {"kind": "gaussian", "gray": 0}})
    assert psnr(load_restorer("nlm").restore(lq), photo) > psnr(lq, photo) + 3


def test_dcp_dehazes_synthetic_haze(photo: Tensor) -> None:
    lq, _ = D.degrade(photo, "haze", 0.4, seed=0)
    assert psnr(load_restorer("dcp").restore(lq), photo) > psnr(lq, photo) + 2


def test_deconvolution_with_the_known_kernel(photo: Tensor) -> None:
    kernel = gaussian_psf(2.5, 1.0, 30.0)
    clean = photo[0].permute(1, 2, 0).numpy().astype(np.float64)
    padded = np.pad(clean, ((12, 12), (12, 12), (0, 0)), mode="reflect")
    blurred = np.stack([_convolve(padded[..., c], kernel) for c in range(3)], axis=-1)[12:-12, 12:-12]
    base = _psnr_np(blurred, clean)
    assert _psnr_np(np.clip(wiener_deconv(blurred, kernel, 1e-3), 0, 1), clean) > base + 2
    assert _psnr_np(np.clip(richardson_lucy(blurred, kernel, 30), 0, 1), clean) > base + 2


def test_blind_kernel_estimate_finds_the_blur_direction(photo: Tensor) -> None:
    clean = srgb_to_linear(photo[0].permute(1, 2, 0).numpy())
    padded = np.pad(clean, ((20, 20), (20, 20), (0, 0)), mode="reflect")
    blurred = np.stack([_convolve(padded[..., c], gaussian_psf(4.0, 0.5, 60.0)) for c in range(3)], -1)
    estimate = estimate_blur_kernel(blurred[20:-20, 20:-20])
    along, across, angle = estimate.params
    assert along > across + 1.5 and abs(angle - 60.0) <= 20.0


@pytest.mark.parametrize("name", ["wiener", "richardson-lucy"])
def test_blind_deblur_sharpens_a_gaussian_blur(name: str, photo: Tensor) -> None:
    clean = srgb_to_linear(photo[0].permute(1, 2, 0).numpy())
    padded = np.pad(clean, ((10, 10), (10, 10), (0, 0)), mode="reflect")
    blurred = np.stack([_convolve(padded[..., c], gaussian_psf(1.5, 1.5, 0.0)) for c in range(3)], -1)
    lq = torch.from_numpy(linear_to_srgb(blurred[10:-10, 10:-10])).permute(2, 0, 1)[None]
    assert psnr(load_restorer(name).restore(lq), photo) > psnr(lq, photo) + 0.3


@pytest.mark.parametrize("name", ["clahe", "gamma", "retinex"])
def test_low_light_enhancers_brighten(name: str, photo: Tensor) -> None:
    lq, _ = D.degrade(photo, "low-light", 0.5, seed=0)
    out = load_restorer(name).restore(lq)
    assert out.mean() > lq.mean() + 0.1
    assert psnr(out, photo) > psnr(lq, photo) + 3


@pytest.mark.parametrize("name", ["guided", "median"])
def test_rain_filters_remove_synthetic_streaks(name: str, photo: Tensor) -> None:
    lq, _ = D.degrade(photo, "rain-streaks", 0.5, seed=0)
    assert psnr(load_restorer(name).restore(lq), photo) > psnr(lq, photo) + 0.3


class _Tag:
    """A stub restorer that fills its output with a constant, to see where the dispatcher sent each image."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value = name, value

    def restore(self, lq: Tensor, tasks: list[str] | None = None) -> Tensor:
        return torch.full_like(lq, self.value)


def test_classic_best_routes_by_task(odd_photo: Tensor) -> None:
    factories = {"nlm": lambda: _Tag("nlm", 0.25), "dcp": lambda: _Tag("dcp", 0.75)}
    oracle = ClassicBest(factories=factories, routes={"noise": "nlm", "haze": "dcp"})
    lq = odd_photo.repeat(3, 1, 1, 1)
    out = oracle.restore(lq, ["haze", "not-a-task", "noise"])
    assert torch.all(out[0] == 0.75) and torch.equal(out[1], lq[1]) and torch.all(out[2] == 0.25)


def test_classic_best_uses_the_real_baselines(photo: Tensor) -> None:
    lq, _ = D.degrade(photo, "haze", 0.4, seed=0)
    oracle = load_restorer("classic-best")
    assert torch.equal(oracle.restore(lq, ["haze"]), load_restorer("dcp").restore(lq))
    assert oracle.route("motion-blur") == BEST_FOR_TASK["motion-blur"] and oracle.route("snow") == "identity"


def test_classic_best_needs_the_tasks(odd_photo: Tensor) -> None:
    with pytest.raises(UirError, match="oracle"):
        load_restorer("classic-best").restore(odd_photo)


def _convolve(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Full-size circular convolution by FFT (the caller pads and crops)."""
    h, w = plane.shape
    psf = np.zeros((h, w))
    kh, kw = kernel.shape
    psf[:kh, :kw] = kernel
    psf = np.roll(psf, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.irfft2(np.fft.rfft2(plane) * np.fft.rfft2(psf), s=(h, w))


def _psnr_np(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))
