r"""Hessian-vector products and the largest Hessian eigenvalue, without forming the Hessian.

The slides ("Hessian-Vector Products"): for a fixed vector v, (∇_Φ ℓ)·v is a scalar, so its
gradient, which is Hv, costs one more backward pass:

.. math::

    H v = \nabla_\Phi\big((\nabla_\Phi \ell(\Phi)) \cdot v\big).

:func:`power_iteration` uses it to estimate the largest eigenvalue of H, the smoothness constant
L of the Learning Rate and Batch Size chapter. (The second-order chapter will add the other
three ways of computing Hv.)
"""

from __future__ import annotations

import torch

__all__ = ["hvp", "power_iteration"]


def hvp(loss: torch.Tensor, params, v):
    """Hv by double backward: ``loss`` must be built from ``params`` with autograd on; ``v`` is
    a list of tensors shaped like ``params``. Returns a list shaped like ``params``."""
    params = list(params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, v, strict=True))
    return list(torch.autograd.grad(dot, params))


def power_iteration(loss_fn, params, iters: int = 20, generator=None):
    """The largest-magnitude eigenvalue of the Hessian of ``loss_fn()`` at ``params``.

    Power iteration v ← Hv/|Hv| from a seeded random start; returns (λ, v) with λ = vᵀHv (the
    Rayleigh quotient, signed). ``loss_fn`` is called once per iteration, so a fixed batch gives
    the Hessian of that batch's loss.
    """
    params = list(params)
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
    norm = torch.sqrt(sum((vi**2).sum() for vi in v))
    v = [vi / norm for vi in v]
    lam = torch.tensor(0.0)
    for _ in range(iters):
        Hv = hvp(loss_fn(), params, v)
        lam = sum((h * vi).sum() for h, vi in zip(Hv, v, strict=True)).detach()
        norm = torch.sqrt(sum((h**2).sum() for h in Hv)).detach()
        if norm == 0:
            break
        v = [h.detach() / norm for h in Hv]
    return float(lam), v
