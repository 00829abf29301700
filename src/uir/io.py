"""The only place images become tensors and back: ``(1, 3, H, W)`` float32 RGB in [0, 1] inside uir.

Reads PNG, JPEG, TIFF, BMP and WebP (8/16-bit; gray, RGB, RGBA, palette, CMYK, LA, 1-bit) with the EXIF
orientation applied and alpha set aside; writes atomically, restoring bit depth, alpha and grayness. Pillow
decodes all but 16-bit colour PNG/TIFF (which it truncates to 8 bits): OpenCV does those. Every failure is a
one-line ``ImageError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import math
import os
import re
import secrets
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import torch
from numpy.typing import DTypeLike
from PIL import Image, ImageFile
from torch import Tensor

from uir.errors import ImageError, UirError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_FORMATS |= {".bmp": "BMP", ".webp": "WEBP"}
# What Pillow may open (its JPEG opener also gives MPO, camera JPEGs holding several pictures).
_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP")
_NO_ALPHA = ("JPEG", "BMP")
# EXIF orientation -> (transpose, flip rows, flip columns), applied in that order, as exif_transpose does.
_FLIPS = {2: (0, 0, 1), 3: (0, 1, 1), 4: (0, 1, 0), 5: (1, 0, 0), 6: (1, 0, 1), 7: (1, 1, 1), 8: (1, 1, 0)}
# What the decoders raise on bad data (Pillow mostly OSError/SyntaxError, the rest from deeper down).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error, cv2.error)
_LUMA = (0.299, 0.587, 0.114)  # Rec. 601, as Pillow's convert("L")
# JPEG frame markers: Huffman-coded (baseline, extended, progressive), and the rest (lossless, hierarchical,
# arithmetic-coded); a marker that ends coded data (0xFF then anything but a stuffed 0x00, RSTn or fill).
_SOF_HUFFMAN = (0xC0, 0xC1, 0xC2)
_SOF_OTHER = (0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_NOT_FF = re.compile(rb"[^\xff]")
_MAX_JPEG_SEGMENTS = 10_000


@dataclass(frozen=True)
class LoadedImage:
    """An image file decoded into uir's tensor convention, with what is needed to write it back alike.

    Attributes:
        path: the file it came from, or None.
        image: ``(1, 3, H, W)`` float32 RGB in [0, 1], EXIF orientation applied.
        alpha: ``(1, 1, H, W)`` float32 in [0, 1], or None when the source had no transparency.
        bit_depth: 8 or 16, the source's bits per sample.
        gray: the source had a single colour channel (L, I;16, 1-bit, LA); ``image`` repeats it three times.
        format: "PNG", "JPEG", "TIFF", "BMP" or "WEBP".
    """

    path: Path | None
    image: Tensor
    alpha: Tensor | None
    bit_depth: int
    gray: bool
    format: str


def read_image(path: str | Path) -> LoadedImage:
    """Read an image file into a ``(1, 3, H, W)`` float32 RGB tensor in [0, 1].

    8-bit samples are divided by 255 and 16-bit ones by 65535; palettes and CMYK become RGB, gray repeats
    into three channels, and any transparency is returned apart as ``alpha``.

    Args:
        path: a PNG, JPEG, TIFF, BMP or WebP file.

    Returns:
        The decoded image with its alpha, bit depth, grayness and format.

    Raises:
        ImageError: (one line) the file is missing, a folder, empty, unreadable, not a supported image,
            truncated or corrupt, of zero size or of an absurd size.
    """
    path = Path(path)
    return dataclasses.replace(decode_image(_read_bytes(path), path), path=path)


def decode_image(data: bytes, name: str | Path) -> LoadedImage:
    """Decode an image file's bytes already in memory (an upload) exactly as ``read_image`` reads a file.

    Args:
        data: the file's content.
        name: what error messages call it; never opened, and ``LoadedImage.path`` is None.

    Raises:
        ImageError: (one line) empty, not a supported image, truncated or corrupt, zero or absurd size.
    """
    path = Path(name)
    if not data:
        raise ImageError(path, "empty file")
    with _decoding(path):
        if data[:2] == b"\xff\xd8":  # JPEG (or MPO): before Pillow walks its header, and before the decode
            _check_jpeg_length(data)
        pil = Image.open(BytesIO(data), formats=_PIL_FORMATS)
        rawmode = _rawmode(pil)
        pil.load()  # a full decode, so that truncated data fails here and not later
        orientation = _orientation(pil, path)
        if ";16" in rawmode and pil.mode in ("RGB", "RGBA"):
            array, gray = _decode_deep_color(data, gray=rawmode.startswith("LA"))
        else:
            array, gray = _pil_to_array(pil)
    color, alpha = _split_alpha(_orient(array, orientation))
    if color.size == 0:
        raise ImageError(path, f"zero-size image ({color.shape[1]}x{color.shape[0]})")
    return LoadedImage(
        path=None,
        image=_rgb(_array_to_tensor(color)),
        alpha=None if alpha is None else _array_to_tensor(alpha),
        bit_depth=8 if array.dtype == np.uint8 else 16,
        gray=gray,
        format="JPEG" if pil.format == "MPO" else str(pil.format),
    )


def write_image(
    path: str | Path,
    image: Tensor,
    *,
    alpha: Tensor | None = None,
    bit_depth: int = 8,
    gray: bool = False,
    quality: int = 95,
    overwrite: bool = False,
    protected: Iterable[str | Path] = (),
) -> Path:
    """Write a ``(1, 3, H, W)`` tensor in [0, 1] to an image file atomically; the extension picks the format.

    The file appears complete or not at all: the data goes to a hidden temporary file in the same folder,
    which then replaces ``path``. Values are clamped to [0, 1] and rounded. WebP is always written lossless
    (``quality`` is then the encoder's effort); JPEG uses ``quality``. JPEG and BMP cannot hold alpha and
    JPEG, BMP and WebP cannot hold 16 bits: those are dropped with a logged warning.

    Args:
        path: the file to write; missing parent folders are created.
        image: ``(1, 3, H, W)`` or ``(3, H, W)`` RGB in [0, 1].
        alpha: ``(1, 1, H, W)`` or ``(1, H, W)`` transparency in [0, 1] to restore (PNG, TIFF, WebP).
        bit_depth: 8, or 16 for PNG and TIFF.
        gray: write one channel, the Rec. 601 luma of ``image``.
        quality: JPEG quality, 1 to 100.
        overwrite: allow replacing a file in ``protected``.
        protected: files never to replace (the inputs), unless ``overwrite``.

    Returns:
        The path written.

    Raises:
        ImageError: unknown extension, ``path`` is a protected input or a folder, or writing failed.
        ValueError: wrong tensor shapes, bit depth or quality.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(path, f"unknown image extension {path.suffix!r} (use {'/'.join(IMAGE_EXTENSIONS)})")
    if bit_depth not in (8, 16) or not 1 <= quality <= 100:
        raise ValueError(f"bit_depth must be 8 or 16 and quality 1-100, got {bit_depth} and {quality}")
    if path.is_dir():
        raise ImageError(path, "is a directory")
    _check_protected(path, protected, overwrite)
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        logger.warning("%s: %s cannot hold 16-bit samples; writing 8 bits", path, fmt)
        bit_depth = 8
    if alpha is not None and fmt in _NO_ALPHA:
        logger.warning("%s: %s has no alpha channel; dropping the transparency", path, fmt)
        alpha = None
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    color = to_numpy(_luma(image) if gray else image, dtype)
    alpha_array = None if alpha is None else to_numpy(alpha, dtype)
    if alpha_array is not None and alpha_array.shape != color.shape[:2]:
        raise ValueError(f"alpha is {alpha_array.shape[::-1]} pixels but the image {color.shape[1::-1]}")
    if bit_depth == 16:
        _atomic_write(path, lambda file: _encode_deep(file, color, alpha_array, fmt, path))
    else:
        array = color if alpha_array is None else np.dstack([color, alpha_array])
        options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}  # exact: keep RGB under alpha 0
        pil = Image.fromarray(np.ascontiguousarray(array))
        _atomic_write(path, lambda file: pil.save(file, format=fmt, quality=quality, **options))
    return path


def write_text(path: str | Path, text: str, *, overwrite: bool = False, protected: Iterable[str | Path] = ()) -> Path:
    """Write a small UTF-8 text file (a record, a report) atomically; never over a ``protected`` input.

    Raises:
        ImageError: ``path`` is a protected input, or writing failed.
    """
    path = Path(path)
    _check_protected(path, protected, overwrite)
    _atomic_write(path, lambda file: file.write(text.encode("utf-8")))
    return path


def restored_suffix(suffix: str) -> str:
    """The file type a restored image is written as, from its input's suffix (``.jpg``) or format (``.jpeg``):
    PNG and TIFF stay themselves; everything else (JPEG, WebP, BMP...) becomes PNG, to add no second lossy
    compression and keep 16 bits and alpha where they can live.

    Example:
        >>> restored_suffix(".JPG"), restored_suffix(".tif")
        ('.png', '.tif')
    """
    suffix = suffix.lower()
    return suffix if suffix in (".png", ".tif", ".tiff") else ".png"


def save_like(path: str | Path, image: Tensor, source: LoadedImage, **kwargs: object) -> Path:
    """Write ``image`` with the bit depth, alpha and grayness of ``source``; never over ``source`` itself.

    Args:
        path: the file to write.
        image: ``(1, 3, H, W)`` RGB in [0, 1], the same size as ``source``.
        source: the image it was made from.
        **kwargs: more ``write_image`` options, which take precedence (``protected`` gains ``source.path``).

    Returns:
        The path written.
    """
    options: dict = {"alpha": source.alpha, "bit_depth": source.bit_depth, "gray": source.gray} | kwargs
    inputs = [] if source.path is None else [source.path]
    options["protected"] = [*options.get("protected", ()), *inputs]
    return write_image(path, image, **options)


def to_tensor(img: np.ndarray | Image.Image) -> Tensor:
    """Convert an array or Pillow image to a ``(1, 3, H, W)`` float32 tensor in [0, 1]; alpha is dropped.

    Args:
        img: ``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4`` array (uint8 over 255, uint16 over 65535, float
            already in [0, 1], bool), or a Pillow image of any mode ``read_image`` accepts.

    Returns:
        ``(1, 3, H, W)`` float32 RGB.
    """
    if isinstance(img, Image.Image):
        array = _pil_to_array(img)[0]
    else:
        array = np.asarray(img)
        if array.dtype not in (np.uint8, np.uint16, bool) and not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"expected a uint8, uint16, float or bool array, got {array.dtype}")
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
            raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {array.shape}")
    return _rgb(_array_to_tensor(_split_alpha(array)[0]))


def to_numpy(t: Tensor, dtype: DTypeLike = np.uint8) -> np.ndarray:
    """Convert a ``(1, C, H, W)`` or ``(C, H, W)`` tensor in [0, 1] to an ``HxWxC`` array (``HxW`` for C=1).

    Args:
        t: RGB (C=3) or one channel (C=1), on any device and of any float dtype.
        dtype: uint8 or uint16 (clamped to [0, 1], scaled by 255 or 65535 and rounded), or a float dtype
            (values unchanged).

    Returns:
        The array, ``HxWx3`` or ``HxW``.
    """
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got shape {tuple(t.shape)}")
    x = t.detach().to("cpu", torch.float32).permute(1, 2, 0)
    x = x[..., 0] if x.shape[2] == 1 else x
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return x.numpy().astype(dtype)
    maximum = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(dtype)
    if maximum is None:
        raise ValueError(f"dtype must be uint8, uint16 or a float type, got {dtype}")
    return torch.nan_to_num(x).clamp(0, 1).mul(maximum).round().numpy().astype(dtype)


def to_pil(t: Tensor) -> Image.Image:
    """Convert a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor in [0, 1] to an 8-bit RGB Pillow image."""
    return Image.fromarray(to_numpy(t, np.uint8))


def list_images(inputs: Sequence[str | Path], recursive: bool = False) -> list[Path]:
    """Expand files, folders and glob patterns into a list of image files, without duplicates.

    A folder gives its images (by extension, case-insensitive, hidden files skipped), sorted; a pattern
    gives the images it matches, sorted. Files named explicitly are kept whatever their extension, so that
    ``read_image`` can say what is wrong with them.

    Args:
        inputs: files, folders and glob patterns (``**`` crosses folders when ``recursive``).
        recursive: also look into subfolders of folders.

    Returns:
        The image files, in the order of ``inputs``.

    Raises:
        UirError: (one line) an input does not exist, a folder has no images, or a pattern matches none.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        path = Path(item)
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = sorted(p for p in path.glob("**/*" if recursive else "*") if _is_image_file(p, path))
            if not files:
                where = "this folder or its subfolders" if recursive else "this folder"
                raise UirError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {where}")
        elif any(c in str(item) for c in "*?["):
            matches = map(Path, glob.glob(str(item), recursive=recursive))
            files = sorted(p for p in matches if _is_image_file(p))
            if not files:
                raise UirError(f"{item}: the pattern matches no images")
        else:
            raise UirError(f"{path}: no such file or folder")
        for file in files:
            found.setdefault(file.resolve(), file)
    return list(found.values())


def _is_image_file(path: Path, root: Path | None = None) -> bool:
    """An image by its extension, not hidden (nor in a hidden folder below ``root``): temporaries are."""
    parts = path.relative_to(root).parts if root is not None else (path.name,)
    hidden = any(part.startswith(".") for part in parts)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not hidden and path.is_file()


def _read_bytes(path: Path) -> bytes:
    """The file's content, or a one-line ImageError saying why it cannot be had."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise ImageError(path, "no such file") from err
    except IsADirectoryError as err:
        raise ImageError(path, "is a directory, not an image file") from err
    except PermissionError as err:
        raise ImageError(path, "permission denied") from err
    except OSError as err:
        raise ImageError(path, f"cannot read it ({err.strerror or err})") from err
    if not data:
        raise ImageError(path, "empty file")
    return data


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Decode strictly (truncated data is an error) and turn the decoders' exceptions into ImageError."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    except Image.DecompressionBombError as err:
        advice = "if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS"
        raise ImageError(path, f"absurd image size: {_one_line(err).rstrip('.')} ({advice})") from err
    except Image.UnidentifiedImageError as err:
        raise ImageError(path, "not an image (or an unsupported format)") from err
    except _DECODE_ERRORS as err:
        raise ImageError(path, f"truncated or corrupt image data: {_one_line(err)}") from err
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def check_jpeg(data: bytes, name: str | Path) -> None:
    """Refuse, cheaply and before any decoding, a JPEG that is cut short or made of absurdly many segments.

    ``decode_image`` does this itself; a server calls it to answer before queueing the work.

    Raises:
        ImageError: (one line) ``truncated or corrupt image data: ...``.
    """
    with _decoding(Path(name)):
        _check_jpeg_length(data)


def _check_jpeg_length(data: bytes) -> None:
    """Raise OSError when a Huffman-coded JPEG's scans hold fewer bytes than its blocks need.

    A cut JPEG ending in an EOI marker decodes without error in libjpeg (it warns, unseen through Pillow, and
    fills the rest with grey): a few hundred bytes can announce 6000x6000. Huffman codes are at least one bit
    long and every 8x8 block of every component has its DC coefficient coded, so a JPEG needs at least one
    bit per block in its scans, however flat the image. Arithmetic-coded and unusual files are left to the decoder.
    This is a lower bound: a JPEG cut in the middle of a scan that still holds a bit per block passes, and
    decodes with grey at its end. A file of more than ``_MAX_JPEG_SEGMENTS`` segments (real ones have tens) is
    refused too: walking millions of empty segments would take seconds here and in Pillow.
    """
    blocks, coded, pos, segments = None, 0, 2, 0
    while pos >= 0 and pos + 4 <= len(data):
        segments += 1
        if segments > _MAX_JPEG_SEGMENTS:
            raise OSError(f"more than {_MAX_JPEG_SEGMENTS} JPEG segments")
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips to the next 0xFF, and so do we
            pos = data.find(b"\xff", pos)
            continue
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            break
        if marker == 0xFF:  # fill bytes: a run of 0xFF, the last one starts the next marker
            run = _NOT_FF.search(data, pos + 1)
            pos = (run.start() if run else len(data)) - 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_OTHER:
            return
        if marker in _SOF_HUFFMAN:
            blocks = _jpeg_blocks(data[pos + 4 : end])
        pos = end
        if marker == 0xDA:  # SOS: coded data until the next marker other than RSTn
            found = _JPEG_MARKER.search(data, pos)
            pos = found.start() if found else len(data)
            coded += pos - end
    if blocks and coded < blocks // 8:
        raise OSError(f"image file is truncated ({coded} bytes of coded data; its {blocks} blocks need {blocks // 8})")


def _jpeg_blocks(frame: bytes) -> int | None:
    """The 8x8 blocks of all components of a JPEG frame (its SOF segment), or None when it cannot say."""
    if len(frame) < 6:
        return None
    height, width, count = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big"), frame[5]
    sampling = [(frame[7 + 3 * i] >> 4, frame[7 + 3 * i] & 15) for i in range(count) if 8 + 3 * i <= len(frame)]
    if not height or not width or not sampling or min(min(hv) for hv in sampling) == 0:
        return None
    h_max, v_max = max(h for h, _ in sampling), max(v for _, v in sampling)
    return sum(
        math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(math.ceil(height * v / v_max) / 8) for h, v in sampling
    )


def _rawmode(pil: Image.Image) -> str:
    """How the decoder will unpack the samples (e.g. "RGB;16B"); the mode alone hides 16-bit colour."""
    tile = getattr(pil, "tile", None)
    if not tile:
        return ""
    args = tile[0].args
    args = args[0] if isinstance(args, tuple) and args else args
    return args if isinstance(args, str) else ""


def _orientation(pil: Image.Image, path: Path) -> int:
    """The EXIF orientation (1 to 8; also read from XMP by Pillow); 1 when absent or unreadable."""
    try:
        orientation = pil.getexif().get(0x0112, 1)  # the Orientation tag
    except Exception as err:  # a broken EXIF block should not lose the pixels
        logger.warning("%s: ignoring unreadable EXIF data (%s)", path, _one_line(err))
        return 1
    return orientation if orientation in _FLIPS else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an ``HxW[xC]`` array, as ``PIL.ImageOps.exif_transpose`` does."""
    transpose, flip_rows, flip_columns = _FLIPS.get(orientation, (0, 0, 0))
    if transpose:
        array = array.swapaxes(0, 1)
    return array[:: -1 if flip_rows else 1, :: -1 if flip_columns else 1]


def _pil_to_array(pil: Image.Image) -> tuple[np.ndarray, bool]:
    """An ``HxW``, ``HxWx2``, ``HxWx3`` or ``HxWx4`` array (colour then alpha) and whether it is gray.

    The array is uint8, uint16 (16-bit gray) or float32 in [0, 1] (float TIFF, counted as 16-bit).
    """
    mode = pil.mode
    if mode in ("P", "PA"):
        pil = pil.convert("RGBA" if mode == "PA" or pil.has_transparency_data else "RGB")
    elif mode in ("L", "RGB") and "transparency" in pil.info:
        pil = pil.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("1", "La", "RGBa"):
        pil = pil.convert({"1": "L", "La": "LA", "RGBa": "RGBA"}[mode])
    elif mode not in ("L", "LA", "RGB", "RGBA", "F") and not mode.startswith("I"):
        pil = pil.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    array = np.asarray(pil)
    gray = pil.mode not in ("RGB", "RGBA")
    if pil.mode.startswith("I"):
        return np.clip(array, 0, 65535).astype(np.uint16), gray
    if pil.mode == "F":  # float TIFF, taken to be in [0, 1]
        return np.clip(np.nan_to_num(array), 0, 1).astype(np.float32), gray
    return array, gray


def _decode_deep_color(data: bytes, gray: bool) -> tuple[np.ndarray, bool]:
    """Decode 16-bit colour PNG/TIFF (which Pillow truncates to 8 bits) with OpenCV, as RGB(A) uint16."""
    with _quiet_opencv():
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3:
        raise ValueError("OpenCV could not decode the 16-bit colour samples")
    if gray:  # gray + alpha comes back as BGRA with three equal colour channels
        return array[..., [0, 3]], True
    return array[..., [2, 1, 0, 3][: array.shape[2]]], False


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Keep OpenCV off stderr (it warns about its own 16-bit TIFFs); its failures are reported by us."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _split_alpha(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if array.ndim == 3 and array.shape[2] in (2, 4):
        color = array[..., :-1]
        return (color[..., 0] if color.shape[2] == 1 else color), array[..., -1]
    return array, None


def _array_to_tensor(array: np.ndarray) -> Tensor:
    """``HxW`` or ``HxWx3`` samples -> ``(1, C, H, W)`` float32 in [0, 1] (C=1 for ``HxW``).

    uint8 is divided by 255, uint16 by 65535; float and bool are taken as they are.
    """
    scale = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(array.dtype, 1)
    x = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32) / np.float32(scale))
    return x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None].contiguous()


def _rgb(t: Tensor) -> Tensor:
    return t.repeat(1, 3, 1, 1) if t.shape[1] == 1 else t


def _luma(image: Tensor) -> Tensor:
    """Rec. 601 luma of a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor, as ``(1, 1, H, W)``; exact on gray."""
    image = image if image.ndim == 4 else image[None]
    if image.shape[:2] != (1, 3):
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
    weights = torch.tensor(_LUMA, dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    return (image.double() * weights).sum(1, keepdim=True)


def _check_protected(path: Path, protected: Iterable[str | Path], overwrite: bool) -> None:
    if overwrite or not path.exists():
        return
    for other in protected:
        with contextlib.suppress(OSError):
            if os.path.samefile(path, other):
                raise ImageError(path, "is an input; refusing to overwrite it (pass --overwrite to allow)")


def _encode_deep(file: BinaryIO, color: np.ndarray, alpha: np.ndarray | None, fmt: str, path: Path) -> None:
    """Write 16-bit samples as PNG or TIFF with OpenCV (BGR(A) order; Pillow has no 16-bit colour)."""
    if alpha is not None and color.ndim == 2:
        logger.warning("%s: 16-bit gray with alpha is written as RGBA (OpenCV has no 16-bit LA)", path)
        color = np.dstack([color] * 3)
    if color.ndim == 3:
        color = color[..., ::-1]
    array = color if alpha is None else np.dstack([color, alpha])
    with _quiet_opencv():
        ok, encoded = cv2.imencode(".png" if fmt == "PNG" else ".tiff", np.ascontiguousarray(array))
    if not ok:
        raise ValueError(f"OpenCV could not encode a 16-bit {fmt}")
    file.write(encoded.tobytes())


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Run ``write`` on a hidden temporary file beside ``path``, sync it, then move it over ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ImageError(path, f"cannot create the folder {path.parent} ({err.strerror or err})") from err
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}{path.suffix}")
    try:
        # os.open with 0o666 lets the umask decide the permissions, as for any new file.
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(err, PermissionError):
            raise ImageError(path, "permission denied") from err
        if isinstance(err, OSError) and err.strerror:
            raise ImageError(path, f"cannot write it ({err.strerror})") from err
        if isinstance(err, (OSError, ValueError, KeyError, TypeError, cv2.error)):
            raise ImageError(path, f"cannot write it: {_one_line(err)}") from err
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (hidden temporary file, fsync, ``os.replace``), creating folders.

    Raises:
        ImageError: the folder or file cannot be written (the message says why, on one line).
    """
    path = Path(path)
    _atomic_write(path, lambda file: file.write(data))
    return path
