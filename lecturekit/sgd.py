"""Vanilla SGD, Φ −= η ĝ, run on the lecture's small problems, with learning-rate schedules.

The runners return arrays; the plots live in the notebooks and :mod:`lecturekit.plots`.
Taught in the SGD chapter.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .problems import OneDim

__all__ = [
    "power_schedule", "run_one_dim", "one_dim_moments", "momentum_moments", "gradient_descent",
    "stall_factor", "path",
]


def power_schedule(eta0: float, p: float) -> Callable[[np.ndarray], np.ndarray]:
    """The schedule η_t = η_0 / t^p for t = 1, 2, ...

    Σ_t η_t = ∞ exactly when p ≤ 1, and Σ_t η_t² < ∞ exactly when p > ½, so the classical
    theorem (both conditions) covers ½ < p ≤ 1; p = 0 is a constant learning rate.
    """
    if eta0 <= 0:
        raise ValueError(f"eta0 must be positive, got {eta0}")
    if p < 0:
        raise ValueError(f"p must be non-negative, got {p}")

    def eta(t):
        return eta0 / np.asarray(t, dtype=float) ** p

    return eta


def _rates(eta, T: int) -> np.ndarray:
    """η_1, ..., η_T from a number (constant rate) or a schedule ``eta(t)``."""
    etas = np.broadcast_to(eta(np.arange(1, T + 1)) if callable(eta) else float(eta), (T,))
    if not np.all(etas > 0):
        raise ValueError("learning rates must be positive")
    return etas


def run_one_dim(
    problem: OneDim,
    beta0: float,
    eta,
    B: int,
    T: int,
    n_chains: int,
    rng: np.random.Generator,
    every: int = 1,
) -> np.ndarray:
    """Run ``n_chains`` independent copies of SGD on the 1-D example for T steps.

    .. math::

        \\hat g^t = \\beta^t - E_{\\mathrm{Batch}_t}[y], \\qquad
        \\beta^{t+1} = \\beta^t - \\eta_t\\, \\hat g^t .

    ``eta`` is a number (constant rate) or a schedule ``eta(t)`` for t = 1..T. Returns β at
    steps 0, every, 2·every, ..., T as an array of shape (T // every + 1, n_chains).
    """
    if T < 1 or n_chains < 1 or every < 1:
        raise ValueError("T, n_chains and every must be positive")
    etas = _rates(eta, T)
    beta = np.full(n_chains, float(beta0))
    out = [beta.copy()]
    for t in range(T):
        g_hat = problem.g_hat(beta, rng, B)
        beta = beta - etas[t] * g_hat
        if (t + 1) % every == 0:
            out.append(beta.copy())
    return np.array(out)


def one_dim_moments(problem: OneDim, beta0: float, eta, B: int, T: int):
    """Exact mean and variance of e^t = β^t − ȳ under SGD on the 1-D example, t = 0..T.

    Each step is e^{t+1} = (1 − η_t) e^t + η_t ξ^t with ξ^t independent of e^t, mean 0 and
    variance σ²/B, so the first two moments follow a deterministic recursion:

    .. math::

        m^{t+1} = (1 - \\eta_t)\\, m^t, \\qquad
        v^{t+1} = (1 - \\eta_t)^2\\, v^t + \\eta_t^2\\, \\sigma^2 / B,

    from m^0 = β_0 − ȳ and v^0 = 0. For a constant η, v^t tends to
    :meth:`OneDim.stationary_var`; for η_t = η_0/t^p, m^t is the product in :func:`stall_factor`.
    Returns ``(m, v)``, two arrays of length T + 1; the RMS distance is sqrt(m² + v).
    """
    etas = _rates(eta, T)
    m, v = np.empty(T + 1), np.empty(T + 1)
    m[0], v[0] = beta0 - problem.mean_y, 0.0
    for t in range(T):
        m[t + 1] = (1 - etas[t]) * m[t]
        v[t + 1] = (1 - etas[t]) ** 2 * v[t] + etas[t] ** 2 * problem.var_y / B
    return m, v


def momentum_moments(problem: OneDim, beta0: float, eta: float, mu: float, B: int, T: int):
    r"""Exact mean and variance of e^t = β^t − ȳ under the slide's EMA momentum, t = 0..T.

    With ĝ = e − ξ (ξ = E_Batch[y] − ȳ, mean 0, variance σ²/B) the slide's update

    .. math::

        \tilde g^{t+1} = \mu\, \tilde g^t + (1-\mu)\, \hat g, \qquad
        e^{t+1} = e^t - \eta\, \tilde g^{t+1}

    is linear in z = (e, g̃): z' = A z + b ξ with
    A = [[1 − η(1 − μ), −ημ], [1 − μ, μ]] and b = (η(1 − μ), −(1 − μ)). So the mean follows
    m' = A m and the covariance C' = A C Aᵀ + b bᵀ σ²/B, from e^0 = β_0 − ȳ, g̃^0 = 0.
    For μ = 0 this is :func:`one_dim_moments`. Returns ``(m, v)``: mean and variance of e^t.
    (Used by the Momentum chapter; :class:`lecturekit.optim.EMAMomentum` is the same update.)
    """
    if not 0 <= mu < 1:
        raise ValueError(f"mu must be in [0, 1), got {mu}")
    A = np.array([[1 - eta * (1 - mu), -eta * mu], [1 - mu, mu]])
    b = np.array([eta * (1 - mu), -(1 - mu)])
    z, C = np.array([beta0 - problem.mean_y, 0.0]), np.zeros((2, 2))
    m, v = [z[0]], [0.0]
    for _ in range(T):
        z, C = A @ z, A @ C @ A.T + np.outer(b, b) * problem.var_y / B
        m.append(z[0])
        v.append(C[0, 0])
    return np.array(m), np.array(v)


def gradient_descent(grad, x0, eta, T: int) -> np.ndarray:
    """Full-batch gradient descent x ← x − η_t ∇ℓ(x); returns the T + 1 iterates.

    ``grad`` maps an array of coordinates (last axis) to the gradient of the same shape.
    ``eta`` is a fixed step or a schedule ``eta(t)`` for t = 1..T (see :func:`power_schedule`).
    """
    etas = _rates(eta, T)
    x = np.asarray(x0, dtype=float)
    path = [x]
    for t in range(T):
        x = x - etas[t] * np.asarray(grad(x), dtype=float)
        path.append(x)
    return np.array(path)


def stall_factor(eta0: float, p: float = 2.0, T: int | None = None) -> float:
    """E[β_T − ȳ] / (β_0 − ȳ) = Π_{t=1}^{T} (1 − η_t) for η_t = η_0 / t^p on the 1-D example.

    Taking expectations in e' = (1 − η_t) e + η_t ξ removes the noise, leaving the product.
    When Σ η_t < ∞ (p > 1) the product stays away from zero, unless some factor is exactly zero
    (η_0 = t^p for some t): SGD stalls short of the optimum. For p = 2 and T = ∞ Euler's product
    for the sine gives the closed form sin(π√η_0)/(π√η_0); it is returned for ``T=None`` and
    0 < η_0 < 1, the range where every factor is positive, so the product is the distance left
    in the same direction (for η_0 > 1 the first factors are negative and the sign alternates).
    """
    if T is None:
        if p != 2 or not 0 < eta0 < 1:
            raise ValueError("the closed form needs p = 2 and 0 < eta0 < 1; pass T instead")
        x = np.pi * np.sqrt(eta0)
        return float(np.sin(x) / x)
    t = np.arange(1, T + 1, dtype=float)
    return float(np.prod(1 - eta0 / t**p))


def path(loss, x0, make_optimizer, T: int) -> np.ndarray:
    """Run a ``torch.optim`` optimizer for T steps on ``loss(x)``; return the T + 1 iterates.

    ``make_optimizer([x])`` builds the optimizer for the single float64 parameter ``x``. Steps go
    through a closure, so optimizers that measure the gradient elsewhere (such as
    :class:`lecturekit.optim.Nesterov`, at its lookahead) work too.
    """
    import torch

    x = torch.tensor(np.asarray(x0, dtype=float), requires_grad=True)
    opt = make_optimizer([x])

    def closure():
        opt.zero_grad()
        value = loss(x)
        value.backward()
        return value

    out = [x.detach().clone().numpy()]
    for _ in range(T):
        opt.step(closure)
        out.append(x.detach().clone().numpy())
    return np.array(out)
