"""Per-image summary of one model in a ``uir eval`` results file: how many images came back identical to their
reference (PSNR inf), the mean and minimum PSNR of the others, and how many are below a floor (issue 24's dark
photos: each output >= 35 dB against its input).

    python scripts/per_image_summary.py runs/dark-x0.6/results.json:"nafnet-fr-v2.1 [auto]" --floor 35

Without ``:MODEL`` the first model that is not ``input`` is taken.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="RESULTS.json or RESULTS.json:MODEL")
    parser.add_argument("--floor", type=float, default=35.0, help="count the images below this PSNR (dB)")
    args = parser.parse_args(argv)
    path, _, wanted = args.results.partition(".json:")
    path = Path(path if args.results.endswith(".json") else f"{path}.json")
    if not path.is_file():
        raise SystemExit(f"per_image_summary: {path}: no such results file")
    for entry in json.loads(path.read_text())["sets"]:
        models = entry["models"]
        name = wanted or next((m for m in models if m != "input"), None)
        if name not in models:
            raise SystemExit(f"per_image_summary: no model {name!r} in {path}; it has: {', '.join(models)}")
        values = [float(v) for v in models[name]["per_image"]["psnr"].values()]
        finite = [v for v in values if math.isfinite(v)]
        below = sum(v < args.floor for v in finite)
        rest = f"the other {len(finite)}: mean {sum(finite) / len(finite):.2f}, min {min(finite):.2f}" if finite else ""
        print(f"{entry['name']} / {name}: {len(values) - len(finite)} of {len(values)} identical; {rest}; "
              f"{below} below {args.floor:g} dB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
