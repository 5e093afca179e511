"""Figure helpers: each takes an ``ax``, draws, and returns it; none touches pyplot state."""

from __future__ import annotations

import numpy as np

__all__ = ["hist_vs_normal", "normal_pdf"]


def normal_pdf(x, mean: float, var: float):
    """The N(mean, var) density at x."""
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def hist_vs_normal(ax, samples, mean: float, var: float, *, bins=50, color="C0", label=None):
    """Density histogram of ``samples`` with the N(mean, var) curve the theory predicts.

    Used wherever the book sets a simulated distribution beside its closed form.
    """
    samples = np.asarray(samples, dtype=float).ravel()
    ax.hist(samples, bins=bins, density=True, color=color, alpha=0.45, label=label)
    lo, hi = np.quantile(samples, [0.0005, 0.9995])
    pad = 0.1 * (hi - lo)
    x = np.linspace(lo - pad, hi + pad, 400)
    ax.plot(x, normal_pdf(x, mean, var), color=color, lw=1.8)
    return ax
