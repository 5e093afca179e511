r"""Newton's method, conjugate gradients, BFGS and L-BFGS, written as the slides write them.

The slides ("Newton's Method", "Newton Updates", "Quasi-Newton Methods"):

.. math::

    \Phi \mathrel{-}= \eta H^{-1} \nabla_\Phi \ell(\Phi), \qquad
    \Phi \mathrel{-}= \eta M \nabla_\Phi \ell(\Phi), \quad M \approx H^{-1},

with M re-estimated from the gradient difference y = ∇ℓ(Φ^{t+1}) − ∇ℓ(Φ^t) as a numerical
approximation of HΔΦ. (The slides print "Φ = ηH⁻¹∇ℓ" and "Φ = ηM∇ℓ": the update is ``-=``; see
the errata.)

Every minimizer has one signature, ``method(fun, x0, **options)``: ``fun`` maps a 1-D float64
tensor Φ to a scalar tensor ℓ(Φ); gradients and Hessians come from autograd. Each returns a
:class:`scipy.optimize.OptimizeResult` with scipy's names (``x``, ``fun``, ``jac``, ``nit``,
``nfev``, ``njev``, ``success``, ``message``) plus ``path``, the iterates Φ⁰, Φ¹, ... as rows of
a float64 array. One call of ``fun`` with its gradient counts as one ``nfev`` and one ``njev``.
The stopping test is scipy's: max_c |∇ℓ(Φ)[c]| ≤ ``gtol`` (the infinity norm).

BFGS and L-BFGS search along their direction with a line search satisfying the strong Wolfe
conditions (:func:`wolfe_line_search`). A curvature pair with sᵀy ≤ 0 would make M indefinite:
it is skipped and counted (``skipped`` in the result), never used.

Taught in the chapter "Newton, quasi-Newton and noise" (book/second_order/newton).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from .problems import rosenbrock  # re-exported: the n-D form the references use

__all__ = [
    "value_and_grad", "hessian", "wolfe_line_search", "newton", "conjugate_gradient",
    "nonlinear_cg", "bfgs", "lbfgs", "gradient_descent", "rosenbrock", "breast_cancer",
    "logistic_loss", "minibatch_lbfgs", "sqn",
]


def value_and_grad(fun, x):
    """ℓ(Φ) and ∇ℓ(Φ) by autograd, both detached (float64)."""
    x = x.detach().clone().requires_grad_(True)
    f = fun(x)
    (g,) = torch.autograd.grad(f, x)
    return f.detach(), g.detach()


def hessian(fun, x):
    """The Hessian H = ∇_Φ∇_Φ ℓ(Φ) as an n×n tensor, by autograd."""
    return torch.autograd.functional.hessian(fun, x.detach())


class _Counted:
    """``fun`` with its gradient, counting the calls (nfev = njev)."""

    def __init__(self, fun):
        self.fun, self.calls = fun, 0

    def __call__(self, x):
        self.calls += 1
        return value_and_grad(self.fun, x)


def _check(x0, **positive):
    x0 = torch.as_tensor(x0, dtype=torch.float64).detach().clone()
    if x0.dim() != 1:
        raise ValueError(f"x0 must be a 1-D tensor, got shape {tuple(x0.shape)}")
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"Invalid {name}: {value}")
    return x0


def _result(x, f, g, path, nit, counted, success, message, **extra):
    return OptimizeResult(
        x=x, fun=float(f), jac=g, nit=nit, nfev=counted.calls, njev=counted.calls,
        success=bool(success), message=message,
        path=torch.stack(path).numpy(), **extra,
    )


def _cubic_min(a1, f1, d1, a2, f2, d2):
    """Minimizer of the cubic through (a1, f1, slope d1) and (a2, f2, slope d2), or None."""
    if a1 == a2:
        return None
    e1 = d1 + d2 - 3 * (f1 - f2) / (a1 - a2)
    disc = e1 * e1 - d1 * d2
    if disc < 0:
        return None
    e2 = math.copysign(math.sqrt(disc), a2 - a1)
    den = d2 - d1 + 2 * e2
    if den == 0:
        return None
    return a2 - (a2 - a1) * (d2 + e2 - e1) / den


def wolfe_line_search(phi, f0, d0, alpha=1.0, c1=1e-4, c2=0.9, maxiter=30):
    r"""A step length α satisfying the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5-3.6).

    .. math::

        \ell(\Phi + \alpha p) \le \ell(\Phi) + c_1 \alpha \nabla\ell^\top p, \qquad
        |\nabla\ell(\Phi + \alpha p)^\top p| \le c_2 |\nabla\ell(\Phi)^\top p|.

    ``phi(α)`` returns (ℓ(Φ + αp), ∇ℓ(Φ + αp)ᵀp, payload); ``f0`` and ``d0 < 0`` are its value
    and slope at α = 0. The bracketing phase doubles α; the zoom phase takes the safeguarded
    minimizer of the cubic through the bracket's ends (bisection if it has none). Returns
    (α, ℓ, slope, payload, ok) for the last point evaluated; ``ok`` is False if ``maxiter``
    evaluations found no Wolfe point (the caller then keeps the best decrease it has).
    """
    if not d0 < 0:
        raise ValueError(f"p is not a descent direction: slope {d0}")
    lo = (0.0, f0, d0, None)
    prev = lo
    hi = None
    for i in range(maxiter):
        f, d, payload = phi(alpha)
        cur = (alpha, f, d, payload)
        if hi is None:
            if f > f0 + c1 * alpha * d0 or (i > 0 and f >= prev[1]):
                lo, hi = prev, cur
            elif abs(d) <= -c2 * d0:
                return alpha, f, d, payload, True
            elif d >= 0:
                lo, hi = cur, prev
            else:
                prev = cur
                alpha = 2.0 * alpha
                continue
        else:  # zoom: lo has the lowest value in the bracket, and satisfies the Armijo condition
            if f > f0 + c1 * alpha * d0 or f >= lo[1]:
                hi = cur
            else:
                if abs(d) <= -c2 * d0:
                    return alpha, f, d, payload, True
                if d * (hi[0] - lo[0]) >= 0:
                    hi = lo
                lo = cur
        a, b = sorted((lo[0], hi[0]))
        trial = _cubic_min(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
        width = b - a
        if trial is None or not (a + 0.1 * width <= trial <= b - 0.1 * width):
            trial = 0.5 * (a + b)
        alpha = trial
    best = lo if lo[3] is not None else cur
    return best[0], best[1], best[2], best[3], False


def _searcher(counted, x, p):
    def phi(alpha):
        x_new = x + alpha * p
        f, g = counted(x_new)
        return float(f), float(g @ p), (x_new, f, g)

    return phi


def _wolfe_step(counted, x, f, p, d0, alpha0, c1, c2):
    """One strong-Wolfe line search along p from x: the new (x, ℓ, ∇ℓ), or None if it found no
    decrease (the minimizers then stop with "line search failed")."""
    *_, (x_new, f_new, g_new), _found = wolfe_line_search(
        _searcher(counted, x, p), float(f), d0, alpha0, c1, c2)
    return (x_new, f_new, g_new) if f_new < f else None


def _initial_step(f, f_old, d0):
    """Nocedal & Wright's (3.60), as scipy uses it: α₀ = min(1, 1.01 · 2(ℓ_k − ℓ_{k−1})/φ'(0))."""
    alpha = min(1.0, 1.01 * 2 * (f - f_old) / d0) if d0 != 0 else 1.0
    return alpha if alpha > 0 else 1.0


def newton(fun, x0, eta=1.0, line_search=False, c1=1e-4, shrink=0.5, min_curvature=None,
           gtol=1e-8, maxiter=100):
    r"""Newton's method, the slide's damped update with an optional backtracking line search.

    .. math::

        \Delta\Phi = -H^{-1}\nabla_\Phi \ell(\Phi), \qquad
        \Phi \mathrel{-}= \eta H^{-1}\nabla_\Phi\ell(\Phi)

    ``eta`` is η ∈ (0, 1] (dimensionless). With ``line_search=True`` the step starts at η and is
    multiplied by ``shrink`` until ℓ decreases by at least ``c1`` times the linear prediction
    (Armijo backtracking). ``min_curvature=δ`` replaces each eigenvalue λ of H by max(|λ|, δ)
    before solving (a modified Newton step, Nocedal & Wright §3.4), which turns a saddle's
    ascent direction into descent; by default H is used as it is, indefinite or not.

    Result extras: ``nhev`` (Hessians formed), ``etas`` (the step length of each iteration).
    """
    x = _check(x0, eta=eta, gtol=gtol)
    if eta > 1:
        raise ValueError(f"Invalid eta: {eta} (Newton's η is in (0, 1])")
    counted = _Counted(fun)
    f, g = counted(x)
    path, etas, nhev, msg, ok = [x], [], 0, "maximum number of iterations reached", False
    for _ in range(maxiter):
        if g.abs().max() <= gtol:
            ok, msg = True, "gradient below gtol"
            break
        H = hessian(fun, x)
        nhev += 1
        if min_curvature is not None:
            lam, Q = torch.linalg.eigh(H)
            H = Q @ torch.diag(lam.abs().clamp_min(min_curvature)) @ Q.T
        try:
            dPhi = -torch.linalg.solve(H, g)
        except torch.linalg.LinAlgError:
            msg = "singular Hessian"
            break
        if line_search and float(g @ dPhi) >= 0:  # H indefinite: uphill or flat
            msg = "not a descent direction (indefinite Hessian; use min_curvature)"
            break
        step = eta
        x_new = x + step * dPhi
        f_new, g_new = counted(x_new)
        if line_search:
            slope = float(g @ dPhi)
            while not f_new <= f + c1 * step * slope:
                step *= shrink
                if step < 1e-12:
                    msg = "line search failed (not a descent direction?)"
                    break
                x_new = x + step * dPhi
                f_new, g_new = counted(x_new)
            if step < 1e-12:
                break
        x, f, g = x_new, f_new, g_new
        path.append(x)
        etas.append(step)
    else:
        ok = bool(g.abs().max() <= gtol)
        msg = "gradient below gtol" if ok else msg
    return _result(x, f, g, path, len(path) - 1, counted, ok, msg, nhev=nhev, etas=etas)


def gradient_descent(fun, x0, lr, gtol=1e-8, maxiter=10_000):
    r"""Gradient descent with a constant rate, Φ −= η∇ℓ(Φ), for comparison with Newton.

    Stops when max|∇ℓ| ≤ ``gtol``, after ``maxiter`` steps, or when ℓ stops being finite.
    """
    x = _check(x0, lr=lr, gtol=gtol)
    counted = _Counted(fun)
    f, g = counted(x)
    path, nit = [x], 0
    while nit < maxiter and g.abs().max() > gtol and torch.isfinite(f):
        x = x - lr * g
        f, g = counted(x)
        nit += 1
        path.append(x)
    ok = bool(g.abs().max() <= gtol)
    return _result(x, f, g, path, nit, counted, ok,
                   "gradient below gtol" if ok else "not converged")


def conjugate_gradient(A, b, x0=None, tol=1e-10, maxiter=None):
    r"""Linear conjugate gradients for Hx = b, H symmetric positive definite.

    ``A`` is an n×n tensor or a function v ↦ Hv (a Hessian-vector product). In exact arithmetic
    CG finishes in at most n steps. Stops when |r| ≤ ``tol``·|b| (Euclidean), r = b − Hx.
    Returns an OptimizeResult with ``x``, ``nit``, ``success``, ``path`` (iterates) and
    ``residuals`` (|r| after each step, starting with |r⁰|).
    """
    matvec = A if callable(A) else (lambda v: A @ v)
    b = torch.as_tensor(b, dtype=torch.float64)
    x = torch.zeros_like(b) if x0 is None else _check(x0)
    r = b - matvec(x)
    p = r.clone()
    rr = r @ r
    path, residuals = [x], [float(rr.sqrt())]
    maxiter = b.numel() * 10 if maxiter is None else maxiter
    nit = 0
    while nit < maxiter and residuals[-1] > tol * float(b.norm()):
        Hp = matvec(p)
        alpha = rr / (p @ Hp)
        x = x + alpha * p
        r = r - alpha * Hp
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
        nit += 1
        path.append(x)
        residuals.append(float(rr.sqrt()))
    ok = residuals[-1] <= tol * float(b.norm())
    return OptimizeResult(x=x, nit=nit, success=ok, path=torch.stack(path).numpy(),
                          residuals=residuals)


def nonlinear_cg(fun, x0, c1=1e-4, c2=0.1, gtol=1e-8, maxiter=1000):
    r"""Nonlinear conjugate gradients (Polak-Ribière+, Nocedal & Wright §5.2) with a strong Wolfe
    line search (c₂ = 0.1, as Nocedal & Wright recommend for CG).

    .. math::

        \beta = \max\Big(0, \frac{g_{k+1}^\top (g_{k+1} - g_k)}{g_k^\top g_k}\Big), \qquad
        p_{k+1} = -g_{k+1} + \beta p_k,

    restarted with p = −g whenever p is not a descent direction.
    """
    x = _check(x0, gtol=gtol)
    counted = _Counted(fun)
    f, g = counted(x)
    f_old = f + g.norm() / 2
    p = -g
    path, ok, msg = [x], False, "maximum number of iterations reached"
    for _ in range(maxiter):
        if g.abs().max() <= gtol:
            ok, msg = True, "gradient below gtol"
            break
        d0 = float(g @ p)
        if d0 >= 0:
            p, d0 = -g, float(-(g @ g))
        step = _wolfe_step(counted, x, f, p, d0, _initial_step(float(f), float(f_old), d0), c1, c2)
        if step is None:
            msg = "line search failed"
            break
        x_new, f_new, g_new = step
        beta = max(0.0, float(g_new @ (g_new - g) / (g @ g)))
        f_old, x, f = f, x_new, f_new
        p = -g_new + beta * p
        g = g_new
        path.append(x)
    ok = ok or bool(g.abs().max() <= gtol)
    return _result(x, f, g, path, len(path) - 1, counted, ok,
                   "gradient below gtol" if ok else msg)


def bfgs(fun, x0, c1=1e-4, c2=0.9, gtol=1e-8, maxiter=1000):
    r"""BFGS: the slide's quasi-Newton loop with M ≈ H⁻¹ updated from s = ΔΦ and y = Δ∇ℓ.

    .. math::

        \Phi \mathrel{-}= \eta M \nabla_\Phi\ell(\Phi), \qquad
        M \leftarrow (I - \rho s y^\top) M (I - \rho y s^\top) + \rho s s^\top, \quad
        \rho = 1/(s^\top y),

    η from a strong Wolfe line search (:func:`wolfe_line_search`, first trial step by Nocedal &
    Wright's (3.60), as scipy does), M⁰ = I as in scipy's ``BFGS``. A pair with sᵀy ≤ 0 is
    skipped (counted in ``skipped``): the update would make M indefinite. (A Wolfe step
    guarantees sᵀy > 0, so this happens only when the line search fails.) Extra result field
    ``hess_inv`` (M).
    """
    x = _check(x0, gtol=gtol)
    n = x.numel()
    counted = _Counted(fun)
    f, g = counted(x)
    f_old = f + g.norm() / 2
    I = torch.eye(n, dtype=torch.float64)  # noqa: E741 -- the identity, as the formula writes it
    M = I.clone()
    path, skipped, ok, msg = [x], 0, False, "maximum number of iterations reached"
    for _ in range(maxiter):
        if g.abs().max() <= gtol:
            ok, msg = True, "gradient below gtol"
            break
        p = -M @ g
        d0 = float(g @ p)
        if d0 >= 0:  # M lost positive definiteness numerically: restart from I
            M, p = I.clone(), -g
            d0 = float(-(g @ g))
        step = _wolfe_step(counted, x, f, p, d0, _initial_step(float(f), float(f_old), d0), c1, c2)
        if step is None:
            msg = "line search failed"
            break
        x_new, f_new, g_new = step
        s, y = x_new - x, g_new - g
        f_old, x, f, g = f, x_new, f_new, g_new
        path.append(x)
        sy = float(s @ y)
        if sy <= 0:
            skipped += 1
            continue
        rho = 1.0 / sy
        M = (I - rho * torch.outer(s, y)) @ M @ (I - rho * torch.outer(y, s))
        M = M + rho * torch.outer(s, s)
    ok = ok or bool(g.abs().max() <= gtol)
    return _result(x, f, g, path, len(path) - 1, counted, ok,
                   "gradient below gtol" if ok else msg, skipped=skipped, hess_inv=M)


def two_loop(g, pairs):
    r"""Mg for the L-BFGS matrix M built from the stored pairs (s, y), oldest first (Nocedal &
    Wright, Alg. 7.4), with M⁰ = γI, γ = sᵀy/yᵀy of the newest pair (I with no pairs)."""
    q = g.clone()
    alphas = []
    for s, y in reversed(pairs):
        a = (s @ q) / (s @ y)
        q = q - a * y
        alphas.append(a)
    if pairs:
        s, y = pairs[-1]
        q = q * ((s @ y) / (y @ y))
    for (s, y), a in zip(pairs, reversed(alphas), strict=True):
        b = (y @ q) / (s @ y)
        q = q + (a - b) * s
    return q


def lbfgs(fun, x0, m=10, c1=1e-4, c2=0.9, gtol=1e-8, maxiter=1000):
    r"""L-BFGS: BFGS's M applied from the last ``m`` pairs (s, y) without storing an n×n matrix.

    .. math::

        \Phi \mathrel{-}= \eta M \nabla_\Phi\ell(\Phi), \quad M g \text{ by the two-loop
        recursion}, \quad M^0 = \frac{s^\top y}{y^\top y} I,

    η from a strong Wolfe line search with first trial η = 1 (η = min(1, 1/Σ|∇ℓ|) on the first
    iteration, as ``torch.optim.LBFGS`` does). Pairs with sᵀy ≤ 0 are skipped and counted
    (``skipped``).

    .. warning:: ``torch.optim.LBFGS`` skips pairs with sᵀy ≤ 1e-10 and stops also on small
       changes of ℓ or Φ (``tolerance_change``); here only the gradient test stops it.
    """
    x = _check(x0, gtol=gtol)
    if not (isinstance(m, int) and m >= 1):
        raise ValueError(f"Invalid m: {m}")
    counted = _Counted(fun)
    f, g = counted(x)
    pairs, path, skipped, ok, msg = [], [x], 0, False, "maximum number of iterations reached"
    for k in range(maxiter):
        if g.abs().max() <= gtol:
            ok, msg = True, "gradient below gtol"
            break
        p = -two_loop(g, pairs)
        d0 = float(g @ p)
        if d0 >= 0:
            pairs, p, d0 = [], -g, float(-(g @ g))
        alpha0 = min(1.0, 1.0 / float(g.abs().sum())) if k == 0 else 1.0
        step = _wolfe_step(counted, x, f, p, d0, alpha0, c1, c2)
        if step is None:
            msg = "line search failed"
            break
        x_new, f_new, g_new = step
        s, y = x_new - x, g_new - g
        x, f, g = x_new, f_new, g_new
        path.append(x)
        if float(s @ y) <= 0:
            skipped += 1
            continue
        pairs = (pairs + [(s, y)])[-m:]
    ok = ok or bool(g.abs().max() <= gtol)
    return _result(x, f, g, path, len(path) - 1, counted, ok,
                   "gradient below gtol" if ok else msg, skipped=skipped)


def breast_cancer(standardize=True):
    """scikit-learn's bundled breast-cancer data (569 × 30) as float64 tensors (X, y).

    X gets a leading column of ones (the intercept); with ``standardize`` every other column is
    shifted and scaled to mean 0 and standard deviation 1, otherwise the raw features (which
    span five orders of magnitude) are kept. y ∈ {0, 1}.
    """
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    if standardize:
        X = (X - X.mean(0)) / X.std(0)
    X = np.c_[np.ones(len(X)), X]
    return torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)


def logistic_loss(X, y, lam=1e-2, base=math.e):
    r"""ℓ(Φ) = mean log loss of logistic regression + (λ/2)|Φ|², in units of log ``base``.

    .. math::

        \ell(\Phi) = \frac{1}{N}\sum_i -\log_b P_\Phi(y_i \mid x_i) + \frac{\lambda}{2}|\Phi|^2

    ``base=math.e`` gives nats, ``base=2`` bits (both the log loss and λ are in those units, so
    the bits loss is the nats loss times 1/ln 2). The ridge term makes the minimizer exist: the
    breast-cancer classes are linearly separable. Returns ``fun(Φ)`` for the minimizers.
    """
    scale = 1.0 / math.log(base)

    def fun(phi):
        z = X @ phi
        nll = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
        return scale * (nll + 0.5 * lam * (phi @ phi))

    return fun


def minibatch_lbfgs(batch_fun, x0, N, B, steps, lr, m=10, pairs="naive", generator=None):
    r"""L-BFGS fed minibatch gradients with a fixed step, Φ −= η M ĝ, M from the last m pairs.

    ``batch_fun(idx)`` returns the loss of the examples ``idx`` (a function of Φ), ``N`` is the
    number of examples, ``B`` the batch size, ``lr`` the step η. ``pairs`` chooses y:

    * ``"naive"``: y = ∇ℓ^{t+1}(Φ^{t+1}) − ∇ℓ^t(Φ^t), gradients of two different batches (the
      slides' "Issues with Quasi-Newton Methods"): one gradient per step;
    * ``"same"``: y = ∇ℓ^t(Φ^{t+1}) − ∇ℓ^t(Φ^t), one batch at both points (Schraudolph, Yu &
      Günter 2007): two gradients per step.

    Pairs with sᵀy ≤ 0 are skipped and counted. Returns an OptimizeResult with ``x``, ``path``
    (iterates), ``njev`` (gradient evaluations after each step, starting at 0) and ``skipped``.
    """
    if pairs not in ("naive", "same"):
        raise ValueError(f"Invalid pairs: {pairs!r}")
    x = _check(x0, lr=lr)
    idx = torch.randperm(N, generator=generator)[:B]
    _, g = value_and_grad(batch_fun(idx), x)
    history, path, evals, skipped, used = [], [x], [0], 0, 1
    for _ in range(steps):
        x_new = x - lr * two_loop(g, history)
        idx_new = torch.randperm(N, generator=generator)[:B]
        _, g_new = value_and_grad(batch_fun(idx_new), x_new)
        used += 1
        if pairs == "same":
            _, g_same = value_and_grad(batch_fun(idx), x_new)
            used += 1
            y = g_same - g
        else:
            y = g_new - g
        s = x_new - x
        if float(s @ y) > 0:
            history = (history + [(s, y)])[-m:]
        else:
            skipped += 1
        x, g, idx = x_new, g_new, idx_new
        path.append(x)
        evals.append(used - 1)
    return OptimizeResult(x=x, path=torch.stack(path).numpy(), njev=np.array(evals),
                          skipped=skipped, nit=steps)


def sqn(batch_fun, x0, N, B, steps, lr, m=10, L=20, B_H=None, generator=None):
    r"""Byrd, Hansen, Nocedal and Singer's (2016) stochastic quasi-Newton method (SQN).

    Steps are Φ −= η M ĝ with a minibatch gradient ĝ (plain SGD, M = I, until the first pair).
    Curvature pairs are formed only every ``L`` steps, and not from gradient differences:

    .. math::

        \bar\Phi_j = \frac1L\sum_{\text{last } L \text{ steps}} \Phi, \qquad
        s_j = \bar\Phi_j - \bar\Phi_{j-1}, \qquad
        y_j = \nabla^2 \ell_{S_H}(\bar\Phi_j)\, s_j,

    a Hessian-vector product (double backward) on a separate batch S_H of ``B_H`` examples
    (default 5B). Averaging the iterates makes s a step of the underlying descent, not of the
    noise, and y is an exact curvature measurement of one batch's loss along s: sᵀy > 0 for a
    convex batch loss. Pairs with sᵀy ≤ 0 are skipped and counted all the same.

    ``njev`` counts cost in batch gradients (B examples each): a step costs 1, and a
    Hessian-vector product on B_H examples 2 B_H / B (about two gradients per example,
    Pearlmutter 1994; Byrd et al. count about one, so this is conservative against SQN).
    Returns an OptimizeResult like :func:`minibatch_lbfgs`, plus ``pairs`` (kept in memory, at
    most m) and ``pairs_formed`` (all pairs formed, skipped ones included).
    """
    x = _check(x0, lr=lr)
    B_H = 5 * B if B_H is None else B_H
    history, path, evals, skipped, formed, cost = [], [x], [0.0], 0, 0, 0.0
    total, previous_mean = torch.zeros_like(x), None
    for t in range(1, steps + 1):
        idx = torch.randperm(N, generator=generator)[:B]
        _, g = value_and_grad(batch_fun(idx), x)
        cost += 1
        x = x - lr * two_loop(g, history)
        total += x
        if t % L == 0:
            mean, total = total / L, torch.zeros_like(x)
            if previous_mean is not None:
                s_j = mean - previous_mean
                idx_H = torch.randperm(N, generator=generator)[:B_H]
                y_j = _hvp(batch_fun(idx_H), mean, s_j)
                cost += 2 * B_H / B
                formed += 1
                if float(s_j @ y_j) > 0:
                    history = (history + [(s_j, y_j)])[-m:]
                else:
                    skipped += 1
            previous_mean = mean
        path.append(x)
        evals.append(cost)
    return OptimizeResult(x=x, path=torch.stack(path).numpy(), njev=np.array(evals),
                          skipped=skipped, nit=steps, pairs=len(history), pairs_formed=formed)


def _hvp(fun, x, v):
    """H v of ``fun`` at x by double backward (the slides' ∇((∇ℓ)·v)), via
    :func:`lecturekit.hvp.hvp` on a single flat parameter vector."""
    from .hvp import hvp

    (hv,) = hvp(lambda p: fun(p[0]), [x], [v])
    return hv
