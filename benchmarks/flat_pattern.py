"""Does a model write a pattern of its own on a flat field? (issue 19: the grid seen at 400 % zoom)

    make runs/nafnet-fr-v2.safetensors  # v2, which left the package, from the repository's history
    python benchmarks/flat_pattern.py --models nafnet-fr-v2.1 runs/nafnet-fr-v2.safetensors fast --sigma 25 0

A flat grey photo (levels 0.2, 0.5, 0.8), with white Gaussian noise of ``--sigma`` (of 255) or none, restored by each
model. The truth is flat, so whatever periodic structure the output has is the model's own. Prints per model and
sigma and grey level, in 8-bit levels (of 255) of the luminance: the mean change of the output (a bare network may
brighten a flat dark field: it looks underexposed), its RMS error around its own mean, the
range of the four 2×2 sub-pixel phase means (a pixel-shuffle or 2×2 down/up-sampling grid) and the range of the
eight column and row means modulo 8 (the 8-px pattern of three such stages). A 16-px border is left out.
"""

from __future__ import annotations

import argparse

import torch

from uir.restorers import load_restorer

BORDER = 16


def pattern(out: torch.Tensor, level: float) -> tuple[float, ...]:
    """``(mean change, rms around the mean, 2x2 phase range, 8-px column range, 8-px row range)`` of one output, in
    8-bit levels."""
    y = out[0].mean(0)[BORDER:-BORDER, BORDER:-BORDER] * 255
    shift, rms = float(y.mean() - level * 255), float(y.std())
    phases = torch.stack([y[i::2, j::2].mean() for i in range(2) for j in range(2)])
    columns = torch.stack([y[:, k::8].mean() for k in range(8)])
    rows = torch.stack([y[k::8, :].mean() for k in range(8)])
    return shift, rms, *(float(v.max() - v.min()) for v in (phases, columns, rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--sigma", type=float, nargs="+", default=[25.0, 0.0], help="noise σ of 255")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    levels = (0.2, 0.5, 0.8)
    print("model, sigma, grey: mean change / RMS around the mean / 2x2 phase range / 8-px column / row range (of 255)")
    for name in args.models:
        model = load_restorer(name)
        for sigma in args.sigma:
            for level in levels:
                generator = torch.Generator().manual_seed(args.seed)
                flat = torch.full((1, 3, args.size, args.size), level)
                noisy = (flat + sigma / 255 * torch.randn(flat.shape, generator=generator)).clamp(0, 1)
                with torch.no_grad():
                    values = pattern(model.restore(noisy), level)
                print(f"{model.name}, σ {sigma:g}, {level:g}: " + " / ".join(f"{v:+.2f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
