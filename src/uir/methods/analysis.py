"""A calibrated degradation analysis (issue 20): what is wrong with a photo, with probabilities that mean what they say.

The shipped MaskDCPT classifier was trained on degraded crops and clean ones only, so it calls restored photos noisy
and light haze clean, and its probabilities are not calibrated. An analysis keeps that classifier's encoder (frozen)
and re-decides on what it will see:

- **features** (:func:`analysis_features`): each encoder map's per-channel mean and standard deviation, the
  classifier's own logits, and cheap measured cues (:func:`cues`: a robust noise estimate, dark-channel and
  luminance statistics, saturation, gradient energy by direction and by scale);
- a **multinomial logistic layer** fitted on them (:func:`fit_logistic`), on clean photos, photos saved as JPEG at
  good qualities and restored outputs of the shipped model(s) as ``clean``, and each degradation at mild to strong
  severities;
- a **temperature** fitted on a held-out split (:func:`fit_temperature`, Guo et al. 2017), so that a probability
  of 0.9 is right about 9 times in 10 (:func:`expected_calibration_error` measures it);
- optionally, **severity heads** (:func:`fit_severity`): per degradation type, a ridge regression from the same
  standardized features to the engine's severity (0-1, ``uir.degradations``' documented scale), fitted on that
  type's crops: how badly, once the layer has said what.

``scripts/train_analysis.py`` builds the data, fits both and writes the file; :func:`load_analysis` reads it back as
a :class:`CalibratedClassifier`, which ``uir.methods.load_classifier`` returns for such a file (so ``uir inspect
--classifier FILE`` and ``uir restore`` take it like any classifier).

Example:
    >>> x = torch.rand(2, 3, 64, 64)
    >>> cues(x).shape
    torch.Size([2, 14])
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.checkpoint import export_safetensors, read_safetensors
from uir.errors import UirError
from uir.models.heads import DegradationClassifier
from uir.models.heads.classifier import classify_one, one_image

ANALYSIS_FORMAT = "uir-calibrated-analysis"
"""The ``format`` metadata of an analysis file (:func:`export_analysis`)."""

CUE_NAMES = (
    "noise-mad",
    "dark-channel-mean",
    "dark-channel-p10",
    "luminance-mean",
    "luminance-std",
    "luminance-p05",
    "luminance-p95",
    "saturation-mean",
    "gradient-mean",
    "laplacian-log-var",
    "gradient-x-over-y",
    "gradient-fine-over-coarse",
    "local-contrast",
    "highlight-share",
)
"""The measured cues, in :func:`cues`'s order."""


def _luma(x: Tensor) -> Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _quantiles(x: Tensor, qs: Sequence[float]) -> Tensor:
    """``(B, len(qs))``: per image quantiles of ``(B, ...)`` (on at most 65,536 evenly spaced values, for speed)."""
    flat = x.flatten(1)
    step = max(1, -(-flat.shape[1] // 65536))
    return torch.quantile(flat[:, ::step], torch.tensor(qs, dtype=flat.dtype, device=flat.device), dim=1).T


@torch.no_grad()
def cues(x: Tensor) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B, 14)``: cheap measured cues, in ``CUE_NAMES``'s order.

    - noise: the median absolute value of the finest diagonal Haar band of luma over 0.6745 (Donoho's robust σ),
      in 8-bit units, as ``log1p``; texture raises it, which the fitted layer learns to weigh;
    - haze: the dark channel (per-pixel minimum over RGB, then a 7×7 minimum): its mean and 10th percentile;
    - exposure: the mean, standard deviation and 5th / 95th percentiles of luma, the share of near-white pixels;
    - colour: the mean saturation ``(max − min) / max``;
    - sharpness and streaks: the mean gradient magnitude, the log variance of the Laplacian, the log ratio of
      horizontal to vertical gradient energy (rain streaks and motion blur are directional), the log ratio of
      gradient energy at full resolution to that at half (blur removes the fine scale), and the local contrast
      (luma's standard deviation in 8×8 cells, averaged).
    """
    if x.ndim != 4 or min(x.shape[-2:]) < 16:
        raise UirError(f"the analysis needs (B, 3, H, W) images of at least 16 pixels a side, got {tuple(x.shape)}")
    x = x.float().clamp(0, 1)
    y = _luma(x)
    h, w = (y.shape[-2] // 2) * 2, (y.shape[-1] // 2) * 2
    yy = y[..., :h, :w]
    diagonal = (yy[..., 0::2, 0::2] - yy[..., 0::2, 1::2] - yy[..., 1::2, 0::2] + yy[..., 1::2, 1::2]) / 2
    noise = torch.log1p(diagonal.abs().flatten(1).median(dim=1).values / 0.6745 * 255)
    dark = -F.max_pool2d(-x.amin(dim=1, keepdim=True), 7, stride=1, padding=3)
    dark_mean, dark_p10 = dark.flatten(1).mean(1), _quantiles(dark, (0.1,))[:, 0]
    lum = _quantiles(y, (0.05, 0.95))
    top, bottom = x.amax(dim=1), x.amin(dim=1)
    saturation = ((top - bottom) / top.clamp_min(1e-3)).flatten(1).mean(1)
    gx, gy = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    ex, ey = gx.square().flatten(1).mean(1), gy.square().flatten(1).mean(1)
    gradient = (gx[..., :-1, :].square() + gy[..., :, :-1].square()).sqrt().flatten(1).mean(1)
    laplacian = y[..., 1:-1, 1:-1] * 4 - y[..., :-2, 1:-1] - y[..., 2:, 1:-1] - y[..., 1:-1, :-2] - y[..., 1:-1, 2:]
    half = F.avg_pool2d(yy, 2)
    hx, hy = half[..., :, 1:] - half[..., :, :-1], half[..., 1:, :] - half[..., :-1, :]
    coarse = hx.square().flatten(1).mean(1) + hy.square().flatten(1).mean(1)
    cells = F.avg_pool2d(yy, 8, ceil_mode=True)
    contrast = (F.avg_pool2d(yy.square(), 8, ceil_mode=True) - cells.square()).clamp_min(0).sqrt().flatten(1).mean(1)
    eps = 1e-8
    return torch.stack(
        [
            noise,
            dark_mean,
            dark_p10,
            y.flatten(1).mean(1),
            y.flatten(1).std(1),
            lum[:, 0],
            lum[:, 1],
            saturation,
            gradient,
            torch.log(laplacian.flatten(1).var(1) + eps),
            torch.log((ex + eps) / (ey + eps)),
            torch.log((ex + ey + eps) / (coarse + eps)),
            contrast,
            (y > 0.95).float().flatten(1).mean(1),
        ],
        dim=1,
    )


def _spread(m: Tensor) -> Tensor:
    """Per-channel standard deviation of ``(B, C, h, w)`` (unbiased, as the shipped layer was fitted); 0 for 1×1."""
    if m.shape[-2] * m.shape[-1] < 2:
        return torch.zeros(m.shape[:2], dtype=m.dtype, device=m.device)
    return m.std(dim=(2, 3))


@torch.no_grad()
def analysis_features(classifier: DegradationClassifier, x: Tensor) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B, F)``: every encoder map's per-channel mean and standard deviation, the
    classifier's logits and :func:`cues`. Images under 16 pixels a side are first padded to 16 (edge pixels
    repeated): what is measured of them means little, but a restore of a thumbnail still runs."""
    if min(x.shape[-2:]) < 16:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, max(0, 16 - w), 0, max(0, 16 - h)), mode="replicate")
    maps = classifier.backbone.encode(x)
    pooled = [torch.cat([m.mean(dim=(2, 3)), _spread(m)], dim=1) for m in maps]
    return torch.cat([*pooled, classifier.head(maps), cues(x)], dim=1)


def fit_logistic(
    features: Tensor, targets: Tensor, classes: int, *, l2: float = 1e-3, iterations: int = 200
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A multinomial logistic layer on standardized features, by L-BFGS with an L2 penalty on the weights.

    Returns:
        ``(mean, std, weight, bias)``: ``logits = ((features − mean) / std) @ weight.T + bias``.
    """
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    weight = torch.zeros(classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z @ weight.T + bias, targets) + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return mean.float(), std.float(), weight.detach().float(), bias.detach().float()


def fit_temperature(logits: Tensor, targets: Tensor) -> float:
    """The temperature ``T`` minimising the held-out negative log-likelihood of ``softmax(logits / T)``."""
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")
    z = logits.double()

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def fit_severity(z: Tensor, severity: Tensor, l2: float) -> tuple[Tensor, float]:
    """A ridge regression ``severity ≈ z @ weight + bias`` on standardized features ``z`` ``(N, F)``, in closed
    form (float64); ``l2`` is the penalty per sample (``N · l2 · |weight|²``). Returns ``(weight (F,), bias)``.

    Example:
        >>> z = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
        >>> w, b = fit_severity(z, 0.5 + 0.1 * z[:, 0], l2=1e-6)
        >>> round(float(w[0]), 3), round(b, 3)
        (0.1, 0.5)
    """
    x, y = z.double(), severity.double()
    x_mean, y_mean = x.mean(0), y.mean()
    xc = x - x_mean
    gram = xc.T @ xc + len(x) * l2 * torch.eye(x.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(gram, xc.T @ (y - y_mean))
    return weight.float(), float(y_mean - x_mean @ weight)


def expected_calibration_error(probs: Tensor, targets: Tensor, bins: int = 15) -> tuple[float, list[dict]]:
    """ECE of the top-class confidence over ``bins`` equal-width bins (Naeini et al. 2015), and the bins
    (``lo``, ``hi``, ``count``, ``confidence``, ``accuracy``) for a reliability picture.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
        >>> round(expected_calibration_error(probs, torch.tensor([0, 1, 1]))[0], 3)
        0.4
    """
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).double()
    total, table = 0.0, []
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        inside = (confidence > lo) & (confidence <= hi)
        n = int(inside.sum())
        if n == 0:
            continue
        conf, acc = float(confidence[inside].double().mean()), float(correct[inside].mean())
        total += n / len(targets) * abs(conf - acc)
        table.append({"lo": lo, "hi": hi, "count": n, "confidence": conf, "accuracy": acc})
    return total, table


class CalibratedClassifier(nn.Module):
    """A classifier's frozen encoder, the analysis features and a fitted, temperature-scaled logistic layer.

    Has the classifier protocol of ``uir.inspection`` (``classify(lq) -> {label: probability}``) and, with severity
    heads, ``assess(lq) -> ({label: probability}, {type: severity})`` from one pass over the features.
    """

    def __init__(
        self,
        base: DegradationClassifier,
        labels: Sequence[str],
        mean: Tensor,
        std: Tensor,
        weight: Tensor,
        bias: Tensor,
        temperature: float,
        severity_labels: Sequence[str] = (),
        severity_weight: Tensor | None = None,
        severity_bias: Tensor | None = None,
    ) -> None:
        super().__init__()
        if weight.shape != (len(labels), mean.numel()) or std.shape != mean.shape or bias.shape != (len(labels),):
            raise UirError(f"analysis: inconsistent shapes (weight {tuple(weight.shape)}, {len(labels)} labels)")
        k = len(severity_labels)
        if severity_weight is None:
            severity_weight, severity_bias = torch.zeros(k, mean.numel()), torch.zeros(k)
        if severity_weight.shape != (k, mean.numel()) or severity_bias is None or severity_bias.shape != (k,):
            raise UirError(f"analysis: severity heads for {k} types of shape {tuple(severity_weight.shape)}")
        self.base, self.labels, self.temperature = base, list(labels), float(temperature)
        self.severity_labels = list(severity_labels)
        for name, value in (("mean", mean), ("std", std), ("weight", weight), ("bias", bias),
                            ("severity_weight", severity_weight), ("severity_bias", severity_bias)):  # fmt: skip
            self.register_buffer(name, value.float())

    def forward(self, lq: Tensor) -> Tensor:
        """Calibrated logits ``(B, K)`` of ``(B, 3, H, W)`` in [0, 1] (temperature included)."""
        return self._heads(lq)[0]

    def _heads(self, lq: Tensor) -> tuple[Tensor, Tensor]:
        z = (analysis_features(self.base, lq) - self.mean) / self.std
        severity = (z @ self.severity_weight.T + self.severity_bias).clamp(0.0, 1.0)
        return (z @ self.weight.T + self.bias) / self.temperature, severity

    @torch.no_grad()
    def classify(self, lq: Tensor) -> dict[str, float]:
        """The probability of each class for one image ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1]."""
        return classify_one(self, self.labels, lq)

    @torch.no_grad()
    def assess(self, lq: Tensor) -> tuple[dict[str, float], dict[str, float]]:
        """:meth:`classify`'s probabilities and the estimated severity (0-1) of each type with a severity head,
        for one image, from one pass; the severities are empty for a file fitted without heads."""
        logits, severity = self._heads(one_image(lq, "assess"))
        probs = dict(zip(self.labels, logits.softmax(dim=1)[0].tolist(), strict=True))
        return probs, dict(zip(self.severity_labels, severity[0].tolist(), strict=True))


def export_analysis(path: str | Path, analysis: CalibratedClassifier, base: str, notes: dict | None = None) -> Path:
    """Write the fitted layer (not the encoder: ``base`` names the classifier it sits on, ``classifier-5d`` for the
    shipped one, or its file: relative to the analysis file's folder when it is there) as a small safetensors
    file."""
    keys = ("mean", "std", "weight", "bias") + (
        ("severity_weight", "severity_bias") if analysis.severity_labels else ()
    )
    state = {k: getattr(analysis, k).contiguous() for k in keys}
    metadata = {
        "format": ANALYSIS_FORMAT,
        "backbone": "none (a fitted layer; the encoder is the base classifier's)",
        "base": base,
        "labels": json.dumps(analysis.labels),
        "temperature": repr(analysis.temperature),
        "cues": json.dumps(CUE_NAMES),
        "severity_labels": json.dumps(analysis.severity_labels),
        "notes": json.dumps(notes or {}),
    }
    return export_safetensors(path, state, metadata)


def is_analysis_file(path: str | Path) -> bool:
    """Whether ``path`` is a safetensors file written by :func:`export_analysis` (reads its header only)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as file:
            return (file.metadata() or {}).get("format") == ANALYSIS_FORMAT
    except (SafetensorError, OSError):
        return False


def load_analysis(path: str | Path, load_base: object) -> CalibratedClassifier:
    """An analysis file as a :class:`CalibratedClassifier` in eval mode; ``load_base(name)`` loads the classifier
    it sits on (``uir.methods.load_classifier``).

    Raises:
        UirError: not an analysis file, a damaged one, a base that is not a classifier, or features that do not
            match the base classifier's (one line).
    """
    path = Path(path)
    meta, state = read_safetensors(path)
    if meta.get("format") != ANALYSIS_FORMAT:
        raise UirError(f"{path}: not a calibrated analysis (made by scripts/train_analysis.py)")
    try:
        cue_names, labels = json.loads(meta["cues"]), json.loads(meta["labels"])
        temperature, base_name = float(meta["temperature"]), meta["base"]
        layer = [state[k] for k in ("mean", "std", "weight", "bias")]
        severity_labels = json.loads(meta.get("severity_labels", "[]"))
        heads = (state["severity_weight"], state["severity_bias"]) if severity_labels else (None, None)
    except (KeyError, ValueError) as err:
        raise UirError(f"{path}: a damaged analysis file ({type(err).__name__}: {err})") from None
    if cue_names != list(CUE_NAMES):
        raise UirError(f"{path}: made with other cues than this version of uir computes")
    if not math.isfinite(temperature) or temperature <= 0:
        raise UirError(f"{path}: its temperature {temperature} is not a positive number")
    beside = path.parent / base_name
    base = load_base(str(beside) if beside.is_file() else base_name)  # type: ignore[operator]
    if not isinstance(base, DegradationClassifier):
        raise UirError(f"{path}: its base {base_name!r} is not a MaskDCPT classifier (name its file or classifier-5d)")
    width = 2 * sum(base.backbone.feature_dims) + len(base.labels) + len(CUE_NAMES)
    if layer[0].numel() != width:
        raise UirError(f"{path}: fitted on {layer[0].numel()} features, but its base {base_name!r} gives {width}")
    return CalibratedClassifier(base, labels, *layer, temperature, severity_labels, *heads).eval()
