r"""The lecture's optimizers as ``torch.optim`` optimizers, each mirroring its slide equation.

* :class:`EMAMomentum` -- momentum, nonstandard parameterization: g̃ ← μ g̃ + (1 − μ) ĝ, Φ ← Φ − η g̃
* :class:`HeavyBall` -- momentum, standard parameterization: v ← μ v + l_r ĝ, Φ ← Φ − v
* :class:`Nesterov` -- the slide's Nesterov momentum, ĝ measured at the lookahead Φ − η μ g̃
* :class:`RMSprop`, :class:`Adam` -- the slides' forms by default (ε inside the root, no bias
  correction); two flags switch each to PyTorch's form
* :class:`SGD` -- ``torch.optim.SGD``'s momentum SGD, the reference the slide forms are related to

PyTorch's own structure, minus its foreach/fused/capturable variants: a functional core
(:func:`sgd`, :func:`ema_momentum`, :func:`heavy_ball`, :func:`nesterov_lookahead`,
:func:`rmsprop`, :func:`adam`) updates aligned lists of parameters, gradients and state tensors in
place, one statement per slide line; thin :class:`torch.optim.Optimizer` subclasses collect the
parameters that have a gradient, keep state in ``self.state[p]`` and call the core once per
parameter group. ``state_dict()``/``load_state_dict()`` are the base class's. :class:`RMSprop` and
:class:`Adam` use torch's state names (``step``, ``square_avg``, ``exp_avg``, ``exp_avg_sq``).

Shared by every class (each docstring repeats what differs from ``torch.optim``): ``lr`` has no
default; hyperparameters are validated for every parameter group (``ValueError`` naming the
argument); ``eps`` must be > 0, so a zero gradient never becomes 0/0 = NaN; a parameter whose
``.grad`` is None is skipped (no update, no state change); sparse or complex gradients raise.

The slide's claim that its two parameterizations of momentum are one algorithm (l_r = η(1 − μ)):

>>> import torch
>>> from lecturekit.optim import EMAMomentum, HeavyBall
>>> a, b = torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
>>> ema, hb = EMAMomentum([a], lr=0.1, mu=0.9), HeavyBall([b], lr=0.1 * (1 - 0.9), mu=0.9)
>>> for _ in range(100):
...     a.grad, b.grad = 2 * a, 2 * b  # ĝ of the loss Φ·Φ
...     _ = ema.step(), hb.step()
>>> torch.allclose(a, b, rtol=0, atol=1e-12)
True
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim import Optimizer

from .stats import b_star_from_moments

__all__ = [
    "SGD", "EMAMomentum", "HeavyBall", "Nesterov", "RMSprop", "Adam", "DerivedSGD",
    "sgd", "ema_momentum", "heavy_ball", "nesterov_lookahead", "rmsprop", "adam", "derived_sgd",
]


# --- functional core: aligned lists, updated in place --------------------------------------------


@torch.no_grad()
def sgd(params, grads, momentum_buffers, *, lr, momentum, dampening, nesterov):
    """``torch.optim.SGD``'s step (see :class:`SGD`); fills ``None`` buffers on the first step."""
    for i, (Phi, g_hat) in enumerate(zip(params, grads, strict=True)):
        d = g_hat
        if momentum != 0:
            b = momentum_buffers[i]
            if b is None:  # torch: the first buffer is the first gradient itself
                b = momentum_buffers[i] = g_hat.detach().clone()
            else:
                b.mul_(momentum).add_(g_hat, alpha=1 - dampening)  # b ← μ b + (1 − τ) ĝ
            d = g_hat.add(b, alpha=momentum) if nesterov else b  # ĝ + μ b, or b
        Phi.add_(d, alpha=-lr)  # Φ ← Φ − l_r d


@torch.no_grad()
def ema_momentum(params, grads, g_tildes, *, lr, mu):
    """The slide's nonstandard momentum (see :class:`EMAMomentum`); ``lr`` is η."""
    eta = lr
    for Phi, g_hat, g_tilde in zip(params, grads, g_tildes, strict=True):
        g_tilde.mul_(mu).add_(g_hat, alpha=1 - mu)  # g̃ ← μ g̃ + (1 − μ) ĝ
        Phi.sub_(g_tilde, alpha=eta)  # Φ ← Φ − η g̃


@torch.no_grad()
def heavy_ball(params, grads, vs, *, lr, mu):
    """The slide's standard momentum (see :class:`HeavyBall`); ``lr`` is l_r."""
    for Phi, g_hat, v in zip(params, grads, vs, strict=True):
        v.mul_(mu).add_(g_hat, alpha=lr)  # v ← μ v + l_r ĝ
        Phi.sub_(v)  # Φ ← Φ − v


@torch.no_grad()
def nesterov_lookahead(params, g_tildes, *, lr, mu) -> list[Tensor]:
    """Move each Φ to the lookahead Φ − η μ g̃ in place; return copies of Φ to move back to.

    Half of :class:`Nesterov`'s step: measure ĝ there, copy Φ back, then :func:`ema_momentum`.
    """
    eta = lr
    saved = [Phi.clone() for Phi in params]
    for Phi, g_tilde in zip(params, g_tildes, strict=True):
        Phi.sub_(g_tilde, alpha=eta * mu)  # Φ − η μ g̃
    return saved


@torch.no_grad()
def rmsprop(params, grads, square_avgs, *, lr, beta, eps, eps_inside_sqrt):
    """RMSProp (see :class:`RMSprop`); ``square_avgs`` are the mean squares s."""
    for Phi, g_hat, s in zip(params, grads, square_avgs, strict=True):
        s.mul_(beta).addcmul_(g_hat, g_hat, value=1 - beta)  # s ← β s + (1 − β) ĝ²
        root = (s + eps).sqrt_() if eps_inside_sqrt else s.sqrt().add_(eps)
        Phi.addcdiv_(g_hat, root, value=-lr)  # Φ ← Φ − l_r ĝ / sqrt(s + ε)


@torch.no_grad()
def adam(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, betas, eps, bias_correction,
         eps_inside_sqrt):
    """Adam (see :class:`Adam`); ``exp_avgs`` are g̃, ``exp_avg_sqs`` are s, ``steps`` count t."""
    beta1, beta2 = betas
    for Phi, g_hat, g_tilde, s, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
        t.add_(1)
        g_tilde.mul_(beta1).add_(g_hat, alpha=1 - beta1)  # g̃ ← β1 g̃ + (1 − β1) ĝ
        s.mul_(beta2).addcmul_(g_hat, g_hat, value=1 - beta2)  # s ← β2 s + (1 − β2) ĝ²
        l_r, s_hat = lr, s
        if bias_correction:
            l_r = lr / (1 - beta1 ** t.item())  # l_r g̃ / (1 − β1^t): g̃ corrected, in the rate
            s_hat = s / (1 - beta2 ** t.item())  # ŝ = s / (1 − β2^t)
        root = (s_hat + eps).sqrt_() if eps_inside_sqrt else s_hat.sqrt().add_(eps)
        Phi.addcdiv_(g_tilde, root, value=-l_r)  # Φ ← Φ − l_r g̃ / sqrt(s + ε)


@torch.no_grad()
def derived_sgd(params, grads, g_tildes, s_tildes, steps, *, B, L, w_min, w_max, sq_means=None):
    """The slide's derived algorithm (see :class:`DerivedSGD`); returns the per-coordinate B*.

    ``sq_means`` (optional, one tensor per parameter): the batch mean of the per-example squared
    gradients. Given, s̃ averages them and σ² = s̃ − g̃² is the per-example variance itself;
    otherwise s̃ averages ĝ² and σ² = B (s̃ − g̃²).
    """
    B_stars = []
    sq_means = [None] * len(params) if sq_means is None else sq_means
    for Phi, g_hat, g_tilde, s_tilde, step, sq in zip(params, grads, g_tildes, s_tildes, steps,
                                                      sq_means, strict=True):
        per_example = sq is not None
        step += 1
        B_star = _b_star(g_tilde, s_tilde, B, per_example)  # from the averages before this step
        w = (B / B_star).clamp(w_min, w_max).clamp_min(1.0 / step.item())  # 1/t: mean at first
        g_tilde.mul_(1 - w).add_(w * g_hat)  # g̃ ← (1 − B/B*) g̃ + (B/B*) ĝ
        s_new = sq if per_example else g_hat**2
        s_tilde.mul_(1 - w).add_(w * s_new)  # s̃ ← (1 − B/B*) s̃ + (B/B*) ĝ²  (slide: g̃^t)
        B_star = _b_star(g_tilde, s_tilde, B, per_example)  # B*[c] = 16 σ[c]² / g̃[c]², ≥ B
        eta = B / (2 * B_star * L)  # η[c] = B / (2 B*[c] L), at most 1/(2L)
        Phi.sub_(eta * g_hat)  # Φ[c] ← Φ[c] − η[c] ĝ[c]
        B_stars.append(B_star)
    return B_stars


def _b_star(g_tilde, s_tilde, B, per_example=False):
    """B* = 16 σ² / g̃², at least B, +inf where g̃ = 0. The per-example variance σ² is
    s̃ − g̃² when s̃ averages per-example squares, else B (s̃ − g̃²) (s̃ averages ĝ², and
    s̃ − g̃² estimates Var(ĝ) = σ²/B); s̃ − g̃² is clamped at 0."""
    B_star = b_star_from_moments(g_tilde, s_tilde)
    return (B_star if per_example else B * B_star).clamp_min(B)


# --- validation (ValueError naming the argument) ------------------------------------------------


def _check_lr(lr):
    if not lr >= 0:
        raise ValueError(f"lr must be >= 0, got {lr}")


def _check_unit(name, x):
    if not 0 <= x < 1:
        raise ValueError(f"{name} must be in [0, 1), got {x}")


def _check_eps(eps):
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (eps = 0 makes a zero gradient 0/0 = NaN), got {eps}")


# --- thin torch.optim.Optimizer wrappers ---------------------------------------------------------


class _Optimizer(Optimizer):
    """What the classes share: per-group validation, state set-up and ``step``."""

    def add_param_group(self, param_group: dict) -> None:
        self._check({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def _with_grad(self, group):
        """The group's parameters that have a gradient, and their gradients."""
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse or p.is_complex():
                raise RuntimeError(f"{type(self).__name__} supports only dense real gradients")
        return params, [p.grad for p in params]

    def _state(self, params, init):
        """``self.state[p]`` for each parameter, filled by ``init(p)`` on its first step."""
        for p in params:
            if not self.state[p]:
                self.state[p].update(init(p))
        return [self.state[p] for p in params]

    @torch.no_grad()
    def step(self, closure=None):
        """One step for every parameter group; ``closure`` (optional) recomputes the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update(group)
        return loss


class _LrMu(_Optimizer):
    """The two hyperparameters the momentum classes share: ``lr`` and ``mu`` in [0, 1)."""

    def __init__(self, params, lr, mu):
        super().__init__(params, dict(lr=lr, mu=mu))

    def _check(self, group):
        _check_lr(group["lr"])
        _check_unit("mu", group["mu"])


class SGD(_Optimizer):
    r"""Momentum SGD with exactly ``torch.optim.SGD``'s semantics for these arguments.

    .. math::

        b^{t+1} = \mu\, b^t + (1 - \tau)\, \hat g, \qquad b^1 = \hat g

        \Phi^{t+1} = \Phi^t - l_r\, b^{t+1}
        \qquad \text{or, with Nesterov,} \qquad
        \Phi^{t+1} = \Phi^t - l_r\, (\hat g + \mu\, b^{t+1})

    ``lr`` is l_r, ``momentum`` is μ ≥ 0, ``dampening`` is τ; b is ``state[p]["momentum_buffer"]``
    (no state when μ = 0: then this is the SGD chapter's Φ ← Φ − η ĝ). As in torch, the first
    buffer is the first gradient itself, not μ·0 + (1 − τ) ĝ; the two agree when τ = 0, and then
    this is the slide's :class:`HeavyBall` with v = l_r b. ``nesterov=True`` needs μ > 0 and
    τ = 0; it stores torch's lookahead iterate (see :class:`Nesterov` for the change of variables).

    .. warning:: ``lr`` has no default (torch: 1e-3).

    .. warning:: Hyperparameters are validated for every parameter group; torch validates only
       the constructor's arguments.

    .. warning:: Not implemented: ``weight_decay``, ``maximize``, ``foreach``, ``fused``,
       ``differentiable``, a tensor ``lr``; sparse or complex gradients raise ``RuntimeError``.

    Taught in: momentum.ipynb.
    """

    def __init__(self, params, lr, momentum=0, dampening=0, nesterov=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check(self, group):
        _check_lr(group["lr"])
        if not group["momentum"] >= 0:
            raise ValueError(f"momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, group):
        params, g_hats = self._with_grad(group)
        with_momentum = group["momentum"] != 0
        bufs = [self.state[p].get("momentum_buffer") if with_momentum else None for p in params]
        sgd(params, g_hats, bufs, lr=group["lr"], momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"])
        if with_momentum:
            for p, b in zip(params, bufs, strict=True):
                self.state[p]["momentum_buffer"] = b


class EMAMomentum(_LrMu):
    r"""Momentum in the slide's nonstandard parameterization: Φ moves along a running average g̃.

    .. math::

        \tilde g^{t+1} = \mu\, \tilde g^t + (1 - \mu)\, \hat g, \qquad
        \Phi^{t+1} = \Phi^t - \eta\, \tilde g^{t+1}, \qquad \tilde g^0 = 0

    ``lr`` is η, ``mu`` is μ ∈ [0, 1); g̃ is ``state[p]["g_tilde"]``. g̃ averages roughly the last
    1/(1 − μ) gradients; the slide expects η = B η_1 independent of μ. :class:`HeavyBall` with
    ``lr=η(1 − μ)`` follows the same trajectory, with v = η g̃ (the slide's claim, tested).

    .. warning:: torch has no such class. ``torch.optim.SGD(lr=η(1 − μ), momentum=μ)`` follows
       the same trajectory, with buffer b = g̃ / (1 − μ). ``torch.optim.SGD(lr=η, momentum=μ,
       dampening=μ)`` looks like this form but starts its buffer at ĝ instead of (1 − μ) ĝ:
       for the same gradients its buffer is g̃^t + μ^t ĝ^0, so its first step is 1/(1 − μ)
       times this one's (10x for μ = 0.9) and the excess decays as μ^t (tested).

    .. warning:: ``lr`` has no default; hyperparameters are validated for every parameter group;
       no weight decay, maximize or foreach/fused variants; sparse or complex gradients raise.

    Taught in: momentum.ipynb.
    """

    def _update(self, group):
        params, g_hats = self._with_grad(group)
        states = self._state(params, lambda p: {"g_tilde": torch.zeros_like(p)})
        g_tildes = [state["g_tilde"] for state in states]
        ema_momentum(params, g_hats, g_tildes, lr=group["lr"], mu=group["mu"])


class HeavyBall(_LrMu):
    r"""Momentum in the slide's standard parameterization: a velocity v that accumulates l_r ĝ.

    .. math::

        v^{t+1} = \mu\, v^t + l_r\, \hat g, \qquad \Phi^{t+1} = \Phi^t - v^{t+1}, \qquad v^0 = 0

    ``lr`` is l_r, ``mu`` is μ ∈ [0, 1); v is ``state[p]["v"]``. With l_r = η(1 − μ) the
    velocity is v = η g̃ at every step, and the trajectory is :class:`EMAMomentum`'s with η and μ
    (the slide's claim, tested with gradients that depend on Φ).

    .. warning:: torch has no such class. ``torch.optim.SGD(lr=l_r, momentum=μ)`` follows the
       same trajectory, with buffer b = v / l_r. Its buffer starts at the first gradient, and
       since μ·0 + ĝ = ĝ there is no first-step difference (tested); one appears only with
       dampening ≠ 0 (see :class:`EMAMomentum`).

    .. warning:: l_r sits inside v. Changing ``lr`` between steps (a schedule) rescales only the
       gradients still to come; in ``torch.optim.SGD`` and :class:`EMAMomentum` it rescales the
       whole step, accumulated momentum included. They agree for a constant rate only.

    .. warning:: ``lr`` has no default; hyperparameters are validated for every parameter group;
       no dampening, nesterov, weight decay or foreach/fused variants; sparse or complex
       gradients raise.

    Taught in: momentum.ipynb.
    """

    def _update(self, group):
        params, g_hats = self._with_grad(group)
        vs = [state["v"] for state in self._state(params, lambda p: {"v": torch.zeros_like(p)})]
        heavy_ball(params, g_hats, vs, lr=group["lr"], mu=group["mu"])


class Nesterov(EMAMomentum):
    r"""The slide's Nesterov momentum: :class:`EMAMomentum` with ĝ measured at a lookahead.

    .. math::

        \tilde g^{t+1} = \mu\, \tilde g^t + (1 - \mu)\, \hat g\big|_{\Phi^t - \eta \mu \tilde g^t},
        \qquad \Phi^{t+1} = \Phi^t - \eta\, \tilde g^{t+1}, \qquad \tilde g^0 = 0

    ``lr`` is η, ``mu`` is μ ∈ [0, 1); g̃ is ``state[p]["g_tilde"]``. ``step(closure)`` moves
    every parameter that has a g̃ to the lookahead Φ − η μ g̃, calls ``closure`` there (as in
    torch, it zeroes the gradients, computes the loss, calls ``backward`` and returns the loss),
    copies Φ back (exactly: a saved copy, not a subtraction undone) and applies the update with
    the ĝ left in ``p.grad``. It returns the loss at the lookahead.

    Change of variables to ``torch.optim.SGD(nesterov=True)``. Let Ψ^t = Φ^t − η μ g̃^t be the
    lookahead and b^t = g̃^t / (1 − μ). Then μ g̃^t = g̃^{t+1} − (1 − μ) ĝ^t and the two slide
    lines give, with ĝ^t = ∇ℓ(Ψ^t),

    .. math::

        b^{t+1} = \mu\, b^t + \hat g^t, \qquad
        \Psi^{t+1} = \Phi^{t+1} - \eta \mu \tilde g^{t+1}
                   = \Psi^t - \eta (1 - \mu)\, \big(\hat g^t + \mu\, b^{t+1}\big),

    which is ``torch.optim.SGD(lr=η(1 − μ), momentum=μ, nesterov=True)`` with parameter θ^t = Ψ^t
    and ``momentum_buffer`` b^t: torch stores the lookahead point, this class stores
    Φ^t = θ^t + η μ (1 − μ) b^t. The first step matches too: g̃^0 = 0 makes Ψ^0 = Φ^0, and torch's
    first buffer, the first gradient, equals μ·0 + ĝ^0 (torch requires dampening = 0 with
    nesterov), so nothing needs special handling. Proved above in exact arithmetic; the test
    starts both from the same point with the same autograd closures on a noisy quadratic in two
    parameter groups and checks θ^t = Φ^t − η μ g̃^t, b^t = g̃^t / (1 − μ) and equal returned
    losses after each of 50 steps, to 1e-12. (torch needs μ > 0; at μ = 0 both are plain SGD.)

    .. warning:: ``step()`` without a closure raises ``RuntimeError``: ĝ must be measured at the
       lookahead. Inside the closure the parameters hold Φ − η μ g̃, not Φ.

    .. warning:: The parameters hold Φ, not torch's lookahead θ, and ``lr`` is η, not torch's
       η(1 − μ). During ``step`` a copy of the parameters is kept (memory).

    .. warning:: ``lr`` has no default; hyperparameters are validated for every parameter group;
       no dampening, weight decay or foreach/fused variants; sparse or complex gradients raise.

    Taught in: momentum.ipynb.
    """

    @torch.no_grad()
    def step(self, closure=None):
        """Move to the lookahead, evaluate ``closure`` there, move back, update; return the loss."""
        if closure is None:
            raise RuntimeError("Nesterov.step needs a closure: the gradient is measured at the "
                               "lookahead Φ − η μ g̃, which step() moves the parameters to first")
        moved = []
        for group in self.param_groups:
            params = [p for p in group["params"] if self.state.get(p)]
            g_tildes = [self.state[p]["g_tilde"] for p in params]
            saved = nesterov_lookahead(params, g_tildes, lr=group["lr"], mu=group["mu"])
            moved += zip(params, saved, strict=True)
        try:
            with torch.enable_grad():
                loss = closure()  # ĝ|_{Φ − η μ g̃}
        finally:
            for p, Phi in moved:
                p.copy_(Phi)
        for group in self.param_groups:
            self._update(group)  # EMAMomentum's: g̃ ← μ g̃ + (1 − μ) ĝ, Φ ← Φ − η g̃
        return loss


class RMSprop(_Optimizer):
    r"""RMSProp: each coordinate's step is divided by the root of its gradient's mean square.

    .. math::

        s^{t+1}[c] = \beta\, s^t[c] + (1 - \beta)\, \hat g[c]^2, \qquad
        \Phi^{t+1}[c] = \Phi^t[c] - \frac{l_r}{\sqrt{s^{t+1}[c] + \epsilon}}\, \hat g[c],
        \qquad s^0 = 0

    ``lr`` is l_r, ``beta`` is β ∈ [0, 1) (torch's ``alpha``), ``eps`` is ε > 0; s is
    ``state[p]["square_avg"]``, and ``state[p]["step"]`` counts steps (unused by the update,
    kept for torch's state layout). With ``eps_inside_sqrt=False`` the update is PyTorch's
    Φ ← Φ − l_r ĝ / (sqrt(s) + ε), and the class equals ``torch.optim.RMSprop(lr=lr,
    alpha=beta, eps=eps)`` (tested).

    .. warning:: By default ε is inside the root, as on the slide, so the denominator is at
       least sqrt(ε): 1e-4 for the default ε = 1e-8, where torch's is at least ε = 1e-8. ε² inside
       the root gives about torch's floor; ``eps_inside_sqrt=False`` gives torch's form.

    .. warning:: ``beta`` is torch's ``alpha`` and must be in [0, 1) (torch checks alpha ≥ 0).
       ``eps`` must be > 0 (torch accepts 0, and then a coordinate whose gradients have all been
       0 becomes 0/0 = NaN). ``lr`` has no default (torch: 1e-2).

    .. warning:: Hyperparameters are validated for every parameter group. Not implemented:
       ``momentum``, ``centered``, ``weight_decay``, ``maximize``, ``foreach``, ``capturable``,
       ``differentiable``; sparse or complex gradients raise ``RuntimeError``.

    Taught in: adaptive.ipynb.
    """

    def __init__(self, params, lr, beta=0.99, eps=1e-8, eps_inside_sqrt=True):
        defaults = dict(lr=lr, beta=beta, eps=eps, eps_inside_sqrt=eps_inside_sqrt)
        super().__init__(params, defaults)

    def _check(self, group):
        _check_lr(group["lr"])
        _check_unit("beta", group["beta"])
        _check_eps(group["eps"])

    def _update(self, group):
        params, g_hats = self._with_grad(group)
        states = self._state(params, lambda p: {
            "step": torch.zeros((), dtype=torch.float32), "square_avg": torch.zeros_like(p)})
        for state in states:
            state["step"].add_(1)
        rmsprop(params, g_hats, [state["square_avg"] for state in states], lr=group["lr"],
                beta=group["beta"], eps=group["eps"], eps_inside_sqrt=group["eps_inside_sqrt"])


class Adam(_Optimizer):
    r"""Adam: RMSProp's per-coordinate scaling applied to a momentum average g̃ of ĝ.

    .. math::

        \tilde g^{t+1}[c] = \beta_1\, \tilde g^t[c] + (1 - \beta_1)\, \hat g[c], \qquad
        s^{t+1}[c] = \beta_2\, s^t[c] + (1 - \beta_2)\, \hat g[c]^2

        \Phi^{t+1}[c] = \Phi^t[c] - \frac{l_r}{\sqrt{s^{t+1}[c] + \epsilon}}\, \tilde g^{t+1}[c],
        \qquad \tilde g^0 = s^0 = 0

    ``lr`` is l_r, ``betas`` is (β1, β2), each in [0, 1), ``eps`` is ε > 0; g̃ is
    ``state[p]["exp_avg"]``, s is ``state[p]["exp_avg_sq"]``, and t = ``state[p]["step"]`` counts
    this parameter's steps. ``bias_correction=True`` replaces g̃ and s in the last line by
    g̃ / (1 − β1^t) and ŝ = s / (1 − β2^t), with ε still where ``eps_inside_sqrt`` puts it:
    inside the root, Φ ← Φ − l_r g̃ / ((1 − β1^t) sqrt(ŝ + ε)); outside (``False``),
    Φ ← Φ − l_r g̃ / ((1 − β1^t) (sqrt(ŝ) + ε)), which is ``torch.optim.Adam(lr=lr, betas=betas,
    eps=eps)`` (tested). The slide's form is both flags at their defaults.

    .. warning:: No bias correction by default, as on the slide. For a constant ĝ (ε negligible)
       the slide's step is (1 − β1^t) / sqrt(1 − β2^t) times torch's: 3.2 at t = 1, up to 6.6
       (t ≈ 12), 1.26 at t = 1000 for the default betas.

    .. warning:: By default ε is inside the root, as on the slide: the denominator is at least
       sqrt(ε) = 1e-4 for the default ε = 1e-8, where torch's is at least ε.

    .. warning:: ``eps`` must be > 0 (torch accepts 0, and then a coordinate whose gradients have
       all been 0 becomes 0/0 = NaN). ``lr`` has no default (torch: 1e-3). Hyperparameters are
       validated for every parameter group. Not implemented: ``weight_decay``, ``amsgrad``,
       ``maximize``, ``foreach``, ``fused``, ``capturable``, ``differentiable``, tensor ``lr``
       or ``betas``; sparse or complex gradients raise ``RuntimeError``.

    Taught in: adaptive.ipynb.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, bias_correction=False,
                 eps_inside_sqrt=True):
        defaults = dict(lr=lr, betas=betas, eps=eps, bias_correction=bias_correction,
                        eps_inside_sqrt=eps_inside_sqrt)
        super().__init__(params, defaults)

    def _check(self, group):
        _check_lr(group["lr"])
        _check_unit("betas[0]", group["betas"][0])
        _check_unit("betas[1]", group["betas"][1])
        _check_eps(group["eps"])

    def _update(self, group):
        params, g_hats = self._with_grad(group)
        states = self._state(params, lambda p: {
            "step": torch.zeros((), dtype=torch.float32),
            "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)})
        adam(params, g_hats, [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states],
             [st["step"] for st in states], lr=group["lr"], betas=group["betas"],
             eps=group["eps"], bias_correction=group["bias_correction"],
             eps_inside_sqrt=group["eps_inside_sqrt"])



class DerivedSGD(_Optimizer):
    r"""The lecture's derived algorithm: per-coordinate learning rates from running estimates
    of ĝ and σ̂ and the B* analysis.

    .. math::

        \tilde g^{t+1}[c] = (1 - B/B^*[c])\, \tilde g^t[c] + (B/B^*[c])\, \hat g[c],
        \qquad
        \tilde s^{t+1}[c] = (1 - B/B^*[c])\, \tilde s^t[c] + (B/B^*[c])\, \hat g[c]^2

        \tilde\sigma[c] = \sqrt{\tilde s[c] - \tilde g[c]^2}, \quad
        B^*[c] = 16\,B\,\tilde\sigma[c]^2/\tilde g[c]^2, \quad
        \eta[c] = B/(2B^*[c]L), \quad
        \Phi^{t+1}[c] = \Phi^t[c] - \eta[c]\,\hat g[c]

    ``B`` is the batch size the gradients come from and ``L`` the smoothness constant (e.g. the
    largest Hessian eigenvalue, :func:`lecturekit.hvp.power_iteration`). State per parameter:
    ``g_tilde``, ``s_tilde``, ``step`` and the latest ``B_star``.

    .. warning:: Correction to the slide: its running average for s̃ is fed the wrong quantity,
       ``(1 − B/B*) g̃^t + (B/B*) ĝ²``; it must average s̃ with itself, as written above.
       (With g̃ in its place s̃ is not a mean square and σ̃² can be negative.)

    .. warning:: Correction to the slide: it writes B*[c] = 16σ̃[c]²/g̃[c]². But g̃ and s̃ average
       the *batch-mean* gradient ĝ and its square, so σ̃² = s̃ − g̃² estimates Var(ĝ) = σ²/B,
       not the per-example variance σ² that the B* analysis uses (B* = 16σ̂²/ĝ² with σ̂ the
       spread of one example's gradient). The slide's formula therefore yields B*/B, and the rate
       η[c] = B/(2B*[c]L) comes out B times too large wherever B*/B is not clamped. This class
       uses σ² ≈ B σ̃², i.e. B*[c] = 16 B σ̃[c]²/g̃[c]², which tracks 16σ²/g² at every B
       (``tests/test_optim.py::test_derived_sgd_b_star_tracks_the_per_example_value``). At
       B = 1 the two agree.

    With batch means alone, σ² is estimated from the B*/B batches in the averaging window, so it
    is noisy when B approaches B*. Where per-example gradients are at hand
    (:func:`lecturekit.stats.per_example_grads`), pass the batch mean of their squares,
    ``step(sq_means={p: mean_i g_i[c]^2})``: then s̃ averages those, σ² = s̃ − g̃², and the
    window holds about B* examples whatever B is.

    Even so, B* is estimated from a window that its own estimate sets: where g̃ happens to be
    small, B* is large, the window long and the small g̃ persists. Over a long run the median
    B* sits about 15-20% above 16σ²/g² (the tests measure 0.93-1.22 times it at B = 1 to 64);
    the rate errs on the safe side. With a fixed window the median is unbiased.

    Guards, each a departure from the slide's equations, so that no NaN or inf ever reaches Φ:

    * σ̃² = s̃ − g̃² can round below zero: it is clamped at 0.
    * g̃[c] = 0 makes B*[c] infinite: then η[c] = 0 and the weight falls to ``w_min``.
    * B/B*[c] above one (the batch is already larger than B*): B*[c] is raised to B, so
      η[c] ≤ 1/(2L), the slide's η*. The averaging weight B/B*[c] is clamped to
      [``w_min``, ``w_max``] (defaults 1e-3 and 0.5: the averages always span two batches or
      more, and at most about a thousand).
    * The slide leaves the start open: g̃ and s̃ start at 0 and the weight is at least 1/t, so
      they are plain means of the gradients seen while t is small (no zero-start bias), and
      B* on the very first step comes from one batch.

    .. warning:: Not in ``torch.optim``; a new algorithm, tested against the equations above.

    Taught in: lr_batch.ipynb.
    """

    def __init__(self, params, B, L, w_min=1e-3, w_max=0.5):
        super().__init__(params, dict(B=B, L=L, w_min=w_min, w_max=w_max))

    def _check(self, group):
        if not group["B"] >= 1:
            raise ValueError(f"B must be >= 1, got {group['B']}")
        if not group["L"] > 0:
            raise ValueError(f"L must be > 0, got {group['L']}")
        if not 0 < group["w_min"] <= group["w_max"] <= 1:
            raise ValueError("need 0 < w_min <= w_max <= 1, got "
                             f"w_min={group['w_min']}, w_max={group['w_max']}")

    @torch.no_grad()
    def step(self, closure=None, sq_means=None):
        """One step; ``sq_means`` optionally maps each parameter to the batch mean of its
        per-example squared gradients (then B* uses the per-example variance directly)."""
        self._sq_means = sq_means or {}
        try:
            return super().step(closure)
        finally:
            self._sq_means = {}

    def _update(self, group):
        params, g_hats = self._with_grad(group)
        states = self._state(params, lambda p: dict(
            g_tilde=torch.zeros_like(p), s_tilde=torch.zeros_like(p), step=torch.tensor(0.0)))
        sq_means = getattr(self, "_sq_means", {})
        B_stars = derived_sgd(params, g_hats, [s["g_tilde"] for s in states],
                              [s["s_tilde"] for s in states], [s["step"] for s in states],
                              B=group["B"], L=group["L"], w_min=group["w_min"],
                              w_max=group["w_max"], sq_means=[sq_means.get(p) for p in params])
        for s, B_star in zip(states, B_stars, strict=True):
            s["B_star"] = B_star
