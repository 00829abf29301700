"""Folder layouts of restoration data sets: detection, and pairing of degraded (lq) with clean (gt) files.

``LAYOUTS`` is a plain dict of named layouts; each knows how to pair the files of a folder laid out its way
and which degradation label its pairs carry by default. ``detect_layout`` picks one from the folder's
structure; every layout can also be named explicitly.

Detection rules, first match wins (sub-folder names compare case-insensitively; hidden entries are skipped):

1. ``blurred/`` + ``gt/``                                   → ``levin``
2. ``low/`` + ``high/``, or ``eval15/`` or ``our485/`` holding them → ``lol``
3. ``hazy/`` (+ ``clear/`` or ``gt/``)                       → ``sots``
4. ``rainy/`` + ``norain/``, or files ``rain-*`` and ``norain-*`` side by side → ``rain100l``
5. ``blur/`` + ``sharp/``, or scene sub-folders holding them  → ``gopro``
6. ``lq/`` + ``gt/`` or ``input/`` + ``target/``:
   the folder's own name containing ``gopro``, ``rain100``, ``sots`` or ``lol`` picks that layout; else, when
   more lq files pair by the name before the first ``_`` (``0001_0.8_0.2.jpg`` ↔ ``0001.png``) than by the
   whole stem, ``sots``; else ``paired``.
7. images directly in the folder                           → ``clean``

Files pair by stem: extensions may differ (``1.jpg`` ↔ ``1.png``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from uir.errors import UirError
from uir.io import IMAGE_EXTENSIONS

# Generic lq/gt sub-folder names every paired layout accepts besides its own.
_GENERIC_DIRS = (("lq", "gt"), ("input", "target"))
# Folder-name hints that turn a generic lq/gt folder into a benchmark layout (rule 6).
_NAME_HINTS = (("gopro", "gopro"), ("rain100", "rain100l"), ("sots", "sots"), ("lol", "lol"))
_RAIN_PREFIX = re.compile(r"^(?:no)?rain[-_]?", re.IGNORECASE)
_LEVIN_LQ = re.compile(r"^(.+?)_kernel\d+", re.IGNORECASE)


def _image_extensions() -> frozenset[str]:
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class Pair:
    """One sample of a folder: a clean image and, for paired layouts, its degraded version.

    Attributes:
        gt: the clean (target) image.
        lq: the degraded (input) image; ``None`` in the ``clean`` layout.
    """

    gt: Path
    lq: Path | None = None


@dataclass
class Pairing:
    """What pairing a folder found.

    Attributes:
        layout: the layout name used.
        root: the folder.
        pairs: the samples, in natural file-name order.
        lq_files: every lq image found.
        gt_files: every gt (or clean) image found.
        unmatched: lq or gt images without a partner (a gt whose key repeats counts as unmatched).
        ignored: entries the layout does not use (other folders, non-image files).
    """

    layout: str
    root: Path
    pairs: list[Pair] = field(default_factory=list)
    lq_files: list[Path] = field(default_factory=list)
    gt_files: list[Path] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    @property
    def gt_images(self) -> list[Path]:
        """The distinct clean images of the pairs, in order (several lq may share one gt, as in SOTS)."""
        return list(dict.fromkeys(p.gt for p in self.pairs))

    def merge(self, other: Pairing) -> None:
        """Add another pairing's files (for layouts made of several sub-folders)."""
        self.pairs += other.pairs
        self.lq_files += other.lq_files
        self.gt_files += other.gt_files
        self.unmatched += other.unmatched
        self.ignored += other.ignored


@dataclass(frozen=True)
class Layout:
    """A named folder layout.

    Attributes:
        name: registry key.
        label: the degradation label its pairs carry unless the caller gives one (``None``: none known).
        summary: one line describing the folders it expects.
        pair: ``root -> Pairing``; raises ``UirError`` when the folder is not laid out this way.
    """

    name: str
    label: str | None
    summary: str
    pair: Callable[[Path], Pairing]


# --------------------------------------------------------------------------- scanning


def _natural_key(path: Path) -> list[int | str]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _entries(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=_natural_key)


def _scan(folder: Path) -> tuple[list[Path], list[Path]]:
    """Images directly in ``folder`` (natural order) and its other entries."""
    extensions = _image_extensions()
    images, other = [], []
    for p in _entries(folder):
        (images if p.is_file() and p.suffix.lower() in extensions else other).append(p)
    return images, other


def _subdirs(folder: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in _entries(folder) if p.is_dir()}


def _find_dirs(root: Path, candidates: Iterable[tuple[str, str]]) -> tuple[Path, Path] | None:
    dirs = _subdirs(root)
    for lq_name, gt_name in candidates:
        if lq_name in dirs and gt_name in dirs:
            return dirs[lq_name], dirs[gt_name]
    return None


def _stem(path: Path) -> str:
    return path.stem


def _match(
    lq_files: list[Path], gt_files: list[Path], lq_key: Callable[[Path], str], gt_key: Callable[[Path], str]
) -> tuple[list[Pair], list[Path]]:
    """Pair lq with gt files by key; several lq may share one gt. Returns the pairs and the unmatched."""
    by_key: dict[str, Path] = {}
    unmatched: list[Path] = []
    for g in gt_files:
        if gt_key(g) in by_key:
            unmatched.append(g)
        else:
            by_key[gt_key(g)] = g
    pairs, used = [], set()
    for q in lq_files:
        g = by_key.get(lq_key(q))
        if g is None:
            unmatched.append(q)
        else:
            pairs.append(Pair(gt=g, lq=q))
            used.add(g)
    unmatched += [g for g in by_key.values() if g not in used]
    return pairs, unmatched


def _pair_in(
    root: Path,
    layout: str,
    candidates: tuple[tuple[str, str], ...],
    lq_key: Callable[[Path], str] = _stem,
    gt_key: Callable[[Path], str] = _stem,
) -> Pairing:
    """Pair the files of the first (lq, gt) sub-folder pair of ``candidates`` found in ``root``."""
    found = _find_dirs(root, candidates)
    if found is None:
        wanted = " or ".join(f"{a}/ + {b}/" for a, b in candidates)
        raise UirError(f"{root}: layout {layout!r} needs sub-folders {wanted}")
    lq_dir, gt_dir = found
    lq_files, lq_other = _scan(lq_dir)
    gt_files, gt_other = _scan(gt_dir)
    pairs, unmatched = _match(lq_files, gt_files, lq_key, gt_key)
    rest = [p for p in _entries(root) if p not in (lq_dir, gt_dir)]
    return Pairing(layout, root, pairs, lq_files, gt_files, unmatched, lq_other + gt_other + rest)


# --------------------------------------------------------------------------- the layouts


def _pair_paired(root: Path) -> Pairing:
    return _pair_in(root, "paired", _GENERIC_DIRS)


def _sots_key(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def _pair_sots(root: Path) -> Pairing:
    return _pair_in(root, "sots", (("hazy", "clear"), ("hazy", "gt"), *_GENERIC_DIRS), _sots_key, _stem)


def _rain_key(path: Path) -> str:
    return _RAIN_PREFIX.sub("", path.stem)


def _flat_rain(root: Path) -> tuple[list[Path], list[Path], list[Path]] | None:
    """``rain-*`` and ``norain-*`` images side by side in ``root``: (lq, gt, other entries), or None."""
    images, other = _scan(root)
    gt = [p for p in images if p.stem.lower().startswith("norain")]
    lq = [p for p in images if p.stem.lower().startswith("rain")]
    if not gt or not lq:
        return None
    return lq, gt, other + [p for p in images if p not in gt and p not in lq]


def _pair_rain100l(root: Path) -> Pairing:
    if _find_dirs(root, (("rainy", "norain"), *_GENERIC_DIRS)) is not None:
        return _pair_in(root, "rain100l", (("rainy", "norain"), *_GENERIC_DIRS), _rain_key, _rain_key)
    flat = _flat_rain(root)
    if flat is None:
        raise UirError(f"{root}: layout 'rain100l' needs rainy/ + norain/, lq/ + gt/, or rain-*/norain-* files")
    lq, gt, ignored = flat
    pairs, unmatched = _match(lq, gt, _rain_key, _rain_key)
    return Pairing("rain100l", root, pairs, lq, gt, unmatched, ignored)


def _is_gopro_scene(folder: Path) -> bool:
    dirs = _subdirs(folder)
    return "blur" in dirs and "sharp" in dirs


def _pair_gopro(root: Path) -> Pairing:
    if _find_dirs(root, _GENERIC_DIRS) is not None:
        return _pair_in(root, "gopro", _GENERIC_DIRS)
    if _is_gopro_scene(root):
        return _pair_in(root, "gopro", (("blur", "sharp"),))
    pairing = Pairing("gopro", root)
    for entry in _entries(root):
        if entry.is_dir() and _is_gopro_scene(entry):
            pairing.merge(_pair_in(entry, "gopro", (("blur", "sharp"),)))
        else:
            pairing.ignored.append(entry)
    if not pairing.lq_files and not pairing.gt_files:
        raise UirError(f"{root}: layout 'gopro' needs scene folders with blur/ + sharp/, or input/ + target/")
    return pairing


def _pair_lol(root: Path) -> Pairing:
    """``low/`` + ``high/`` in ``root``, else in ``eval15/`` (the test split), else in ``our485/``."""
    candidates = (("low", "high"), *_GENERIC_DIRS)
    if _find_dirs(root, candidates) is not None:
        return _pair_in(root, "lol", candidates)
    dirs = _subdirs(root)
    for split in ("eval15", "our485"):
        if split in dirs and _find_dirs(dirs[split], candidates) is not None:
            pairing = _pair_in(dirs[split], "lol", candidates)
            pairing.root = root
            pairing.ignored += [p for p in _entries(root) if p != dirs[split]]
            return pairing
    raise UirError(f"{root}: layout 'lol' needs low/ + high/, directly or inside eval15/ or our485/")


def _levin_key(path: Path) -> str:
    m = _LEVIN_LQ.match(path.stem)
    return m.group(1) if m else path.stem


def _pair_levin(root: Path) -> Pairing:
    return _pair_in(root, "levin", (("blurred", "gt"), *_GENERIC_DIRS), _levin_key, _stem)


def _pair_clean(root: Path) -> Pairing:
    images, other = _scan(root)
    return Pairing("clean", root, [Pair(gt=p) for p in images], [], images, [], other)


LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        Layout("paired", None, "lq/ + gt/ (or input/ + target/), matched by file stem", _pair_paired),
        Layout("sots", "haze", "hazy/ + clear/ (or lq/ + gt/); 0001_0.8_0.2.jpg <-> 0001.png", _pair_sots),
        Layout(
            "rain100l",
            "rain-streaks",
            "lq/ + gt/, rainy/ + norain/, or rain-001 <-> norain-001",
            _pair_rain100l,
        ),
        Layout("gopro", "motion-blur", "scene folders */blur/ + */sharp/, or input/ + target/", _pair_gopro),
        Layout("lol", "low-light", "low/ + high/, directly or inside eval15/ or our485/", _pair_lol),
        Layout("levin", "motion-blur", "blurred/imI_kernelK_img.png <-> gt/imI.png", _pair_levin),
        Layout("clean", None, "a plain folder of images (no lq): synthetic pairs or added noise", _pair_clean),
    )
}


def get_layout(name: str) -> Layout:
    """A layout by name; the error lists the valid names."""
    if name not in LAYOUTS:
        raise UirError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


# --------------------------------------------------------------------------- detection


def _check_root(root: str | Path) -> Path:
    path = Path(root)
    if not path.exists():
        raise UirError(f"{path}: no such folder")
    if not path.is_dir():
        raise UirError(f"{path}: not a folder")
    return path


def _prefix_pairs_better(lq_dir: Path, gt_dir: Path) -> bool:
    lq_files, gt_files = _scan(lq_dir)[0], _scan(gt_dir)[0]
    gt_stems = {p.stem for p in gt_files}
    by_stem = sum(p.stem in gt_stems for p in lq_files)
    by_prefix = sum(_sots_key(p) in gt_stems for p in lq_files)
    return by_prefix > by_stem


def _detect_generic(root: Path) -> str | None:
    found = _find_dirs(root, _GENERIC_DIRS)
    if found is None:
        return None
    name = root.resolve().name.lower()
    for hint, layout in _NAME_HINTS:
        if hint in name:
            return layout
    return "sots" if _prefix_pairs_better(*found) else "paired"


def detect_layout(root: str | Path) -> str:
    """The layout of a folder, by the rules in this module's docstring.

    Raises:
        UirError: the folder is missing, empty, or laid out in no known way.
    """
    path = _check_root(root)
    dirs = _subdirs(path)
    lol_split = any(s in dirs and _find_dirs(dirs[s], (("low", "high"),)) for s in ("eval15", "our485"))
    rules = (
        ("levin", lambda: "blurred" in dirs and "gt" in dirs),
        ("lol", lambda: ("low" in dirs and "high" in dirs) or lol_split),
        ("sots", lambda: "hazy" in dirs and ("clear" in dirs or "gt" in dirs)),
        ("rain100l", lambda: ("rainy" in dirs and "norain" in dirs) or _flat_rain(path) is not None),
        ("gopro", lambda: _is_gopro_scene(path) or any(_is_gopro_scene(d) for d in dirs.values())),
    )
    for name, applies in rules:
        if applies():
            return name
    generic = _detect_generic(path)
    if generic is not None:
        return generic
    if _scan(path)[0]:
        return "clean"
    entries = _entries(path)
    if not entries:
        raise UirError(f"{path}: empty folder")
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:6])
    more = f" and {len(entries) - 6} more" if len(entries) > 6 else ""
    raise UirError(f"{path}: no known layout (it holds {shown}{more}); known: {', '.join(LAYOUTS)}")


def pair_dirs(lq_dir: str | Path, gt_dir: str | Path) -> Pairing:
    """Pair two folders' images by stem (``1.jpg`` <-> ``1.png``), strictly: a file without its partner, a missing
    or empty folder, or the same folder twice is a ``UirError`` (the first few unpaired files named)."""
    lq_path, gt_path = _check_root(lq_dir), _check_root(gt_dir)
    if lq_path.resolve() == gt_path.resolve():
        raise UirError(f"{lq_path}: the degraded and the clean folder are the same folder")
    lq_files, lq_other = _scan(lq_path)
    gt_files, gt_other = _scan(gt_path)
    for folder in (p for p, files in ((lq_path, lq_files), (gt_path, gt_files)) if not files):
        raise UirError(f"{folder}: no images in it")
    pairs, unmatched = _match(lq_files, gt_files, _stem, _stem)
    if unmatched:
        names = ", ".join(str(u) for u in unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        raise UirError(f"{len(unmatched)} image(s) without a partner of the same name in the other folder: {names}")
    return Pairing("paired", lq_path, pairs, lq_files, gt_files, [], lq_other + gt_other)


def pair_folder(root: str | Path, layout: str | None = None) -> Pairing:
    """Pair the files of a folder.

    Args:
        root: the data set folder.
        layout: a name of ``LAYOUTS``; ``None`` detects it (``detect_layout``).

    Returns:
        The pairing; ``.pairs`` is empty when the folder holds no matching files.

    Raises:
        UirError: missing folder, unknown layout name, or a folder not laid out as ``layout`` says.
    """
    path = _check_root(root)
    name = layout if layout is not None else detect_layout(path)
    return get_layout(name).pair(path)
