r"""Complex-step differentiation: a derivative to machine precision from one complex evaluation.

For f real on the real line and holomorphic near x (Squire & Trapp 1998; Martins, Sturdza &
Alonso 2003), the Taylor series along the imaginary axis is

.. math::

    f(x + ih) = f(x) + ih f'(x) - \tfrac{h^2}{2} f''(x) - \tfrac{ih^3}{6} f'''(x) + \dots,
    \qquad f'(x) = \frac{\operatorname{Im} f(x + ih)}{h} + O(h^2).

No difference of nearby numbers is formed, so h can be as small as 1e-300 and the error is the
rounding error of evaluating f, against the forward difference's best ~sqrt(ε) and the central
difference's ~ε^(2/3). It needs f to be built from holomorphic operations: ``abs``, ``max``,
comparisons and the branch cuts of ``sqrt`` and ``log`` break it, so :func:`abs_cs` and
:func:`logsumexp` give the complex-safe forms codes use. Taught in the chapter
"Complex-step differentiation" (second_order/complex_step.ipynb).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "F_PRIME", "X0", "f", "forward_difference", "central_difference", "complex_step",
    "abs_cs", "logsumexp",
]

X0 = 1.5
F_PRIME = 4.05342789389862  # f'(1.5) as Martins, Sturdza & Alonso (2003) print it


def f(x):
    r"""The test function of Martins, Sturdza & Alonso (2003), real or complex (NumPy):

    .. math:: f(x) = \frac{e^x}{\sqrt{\sin^3 x + \cos^3 x}}.

    >>> round(float(f(1.5)), 10)
    4.4977800539
    """
    return np.exp(x) / np.sqrt(np.sin(x) ** 3 + np.cos(x) ** 3)


def forward_difference(fun, x, h):
    r"""f'(x) ≈ (f(x + h) − f(x)) / h: truncation O(h), rounding ~ε|f|/h."""
    return (fun(x + h) - fun(x)) / h


def central_difference(fun, x, h):
    r"""f'(x) ≈ (f(x + h) − f(x − h)) / (2h): truncation O(h²), rounding ~ε|f|/h."""
    return (fun(x + h) - fun(x - h)) / (2 * h)


def complex_step(fun, x, h):
    r"""f'(x) ≈ Im f(x + ih) / h: truncation O(h²) and no subtraction, so no cancellation.

    ``fun`` must accept complex arguments and be holomorphic near x (see :func:`abs_cs`).

    >>> bool(abs(complex_step(f, 1.5, 1e-200) - F_PRIME) < 1e-13)
    True
    """
    return np.imag(fun(x + 1j * h)) / h


def abs_cs(z):
    """|x| continued to complex arguments as codes for complex step define it: ``-z`` where
    Re z < 0, else ``z``. Equals ``abs`` on reals; its complex step gives sign(x), which
    ``abs`` (the modulus, real-valued) loses. Works on NumPy arrays and torch tensors.

    >>> complex_step(abs_cs, -2.0, 1e-20), complex_step(np.abs, -2.0, 1e-20)
    (np.float64(-1.0), np.float64(0.0))
    """
    if isinstance(z, torch.Tensor):
        return torch.where(z.real < 0, -z, z)
    return np.where(np.real(z) < 0, -z, z)


def logsumexp(z: torch.Tensor, dim: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""log Σ exp(z) along ``dim``, holomorphic in z, over the entries where ``mask`` is True.

    .. math:: \operatorname{lse}(z) = m + \log \sum_t e^{z_t - m}, \qquad
              m = \max_t \operatorname{Re} z_t \ (\text{a constant: no gradient}).

    The identity holds for every constant m, so shifting by the largest *real part* (complex
    numbers have no order) avoids overflow and leaves the derivative exact. Masked-out entries
    are replaced by m before exp and their terms by 0 after it (no -inf, so no NaN in the
    backward pass). Every slice must keep at least one entry.

    >>> z = torch.tensor([1000.0, 999.0], dtype=torch.float64)
    >>> bool(torch.isclose(logsumexp(z, 0), torch.logsumexp(z, 0)))
    True
    """
    keep = torch.ones_like(z.real, dtype=torch.bool) if mask is None else mask.expand_as(z.real)
    if not keep.any(dim).all():
        raise ValueError("mask must keep at least one entry in every slice along dim")
    real = z.real.detach().masked_fill(~keep, float("-inf"))
    m = real.amax(dim, keepdim=True)
    shifted = torch.where(keep, z, m.to(z.dtype)) - m
    terms = torch.where(keep, torch.exp(shifted), torch.zeros((), dtype=z.dtype))
    return (m + torch.log(terms.sum(dim, keepdim=True))).squeeze(dim)
