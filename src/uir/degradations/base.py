"""The degradation registry: primitive operations, the 19 labelled types, and the records they produce.

Vocabulary:
- An **op** is one physical process (additive noise, a blur kernel, a JPEG round trip, haze...). It has a
  frozen parameter dataclass, a ``sample(severity, generator)`` that *draws* parameters, and an
  ``apply(x, params, generator)`` that *applies* them to a ``(B, 3, H, W)`` batch in [0, 1].
- A **type** is one of the 19 labels of the UIR-2.5M degradation space: a named recipe of one or more ops,
  all driven by one severity ``s`` in [0, 1]. Its name is the class label downstream.
- A **record** says what was applied to a sample (type, severity, seed and every op's parameters); it
  serializes to JSON and replays to the same pixels on the same device.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from uir.errors import UirError

# Spread a record's seed into two independent streams: one (CPU) for drawing parameters, one (on the
# tensor's device) for the per-pixel randomness of applying them.
_APPLY_SEED_SALT = 0x9E3779B97F4A7C15
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ParamRange:
    """How one physical parameter follows the severity; documentation for ``--list`` and the docs.

    Attributes:
        name: the parameter's field name in the op's dataclass.
        at_zero: its value at severity 0 (or the random range there), as text.
        at_one: its value at severity 1, as text.
        mapping: how it moves between them ("linear", "log-linear", "random: ...", ...).
        unit: the unit, if any.
    """

    name: str
    at_zero: str
    at_one: str
    mapping: str = "linear"
    unit: str = ""


@dataclass(frozen=True)
class Op:
    """One primitive degradation process.

    Attributes:
        name: registry key, kebab-case.
        family: noise, blur, compression, weather, light or camera.
        summary: one line of what it models.
        params_type: the frozen dataclass ``sample`` returns and ``apply`` takes.
        sample: ``(severity, cpu_generator) -> params``; the only place parameters are drawn.
        apply: ``(x, params, generator) -> y`` on ``(B, 3, H, W)`` tensors in [0, 1]; the generator lives
            on ``x.device`` and supplies per-pixel randomness only.
        ranges: the documented severity mapping of each parameter.
    """

    name: str
    family: str
    summary: str
    params_type: type
    sample: Callable[[float, torch.Generator], Any]
    apply: Callable[[Tensor, Any, torch.Generator], Tensor]
    ranges: tuple[ParamRange, ...] = ()


@dataclass(frozen=True)
class DegradationType:
    """One of the 19 labelled degradation types: a recipe of ops sharing one severity.

    Attributes:
        name: the label, kebab-case.
        family: the family of a single type, or "mixed".
        ops: op names applied in this order.
        summary: one line for ``uir degrade --list``.
        scales: per op, the factor its severity is scaled by (empty: all 1). Mixed types soften some of their
            parts so that the mixture at s = 1 is as hard as the hardest single type, not unrecoverable.
    """

    name: str
    family: str
    ops: tuple[str, ...]
    summary: str
    scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        assert not self.scales or len(self.scales) == len(self.ops), f"{self.name}: one scale per op"
        assert all(0.0 < v <= 1.0 for v in self.scales), f"{self.name}: scales must be in (0, 1]"

    def op_severities(self, severity: float) -> tuple[float, ...]:
        """The severity each op is applied at, for the type's severity."""
        return tuple(severity * v for v in (self.scales or (1.0,) * len(self.ops)))

    @property
    def mixed(self) -> bool:
        return self.family == "mixed"


@dataclass(frozen=True)
class Step:
    """One op as applied: its name and its drawn parameters (JSON-ready)."""

    op: str
    params: dict[str, Any]


@dataclass(frozen=True)
class DegradationRecord:
    """What was done to one sample: the label and everything needed to replay it.

    Attributes:
        type: the degradation type name (the class label).
        severity: the severity in [0, 1].
        seed: the seed both random streams were derived from.
        steps: the ops applied, in order, with their parameters.
    """

    type: str
    severity: float
    seed: int
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "severity": self.severity,
            "seed": self.seed,
            "steps": [{"op": s.op, "params": s.params} for s in self.steps],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DegradationRecord:
        try:
            steps = tuple(Step(op=s["op"], params=dict(s["params"])) for s in data["steps"])
            return cls(type=data["type"], severity=float(data["severity"]), seed=int(data["seed"]), steps=steps)
        except (KeyError, TypeError, ValueError) as exc:
            raise UirError(f"not a degradation record: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> DegradationRecord:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise UirError(f"not a degradation record: {exc}") from None


ENGINE_VERSION = 3
"""Bumped whenever an op makes something else from the same seed (2: ``camera-noise`` gained the colour matrix,
in-camera noise reduction and JPEG; 3: its tone curve and stronger colour noise reduction); cached synthetic sets
(``uir.benchmarks.synthesize``) are keyed by it."""

OPS: dict[str, Op] = {}
TYPES: dict[str, DegradationType] = {}


def register_op(op: Op) -> Op:
    """Add an op to the registry; names are unique."""
    assert op.name not in OPS, f"op {op.name} registered twice"
    OPS[op.name] = op
    return op


def register_type(kind: DegradationType) -> DegradationType:
    """Add a labelled type to the registry; every op it names must exist."""
    assert kind.name not in TYPES, f"type {kind.name} registered twice"
    missing = [o for o in kind.ops if o not in OPS]
    assert not missing, f"type {kind.name} names unknown ops {missing}"
    TYPES[kind.name] = kind
    return kind


def get_op(name: str) -> Op:
    if name not in OPS:
        raise UirError(f"unknown degradation op {name!r}; known: {', '.join(sorted(OPS))}")
    return OPS[name]


def get_type(name: str) -> DegradationType:
    if name not in TYPES:
        raise UirError(f"unknown degradation type {name!r}; known: {', '.join(TYPES)}")
    return TYPES[name]


# --------------------------------------------------------------------------- random draws


def param_generator(seed: int) -> torch.Generator:
    """The CPU generator parameters are drawn from."""
    return torch.Generator().manual_seed(int(seed) & _MAX_SEED)


def apply_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator, on ``device``, that supplies per-pixel randomness when applying a record."""
    return torch.Generator(device=device).manual_seed((int(seed) ^ _APPLY_SEED_SALT) & _MAX_SEED)


def uniform(g: torch.Generator, low: float, high: float) -> float:
    """One float drawn uniformly from [low, high)."""
    return low + (high - low) * torch.rand((), generator=g).item()


def log_uniform(g: torch.Generator, low: float, high: float) -> float:
    """One float drawn log-uniformly from [low, high), both positive."""
    return math.exp(uniform(g, math.log(low), math.log(high)))


def randint(g: torch.Generator, low: int, high: int) -> int:
    """One integer drawn uniformly from [low, high] (both ends included)."""
    return int(torch.randint(low, high + 1, (), generator=g).item())


def choice(g: torch.Generator, options: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
    """One element of ``options``, uniformly or by ``weights``."""
    if weights is None:
        return options[randint(g, 0, len(options) - 1)]
    w = torch.tensor(weights, dtype=torch.float64)
    return options[int(torch.multinomial(w, 1, generator=g).item())]


def lerp(at_zero: float, at_one: float, severity: float) -> float:
    """The linear severity mapping: ``at_zero`` at s=0, ``at_one`` at s=1."""
    return at_zero + (at_one - at_zero) * severity


def log_lerp(at_zero: float, at_one: float, severity: float) -> float:
    """The log-linear severity mapping between two positive values."""
    return math.exp(lerp(math.log(at_zero), math.log(at_one), severity))


def new_seed(g: torch.Generator) -> int:
    """A fresh 63-bit seed drawn from ``g``."""
    return int(torch.randint(0, 2**62, (), generator=g).item())


# --------------------------------------------------------------------------- draw / apply


def _check_severity(severity: float) -> float:
    s = float(severity)
    if not 0.0 <= s <= 1.0 or math.isnan(s):
        raise UirError(f"severity must be in [0, 1], got {severity}")
    return s


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return float(value)
    return value


def _params_from_dict(op: Op, params: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(op.params_type)}
    unknown = set(params) - names
    if unknown:
        raise UirError(f"op {op.name!r} has no parameter(s) {sorted(unknown)}; it has {sorted(names)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return op.params_type(**values)


def draw(
    type_name: str,
    severity: float,
    seed: int,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> DegradationRecord:
    """Draw the parameters of a degradation without applying it.

    Args:
        type_name: one of ``TYPES`` (``uir degrade --list``).
        severity: in [0, 1]; 0 is (near) identity, 1 the strongest.
        seed: any integer; the same seed draws the same parameters.
        overrides: per op name, parameter values that replace the drawn ones (e.g.
            ``{"noise": {"kind": "gaussian", "sigma": 25.0}}``).

    Returns:
        The record; ``apply(x, record)`` applies it.
    """
    kind = get_type(type_name)
    s = _check_severity(severity)
    g = param_generator(seed)
    overrides = overrides or {}
    unknown = set(overrides) - set(kind.ops)
    if unknown:
        raise UirError(f"type {type_name!r} has no op(s) {sorted(unknown)} to override; it has {list(kind.ops)}")
    steps = []
    for op_name, op_severity in zip(kind.ops, kind.op_severities(s), strict=True):
        op = OPS[op_name]
        params = op.sample(op_severity, g)
        if op_name in overrides:
            params = _params_from_dict(op, {**dataclasses.asdict(params), **overrides[op_name]})
        steps.append(Step(op_name, {k: _jsonable(v) for k, v in dataclasses.asdict(params).items()}))
    return DegradationRecord(type=type_name, severity=s, seed=int(seed), steps=tuple(steps))


def _check_batch(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise UirError(f"degradations take a (B, 3, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise UirError(f"degradations take float tensors in [0, 1], got {x.dtype}")


def apply(x: Tensor, record: DegradationRecord) -> Tensor:
    """Apply a drawn record to every image of a batch.

    Args:
        x: ``(B, 3, H, W)`` float in [0, 1], on any device.

    Returns:
        ``(B, 3, H, W)``, same dtype and device, clamped to [0, 1]. The same record on the same device gives
        the same pixels.
    """
    _check_batch(x)
    g = apply_generator(record.seed, x.device)
    dtype = x.dtype
    y = x.float()
    for step in record.steps:
        op = get_op(step.op)
        y = op.apply(y, _params_from_dict(op, step.params), g).clamp_(0.0, 1.0)
    return y.to(dtype)


def degrade(
    x: Tensor,
    type_name: str,
    severity: float,
    seed: int,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Tensor, DegradationRecord]:
    """Draw and apply one degradation to a batch (every image gets the same parameters).

    Example:
        >>> x = torch.rand(1, 3, 37, 53)
        >>> y, record = degrade(x, "haze", 0.5, seed=0)
        >>> y.shape, record.type
        (torch.Size([1, 3, 37, 53]), 'haze')
    """
    record = draw(type_name, severity, seed, overrides)
    return apply(x, record), record


def degrade_batch(
    x: Tensor,
    types: Sequence[str],
    severities: Sequence[float],
    seeds: Sequence[int],
) -> tuple[Tensor, list[DegradationRecord]]:
    """Degrade each image of a batch with its own type, severity and seed.

    Args:
        x: ``(B, 3, H, W)`` float in [0, 1].
        types, severities, seeds: one entry per image.

    Returns:
        The degraded batch and one record per image.
    """
    _check_batch(x)
    if not len(types) == len(severities) == len(seeds) == x.shape[0]:
        raise UirError("degrade_batch needs one type, severity and seed per image")
    outs, records = [], []
    for i in range(x.shape[0]):
        y, record = degrade(x[i : i + 1], types[i], severities[i], seeds[i])
        outs.append(y)
        records.append(record)
    return torch.cat(outs), records
