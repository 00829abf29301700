"""The `uir` command line, run in-process (and once as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uir import __version__
from uir.cli import main


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "degrade" in out and "data" in out and "examples:" in out


@pytest.mark.parametrize("command", [["degrade"], ["data", "check"], ["eval"], ["restore"], ["train"], ["bench-speed"]])
def test_every_subcommand_help_has_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "examples:" in capsys.readouterr().out


def test_list_shows_19_types(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["degrade", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("19 degradation types (14 single, 5 mixed)")
    for name in ("rain-streaks-raindrops", "downsample-noise-blur-jpeg", "moire", "sigma"):
        assert name in out


def test_degrade_writes_image_and_record(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["degrade", str(images / "a.png"), "-t", "haze", "-s", "0.7", "--seed", "3", "-o", str(out)]) == 0
    record = json.loads((out / "a.json").read_text())
    assert record["type"] == "haze" and record["severity"] == 0.7
    result = np.asarray(Image.open(out / "a.png"))
    assert result.shape == (37, 53, 3)
    first = (out / "a.png").read_bytes()
    assert main(["degrade", str(images / "a.png"), "-t", "haze", "-s", "0.7", "--seed", "3", "-o", str(out)]) == 0
    assert (out / "a.png").read_bytes() == first, "the same seed must give the same file"


def test_degrade_random_folder_with_set(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["degrade", str(images), "-t", "random", "--mix", "5d", "-o", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert len(records) == 2
    assert all(r["type"] in ("noise", "haze", "rain-streaks", "motion-blur", "low-light") for r in records)
    args = [
        "degrade",
        str(images / "a.png"),
        "-t",
        "noise",
        "--set",
        "noise.kind=gaussian",
        "--set",
        "noise.sigma=25",
    ]
    assert main([*args, "-o", str(out)]) == 0
    params = json.loads((out / "a.json").read_text())["steps"][0]["params"]
    assert params["kind"] == "gaussian" and params["sigma"] == 25


def test_bad_files_are_reported_and_the_rest_still_run(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (images / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    assert main(["degrade", str(images), "-t", "jpeg", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "empty.jpg" in err and "2 of 4 file(s) failed" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png"]


def test_user_errors_are_one_line(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["degrade", str(images), "-t", "fog", "-o", str(tmp_path)]) == 2
    assert main(["degrade", str(tmp_path / "missing.png"), "-t", "haze", "-o", str(tmp_path)]) == 2
    assert main(["degrade", str(images), "-t", "haze", "-s", "3", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown degradation type 'fog'" in err and "missing.png" in err and "Traceback" not in err


def test_never_overwrites_an_input(images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (images / "a.png").read_bytes()
    assert main(["degrade", str(images / "a.png"), "-t", "haze", "-o", str(images)]) == 1
    assert (images / "a.png").read_bytes() == before
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["degrade", str(images / "a.png"), "-t", "haze", "-o", str(images), "--overwrite"]) == 0
    assert (images / "a.png").read_bytes() != before


def test_contact_sheet(images: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    args = [
        "degrade",
        "--sheet",
        str(images / "a.png"),
        "-o",
        str(sheet),
        "--tile",
        "32",
        "--severities",
        "0.2,0.8",
    ]
    assert main(args) == 0
    width, height = Image.open(sheet).size
    assert height > 19 * 32 and width > 3 * 32


def test_console_script_runs_as_a_process() -> None:
    done = subprocess.run([sys.executable, "-m", "uir", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"uir {__version__}"


def test_bench_speed_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-speed", "--preset", "nafnet-tiny", "--sizes", "32", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| nafnet-tiny |" in out and "GMACs / MPix" in out


def write_pairs(root: Path, pairs: dict[str, tuple[int, int]]) -> Path:
    """Seeded images ``root/<lq|gt>/<name>`` of the given (height, width); ``(0, 0)`` writes a broken file."""
    rng = np.random.default_rng(0)
    for name, (height, width) in pairs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if height == 0:
            (root / name).write_bytes(b"not a png")
        else:
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / name)
    return root


def test_data_check_prints_what_a_folder_of_pairs_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_pairs(tmp_path / "good", {f"{s}/{n}.png": (37, 53) for s in ("lq", "gt") for n in "ab"})
    assert main(["data", "check", str(good)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"folder          {good}",
        "layout          paired",
        "pairs           2 (lq 2, gt 2)",
        "image sizes     53x37 (1 size)",
        "unmatched       none",
        "unreadable      none",
        "size mismatches none",
        "result          OK",
    ]
    sizes = {"lq/a.png": (37, 53), "gt/a.png": (45, 61), "lq/b.png": (37, 53), "gt/b.png": (0, 0), "lq/c.png": (37, 53)}
    bad = write_pairs(tmp_path / "bad", sizes)
    assert main(["data", "check", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[2:] == [
        "pairs           2 (lq 3, gt 2)",
        "image sizes     53x37 .. 61x45 (by pixel count; 2 sizes)",
        "unmatched       1",
        "  lq/c.png",
        "unreadable      1",
        "  gt/b.png: not an image (or an unsupported format)",
        "size mismatches 1",
        "  lq/a.png vs gt/a.png: 53x37 vs 61x45",
        "result          NOT OK",
    ]
    assert main(["data", "check", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["pairs"], report["unmatched"]) == (False, 2, ["lq/c.png"])
    assert report["size_mismatches"] == [["lq/a.png", "gt/a.png", "53x37 vs 61x45"]]
    assert main(["data", "check", str(good / "lq" / "a.png")]) == 2
    assert "not a folder" in capsys.readouterr().err
