"""NumPy and SciPy functions the preprocessing uses, written in torch operations that
`torch.onnx.export` and TorchScript translate: `interp` (numpy.interp) and `ndtri` (the
standard normal quantile function), both in float64.
"""

from __future__ import annotations

import numpy as np
import torch

# Wichura (1988), "Algorithm AS 241: The Percentage Points of the Normal Distribution",
# Applied Statistics 37(3), 477-484: PPND16, relative error about 1e-16. Coefficients
# highest degree first (Horner's scheme). The same constants as CPython's
# statistics.NormalDist.inv_cdf.
_CENTRAL_NUM = (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                1.3314166789178437745e+2, 3.3871328727963666080e+0)
_CENTRAL_DEN = (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                4.2313330701600911252e+1, 1.0)
_TAIL_NUM = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
             1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
             4.63033784615654529590e+0, 1.42343711074968357734e+0)
_TAIL_DEN = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
             1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
             2.05319162663775882187e+0, 1.0)
_FAR_NUM = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
            5.46378491116411436990e+0, 6.65790464350110377720e+0)
_FAR_DEN = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)


def f64(value: float) -> torch.Tensor:
    """A float64 constant. torch's ONNX exporter writes a Python float that meets a float64
    tensor as a float32 constant (1 - 1e-7 becomes 0.99999988): every constant whose digits
    matter is written with this instead."""
    return torch.tensor(value, dtype=torch.float64)


def _horner(coefficients: tuple[float, ...], r: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(r) + f64(coefficients[0])
    for c in coefficients[1:]:
        out = out * r + f64(c)
    return out


def ndtri(p: torch.Tensor) -> torch.Tensor:
    """The standard normal quantile function (scipy.special.ndtri) of ``p`` in (0, 1).

    Parameters
    ----------
    p : torch.Tensor of float64, any shape
        Probabilities strictly between 0 and 1 (the preprocessing clips them to
        [1e-7, 1 - 1e-7] first).

    Returns
    -------
    torch.Tensor
        z with Phi(z) = p, same shape; agrees with scipy.special.ndtri to about 1e-15.

    Notes
    -----
    Wichura's AS 241 (PPND16) rational approximations in their three regions, each computed
    everywhere and chosen with ``where`` so that the graph has no control flow (an argument
    outside a region's range gives a finite value there that is not chosen).
    """
    q = p - 0.5
    r_central = f64(0.180625) - q * q
    central = q * _horner(_CENTRAL_NUM, r_central) / _horner(_CENTRAL_DEN, r_central)
    tail_p = torch.maximum(torch.where(q <= 0.0, p, 1.0 - p), f64(1e-300))
    r = torch.sqrt(-torch.log(tail_p))
    near = _horner(_TAIL_NUM, r - f64(1.6)) / _horner(_TAIL_DEN, r - f64(1.6))
    far = _horner(_FAR_NUM, r - 5.0) / _horner(_FAR_DEN, r - 5.0)
    tail = torch.where(r <= 5.0, near, far)
    tail = torch.where(q < 0.0, -tail, tail)
    return torch.where(torch.abs(q) <= f64(0.425), central, tail)


def interp_table(xp: list[list[float]], fp: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column points of `interp` as two float64 tensors [F, Q]: a column with fewer
    points repeats its last one (the repeats lie past its last point, where `interp` returns
    the last value anyway)."""
    width = max((len(x) for x in xp), default=1)
    pad = [list(x) + [x[-1]] * (width - len(x)) for x in xp]
    pad_f = [list(f) + [f[-1]] * (width - len(f)) for f in fp]
    return (torch.tensor(np.asarray(pad, dtype="float64").reshape(len(xp), width)),
            torch.tensor(np.asarray(pad_f, dtype="float64").reshape(len(fp), width)))


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """numpy.interp of each column of ``x`` over its own points.

    Parameters
    ----------
    x : torch.Tensor of float64, shape [B, F]
    xp, fp : torch.Tensor of float64, shape [F, Q] (Q >= 2)
        Each column's non-decreasing points and their values (`interp_table`).

    Returns
    -------
    torch.Tensor, shape [B, F]
        As ``numpy.interp(x[:, j], xp[j], fp[j])`` for every column j, with the same
        arithmetic: the segment is the last point at or below x (tied points resolved as
        NumPy does), ``slope * (x - xp[j]) + fp[j]`` inside, ``fp[0]`` and ``fp[-1]`` outside.
    """
    n_features, n_points = xp.shape
    below = (x.unsqueeze(-1) >= xp).to(torch.int64).sum(dim=-1) - 1  # [B, F]: last point <= x
    segment = below.clamp(0, n_points - 2)
    # Gather from the flattened table: ONNX's Gather, with one offset per column.
    flat = segment + torch.arange(n_features, dtype=torch.int64) * n_points
    xp_flat, fp_flat = xp.reshape(-1), fp.reshape(-1)
    x0, x1, y0, y1 = xp_flat[flat], xp_flat[flat + 1], fp_flat[flat], fp_flat[flat + 1]
    slope = (y1 - y0) / (x1 - x0)  # x1 > x0 wherever the segment is the one chosen below
    inside = slope * (x - x0) + y0
    out = torch.where(below < 0, fp[:, 0], inside)
    return torch.where(x >= xp[:, -1], fp[:, -1], out)


__all__ = ["f64", "interp", "interp_table", "ndtri"]
