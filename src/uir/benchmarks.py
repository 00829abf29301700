"""Named benchmark protocols: which data, which degradations, which metrics — fixed, so numbers compare.

A protocol is a list of test sets under one data root (``--data-root``, e.g. ``../shared/data``). Each set is one
of: a paired folder, two folders of pairs named by the user (``pairs_protocol``: ``uir eval --pairs LQ GT``), a
clean folder plus Gaussian noise of a given σ (seeded per image, see
``uir.data.NoisyDataset``), a synthetic set made by the degradation engine from a fixed list of clean images
with fixed seeds (cached, regenerated identically), or a folder of real photos without ground truth (scored by
no-reference metrics). A set whose data is missing is reported with the files and layout it expects.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from uir import degradations as D
from uir import io
from uir.data import NoisyDataset, PairedDataset, pair_dirs, pair_folder
from uir.degradations import ALL_TYPES
from uir.degradations.functional import resize
from uir.errors import UirError

REFERENCE_METRICS = ("psnr", "ssim")
NO_REFERENCE_METRICS = ("piqe", "niqe")
# Real photos can be 12 MPix; they are shrunk (area) to this long side before scoring [ours].
REAL_MAX_SIDE = 1024
# The task label of photos with nothing to restore (not an engine type: task-aware baselines leave them as they are).
CLEAN_TASK = "clean"


@dataclass(frozen=True)
class Synthesis:
    """How a synthetic test set is made from clean images.

    Attributes:
        type: degradation type name.
        severity: its severity.
        every: keep every ``every``-th clean image (sorted by file name) from ``offset``.
        offset: index of the first kept image.
        overrides: fixed op parameters (see ``uir.degradations.draw``).
    """

    type: str
    severity: float
    every: int = 2
    offset: int = 0
    overrides: dict[str, dict[str, object]] = field(default_factory=dict)

    def seed(self, name: str) -> int:
        """The seed of one image: crc32 of ``"<type>:<file name>"`` (stable, independent of the folder)."""
        return zlib.crc32(f"{self.type}:{name}".encode())


@dataclass(frozen=True)
class TestSet:
    """One test set of a protocol.

    Attributes:
        name: short column name, e.g. ``rain100l``.
        task: the degradation label of its images (passed to task-aware restorers).
        paths: folders under the data root to try, first found wins.
        kind: ``paired``, ``pairs`` (``paths`` = the lq and the gt folder, absolute), ``noisy``, ``synthetic``
            or ``real``.
        expects: what must be there, said when it is missing.
        sigma: the noise level of a ``noisy`` set.
        synthesis: the recipe of a ``synthetic`` set.
    """

    name: str
    task: str
    paths: tuple[str, ...]
    kind: str
    expects: str
    sigma: float | None = None
    synthesis: Synthesis | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return NO_REFERENCE_METRICS if self.kind == "real" else REFERENCE_METRICS

    def locate(self, data_root: Path) -> Path | None:
        if self.kind == "pairs":
            return Path(self.paths[0]) if all(Path(p).is_dir() for p in self.paths) else None
        for rel in self.paths:
            if (data_root / rel).is_dir():
                return data_root / rel
        return None


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    sets: tuple[TestSet, ...]


_CBSD68 = ("denoise/CBSD68", "CBSD68")
_CBSD68_EXPECTS = "CBSD68's 68 clean colour images (*.png) in a folder"


def _noise(sigma: float) -> TestSet:
    return TestSet(f"cbsd68-s{sigma:g}", "noise", _CBSD68, "noisy", _CBSD68_EXPECTS, sigma=sigma)


def _synthetic(name: str, recipe: Synthesis, task: str) -> TestSet:
    return TestSet(name, task, _CBSD68, "synthetic", _CBSD68_EXPECTS + " (the clean source)", synthesis=recipe)


RAIN100L = TestSet(
    "rain100l",
    "rain-streaks",
    ("derain/Rain100L", "Rain100L"),
    "paired",
    "Rain100L test pairs: lq/ + gt/ (or rainy/ + norain/)",
)
SOTS = TestSet(
    "sots-outdoor",
    "haze",
    ("dehaze/SOTS-outdoor", "dehaze/SOTS_outdoor", "dehaze/SOTS_outdoor_2pairs", "SOTS-outdoor"),
    "paired",
    "SOTS-outdoor pairs: hazy/ + clear/ (or lq/ + gt/), 0001_0.8_0.2.jpg <-> 0001.png",
)
GOPRO = TestSet(
    "gopro", "motion-blur", ("deblur/GoPro/test", "GoPro/test"), "paired", "GoPro test: scene/blur/ + scene/sharp/"
)
LOL = TestSet("lol", "low-light", ("lowlight/LOL/eval15", "LOL/eval15"), "paired", "LOL-v1 eval15: low/ + high/")
POLYU = TestSet(
    "polyu",
    "camera-noise",
    ("real_noisy/PolyU_cropped100", "PolyU_cropped100", "PolyU"),
    "paired",
    "PolyU real camera-noise pairs (the 100 cropped 512x512 ones): lq/ + gt/ (gt: the mean of many shots)",
)

# uir-5d: the 5-task protocol from the data we have. Severities chosen so the inputs are about as hard as the
# real sets they stand in for (SOTS-outdoor, GoPro, LOL); every second CBSD68 image, 34 per set.
UIR5D_HAZE = Synthesis("haze", 0.25)
UIR5D_BLUR = Synthesis("motion-blur", 0.4, offset=1)
UIR5D_LOWLIGHT = Synthesis("low-light", 0.8)

_REAL = (
    ("real-noise-rni15", "camera-noise", "real_noisy/RNI15"),
    ("real-rain-sirr", "rain-streaks", "real_rainy/SIRR_real147"),
    ("real-lowlight-easy", "low-light", "lowlight_unpaired/SCI_easy"),
    ("real-lowlight-medium", "low-light", "lowlight_unpaired/SCI_medium"),
    ("real-lowlight-difficult", "low-light", "lowlight_unpaired/SCI_difficult"),
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "3d",
            "3-task: CBSD68 σ15/25/50, Rain100L, SOTS-outdoor",
            (_noise(15), _noise(25), _noise(50), RAIN100L, SOTS),
        ),
        Protocol(
            "5d", "5-task: CBSD68 σ25, Rain100L, SOTS-outdoor, GoPro, LOL", (_noise(25), RAIN100L, SOTS, GOPRO, LOL)
        ),
        Protocol(
            "uir-5d",
            "5-task from data we have: CBSD68 σ25, Rain100L, and synthetic haze, motion blur, low light on CBSD68",
            (
                _noise(25),
                RAIN100L,
                _synthetic("syn-haze", UIR5D_HAZE, "haze"),
                _synthetic("syn-motion-blur", UIR5D_BLUR, "motion-blur"),
                _synthetic("syn-low-light", UIR5D_LOWLIGHT, "low-light"),
            ),
        ),
        Protocol("real-noise", "real camera noise with references: PolyU (100 crops, 512x512)", (POLYU,)),
        Protocol("unseen-noise", "noise levels unseen in training: CBSD68 σ60, σ75", (_noise(60), _noise(75))),
        Protocol(
            "mixed",
            "the 5 mixed types of the degradation engine at severity 0.5 on CBSD68",
            tuple(
                _synthetic(f"mix-{t}", Synthesis(t, 0.5, every=4, offset=i % 4), t)
                for i, t in enumerate(
                    (
                        "lowlight-haze-rain-snow",
                        "lowlight-blur-noise",
                        "blur-rain",
                        "blur-jpeg",
                        "downsample-noise-blur-jpeg",
                    )
                )
            ),
        ),
        Protocol(
            "all-types",
            "every type of the degradation engine at severity 0.5, each on every 8th CBSD68 image",
            tuple(_synthetic(t, Synthesis(t, 0.5, every=8, offset=i % 8), t) for i, t in enumerate(ALL_TYPES)),
        ),
        Protocol(
            "fidelity",
            "photos that need nothing or little: CBSD68 as it is, and JPEG-compressed at quality 90 and 75",
            (
                TestSet("clean", CLEAN_TASK, _CBSD68, "noisy", _CBSD68_EXPECTS, sigma=0.0),
                _synthetic("jpeg-q90", Synthesis("jpeg", 0.0, overrides={"jpeg": {"quality": 90}}), "jpeg"),
                _synthetic("jpeg-q75", Synthesis("jpeg", 0.0, offset=1, overrides={"jpeg": {"quality": 75}}), "jpeg"),
            ),
        ),
        Protocol(
            "real",
            f"real photos without ground truth, scored by PIQE/NIQE (long side shrunk to {REAL_MAX_SIDE} px)",
            tuple(TestSet(n, t, (p,), "real", "a folder of real photos") for n, t, p in _REAL),
        ),
    )
}


def pairs_protocol(lq_dir: Path, gt_dir: Path, task: str = "unknown") -> Protocol:
    """A one-set protocol of the user's own pairs: ``lq_dir`` and ``gt_dir`` hold images of the same names.

    Raises:
        UirError: a missing folder or files without a partner (``uir.data.pair_dirs``), said before any model runs.
    """
    pairing = pair_dirs(lq_dir, gt_dir)
    name = (
        lq_dir.resolve().parent.name if lq_dir.name.lower() in ("lq", "input", "low", "hazy", "rainy") else lq_dir.name
    )
    kind_of = f"{len(pairing.pairs)} pairs: {lq_dir} (degraded) and {gt_dir} (clean)"
    paths = (str(lq_dir.resolve()), str(gt_dir.resolve()))
    return Protocol("pairs", kind_of, (TestSet(name or "pairs", task, paths, "pairs", "images of the same names"),))


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise UirError(f"unknown benchmark {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# --------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One test image: ``lq`` and (if any) ``gt`` as ``(1, 3, H, W)`` float32 in [0, 1]."""

    name: str
    lq: torch.Tensor
    gt: torch.Tensor | None


def iter_samples(test_set: TestSet, root: Path, cache_dir: Path, limit: int | None = None) -> Iterator[Sample]:
    """The samples of a located set, in a fixed order."""
    if test_set.kind == "noisy":
        dataset = NoisyDataset(root, test_set.sigma)
        items = ((Path(s["path"]).name, s["lq"], s["gt"]) for s in (dataset[i] for i in range(_n(len(dataset), limit))))
    elif test_set.kind == "paired":
        dataset = PairedDataset(root, label=test_set.task)
        items = ((Path(s["path"]).name, s["lq"], s["gt"]) for s in (dataset[i] for i in range(_n(len(dataset), limit))))
    elif test_set.kind in ("pairs", "synthetic"):
        if test_set.kind == "pairs":
            pairs = pair_dirs(*test_set.paths).pairs
        else:
            pairs = pair_folder(synthesize(test_set, root, cache_dir), layout="paired").pairs
        items = (
            (p.gt.name, io.read_image(p.lq).image[0], io.read_image(p.gt).image[0])
            for p in pairs[: _n(len(pairs), limit)]
        )
    else:
        paths = io.list_images([root])
        items = ((p.name, _shrink(io.read_image(p).image)[0], None) for p in paths[: _n(len(paths), limit)])
    for name, lq, gt in items:
        if gt is not None and gt.shape != lq.shape:
            raise UirError(
                f"{test_set.name}/{name}: degraded {tuple(lq.shape[1:])} and clean {tuple(gt.shape[1:])} differ in size"
            )
        yield Sample(name, lq.unsqueeze(0), None if gt is None else gt.unsqueeze(0))


def sampled_sets(
    protocols: Sequence[str | Protocol], data_root: Path, cache_dir: Path, every: int = 1
) -> Iterator[tuple[TestSet, Iterator[tuple[int, Sample, torch.Tensor]] | None]]:
    """Each set of ``protocols`` (names, or ``Protocol``s such as ``pairs_protocol``'s) with its every ``every``-th
    sample: its index in the set, the sample, and its input rounded to 8 bits (as a photo saved to disk would be);
    ``None`` instead when the set's data is not under ``data_root``. What the benchmark scripts that score a pipeline
    image by image loop over."""
    for protocol in protocols:
        for test_set in (get_protocol(protocol) if isinstance(protocol, str) else protocol).sets:
            root = test_set.locate(data_root)
            samples = None if root is None else iter_samples(test_set, root, cache_dir)
            yield (
                test_set,
                None
                if samples is None
                else ((i, s, (s.lq.clamp(0, 1) * 255).round() / 255) for i, s in enumerate(samples) if i % every == 0),
            )


def _n(length: int, limit: int | None) -> int:
    return length if limit is None else min(length, limit)


def _shrink(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[-2:]
    scale = REAL_MAX_SIDE / max(h, w)
    return image if scale >= 1 else resize(image, (round(h * scale), round(w * scale)), mode="area")


def synthesize(test_set: TestSet, clean_root: Path, cache_dir: Path) -> Path:
    """Make (or reuse) the cached lq/gt folder of a synthetic set; returns the folder.

    The cache is keyed by a hash of the recipe, the clean file names and ``ENGINE_VERSION``, and rebuilt when one
    changes; building it twice gives byte-identical files.
    """
    recipe = test_set.synthesis
    assert recipe is not None
    clean = io.list_images([clean_root])[recipe.offset :: recipe.every]
    recipe_key = [asdict(recipe), [p.name for p in clean], D.ENGINE_VERSION]
    key = hashlib.sha256(json.dumps(recipe_key, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir / f"{test_set.name}-{key}"
    if (folder / "done.json").is_file():
        return folder
    for path in clean:
        gt = io.read_image(path).image
        with torch.no_grad():
            lq, record = D.degrade(gt, recipe.type, recipe.severity, recipe.seed(path.name), recipe.overrides or None)
        io.write_image(folder / "lq" / f"{path.stem}.png", lq)
        io.write_image(folder / "gt" / f"{path.stem}.png", gt)
        io.write_text(folder / "records" / f"{path.stem}.json", record.to_json() + "\n")
    io.write_text(folder / "done.json", json.dumps({"recipe": asdict(recipe), "images": len(clean)}, indent=2) + "\n")
    return folder
