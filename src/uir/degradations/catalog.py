"""The 19 labelled types of the UIR-2.5M degradation space (14 single, 5 mixed), and named mixes of them.

The order of ``TYPES`` is the label order: a model's class index is the position of its type name in the
list it was trained with (stored in its checkpoint), never a number fixed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from uir.degradations import blur, camera, compression, light, noise, weather  # noqa: F401  (registers ops)
from uir.degradations.base import (
    TYPES,
    DegradationRecord,
    DegradationType,
    draw,
    get_type,
    new_seed,
    register_type,
    uniform,
)
from uir.errors import UirError

_SINGLE = (
    ("noise", "noise", ("noise",), "synthetic Gaussian, Poisson or salt-and-pepper noise"),
    ("camera-noise", "noise", ("camera-noise",), "real camera noise: shot + read noise on the Bayer raw"),
    ("motion-blur", "blur", ("motion-blur",), "camera shake along a random trajectory"),
    ("defocus-blur", "blur", ("defocus-blur",), "out of focus: a disk kernel"),
    (
        "gaussian-blur",
        "blur",
        ("gaussian-blur",),
        "isotropic/anisotropic/generalized/plateau Gaussian or sinc kernel",
    ),
    ("jpeg", "compression", ("jpeg",), "JPEG compression through a real encoder"),
    ("haze", "weather", ("haze",), "haze by the scattering model on a pseudo-depth"),
    ("rain-streaks", "weather", ("rain-streaks",), "thin bright oriented rain streaks"),
    ("raindrops", "weather", ("raindrops",), "raindrops on the lens or window, refracting the scene"),
    (
        "rain-streaks-raindrops",
        "weather",
        ("rain-streaks", "raindrops"),
        "rain streaks and raindrops together",
    ),
    ("snow", "weather", ("snow",), "falling snow in layers with a veil"),
    ("mosaic", "camera", ("mosaic",), "Bayer colour filter array, then demosaicing"),
    ("low-light", "light", ("low-light",), "under-exposure in linear light with shot and read noise"),
    ("moire", "camera", ("moire",), "moire fringes, as when photographing a screen"),
)

# (name, ops in order, per-op severity scales, summary). The scales keep the mixture at s = 1 within reach:
# noise after under-exposure is amplified by the exposure, so it enters at part strength.
_MIXED = (
    ("blur-jpeg", ("gaussian-blur", "jpeg"), (1.0, 0.8), "blur, then JPEG"),
    ("blur-rain", ("gaussian-blur", "rain-streaks"), (0.8, 1.0), "blur, then rain streaks"),
    (
        "lowlight-blur-noise",
        ("motion-blur", "low-light", "noise"),
        (0.7, 0.9, 0.35),
        "camera shake, under-exposure, noise",
    ),
    (
        "lowlight-haze-rain-snow",
        ("haze", "rain-streaks", "snow", "low-light"),
        (0.6, 0.8, 0.8, 0.7),
        "a dark, hazy, rainy, snowy scene",
    ),
    (
        "downsample-noise-blur-jpeg",
        ("gaussian-blur", "downsample", "noise", "jpeg"),
        (0.8, 0.8, 0.5, 0.8),
        "blur, downsampling, noise, JPEG",
    ),
)

for _name, _family, _ops, _summary in _SINGLE:
    register_type(DegradationType(name=_name, family=_family, ops=_ops, summary=_summary))
for _name, _ops, _scales, _summary in _MIXED:
    register_type(DegradationType(name=_name, family="mixed", ops=_ops, summary=_summary, scales=_scales))

SINGLE_TYPES: tuple[str, ...] = tuple(t for t in TYPES if not TYPES[t].mixed)
MIXED_TYPES: tuple[str, ...] = tuple(t for t in TYPES if TYPES[t].mixed)
ALL_TYPES: tuple[str, ...] = tuple(TYPES)


@dataclass(frozen=True)
class Mix:
    """A distribution over degradation types and severities, for ``-t random`` and synthetic training data.

    Attributes:
        name: registry key.
        weights: type name → relative weight.
        severity: the range severities are drawn from, uniformly.
        overrides: per type, per op, fixed parameter values (see ``uir.degradations.draw``).
    """

    name: str
    weights: Mapping[str, float]
    severity: tuple[float, float] = (0.1, 1.0)
    overrides: Mapping[str, Mapping[str, Mapping[str, object]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in self.weights:
            get_type(t)
        lo, hi = self.severity
        if not 0.0 <= lo <= hi <= 1.0:
            raise UirError(f"mix {self.name!r}: severity range must satisfy 0 <= low <= high <= 1, got {self.severity}")

    def draw(self, generator: torch.Generator) -> DegradationRecord:
        """Draw one degradation (type, severity, seed, parameters) from a CPU generator; apply it with ``apply``."""
        names = list(self.weights)
        w = torch.tensor([float(self.weights[n]) for n in names], dtype=torch.float64)
        kind = names[int(torch.multinomial(w, 1, generator=generator).item())]
        severity = round(uniform(generator, *self.severity), 4)
        return draw(kind, severity, new_seed(generator), self.overrides.get(kind))


def _uniform(names: Sequence[str]) -> dict[str, float]:
    return dict.fromkeys(names, 1.0)


# The field's 5-task mix, synthesized: Gaussian noise, haze, rain, motion blur, low light.
_GAUSSIAN_ONLY = {"noise": {"noise": {"kind": "gaussian", "gray": 0}}}

MIXES: dict[str, Mix] = {
    m.name: m
    for m in (
        Mix("all", _uniform(ALL_TYPES)),
        Mix("single", _uniform(SINGLE_TYPES)),
        Mix("mixed", _uniform(MIXED_TYPES)),
        Mix(
            "5d",
            _uniform(("noise", "haze", "rain-streaks", "motion-blur", "low-light")),
            overrides=_GAUSSIAN_ONLY,
        ),
        Mix("3d", _uniform(("noise", "haze", "rain-streaks")), overrides=_GAUSSIAN_ONLY),
    )
}


def get_mix(name: str) -> Mix:
    """A named mix; the error lists the valid names."""
    if name not in MIXES:
        raise UirError(f"unknown mix {name!r}; known: {', '.join(MIXES)}")
    return MIXES[name]
