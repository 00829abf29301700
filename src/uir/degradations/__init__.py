"""The universal degradation engine: 19 labelled types, each with a severity in [0, 1], and their mixes.

Example:
    >>> import torch
    >>> from uir import degradations as D
    >>> clean = torch.rand(2, 3, 64, 64)
    >>> lq, record = D.degrade(clean, "rain-streaks", severity=0.5, seed=7)
    >>> record.type, lq.shape
    ('rain-streaks', torch.Size([2, 3, 64, 64]))
    >>> torch.equal(D.apply(clean, D.DegradationRecord.from_json(record.to_json())), lq)
    True
"""

from __future__ import annotations

from uir.degradations.base import (
    ENGINE_VERSION,
    OPS,
    TYPES,
    DegradationRecord,
    DegradationType,
    Op,
    ParamRange,
    Step,
    apply,
    degrade,
    degrade_batch,
    draw,
    get_op,
    get_type,
)
from uir.degradations.catalog import ALL_TYPES, MIXED_TYPES, MIXES, SINGLE_TYPES, Mix, get_mix

__all__ = [
    "ALL_TYPES",
    "ENGINE_VERSION",
    "MIXED_TYPES",
    "MIXES",
    "OPS",
    "SINGLE_TYPES",
    "TYPES",
    "DegradationRecord",
    "DegradationType",
    "Mix",
    "Op",
    "ParamRange",
    "Step",
    "apply",
    "degrade",
    "degrade_batch",
    "draw",
    "get_mix",
    "get_op",
    "get_type",
]
