"""`uir eval` end to end on a tiny data root made here (the protocols' layouts, 3 images per set)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import load_script, smooth_photo
from uir.benchmarks import CLEAN_TASK, PROTOCOLS, get_protocol, sampled_sets, synthesize
from uir.cli import main
from uir.errors import UirError


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    clean = root / "denoise" / "CBSD68"
    clean.mkdir(parents=True)
    for i in range(4):
        smooth_photo(rng, 37, 53).save(clean / f"{i:03d}.png")
    for sub in ("lq", "gt"):
        (root / "derain" / "Rain100L" / sub).mkdir(parents=True)
    for i in range(3):
        gt = smooth_photo(rng, 37, 53)
        gt.save(root / "derain" / "Rain100L" / "gt" / f"{i}.png")
        rainy = np.minimum(np.asarray(gt, dtype=np.int32) + 40 * (rng.random((37, 53, 1)) > 0.9), 255)
        Image.fromarray(rainy.astype(np.uint8)).save(root / "derain" / "Rain100L" / "lq" / f"{i}.png")
    real = root / "real_noisy" / "RNI15"
    real.mkdir(parents=True)
    smooth_photo(rng, 200, 240).save(real / "photo.png")
    return root


def test_every_protocol_names_known_tasks() -> None:
    from uir.degradations import TYPES

    for protocol in PROTOCOLS.values():
        for test_set in protocol.sets:
            assert test_set.task in TYPES or test_set.task == CLEAN_TASK, (
                f"{protocol.name}/{test_set.name}: unknown task {test_set.task}"
            )
    with pytest.raises(UirError, match="known: 3d"):
        get_protocol("7d")


def test_uir5d_end_to_end(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--model", "identity", "classic-best", "--benchmark", "uir-5d", "--data-root", str(data_root)]
    assert main([*args, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["sets"]] == [
        "cbsd68-s25",
        "rain100l",
        "syn-haze",
        "syn-motion-blur",
        "syn-low-light",
    ]
    assert results["missing"] == []
    assert results["versions"]["torch"] == torch.__version__ and results["protocol"]["name"] == "uir-5d"
    noise = results["sets"][0]["models"]
    assert len(noise["identity"]["per_image"]["psnr"]) == 4
    assert noise["classic-best"]["mean"]["psnr"] > noise["identity"]["mean"]["psnr"]
    table = (out / "results.md").read_text()
    assert "| identity |" in table and "| classic-best |" in table and "| input |" in table
    assert (out / "grids" / "rain100l.jpg").is_file()
    # Same inputs, same numbers: a second run repeats every score exactly.
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    for first, second in zip(results["sets"], again["sets"], strict=True):
        for model in first["models"]:
            assert first["models"][model]["per_image"] == second["models"][model]["per_image"]


def test_fidelity_scores_photos_that_need_nothing(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--model", "identity", "classic-best", "--benchmark", "fidelity", "--data-root", str(data_root)]
    assert main([*args, "--out", str(out)]) == 0
    sets = {s["name"]: s["models"] for s in json.loads((out / "results.json").read_text())["sets"]}
    assert list(sets) == ["clean", "jpeg-q90", "jpeg-q75"]
    # A clean photo is its own ground truth: leaving it alone is perfect, and classic-best does leave it.
    assert sets["clean"]["identity"]["mean"]["psnr"] == float("inf")
    assert sets["clean"]["classic-best"]["mean"]["psnr"] == float("inf")
    # The artifact score of an output that is its reference is exactly 1 (the ratio of the same energies).
    assert sets["clean"]["identity"]["artifact"] == 1.0
    # On JPEG inputs identity returns the input, so it scores what the input scores (and not 1: JPEG adds blocks).
    assert sets["jpeg-q75"]["identity"]["artifact"] == sets["jpeg-q75"]["input"]["artifact"] != 1.0
    assert "Artifact score" in (out / "results.md").read_text()
    # The JPEG sets are real encodes at the stated quality: q90 is closer to the original than q75.
    assert 15 < sets["jpeg-q75"]["identity"]["mean"]["psnr"] < sets["jpeg-q90"]["identity"]["mean"]["psnr"] < 60
    q90 = next(s for s in get_protocol("fidelity").sets if s.name == "jpeg-q90")
    folder = synthesize(q90, data_root / "denoise" / "CBSD68", tmp_path / "cache")
    records = [json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))]
    assert len(records) == 2 and all('"quality": 90' in json.dumps(r) for r in records)


def test_synthetic_sets_regenerate_identically(data_root: Path, tmp_path: Path) -> None:
    test_set = next(s for s in get_protocol("uir-5d").sets if s.name == "syn-haze")
    clean = data_root / "denoise" / "CBSD68"
    first, second = synthesize(test_set, clean, tmp_path / "a"), synthesize(test_set, clean, tmp_path / "b")
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert len(files) == 4  # every 2nd of 4 images, lq and gt
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes()


def test_missing_data_is_named_not_skipped(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    assert (
        main(["eval", "--model", "identity", "--benchmark", "5d", "--data-root", str(data_root), "--out", str(out)])
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    missing = {m["set"]: m["expects"] for m in results["missing"]}
    assert set(missing) == {"sots-outdoor", "gopro", "lol"}
    assert "low/ + high/" in missing["lol"]
    assert "data missing" in (out / "results.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--model", "identity", "--benchmark", "3d", "--data-root", str(empty), "--out", str(out)]) == 2
    assert "no data found" in capsys.readouterr().err


def test_real_sets_use_no_reference_metrics(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert (
        main(["eval", "--model", "identity", "--benchmark", "real", "--data-root", str(data_root), "--out", str(out)])
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    (real,) = results["sets"]
    assert set(real["models"]["identity"]["mean"]) == {"piqe", "niqe"}
    assert len(results["missing"]) == 4


def test_model_files_with_one_name_are_told_apart_by_folder(data_root: Path, tmp_path: Path) -> None:
    from uir.checkpoint import export_safetensors
    from uir.models.backbones import create_backbone

    for run in ("scratch", "finetune"):
        torch.manual_seed(len(run))
        export_safetensors(
            tmp_path / run / "final.safetensors",
            create_backbone("nafnet-tiny").state_dict(),
            {"backbone": "nafnet-tiny", "labels": ["noise"]},
        )
    models = [str(tmp_path / run / "final.safetensors") for run in ("scratch", "finetune")]
    argv = ["eval", "--model", *models, "--benchmark", "unseen-noise", "--data-root", str(data_root), "--limit", "1"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert list(results["sets"][0]["models"]) == ["input", "scratch/final", "finetune/final"]
    assert "| scratch/final |" in (tmp_path / "eval" / "results.md").read_text()


def test_compare_runs_pairs_images_and_counts_collapses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compare = load_script("compare_runs")

    def results(name: str, psnrs: dict[str, float]) -> Path:
        path = tmp_path / f"{name}.json"
        models = {"input": {"per_image": {"psnr": dict.fromkeys(psnrs, 10.0)}}, name: {"per_image": {"psnr": psnrs}}}
        path.write_text(json.dumps({"sets": [{"name": "set", "models": models}]}))
        return path

    first = results("a", {"1.png": 30.0, "2.png": 20.0, "3.png": 31.0})
    second = results("b", {"1.png": 29.0, "2.png": 27.0, "3.png": 31.0, "4.png": 40.0})
    assert compare.main([str(first), f"{second}:b", "--behind", "5"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert row == "| set | 3 | 27.000 | 29.000 | -2.000 ± 2.517 | -7.00 | +1.00 | 1/3 (1) | 1 |"
    assert compare.main([str(first), f"{second}:b", "--worst", "2"]) == 0  # the images a is most behind on, named
    assert capsys.readouterr().out.splitlines()[-1] == "set, a most behind: 2.png -7.00, 3.png +0.00"
    with pytest.raises(SystemExit, match="has no model 'c'"):
        compare.main([f"{first}:c", str(second)])
    with pytest.raises(SystemExit, match="--worst is a count"):
        compare.main([str(first), str(second), "--worst", "-1"])


def test_compare_runs_over_seeds_means_each_pair_and_the_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare = load_script("compare_runs")

    def results(name: str, per_set: dict[str, list[float]]) -> str:
        path = tmp_path / f"{name}.json"
        sets = [{"name": s, "models": {"m": {"per_image": {"psnr": {f"{i}.png": v for i, v in enumerate(psnrs)}}}}}
                for s, psnrs in per_set.items()]  # fmt: skip
        path.write_text(json.dumps({"sets": sets}))
        return str(path)

    a0 = results("a0", {"x": [30.0, 32.0], "y": [20.0, 20.0]})
    b0 = results("b0", {"x": [29.0, 29.0], "y": [21.0, 21.0]})  # x +2.00, y -1.00: average +0.50
    a1 = results("a1", {"x": [30.0, 30.0], "y": [22.0, 22.0], "z": [1.0]})
    b1 = results("b1", {"x": [30.0, 30.0], "y": [21.0, 21.0], "z": [9.0]})  # x 0, y +1, z only in seed 1
    assert compare.main([a0, b0, "--seed-pair", a1, b1]) == 0
    rows = capsys.readouterr().out.splitlines()[-3:]
    assert rows == ["| x | +2.00 | +0.00 | +1.00 ± 1.00 |", "| y | -1.00 | +1.00 | +0.00 ± 1.00 |",
                    "| average | +0.50 | +0.50 | +0.50 ± 0.00 |"]  # fmt: skip
    with pytest.raises(SystemExit, match="needs two files"):
        compare.main([a0, "--seed-pair", a1, b1])


def test_sampled_sets_names_every_set_and_says_when_its_data_is_missing(tmp_path: Path) -> None:
    found = list(sampled_sets(["3d", "real-noise"], tmp_path, tmp_path / "cache"))
    expected = [s.name for p in ("3d", "real-noise") for s in get_protocol(p).sets]
    assert [s.name for s, _ in found] == expected and all(samples is None for _, samples in found)
