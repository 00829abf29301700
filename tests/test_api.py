"""The public API: any input type comes back as the same type, shape and dtype; bad input is one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import uir
from conftest import trivial_filters
from uir.errors import UirError
from uir.io import to_numpy, to_tensor


@pytest.fixture(scope="module")
def identity() -> uir.Model:
    return uir.load("identity")


@pytest.fixture(scope="module")
def rgb8() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((37, 53), np.uint8), ((37, 53, 1), np.uint8), ((37, 53, 2), np.uint16), ((37, 53, 3), np.uint16)]
    + [((37, 53, 4), np.uint8), ((37, 53, 3), np.float32), ((37, 53), np.float64)],
)
def test_arrays_come_back_unchanged_through_the_identity(identity: uir.Model, shape: tuple, dtype: type) -> None:
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        array = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    else:
        array = rng.random(shape).astype(dtype)
    out = identity.restore(array)
    assert out.shape == array.shape and out.dtype == array.dtype
    np.testing.assert_allclose(out, array, atol=1e-6 if np.issubdtype(dtype, np.floating) else 0)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P"])
def test_pil_images_keep_mode_and_size(identity: uir.Model, rgb8: np.ndarray, mode: str) -> None:
    pil = Image.fromarray(rgb8).convert(mode)
    out = identity.restore(pil)
    assert out.size == pil.size and out.mode == (mode if mode != "P" else "RGB")
    assert np.array_equal(np.asarray(out), np.asarray(pil.convert(out.mode)))


def test_tensors_keep_shape_dtype_and_batch(identity: uir.Model) -> None:
    batch = torch.rand(2, 3, 20, 30, dtype=torch.float64)
    assert torch.allclose(identity.restore(batch), batch) and identity.restore(batch).dtype == torch.float64
    assert identity.restore(batch[0]).shape == (3, 20, 30)


def test_the_default_model_restores_in_three_lines(rgb8: np.ndarray) -> None:
    clean = np.asarray(Image.open("examples/clean/chelsea.png").convert("RGB"))[60:156, 150:278]
    noise = np.random.default_rng(0).normal(0, 25, clean.shape)
    noisy = np.clip(clean + noise, 0, 255).round().astype(np.uint8)
    model = uir.load()
    restored = model.restore(noisy)
    assert model.name == "nafnet-fr-v2.1" and restored.dtype == np.uint8 and restored.shape == noisy.shape

    def error(x: np.ndarray) -> float:
        return float(np.abs(x.astype(float) - clean).mean())

    # What a denoiser has to beat: the model's error is 0.856 of the best of these filters (box-3).
    filtered = trivial_filters(to_tensor(noisy))
    trivial = {name: to_numpy(out.clamp(0, 1)) for name, out in filtered.items()}
    best = min(trivial, key=lambda name: error(trivial[name]))
    assert error(restored) < 0.87 * error(trivial[best]), f"{error(restored):.2f} vs {best} {error(trivial[best]):.2f}"
    assert np.array_equal(uir.restore_image(noisy), restored)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("photo.jpg", r"expected a NumPy array, a PIL image or a torch tensor, got str"),
        (np.zeros((4, 4, 5), np.uint8), r"expected an HxW, HxWx1, HxWx2, HxWx3 or HxWx4 array, got shape \(4, 4, 5\)"),
        (np.zeros((4, 4, 3), np.int32), r"expected a uint8, uint16 or float array, got int32"),
        (np.full((4, 4, 3), np.nan, np.float32), r"NaN or infinite"),
        (np.zeros((0, 4, 3), np.uint8), r"empty"),
        (torch.zeros(1, 4, 8, 8), r"expected a \(B, 3, H, W\) float tensor"),
        (torch.zeros(8, 8), r"expected a \(3, H, W\) or \(B, 3, H, W\) tensor"),
    ],
)
def test_bad_input_is_one_line(identity: uir.Model, bad: object, message: str) -> None:
    with pytest.raises(UirError, match=message) as err:
        identity.restore(bad)  # type: ignore[type-var]
    assert "\n" not in str(err.value)


def test_unknown_model_names_the_valid_ones() -> None:
    with pytest.raises(UirError, match=r"unknown model 'nope': not a file, and not one of .*default"):
        uir.load("nope")
