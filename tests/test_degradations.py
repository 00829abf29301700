"""Every registered degradation type, checked by the same rules (the registry generates the cases)."""

from __future__ import annotations

import json

import pytest
import torch

from uir import degradations as D
from uir.errors import UirError

TYPES = list(D.TYPES)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()


def test_the_19_types_are_registered() -> None:
    assert len(D.TYPES) == 19
    assert len(D.SINGLE_TYPES) == 14 and len(D.MIXED_TYPES) == 5
    for kind in D.TYPES.values():
        for op in kind.ops:
            assert D.get_op(op).ranges, f"{op} documents no parameter ranges"


@pytest.mark.parametrize("name", TYPES)
def test_same_seed_same_bytes_other_seed_other_output(name: str, photo: torch.Tensor) -> None:
    a, rec_a = D.degrade(photo, name, 0.6, seed=11)
    b, rec_b = D.degrade(photo, name, 0.6, seed=11)
    assert torch.equal(a, b)
    assert rec_a == rec_b
    others = [D.degrade(photo, name, 0.6, seed=s)[0] for s in (12, 13, 14)]
    assert any(not torch.equal(a, o) for o in others), "no seed changes the output"


@pytest.mark.parametrize("name", TYPES)
def test_severity_zero_is_near_identity(name: str, photo: torch.Tensor) -> None:
    for seed in (0, 1):
        y, _ = D.degrade(photo, name, 0.0, seed=seed)
        assert psnr(y, photo) >= 33.0, f"{name} at s=0 is not near identity"


@pytest.mark.parametrize("name", TYPES)
def test_damage_grows_with_severity(name: str, photo: torch.Tensor) -> None:
    for seed in (0, 1, 2):
        scores = [psnr(D.degrade(photo, name, s, seed=seed)[0], photo) for s in (0.2, 0.5, 0.9)]
        assert scores[0] > scores[1] > scores[2], f"{name} seed {seed}: PSNR {scores} does not fall"


@pytest.mark.parametrize("name", TYPES)
def test_shape_range_and_odd_sizes(name: str, odd_photo: torch.Tensor) -> None:
    batch = odd_photo.repeat(2, 1, 1, 1)
    y, _ = D.degrade(batch, name, 0.7, seed=5)
    assert y.shape == batch.shape and y.dtype == batch.dtype
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert torch.equal(batch, odd_photo.repeat(2, 1, 1, 1)), "the input was modified in place"


@pytest.mark.parametrize("name", TYPES)
def test_record_round_trips_through_json(name: str, odd_photo: torch.Tensor) -> None:
    y, record = D.degrade(odd_photo, name, 0.4, seed=21)
    again = D.DegradationRecord.from_json(record.to_json())
    assert again == record
    json.loads(record.to_json())  # plain JSON, no custom objects
    assert torch.equal(D.apply(odd_photo, again), y)
    assert [s.op for s in record.steps] == list(D.get_type(name).ops)


def test_degrade_batch_gives_one_record_per_image(odd_photo: torch.Tensor) -> None:
    batch = odd_photo.repeat(3, 1, 1, 1)
    y, records = D.degrade_batch(batch, ["haze", "jpeg", "noise"], [0.5, 0.5, 0.5], [1, 2, 3])
    assert y.shape == batch.shape
    assert [r.type for r in records] == ["haze", "jpeg", "noise"]
    assert torch.equal(y[1:2], D.degrade(odd_photo, "jpeg", 0.5, seed=2)[0])


def test_overrides_fix_gaussian_noise_sigma() -> None:
    gray = torch.full((1, 3, 64, 64), 0.5)
    y, record = D.degrade(gray, "noise", 0.9, seed=0, overrides={"noise": {"kind": "gaussian", "sigma": 25.0}})
    assert record.steps[0].params["sigma"] == 25.0
    assert abs((y - gray).std().item() - 25 / 255) < 0.005


def test_bad_names_and_severities_are_one_line_errors() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(UirError, match="known: noise"):
        D.degrade(x, "fog", 0.5, seed=0)
    with pytest.raises(UirError, match=r"\[0, 1\]"):
        D.degrade(x, "haze", 1.5, seed=0)
    with pytest.raises(UirError, match="no parameter"):
        D.degrade(x, "noise", 0.5, seed=0, overrides={"noise": {"strength": 1}})
    with pytest.raises(UirError, match=r"\(B, 3, H, W\)"):
        D.degrade(torch.rand(3, 8, 8), "haze", 0.5, seed=0)


@pytest.mark.parametrize("mix", list(D.MIXES))
def test_mixes_draw_reproducibly(mix: str) -> None:
    m = D.get_mix(mix)
    assert m.draw(torch.Generator().manual_seed(4)) == m.draw(torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(0)
    drawn = {m.draw(g).type for _ in range(200)}
    assert drawn == set(m.weights)


def test_5d_mix_noise_is_gaussian() -> None:
    g = torch.Generator().manual_seed(0)
    records = [D.get_mix("5d").draw(g) for _ in range(100)]
    kinds = {r.steps[0].params["kind"] for r in records if r.type == "noise"}
    assert kinds == {"gaussian"}
