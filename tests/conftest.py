"""Shared fixtures: small natural images from the shipped examples (tests never read ../shared)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "clean"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Derived files (``uir restore`` exports learned models for onnxruntime) go to a temporary cache, not ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UIR_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def load_script(name: str, monkeypatch: pytest.MonkeyPatch | None = None) -> ModuleType:
    """``scripts/<name>.py`` as a module. With ``monkeypatch`` it is also put in ``sys.modules`` for the test
    (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if monkeypatch is not None:
        monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def load_example(name: str, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """An example photo as a ``(1, 3, H, W)`` float tensor, optionally cropped to ``box`` (left, top, right, bottom)."""
    image = Image.open(EXAMPLES / name).convert("RGB")
    if box is not None:
        image = image.crop(box)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """A 96×128 crop of a real photo (texture, edges and smooth areas)."""
    return load_example("chelsea.png", (150, 60, 278, 156))


@pytest.fixture(scope="session")
def odd_photo() -> torch.Tensor:
    """A 37×53 crop: odd sizes must work everywhere."""
    return load_example("coffee.png", (200, 100, 253, 137))


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> object:
    """Every test on one torch thread: tiny nets run fastest so, tests run side by side (pytest -n 2), and the
    bit-exact resume tests hold for one thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_tiny_model(
    path: Path, seed: int = 0, labels: tuple[str, ...] = ("noise", "haze", "rain-streaks"), **overrides: Any
) -> Path:
    """A ``nafnet-tiny`` (with constructor ``overrides``, stored in the file) with seeded random weights, as a uir
    ``.safetensors`` file. Untrained NAFNet blocks start as identities, so every parameter gets ``0.1·N(0, 1)``
    added; the initial weights are drawn under ``seed`` in a forked RNG, so the file is the same in every run."""
    from uir.checkpoint import export_safetensors
    from uir.models.backbones import create_backbone

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = create_backbone("nafnet-tiny", **overrides)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    metadata = {"backbone": "nafnet-tiny", "labels": list(labels), "overrides": overrides}
    return export_safetensors(path, net.state_dict(), metadata)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny.safetensors``: a 4-level ``nafnet-tiny`` with seeded random weights (``write_tiny_model``, seed 0),
    whose output changes a lot with the crop it sees. Read-only: copy it before changing it."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny.safetensors")


def smooth_photo(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """A smooth random colour image (bicubic upsampling of a 4× smaller random one)."""
    base = rng.integers(40, 220, (h // 4 + 2, w // 4 + 2, 3)).astype(np.uint8)
    return Image.fromarray(base).resize((w, h), Image.BICUBIC)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data of configs/tiny_test.yaml (``UIR_DATA_ROOT``): ``clean/``, 5 photos 45×61; ``rain/lq`` and
    ``rain/gt``, 3 pairs 40×50 with sparse bright streaks. Read-only: tests must not write into it."""
    root = tmp_path_factory.mktemp("tiny_data")
    rng = np.random.default_rng(0)
    (root / "clean").mkdir()
    for i in range(5):
        smooth_photo(rng, 45, 61).save(root / "clean" / f"{i}.png")
    for sub in ("lq", "gt"):
        (root / "rain" / sub).mkdir(parents=True)
    for i in range(3):
        gt = smooth_photo(rng, 40, 50)
        gt.save(root / "rain" / "gt" / f"{i}.png")
        streaks = 40 * (rng.random((40, 50, 1)) > 0.9)
        Image.fromarray(np.minimum(np.asarray(gt, np.int32) + streaks, 255).astype(np.uint8)).save(
            root / "rain" / "lq" / f"{i}.png"
        )
    return root


def cut_jpeg(image: Image.Image, keep: int, **options: object) -> bytes:
    """``image`` as a JPEG (Pillow ``options``) whose coded data is cut after ``keep`` bytes and closed by EOI:
    libjpeg decodes such a file as grey without an error."""
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, format="JPEG", **options)
    data = buffer.getvalue()
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    return data[: start + keep] + b"\xff\xd9"


def box_blur(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (size // 2,) * 4, mode="replicate"), size, stride=1)


def median_blur(x: torch.Tensor, size: int) -> torch.Tensor:
    windows = F.pad(x, (size // 2,) * 4, mode="replicate").unfold(2, size, 1).unfold(3, size, 1)
    return windows.flatten(-2).median(dim=-1).values


def trivial_filters(lq: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a restorer has to beat: blurs and medians (noise, streaks), a min-max stretch (haze, a veil), and
    brightening by a gain or a gamma (low light)."""
    low, high = lq.amin(dim=(1, 2, 3), keepdim=True), lq.amax(dim=(1, 2, 3), keepdim=True)
    filters = {"identity": lq, "box-3": box_blur(lq, 3), "box-5": box_blur(lq, 5), "median-3": median_blur(lq, 3)}
    filters |= {"median-5": median_blur(lq, 5), "stretch": (lq - low) / (high - low).clamp_min(1e-6)}
    filters["gain"] = (lq * 0.5 / lq.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)).clamp(0, 1)
    return filters | {f"gamma-{g}": lq.clamp_min(0) ** g for g in (0.3, 0.4, 0.5, 0.7)}
