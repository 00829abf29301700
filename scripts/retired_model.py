"""Write a model that left the package, from the repository's history (what ``make runs/NAME.safetensors`` runs).

    python scripts/retired_model.py nafnet-fr-v2 runs/nafnet-fr-v2.safetensors

The names and the ``commit:path`` that holds each file are ``RETIRED_FILES`` in src/uir/pretrained.py, read here
without importing uir (so no torch is needed). The file is written next to OUT first and renamed into place, so an
interrupted run leaves no half file. Needs a clone with its history (not a shallow one).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "src" / "uir" / "pretrained.py"


def retired_files(source: Path = PRETRAINED) -> dict[str, str]:
    """``RETIRED_FILES`` of ``source``, parsed (a plain dict literal there)."""
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "RETIRED_FILES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"retired_model: {source} has no RETIRED_FILES")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a retired model's name")
    p.add_argument("out", type=Path, help="where to write its .safetensors file")
    args = p.parse_args(argv)
    files = retired_files()
    if args.name not in files:
        print(
            f"retired_model: {args.name} is not a retired model; retired: {', '.join(sorted(files))}", file=sys.stderr
        )
        return 2
    shown = subprocess.run(["git", "-C", str(ROOT), "show", files[args.name]], capture_output=True)
    if shown.returncode != 0:
        said = shown.stderr.decode(errors="replace").strip().splitlines()
        print(
            f"retired_model: git cannot show {files[args.name]} ({said[0] if said else 'no git?'}); "
            "it needs a clone with its history (git fetch --unshallow)",
            file=sys.stderr,
        )
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".part")
    partial.write_bytes(shown.stdout)
    partial.replace(args.out)
    print(f"wrote {args.out} ({len(shown.stdout) / 2**20:.1f} MiB, {files[args.name]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
