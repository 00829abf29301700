"""Shared fixtures: small natural images from the shipped examples (tests never read ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
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
