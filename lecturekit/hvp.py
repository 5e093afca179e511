r"""Hessian-vector products and the curvature spectrum, without forming the Hessian.

The slides ("Hessian-Vector Products"): for a fixed vector v, (∇_Φ ℓ)·v is a scalar, so its
gradient, which is Hv, costs about one more backward pass (Pearlmutter 1994):

.. math::

    H v = \nabla_\Phi\big((\nabla_\Phi \ell(\Phi)) \cdot v\big).

:func:`hvp` computes Hv five ways behind one interface. From products alone: :func:`power_iteration`
estimates the largest eigenvalue of H (the smoothness constant L of the Learning Rate and Batch
Size chapter), :func:`lanczos` the top k, :func:`hutchinson` the trace (Hutchinson 1990) and
:func:`slq` with :func:`density` the spectral density (stochastic Lanczos quadrature, as in
PyHessian, Yao et al. 2020). :func:`hessian` forms H explicitly, the reference for small
networks such as :func:`digits_mlp`. Taught in the chapter "Hessian-vector products and the
curvature spectrum".

Conventions: ``loss_fn(params)`` returns the scalar loss computed *from its argument* (for an
``nn.Module`` use :func:`functional_loss`, or ``torch.func.functional_call``); ``params`` and
``v`` are lists of tensors; results are lists shaped like ``params``, detached.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from .stats import flatten as _flat

__all__ = ["METHODS", "hvp", "power_iteration", "lanczos", "hutchinson", "hutchinson_std", "slq",
           "density", "hessian", "functional_loss", "mlp_loss", "digits_mlp", "dot", "norm"]

METHODS = ("double_backward", "forward_over_reverse", "reverse_over_reverse",
           "finite_difference", "complex_step")


def dot(a, b) -> torch.Tensor:
    """Σ_i ⟨a_i, b_i⟩ over two lists of tensors (the inner product of the flattened vectors)."""
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


def norm(a) -> torch.Tensor:
    """The Euclidean norm of a list of tensors taken as one flat vector."""
    return torch.sqrt(dot(a, a))


def functional_loss(model: torch.nn.Module, loss):
    """``loss_fn(params)`` for :func:`hvp`: ``loss(model)`` evaluated with the model's parameters
    replaced by ``params`` (a list in ``model.parameters()`` order), through
    ``torch.func.functional_call``. The model itself is not changed.

    Example: ``functional_loss(wl.model, lambda m: m.loss(x, y))``.
    """
    wrapper = _Call(model, loss)
    names = ["model." + n for n, _ in model.named_parameters()]

    def loss_fn(params):
        return torch.func.functional_call(wrapper, dict(zip(names, params, strict=True)), ())

    return loss_fn


class _Call(torch.nn.Module):
    def __init__(self, model, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self):
        return self.loss(self.model)


def mlp_loss(X, y):
    r"""``loss_fn(params)`` of a one-hidden-layer tanh network with mean cross-entropy, written
    with holomorphic operations only, so that every :func:`hvp` method works on it (the small
    network of the chapter and of the tests):

    .. math::

        z = W_2 \tanh(W_1 x + b_1) + b_2, \qquad
        \ell = \operatorname{mean}_n\big(\operatorname{logsumexp}(z_n) - z_{n, y_n}\big),

    ``params = [W1 (h, d), b1 (h,), W2 (c, h), b2 (c,)]``, real or complex; ``X`` (N, d),
    ``y`` (N,) integer labels. (``torch.logsumexp`` accepts complex input, and its shift
    cancels exactly in the derivative.)
    """
    y = y.reshape(-1, 1)

    def loss_fn(params):
        W1, b1, W2, b2 = params
        z = torch.tanh(X.to(W1.dtype) @ W1.T + b1) @ W2.T + b2
        return (torch.logsumexp(z, 1) - z.gather(1, y)[:, 0]).mean()

    return loss_fn


def digits_mlp(n: int | None = None, hidden: int = 12, steps: int = 100, lr: float = 0.5,
               seed: int = 0, dtype=torch.float64):
    """The chapter's small network: a 64-``hidden``-10 tanh MLP (910 parameters at the default
    12) on the first ``n`` training digits of :func:`lecturekit.digits.load` (all 1297 when
    ``None``), initialised by :func:`lecturekit.digits.init` and trained by ``steps`` of
    full-batch gradient descent with step ``lr``. Returns ``(loss_fn, params)`` with
    ``loss_fn = mlp_loss(X, y)`` and ``params`` detached, in ``dtype``."""
    from . import digits

    data = digits.load(dtype=dtype)
    X, y = data.X_train[:n], data.y_train[:n]
    loss_fn = mlp_loss(X, y)
    params = [p.detach()[0].clone().requires_grad_(True)
              for p in digits.init(1, (X.shape[1], hidden, 10), seed=seed, dtype=dtype)]
    for _ in range(steps):
        g = torch.autograd.grad(loss_fn(params), params)
        with torch.no_grad():
            for p, g_p in zip(params, g, strict=True):
                p -= lr * g_p
    return loss_fn, [p.detach() for p in params]


def hessian(loss_fn, params, chunk_size: int | None = 128) -> torch.Tensor:
    """The explicit Hessian of ``loss_fn`` at ``params`` as an (n, n) matrix over the flattened
    parameters (in ``params`` order): ``torch.func.jacrev`` of ``torch.func.grad``, ``chunk_size``
    rows at a time. The reference for everything else in this module; n² memory, so small
    networks only."""
    params = [p.detach() for p in params]

    def flat_loss(x):
        return loss_fn(_unflat(x, params))

    return torch.func.jacrev(torch.func.grad(flat_loss), chunk_size=chunk_size)(_flat(params))


def hvp(loss_fn, params, v, method: str = "double_backward", h: float | None = None):
    r"""``hvp(loss_fn, params, v, method="double_backward", h=None) -> list[Tensor]``: H v,
    where H = ∇²ℓ is the Hessian of ``ℓ = loss_fn(params)``.

    ``method`` (all give the same Hv up to rounding, at different costs and with different
    requirements on ``loss_fn``):

    * ``"double_backward"`` (default), the slides' form: one backward pass with
      ``create_graph=True`` gives ∇ℓ as a differentiable graph, a second one differentiates
      the scalar (∇ℓ)·v. Works through anything autograd can differentiate twice.
    * ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad``, the directional
      derivative of the gradient along v (the JAX autodiff cookbook's recommended form).
    * ``"reverse_over_reverse"``: ``torch.func.vjp`` of ``torch.func.grad``, vᵀH = (Hv)ᵀ as H
      is symmetric.
    * ``"finite_difference"``: central differences of gradients,

      .. math::

          H v \approx \frac{\nabla\ell(\Phi + h v) - \nabla\ell(\Phi - h v)}{2h},

      error O(h²) from truncation plus O(ε/h) from cancellation; the default
      h = ε^{1/3} (1 + |Φ|) / |v| (ε the dtype's machine epsilon) balances the two.
    * ``"complex_step"``: one gradient at the complex point Φ + ihv (default h = 1e-30),

      .. math::

          H v = \operatorname{Im} \nabla\ell(\Phi + i h v) / h + O(h^2),

      with no subtraction, so no cancellation: h can be tiny. ``loss_fn`` must be holomorphic
      (built from operations that extend analytically to complex inputs: no ``abs``, ``relu``,
      ``max``, and no ``softmax``/``cross_entropy`` kernels, which torch does not implement for
      complex tensors) and must return the complex value ℓ(Φ + ihv).

    .. warning::
        Sign convention. For a real-valued function of complex z, torch autograd returns the
        conjugate Wirtinger gradient (the one that makes gradient descent work): for
        ``Re ℓ(z)`` with ℓ holomorphic it returns conj(ℓ′(z)), not ℓ′(z). So the imaginary part
        of torch's gradient is −Im ℓ′(z), and this function returns
        ``-grad.imag / h``. Tested in ``tests/test_hvp.py``.

    ``params`` and ``v`` are lists of tensors of the same shapes (v need not be normalised);
    the result is a list of detached tensors shaped like ``params``. ``h`` is used by the two
    step methods only. ``loss_fn`` must compute the loss from its argument (the torch.func
    methods pass it tensors other than ``params``).
    """
    params = [p.detach() for p in params]
    v = [vi.detach().to(p.dtype) for vi, p in zip(v, params, strict=True)]
    if method == "double_backward":
        x = [p.clone().requires_grad_(True) for p in params]
        g = torch.autograd.grad(loss_fn(x), x, create_graph=True)
        return _zeros_for_unused(torch.autograd.grad(dot(g, v), x, allow_unused=True), x)
    if method == "forward_over_reverse":
        grad = torch.func.grad(lambda p: loss_fn(list(p)))
        _, Hv = torch.func.jvp(grad, (tuple(params),), (tuple(v),))
        return list(Hv)
    if method == "reverse_over_reverse":
        grad = torch.func.grad(lambda p: loss_fn(list(p)))
        _, vjp = torch.func.vjp(grad, tuple(params))
        (Hv,) = vjp(tuple(v))
        return list(Hv)
    if method == "finite_difference":
        if h is None:
            eps = torch.finfo(params[0].dtype).eps
            h = eps ** (1 / 3) * (1 + float(norm(params))) / float(norm(v))
        plus, minus = _grad(loss_fn, params, v, h), _grad(loss_fn, params, v, -h)
        return [(a - b) / (2 * h) for a, b in zip(plus, minus, strict=True)]
    if method == "complex_step":
        h = 1e-30 if h is None else h
        z = [torch.complex(p, h * vi).requires_grad_(True) for p, vi in zip(params, v, strict=True)]
        loss = loss_fn(z)
        if not loss.is_complex():
            raise TypeError("complex_step: loss_fn returned a real loss at a complex point; it "
                            "must return the complex value ℓ(Φ + ihv) (holomorphic operations "
                            "only, no .real/.abs())")
        g = _zeros_for_unused(torch.autograd.grad(loss.real, z, allow_unused=True), z)
        # torch returns conj(ℓ'(z)) for Re ℓ(z): Im of it is -Im ℓ'(z) (see the warning)
        return [-a.imag / h for a in g]
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _grad(loss_fn, params, v, step):
    x = [(p + step * vi).requires_grad_(True) for p, vi in zip(params, v, strict=True)]
    return _zeros_for_unused(torch.autograd.grad(loss_fn(x), x, allow_unused=True), x)


def _zeros_for_unused(grads, like):
    """autograd's ``allow_unused`` gives None for a tensor the loss does not use: its zero."""
    return [torch.zeros_like(p) if g is None else g.detach()
            for g, p in zip(grads, like, strict=True)]


def power_iteration(loss_fn, params, tol: float = 1e-3, max_iters: int = 100, generator=None,
                    method: str = "double_backward"):
    r"""``power_iteration(loss_fn, params, tol=1e-3, max_iters=100, generator=None)
    -> OptimizeResult``: the largest-magnitude eigenvalue of the Hessian of ``loss_fn`` at
    ``params`` by power iteration v ← Hv/|Hv|, one :func:`hvp` per iteration.

    Starts from a normal random vector (drawn with ``generator``). At iteration k, with |v| = 1,
    it computes w = Hv, the Rayleigh quotient λ_k = vᵀw and the residual
    r_k = |w − λ_k v| / |λ_k|, and stops as soon as

    .. math::

        |\lambda_k - \lambda_{k-1}| \le \mathrm{tol}\,|\lambda_k|
        \quad\text{and}\quad r_k \le \sqrt{\mathrm{tol}}.

    Why both: a stalled λ alone can be slow convergence (λ₁ ≈ λ₂), while for a symmetric H the
    Rayleigh quotient is within r_k²|λ_k|²/gap of an eigenvalue (gap: the distance to the rest
    of the spectrum), so r_k ≤ √tol makes the relative error about tol·|λ|/gap. Without
    convergence it stops after ``max_iters`` iterations with ``converged=False``.

    .. warning::
        The bound is about the eigenvalue *nearest* λ. A start with a small component along
        the top eigenvector passes close to the second one, where λ stalls and the residual
        is small, and a loose ``tol`` can stop there: with tol = 1e-3 on the chapter's small
        network (λ₂/λ₁ = 0.93) it stops after 9 iterations at λ₂. No stopping rule on one
        vector can certify the top eigenvalue; a tighter tol, another start, or
        :func:`lanczos` make it unlikely.

    Returns a :class:`scipy.optimize.OptimizeResult` with ``eigenvalue`` (λ, signed: power
    iteration finds the eigenvalue of largest *magnitude*, which is the largest one when H is
    positive semi-definite or its top eigenvalue dominates), ``eigenvector`` (v, a list
    shaped like ``params``, unit norm, the vector whose Rayleigh quotient is λ), ``nit``
    (iterations = Hessian-vector products), ``residual`` (r at the end), ``converged`` and
    ``history`` (λ_k for every iteration). ``method`` is passed to :func:`hvp`. A fixed batch
    inside ``loss_fn`` gives the Hessian of that batch's loss.
    """
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if max_iters < 1:
        raise ValueError(f"max_iters must be at least 1, got {max_iters}")
    params = [p.detach() for p in params]
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
    v = [vi / norm(v) for vi in v]
    history, lam, residual, converged = [], math.nan, math.inf, False
    for _ in range(max_iters):
        w = hvp(loss_fn, params, v, method=method)
        lam = float(dot(v, w))
        r = float(norm([wi - lam * vi for wi, vi in zip(w, v, strict=True)]))
        residual = r / abs(lam) if lam != 0 else math.inf
        history.append(lam)
        if (len(history) > 1 and abs(lam - history[-2]) <= tol * abs(lam)
                and residual <= math.sqrt(tol)):
            converged = True
            break
        w_norm = float(norm(w))
        if w_norm == 0:
            break
        v = [wi / w_norm for wi in w]
    return OptimizeResult(eigenvalue=lam, eigenvector=v, nit=len(history), residual=residual,
                          converged=converged, history=history)


def _unflat(x: torch.Tensor, like) -> list[torch.Tensor]:
    return [t.reshape(p.shape) for t, p in zip(x.split([p.numel() for p in like]), like,
                                                 strict=True)]


def _rademacher(params, generator):
    return [torch.randint(0, 2, p.shape, generator=generator).to(p.dtype) * 2 - 1
            for p in params]


def lanczos(loss_fn, params, k: int = 1, iters: int = 30, v0=None, generator=None,
            method: str = "double_backward"):
    r"""``lanczos(loss_fn, params, k=1, iters=30, v0=None, generator=None) -> OptimizeResult``:
    the k largest eigenvalues of the Hessian by ``iters`` steps of Lanczos with full
    reorthogonalization, one :func:`hvp` per step.

    From q_1 = v0/|v0| (a normal random vector drawn with ``generator`` when ``v0`` is None):

    .. math::

        w = H q_j - \beta_{j-1} q_{j-1}, \quad \alpha_j = q_j^\top w, \quad
        w \leftarrow w - \alpha_j q_j, \quad \beta_j = |w|, \quad q_{j+1} = w / \beta_j,

    with w re-orthogonalised against all previous q (twice, "twice is enough") so that the
    q stay orthonormal in floating point (without it, converged eigenvalues reappear as
    spurious copies). Q_mᵀ H Q_m = T_m is tridiagonal (α on the diagonal, β beside it); its
    eigenvalues θ (Ritz values) approximate H's extreme eigenvalues first. Stops early if
    β_j = 0 (an invariant subspace: the Ritz values are then exact eigenvalues).

    Returns an OptimizeResult: ``eigenvalues`` (the k largest Ritz values, descending),
    ``eigenvectors`` (their Ritz vectors Q_m s, lists shaped like ``params``), ``residuals``
    (|Hy − θy| = β_m |s_m| for each, without another HVP), ``nodes`` and ``weights`` (all m
    Ritz values and the squared first components of T_m's eigenvectors, the Gauss quadrature
    of the spectral measure seen from q_1; see :func:`slq`), ``alpha``, ``beta``, ``nit``.
    """
    params = [p.detach() for p in params]
    n = sum(p.numel() for p in params)
    iters = min(iters, n)
    if not 1 <= k <= iters:
        raise ValueError(f"k must be between 1 and iters={iters}, got {k}")
    q = _flat(v0) if v0 is not None else torch.randn(n, generator=generator,
                                                      dtype=params[0].dtype)
    Q = torch.zeros(iters + 1, n, dtype=q.dtype)
    Q[0] = q / q.norm()
    alpha, beta = [], []
    for j in range(iters):
        w = _flat(hvp(loss_fn, params, _unflat(Q[j], params), method=method))
        alpha.append(float(Q[j] @ w))
        for _ in range(2):  # full reorthogonalization, twice
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta.append(float(w.norm()))
        if beta[-1] <= 1e-12 * max(abs(a) for a in alpha):
            break
        Q[j + 1] = w / beta[-1]
    m = len(alpha)
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    off = torch.tensor(beta[: m - 1], dtype=torch.float64)
    T += torch.diag(off, 1) + torch.diag(off, -1)
    theta, S = torch.linalg.eigh(T)
    top = torch.argsort(theta, descending=True)[:k]
    Y = S[:, top].to(Q.dtype).T @ Q[:m]
    return OptimizeResult(
        eigenvalues=theta[top].tolist(), eigenvectors=[_unflat(y, params) for y in Y],
        residuals=(beta[m - 1] * S[m - 1, top].abs()).tolist(), nodes=theta.numpy(),
        weights=(S[0] ** 2).numpy(), alpha=alpha, beta=beta[: m - 1], nit=m)


def hutchinson(loss_fn, params, n: int = 100, generator=None, method: str = "double_backward"):
    r"""``hutchinson(loss_fn, params, n=100, generator=None) -> OptimizeResult``: Hutchinson's
    (1990) estimate of tr H from n Rademacher probes z (entries ±1 with probability 1/2),
    one :func:`hvp` each:

    .. math::

        \widehat{\operatorname{tr} H} = \frac1n \sum_{k=1}^n z_k^\top H z_k, \qquad
        \operatorname{std} = \sqrt{\frac{2\,(\|H\|_F^2 - \sum_i H_{ii}^2)}{n}}

    (unbiased, as E[z zᵀ] = I; the standard deviation is exact for Rademacher probes, see
    :func:`hutchinson_std`; Gaussian probes would have 2|H|_F²). Returns an OptimizeResult with
    ``trace`` (the mean), ``std`` (the sample standard deviation of the samples over √n, an
    estimate of the exact std; 0 for n = 1) and ``samples`` (the n values zᵀHz).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    params = [p.detach() for p in params]
    samples = []
    for _ in range(n):
        z = _rademacher(params, generator)
        samples.append(float(dot(z, hvp(loss_fn, params, z, method=method))))
    s = torch.tensor(samples, dtype=torch.float64)
    std = float(s.std() / math.sqrt(n)) if n > 1 else 0.0
    return OptimizeResult(trace=float(s.mean()), std=std, samples=samples)


def hutchinson_std(H: torch.Tensor, n: int = 1) -> float:
    r"""The exact standard deviation of Hutchinson's estimate with n Rademacher probes, for an
    explicit symmetric H: √(2(|H|_F² − Σ_i H_ii²)/n). (zᵀHz = Σ_i H_ii + Σ_{i≠j} H_ij z_i z_j,
    as z_i² = 1; the products z_i z_j, i < j, are uncorrelated with variance 1, so
    Var zᵀHz = Σ_{i<j} (2 H_ij)² = 2 Σ_{i≠j} H_ij².)"""
    return math.sqrt(2 * float((H**2).sum() - (torch.diagonal(H) ** 2).sum()) / n)


def slq(loss_fn, params, iters: int = 30, n_v: int = 10, generator=None,
        method: str = "double_backward"):
    r"""``slq(loss_fn, params, iters=30, n_v=10, generator=None) -> OptimizeResult``:
    stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; PyHessian's ``density``, Yao et
    al. 2020; Ghorbani et al. 2019) for the spectral density φ(t) = (1/n) Σ_i δ(t − λ_i) of H.

    For each of ``n_v`` normalised Rademacher probes v, ``iters`` Lanczos steps from v give
    nodes θ_j and weights τ_j (:func:`lanczos`) with Σ_j τ_j f(θ_j) = vᵀf(H)v exactly for
    every polynomial f of degree < 2·iters (Gauss quadrature), and E vᵀf(H)v = tr f(H)/n.
    So the average over probes of Σ_j τ_j δ(t − θ_j) estimates φ; :func:`density` smooths it.
    Returns an OptimizeResult with ``nodes`` and ``weights`` (arrays (n_v, iters); each row's
    weights sum to 1) and ``nit`` (HVPs in all).
    """
    params = [p.detach() for p in params]
    nodes, weights = [], []
    for _ in range(n_v):
        r = lanczos(loss_fn, params, k=1, iters=iters,
                    v0=_rademacher(params, generator), method=method)
        nodes.append(r.nodes)
        weights.append(r.weights)
    # a row ends early only at an invariant subspace: pad it with zero-weight nodes
    nodes = [np.pad(x, (0, iters - len(x)), mode="edge") for x in nodes]
    weights = [np.pad(w, (0, iters - len(w))) for w in weights]
    return OptimizeResult(nodes=np.stack(nodes), weights=np.stack(weights), nit=n_v * iters)


def density(nodes, weights, grid, sigma: float):
    r"""The smoothed spectral density at the points ``grid``:
    (1/n_v) Σ_probes Σ_j τ_j g_σ(t − θ_j), g_σ the normal density of standard deviation σ.
    With ``nodes`` the exact eigenvalues (one row) and ``weights`` all 1/n it is the exact
    smoothed density, the reference for :func:`slq`."""
    nodes, weights = np.atleast_2d(nodes), np.atleast_2d(weights)
    t = np.asarray(grid)[:, None, None]
    g = np.exp(-0.5 * ((t - nodes) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return (g * weights).sum(-1).mean(-1)
