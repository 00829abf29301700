"""Natural-scene-statistics features of NIQE (Mittal et al. 2013; BRISQUE, 2012, uses the same fits).

NIQE fits asymmetric generalized Gaussian distributions to mean-subtracted contrast-normalized (MSCN)
coefficients and to products of neighbouring coefficients, by moment matching over MATLAB's grid of shape
parameters ``0.2:0.001:10`` (the first grid point wins ties, as MATLAB's ``min`` does).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

# Neighbour shifts (rows, cols) of the four orientations: horizontal, vertical, main and anti-diagonal.
NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@lru_cache(maxsize=1)
def _grid() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Shape grid ``alpha`` and ``Gamma(1/alpha)``, ``Gamma(2/alpha)``, ``Gamma(3/alpha)``, float64 ``(9801,)``."""
    alphas = [0.2 + 0.001 * k for k in range(9801)]
    g1, g2, g3 = ([math.gamma(m / a) for a in alphas] for m in (1, 2, 3))
    return tuple(torch.tensor(v, dtype=torch.float64) for v in (alphas, g1, g2, g3))


def _side_std(x: Tensor, side: Tensor) -> Tensor:
    """Root mean square of the entries of each row selected by ``side`` (NaN where none is)."""
    return torch.sqrt((x * x * side).sum(dim=1) / side.sum(dim=1))


def aggd_fit(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Fit an asymmetric generalized Gaussian to each row (MATLAB ``estimateaggdparam``).

    Args:
        x: ``(N, L)`` float64 samples.

    Returns:
        ``(alpha, left_std, right_std)``, each ``(N,)``; rows without negative or positive samples give
            NaN stds and ``alpha = 0.2``, as in MATLAB.
    """
    alphas, g1, g2, g3 = _grid()
    left = _side_std(x, x < 0)
    right = _side_std(x, x > 0)
    gamma_hat = left / right
    r_hat = x.abs().mean(dim=1) ** 2 / (x * x).mean(dim=1)
    r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    r_gam = g2**2 / (g1 * g3)
    index = torch.argmin((r_gam[None, :] - r_hat_norm[:, None]) ** 2, dim=1)
    # MATLAB's min over all-NaN differences returns the first grid point; the stds stay NaN.
    index = torch.where(torch.isnan(r_hat_norm), 0, index)
    return alphas[index], left, right


def aggd_scales(alpha: Tensor, left_std: Tensor, right_std: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """AGGD scale parameters and mean (Mittal et al. 2012, Eq. 8).

    Returns:
        ``(beta_left, beta_right, mean)``, each shaped like ``alpha``.
    """
    ratio = torch.sqrt(torch.exp(torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    beta_left, beta_right = left_std * ratio, right_std * ratio
    mean = (beta_right - beta_left) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
    return beta_left, beta_right, mean


def neighbour_products(blocks: Tensor, shifts: tuple[tuple[int, int], ...]) -> list[Tensor]:
    """Products of each coefficient with its circularly shifted neighbour (MATLAB ``circshift`` per block).

    Args:
        blocks: ``(N, h, w)`` MSCN coefficients.
        shifts: ``(rows, cols)`` shifts, MATLAB's sign convention.

    Returns:
        One ``(N, h·w)`` tensor per shift.
    """
    flat = blocks.flatten(1)
    return [(flat * torch.roll(blocks, shifts=s, dims=(1, 2)).flatten(1)) for s in shifts]
