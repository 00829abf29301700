"""The public Python API: load a model and restore images given as NumPy arrays, PIL images or tensors.

The command line and every other front-end call this module, never each other's internals. Three lines:

    >>> import uir
    >>> model = uir.load()                                   # the shipped default model, on the CPU
    >>> restored = model.restore(photo)                      # doctest: +SKIP

``restore`` never brightens a photo unless brightening is asked for or the photo is underexposed: ``task="auto"``
(the default) lets the analysis decide (``uir.inspection``: a degradation classifier and the mean luminance);
``task="low-light"`` (or a list of names, ``task=["noise", "jpeg"]``) says what is wrong, and naming only fine
damage (noise, JPEG, lens blur) also keeps the photo's colour balance and large-scale contrast. ``strength`` scales
the correction: ``1`` is the model's full output, ``0.5`` halfway between it and the input, ``0`` the input; ``auto``
(the default) leaves photos that the analysis calls clean with high confidence, and that the model would change
little (or that are dark), as they are and restores the rest fully. See ``Model.plan``.

The default model has a fine-damage companion (``Model.companion``, ``nafnet-fr-fine2``): a photo the model would
change little (``changes_little``) and that does not look clean (real camera grain, most often) goes to it instead,
with its exposure and colour kept (``fine_route``; a strength given as a number then scales the companion's
correction), and so does a photo whose likeliest type is clean where the companion finds grain in its flat parts
(``route``, ``GRAIN_FLOOR``); ``Plan.restored_by`` says which network's output came back.

``restore`` returns what it was given: a NumPy array of the same shape and dtype (uint8, uint16 or float in
[0, 1]; gray ``HxW``, ``HxWx3`` or ``HxWx4`` with the alpha channel kept as it was), a PIL image of the same mode
and size, or a tensor of the same shape, dtype and device. Any size: large images are restored in overlapping
tiles, so memory stays bounded.

Example:
    >>> import numpy as np
    >>> identity = uir.load("identity")                      # a classic baseline: returns its input
    >>> image = np.random.default_rng(0).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    >>> np.array_equal(identity.restore(image), image)
    True
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from uir.degradations import ALL_TYPES, TYPES
from uir.errors import UirError
from uir.inspection import (
    CLEAN,
    CLEAN_CONFIDENCE,
    GRAIN_CEILING,
    GRAIN_FLOOR,
    GRAIN_SIDE,  # noqa: F401  (re-exported: the route's constants are read as uir.api.GRAIN_*)
    LOW_LIGHT,
    LOW_LIGHT_CONFIDENCE,
    LOW_LIGHT_MEAN,
    Inspection,
    Inspector,
    fine_detail,
    is_underexposed,
    low_light_probability,
    read_grain,
)
from uir.restore import apply_strength, guard_tone, restore_tensor

logger = logging.getLogger(__name__)

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image, Tensor)

# PIL modes restored as they are; any other mode (P, CMYK, I;16, F...) comes back as RGB or RGBA.
_PIL_MODES = ("RGB", "RGBA", "L", "LA")

AUTO = "auto"
TASKS = (AUTO, *ALL_TYPES)
"""What ``task`` accepts: ``auto`` (the analysis decides) or one or more degradation type names."""

# The damage finer than the tone guard's 16-px scale, whose repair needs no large-scale change: a task made of these
# ops alone keeps the input's exposure, colour and contrast (``keep``). Motion blur (trajectories up to 35 px) and
# moire (periods up to 40 px) are not among them: keeping the input's large scale would put some of them back.
_FINE_OPS = ("noise", "camera-noise", "jpeg", "gaussian-blur", "defocus-blur", "mosaic", "downsample")

Task = str | Sequence[str]
Strength = float | str


def check_task(task: Task) -> tuple[str, ...]:
    """``task`` as a tuple of valid names: ``("auto",)`` or degradation types (duplicates dropped).

    Raises:
        UirError: an unknown name, an empty list, or ``auto`` mixed with names (one line, listing the valid ones).
    """
    if task is None:
        raise UirError(f"no task given: use auto or one or more of {', '.join(ALL_TYPES)}")
    names = (task,) if isinstance(task, str) else tuple(task)
    names = tuple(dict.fromkeys(str(n).strip() for n in names))
    unknown = [n for n in names if n not in TASKS]
    if unknown or not names:
        said = ", ".join(repr(n) for n in unknown) if unknown else "none"
        raise UirError(f"unknown task {said}: use auto or one or more of {', '.join(ALL_TYPES)}")
    if AUTO in names and len(names) > 1:
        raise UirError(f"task auto cannot be combined with named tasks ({', '.join(n for n in names if n != AUTO)})")
    return names


def check_strength(strength: Strength) -> float | str:
    """``strength`` as ``"auto"`` or a float in [0, 1]; numbers may come as text (``"0.5"``, from a command line).

    Raises:
        UirError: anything else (one line).

    Example:
        >>> check_strength("0.25"), check_strength(1), check_strength(" Auto ")
        (0.25, 1.0, 'auto')
    """
    said = f"strength must be auto or a number from 0 to 1, got {strength!r}"
    if isinstance(strength, str):
        if strength.strip().lower() == AUTO:
            return AUTO
        try:
            value = float(strength)
        except ValueError:
            raise UirError(said) from None
    elif isinstance(strength, numbers.Real) and not isinstance(strength, (bool, np.bool_)):
        value = float(strength)
    else:
        raise UirError(said)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UirError(said)
    return value


@dataclass(frozen=True)
class Plan:
    """What ``Model.restore`` did with one image, and why.

    Attributes:
        task: the task asked for (``auto`` or the names).
        tone: the tone guard's policy (``uir.restore.TONE_POLICIES``): ``free`` lets the model brighten,
            ``no-brightening`` lets it darken only (haze, rain), ``keep`` keeps the input's large-scale tone and
            colour (noise, blur, JPEG: only finer detail changes).
        reason: one sentence for people.
        low_light: the analysis' probability of low light (``None`` when no analysis ran).
        mean_luminance: the input's mean luminance, when the analysis ran.
        hint: the task told to restorers that need one (``classic-best``): the named task when there is one, under
            ``auto`` the classifier's likeliest type (``clean`` when it sees nothing wrong).
        strength: how much of the correction was applied (``uir.restore.apply_strength``): 1 all of it, 0 none
            (the input comes back unchanged; with a strength of 0 asked for, the model does not run).
        clean: the analysis' probability that the photo is clean (``None`` when no analysis ran).
        restored_by: the network whose output came back: the model's, or its fine-damage companion's (see
            ``Model.companion``); ``None`` when the input came back (a strength of 0 asked for, or a clean-looking
            photo left as it is).
        grain: the grain the companion found in the photo's flat parts (``uir.metrics.estimates.residual_grain``,
            8-bit units, on the centre ``GRAIN_SIDE`` crop), where it ran; ``None`` otherwise, and for photos of 16
            pixels a side or less.
    """

    task: tuple[str, ...]
    tone: str
    reason: str
    low_light: float | None = None
    mean_luminance: float | None = None
    hint: str | None = None
    strength: float = 1.0
    clean: float | None = None
    restored_by: str | None = None
    grain: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "task": list(self.task)}


def plan_for_tasks(names: Sequence[str]) -> Plan:
    """The plan for named tasks: ``free`` if one of them holds low light, ``keep`` if all their ops are fine damage
    (noise, JPEG, lens blur, mosaic: ``_FINE_OPS``), ``no-brightening`` otherwise (haze, rain, snow, motion blur,
    moire: their repair may darken or change large scales)."""
    ops = {op for name in names for op in TYPES[name].ops}
    hint = names[0] if len(names) == 1 else None
    if LOW_LIGHT in ops:
        return Plan(tuple(names), "free", "low-light enhancement asked for: brightening allowed", hint=hint)
    if ops <= set(_FINE_OPS):
        return Plan(tuple(names), "keep", "only fine damage named: exposure, colour and contrast kept", hint=hint)
    return Plan(
        tuple(names), "no-brightening", "no low light asked for: the exposure is kept (darker allowed)", hint=hint
    )


class Model:
    """A loaded restorer behind one interface, whatever it is (a shipped or trained network, a classic baseline).

    Args:
        restorer: a ``uir.restorers.Restorer`` (``restore((B, 3, H, W)) -> (B, 3, H, W)``).
        device: where its tensors go.
        companion: a second ``Restorer`` for fine damage (``load`` attaches the shipped one to ``default``): a photo
            the model changes little (``changes_little``), under a task that allows it (``fine_route``), is restored by
            the companion instead, except one that strength ``auto`` leaves as it is (it looks clean, and the
            companion finds no grain of ``GRAIN_FLOOR``-``GRAIN_CEILING`` in it); under ``task="auto"`` a photo whose
            likeliest type is clean goes to it where it finds such grain (``route``).

    Attributes:
        name: the model's name (``nafnet-fr-v2.1`` for ``default``).
        labels: the degradation types it was trained on (empty for classic baselines).
        device: the torch device it runs on.
        companion: the fine-damage companion, or ``None``.
    """

    def __init__(self, restorer: Any, device: str | torch.device = "cpu", companion: Any = None) -> None:
        self.restorer = restorer
        self.device = torch.device(device)
        self.name: str = getattr(restorer, "name", type(restorer).__name__)
        self.labels: list[str] = list(getattr(restorer, "labels", []))
        self.analysis: Inspector | None = None  # loaded on the first task="auto" (the shipped analysis)
        self.companion = companion

    def __repr__(self) -> str:
        said = "" if self.companion is None else f", companion={self.companion.name!r}"
        return f"uir.Model(name={self.name!r}, device={str(self.device)!r}{said})"

    def restore_tensor(
        self,
        image: Tensor,
        *,
        task: Task = AUTO,
        strength: Strength = AUTO,
        tile: int | None = None,
        overlap: int = 32,
        stop_check: Callable[[], object] | None = None,
    ) -> Tensor:
        """Restore ``(B, 3, H, W)`` float in [0, 1], image by image, tiled when large; same shape, dtype, device.

        Args:
            task: ``auto`` (the analysis decides whether brightening is allowed), or the degradation names that
                are wrong with the images (``uir.api.TASKS``); see ``plan``.
            strength: how much of the correction to apply, 0-1, or ``auto``; see ``plan``.
            tile: the tile side; default the model's own (``0``: whole images).
            overlap: pixels shared by neighbouring tiles, blended.
            stop_check: called before every tile; it raises to stop the work (``uir serve``'s time limit).
        """
        return torch.cat(
            [
                r
                for r, _ in self.restore_planned(
                    image, task=task, strength=strength, tile=tile, overlap=overlap, stop_check=stop_check
                )
            ]
        ).to(image.device, image.dtype)

    def restore_planned(
        self,
        image: Tensor,
        *,
        task: Task = AUTO,
        strength: Strength = AUTO,
        tile: int | None = None,
        overlap: int = 32,
        stop_check: Callable[[], object] | None = None,
    ) -> list[tuple[Tensor, Plan]]:
        """Like ``restore_tensor``, but per image the restored ``(1, 3, H, W)`` (on the model's device) and its
        ``Plan``: what was done and why (``uir restore --report`` writes it)."""
        _check_tensor(image)
        names, strength = check_task(task), check_strength(strength)
        results = []
        for i in range(image.shape[0]):
            one = image[i : i + 1].to(self.device, torch.float32)
            plan = self.plan(one, names, strength)
            if plan.strength == 0.0 and strength != AUTO:
                results.append((one.clone(), plan))
                continue
            hint = None if plan.hint is None else [plan.hint]
            restored = restore_tensor(self.restorer, one, tasks=hint, tile=tile, overlap=overlap, stop_check=stop_check)
            restored = guard_tone(restored, one, plan.tone)
            change = change_db(restored, one)
            plan = dataclasses.replace(plan, restored_by=self.name)
            fine = None
            if self.companion is not None and runs_companion(plan, change):
                kwargs = {"tile": tile, "overlap": overlap, "stop_check": stop_check}
                probe, fine, grain = read_grain(self.companion, one, **kwargs)  # on the centre: bounded time
                plan = route(dataclasses.replace(plan, grain=grain), change, self.companion.name)
                if plan.restored_by == self.companion.name and probe.shape != one.shape:
                    fine = fine_detail(self.companion, one, **kwargs)
            else:
                plan = route(plan, change, None)
            if plan.restored_by is None:
                restored = one.clone()
            elif fine is not None and plan.restored_by == self.companion.name:
                restored = fine
            results.append((apply_strength(restored, one, plan.strength), plan))
        return results

    def as_restorer(self, task: Task = AUTO, strength: Strength = AUTO) -> PipelineRestorer:
        """This model as ``uir restore`` runs it (tone guard, strength and analysis included), behind the
        ``Restorer`` interface that ``uir eval`` scores: ``uir eval --task auto`` compares the pipeline with the bare
        network."""
        return PipelineRestorer(self, check_task(task), check_strength(strength))

    def plan(self, image: Tensor, task: Task = AUTO, strength: Strength = AUTO) -> Plan:
        """What restoring ``(1, 3, H, W)`` with ``task`` and ``strength`` will do.

        Tone: with named tasks, ``plan_for_tasks``; with ``auto``, brightening is allowed only where the analysis
        calls the photo underexposed (``uir.inspection.is_underexposed``), and darkening always (haze, rain).

        Strength: a number is applied as given. ``auto`` with ``task="auto"`` leaves the photo as it is where the
        analysis calls it clean with probability >= ``uir.inspection.CLEAN_CONFIDENCE`` (and it is not
        underexposed) *and* the model would change it little (its output at least ``SMALL_CHANGE_DB`` from its input)
        or it is dark (``DARK_CLEAN_MEAN``): ``restore_planned`` checks this after running it, so the plan's strength
        0 is provisional there, and the companion's grain too (``route``); it applies the full correction otherwise,
        and with named tasks (the user says the photo is damaged).
        """
        names, strength = check_task(task), check_strength(strength)
        plan = self._tone_plan(image, names)
        if strength != AUTO:
            said = f"strength {strength:g} as asked"
            return dataclasses.replace(plan, strength=strength, reason=f"{plan.reason}; {said}")
        if looks_clean(plan):
            said = f"looks clean ({plan.clean:.0%} >= {CLEAN_CONFIDENCE:.0%})"
            return dataclasses.replace(plan, strength=0.0, reason=f"{plan.reason}; {said}")
        return plan

    def _tone_plan(self, image: Tensor, names: tuple[str, ...]) -> Plan:
        if names != (AUTO,):
            return plan_for_tasks(names)
        if self.analysis is None:
            self.analysis = _inspector("default", None, None, str(self.device))
        probs, luminance = self.analysis.exposure(image)
        low = low_light_probability(probs)
        hint = max(probs, key=probs.get) if probs else CLEAN
        figures = {
            "low_light": round(low, 4),
            "mean_luminance": round(luminance, 4),
            "hint": hint,
            "clean": round(probs[CLEAN], 4) if CLEAN in probs else None,
        }
        said = f"low light {low:.0%}, mean luminance {luminance:.2f}"
        if is_underexposed(probs, luminance):
            return Plan(names, "free", f"underexposed ({said}): brightening allowed", **figures)
        if low < LOW_LIGHT_CONFIDENCE:
            why = f"not underexposed: low light below {LOW_LIGHT_CONFIDENCE:.0%} ({said})"
        else:
            why = f"not underexposed: bright enough, mean luminance at or above {LOW_LIGHT_MEAN} ({said})"
        return Plan(names, "no-brightening", f"{why}; the exposure is kept (darker allowed)", **figures)

    def restore(
        self,
        image: ImageLike,
        *,
        task: Task = AUTO,
        strength: Strength = AUTO,
        tile: int | None = None,
        overlap: int = 32,
    ) -> ImageLike:
        """Restore a NumPy array, a PIL image or a tensor; the result has the input's type, shape and dtype.

        Args:
            image: ``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4`` array (uint8, uint16, or float in [0, 1]); a PIL
                image; or a ``(3, H, W)`` / ``(B, 3, H, W)`` float tensor in [0, 1].
            task: ``auto`` (the default: the analysis decides whether the photo may be brightened), or what is
                wrong with it, one name or several (``"low-light"``, ``["noise", "jpeg"]``; ``uir.api.TASKS``).
            strength: how much of the correction to apply: 0-1 (``0.5``: halfway between the input and the model's
                output), or ``auto`` (the default: photos the analysis calls clean with high confidence, and that
                the model would change little or that are dark, are left as they are, unless the companion finds
                grain in them; the rest restored fully).
            tile: the tile side; default the model's own (``0``: the whole image at once).
            overlap: pixels shared by neighbouring tiles.

        Raises:
            UirError: an input of another type or shape, non-finite values, an unknown task or a strength out of
                range.
        """
        check_task(task)
        check_strength(strength)
        if isinstance(image, Tensor):
            batch = image if image.ndim == 4 else image[None] if image.ndim == 3 else None
            if batch is None:
                raise UirError(f"expected a (3, H, W) or (B, 3, H, W) tensor, got shape {tuple(image.shape)}")
            restored = self.restore_tensor(batch, task=task, strength=strength, tile=tile, overlap=overlap)
            return restored if image.ndim == 4 else restored[0]
        if isinstance(image, Image.Image):
            return self._restore_pil(image, task, strength, tile, overlap)
        if isinstance(image, np.ndarray):
            return self._restore_array(image, task, strength, tile, overlap)
        raise UirError(f"expected a NumPy array, a PIL image or a torch tensor, got {type(image).__name__}")

    def _restore_array(
        self, array: np.ndarray, task: Task, strength: Strength, tile: int | None, overlap: int
    ) -> np.ndarray:
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
            raise UirError(f"expected an HxW, HxWx1, HxWx2, HxWx3 or HxWx4 array, got shape {array.shape}")
        if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
            raise UirError(f"expected a uint8, uint16 or float array, got {array.dtype}")
        if array.size == 0:
            raise UirError(f"the array is empty (shape {array.shape})")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise UirError("the array holds NaN or infinite values")
        planes = array[..., None] if array.ndim == 2 else array
        gray = planes.shape[2] in (1, 2)
        color = planes[..., :1] if gray else planes[..., :3]
        alpha = planes[..., -1:] if planes.shape[2] in (2, 4) else None
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
        x = torch.from_numpy(np.ascontiguousarray(color, dtype=np.float32) / np.float32(scale))
        rgb = x.permute(2, 0, 1)[None].expand(1, 3, -1, -1).clamp(0, 1).contiguous()
        restored = self.restore_tensor(rgb, task=task, strength=strength, tile=tile, overlap=overlap)
        if gray:
            restored = restored.mean(dim=1, keepdim=True)  # a gray input was restored as equal R, G, B
        out = restored[0].permute(1, 2, 0).numpy()
        out = np.round(np.clip(out, 0, 1) * scale).astype(array.dtype) if scale != 1.0 else out.astype(array.dtype)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=2)
        return out[..., 0] if array.ndim == 2 else out

    def _restore_pil(
        self, pil: Image.Image, task: Task, strength: Strength, tile: int | None, overlap: int
    ) -> Image.Image:
        mode = pil.mode if pil.mode in _PIL_MODES else ("RGBA" if "A" in pil.getbands() else "RGB")
        restored = self._restore_array(np.asarray(pil.convert(mode)), task, strength, tile, overlap)
        return Image.fromarray(restored, mode)


SMALL_CHANGE_DB = 35.0
"""``--strength auto`` leaves a clean-looking photo as it is when the model's output is at least this close to
its input (PSNR, dB; an RMS change under 1.8 % of the range): the analysis is sometimes confidently wrong on faint
damage (uir-5d's haze at severity 0.25: 16 of 34 called clean at >= 0.7), and those are the photos the model changes
most. With it, uir-5d loses at most 0.08 dB to the gate (Rain100L), without it 1.96 on haze; at 30 dB, the value
before nafnet-fr-v2.1, haze lost 0.14 at the 0.9 gate, and 33-36 dB leave clean photos and JPEGs as 30 did
(``python benchmarks/strength_gate.py --data-root ../shared/data --thresholds 0.5 0.7 0.9 --min-change 0 35`` and
``--thresholds 0.9 --min-change 30 33 36 40``, docs/severity.md)."""


BLUR_SMALL_CHANGE_DB = 30.0
"""Under ``task="auto"``, what counts as a small change (``changes_little``) for a photo whose likeliest type is motion
blur (``BLUR_HINTS``): the model's deblurring changes a photo by little whatever its blur, and gains little from it,
while on a soft real photo that the analysis calls motion-blurred it sharpens the grain. CBSD68 with motion blur at
severity 0.25-0.85 (uir-5d's 0.4 among them): the model's change is 31.5 dB or more from the input on every photo,
its gain over the input 0.08-0.20 dB on average (at most 0.45 on a photo it changes by less than 35 dB); PolyU's
soft, dim crops called motion-blurred that it changes by 30.8-34.0 dB lose 4.1-4.9 dB with it and gain 0.2-0.9 with
the companion (measured with the companion before ``nafnet-fr-fine2``, ``make runs/nafnet-fr-fine.safetensors``:
``python benchmarks/fine_companion.py --data-root ../shared/data --companion runs/nafnet-fr-fine.safetensors
--look-from 0 --protocols uir-5d --synthetic motion-blur 0.25 --synthetic motion-blur 0.55 --synthetic motion-blur
0.7 --synthetic motion-blur 0.85 --per-image runs/fc-mb.csv``, then ``--weigh runs/fc-mb.csv``;
docs/models/nafnet-fr-fine.md)."""


BLUR_HINTS = ("motion-blur",)
"""Likeliest types (``Plan.hint``) held to ``BLUR_SMALL_CHANGE_DB`` instead of ``SMALL_CHANGE_DB``."""


def looks_clean(plan: Plan, confidence: float = CLEAN_CONFIDENCE) -> bool:
    """Whether strength ``auto`` takes the photo for clean: the analysis calls it clean with probability at least
    ``confidence`` (``CLEAN_CONFIDENCE``; another only to weigh the gate, benchmarks/fine_companion.py) and it is not
    underexposed (tone ``free``)."""
    return plan.clean is not None and plan.clean >= confidence and plan.tone != "free"


def changes_little(plan: Plan, change: float) -> bool:
    """Whether the model's ``change`` from the input (PSNR, dB) is small enough for its fine-damage companion to take
    the photo instead (``route``'s third rule): ``SMALL_CHANGE_DB``, or ``BLUR_SMALL_CHANGE_DB`` where, under
    ``task="auto"``, the photo's likeliest type is motion blur (``BLUR_HINTS``).

    Example:
        >>> blurred = Plan(("auto",), "no-brightening", "", hint="motion-blur")
        >>> changes_little(blurred, 32.0), changes_little(dataclasses.replace(blurred, hint="haze"), 32.0)
        (True, False)
    """
    blurred = plan.task == (AUTO,) and plan.hint in BLUR_HINTS
    return change >= (BLUR_SMALL_CHANGE_DB if blurred else SMALL_CHANGE_DB)


def runs_companion(plan: Plan, change: float) -> bool:
    """Whether ``Model.restore_planned`` runs the companion on a photo the model changed by ``change`` (PSNR, dB):
    where ``fine_route`` allows it and the model changes it little (``changes_little``) or, under ``task="auto"``,
    its likeliest type is clean (to read its grain)."""
    return fine_route(plan) and (changes_little(plan, change) or plan.hint == CLEAN)


COMPANION_TASKS = ("noise", "camera-noise", "jpeg")
"""Named tasks whose photos may go to the companion (``fine_route``): the damage it was trained on."""

FINE_ROUTE_KEEPS = ("rain-streaks",)
"""Under ``task="auto"``, photos whose likeliest type (``Plan.hint``) is one of these stay with the model however
little it changes them: light rain is what it changes little and the companion does not remove."""


def fine_route(plan: Plan) -> bool:
    """Whether a photo that the model changes little (``changes_little``) goes to the model's fine-damage companion:
    under ``task="auto"`` unless it looks underexposed (tone ``free``) or its likeliest type is in
    ``FINE_ROUTE_KEEPS``; with named tasks, when every one is in ``COMPANION_TASKS``. Under ``task="auto"`` the
    companion also runs on a photo whose likeliest type is clean, however the model changes it, to measure its grain.
    Who restores it is then ``route``'s decision (a photo that looks clean and has no grain is left as it is).

    Example:
        >>> fine_route(Plan(("auto",), "no-brightening", "", hint="clean")), fine_route(plan_for_tasks(["haze"]))
        (True, False)
    """
    if plan.task == (AUTO,):
        return plan.tone != "free" and plan.hint not in FINE_ROUTE_KEEPS
    return set(plan.task) <= set(COMPANION_TASKS)


def change_db(restored: Tensor, source: Tensor) -> float:
    """How far ``restored`` is from ``source``: their PSNR in dB (``inf`` when equal)."""
    mse = float((restored.float() - source.float()).square().mean())
    return 10 * math.log10(1 / mse) if mse > 0 else math.inf


DARK_CLEAN_MEAN = 0.35
"""Under strength ``auto`` a photo that looks clean and is this dark (mean luminance) is left as it is even when the
model would change it much: the model takes a dark clean photo for a hazy one (CBSD68 at 0.6× exposure in sRGB: 11 of
68 called clean at 0.81-1.00 and changed by 31.5-34.6 dB, mean luminance 0.20-0.30), while the faint haze that the
``SMALL_CHANGE_DB`` gate protects brightens a photo (uir-5d's haze photos that look clean and that the model changes
much: 13, mean luminance 0.40-0.57, gaining 2.2-8.0 dB; SOTS' 7 hazy photos, none called clean, 0.52-0.74: ``uir
inspect ../shared/data/dehaze/SOTS_*/lq --json``, each ``mean_luminance``). A dark photo with grain (``GRAIN_FLOOR``
or more) is restored as before: RNI15's dark noisy photos look clean too. ``python
benchmarks/fine_companion.py --data-root ../shared/data --companion nafnet-fr-fine2 --look-from 0 --pairs
runs/dark-srgb/x0.6/lq runs/dark-srgb/x0.6/gt --per-image runs/fc.csv``, then ``--weigh runs/fc.csv``: per set, the
photos that look clean and that the model changes much, and the route with this rule."""


def grainy_clean(plan: Plan) -> bool:
    """``route``'s first rule: the likeliest type is clean and the companion found grain of ``GRAIN_FLOOR``-
    ``GRAIN_CEILING`` in the photo's flat parts."""
    return plan.hint == CLEAN and plan.grain is not None and GRAIN_FLOOR <= plan.grain <= GRAIN_CEILING


def route(plan: Plan, change: float, companion: str | None) -> Plan:
    """Whose output comes back, given the model's ``change`` from the input (PSNR, dB) and ``plan.grain`` (set where
    the companion ran; ``companion`` is its name, ``None`` where it did not run): the returned plan's ``restored_by``
    (``None``: the input, left as it is) with its reason, strength and tone.

    1. The likeliest type is clean and the companion found grain of ``GRAIN_FLOOR``-``GRAIN_CEILING``: the
       companion's (a photo that looks clean but carries grain).
    2. A provisional strength 0 (strength ``auto``, the photo looks clean): the input if the model changes it
       little (``SMALL_CHANGE_DB``), or if the photo is dark (mean luminance under ``DARK_CLEAN_MEAN``) and the
       companion found no grain (under ``GRAIN_FLOOR``, or it did not run); else the model's at full strength.
    3. The model changes it little (``changes_little``: ``SMALL_CHANGE_DB``, ``BLUR_SMALL_CHANGE_DB`` for a photo
       whose likeliest type is motion blur) and the companion ran: the companion's (``fine_route``: fine damage).
    4. Otherwise the model's.

    Example:
        >>> plan = Plan(("auto",), "keep", "looks clean", hint="clean", strength=0.0, grain=2.4)
        >>> route(plan, 44.0, "nafnet-fr-fine2").restored_by, route(plan, 44.0, "nafnet-fr-fine2").strength
        ('nafnet-fr-fine2', 1.0)
        >>> route(dataclasses.replace(plan, grain=0.6), 44.0, "nafnet-fr-fine2").restored_by is None
        True
    """
    fine = f"its fine damage (grain, compression) goes to {companion}, exposure and colour kept"
    if companion is not None and grainy_clean(plan):
        said = f"{plan.reason}, but {companion} finds grain in its flat parts ({plan.grain:.1f} of 255): {fine}"
        strength = 1.0 if plan.strength == 0.0 else plan.strength
        return dataclasses.replace(plan, tone="keep", reason=said, restored_by=companion, strength=strength)
    if plan.strength == 0.0:
        if change >= SMALL_CHANGE_DB:
            said = f"{plan.reason} and the model would change it little ({change:.1f} dB from the input): left as it is"
            return dataclasses.replace(plan, reason=said, restored_by=None)
        dark = plan.mean_luminance is not None and plan.mean_luminance < DARK_CLEAN_MEAN
        if dark and (plan.grain is None or plan.grain < GRAIN_FLOOR):  # a dark noisy one is restored
            said = (
                f"{plan.reason} and dark (mean luminance {plan.mean_luminance:.3f}): the model's change "
                f"({change:.1f} dB from the input) would take a dark photo for a hazy one; left as it is"
            )
            return dataclasses.replace(plan, reason=said, restored_by=None)
        said = f"{plan.reason}, but the model changes it much ({change:.1f} dB from the input): restored"
        return dataclasses.replace(plan, strength=1.0, reason=said)
    if companion is not None and changes_little(plan, change):
        model = plan.restored_by or "the model"
        said = f"{plan.reason}; {model} would change it little ({change:.1f} dB from the input): {fine}"
        return dataclasses.replace(plan, tone="keep", reason=said, restored_by=companion)
    return plan


class PipelineRestorer:
    """A ``Model`` with a fixed ``task`` and ``strength`` as a ``Restorer`` (``restore(lq, tasks) -> restored``);
    its name says them, e.g. ``nafnet-fr-v2.1 + nafnet-fr-fine2 [auto]`` (the model and its companion) or
    ``nafnet-fr-v2.1 + nafnet-fr-fine2 [noise, strength 0.5]`` (an ``auto`` strength goes unsaid). The benchmark's
    task labels are not passed on: the task decides."""

    def __init__(self, model: Model, task: tuple[str, ...], strength: float | str = AUTO) -> None:
        self.model, self.task, self.strength = model, task, strength
        said = "" if strength == AUTO else f", strength {strength:g}"
        pair = model.name if model.companion is None else f"{model.name} + {model.companion.name}"
        self.name = f"{pair} [{' '.join(task)}{said}]"

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        return self.model.restore_tensor(lq, task=self.task, strength=self.strength)


ENGINES = ("torch", "onnx", "auto")
"""What runs a learned model: torch, or onnxruntime on an ONNX export of it (``pip install 'uir[onnx]'``)."""


def load(model: str = "default", device: str = "cpu", engine: str = "torch", companion: str | None = AUTO) -> Model:
    """Load a model by name (``default``, a shipped model, a classic baseline) or from a file.

    Args:
        model: a registered name (``uir eval --list``) or a ``.safetensors`` / ``.ckpt`` / ``.onnx`` path.
        device: ``cpu``, ``cuda``, ``cuda:1``...
        engine: ``torch``; ``onnx``: run a learned model with onnxruntime, exported on first use into the
            cache (``$UIR_CACHE``, default ``~/.cache/uir``; see ``uir.export``); ``auto``: onnxruntime where it
            suits (a learned model on the CPU with the onnx extra installed, ``uir.export.prefers_onnx``), torch
            otherwise or if the export fails (with a warning). ``.onnx`` files always run with onnxruntime.
        companion: the fine-damage companion (``Model.companion``, run by the same engine): ``auto`` the one shipped
            for ``model`` when ``model`` is a shipped name (``uir.pretrained.COMPANIONS``: ``default`` and
            ``nafnet-fr-v2.1`` have one), ``None`` (or ``"none"``) none, or a name or model file.

    Raises:
        UirError: an unknown name or a file uir cannot load (one line, naming the valid names); ``engine="onnx"``
            for a classic baseline, or without the onnx extra.

    Example:
        >>> fast = uir.load("default", engine="onnx")  # doctest: +SKIP
        >>> fast.restore(photo)  # doctest: +SKIP
    """
    from uir.restorers import load_restorer  # heavy: cv2 and every restorer, loaded by the first load()

    if engine not in ENGINES:
        raise UirError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        from uir.export import prefers_onnx  # heavy: the restorer catalog and the exporter

        if not prefers_onnx(model, device):
            return load(model, device, "torch", companion)
        try:
            return load(model, device, "onnx", companion)
        except UirError as err:
            logger.warning("onnxruntime cannot run %s (%s); using torch", model, err)
            return load(model, device, "torch", companion)
    spec = _companion_spec(model, companion)
    if engine == "onnx":
        from uir.export import load_onnx_engine  # heavy: the restorer catalog and the exporter

        main = load_onnx_engine(model, device=device)
        return Model(main, "cpu", None if spec is None else load_onnx_engine(spec, device=device))
    main = load_restorer(model, device=device)
    return Model(main, device, None if spec is None else load_restorer(spec, device=device))


def _companion_spec(model: str, companion: str | None) -> str | None:
    """What ``load``'s ``companion`` names for ``model``: a name or file, or ``None``."""
    from uir.pretrained import ALIASES, COMPANIONS  # heavy: torch models and the shipped catalog

    if companion is None or companion == "none":
        return None
    if companion == AUTO:
        return COMPANIONS.get(ALIASES.get(model, model))
    return companion


def inspect_image(
    image: ImageLike,
    *,
    classifier: str | Path | None = "default",
    tree: str | Path | None = None,
    perceiver: str | Path | None = None,
    device: str = "cpu",
    denoiser: str | Path | None = "default",
) -> Inspection:
    """What is wrong with an image (NumPy array, PIL image or ``(1, 3, H, W)`` tensor): see ``uir.inspection``.

    Args:
        classifier: a classifier or calibrated analysis file (degradation types with probabilities);
            ``"default"`` is the analysis shipped with uir, ``"classifier-5d"`` its bare classifier, ``None`` none.
        tree: an AMIRNet model file (the image's path through its tree).
        perceiver: a quality perceiver file (the probabilities of the low, medium and high tiers).
        denoiser: the network that measures the grain of a photo the classifier calls clean (``Inspection.grain``;
            ``"default"``: the default model's fine-damage companion, as ``Model.restore`` measures it; ``None``:
            not measured).

    Returns:
        An ``Inspection``: PIQE (and its grade), NIQE, what the given parts see, and a plain verdict.

    Example:
        >>> import uir
        >>> report = uir.inspect_image(np.zeros((128, 128, 3), np.uint8))
        >>> report.piqe_grade
        'bad'
    """
    if isinstance(image, Tensor):
        tensor = image[None] if image.ndim == 3 else image
    elif isinstance(image, (np.ndarray, Image.Image)):
        tensor = _to_rgb_tensor(image)
    else:
        raise UirError(f"expected a NumPy array, a PIL image or a torch tensor, got {type(image).__name__}")
    return _inspector(classifier, tree, perceiver, device, denoiser).inspect(tensor.float())


@functools.lru_cache(maxsize=4)
def _inspector(
    classifier: str | Path | None,
    tree: str | Path | None,
    perceiver: str | Path | None,
    device: str,
    denoiser: str | Path | None = None,
) -> Any:
    """The ``Inspector`` for these parts, loaded once and kept (the last few), so repeated calls do not reload them."""
    return Inspector.from_files(classifier, tree, perceiver, device=device, denoiser=denoiser)


def _to_rgb_tensor(image: np.ndarray | Image.Image) -> Tensor:
    """``(1, 3, H, W)`` float in [0, 1] from an array or PIL image (alpha dropped, gray repeated)."""
    from uir import io  # heavy: cv2; `import uir.api` stays light

    try:
        return io.to_tensor(image)
    except (ValueError, TypeError) as err:
        raise UirError(f"cannot read the image: {err}") from err


def restore_image(image: ImageLike, model: str | Model = "default", **kwargs: Any) -> ImageLike:
    """Restore one image with ``model`` (a name, a path or a loaded ``Model``); see ``Model.restore``."""
    return (model if isinstance(model, Model) else load(model)).restore(image, **kwargs)


def _check_tensor(image: Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise UirError(f"expected a (B, 3, H, W) float tensor in [0, 1], got {tuple(image.shape)} {image.dtype}")
    if image.numel() == 0:
        raise UirError(f"the tensor is empty (shape {tuple(image.shape)})")
    if not torch.isfinite(image).all():
        raise UirError("the tensor holds NaN or infinite values")
