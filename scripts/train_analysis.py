"""Fit the calibrated degradation analysis (issue 20, ``uir.methods.analysis``) and measure it on held-out photos.

    make runs/nafnet-fr-v2.safetensors  # v2, which left the package, from the repository's history
    mkdir -p runs && git show c3008df:campaigns/nafnet-fr-v2-p2/fallback.safetensors > runs/nafnet-fr-v2-p2.safetensors
    python scripts/train_analysis.py --data ../shared/data/train_clean/CBSD432 \\
        --restorer runs/nafnet-fr-v2.safetensors runs/nafnet-fr-v2-p2.safetensors \\
        --out src/uir/weights/analysis-5d.safetensors --picture docs/models/analysis-5d-reliability.png

Photos of ``--data`` are split by file: 0-359 fit the layer, 360-399 choose the L2 penalty and the operating point
(``clean_shift``) and fit the temperature, 400-431 are held out for the report. Each split draws, per class,
``--per-class`` (scaled: fit x1, calibration and test x0.5) random 320² crops:

- the five ``5d`` types (Gaussian noise, haze, rain streaks, motion blur, low light): severity 0.2-1 in the fit split
  (below 0.2 most of them cannot be seen, and teaching them as damage makes clean photos ambiguous), 0.3-1 in the
  calibration and test splits (the issue's target), plus a mild test split at 0.1-0.3, reported for information;
- ``clean``: in equal parts the photo as it is, the photo saved as JPEG at quality 70-95 (a photo the default
  models leave as it is), and each ``--restorer``'s output of a 5d-degraded crop (told the true type, full
  strength: what the analysis sees when a restored photo comes back). ``--soft`` adds a part: the photo softened
  as a camera's native-resolution crop is (``_soft``: Gaussian sigma 0.5-1.5 px, half of them then saved as JPEG
  at quality 70-95), which the shipped analysis calls motion-blurred (``python benchmarks/soft_photos.py``);
  measured and not taken (docs/real-photos.md, "Fourteenth session").

Prints the held-out accuracy per type, the clean recall per source, the expected calibration error (15 bins)
before and after temperature scaling, and the same for the base classifier; draws the reliability picture. Then
fits a severity head per type (``fit_severity``: ridge regression of the engine's severity on the same features,
that type's fit crops, the penalty chosen on the calibration split) and prints its held-out error (mean absolute,
and the share within 0.1) in severity and in the physical units ``uir inspect`` reports (blur trail px, stops,
haze β). Writes the layer and the heads (``--out``). Features are cached in ``--cache`` (recomputed when the
arguments change). ``--evaluate ANALYSIS`` scores an analysis already fitted (the shipped one: ``default``) on the
held-out splits instead, with the ``--restorer`` outputs as clean: how a fit holds up when the default model changes.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from uir.api import load
from uir.data.datasets import SyntheticDataset
from uir.degradations import Mix, get_mix
from uir.degradations.functional import gaussian_blur
from uir.inspection import severity_in_units
from uir.methods import load_classifier
from uir.methods.analysis import (
    CalibratedClassifier,
    analysis_features,
    expected_calibration_error,
    export_analysis,
    fit_logistic,
    fit_severity,
    fit_temperature,
)
from uir.models.heads import DegradationClassifier

TYPES = ("noise", "haze", "rain-streaks", "motion-blur", "low-light")
LABELS = (*TYPES, "clean")
# (files, share of --per-class, severity range, seed offset)
SPLITS = {"fit": ((0, 360), 1.0, (0.2, 1.0), 1), "calibration": ((360, 400), 0.5, (0.3, 1.0), 2)}
TEST = ((400, 432), 0.5, (0.3, 1.0), 3)
MILD = ((400, 432), 0.5, (0.1, 0.3), 4)
CROP = 320
TYPE_FLOOR = 0.9
"""The accuracy every type keeps on the calibration split when clean's bias is raised (``clean_shift``)."""


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    array = (x.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32) / 255
    return torch.from_numpy(decoded).permute(2, 0, 1)


def _soft(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``x`` as soft as a camera's native-resolution crop (lens, anti-aliasing filter, demosaicing): a Gaussian of
    sigma 0.5-1.5 px, and half of the time the camera's JPEG at quality 70-95 [ours]."""
    sigma = 0.5 + float(torch.rand((), generator=generator))
    soft = gaussian_blur(x[None], sigma)[0].clamp(0, 1)
    if float(torch.rand((), generator=generator)) < 0.5:
        soft = _jpeg(soft, int(torch.randint(70, 96, (1,), generator=generator)))
    return soft


def draw_samples(  # noqa: PLR0913
    data: Path,
    files: tuple[int, int],
    count: int,
    severity: tuple[float, float],
    seed: int,
    restorers: list,
    soft: bool = False,
) -> Iterator[tuple[torch.Tensor, str, str, float]]:
    """``(image, label, source, severity)``: ``count`` per type, and ``count`` clean ones split over the sources."""
    base = get_mix("5d")
    generator = torch.Generator().manual_seed(seed)
    for k, name in enumerate(TYPES):
        mix = Mix(f"analysis:{name}", {name: 1.0}, severity, base.overrides)
        dataset = SyntheticDataset(data, mix, crop=CROP, seed=seed * 100 + k, files=files)
        dataset.length = max(count, len(dataset))  # sample i is a crop of image i % files: several per image
        for i in torch.randperm(len(dataset), generator=generator)[:count].tolist():
            sample = dataset[i]
            yield sample["lq"], name, name, float(sample["record"]["severity"])
    made = ["photo", "jpeg", *(["soft"] if soft else [])]  # then one source per restorer
    sources = [*made, *[f"restored:{r.name}" for r in restorers]]
    dataset = SyntheticDataset(data, Mix("analysis:any", base.weights, (0.1, 1.0), base.overrides), crop=CROP,
                               seed=seed * 100 + 99, files=files)  # fmt: skip
    picks = torch.randperm(len(dataset), generator=generator).tolist()
    for j in range(count):
        sample = dataset[picks[j % len(picks)]]
        source = sources[j % len(sources)]
        if source == "photo":
            image = sample["gt"]
        elif source == "jpeg":
            image = _jpeg(sample["gt"], int(torch.randint(70, 96, (1,), generator=generator)))
        elif source == "soft":
            image = _soft(sample["gt"], generator)
        else:
            model = restorers[j % len(sources) - len(made)]
            image = model.restore_tensor(sample["lq"][None], task=sample["label"], strength=1)[0]
        yield image, "clean", source, 0.0


def featurize(classifier, samples: Iterable) -> tuple[torch.Tensor, torch.Tensor, list[str], torch.Tensor]:  # noqa: ANN001
    """The features of each sample as it is drawn (the images are not kept)."""
    features, targets, sources, severities = [], [], [], []
    for image, label, source, severity in samples:
        features.append(analysis_features(classifier, image[None]))
        targets.append(LABELS.index(label))
        sources.append(source)
        severities.append(severity)
    return torch.cat(features), torch.tensor(targets), sources, torch.tensor(severities)


def split_features(args: argparse.Namespace, name: str, spec: tuple, classifier, restorers: list) -> dict:  # noqa: ANN001
    files, scale, severity, offset = spec
    key = {"data": str(args.data), "per_class": args.per_class, "seed": args.seed, "split": name,
           "restorers": [r.name for r in restorers], "files": files, "severity": severity, "version": 3}  # fmt: skip
    if args.soft:  # the shipped recipe's caches keep their key
        key["soft"] = True
    cache = args.cache / f"{name}.pt"
    if cache.is_file():
        stored = torch.load(cache, weights_only=False)
        if stored["key"] == key:
            return stored
    start = time.perf_counter()
    count = max(4, round(args.per_class * scale))
    samples = draw_samples(args.data, files, count, severity, args.seed * 10 + offset, restorers, args.soft)
    features, targets, sources, severities = featurize(classifier, samples)
    count = len(sources)
    stored = {"key": key, "features": features, "targets": targets, "sources": sources, "severities": severities}
    args.cache.mkdir(parents=True, exist_ok=True)
    torch.save(stored, cache)
    print(f"  {name}: {count} crops in {time.perf_counter() - start:.0f} s", flush=True)
    return stored


def base_logits(features: torch.Tensor, classifier) -> torch.Tensor:  # noqa: ANN001
    """The base classifier's logits, stored in the features after the pooled maps, in ``LABELS``' order."""
    pooled = 2 * sum(classifier.backbone.feature_dims)
    logits = features[:, pooled : pooled + len(classifier.labels)]
    return logits[:, [classifier.labels.index(label) for label in LABELS]]


def clean_shift(logits: torch.Tensor, targets: torch.Tensor, floor: float = TYPE_FLOOR) -> float:
    """The operating point, chosen on the calibration split: the shift of clean's bias (0-3 in steps of 0.25) that
    calls the most clean photos clean while every type keeps an accuracy of at least ``floor`` (the fit's classes
    are balanced, but a photo that needs nothing is the common case, and leaving it alone the safe error)."""
    clean = LABELS.index("clean")
    best = (-1.0, 0.0)
    for shift in [i * 0.25 for i in range(13)]:
        z = logits.clone()
        z[:, clean] += shift
        predicted = z.argmax(1)
        accuracy = [float((predicted[targets == k] == k).double().mean()) for k in range(len(LABELS))]
        if min(accuracy[:clean]) >= floor and accuracy[clean] > best[0] + 1e-9:
            best = (accuracy[clean], shift)
    return best[1]


def report(title: str, probs: torch.Tensor, split: dict) -> dict:
    targets, sources = split["targets"], split["sources"]
    predicted = probs.argmax(1)
    rows = {}
    for k, label in enumerate(LABELS[:-1]):
        chosen = targets == k
        rows[label] = float((predicted[chosen] == k).double().mean())
    for source in sorted({s for s in sources if not s.startswith(tuple(TYPES))}):
        chosen = torch.tensor([s == source for s in sources])
        rows[f"clean: {source}"] = float((predicted[chosen] == LABELS.index("clean")).double().mean())
    chosen = targets == LABELS.index("clean")
    rows["clean (all)"] = float((predicted[chosen] == LABELS.index("clean")).double().mean())
    ece, bins = expected_calibration_error(probs, targets)
    rows["accuracy (all)"] = float((predicted == targets).double().mean())
    rows["ECE"] = ece
    print(f"{title}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows.items()), flush=True)
    return {"rows": rows, "bins": bins}


def severity_heads(
    mean: torch.Tensor, std: torch.Tensor, fit: dict, calibration: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per type, the ridge head on features standardized by ``mean`` and ``std`` with the penalty that has the
    smallest mean absolute error on the calibration split; ``(weight (T, F), bias (T,))`` in ``TYPES``' order."""
    weights, biases = [], []
    for k, name in enumerate(TYPES):
        z = {n: (split["features"][split["targets"] == k] - mean) / std
             for n, split in (("fit", fit), ("calibration", calibration))}  # fmt: skip
        y = {n: split["severities"][split["targets"] == k] for n, split in (("fit", fit), ("calibration", calibration))}
        best = None
        for l2 in (1e-3, 1e-2, 1e-1, 1.0):
            w, b = fit_severity(z["fit"], y["fit"], l2)
            error = float((z["calibration"] @ w + b).clamp(0, 1).sub(y["calibration"]).abs().mean())
            if best is None or error < best[0]:
                best = (error, l2, w, b)
        print(f"  severity head {name}: l2 {best[1]:g}, calibration MAE {best[0]:.3f}", flush=True)
        weights.append(best[2])
        biases.append(best[3])
    return torch.stack(weights), torch.tensor(biases)


def severity_report(title: str, analysis: CalibratedClassifier, split: dict) -> dict:
    """Mean absolute error of each head on its own type's crops, in severity and physical units."""
    z = (split["features"] - analysis.mean) / analysis.std
    estimate = (z @ analysis.severity_weight.T + analysis.severity_bias).clamp(0, 1)
    rows = {}
    for k, name in enumerate(TYPES):
        chosen = split["targets"] == k
        guess, truth = estimate[chosen, k], split["severities"][chosen]
        row = {
            "mae": float((guess - truth).abs().mean()),
            "within 0.1": float(((guess - truth).abs() <= 0.1).double().mean()),
        }
        if severity_in_units(name, 0.5) is not None:  # what uir inspect says in words
            unit = severity_in_units(name, 0.5)[0]
            errors = [abs(severity_in_units(name, float(a))[1] - severity_in_units(name, float(b))[1])
                      for a, b in zip(guess, truth, strict=True)]  # fmt: skip
            row[f"mae {unit}"] = sum(errors) / len(errors)
        rows[name] = row
    print(
        f"{title}: " + "; ".join(f"{n} " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()) for n, r in rows.items()),
        flush=True,
    )
    return rows


def reliability_picture(panels: dict[str, list[dict]], path: Path, side: int = 220) -> None:
    """One reliability diagram per panel: accuracy against confidence per bin (bars), the diagonal, bin counts."""
    font = ImageFont.load_default(size=12)
    pad = 36
    image = Image.new("RGB", (len(panels) * (side + 2 * pad), side + 2 * pad + 14), "white")
    pen = ImageDraw.Draw(image)
    for p, (title, bins) in enumerate(panels.items()):
        x0, y0 = p * (side + 2 * pad) + pad, pad
        pen.rectangle((x0, y0, x0 + side, y0 + side), outline="black")
        pen.line((x0, y0 + side, x0 + side, y0), fill=(180, 180, 180))
        for b in bins:
            left, right = x0 + int(b["lo"] * side), x0 + int(b["hi"] * side) - 1
            top = y0 + side - int(b["accuracy"] * side)
            pen.rectangle((left, top, right, y0 + side), fill=(70, 110, 200))
            mark = y0 + side - int(b["confidence"] * side)
            pen.line((left, mark, right, mark), fill=(220, 60, 60), width=2)
        pen.text((x0, 8), title, fill="black", font=font)
        pen.text((x0, y0 + side + 6), "x: confidence 0-1, bars: accuracy", fill="black", font=font)
        pen.text((x0, y0 + side + 20), "red: mean confidence of the bin", fill=(220, 60, 60), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def calibrated_probs(analysis: CalibratedClassifier, features: torch.Tensor, t: float | None = None) -> torch.Tensor:
    """The analysis's class probabilities from cached features (temperature ``t``, default its own)."""
    z = ((features - analysis.mean) / analysis.std) @ analysis.weight.T + analysis.bias
    return (z / (analysis.temperature if t is None else t)).softmax(1)


def evaluate(args: argparse.Namespace, classifier, restorers: list) -> int:  # noqa: ANN001
    """``--evaluate``: the held-out report of a fitted analysis, on crops drawn as for a fit with these restorers."""
    analysis = load_classifier(args.evaluate)
    if not isinstance(analysis, CalibratedClassifier) or tuple(analysis.labels) != LABELS:
        raise SystemExit(
            f"train_analysis: --evaluate {args.evaluate}: not a calibrated analysis of {', '.join(LABELS)}"
        )
    for name, spec in (("test", TEST), ("mild", MILD)):
        split = split_features(args, name, spec, classifier, restorers)
        low, high = spec[2]
        report(
            f"{args.evaluate} (held out, severity {low:g}-{high:g})",
            calibrated_probs(analysis, split["features"]),
            split,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="CBSD432 (its files are split 0-359 / 360-399 / 400-431)")
    p.add_argument("--classifier", default="classifier-5d", help="the base classifier (default: the shipped one)")
    p.add_argument("--restorer", nargs="*", default=["default"], help="models whose outputs count as clean")
    p.add_argument("--per-class", type=int, default=800, help="crops per class in the fit split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="the analysis file to write (.safetensors)")
    p.add_argument(
        "--evaluate",
        metavar="ANALYSIS",
        help="score this fitted analysis (a file, or default: the shipped one) on the held-out splits, with these "
        "--restorer outputs as clean, instead of fitting one (no --out)",
    )
    p.add_argument("--picture", type=Path, help="the reliability picture to draw")
    p.add_argument("--cache", type=Path, default=Path("runs/analysis-cache"))
    p.add_argument("--soft", action="store_true", help="softened photos as clean too (measured, not taken)")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"train_analysis: {args.data}: no such folder")
    torch.set_grad_enabled(False)
    classifier = load_classifier(args.classifier)
    if not isinstance(classifier, DegradationClassifier):
        raise SystemExit(f"train_analysis: --classifier {args.classifier} is an analysis; name a bare classifier")
    if (args.out is None) == (args.evaluate is None):
        raise SystemExit("train_analysis: give --out (fit an analysis) or --evaluate ANALYSIS (score one), not both")
    restorers = [load(spec, companion=None) for spec in args.restorer]  # the networks alone
    if args.evaluate:
        return evaluate(args, classifier, restorers)
    splits = {name: split_features(args, name, spec, classifier, restorers) for name, spec in SPLITS.items()}
    test = split_features(args, "test", TEST, classifier, restorers)
    mild = split_features(args, "mild", MILD, classifier, restorers)
    fit, calibration = splits["fit"], splits["calibration"]
    best = None
    with torch.enable_grad():
        for l2 in (1e-4, 1e-3, 1e-2, 3e-2):
            layer = fit_logistic(fit["features"], fit["targets"], len(LABELS), l2=l2)
            analysis = CalibratedClassifier(classifier, LABELS, *layer, temperature=1.0)
            logits = ((calibration["features"] - analysis.mean) / analysis.std) @ analysis.weight.T + analysis.bias
            nll = float(torch.nn.functional.cross_entropy(logits, calibration["targets"]))
            accuracy = float((logits.argmax(1) == calibration["targets"]).double().mean())
            print(f"  l2 {l2:g}: calibration accuracy {accuracy:.3f}, nll {nll:.3f}", flush=True)
            if best is None or accuracy > best[0] + 1e-9:
                best = (accuracy, l2, layer, logits)
        _, l2, layer, logits = best
        shift = clean_shift(logits, calibration["targets"])
        layer[3][LABELS.index("clean")] += shift
        logits[:, LABELS.index("clean")] += shift
        temperature = fit_temperature(logits, calibration["targets"])
    print(f"chosen l2 {l2:g}, clean bias +{shift:g}, temperature {temperature:.3f}")
    heads = severity_heads(layer[0].float(), layer[1].float(), fit, calibration)
    analysis = CalibratedClassifier(classifier, LABELS, *layer, temperature, TYPES, *heads)

    def probs(split: dict, t: float | None = None) -> torch.Tensor:
        return calibrated_probs(analysis, split["features"], t)

    results = {
        "base classifier, held out": report("base classifier (held out, severity 0.3-1)",
                                            base_logits(test["features"], classifier).softmax(1), test),
        "analysis before temperature": report("analysis, T=1 (held out)", probs(test, 1.0), test),
        "analysis": report(f"analysis, T={temperature:.2f} (held out, severity 0.3-1)", probs(test), test),
        "analysis, mild": report("analysis (held out, severity 0.1-0.3)", probs(mild), mild),
    }  # fmt: skip
    severity = {
        f"held out, severity {lo}-{hi}": severity_report(f"severity heads (held out, severity {lo}-{hi})", analysis, s)
        for (lo, hi), s in (((0.3, 1), test), ((0.1, 0.3), mild))
    }
    notes = {"l2": l2, "severity": severity, "clean_shift": shift, "per_class": args.per_class, "seed": args.seed,
             "restorers": [r.name for r in restorers],
             "held_out": {k: v["rows"] for k, v in results.items()}}  # fmt: skip
    export_analysis(args.out, analysis, args.classifier, notes)
    print(f"wrote {args.out}")
    if args.picture:
        shown = {"base classifier": "base classifier, held out", "analysis, T = 1": "analysis before temperature",
                 f"analysis, T = {temperature:.2f}": "analysis"}  # fmt: skip
        panels = {
            f"{title} (ECE {results[key]['rows']['ECE']:.3f})": results[key]["bins"] for title, key in shown.items()
        }
        reliability_picture(panels, args.picture)
        print(f"wrote {args.picture}")
    (args.cache / "report.json").write_text(json.dumps({**results, "severity": severity}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
