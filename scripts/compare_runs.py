"""Compare two models image by image from ``uir eval``'s ``results.json`` files.

    python scripts/compare_runs.py runs/eval-p3/results.json:nafnet-fr-v2-p3 runs/eval-p2/results.json:nafnet-small-uir

Each argument is ``RESULTS.json:MODEL`` (the model's name as in the table; ``:MODEL`` may be left out when the file
holds one model besides ``input``). For every set both files scored on the same images, prints the mean PSNR of
each, the mean difference (first minus second) with its standard error over images (paired), the smallest and
largest per-image difference, how many images the first wins (and ties) and how many it is more than ``--behind``
dB behind on (a collapse on a few images, not a small loss spread over all). ``:input`` names a file's inputs, so
``RESULTS.json:MODEL RESULTS.json:input`` counts the images a model made worse. A difference within about two
standard errors is not told apart from noise on that set. ``--worst N`` then names, per set, the N images the first
is most behind the second on (with ``:input`` as the second: the ones it made worst).

``--seed-pair A B`` (repeatable) adds the same comparison from other seeds' files: after the per-image table, one
row per set with the mean difference of each pair, their mean and half their range (the spread over seeds), and a
last row over the sets' means (the benchmark's average, as ``uir eval`` computes it):

    python scripts/compare_runs.py runs/i21/pir-s0/eval-uir-5d/results.json:perceiveir-full/final \
        runs/i21/pir-s0/eval-uir-5d/results.json:restormer-l1/final \
        --seed-pair runs/i21/pir-s1/eval-uir-5d/results.json:perceiveir-full/final \
        runs/i21/pir-s1/eval-uir-5d/results.json:restormer-l1/final

With one argument, ``--floor DB`` summarizes that model alone per set: how many images came back identical to their
reference (PSNR inf: left as they are), the mean and minimum of the others, and how many are below the floor (issue
24's dark photos: each output >= 35 dB against its input).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def scores(spec: str) -> tuple[str, dict[str, dict[str, float]]]:
    """``{set: {image: psnr}}`` of one model in one results file."""
    path, _, model = spec.partition(":")
    if not Path(path).is_file():
        raise SystemExit(f"compare_runs: {path}: no such file")
    try:
        sets = json.loads(Path(path).read_text())["sets"]
    except (ValueError, KeyError, TypeError):
        raise SystemExit(f"compare_runs: {path}: not a uir eval results.json") from None
    names = sorted({m for s in sets for m in s["models"] if m != "input"})
    if not model:
        if len(names) != 1:
            raise SystemExit(f"compare_runs: {path} holds {', '.join(names)}: name one as {path}:MODEL")
        model = names[0]
    if model not in [*names, "input"]:
        raise SystemExit(f"compare_runs: {path} has no model {model!r}; it has {', '.join(names)}")
    found = {s["name"]: s["models"][model]["per_image"]["psnr"] for s in sets if model in s["models"]}
    return model, found


def paired(a: dict[str, float], b: dict[str, float], behind: float = 5.0) -> dict[str, float] | None:
    """Mean difference ``a − b`` over the images both hold, its standard error, extremes, wins of ``a`` and the
    images where ``a`` is more than ``behind`` dB behind; ``None`` when no image has a finite PSNR in both (a set
    scored against its own inputs, left as they are)."""
    shared = sorted(set(a) & set(b))
    diffs = [a[k] - b[k] for k in shared if math.isfinite(a[k]) and math.isfinite(b[k])]
    n = len(diffs)
    if n == 0:
        return None
    mean = sum(diffs) / n
    spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else float("nan")
    return {"n": n, "a": sum(a[k] for k in shared) / len(shared), "b": sum(b[k] for k in shared) / len(shared),
            "diff": mean, "se": spread / math.sqrt(n), "min": min(diffs), "max": max(diffs),
            "wins": sum(d > 0 for d in diffs), "ties": sum(d == 0 for d in diffs),
            "behind": sum(d < -behind for d in diffs)}  # fmt: skip


def summary(model: str, sets: dict[str, dict[str, float]], floor: float) -> int:
    """One model's per-image PSNR per set: identical images (inf), the others' mean and minimum, those below floor."""
    for name, psnrs in sets.items():
        values = [float(v) for v in psnrs.values()]
        finite = [v for v in values if math.isfinite(v)]
        rest = f"the other {len(finite)}: mean {sum(finite) / len(finite):.2f}, min {min(finite):.2f}" if finite else ""
        below = sum(v < floor for v in finite)
        left = len(values) - len(finite)
        print(f"{name} / {model}: {left} of {len(values)} identical; {rest}; {below} below {floor:g} dB")
    return 0


Sets = dict[str, dict[str, float]]


def over_seeds(loaded: list[tuple[Sets, Sets]]) -> int:
    """Each pair's mean difference per set (the sets every file holds), their mean ± half range, and the same over
    the sets' means."""
    common = [s for s in loaded[0][0] if all(s in a and s in b for a, b in loaded)]
    if not common:
        raise SystemExit("compare_runs: the seed pairs share no set")
    pairs = {name: [paired(a[name], b[name]) for a, b in loaded] for name in common}
    rows = {name: [r["diff"] for r in found] for name, found in pairs.items() if all(r is not None for r in found)}
    common = list(rows)
    if not common:
        raise SystemExit("compare_runs: no set has a finite PSNR in every pair")
    rows["average"] = [sum(rows[name][i] for name in common) / len(common) for i in range(len(loaded))]
    print(f"\na − b over {len(loaded)} seed pairs (PSNR dB; mean ± half range; average: the mean over sets)")
    print("| set | " + " | ".join(f"pair {i + 1}" for i in range(len(loaded))) + " | mean ± half range |")
    print("|---|" + "---|" * len(loaded) + "---|")
    for name, diffs in rows.items():
        mean, half = sum(diffs) / len(diffs), (max(diffs) - min(diffs)) / 2
        print(f"| {name} | " + " | ".join(f"{d:+.2f}" for d in diffs) + f" | {mean:+.2f} ± {half:.2f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="RESULTS.json[:MODEL]")
    p.add_argument("second", nargs="?", help="RESULTS.json[:MODEL] (without it: the first alone, see --floor)")
    p.add_argument("--floor", type=float, default=35.0, help="one file: count the images below this PSNR (dB)")
    p.add_argument("--behind", type=float, default=5.0, help="two files: count the images a is this far behind (dB)")
    p.add_argument(
        "--worst", type=int, default=0, metavar="N", help="two files: name each set's N images a is most behind on"
    )
    p.add_argument("--seed-pair", nargs=2, action="append", default=[], metavar=("A", "B"),
                   help="the same comparison from another seed (repeatable): a table over the seeds")  # fmt: skip
    args = p.parse_args(argv)
    if args.worst < 0:
        raise SystemExit("compare_runs: --worst is a count of images, 0 or more")
    if args.second is None:
        if args.seed_pair:
            raise SystemExit("compare_runs: --seed-pair needs two files to compare")
        return summary(*scores(args.first), args.floor)
    (name_a, a), (name_b, b) = scores(args.first), scores(args.second)
    common = [s for s in a if s in b]
    if not common:
        raise SystemExit("compare_runs: the two files share no set")
    print(f"{name_a} (a) against {name_b} (b), PSNR dB, per image a − b")
    print(
        f"| set | images | a | b | a − b ± s.e. | smallest | largest | a wins (ties) | a > {args.behind:g} dB behind |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in common:
        r = paired(a[name], b[name], args.behind)
        if r is None:
            print(f"| {name} | 0 with a finite PSNR in both | | | | | | | |")
            continue
        print(f"| {name} | {r['n']} | {r['a']:.3f} | {r['b']:.3f} | {r['diff']:+.3f} ± {r['se']:.3f} | "
              f"{r['min']:+.2f} | {r['max']:+.2f} | {r['wins']}/{r['n']} ({r['ties']}) | {r['behind']} |")  # fmt: skip
    if args.worst > 0:
        for name in common:
            diffs = {k: a[name][k] - b[name][k] for k in set(a[name]) & set(b[name])}
            worst = sorted((d, k) for k, d in diffs.items() if math.isfinite(d))[: args.worst]
            print(f"{name}, a most behind: " + ", ".join(f"{k} {d:+.2f}" for d, k in worst))
    if args.seed_pair:
        return over_seeds([(a, b), *((scores(x)[1], scores(y)[1]) for x, y in args.seed_pair)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
