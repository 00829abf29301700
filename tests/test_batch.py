"""Output names of the many-files commands (``uir restore``, ``uir degrade``): always inside ``-o``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from uir.cli import main
from uir.commands._batch import output_names


def test_a_dotted_name_is_restored_inside_out_and_nothing_beside_it_is_touched(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("..png", "...png", ".png", "photo.png")):
        Image.fromarray(np.full((9, 11, 3), 40 * i, np.uint8)).save(src / name, format="PNG")
    beside = tmp_path / "out4.png"
    beside.write_bytes(b"someone's file")
    out = tmp_path / "out4"
    inputs = [str(src / name) for name in ("..png", "...png", ".png")]
    assert main(["restore", *inputs, "-o", str(out), "--model", "identity"]) == 0
    assert beside.read_bytes() == b"someone's file"
    written = sorted(p.name for p in out.iterdir())
    assert written == [".png.png", "image-2.png", "image.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out4", "out4.png"]


def test_output_names_stay_inside_the_folder_and_never_clash(tmp_path: Path) -> None:
    paths = [Path("a/..png"), Path("b/...png"), Path("c/photo.JPG"), Path("d/photo.png"), Path("e/. .png")]
    names = output_names(paths, tmp_path, ".png")
    assert all(n.parent == tmp_path for n in names.values())
    assert [n.name for n in names.values()] == ["image.png", "image-2.png", "photo.png", "photo-2.png", "image-3.png"]
    assert output_names([Path("x.tif")], tmp_path, lambda p: p.suffix)[Path("x.tif")] == tmp_path / "x.tif"


def test_inputs_that_differ_only_in_type_keep_their_own_comparison(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((9, 11, 3), 30, np.uint8)).save(src / "a.png")
    Image.fromarray(np.full((9, 11, 3), 200, np.uint8)).save(src / "a.tif")
    out = tmp_path / "out"
    assert (
        main(["restore", str(src / "a.png"), str(src / "a.tif"), "-o", str(out), "--model", "identity", "--compare"])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["a-2.tif", "a-2_compare.jpg", "a.png", "a_compare.jpg"]
    assert (out / "a_compare.jpg").read_bytes() != (out / "a-2_compare.jpg").read_bytes()
