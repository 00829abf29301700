"""uir.data: layouts are detected and paired, the check reports problems, datasets are deterministic."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from uir.data import (
    LAYOUTS,
    NoisyDataset,
    PairedDataset,
    SyntheticDataset,
    check_folder,
    collate,
    detect_layout,
    noise_seed,
    pair_folder,
    reflect_pad_to,
    sample_seed,
)
from uir.errors import UirError

H, W = 37, 53


def write(path: Path, seed: int = 0, size: tuple[int, int] = (H, W)) -> Path:
    """A random RGB image of ``size`` (height, width), written with Pillow (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(array).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(array).save(path)
    return path


def make_pairs(root: Path, lq_dir: str, gt_dir: str, names: list[tuple[str, str]]) -> Path:
    """Write (lq name, gt name) pairs; an lq shares its gt's pixels (PNG), so aligned crops are equal."""
    for i, (lq, gt) in enumerate(names):
        write(root / gt_dir / gt, seed=i)
        write(root / lq_dir / lq, seed=i)
    return root


# --------------------------------------------------------------------------- layouts

LAYOUT_CASES = {
    "paired": ("data", "lq", "gt", [("a.jpg", "a.png"), ("b.png", "b.png")]),
    "sots": (
        "hazy_set",
        "hazy",
        "clear",
        [("0001_0.8_0.2.jpg", "0001.png"), ("0002_0.8_0.08.jpg", "0002.png")],
    ),
    "rain100l": (
        "x",
        "rainy",
        "norain",
        [("rain-001.png", "norain-001.png"), ("rain-002.png", "norain-002.png")],
    ),
    "gopro": ("scenes", "GOPR0384_11_00/blur", "GOPR0384_11_00/sharp", [("000001.png", "000001.png")]),
    "lol": ("x", "eval15/low", "eval15/high", [("1.png", "1.png"), ("22.png", "22.png")]),
    "levin": ("x", "blurred", "gt", [("im1_kernel1_img.png", "im1.png"), ("im2_kernel3_img.png", "im2.png")]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_CASES))
def test_each_layout_is_detected_and_paired(tmp_path: Path, layout: str) -> None:
    folder, lq_dir, gt_dir, names = LAYOUT_CASES[layout]
    root = make_pairs(tmp_path / folder, lq_dir, gt_dir, names)
    assert detect_layout(root) == layout
    pairing = pair_folder(root)
    assert [(p.lq.name, p.gt.name) for p in pairing.pairs] == names
    assert not pairing.unmatched
    report = check_folder(root)
    assert report.ok and report.layout == layout and report.pairs == len(names), report.format()


def test_clean_folder(tmp_path: Path) -> None:
    for i in range(3):
        write(tmp_path / "photos" / f"{i}.png", seed=i)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    assert detect_layout(tmp_path / "photos") == "clean"
    report = check_folder(tmp_path / "photos")
    assert report.ok and report.pairs == 3 and report.ignored == ["notes.txt"]
    with pytest.raises(UirError, match="NoisyDataset or SyntheticDataset"):
        PairedDataset(tmp_path / "photos")


@pytest.mark.parametrize(
    ("folder", "lq_dir", "gt_dir", "names", "expected"),
    [
        ("Rain100L", "lq", "gt", [("1.png", "1.png")], "rain100l"),  # our shared copy
        ("GoPro", "input", "target", [("1.png", "1.png")], "gopro"),  # Restormer's test copy
        ("x", "lq", "gt", [("1400_9.png", "1400.png"), ("1400_2.png", "1400.png")], "sots"),  # by names
        ("x", "", "", [("rain-1.png", "norain-1.png")], "rain100l"),  # flat original naming
        ("x", "low", "high", [("1.png", "1.png")], "lol"),
    ],
)
def test_detection_rules(tmp_path: Path, folder: str, lq_dir: str, gt_dir: str, names: list, expected: str) -> None:
    root = make_pairs(tmp_path / folder, lq_dir, gt_dir, names)
    assert detect_layout(root) == expected
    assert len(pair_folder(root).pairs) == len(names)


def test_layouts_can_be_named_and_errors_are_one_line(tmp_path: Path) -> None:
    root = make_pairs(tmp_path / "d", "lq", "gt", [("1_a.png", "1.png")])
    assert detect_layout(root) == "sots"
    assert pair_folder(root, "paired").pairs == []
    assert len(pair_folder(root, "sots").pairs) == 1
    for name in sorted(set(LAYOUTS) - {"sots", "clean"}):  # the other paired layouts find no pair: both files unmatched
        assert sorted(p.name for p in pair_folder(root, name).unmatched) == ["1.png", "1_a.png"], name
    for name in sorted(set(LAYOUTS) - {"clean"}):  # a flat folder of images: every paired layout refuses it in one line
        with pytest.raises(UirError, match=rf"lq: layout '{name}' needs ") as err:
            pair_folder(root / "lq", name)
        assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="known: paired"):
        pair_folder(root, "nope")
    with pytest.raises(UirError, match="needs sub-folders blurred/"):
        pair_folder(root / "lq", "levin")
    with pytest.raises(UirError, match="no such folder"):
        detect_layout(tmp_path / "missing")


# --------------------------------------------------------------------------- check


def test_check_reports_unmatched_unreadable_and_size_mismatch(tmp_path: Path) -> None:
    root = make_pairs(tmp_path / "d", "lq", "gt", [("1.png", "1.png"), ("2.png", "2.png")])
    write(root / "lq" / "orphan.png")
    write(root / "gt" / "3.png")
    write(root / "lq" / "3.png", size=(H + 1, W))
    (root / "lq" / "4.png").write_bytes(b"")
    (root / "gt" / "4.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    report = check_folder(root)
    assert not report.ok
    assert report.layout == "paired" and report.pairs == 4 and report.lq == 5 and report.gt == 4
    assert report.unmatched == ["lq/orphan.png"]
    assert [p for p, _ in report.unreadable] == ["lq/4.png", "gt/4.png"]
    assert all(reason and "\n" not in reason for _, reason in report.unreadable)
    assert report.size_mismatches == [["lq/3.png", "gt/3.png", f"{W}x{H + 1} vs {W}x{H}"]]
    text = report.format()
    assert "orphan.png" in text and "lq/4.png" in text and "NOT OK" in text
    assert report.to_dict()["ok"] is False
    with pytest.raises(UirError, match="size mismatch: .*3.png is 53x38 but .*3.png is 53x37"):
        PairedDataset(root)[2]


def test_check_never_crashes_on_odd_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = check_folder(tmp_path / "empty")
    assert not report.ok and report.problem == "empty folder" and "empty folder" in report.format()
    (tmp_path / "deep" / "sub").mkdir(parents=True)
    assert "no known layout" in check_folder(tmp_path / "deep").problem
    (tmp_path / "pairs" / "lq").mkdir(parents=True)
    (tmp_path / "pairs" / "gt").mkdir()
    assert check_folder(tmp_path / "pairs").problem == "no lq/gt pairs"
    with pytest.raises(UirError, match="no such folder"):
        check_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UirError, match="not a folder"):
        check_folder(tmp_path / "file.png")
    with pytest.raises(UirError, match="unknown layout"):
        check_folder(tmp_path / "empty", layout="nope")


# --------------------------------------------------------------------------- datasets


def test_paired_dataset_samples_and_aligned_crops(tmp_path: Path) -> None:
    root = make_pairs(tmp_path / "Rain100L", "lq", "gt", [(f"{i}.png", f"{i}.png") for i in range(3)])
    full = PairedDataset(root)
    sample = full[0]
    assert set(sample) == {"lq", "gt", "label", "path"} and sample["label"] == "rain-streaks"
    assert sample["lq"].shape == (3, H, W) and sample["lq"].dtype == torch.float32
    written = np.asarray(Image.open(root / "gt" / "0.png"), dtype=np.float32) / 255
    assert torch.equal(sample["gt"], torch.from_numpy(written).permute(2, 0, 1))
    assert PairedDataset(root, label="noise")[0]["label"] == "noise"

    ds = PairedDataset(root, crop=(16, 24), flip=True, seed=3)
    a, b = ds[1], ds[1]
    assert a["lq"].shape == (3, 16, 24) and torch.equal(a["lq"], a["gt"])  # same window in lq and gt
    assert torch.equal(a["lq"], b["lq"])
    crops = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        crops.add(ds[1]["gt"].sum().item())
    assert len(crops) > 1  # a new epoch draws new windows

    big = PairedDataset(root, crop=64)[0]  # larger than the image: mirror-padded
    assert big["lq"].shape == (3, 64, 64) and torch.equal(big["lq"], big["gt"])
    batch = collate([ds[0], ds[1]])
    assert batch["lq"].shape == (2, 3, 16, 24) and batch["label"] == ["rain-streaks"] * 2


def test_reflect_pad_to_small_images() -> None:
    x = torch.arange(6.0).view(1, 2, 3)
    y = reflect_pad_to(x, 9, 8)
    assert y.shape == (1, 9, 8) and torch.equal(y[:, :2, :3], x)
    assert reflect_pad_to(torch.ones(3, 1, 1), 4, 5).shape == (3, 4, 5)


def test_sample_seed_is_stable() -> None:
    assert sample_seed(0, 0, 0) == 3649034661406903291
    assert len({sample_seed(0, i, e) for i in range(10) for e in range(10)}) == 100


def test_noisy_dataset_is_exact_and_repeatable(tmp_path: Path) -> None:
    for i in range(2):
        write(tmp_path / "clean" / f"{i}.png", seed=i)
    ds = NoisyDataset(tmp_path / "clean", sigma=25)
    s = ds[1]
    assert s["label"] == "noise" and s["sigma"] == 25.0
    assert torch.equal(s["lq"], NoisyDataset(tmp_path / "clean", sigma=25)[1]["lq"])
    assert not torch.equal(s["lq"], NoisyDataset(tmp_path / "clean", sigma=15)[1]["lq"])

    seed = zlib.crc32(b"1.png") + 25 * 1_000_003
    assert noise_seed("1.png", 25) == seed
    noise = torch.randn(s["gt"].shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    assert torch.equal(s["lq"], (s["gt"] + noise * (25 / 255.0)).clamp(0.0, 1.0))


def test_synthetic_dataset_is_deterministic(tmp_path: Path) -> None:
    from uir.degradations import DegradationRecord, apply, get_mix

    for i in range(2):
        write(tmp_path / "clean" / f"{i}.png", seed=i)
    ds = SyntheticDataset(tmp_path / "clean", mix="3d", crop=16, seed=5, length=5)
    assert len(ds) == 5
    a, b = ds[3], ds[3]
    assert a["lq"].shape == a["gt"].shape == (3, 16, 16)
    assert torch.equal(a["lq"], b["lq"]) and a["record"] == b["record"]
    assert a["label"] == a["record"]["type"]
    assert torch.equal(apply(a["gt"][None], DegradationRecord.from_dict(a["record"]))[0], a["lq"])
    labels = {ds[i]["label"] for i in range(len(ds))}
    assert labels <= set(get_mix("3d").weights)
    ds.set_epoch(1)
    assert ds[3]["record"] != a["record"]
    other = SyntheticDataset(tmp_path / "clean", mix=get_mix("3d"), crop=64, seed=5)
    assert other[0]["gt"].shape == (3, 64, 64)  # smaller than the crop: mirror-padded
    batch = collate([ds[0], ds[1]])
    assert batch["lq"].shape == (2, 3, 16, 16) and len(batch["record"]) == 2
    with pytest.raises(IndexError):
        ds[5]


def test_files_select_a_slice_of_the_sorted_images_or_pairs(tmp_path: Path) -> None:
    for i in range(5):
        write(tmp_path / "clean" / f"{i}.png", seed=i)
    train = SyntheticDataset(tmp_path / "clean", mix="3d", crop=16, files=(0, 3))
    held_out = NoisyDataset(tmp_path / "clean", 25, files=(3, 5))
    assert [p.name for p in train.images] == ["0.png", "1.png", "2.png"] and len(train) == 3
    assert [p.name for p in held_out.images] == ["3.png", "4.png"]
    assert len(SyntheticDataset(tmp_path / "clean", mix="3d", files=(4, 99))) == 1  # a stop past the end is fine
    with pytest.raises(UirError, match=r"clean: files \[5, 9\) selects nothing from its 5 images"):
        NoisyDataset(tmp_path / "clean", 25, files=(5, 9))
    pairs = make_pairs(tmp_path / "pairs", "lq", "gt", [(f"{i}.png", f"{i}.png") for i in range(4)])
    assert [p.gt.name for p in PairedDataset(pairs, files=(1, 3)).pairs] == ["1.png", "2.png"]
