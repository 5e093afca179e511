"""The lecture's small problems, each with the closed forms the chapters check against.

* :class:`OneDim`: the slide's one-dimensional example, loss(β, x, y) = ½(β − y)² (SGD chapter).
* :func:`saddle_loss`: a smooth non-negative loss with a saddle that gradient descent can
  converge to ("rigor police", SGD chapter).
* :func:`log_cosh`: a smooth, convex, non-negative loss on which fixed-step gradient descent
  settles into a 2-cycle (SGD chapter).
* :func:`ravine`, :func:`rosenbrock`: ill-conditioned test losses for the optimizer chapters.

Everything here is NumPy and vectorised over leading axes, so many independent SGD runs
("chains") advance in one array operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "OneDim", "saddle_loss", "saddle_grad", "log_cosh", "log_cosh_grad", "two_cycle", "ravine",
    "rosenbrock",
]


@dataclass(frozen=True)
class OneDim:
    """The slide's 1-D example: a training set of scalars y and loss(β, x, y) = ½(β − y)².

    .. math::

        g = E_{(x,y)\\sim\\mathrm{Train}}\\, \\partial\\,\\mathrm{loss}/\\partial\\beta
          = \\beta - E_{\\mathrm{Train}}[y], \\qquad
        \\hat g = \\beta - E_{\\mathrm{Batch}}[y].

    Batches are drawn uniformly *with replacement* from Train, so for a batch of size B the
    estimate ĝ is the mean of B i.i.d. draws of β − y and, exactly,

    .. math::

        E[\\hat g] = g,\\qquad \\mathrm{Var}[\\hat g] = \\sigma^2 / B,\\qquad
        \\mathrm{skew}[\\hat g] = -\\gamma_y / \\sqrt{B},

    with σ² and γ_y the variance and skewness of y over Train (population moments).
    Taught in the SGD chapter.
    """

    y: np.ndarray

    @classmethod
    def make(cls, n: int = 1000, shape: float = 2.0, seed: int = 0) -> OneDim:
        """A skewed training set: n draws of y ~ Gamma(shape, 1), so ĝ for B = 1 is visibly
        non-normal and the central limit theorem has something to do."""
        if n < 2:
            raise ValueError(f"n must be at least 2, got {n}")
        rng = np.random.default_rng(seed)
        return cls(y=rng.gamma(shape, 1.0, size=n))

    # --- population moments of Train -------------------------------------------------------
    @property
    def mean_y(self) -> float:
        """E_Train[y], the minimiser β* of the training loss."""
        return float(self.y.mean())

    @property
    def var_y(self) -> float:
        """σ² = Var_Train[y] (population variance, divisor n)."""
        return float(self.y.var())

    @property
    def skew_y(self) -> float:
        """γ_y, the skewness of y over Train."""
        d = self.y - self.y.mean()
        return float((d**3).mean() / (d**2).mean() ** 1.5)

    # --- the slide's quantities ---------------------------------------------------------------
    def loss(self, beta):
        """Training loss E_Train ½(β − y)² = ½(β − ȳ)² + ½σ², elementwise in β."""
        beta = np.asarray(beta, dtype=float)
        return 0.5 * (beta - self.mean_y) ** 2 + 0.5 * self.var_y

    def g(self, beta):
        """The true gradient g = β − E_Train[y]."""
        return np.asarray(beta, dtype=float) - self.mean_y

    def sample_batch_means(self, rng: np.random.Generator, B: int, size) -> np.ndarray:
        """E_Batch[y] for independent batches of B draws with replacement; shape ``size``."""
        if B < 1:
            raise ValueError(f"batch size B must be at least 1, got {B}")
        size = (size,) if np.isscalar(size) else tuple(size)
        idx = rng.integers(0, self.y.size, size=size + (B,))
        return self.y[idx].mean(axis=-1)

    def g_hat(self, beta, rng: np.random.Generator, B: int, size=None) -> np.ndarray:
        """ĝ = β − E_Batch[y] for fresh batches (one per element of ``beta`` unless ``size``)."""
        beta = np.asarray(beta, dtype=float)
        size = beta.shape if size is None else size
        return beta - self.sample_batch_means(rng, B, size)

    # --- closed forms -------------------------------------------------------------------------
    def g_hat_var(self, B: int) -> float:
        """Var[ĝ] = σ²/B (batches drawn with replacement)."""
        return self.var_y / B

    def g_hat_skew(self, B: int) -> float:
        """skew[ĝ] = −γ_y/√B: ĝ = β − mean of y, so the sign flips and the mean of B
        i.i.d. draws has 1/√B of their skewness."""
        return -self.skew_y / np.sqrt(B)

    def stationary_var(self, eta: float, B: int) -> float:
        """Variance of β under constant-rate SGD once the start is forgotten.

        With e = β − ȳ and ξ = E_Batch[y] − ȳ (mean 0, variance σ²/B), one step is
        e' = (1 − η) e + η ξ, so the stationary variance V solves V = (1 − η)² V + η² σ²/B:

        .. math::

            V(\\eta, B) = \\frac{\\eta\\, \\sigma^2}{B\\,(2 - \\eta)} \\quad (0 < \\eta < 2).

        For small η this is ≈ η σ² / (2B): the walk's spread grows with η/B, the
        "temperature" of the MCMC chapter. For η ≥ 2 there is no stationary distribution.
        """
        if not 0 < eta < 2:
            raise ValueError(f"stationary variance exists only for 0 < eta < 2, got eta={eta}")
        return eta * self.var_y / (B * (2 - eta))


def saddle_loss(x, y):
    """A smooth, non-negative loss with a saddle: ℓ(x, y) = ½x² + ¼(y² − 1)².

    Minima at (0, ±1) with ℓ = 0; a saddle at (0, 0) with ℓ = ¼ and Hessian diag(1, −1).
    Gradient descent started on the line y = 0 stays on it and converges to the saddle.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return 0.5 * x**2 + 0.25 * (y**2 - 1) ** 2


def saddle_grad(x, y):
    """∇ℓ for :func:`saddle_loss`: (x, y(y² − 1))."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return x, y * (y**2 - 1)


def log_cosh(x):
    """ℓ(x) = log cosh x: smooth, convex, non-negative, minimum 0 at x = 0, ℓ'' ≤ L = 1.

    Computed stably as |x| + log1p(exp(−2|x|)) − log 2.
    """
    a = np.abs(np.asarray(x, dtype=float))
    return a + np.log1p(np.exp(-2 * a)) - np.log(2.0)


def log_cosh_grad(x):
    """ℓ'(x) = tanh x, bounded by 1 in absolute value."""
    return np.tanh(np.asarray(x, dtype=float))


def two_cycle(eta: float) -> float:
    """The 2-cycle ±x* of fixed-step gradient descent x ← x − η tanh x on log cosh.

    For η > 2 = 2/L the minimum at 0 is unstable (|1 − η ℓ''(0)| > 1), and the iterates settle
    on x* > 0 with x* − η tanh x* = −x*, i.e. 2x* = η tanh x*. The cycle is attracting when
    |1 − η (1 − tanh² x*)| < 1. Raises ``ValueError`` for η ≤ 2, where there is no such cycle.
    """
    from scipy.optimize import brentq

    if eta <= 2:
        raise ValueError(f"a 2-cycle exists only for eta > 2, got eta={eta}")
    return float(brentq(lambda x: 2 * x - eta * np.tanh(x), 1e-9, eta))


def ravine(z, a: float = 1.0, b: float = 50.0):
    """An ill-conditioned quadratic ℓ(x, y) = ½(a x² + b y²), the "ravine" of the Momentum
    chapter: curvature b across it, a along it (condition number b/a), minimum 0 at the origin.
    Works on NumPy arrays and torch tensors with the coordinates on the last axis."""
    return 0.5 * (a * z[..., 0] ** 2 + b * z[..., 1] ** 2)


def rosenbrock(z):
    """Rosenbrock's function Σᵢ 100 (z_{i+1} − z_i²)² + (1 − z_i)² over the last axis: in 2-D the
    banana (1 − x)² + 100 (y − x²)², minimum 0 at (1, ..., 1). NumPy arrays or torch tensors."""
    return (100 * (z[..., 1:] - z[..., :-1] ** 2) ** 2 + (1 - z[..., :-1]) ** 2).sum(-1)
