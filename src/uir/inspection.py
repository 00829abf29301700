"""What is wrong with this photo: no-reference quality scores plus whatever learned parts are at hand.

An ``Inspector`` always gives PIQE (with the grade its authors attach to the score) and NIQE. Given learned parts
it adds what they see: a degradation classifier (``uir.methods.load_classifier``, MaskDCPT) gives the types with
their probabilities, an AMIRNet model (a ``nafnet-ftb-*`` backbone) the image's path through its tree, and a
quality perceiver the probabilities of the three quality tiers (low, medium, high). The verdict says plainly
what the evidence supports: clean, degraded by what, or unsure (a degradation the classifier does not know).

How badly: blind estimates of the noise σ and of the JPEG quality it was saved at (``severity``, docs/severity.md)
are reported always, and the verdict adds the σ when it names noise, and the quality when the photo was saved below
``JPEG_NOTED`` (JPEG artifacts are outside what the default models restore). A calibrated analysis with severity
heads (``uir.methods.analysis``; the shipped one has them for the five types it names) adds the estimated severity
of each type it finds likely (``SEVERITY_SHOWN``), on the degradation engine's 0-1 scale, and the verdict says it for
the type it names, with its physical meaning where it has one (``describe_severity``).

Exposure: the image's mean luminance, and (with a classifier) whether it is *underexposed*: low light is the
likeliest damage with probability >= ``LOW_LIGHT_CONFIDENCE`` *and* the mean luminance is below
``LOW_LIGHT_MEAN``. Only then does ``uir restore`` (``task="auto"``) let a model brighten a photo: a dark photo is
not damage by itself (issue 24).

Example:
    >>> import torch
    >>> report = Inspector().inspect(torch.rand(1, 3, 128, 128))
    >>> report.piqe_grade in PIQE_GRADES, report.degradations is None
    (True, True)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from uir.degradations import TYPES
from uir.degradations.blur import sample_motion_blur
from uir.degradations.weather import sample_haze
from uir.errors import UirError
from uir.metrics import mean_luminance, niqe, piqe
from uir.metrics.estimates import jpeg_file_quality, jpeg_quality, noise_sigma, residual_grain
from uir.pretrained import COMPANIONS, DEFAULT_MODEL
from uir.restore import guard_tone, restore_tensor

PIQE_GRADES = ("excellent", "good", "fair", "poor", "bad")
"""PIQE's quality scale (Venkatanath et al., 2015): 0–20 excellent, 21–35 good, 36–50 fair, 51–80 poor, 81–100 bad."""

SCORE_SIDE = 1024
"""No-reference scores are taken on the image shrunk to this long side (as the ``real`` benchmark does)."""

CROP_SIDE = 512
"""Learned parts look at the centre crop of this side, at the image's own resolution (degradations such as noise
change when an image is shrunk)."""

ESTIMATE_SIDE = 256
"""The blind severity estimates (noise σ, JPEG quality) look at the centre crop of this side (their cost grows with
the pixels: about 0.4 s and 0.15 s at this side on one core)."""

CLEAN = "clean"
"""The class of a classifier trained with undegraded images too (the shipped one is): its verdict is "looks clean"."""

CLEAN_CONFIDENCE = 0.7
"""The probability of ``clean`` at or above which ``uir restore --strength auto`` may leave a photo as it is (if the
model would change it little too, or the photo is dark: ``uir.api.SMALL_CHANGE_DB``, ``uir.api.DARK_CLEAN_MEAN``).
With the shipped analysis alone, 60 of CBSD68's 68 clean photos reach it, and 8 of Rain100L's 100 rainy photos, 16 of
uir-5d's 34 hazy ones (severity 0.25, fainter than the analysis is calibrated for) and 18 of its 34 motion-blurred
ones; with the change check 8, 3 and 18 of them are still left as they are (their loss: 0.08, 0.03, 0.07 dB; ``python
benchmarks/strength_gate.py --data-root ../shared/data --thresholds 0.5 0.7 0.9 --min-change 0 35``,
docs/severity.md). It was 0.9 until the default became nafnet-fr-v2.1, whose JPEG q90 outputs 0.9 left 0.10 dB under
their inputs. The bare classifier-5d could not tell: on every fourth photo of each set, clean ones reached at most
0.73 and hazy, rainy and blurred ones up to 0.76 (``python benchmarks/strength_cues.py --data-root ../shared/data
--no-estimates --classifier classifier-5d --every 4``)."""

UNSURE = 0.35
"""Below this top probability the classifier's answer is reported as unsure."""

LOW_LIGHT = "low-light"
LOW_LIGHT_CONFIDENCE = 0.8
"""The probability of low light (summed over the types that hold it) at or above which a dark photo is
underexposed."""

LOW_LIGHT_MEAN = 0.25
"""The mean luminance (0-1) below which a photo can be underexposed. Luminance alone does not separate: uir-5d's
low-light inputs lie at 0.035-0.19, but CBSD68's clean photos reach down to 0.22 (at 0.6x exposure to 0.17) and
PolyU's real photos to 0.075; the shipped analysis' p(low light) does (1.00 against at most 0.39; the bare
classifier's 0.96-0.98 against at most 0.61), and the two together call 34 of 34 low-light inputs and none of 372
others underexposed
(``python benchmarks/exposure_cues.py --data-root ../shared/data``, docs/real-photos.md)."""


GRAIN_FLOOR = 1.6
"""A photo whose likeliest type is clean goes to the companion when the grain it finds in the photo's flat parts
(``Plan.grain``) is at least this (8-bit units), however the model would change it and however clean it looks, and
``uir inspect`` calls it grainy: the analysis calls real noisy photos clean (RNI15's ``Movie``, ``Stars``, ``Singer``,
``Boy``: 0.83-0.995, grain 2.0-7.0 with ``nafnet-fr-fine2``: ``uir inspect ../shared/data/real_noisy/RNI15 --json``,
each photo's ``grain``), and the model changes some soft PolyU crops much (adding its grid). Clean photos stay under
it: CBSD68 at most 1.51 (the next 1.23), its JPEGs 0.95, the dark CBSD68 sets 1.28 but one (2.34) (``python
benchmarks/fine_companion.py --data-root ../shared/data --companion nafnet-fr-fine2 --look-from 0 --per-image
runs/fc.csv``, the CSV's ``grain``; ``--pairs`` adds the dark sets; ``--weigh runs/fc.csv`` prints the route); photos
that are no benchmark: CBSD432's last 32 (the companions' validation photos: ``uir inspect $(ls -d
../shared/data/train_clean/CBSD432/* | sort | tail -32) --json``) at most 1.24, SunHays80's 74 that look
clean at most 1.55 but one (1.71, a JPEG at quality 75 that also looks motion-blurred: ``uir inspect
../shared/data/train_clean/SunHays80 --json``), ``examples/clean`` 0.18-0.80 (``uir inspect examples/clean --json``);
white grain of σ 3 (38.7 dB) on a clean crop reads 1.68 (tests/test_companion.py). It was 1.5 with the first companion,
``nafnet-fr-fine``, which reads less grain (CBSD68's 1.51 was 1.17 with it; docs/models/nafnet-fr-fine2.md)."""

GRAIN_CEILING = 8.0
"""Above this grain the model keeps a photo whose likeliest type is clean: on white noise the companion
(``nafnet-fr-fine2``) is level with the model at σ 10 (grain 6.7-9.3) and behind it from σ 15 (grain 12.4-14.3:
``python benchmarks/fine_companion.py --data-root ../shared/data --crossover``)."""

GRAIN_SIDE = 512
"""The grain is read on a photo's centre crop of this side (the whole of a smaller photo): ``uir restore`` runs the
companion on the whole photo only if its output comes back, so a large clean-looking photo costs the model and a 512²
companion run, not two whole networks."""


def fine_detail(denoiser: Any, image: Tensor, **kwargs: Any) -> Tensor:
    """``denoiser``'s output of ``(1, 3, H, W)`` with the tone guard's ``keep``: its fine detail only (the exposure and
    colour above 16 px put back). ``kwargs`` go to ``uir.restore.restore_tensor`` (tile, overlap, stop_check)."""
    return guard_tone(restore_tensor(denoiser, image, **kwargs), image, "keep")


def read_grain(denoiser: Any, image: Tensor, **kwargs: Any) -> tuple[Tensor, Tensor, float | None]:
    """How much grain ``denoiser`` (a restorer: the default's fine-damage companion) finds in ``(1, 3, H, W)``:
    ``(probe, denoised, grain)``, the centre ``GRAIN_SIDE`` crop, ``fine_detail`` of it, and
    ``uir.metrics.estimates.residual_grain`` of the two rounded to 0.01 (``None`` at 16 pixels a side or less)."""
    probe = center_crop(image, GRAIN_SIDE)
    denoised = fine_detail(denoiser, probe, **kwargs)
    if min(probe.shape[-2:]) <= 16:
        return probe, denoised, None
    return probe, denoised, round(float(residual_grain(probe, denoised.clamp(0, 1))[0]), 2)


class Classifier(Protocol):
    def classify(self, lq: Tensor) -> dict[str, float]: ...


class Perceiver(Protocol):
    def perceive(self, lq: Tensor) -> dict[str, float]: ...


@dataclass
class Inspection:
    """One image's report; ``None`` where the part that measures it was not given."""

    path: str | None
    width: int
    height: int
    piqe: float
    piqe_grade: str
    niqe: float | None
    degradations: dict[str, float] | None
    tree_path: list[int] | None
    quality_tiers: dict[str, float] | None
    verdict: str
    mean_luminance: float | None = None
    underexposed: bool | None = None
    noise_sigma: float | None = None
    jpeg_quality: float | None = None
    severity: dict[str, float] | None = None
    grain: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """A few human-readable lines."""
        name = self.path or "image"
        lines = [f"{name} ({self.width}×{self.height}): {self.verdict}"]
        niqe = f", NIQE {self.niqe:.2f}" if self.niqe is not None else ", NIQE – (smaller than 96 px)"
        lines.append(f"  quality: PIQE {self.piqe:.1f} ({self.piqe_grade}){niqe} (lower is better)")
        exposure = {True: "underexposed", False: "not underexposed", None: "underexposure not judged (no classifier)"}
        if self.mean_luminance is not None:
            lines.append(f"  exposure: mean luminance {self.mean_luminance:.2f}, {exposure[self.underexposed]}")
        if self.noise_sigma is not None:
            quality = (
                f"JPEG quality about {self.jpeg_quality:.0f}"
                if self.jpeg_quality is not None
                else "no JPEG compression found"
            )
            lines.append(f"  severity: noise σ about {self.noise_sigma:.1f} (of 255), {quality}")
        if self.grain is not None:
            lines.append(f"  grain: {self.grain:.1f} of 255 taken out of its flat parts by a denoiser")
        if self.severity:
            lines.append("  estimated severity (0-1): " + ", ".join(f"{k} {v:.2f}" for k, v in self.severity.items()))
        if self.quality_tiers is not None:
            tiers = ", ".join(f"{k} {v:.0%}" for k, v in self.quality_tiers.items())
            lines.append(f"  quality tier: {tiers}")
        if self.degradations is not None:
            items = list(self.degradations.items())
            shown = [(k, v) for k, v in items[:5] if v >= SHOWN_PROBABILITY] or items[:1]
            rest = " (the others under 1%)" if len(shown) < len(items) else ""
            lines.append("  degradations: " + ", ".join(f"{k} {v:.0%}" for k, v in shown) + rest)
        if self.tree_path is not None:
            lines.append("  tree path: " + " → ".join(str(n) for n in self.tree_path))
        return "\n".join(lines)


def piqe_grade(score: float) -> str:
    """The PIQE authors' word for a score: excellent, good, fair, poor or bad."""
    bounds = (20, 35, 50, 80)
    return next((g for g, b in zip(PIQE_GRADES, bounds, strict=False) if score <= b), PIQE_GRADES[-1])


def center_crop(image: Tensor, side: int) -> Tensor:
    """The centre ``side`` × ``side`` crop of ``(..., H, W)`` (the whole of a side that is shorter)."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., top : top + side, left : left + side]


class Inspector:
    """Inspects images with the parts it is given (each optional).

    Args:
        classifier: has ``classify((1, 3, H, W)) -> {type: probability}`` (a MaskDCPT classifier).
        tree: has ``tree_path((1, 3, H, W)) -> [node per level]`` (an AMIRNet backbone).
        perceiver: has ``perceive((1, 3, H, W)) -> {"low": p, "medium": p, "high": p}``.
        device: where the learned parts run.
        denoiser: a restorer (the default model's fine-damage companion) that ``read_grain`` measures the photo's
            grain with: a photo the classifier calls clean that has grain of at least ``GRAIN_FLOOR`` is called
            grainy, as ``uir restore`` treats it.
    """

    def __init__(
        self,
        classifier: Classifier | None = None,
        tree: Any = None,
        perceiver: Perceiver | None = None,
        device: str = "cpu",
        denoiser: Any = None,
    ) -> None:
        self.classifier, self.tree, self.perceiver = classifier, tree, perceiver
        self.device = torch.device(device)
        self.denoiser = denoiser

    @classmethod
    def from_files(
        cls,
        classifier: str | Path | None = None,
        tree: str | Path | None = None,
        perceiver: str | Path | None = None,
        device: str = "cpu",
        denoiser: str | Path | None = None,
    ) -> Inspector:
        """Load the parts from files: a classifier export (or MaskDCPT run), an AMIRNet model, a perceiver, a
        denoiser that measures grain (a restorer name or file).

        ``classifier="default"`` is the calibrated analysis shipped with uir (``classifier-5d``: its bare classifier);
        ``denoiser="default"`` the default model's fine-damage companion (``uir.pretrained.COMPANIONS``); ``None`` or
        ``"none"`` leaves a part out.

        Raises:
            UirError: a file that is not of the kind its argument expects (one line).
        """
        classifier, tree, perceiver = (None if str(p) == "none" else p for p in (classifier, tree, perceiver))
        loaded_classifier = loaded_tree = loaded_perceiver = None
        if classifier is not None:
            from uir.methods import load_classifier  # heavy: the training stack; `import uir.api` stays light

            loaded_classifier = load_classifier(classifier).to(device)
        if tree is not None:
            from uir.restorers import load_restorer  # heavy: cv2 and every restorer; `import uir.api` stays light

            backbone = getattr(load_restorer(str(tree), device=device), "backbone", None)
            if not hasattr(backbone, "tree_path"):
                raise UirError(f"{tree}: not an AMIRNet model (its backbone has no degradation tree)")
            loaded_tree = backbone
        if perceiver is not None:
            loaded_perceiver = _load_perceiver(perceiver, device)
        loaded_denoiser = None
        if denoiser is not None and str(denoiser) != "none":
            from uir.restorers import load_restorer  # heavy: cv2 and every restorer; `import uir.api` stays light

            name = COMPANIONS[DEFAULT_MODEL] if str(denoiser) == "default" else str(denoiser)
            loaded_denoiser = load_restorer(name, device=device)
        return cls(loaded_classifier, loaded_tree, loaded_perceiver, device, loaded_denoiser)

    @torch.no_grad()
    def inspect(self, image: Tensor, path: str | None = None, grain: float | None = None) -> Inspection:
        """Inspect one ``(1, 3, H, W)`` RGB image in [0, 1]; ``grain``: its grain where it was already read with this
        inspector's denoiser (``uir.api.Plan.grain``), which is not read again."""
        from uir.viz import shrink  # heavy: cv2 (through uir.io); `import uir.api` stays light

        if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise UirError(f"expected a (1, 3, H, W) image, got {tuple(image.shape)}")
        height, width = image.shape[-2:]
        small = shrink(image.float().cpu(), SCORE_SIDE)
        piqe_score = float(piqe(small)[0])
        niqe_score = float(niqe(small)[0]) if min(small.shape[-2:]) >= 96 else None
        crop = center_crop(image, CROP_SIDE).to(self.device, torch.float32)
        degradations = tiers = tree_path = estimated = None
        if self.classifier is not None:
            if hasattr(self.classifier, "assess"):
                probs, estimated = self.classifier.assess(crop)
                estimated = {
                    k: round(v, 3) for k, v in estimated.items() if probs.get(k, 0.0) >= SEVERITY_SHOWN
                } or None
            else:
                probs = self.classifier.classify(crop)
            degradations = dict(sorted(probs.items(), key=lambda kv: -kv[1]))
        if self.perceiver is not None:
            tiers = self.perceiver.perceive(crop)
        if self.tree is not None:
            tree_path = [int(n) for n in self.tree.tree_path(crop)]
        sigma, quality = severity(image, path)
        if grain is None and self.denoiser is not None and degradations and next(iter(degradations)) == CLEAN:
            grain = read_grain(self.denoiser, center_crop(image, GRAIN_SIDE).to(self.device, torch.float32))[2]
        verdict = _verdict(piqe_score, degradations, tiers)
        if grain is not None and grain >= GRAIN_FLOOR and verdict.startswith("looks clean"):
            kind = "grainy" if grain <= GRAIN_CEILING else "noisy"
            verdict = f"{kind}: {grain:.1f} of 255 of grain in its flat parts; the analysis alone: {verdict}"
        verdict += _how_badly(verdict, sigma, quality, estimated)
        luminance = _luminance(image)
        dark = None if degradations is None else is_underexposed(degradations, luminance)
        return Inspection(
            path, int(width), int(height), piqe_score, piqe_grade(piqe_score), niqe_score, degradations, tree_path,
            tiers, verdict, luminance, dark, sigma, quality, estimated, grain,
        )  # fmt: skip

    @torch.no_grad()
    def exposure(self, image: Tensor) -> tuple[dict[str, float], float]:
        """The classifier's probabilities for ``(1, 3, H, W)`` and its mean luminance: what ``is_underexposed``
        needs, the cheap part of ``inspect`` that ``uir restore`` runs (no PIQE or NIQE)."""
        if self.classifier is None:
            raise UirError("judging underexposure needs a degradation classifier")
        probs = self.classifier.classify(center_crop(image, CROP_SIDE).to(self.device, torch.float32))
        return probs, _luminance(image)


def severity(image: Tensor, path: str | None = None) -> tuple[float | None, float | None]:
    """Blind estimates of how much damage (``uir.metrics.estimates``, docs/severity.md): the noise σ in 8-bit units
    and the JPEG quality the image was last saved at, on the centre ``ESTIMATE_SIDE`` crop; the quality is read
    from the file's own tables when ``path`` is a JPEG file. ``None`` where the crop is too small (σ) or no JPEG
    compression is found (quality)."""
    crop = center_crop(image, ESTIMATE_SIDE).float().cpu().clamp(0, 1)
    if min(crop.shape[-2:]) < 32:
        return None, None
    sigma = round(float(noise_sigma(crop)[0]), 2)
    quality = None
    if path is not None and Path(path).is_file():
        try:
            quality = jpeg_file_quality(path)
        except (OSError, ValueError):  # a file PIL cannot read: judge from the pixels
            quality = None
    if quality is None:
        found = float(jpeg_quality(crop)[0])
        quality = None if found != found else found  # nan: none found
    return sigma, quality


def _luminance(image: Tensor) -> float:
    """Mean Rec. 601 luma of ``(1, 3, H, W)``, from float32 channel means on the image's own device."""
    return float(mean_luminance(image.float().mean(dim=(2, 3), keepdim=True))[0])


def low_light_probability(probs: dict[str, float]) -> float:
    """The probability that low light is among the damage: summed over the types whose ops include it."""
    return sum(p for name, p in probs.items() if name in TYPES and LOW_LIGHT in TYPES[name].ops)


def is_underexposed(probs: dict[str, float], luminance: float) -> bool:
    """Low light with probability >= ``LOW_LIGHT_CONFIDENCE`` and a mean luminance below ``LOW_LIGHT_MEAN``."""
    return low_light_probability(probs) >= LOW_LIGHT_CONFIDENCE and luminance < LOW_LIGHT_MEAN


JPEG_NOTED = 90
"""Below this estimated JPEG quality the verdict says the photo was saved as JPEG (the default models do not remove
JPEG artifacts: they are outside the five damages they know)."""

SHOWN_PROBABILITY = 0.01
"""The text report lists the types at or above this probability (the rest are named as under 1 %)."""


SEVERITY_SHOWN = 0.2
"""A severity head's estimate is reported only for a type at least this likely: each head was fitted on its own
type's crops, and on other damage its number means nothing (a noisy photo reads as rain 1.0)."""

LOW_LIGHT_STOPS = 5.0
"""The stops of the engine's low light at severity 1: the midpoint of the range it draws from (4.5-5.5)."""


def severity_in_units(name: str, severity: float) -> tuple[str, float] | None:
    """A severity (0-1) of the degradation engine's type ``name`` in physical units, from the engine's own
    samplers: motion blur's trail length (px), low light's stops (the midpoint ``LOW_LIGHT_STOPS``: the engine draws
    the end point in 4.5-5.5), haze's extinction β; ``None`` for the others.

    Example:
        >>> unit, value = severity_in_units("motion-blur", 0.4)
        >>> unit, round(value, 1)
        ('px', 8.9)
    """
    g = torch.Generator().manual_seed(0)
    if name == "motion-blur":
        return "px", sample_motion_blur(severity, g).length
    if name == "low-light":
        return "stops", LOW_LIGHT_STOPS * severity
    if name == "haze":
        return "beta", sample_haze(severity, g).beta
    return None


def describe_severity(name: str, severity: float) -> str:
    """What a severity (0-1) of the engine's type ``name`` means, in words (``severity_in_units``).

    Example:
        >>> describe_severity("motion-blur", 0.4)
        'severity about 0.40 of 1: a blur trail about 9 px long'
    """
    said = f"severity about {severity:.2f} of 1"
    unit = severity_in_units(name, severity)
    if unit is None:
        return said
    words = {
        "px": "a blur trail about {:.0f} px long",
        "stops": "about {:.1f} stops underexposed",
        "beta": "extinction β about {:.1f} (SOTS outdoor about 0.3-0.5)",
    }
    return f"{said}: {words[unit[0]].format(unit[1])}"


def _how_badly(verdict: str, sigma: float | None, quality: float | None, estimated: dict[str, float] | None) -> str:
    """The severity the verdict can add: the noise σ when it names noise as the damage, the estimated severity of
    another type it names that has a severity head, the JPEG quality when the photo was saved below ``JPEG_NOTED``
    (empty otherwise)."""
    said = ""
    named = (
        verdict.removeprefix("looks degraded by ").split(" (")[0] if verdict.startswith("looks degraded by ") else None
    )
    if sigma is not None and named == "noise":
        said += f", noise σ about {sigma:.0f} of 255"
    elif named is not None and estimated and named in estimated:
        said += f", {describe_severity(named, estimated[named])}"
    if quality is not None and quality < JPEG_NOTED:
        said += f"; saved as JPEG at quality about {quality:.0f}"
    return said


def _verdict(piqe_score: float, degradations: dict[str, float] | None, tiers: dict[str, float] | None) -> str:
    """The plain sentence: what the learned parts see, or what PIQE alone can say."""
    if tiers is not None and tiers.get("high", 0.0) >= 0.6:
        return f"looks clean (quality tier high, {tiers['high']:.0%})"
    if degradations:
        (first, p1), *rest = degradations.items()
        if p1 < UNSURE:
            return (
                f"unsure what is wrong (best guess {first}, {p1:.0%}): it may hold a degradation the classifier "
                "does not know"
            )
        also = [f"{name} ({p:.0%})" for name, p in rest[:2] if p >= 0.2]
        if first == CLEAN:
            return f"looks clean ({p1:.0%})" + (f", though maybe {', '.join(also)}" if also else "")
        return f"looks degraded by {first} ({p1:.0%})" + (f", maybe also {', '.join(also)}" if also else "")
    grade = piqe_grade(piqe_score)
    return f"PIQE rates it {grade}; no degradation classifier was given, so the type of damage is not named"


def _load_perceiver(path: str | Path, device: str) -> Perceiver:
    """A quality perceiver from ``export_perceiver``'s file or a perceiver run, on ``device``."""
    from uir.methods.perceiver import load_perceiver  # heavy: the training stack; `import uir.api` stays light

    return load_perceiver(path).to(device)
