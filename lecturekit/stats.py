r"""Gradient statistics: ĝ, σ̂ and B* per coordinate, and the gradient noise scale.

For a batch of B examples with per-example gradients g_b = ∇_Φ loss(Φ, x_b, y_b), the slides
("Calculating B and η_B in One Dimension", "A Derived Algorithm") use, per coordinate c,

.. math::

    \hat g[c] = E_{b}\, g_b[c], \qquad
    \hat\sigma[c] = \sqrt{E_{b}\,(g_b[c] - \hat g[c])^2}, \qquad
    B^*[c] = \frac{16\,\hat\sigma[c]^2}{\hat g[c]^2}.

σ̂ is the batch's own standard deviation (divisor B, as on the slide), not the unbiased one.
The gradient noise scale of McCandlish et al. (2018) is the expected-progress counterpart,
B_simple = tr(Σ)/|G|², estimated without per-example gradients from two batch sizes.
Taught in the Learning Rate and Batch Size chapter (and used by the Momentum chapter).
"""

from __future__ import annotations

import torch

__all__ = ["flatten", "per_example_grads", "moments", "b_star", "b_star_from_moments",
           "noise_scale"]


def flatten(tensors) -> torch.Tensor:
    """Concatenate tensors (parameters, or their gradients) into one flat vector."""
    return torch.cat([t.flatten() for t in tensors])


def per_example_grads(losses: torch.Tensor, params) -> torch.Tensor:
    """Per-example gradients as a (B, P) matrix, from a vector of B per-example losses.

    One forward pass builds ``losses``; each row is one backward pass through it. (The
    attention model's packed RNN is not vmap-able, so this loop is the general method.)
    """
    params = list(params)
    if losses.dim() != 1:
        raise ValueError(f"losses must be a vector (one loss per example), got {losses.dim()}-D")
    rows = []
    for b in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[b], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if gr is None else gr).flatten()
                               for gr, p in zip(grads, params, strict=True)]))
    return torch.stack(rows)


def moments(per_example: torch.Tensor):
    """ĝ and σ̂ per coordinate from per-example gradients of shape (B, ...).

    σ̂² is computed as E_b (g_b − ĝ)², which is never negative; no clamping is needed.
    """
    g_hat = per_example.mean(0)
    sigma_hat = (per_example - g_hat).pow(2).mean(0).sqrt()
    return g_hat, sigma_hat


def _b_star(g2: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """16 σ² / g², +inf where g² = 0."""
    return torch.where(g2 > 0, 16 * sigma2 / g2.clamp_min(torch.finfo(g2.dtype).tiny),
                       torch.full_like(g2, float("inf")))


def b_star(g_hat: torch.Tensor, sigma_hat: torch.Tensor) -> torch.Tensor:
    """B*[c] = 16 σ̂[c]² / ĝ[c]²; +inf where ĝ[c] = 0 (no batch size makes that step safe)."""
    return _b_star(g_hat.pow(2), sigma_hat.pow(2))


def b_star_from_moments(mean: torch.Tensor, mean_sq: torch.Tensor) -> torch.Tensor:
    """B* from running first and second moments (g̃, s̃ of the derived algorithm):
    σ̃² = s̃ − g̃², clamped at 0 where rounding makes it negative; +inf where g̃ = 0."""
    g2 = mean.pow(2)
    return _b_star(g2, (mean_sq - g2).clamp_min(0))


def noise_scale(g_small_sq, g_big_sq, B_small: int, B_big: int):
    """McCandlish et al.'s unbiased estimates from squared gradient norms at two batch sizes.

    With E|G_B|² = |G|² + tr(Σ)/B,

    .. math::

        |G|^2 \\approx \\frac{B_{big}|G_{B_{big}}|^2 - B_{small}|G_{B_{small}}|^2}
                           {B_{big} - B_{small}}, \\qquad
        \\mathrm{tr}\\,\\Sigma \\approx \\frac{|G_{B_{small}}|^2 - |G_{B_{big}}|^2}
                                    {1/B_{small} - 1/B_{big}},

    and B_simple = tr(Σ)/|G|². Pass means of |G_B|² over many batches: the two estimates are
    averaged separately before the ratio is taken, as the paper recommends. Returns
    ``(G2, trace_sigma, B_simple)``.
    """
    if not 0 < B_small < B_big:
        raise ValueError(f"need 0 < B_small < B_big, got {B_small}, {B_big}")
    G2 = (B_big * g_big_sq - B_small * g_small_sq) / (B_big - B_small)
    trace_sigma = (g_small_sq - g_big_sq) / (1 / B_small - 1 / B_big)
    return G2, trace_sigma, trace_sigma / G2
