r"""SGD as MCMC and MCMC as SGD: SGLD, stationary covariances of constant-rate SGD, cyclic rates.

* :class:`SGLD` (with its functional core :func:`sgld`): stochastic gradient Langevin dynamics
  (Welling & Teh 2011), a ``torch.optim`` optimizer;
* :func:`stationary_cov`: the exact stationary covariance of constant-rate SGD on a quadratic,
  minibatch noise included (a discrete Lyapunov equation), or the continuous
  Ornstein-Uhlenbeck approximation of Mandt, Hoffman & Blei (2017);
  :func:`sgld_stationary_cov`, the same for SGLD; :func:`mandt_rate`, their optimal constant rate;
* :func:`cyclic_cosine`: the cyclic cosine schedule of snapshot ensembles (Huang et al. 2017)
  and cyclical SG-MCMC (Zhang et al. 2020); :func:`polynomial_rate`, SGLD's decreasing rate;
* :func:`gaussian_kl` and :func:`linear_regression_posterior`: the exact answers the chapter
  compares with.

Taught in the chapter "SGD as MCMC and MCMC as SGD" (``book/mcmc``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import solve_continuous_lyapunov, solve_discrete_lyapunov

from .optim import _Optimizer

__all__ = [
    "sgld", "SGLD", "stationary_cov", "sgld_stationary_cov", "mandt_rate", "cyclic_cosine",
    "polynomial_rate", "gaussian_kl", "linear_regression_posterior",
]


def sgld(params, grads, *, lr, temperature, generator=None):
    r"""One SGLD step on each tensor of ``params`` (in place), ``grads`` the gradients of U.

    .. math::
        \Phi \leftarrow \Phi - \tfrac{\epsilon}{2}\,\nabla U(\Phi) + \sqrt{\epsilon T}\,\xi,
        \qquad \xi \sim \mathcal N(0, I)

    ``lr`` is :math:`\epsilon`, ``temperature`` is :math:`T`.
    """
    std = math.sqrt(lr * temperature)
    for p, g in zip(params, grads, strict=True):
        xi = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        p.add_(g, alpha=-lr / 2).add_(xi, alpha=std)


class SGLD(_Optimizer):
    r"""Stochastic gradient Langevin dynamics (Welling & Teh 2011) as a ``torch.optim`` optimizer.

    With ``p.grad`` holding the gradient of the potential :math:`U = -\log p(\Phi\mid\text{data})`
    (or a minibatch estimate of it, *scaled by N/B*), each step is

    .. math::
        \Phi \leftarrow \Phi - \tfrac{\epsilon}{2}\,\nabla U(\Phi) + \sqrt{\epsilon T}\,\xi,
        \qquad \xi \sim \mathcal N(0, I),

    ``lr`` = :math:`\epsilon`, ``temperature`` = :math:`T` (1 samples the posterior;
    :math:`T \to 0` is gradient descent on U with rate :math:`\epsilon/2`). ``generator``: a
    ``torch.Generator`` for the noise (else torch's global one).

    .. warning::
        ``lr`` is *not* a torch learning rate on a mean loss. If your loss is the mean
        :math:`\bar\ell = \frac1B\sum_{i\in\text{batch}}\ell_i` with a Gaussian prior of precision
        :math:`\lambda`, then :math:`\nabla U \approx N\nabla\bar\ell + \lambda\Phi`, so the same
        step is ``torch.optim.SGD(lr=eps * N / 2, weight_decay=lam / N)`` on
        :math:`\bar\ell` followed by Gaussian noise of standard deviation
        :math:`\sqrt{\epsilon}` (= :math:`\sqrt{2\,\mathrm{lr}_{torch}/N}`), not
        :math:`\sqrt{2\,\mathrm{lr}_{torch}}`. The two common mistakes: forgetting the factor
        N/B on a minibatch sum (the chain then samples a tempered posterior
        :math:`\propto p(\text{data}\mid\Phi)^{B/N}\,p(\Phi)`, about N/B times too wide in
        variance when the prior is weak) and adding noise of std
        :math:`\sqrt{2\,\mathrm{lr}_{torch}}` to a mean-loss step (a temperature N times too high).
    """

    def __init__(self, params, lr: float, temperature: float = 1.0, generator=None):
        super().__init__(params, dict(lr=lr, temperature=temperature))
        self.generator = generator

    def _check(self, group):
        if not group["lr"] > 0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if not group["temperature"] >= 0:
            raise ValueError(f"Invalid temperature: {group['temperature']}")

    def _update(self, group):
        ps, grads = self._with_grad(group)
        sgld(ps, grads, lr=group["lr"], temperature=group["temperature"],
             generator=self.generator)


def _check(A, C, eta, B):
    A, C = np.atleast_2d(np.asarray(A, float)), np.atleast_2d(np.asarray(C, float))
    if A.shape != C.shape or A.shape[0] != A.shape[1]:
        raise ValueError(f"A and C must be square and of equal shape, got {A.shape}, {C.shape}")
    if not eta > 0:
        raise ValueError(f"Invalid learning rate: {eta}")
    if not B >= 1:
        raise ValueError(f"Invalid batch size: {B}")
    return A, C


def stationary_cov(A, C, eta: float, B: float = 1, exact: bool = True) -> np.ndarray:
    r"""Stationary covariance of constant-rate SGD :math:`\Phi \mathrel{-}= \eta\hat g` on a
    quadratic loss with Hessian A, minibatch gradients :math:`\hat g = A(\Phi-\Phi^*) + \zeta`,
    :math:`\operatorname{Cov}\zeta = C/B` (B examples drawn with replacement, C the per-example
    gradient covariance). Drawn without replacement, the noise covariance is
    :math:`(C/B)\,(N-B)/(N-1)` instead: pass C scaled by that factor.

    ``exact=True``: the discrete Lyapunov equation (scipy's ``solve_discrete_lyapunov``)

    .. math::
        \Sigma = (I-\eta A)\,\Sigma\,(I-\eta A)^\top + \frac{\eta^2}{B}\,C,

    which has a solution only for :math:`0 < \eta < 2/\lambda_{\max}(A)` (else ``ValueError``).
    ``exact=False``: Mandt, Hoffman & Blei's (2017) Ornstein-Uhlenbeck approximation
    :math:`A\Sigma + \Sigma A^\top = (\eta/B)\,C`, the small-:math:`\eta` limit (it drops the
    :math:`\eta^2 A\Sigma A` term). Returns the D x D covariance.
    """
    A, C = _check(A, C, eta, B)
    if not exact:
        return solve_continuous_lyapunov(A, eta / B * C)
    M = np.eye(len(A)) - eta * A
    if np.max(np.abs(np.linalg.eigvals(M))) >= 1:
        raise ValueError(f"no stationary distribution: eta = {eta} >= 2 / lambda_max(A)")
    return solve_discrete_lyapunov(M, eta**2 / B * C)


def sgld_stationary_cov(A, eps: float, noise_cov=None, temperature: float = 1.0) -> np.ndarray:
    r"""Exact stationary covariance of :class:`SGLD` on a Gaussian target, U with Hessian A:

    .. math::
        \Sigma = (I - \tfrac{\epsilon}{2}A)\,\Sigma\,(I - \tfrac{\epsilon}{2}A)^\top
        + \tfrac{\epsilon^2}{4}\,\hat C + \epsilon T\, I,

    where :math:`\hat C` (``noise_cov``, default 0: full batch) is the covariance of the
    estimate of :math:`\nabla U`; for B examples drawn with replacement out of N, each with
    gradient covariance C, :math:`\hat C = N^2 C / B` (without replacement,
    :math:`N^2 C (N-B) / (B (N-1))`). The target's covariance is
    :math:`A^{-1}`; the excess is the discretisation (:math:`\epsilon`) and minibatch error.
    """
    A = np.atleast_2d(np.asarray(A, float))
    Ch = np.zeros_like(A) if noise_cov is None else np.atleast_2d(np.asarray(noise_cov, float))
    if not eps > 0:
        raise ValueError(f"Invalid step size: {eps}")
    M = np.eye(len(A)) - eps / 2 * A
    if np.max(np.abs(np.linalg.eigvals(M))) >= 1:
        raise ValueError(f"no stationary distribution: eps = {eps} >= 4 / lambda_max(A)")
    return solve_discrete_lyapunov(M, eps**2 / 4 * Ch + eps * temperature * np.eye(len(A)))


def mandt_rate(C, B: float, N: int) -> float:
    r"""Mandt, Hoffman & Blei's (2017) optimal constant SGD rate on the mean loss,

    .. math:: \eta^* = \frac{2\,B\,D}{N\,\operatorname{tr} C},

    the :math:`\eta` that minimises KL(OU stationary distribution ‖ Laplace posterior
    :math:`\mathcal N(\Phi^*, (NA)^{-1})`) when the stationary covariance is
    :func:`stationary_cov` with ``exact=False``. C: per-example gradient covariance (D x D).
    """
    C = np.atleast_2d(np.asarray(C, float))
    return 2 * B * len(C) / (N * np.trace(C))


def cyclic_cosine(t, lr0: float, T: int, M: int):
    r"""The cyclic cosine rate of snapshot ensembles (Huang et al. 2017, eq. 2) and cyclical
    SG-MCMC (Zhang et al. 2020, eq. 1), stepped per batch, t = 1, ..., T as in the papers:

    .. math::
        \alpha(t) = \frac{\alpha_0}{2}\left(\cos\frac{\pi\,\mathrm{mod}(t-1,
        \lceil T/M\rceil)}{\lceil T/M\rceil} + 1\right).

    M cycles; each starts at :math:`\alpha_0` (a warm restart, Loshchilov & Hutter 2017) and
    ends just above 0 (a snapshot is taken there). Accepts arrays of t.
    """
    if not M >= 1 or not T >= M:
        raise ValueError(f"need 1 <= M <= T, got M = {M}, T = {T}")
    t = np.asarray(t)
    if np.any(t < 1):
        raise ValueError("t is 1-based")
    period = math.ceil(T / M)
    return lr0 / 2 * (np.cos(np.pi * np.mod(t - 1, period) / period) + 1)


def polynomial_rate(t, a: float, b: float, gamma: float):
    r"""SGLD's decreasing step :math:`\epsilon_t = a\,(b+t)^{-\gamma}` (Welling & Teh 2011);
    :math:`\gamma \in (0.5, 1]` makes :math:`\sum\epsilon_t = \infty`,
    :math:`\sum\epsilon_t^2 < \infty`."""
    if not 0.5 < gamma <= 1:
        raise ValueError(f"gamma must be in (0.5, 1], got {gamma}")
    return a * (b + np.asarray(t, float)) ** -gamma


def gaussian_kl(m0, S0, m1, S1) -> float:
    r""":math:`\mathrm{KL}(\mathcal N(m_0, S_0)\,\|\,\mathcal N(m_1, S_1))` in nats."""
    m0, m1 = np.atleast_1d(m0), np.atleast_1d(m1)
    S0, S1 = np.atleast_2d(S0), np.atleast_2d(S1)
    d = m1 - m0
    P1 = np.linalg.inv(S1)
    logdet = np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1]
    return 0.5 * float(np.trace(P1 @ S0) + d @ P1 @ d - len(m0) + logdet)


def linear_regression_posterior(X, y, noise_var: float, prior_prec: float):
    r"""Exact Gaussian posterior of :math:`y = Xw + \mathcal N(0, \sigma^2)`, prior
    :math:`w \sim \mathcal N(0, \lambda^{-1} I)`: returns (mean, covariance) with
    covariance :math:`(X^\top X/\sigma^2 + \lambda I)^{-1}`, mean = covariance
    :math:`\cdot X^\top y/\sigma^2`."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    S = np.linalg.inv(X.T @ X / noise_var + prior_prec * np.eye(X.shape[1]))
    return S @ X.T @ y / noise_var, S
