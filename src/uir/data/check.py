"""``uir data check``: what a data folder holds — layout, counts, unmatched files, unreadable images, sizes.

``check_folder`` never raises on a folder's contents: every problem ends up in the report. Only a missing
path, a path that is not a folder or an unknown layout name is a ``UirError``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from uir.data.layouts import Pairing, get_layout, pair_folder
from uir.errors import ImageError, UirError
from uir.io import read_image

logger = logging.getLogger(__name__)

_PROGRESS_MIN = 50  # a bar only for folders with more images than this
_SHOWN = 5  # list this many of each problem in ``format``


@dataclass
class CheckReport:
    """What ``check_folder`` found in one folder; paths are relative to ``root``.

    Attributes:
        root: the folder checked.
        layout: the layout used (detected or named); ``None`` when none applies.
        label: the layout's default degradation label, if any.
        pairs: lq/gt pairs (for ``clean``: images).
        lq: lq images found.
        gt: gt (or clean) images found.
        images: image files read.
        unmatched: images without a partner.
        unreadable: ``[path, reason]`` for each image that failed to read.
        size_mismatches: ``[lq, gt, "WxH vs WxH"]`` for each pair whose sizes differ.
        smallest: the smallest readable image, ``[width, height]`` (by pixel count).
        largest: the largest readable image, ``[width, height]``.
        distinct_sizes: how many different sizes the readable images have.
        ignored: entries the layout does not use (other folders, non-image files); not a problem.
        problem: a folder-level problem (empty folder, no known layout, no pairs), or ``None``.
    """

    root: str
    layout: str | None = None
    label: str | None = None
    pairs: int = 0
    lq: int = 0
    gt: int = 0
    images: int = 0
    unmatched: list[str] = field(default_factory=list)
    unreadable: list[list[str]] = field(default_factory=list)
    size_mismatches: list[list[str]] = field(default_factory=list)
    smallest: list[int] | None = None
    largest: list[int] | None = None
    distinct_sizes: int = 0
    ignored: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when a layout applies, it has samples, and every image reads, matches and fits its partner."""
        return (
            self.problem is None
            and self.pairs > 0
            and not self.unmatched
            and not self.unreadable
            and not self.size_mismatches
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, plus ``ok``."""
        return {**asdict(self), "ok": self.ok}

    def format(self) -> str:
        """Human-readable multi-line text; long lists show their first few entries and a count."""
        lines = [f"folder          {self.root}"]
        if self.problem is not None and self.layout is None:
            return "\n".join([*lines, f"problem         {self.problem}", "result          NOT OK"])
        label = f" (label {self.label})" if self.label else ""
        lines.append(f"layout          {self.layout}{label}")
        if self.layout == "clean":
            lines.append(f"images          {self.gt}")
        else:
            lines.append(f"pairs           {self.pairs} (lq {self.lq}, gt {self.gt})")
        lines.append(f"image sizes     {self._size_range()}")
        lines += _listing("unmatched", self.unmatched)
        lines += _listing("unreadable", [f"{p}: {r}" for p, r in self.unreadable])
        lines += _listing("size mismatches", [f"{q} vs {g}: {s}" for q, g, s in self.size_mismatches])
        if self.ignored:
            lines += _listing("ignored", self.ignored)
        if self.problem is not None:
            lines.append(f"problem         {self.problem}")
        lines.append(f"result          {'OK' if self.ok else 'NOT OK'}")
        return "\n".join(lines)

    def _size_range(self) -> str:
        if self.smallest is None or self.largest is None:
            return "-"
        low, high = "x".join(map(str, self.smallest)), "x".join(map(str, self.largest))
        count = f"{self.distinct_sizes} size{'s' if self.distinct_sizes > 1 else ''}"
        return f"{low} ({count})" if low == high else f"{low} .. {high} (by pixel count; {count})"


def _listing(title: str, items: list[str]) -> list[str]:
    if not items:
        return [f"{title:<16}none"]
    lines = [f"{title:<16}{len(items)}"]
    lines += [f"  {item}" for item in items[:_SHOWN]]
    if len(items) > _SHOWN:
        lines.append(f"  ... and {len(items) - _SHOWN} more")
    return lines


def _relative(path: Path, root: Path) -> str:
    try:
        text = str(path.relative_to(root))
    except ValueError:
        text = str(path)
    return text + "/" if path.is_dir() else text


def _read_size(path: Path) -> tuple[int, int] | str:
    """``(width, height)`` of a fully decoded image, or the one-line reason it cannot be read."""
    try:
        image = read_image(path).image
    except ImageError as exc:
        return exc.reason
    except Exception as exc:  # a check must survive any decoder failure and report it
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'error'}"
    return int(image.shape[-1]), int(image.shape[-2])


def _read_all(files: list[Path], root: Path) -> dict[Path, tuple[int, int] | str]:
    show = len(files) > _PROGRESS_MIN and sys.stderr.isatty()
    bar = tqdm(files, desc=f"checking {root.name}", unit="img", file=sys.stderr, disable=not show, leave=False)
    return {path: _read_size(path) for path in bar}


def _fill(report: CheckReport, pairing: Pairing, root: Path) -> None:
    report.pairs, report.lq, report.gt = len(pairing.pairs), len(pairing.lq_files), len(pairing.gt_files)
    report.unmatched = [_relative(p, root) for p in pairing.unmatched]
    report.ignored = [_relative(p, root) for p in pairing.ignored]
    files = list(dict.fromkeys(pairing.lq_files + pairing.gt_files))
    report.images = len(files)
    results = _read_all(files, root)
    report.unreadable = [[_relative(p, root), r] for p, r in results.items() if isinstance(r, str)]
    sizes = [s for s in results.values() if not isinstance(s, str)]
    if sizes:
        report.smallest = list(min(sizes, key=lambda s: (s[0] * s[1], s)))
        report.largest = list(max(sizes, key=lambda s: (s[0] * s[1], s)))
        report.distinct_sizes = len(set(sizes))
    for pair in pairing.pairs:
        q, g = results.get(pair.lq) if pair.lq else None, results.get(pair.gt)
        if isinstance(q, tuple) and isinstance(g, tuple) and q != g:
            text = f"{q[0]}x{q[1]} vs {g[0]}x{g[1]}"
            report.size_mismatches.append([_relative(pair.lq, root), _relative(pair.gt, root), text])


def check_folder(root: str | Path, layout: str | None = None) -> CheckReport:
    """Inspect a data folder, reading every image fully (a progress bar on stderr for big folders).

    Args:
        root: the folder.
        layout: a layout name to check against; ``None`` detects it.

    Returns:
        The report; ``report.ok`` says whether the folder is usable as it is.

    Raises:
        UirError: the path is missing or not a folder, or ``layout`` is not a known name.
    """
    path = Path(root)
    if not path.exists():
        raise UirError(f"{path}: no such folder")
    if not path.is_dir():
        raise UirError(f"{path}: not a folder")
    if layout is not None:
        get_layout(layout)
    report = CheckReport(root=str(path))
    try:
        pairing = pair_folder(path, layout)
    except UirError as exc:
        report.problem = str(exc).removeprefix(f"{path}: ")
        return report
    except OSError as exc:
        report.problem = f"cannot list it: {exc.strerror or exc}"
        return report
    report.layout, report.label = pairing.layout, get_layout(pairing.layout).label
    _fill(report, pairing, path)
    if not pairing.pairs:
        report.problem = "no images" if pairing.layout == "clean" else "no lq/gt pairs"
    logger.debug("checked %s: layout %s, %d images", path, report.layout, report.images)
    return report
