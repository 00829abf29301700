"""What a fine-damage companion would give the default settings (issue 24): where ``--strength auto`` leaves a photo as
it is, take a second network's output instead (one trained on grain, compression and clean photos only).

    python benchmarks/fine_companion.py --data-root ../shared/data --companion nafnet-fr-fine2

Each image is restored as ``uir restore`` does by default (``--model``, task and strength ``auto``: the analysis, the
tone guard, the gate: left as it is where the analysis calls it clean at ``CLEAN_CONFIDENCE``, not underexposed, and
the model's output is within ``SMALL_CHANGE_DB`` of it). Three routes to the companion, which restores an image told
the task ``camera-noise`` (tone ``keep``: fine detail only, exposure and colour put back) at full strength: *gate*,
the images the gate leaves; *change*, every image the model changes little, whatever the analysis says; *rain kept*,
the same but images whose likeliest type is rain streaks stay with the model (light rain is what it changes little).
Prints per set the mean PSNR of the default settings and of each route, how many images each sends to the companion,
and how many come out below their input each way. Fidelity's clean set has the input as its reference: an image left as
it is scores ``inf``, so there the mean is over the images that were changed and the count says how many were not.

The measurement behind ``uir.api``'s route (``Model.companion``, ``fine_route``, ``route``); the pipeline itself is
scored by ``uir eval --task auto``. ``--per-image FILE`` writes per image the figures the routes are decided by (the
model's and the companion's PSNR and change, the grain the companion finds in the flat parts, the analysis' clean
probability, likeliest type and the mean luminance), with the companion's for every image whose likeliest type is
clean or whose model output is at least ``--look-from`` dB (PSNR) from it (``--look-from 0``: every image), so other
thresholds can be weighed without running the networks again:
``--weigh FILE`` reads one and prints, per set, what ``uir.api``'s route gives (``uir.api.route``: clean-looking
photos the model changes little left as they are unless the companion finds grain, ``GRAIN_FLOOR``), and what sending
those to the companion whatever their grain would give, with each gate of ``--gates`` leaving the ones it changes
little (PSNR at least the gate; ``inf``: none left); and per set the photos that look clean but that the model
changes much (their clean probability, change, mean luminance and gain: ``uir.api.DARK_CLEAN_MEAN``).
``--cascade`` adds to the CSV the model run on the companion's output (``cascade``), which ``--weigh`` weighs in
place of the companion's where the model changes a photo little (a negative result: docs/models/nafnet-fr-fine2.md).
``--crossover`` prints, per level of white and camera noise on CBSD68, the model's and the companion's PSNR and the
grain found (``GRAIN_CEILING``).

    python benchmarks/fine_companion.py --data-root ../shared/data --companion nafnet-fr-fine2 --look-from 0 \
        --pairs runs/dark-srgb/x0.6/lq runs/dark-srgb/x0.6/gt --per-image runs/fc.csv
    python benchmarks/fine_companion.py --weigh runs/fc.csv --gates 45 inf
    python benchmarks/fine_companion.py --data-root ../shared/data --crossover
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch

from uir.api import (
    BLUR_SMALL_CHANGE_DB,
    SMALL_CHANGE_DB,
    Plan,
    changes_little,
    fine_route,
    grainy_clean,
    load,
    looks_clean,
    route,
    runs_companion,
)
from uir.benchmarks import Protocol, get_protocol, pairs_protocol, sampled_sets
from uir.degradations import TYPES, Mix, apply
from uir.errors import UirError
from uir.inspection import CLEAN, CLEAN_CONFIDENCE
from uir.io import read_image
from uir.metrics import psnr
from uir.metrics.estimates import residual_grain
from uir.restore import guard_tone, restore_tensor


def _mean(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    same = len(values) - len(finite)
    mean = statistics.fmean(finite) if finite else math.inf
    if not same:
        return f"{mean:6.2f}"
    return f"{mean:6.2f} ({same} same" + (f", min {min(finite):.2f})" if finite else ")")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--model", default="default")
    p.add_argument("--companion", help="the fine-damage network (a model file or name)")
    p.add_argument("--protocols", nargs="*", default=["real-noise", "fidelity", "uir-5d"])
    p.add_argument(
        "--pairs",
        nargs=2,
        action="append",
        default=[],
        metavar=("LQ_DIR", "GT_DIR"),
        help="also a folder of pairs (repeatable), e.g. scripts/make_dark_photos.py's",
    )
    p.add_argument(
        "--synthetic",
        nargs=2,
        action="append",
        default=[],
        metavar=("TYPE", "SEVERITY"),
        help="also a synthetic set as uir-5d's (every 2nd CBSD68 photo from the 2nd) at another severity (repeatable)",
    )
    p.add_argument("--every", type=int, default=1, help="take every n-th image of a set (a quicker look)")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    p.add_argument("--per-image", type=Path, help="also write a CSV: per image the figures a route is decided by")
    p.add_argument(
        "--look-from",
        type=float,
        default=BLUR_SMALL_CHANGE_DB,
        help=f"the CSV's companion figures where the PSNR of the model's output against the input is at least this "
        f"(dB, <= {BLUR_SMALL_CHANGE_DB:g} for --weigh's api column)",
    )
    p.add_argument(
        "--cascade",
        action="store_true",
        help="the CSV also gets 'cascade': the model run on the companion's output (the model's hint and tone guard)",
    )
    p.add_argument("--weigh", type=Path, help="print the API's route from a --per-image CSV (no network runs)")
    p.add_argument("--gates", type=float, nargs="*", default=[45.0, math.inf])
    p.add_argument(
        "--clean-confidence",
        type=float,
        nargs="*",
        default=[],
        metavar="P",
        help=f"--weigh also prints the API's route with each in place of CLEAN_CONFIDENCE ({CLEAN_CONFIDENCE:g})",
    )
    p.add_argument(
        "--crossover",
        action="store_true",
        help="where the model overtakes the companion: both on CBSD68 (every 9th) with white noise and camera noise",
    )
    args = p.parse_args(argv)
    if not all(0.0 < c <= 1.0 for c in args.clean_confidence):
        raise SystemExit("fine_companion: a --clean-confidence is a probability above 0 and at most 1")
    if args.clean_confidence and args.weigh is None:
        raise SystemExit("fine_companion: --clean-confidence weighs a CSV: give it with --weigh")
    if args.weigh is not None:
        if args.cascade:
            raise SystemExit("fine_companion: --cascade runs the networks; --weigh reads a CSV written with it")
        return weigh(args.weigh, args.gates, args.clean_confidence)
    if args.crossover:
        return crossover(args)
    if args.companion is None:
        raise SystemExit("fine_companion: say which network is the companion with --companion")
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("fine_companion: say where the data is with --data-root (or UIR_DATA_ROOT)")
    protocols: list[str | Protocol] = [*args.protocols, *_named_pairs(args.pairs)]
    protocols += [synthetic_protocol(kind, severity) for kind, severity in args.synthetic]
    if not protocols:
        raise SystemExit("fine_companion: nothing to run: name --protocols, --pairs or --synthetic sets")
    names = [s.name for p in protocols for s in (get_protocol(p) if isinstance(p, str) else p).sets]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise SystemExit(f"fine_companion: two sets would be named {', '.join(twice)}: give each once")
    torch.set_grad_enabled(False)
    try:
        model, companion = load(args.model, companion=None), load(args.companion, companion=None)
    except UirError as e:
        raise SystemExit(f"fine_companion: {e}") from None
    print(f"model {model.name}, companion {companion.name}")
    rows: list[dict[str, object]] = []
    print(f"{'set':<16} {'n':>3} {'input':>7} {'default':>8} {'gate: PSNR, sent':>17} {'change: PSNR, sent':>19}"
          f" {'rain kept: PSNR, sent':>22} {'below input: default, gate, change, rain kept':>47}")  # fmt: skip
    for test_set, samples in sampled_sets(protocols, args.data_root, args.cache, args.every):
        if samples is None:
            print(f"{test_set.name:<16} data missing")
            continue
        cols: dict[str, list[float]] = {"input": [], "default": [], "gate": [], "change": [], "rain": []}
        sent = {"gate": 0, "change": 0, "rain": 0}
        for i, sample, lq in samples:
            ((restored, plan),) = model.restore_planned(lq, strength=1)
            full = float(psnr(restored.clamp(0, 1), sample.gt)[0])
            kept = float(psnr(lq, sample.gt)[0])
            model_change = float(psnr(restored.clamp(0, 1), lq)[0])
            little = model_change >= SMALL_CHANGE_DB
            left = looks_clean(plan) and little
            fine = fine_change = grain = cascade = None
            if model_change >= args.look_from or plan.hint == CLEAN:  # the companion's figures: the route's and more
                out = companion.restore_tensor(lq, task="camera-noise", strength=1).clamp(0, 1)
                fine = float(psnr(out, sample.gt)[0])
                fine_change = float(psnr(out, lq)[0])
                grain = float(residual_grain(lq, out)[0])
                if args.cascade:  # the model on the companion's output, as it would run on the input
                    hint = None if plan.hint is None else [plan.hint]
                    then = guard_tone(restore_tensor(model.restorer, out, tasks=hint), lq, plan.tone).clamp(0, 1)
                    cascade = float(psnr(then, sample.gt)[0])
            rows.append(
                {
                    "set": test_set.name,
                    "index": i,
                    "input": kept,
                    "model": full,
                    "companion": fine,
                    "model_change": model_change,
                    "companion_change": fine_change,
                    "grain": grain,
                    "clean": plan.clean,
                    "luminance": plan.mean_luminance,
                    "hint": plan.hint,
                    "tone": plan.tone,
                    **({"cascade": cascade} if args.cascade else {}),
                }
            )
            cols["input"].append(kept)
            cols["default"].append(kept if left else full)
            fine = fine if little else None
            cols["gate"].append(fine if left else full)
            cols["change"].append(fine if little else full)
            rain_kept = little and fine_route(plan)  # the first API route: not rain, not underexposed
            cols["rain"].append(fine if rain_kept else full)
            sent["gate"] += left
            sent["change"] += little
            sent["rain"] += rain_kept
        below = {k: sum(v < x - 1e-6 for v, x in zip(cols[k], cols["input"], strict=True)) for k in cols}
        n = len(cols["input"])
        print(
            f"{test_set.name:<16} {n:>3} {_mean(cols['input']):>7} {_mean(cols['default']):>8}"
            f" {_mean(cols['gate']):>12} {sent['gate']:>4} {_mean(cols['change']):>14} {sent['change']:>4}"
            f" {_mean(cols['rain']):>17} {sent['rain']:>4}"
            f" {below['default']:>10}, {below['gate']}, {below['change']}, {below['rain']}",
            flush=True,
        )
    if args.per_image is not None and rows:
        with args.per_image.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


def _named_pairs(pairs: list[list[str]]) -> list[Protocol]:
    """``pairs_protocol`` of each (LQ_DIR, GT_DIR), a set named as its folder is (``x0.6`` for ``runs/dark/x0.6/lq``)
    unless two sets would share a name: then with the folder above it too (``dark-x0.6``, ``dark-srgb-x0.6``)."""
    protocols = [pairs_protocol(Path(a), Path(b)) for a, b in pairs]
    names = [p.sets[0].name for p in protocols]
    for k, (protocol, (lq, _)) in enumerate(zip(protocols, pairs, strict=True)):
        if names.count(names[k]) > 1:
            lq_dir = Path(lq).resolve()
            above = lq_dir.parent.parent.name if lq_dir.parent.name == names[k] else lq_dir.parent.name
            renamed = dataclasses.replace(protocol.sets[0], name=f"{above}-{names[k]}")
            protocols[k] = dataclasses.replace(protocol, sets=(renamed,))
    return protocols


def synthetic_protocol(kind: str, severity: str) -> Protocol:
    """A one-set protocol of ``kind`` at ``severity`` (0-1, as typed), drawn from CBSD68 as uir-5d's motion-blur set is
    (its photos, each photo's own seed): e.g. motion blur at other severities than uir-5d's 0.4."""
    if kind not in TYPES:
        raise SystemExit(f"fine_companion: unknown degradation type {kind!r}; known: {', '.join(sorted(TYPES))}")
    try:
        level = float(severity)
    except ValueError:
        raise SystemExit(f"fine_companion: a severity is a number from 0 to 1, not {severity!r}") from None
    if not 0.0 <= level <= 1.0:
        raise SystemExit(f"fine_companion: a severity is a number from 0 to 1, not {severity}")
    base = next(s for s in get_protocol("uir-5d").sets if s.name == "syn-motion-blur")
    assert base.synthesis is not None
    recipe = dataclasses.replace(base.synthesis, type=kind, severity=level)
    name = f"syn-{kind}-s{level:g}"
    test_set = dataclasses.replace(base, name=name, task=kind, synthesis=recipe)
    return Protocol(name, f"{kind} at severity {level:g}", (test_set,))


def _number(text: str) -> float | None:
    return None if text in ("", "None") else float(text)


API = "api"
CASCADE = "cascade"


def weigh(path: Path, gates: list[float], confidences: Sequence[float] = ()) -> int:
    """Per set: what ``uir.api.Model.restore_planned`` decides (``api_route``: ``uir.api.route`` with the grain test),
    from the CSV's figures: mean PSNR, images below their input, sent to the companion, left as they are; then the
    first route with clean-looking photos sent too whatever their grain, each ``gate`` of ``gates`` leaving those the
    companion changes by less (PSNR >= gate); under the set's line, the images the API's route puts below their
    input. A CSV written with ``--cascade`` adds *api, cascade*: the API's route with the model run on the companion's
    output where the route's third rule sends a photo to the companion (the model changes it little), not the
    companion's output alone; each of ``confidences`` adds the API's route with it in place of ``CLEAN_CONFIDENCE``."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    cascade = bool(rows) and "cascade" in rows[0]  # written by --cascade
    titles = ["api", *(["api, cascade"] if cascade else []), *(f"api, clean at {c:g}" for c in confidences)]
    titles += [f"clean too, gate {g:g}" for g in gates]
    print(f"{'set':<16} {'n':>3} {'input':>7} {'full':>7} {'default':>8}  " + "  ".join(
        f"{t + ': PSNR, below, sent, left':>44}" for t in titles))  # fmt: skip
    api = [(API, CLEAN_CONFIDENCE), *([(CASCADE, CLEAN_CONFIDENCE)] if cascade else [])]
    api += [(API, c) for c in confidences]  # the API's routes: (kind, clean confidence)
    for name in dict.fromkeys(r["set"] for r in rows):
        group = [r for r in rows if r["set"] == name]
        inputs = [float(r["input"]) for r in group]
        cells, worse = [], []
        # the gate alone, the API's routes (kind, confidence), the first route with each gate
        for gate in [None, *api, *gates]:
            values, sent, left = [], 0, 0
            for r in group:
                if isinstance(gate, tuple):
                    out, by = api_route(r, path, gate[1])
                    if gate[0] == CASCADE and by == "companion" and not _grainy_clean(r):  # rule 3
                        out = float(r["cascade"])
                    sent += by == "companion"
                    left += by is None
                    values.append(out)
                    if gate == api[0] and math.isfinite(float(r["input"])) and out < float(r["input"]) - 1e-6:
                        worse.append(f"{r['index']} ({by or 'input'}, {out - float(r['input']):+.2f} dB)")
                    continue
                model, change = float(r["model"]), float(r["model_change"])
                fine, fine_change = _number(r["companion"]), _number(r["companion_change"])
                clean_looking = _looks_clean(r)
                plan = Plan(("auto",), r["tone"], "", hint=r["hint"])
                little = changes_little(plan, change)
                routed = gate is not None and little and fine_route(plan)
                if routed and fine is None:
                    raise SystemExit(
                        f"fine_companion: {path} lacks the companion's figures"
                        f" (--look-from above {BLUR_SMALL_CHANGE_DB:g}?)"
                    )
                if routed:
                    stays, out = clean_looking and fine_change is not None and fine_change >= gate, fine
                else:
                    stays, out = clean_looking and little, model
                sent += routed
                left += stays
                values.append(float(r["input"]) if stays else out)
            below = sum(v < x - 1e-6 for v, x in zip(values, inputs, strict=True))
            cells.append((_mean(values), below, sent, left))
        full = _mean([float(r["model"]) for r in group])  # the model at strength 1, tone guard on
        default = cells[0]
        print(
            f"{name:<16} {len(group):>3} {_mean(inputs):>7} {full:>7} {default[0]:>8}  "
            + "  ".join(f"{c[0]:>26}, {c[1]:>3}, {c[2]:>3}, {c[3]:>3}" for c in cells[1:]),
            flush=True,
        )
        if worse:
            print(f"{'':<16} below their input under the API's route (index, by whom): {', '.join(worse)}")
        both = [r for r in group if _number(r["companion_change"]) is not None]
        if both:
            said = {
                who: " / ".join(f"{v:.1f}" for v in _deciles([float(r[f"{who}_change"]) for r in both]))
                for who in ("model", "companion")
            }
            print(
                f"{'':<16} change from the input (dB, 10th / 50th / 90th percentile of {len(both)}): model"
                f" {said['model']}, companion {said['companion']}; likeliest type clean:"
                f" {sum(r['hint'] == 'clean' for r in group)} of {len(group)}"
            )
        much = [r for r in group if _looks_clean(r) and float(r["model_change"]) < SMALL_CHANGE_DB]  # DARK_CLEAN_MEAN
        if much and all(_number(r.get("luminance", "")) is not None for r in much):
            spans = {
                "clean": [float(r["clean"]) for r in much],
                "change (dB)": [float(r["model_change"]) for r in much],
                "mean luminance": [float(r["luminance"]) for r in much],
                "model against input (dB)": [float(r["model"]) - float(r["input"]) for r in much],
            }
            if not all(math.isfinite(v) for v in spans["model against input (dB)"]):
                del spans["model against input (dB)"]  # a set scored against its input: the change says it
            said = ", ".join(f"{k} {min(v):.2f} to {max(v):.2f}" for k, v in spans.items())
            print(f"{'':<16} looks clean, changed much by the model: {len(much)} ({said})")
    return 0


def _grainy_clean(r: dict[str, str]) -> bool:
    """Whether ``uir.api.route``'s first rule sends the row to the companion (it looks clean but has grain)."""
    return grainy_clean(Plan(("auto",), r["tone"], "", hint=r["hint"], grain=_number(r.get("grain", ""))))


def _looks_clean(r: dict[str, str], confidence: float = CLEAN_CONFIDENCE) -> bool:
    return looks_clean(Plan(("auto",), r["tone"], "", clean=_number(r["clean"])), confidence)


def crossover(args: argparse.Namespace) -> int:
    """Per noise level, the mean PSNR of the model (tone guard ``no-brightening``) and of the companion (``keep``) on
    every 9th CBSD68 photo, with the grain the companion finds (``residual_grain``): the evidence for
    ``uir.api.GRAIN_CEILING``. Camera noise: the engine's ``camera-noise`` with the companion's training parameters."""
    if args.data_root is None or not (args.data_root / "denoise/CBSD68").is_dir():
        raise SystemExit("fine_companion: --crossover needs CBSD68 under --data-root (denoise/CBSD68)")
    torch.set_grad_enabled(False)
    model = load(args.model, companion="auto" if args.companion is None else args.companion)
    if model.companion is None:
        raise SystemExit(f"fine_companion: {args.model} has no companion; name one with --companion")
    photos = [read_image(p).image for p in sorted((args.data_root / "denoise/CBSD68").glob("*.png"))[::9]]
    camera = {"camera-noise": {"camera-noise": {"nr": 1.0, "quality": 75, "chroma_nr": 6.0}}}
    print(f"model {model.name}, companion {model.companion.name}, {len(photos)} photos")
    print(f"{'damage':<18} {'input':>6} {'model':>6} {'companion':>9} {'grain (min-max)':>20} {'companion ahead':>16}")
    for kind, level in [
        *(("camera noise", s) for s in (0.2, 0.4, 0.55, 0.7, 1.0)),
        *(("white σ", s) for s in (5, 10, 15, 20, 25)),
    ]:
        rows = []
        for k, gt in enumerate(photos):
            generator = torch.Generator().manual_seed(k)
            if kind == "camera noise":
                lq = apply(gt, Mix("crossover", {"camera-noise": 1.0}, (level, level), camera).draw(generator))
            else:
                lq = (gt + torch.randn(gt.shape, generator=generator) * level / 255).clamp(0, 1)
            lq = (lq * 255).round() / 255
            net = guard_tone(restore_tensor(model.restorer, lq), lq, "no-brightening").clamp(0, 1)
            fine = guard_tone(restore_tensor(model.companion, lq), lq, "keep").clamp(0, 1)
            rows.append([float(psnr(x, gt)[0]) for x in (lq, net, fine)] + [float(residual_grain(lq, fine)[0])])
        t = torch.tensor(rows)
        grain = f"{t[:, 3].mean():.2f} ({t[:, 3].min():.2f}-{t[:, 3].max():.2f})"
        ahead = f"{int((t[:, 2] > t[:, 1]).sum())} of {len(t)}"
        means = f"{t[:, 0].mean():6.2f} {t[:, 1].mean():6.2f} {t[:, 2].mean():9.2f}"
        print(f"{kind + ' ' + f'{level:g}':<18} {means} {grain:>20} {ahead:>16}", flush=True)
    return 0


def api_route(r: dict[str, str], path: Path, confidence: float = CLEAN_CONFIDENCE) -> tuple[float, str | None]:
    """What ``uir.api.Model.restore_planned`` gives a CSV row under the default settings: the PSNR of the output and
    who made it (``model``, ``companion``, or ``None``: the input left as it is), decided by ``uir.api.route``."""
    change = float(r["model_change"])
    clean_looking = _looks_clean(r, confidence)
    luminance = _number(r.get("luminance", ""))
    if clean_looking and change < SMALL_CHANGE_DB and luminance is None:
        raise SystemExit(f"fine_companion: {path} lacks the luminance for row {r['set']} {r['index']} (an older CSV)")
    plan = Plan(
        ("auto",),
        r["tone"],
        "",
        hint=r["hint"],
        strength=0.0 if clean_looking else 1.0,
        restored_by="model",
        mean_luminance=luminance,
    )
    ran = runs_companion(plan, change)  # as restore_planned runs it
    grain = _number(r.get("grain", ""))  # a CSV written before the grain test has no such column: it cannot be weighed
    if ran and grain is None:
        raise SystemExit(
            f"fine_companion: {path} lacks the companion's figures for row {r['set']} {r['index']}"
            f" (--look-from above {BLUR_SMALL_CHANGE_DB:g}?)"
        )
    plan = route(dataclasses.replace(plan, grain=grain if ran else None), change, "companion" if ran else None)
    by = plan.restored_by
    return {None: float(r["input"]), "model": float(r["model"])}.get(by, _number(r["companion"]) or 0.0), by


def _deciles(values: list[float]) -> list[float]:
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.1, 0.5, 0.9)]


if __name__ == "__main__":
    raise SystemExit(main())
