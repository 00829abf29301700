"""Issue 20: the calibrated analysis (``uir.methods.analysis``): cues that move with the damage they measure, a fitted
logistic layer, a temperature that calibrates, and a file that loads back to the same probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import smooth_photo
from uir.degradations import apply, draw
from uir.errors import UirError
from uir.methods.analysis import (
    CUE_NAMES,
    CalibratedClassifier,
    analysis_features,
    cues,
    expected_calibration_error,
    export_analysis,
    fit_logistic,
    fit_severity,
    fit_temperature,
    is_analysis_file,
    load_analysis,
)
from uir.models.backbones import create_backbone
from uir.models.heads import ClassificationHead, DegradationClassifier

LABELS = ["noise", "haze", "clean"]


def photo(seed: int = 0, h: int = 64, w: int = 80) -> torch.Tensor:
    array = np.asarray(smooth_photo(np.random.default_rng(seed), h, w), np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def tiny_base() -> DegradationClassifier:
    torch.manual_seed(0)
    net = create_backbone("nafnet-tiny")
    return DegradationClassifier(net, ClassificationHead(net.feature_dims, len(LABELS), width=8), LABELS).eval()


def cue(x: torch.Tensor, name: str) -> float:
    return float(cues(x)[0, CUE_NAMES.index(name)])


def test_cues_move_with_the_damage_they_measure() -> None:
    x = photo()
    noisy = apply(x, draw("noise", 0.6, seed=1, overrides={"noise": {"kind": "gaussian", "gray": 0}}))
    hazy = apply(x, draw("haze", 0.8, seed=1))
    dark = apply(x, draw("low-light", 0.8, seed=1))
    assert cues(x).shape == (1, len(CUE_NAMES)) and torch.isfinite(cues(noisy)).all()
    assert cue(noisy, "noise-mad") > cue(x, "noise-mad") + 1.0
    assert cue(hazy, "dark-channel-mean") > cue(x, "dark-channel-mean") + 0.05
    assert cue(dark, "luminance-mean") < 0.5 * cue(x, "luminance-mean")
    streaks = x.clone()
    streaks[..., :, ::6] = 1.0  # vertical lines: gradient energy across x only
    assert cue(streaks, "gradient-x-over-y") > cue(x, "gradient-x-over-y") + 1.0


def test_logistic_layer_and_temperature_fit_what_they_should() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, -2.0]])
    targets = torch.arange(3).repeat_interleave(200)
    features = centres[targets] + torch.randn(600, 2, generator=g)
    with torch.enable_grad():
        mean, std, weight, bias = fit_logistic(features, targets, 3, l2=1e-4)
    logits = ((features - mean) / std) @ weight.T + bias
    assert float((logits.argmax(1) == targets).double().mean()) > 0.9
    # Labels drawn from softmax(z / 2.5): the fitted temperature finds 2.5 back.
    z = torch.randn(4000, 4, generator=g) * 3
    drawn = torch.multinomial((z / 2.5).softmax(1), 1, generator=g)[:, 0]
    with torch.enable_grad():
        assert fit_temperature(z, drawn) == pytest.approx(2.5, rel=0.1)


def test_expected_calibration_error() -> None:
    probs = torch.tensor([[0.95, 0.05]] * 10 + [[0.6, 0.4]] * 10)
    right = torch.zeros(20, dtype=torch.long)
    assert expected_calibration_error(probs, right)[0] == pytest.approx(0.5 * 0.05 + 0.5 * 0.4)
    half_wrong = right.clone()
    half_wrong[10:14] = 1  # 6 of 10 right at confidence 0.6: calibrated there
    ece, bins = expected_calibration_error(probs, half_wrong)
    assert ece == pytest.approx(0.5 * 0.05, abs=1e-6) and sum(b["count"] for b in bins) == 20


def test_an_analysis_file_loads_back_to_the_same_probabilities(tmp_path: Path) -> None:
    base = tiny_base()
    x = photo(1)
    width = analysis_features(base, x).shape[1]
    g = torch.Generator().manual_seed(2)
    layer = (torch.randn(width, generator=g), torch.rand(width, generator=g) + 0.5,
             torch.randn(3, width, generator=g) * 0.1, torch.randn(3, generator=g))  # fmt: skip
    analysis = CalibratedClassifier(base, LABELS, *layer, temperature=2.0).eval()
    z = ((analysis_features(base, x) - layer[0]) / layer[1]) @ layer[2].T + layer[3]
    probs = analysis.classify(x)
    assert list(probs) == LABELS
    assert torch.allclose(torch.tensor(list(probs.values())), (z / 2.0).softmax(1)[0], atol=1e-5)
    path = export_analysis(tmp_path / "a.safetensors", analysis, "tiny")
    assert is_analysis_file(path) and not is_analysis_file(tmp_path / "missing.safetensors")
    asked = []
    loaded = load_analysis(path, lambda name: asked.append(name) or base)
    assert asked == ["tiny"] and loaded.classify(x) == pytest.approx(probs)
    with pytest.raises(UirError, match="inconsistent shapes"):
        CalibratedClassifier(base, LABELS[:2], *layer, temperature=1.0)


def test_severity_heads_fit_load_back_and_share_one_pass(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(300, 6, generator=g)
    truth = (0.5 + 0.2 * z[:, 1] - 0.1 * z[:, 4]).clamp(0, 1)
    w, b = fit_severity(z, truth, l2=1e-4)
    assert float((z @ w + b - truth).abs().mean()) < 0.02  # a mean guess errs by ~0.16
    heavy, _ = fit_severity(z, truth, l2=10.0)
    assert float(heavy.abs().sum()) < 0.2 * float(w.abs().sum())  # the penalty shrinks the weights
    base = tiny_base()
    x = photo(1)
    width = analysis_features(base, x).shape[1]
    layer = (torch.randn(width, generator=g), torch.rand(width, generator=g) + 0.5,
             torch.randn(3, width, generator=g) * 0.1, torch.randn(3, generator=g))  # fmt: skip
    heads = (torch.randn(2, width, generator=g) * 0.05, torch.tensor([0.3, 0.7]))
    analysis = CalibratedClassifier(base, LABELS, *layer, 1.5, ["noise", "haze"], *heads).eval()
    probs, severity = analysis.assess(x)
    zx = (analysis_features(base, x) - layer[0]) / layer[1]
    assert probs == pytest.approx(analysis.classify(x)) and list(severity) == ["noise", "haze"]
    assert list(severity.values()) == pytest.approx((zx @ heads[0].T + heads[1]).clamp(0, 1)[0].tolist(), abs=1e-5)
    loaded = load_analysis(export_analysis(tmp_path / "h.safetensors", analysis, "tiny"), lambda _: base)
    assert loaded.assess(x)[1] == pytest.approx(severity) and loaded.severity_labels == ["noise", "haze"]
    bare = load_analysis(
        export_analysis(tmp_path / "b.safetensors", CalibratedClassifier(base, LABELS, *layer, 1.5), "tiny"),
        lambda _: base,
    )
    assert bare.assess(x) == (pytest.approx(probs), {})
    with pytest.raises(UirError, match="severity heads for 3 types"):
        CalibratedClassifier(base, LABELS, *layer, 1.0, LABELS, *heads)


def test_a_damaged_or_mismatched_analysis_file_is_one_line_error(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    base = tiny_base()
    width = analysis_features(base, photo(1)).shape[1]
    layer = (torch.zeros(width), torch.ones(width), torch.zeros(3, width), torch.zeros(3))
    path = export_analysis(tmp_path / "a.safetensors", CalibratedClassifier(base, LABELS, *layer, 1.0), "tiny")
    with safe_open(str(path), framework="pt") as file:
        meta = dict(file.metadata())
    state = load_file(str(path))
    cases = {
        "no-temperature.safetensors": ({k: v for k, v in meta.items() if k != "temperature"}, state, "damaged"),
        "bad-json.safetensors": ({**meta, "labels": "[noise"}, state, "damaged"),
        "cold.safetensors": ({**meta, "temperature": "-1"}, state, "not a positive number"),
        "narrow.safetensors": (meta, {**state, "mean": state["mean"][:-1]}, "features"),
    }
    for name, (m, st, said) in cases.items():
        save_file(st, str(tmp_path / name), m)
        with pytest.raises(UirError, match=said) as err:
            load_analysis(tmp_path / name, lambda _: base)
        assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="not a MaskDCPT classifier"):
        load_analysis(path, lambda _: object())


def test_thumbnails_get_finite_probabilities() -> None:
    base = tiny_base()
    width = analysis_features(base, photo(1)).shape[1]
    layer = (torch.zeros(width), torch.ones(width), torch.randn(3, width) * 0.01, torch.zeros(3))
    analysis = CalibratedClassifier(base, LABELS, *layer, temperature=1.0).eval()
    for h, w in ((1, 1), (5, 9), (15, 40)):
        probs = analysis.classify(torch.rand(1, 3, h, w))
        assert all(np.isfinite(list(probs.values()))), (h, w, probs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cues_run_on_cuda() -> None:
    x = photo(2)
    assert torch.allclose(cues(x.cuda()).cpu(), cues(x), atol=1e-4)
