"""Tests for uir.io: every format and mode in, tensors out, and back, atomically and without surprises."""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, ImageOps

from conftest import cut_jpeg
from uir.errors import ImageError, UirError
from uir.io import (
    IMAGE_EXTENSIONS,
    decode_image,
    list_images,
    read_image,
    save_like,
    to_numpy,
    to_pil,
    to_tensor,
    write_image,
)

H, W = 37, 53
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".tif": "TIFF", ".bmp": "BMP", ".webp": "WEBP"}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def rgb8(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture
def deep(rng: np.random.Generator) -> np.ndarray:
    """16-bit RGBA whose neighbouring values differ by less than 1/255."""
    array = rng.integers(0, 65536, (H, W, 4), dtype=np.uint16)
    array[0, :4, 0] = [1000, 1001, 1002, 1003]
    return array


def png16(array: np.ndarray, color_type: int, exif: bytes = b"") -> bytes:
    """A 16-bit PNG written by hand (gray + alpha has no other writer here), with an optional eXIf chunk."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    height, width = array.shape[:2]
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    exif_chunk = chunk(b"eXIf", exif) if exif else b""
    body = chunk(b"IHDR", header) + exif_chunk + chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def one_line_error(excinfo: pytest.ExceptionInfo, path: Path) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and path.name in message
    return message


# Reading: every format and mode, with Pillow's own conversion as the oracle.


@pytest.mark.parametrize(
    ("mode", "ext"),
    [(m, e) for m in ("RGB", "L") for e in FORMATS]
    + [("RGBA", e) for e in (".png", ".tif", ".webp")]
    + [("LA", ".png"), ("LA", ".tif"), ("1", ".png"), ("1", ".tif"), ("1", ".bmp"), ("P", ".png")]
    + [("P", ".bmp"), ("CMYK", ".jpg"), ("CMYK", ".tif")],
)
def test_read_8bit_modes(tmp_path: Path, rng: np.random.Generator, mode: str, ext: str) -> None:
    source = Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8)).convert(mode)
    path = tmp_path / f"img{ext}"
    source.save(path)
    loaded = read_image(path)
    with Image.open(path) as reference:
        has_alpha = reference.mode in ("RGBA", "LA") or "transparency" in reference.info
        expected = np.asarray(reference.convert("RGBA" if has_alpha else "RGB"))
    assert loaded.image.shape == (1, 3, H, W) and loaded.image.dtype == torch.float32
    assert np.array_equal(to_numpy(loaded.image), expected[..., :3])
    assert loaded.gray == (mode in ("L", "LA", "1") and ext != ".webp")
    assert (loaded.alpha is not None) == has_alpha
    if has_alpha:
        assert loaded.alpha.shape == (1, 1, H, W)
        assert np.array_equal(to_numpy(loaded.alpha), expected[..., 3])
    assert (loaded.bit_depth, loaded.format, loaded.path) == (8, FORMATS[ext], path)


def test_palette_transparency_becomes_alpha(tmp_path: Path, rng: np.random.Generator) -> None:
    indices = rng.integers(0, 4, (H, W), dtype=np.uint8)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    palette.save(tmp_path / "p.png", transparency=2)
    loaded = read_image(tmp_path / "p.png")
    assert loaded.alpha is not None and not loaded.gray
    assert np.array_equal(to_numpy(loaded.alpha) == 0, indices == 2)
    assert np.array_equal(to_numpy(loaded.image)[indices == 0], np.tile([255, 0, 0], ((indices == 0).sum(), 1)))


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_read_16bit_keeps_precision(tmp_path: Path, deep: np.ndarray, ext: str, channels: int) -> None:
    array = deep[..., 0] if channels == 1 else deep[..., :channels]
    path = tmp_path / f"deep{ext}"
    cv2.imwrite(str(path), array if channels == 1 else array[..., [2, 1, 0, 3][:channels]])
    loaded = read_image(path)
    assert (loaded.bit_depth, loaded.gray, loaded.alpha is not None) == (16, channels == 1, channels == 4)
    color = to_numpy(loaded.image, np.uint16)
    assert np.array_equal(color[..., 0] if channels == 1 else color, array if channels == 1 else array[..., :3])
    assert torch.unique(loaded.image[0, 0, 0, :4]).numel() == 4  # 1/65535 steps survive
    if channels == 4:
        assert np.array_equal(to_numpy(loaded.alpha, np.uint16), array[..., 3])


def test_read_16bit_gray_alpha_png(tmp_path: Path, deep: np.ndarray) -> None:
    (tmp_path / "la.png").write_bytes(png16(deep[..., :2], color_type=4))
    loaded = read_image(tmp_path / "la.png")
    assert (loaded.bit_depth, loaded.gray) == (16, True)
    assert np.array_equal(to_numpy(loaded.image, np.uint16), np.dstack([deep[..., 0]] * 3))
    assert np.array_equal(to_numpy(loaded.alpha, np.uint16), deep[..., 1])


def test_read_16bit_does_not_print_opencv_warnings(
    tmp_path: Path, deep: np.ndarray, capfd: pytest.CaptureFixture
) -> None:
    cv2.imwrite(str(tmp_path / "a.tif"), deep)  # OpenCV warns about its own RGBA TIFFs when reading them
    capfd.readouterr()
    read_image(tmp_path / "a.tif")
    assert capfd.readouterr().err == ""


# EXIF orientation.


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_exif_transpose(tmp_path: Path, rgb8: np.ndarray, orientation: int) -> None:
    Image.fromarray(rgb8).save(tmp_path / "o.png", exif=exif_with(orientation))
    loaded = read_image(tmp_path / "o.png")
    with Image.open(tmp_path / "o.png") as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference))
    assert expected.shape[:2] == ((W, H) if orientation >= 5 else (H, W))
    assert np.array_equal(to_numpy(loaded.image), expected)


@pytest.mark.parametrize(("orientation", "turns"), [(6, -1), (8, 1)])
def test_jpeg_orientation_rotates(tmp_path: Path, orientation: int, turns: int) -> None:
    array = np.zeros((H, W, 3), np.uint8)
    array[:12, :20] = 255  # a white block in the top-left corner
    Image.fromarray(array).save(tmp_path / "o.jpg", exif=exif_with(orientation), quality=95)
    loaded = read_image(tmp_path / "o.jpg")
    assert loaded.image.shape == (1, 3, W, H)
    rotated = np.rot90(array, turns)
    assert np.abs(to_numpy(loaded.image).astype(int) - rotated).mean() < 3


@pytest.mark.parametrize(("orientation", "turns"), [(6, -1), (8, 1), (3, 2)])
def test_16bit_orientation(tmp_path: Path, deep: np.ndarray, orientation: int, turns: int) -> None:
    exif = exif_with(orientation).tobytes()
    (tmp_path / "o.png").write_bytes(png16(deep[..., :3], color_type=2, exif=exif))
    loaded = read_image(tmp_path / "o.png")
    assert loaded.bit_depth == 16
    assert np.array_equal(to_numpy(loaded.image, np.uint16), np.rot90(deep[..., :3], turns))


# Errors: one line naming the file, never a library exception.


def make_bad_file(tmp_path: Path, case: str, rgb8: np.ndarray) -> Path:
    path = tmp_path / f"{case}.png"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("hello, not a picture\n")
    elif case == "gif":
        Image.fromarray(rgb8).save(path, format="GIF")
    elif case in ("truncated-png", "truncated-jpeg"):
        fmt = "PNG" if case == "truncated-png" else "JPEG"
        Image.fromarray(rgb8).save(path, format=fmt)
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    elif case == "zero-size":
        path.write_bytes(png16(np.zeros((0, 5), np.uint16), color_type=0))
    return path


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("empty", "empty file"),
        ("text", "not an image (or an unsupported format)"),
        ("gif", "not an image (or an unsupported format)"),
        ("truncated-png", "truncated or corrupt image data"),
        ("truncated-jpeg", "truncated or corrupt image data"),
        ("zero-size", "not an image (or an unsupported format)"),  # Pillow refuses a 0-row PNG as unidentified
    ],
)
def test_read_errors(tmp_path: Path, rgb8: np.ndarray, monkeypatch: pytest.MonkeyPatch, case: str, reason: str) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # someone else's setting must not matter
    path = make_bad_file(tmp_path, case, rgb8)
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert one_line_error(excinfo, path).startswith(f"{path}: {reason}")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_read_error_absurd_size(tmp_path: Path, rgb8: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(rgb8).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError) as excinfo:
        read_image(tmp_path / "big.png")
    assert "absurd image size" in one_line_error(excinfo, tmp_path / "big.png")


def test_read_error_permission(tmp_path: Path, rgb8: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.png"
    Image.fromarray(rgb8).save(path)
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the file system refuse instead

        def refuse(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert one_line_error(excinfo, path).endswith("permission denied")


# Writing: round trips, atomicity, protected inputs.


@pytest.mark.parametrize(
    ("mode", "ext"),
    [(m, e) for m in ("RGB", "RGBA", "L", "LA") for e in (".png", ".tif", ".webp")] + [("RGB", ".bmp"), ("L", ".bmp")],
)
def test_8bit_lossless_round_trip(tmp_path: Path, rng: np.random.Generator, ext: str, mode: str) -> None:
    Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8)).convert(mode).save(tmp_path / f"a{ext}")
    first = read_image(tmp_path / f"a{ext}")
    save_like(tmp_path / f"b{ext}", first.image, first)
    second = read_image(tmp_path / f"b{ext}")
    assert torch.equal(first.image, second.image)
    if ext != ".bmp":
        assert (first.alpha is None, second.alpha is None) == ("A" not in mode,) * 2
        assert first.alpha is None or torch.equal(first.alpha, second.alpha)
    if ext in (".png", ".tif"):
        assert (first.gray, second.gray, first.bit_depth, second.bit_depth) == (mode[0] == "L",) * 2 + (8, 8)


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_round_trip_is_exact(tmp_path: Path, deep: np.ndarray, ext: str, channels: int) -> None:
    array = deep[..., 0] if channels == 1 else deep[..., [2, 1, 0, 3][:channels]]
    cv2.imwrite(str(tmp_path / f"a{ext}"), array)
    first = read_image(tmp_path / f"a{ext}")
    save_like(tmp_path / f"b{ext}", first.image, first)
    assert np.array_equal(cv2.imread(str(tmp_path / f"b{ext}"), cv2.IMREAD_UNCHANGED), array)
    second = read_image(tmp_path / f"b{ext}")
    assert (second.bit_depth, second.gray) == (16, channels == 1)


def test_16bit_gray_alpha_is_written_as_rgba(tmp_path: Path, deep: np.ndarray) -> None:
    (tmp_path / "la.png").write_bytes(png16(deep[..., :2], color_type=4))
    first = read_image(tmp_path / "la.png")
    second = read_image(save_like(tmp_path / "out.png", first.image, first))
    assert torch.equal(first.image, second.image) and torch.equal(first.alpha, second.alpha)


def test_gray_writes_rec601_luma(tmp_path: Path, rgb8: np.ndarray) -> None:
    write_image(tmp_path / "g.png", to_tensor(rgb8), gray=True)
    with Image.open(tmp_path / "g.png") as written:
        assert written.mode == "L"
        expected = np.round(rgb8.astype(float) @ [0.299, 0.587, 0.114]).astype(np.uint8)
        assert np.array_equal(np.asarray(written), expected)


def test_jpeg_quality_and_warnings(tmp_path: Path, rgb8: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    image, alpha = to_tensor(rgb8), torch.rand(1, 1, H, W)
    write_image(tmp_path / "low.jpg", image, quality=10)
    with caplog.at_level(logging.WARNING, logger="uir.io"):
        write_image(tmp_path / "high.jpg", image, quality=95, alpha=alpha, bit_depth=16)
    assert "no alpha channel" in caplog.text and "16-bit" in caplog.text
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size
    high = read_image(tmp_path / "high.jpg")
    assert (high.bit_depth, high.alpha) == (8, None)


def test_write_creates_parents_and_leaves_no_temporary(tmp_path: Path, rgb8: np.ndarray) -> None:
    target = tmp_path / "new" / "deeper" / "out.png"
    assert write_image(target, to_tensor(rgb8)) == target
    write_image(target, to_tensor(rgb8[::-1]))  # an existing (non-input) file is replaced
    assert os.listdir(target.parent) == ["out.png"]
    assert np.array_equal(np.asarray(Image.open(target)), rgb8[::-1])


@pytest.mark.parametrize("failure", ["pillow", "opencv", "fsync"])
def test_failed_write_keeps_old_file(
    tmp_path: Path, rgb8: np.ndarray, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old content")

    def broken_save(self: Image.Image, file: object, **kwargs: object) -> None:
        file.write(b"partial")
        raise OSError("encoder error -2")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    if failure == "pillow":
        monkeypatch.setattr(Image.Image, "save", broken_save)
    elif failure == "opencv":
        monkeypatch.setattr(cv2, "imencode", lambda *args: (False, None))
    else:
        monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ImageError) as excinfo:
        write_image(target, to_tensor(rgb8), bit_depth=16 if failure == "opencv" else 8)
    assert "cannot write it" in one_line_error(excinfo, target)
    assert target.read_bytes() == b"old content" and os.listdir(tmp_path) == ["out.png"]


def test_parent_that_is_a_file(tmp_path: Path, rgb8: np.ndarray) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ImageError) as excinfo:
        write_image(tmp_path / "file.png" / "out.png", to_tensor(rgb8))
    assert "cannot create the folder" in one_line_error(excinfo, tmp_path / "out.png")


def test_unknown_extension(tmp_path: Path, rgb8: np.ndarray) -> None:
    target = tmp_path / "out.xyz"
    target.write_bytes(b"old content")
    with pytest.raises(ImageError) as excinfo:
        write_image(target, to_tensor(rgb8))
    assert "unknown image extension '.xyz'" in one_line_error(excinfo, target)
    assert target.read_bytes() == b"old content" and os.listdir(tmp_path) == ["out.xyz"]


def test_protected_input_is_refused_unless_overwrite(tmp_path: Path, rgb8: np.ndarray) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(rgb8).save(source)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    loaded = read_image(source)
    for spelling in (source, tmp_path / "sub" / ".." / "in.png"):
        with pytest.raises(ImageError) as excinfo:
            write_image(spelling, loaded.image * 0, protected=[str(source)])
        assert "is an input; refusing to overwrite it" in one_line_error(excinfo, source)
    with pytest.raises(ImageError):
        save_like(source, loaded.image * 0, loaded)  # the source protects itself
    assert source.read_bytes() == before
    write_image(source, loaded.image * 0, protected=[source], overwrite=True)
    assert np.asarray(Image.open(source)).max() == 0


def test_write_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "a.png", torch.rand(1, 3, 4, 4), bit_depth=12)
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "a.png", torch.rand(1, 3, 4, 4), alpha=torch.rand(1, 1, 5, 4))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", torch.rand(2, 3, 4, 4))
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        write_image(tmp_path / "d.png", torch.rand(1, 3, 4, 4))


# Listing inputs.


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("b.png", "a.JPG", "c.webp", "notes.txt", ".hidden.png", "sub/d.tif", "sub/.x/e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_list_images(tree: Path) -> None:
    assert list_images([tree]) == [tree / "a.JPG", tree / "b.png", tree / "c.webp"]
    assert list_images([tree], recursive=True) == [tree / n for n in ("a.JPG", "b.png", "c.webp", "sub/d.tif")]
    assert list_images([str(tree / "*.png"), tree / "notes.txt", tree / "b.png"]) == [
        tree / "b.png",
        tree / "notes.txt",
    ]
    assert list_images([str(tree / "**" / "*.tif")], recursive=True) == [tree / "sub" / "d.tif"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.png", "no such file or folder"), ("empty", "no images"), ("*.gif", "matches no images")],
)
def test_list_images_errors(tree: Path, name: str, reason: str) -> None:
    (tree / "empty").mkdir()
    with pytest.raises(UirError) as excinfo:
        list_images([tree / name])
    assert reason in one_line_error(excinfo, tree / name)


# Tensor conversions.


def test_array_conversions(rng: np.random.Generator, rgb8: np.ndarray) -> None:
    deep = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    assert to_tensor(rgb8).shape == (1, 3, H, W) and to_tensor(rgb8).dtype == torch.float32
    assert np.array_equal(to_numpy(to_tensor(rgb8)), rgb8)
    assert np.array_equal(to_numpy(to_tensor(deep), np.uint16), deep)
    assert np.array_equal(to_numpy(to_tensor(rgb8)[0]), rgb8)
    floats = rgb8 / 255.0
    assert np.allclose(to_numpy(to_tensor(floats), np.float32), floats, atol=1e-7)
    gray = rgb8[..., 0]
    for variant in (gray, gray[..., None]):
        assert np.array_equal(to_numpy(to_tensor(variant)), np.dstack([gray] * 3))
    assert np.array_equal(to_numpy(to_tensor(np.dstack([rgb8, gray]))), rgb8)
    assert np.array_equal(to_numpy(torch.tensor([[[-0.5]], [[0.5]], [[2.0]]])), [[[0, 128, 255]]])
    with pytest.raises(ValueError, match="int32"):
        to_tensor(rgb8.astype(np.int32))
    with pytest.raises(ValueError, match="shape"):
        to_tensor(rgb8[..., :2])
    with pytest.raises(ValueError, match="shape"):
        to_numpy(torch.rand(1, 2, 4, 4))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK", "I;16"])
def test_pil_conversions(rgb8: np.ndarray, mode: str) -> None:
    pil = Image.fromarray(rgb8).convert(mode) if mode != "I;16" else Image.fromarray(rgb8[..., 0].astype(np.uint16))
    tensor = to_tensor(pil)
    assert tensor.shape == (1, 3, H, W)
    reference = np.asarray(pil.convert("RGB")) if mode != "I;16" else np.dstack([rgb8[..., 0]] * 3) / 65535
    actual = to_numpy(tensor) if mode != "I;16" else to_numpy(tensor, np.float64)
    assert np.allclose(actual, reference, atol=1e-7)
    back = to_pil(to_tensor(rgb8))
    assert (back.mode, back.size) == ("RGB", (W, H)) and np.array_equal(np.asarray(back), rgb8)


def test_image_extensions() -> None:
    assert IMAGE_EXTENSIONS == (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


# A JPEG cut short and closed by its end marker: libjpeg decodes it as grey without an error (Pillow hears no
# warning), so a few hundred bytes could announce 36 megapixels. Refused before any decoding, as truncated.


@pytest.mark.parametrize("progressive", [False, True])
def test_a_cut_jpeg_ending_in_eoi_is_truncated_and_not_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, progressive: bool
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (383, 517, 3), dtype=np.uint8)
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut_jpeg(Image.fromarray(noise), 300, progressive=progressive))  # its blocks need 588 bytes
    loads: list[object] = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self) or load(self))
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert one_line_error(excinfo, path).startswith(f"{path}: truncated or corrupt image data: image file is truncated")
    assert loads == []  # refused before decoding


@pytest.mark.parametrize(("mode", "progressive"), [("L", False), ("RGB", False), ("RGB", True)])
def test_the_flattest_jpegs_are_not_taken_for_truncated(tmp_path: Path, mode: str, progressive: bool) -> None:
    from io import BytesIO

    path = tmp_path / "flat.jpg"
    buffer = BytesIO()  # one grey everywhere, optimised tables: as few bits per block as a JPEG can have
    Image.new(mode, (1203, 917), 128 if mode == "L" else (128,) * 3).save(
        buffer, format="JPEG", quality=1, optimize=True, progressive=progressive
    )
    path.write_bytes(buffer.getvalue())
    loaded = read_image(path)
    assert loaded.image.shape == (1, 3, 917, 1203) and loaded.gray == (mode == "L")
    assert torch.allclose(loaded.image, torch.full_like(loaded.image, 128 / 255), atol=1 / 255)


def _jpeg_variants() -> dict[str, bytes]:
    """Valid JPEGs whose structure a segment walker can get wrong, each of a noisy 61x83 picture."""
    from io import BytesIO

    noise = np.random.default_rng(1).integers(0, 256, (61, 83, 3), dtype=np.uint8)

    def save(image: Image.Image, **options: object) -> bytes:
        buffer = BytesIO()
        image.save(buffer, **({"format": "JPEG"} | options))
        return buffer.getvalue()

    rgb = Image.fromarray(noise)
    plain = save(rgb)
    # Flat, with a restart marker after every MCU: each interval is a byte or two, so a walker that took a restart
    # marker for the end of the scan would count only the first one and call the file truncated.
    flat = np.full((61, 83, 3), 128, np.uint8)
    ok, restarts = cv2.imencode(".jpg", flat, [cv2.IMWRITE_JPEG_RST_INTERVAL, 1, cv2.IMWRITE_JPEG_QUALITY, 5])
    assert ok
    nested = save(rgb.resize((16, 12)))  # an APP1 segment holding a whole JPEG, as EXIF thumbnails do
    app1 = b"\xff\xe1" + (len(nested) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + nested
    tricky = b"\xff\xe5\x00\x0a" + b"\xff\xd9\xff\xda\xff\xc0\xff\xd9"  # marker bytes inside an APP5 segment
    return {
        "baseline": plain,
        "4:2:2": save(rgb, subsampling="4:2:2"),
        "progressive-optimised": save(rgb, progressive=True, optimize=True),
        "gray": save(rgb.convert("L")),
        "cmyk": save(rgb.convert("CMYK")),
        "restart-markers": restarts.tobytes(),
        "app1-thumbnail": plain[:2] + app1 + plain[2:],
        "marker-bytes-in-app5": plain[:2] + tricky + plain[2:],
        "fill-bytes": plain[:2] + b"\xff" * 5000 + plain[2:],
        "junk-after-eoi": plain + b"\xff\xd8\xff\xda\x00\x02" + bytes(100),
        "mpo": save(rgb, format="MPO", save_all=True, append_images=[Image.fromarray(255 - noise)]),
    }


@pytest.mark.parametrize("variant", list(_jpeg_variants()))
def test_valid_jpegs_of_every_structure_are_not_taken_for_truncated(variant: str) -> None:
    data = _jpeg_variants()[variant]
    loaded = decode_image(data, f"{variant}.jpg")
    assert loaded.image.shape == (1, 3, 61, 83) and loaded.format == "JPEG"


def test_a_jpeg_of_absurdly_many_segments_is_refused_before_pillow_walks_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _jpeg_variants()["baseline"]
    padded = data[:2] + b"\xff\xfe\x00\x02" * 20_000 + data[2:]  # 20,000 empty comments (80 KB)
    opened: list[object] = []
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or pytest.fail("opened"))
    with pytest.raises(
        ImageError, match=r"^many\.jpg: truncated or corrupt image data: more than 10000 JPEG segments$"
    ):
        decode_image(padded, "many.jpg")
    assert opened == []
