r"""The lecture's appendix, "Optimizing B and η", derived with sympy rather than typed in.

Starting from the one-step progress guarantee (the slides' "A Progress Guarantee", with
g = ĝ ± 2σ̂/√B and ∂²loss/∂β² ≤ L)

.. math::

    \mathrm{loss}(\beta - \eta\hat g) - \mathrm{loss}(\beta)
    \le -\eta\Big(\hat g - \frac{2\hat\sigma}{\sqrt B}\Big)\hat g + \frac12 L\eta^2\hat g^2,

:func:`derive` minimises the right-hand side over η, maximises the guaranteed progress per
example over B, and returns each result as a sympy expression in the positive symbols
:data:`g` (ĝ), :data:`sigma` (σ̂), :data:`L` and :data:`B`:

* ``eta_of_B``:  η*(B) = (1/L)(1 − 2σ̂/(ĝ√B))
* ``guarantee``: the bound at η*(B), −(L/2) η*(B)² ĝ²
* ``B_star``:    B* = 16σ̂²/ĝ², the maximiser of η*(B)²/B
* ``eta_star``:  η* = η*(B*) = 1/(2L)
* ``eta_1``:     η_1 = η*/B* = ĝ²/(32σ̂²L)

:func:`steps` also returns the slide's intermediate lines, so the appendix notebook can assert
each one. Taught in the Learning Rate and Batch Size chapter and its appendix.

Two corrections to the slides (both in the book's errata):

* **The sign of ĝ.** From loss(β − ηĝ) ≤ loss(β) − gηĝ + ½L(ηĝ)² and |g − ĝ| ≤ 2σ̂/√B, the
  slide concludes gĝ ≥ (ĝ − 2σ̂/√B)ĝ. That holds for ĝ > 0 only; for ĝ < 0 it overstates the
  progress. In general gĝ ≥ |ĝ|(|ĝ| − 2σ̂/√B) (:func:`first_order_progress`), so every
  formula here holds with ĝ read as |ĝ|: the symbol :data:`g` is positive, and stands for |ĝ|.
* **Where B* is a maximum.** η*(B)²/B is unbounded as B → 0 (η*(B) is then negative and large),
  so B* is not its global maximiser. η*(B) ≥ 0 (a positive step is guaranteed to help) exactly
  on B ≥ B_min = 4σ̂²/ĝ² (``steps()["B_min"]``), where η*(B)²/B rises from 0 to its maximum at
  B* = 16σ̂²/ĝ² and falls back to 0; below B_min the bound guarantees no progress at any η > 0.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["g", "sigma", "L", "B", "eta", "guarantee_rhs", "derive", "steps", "SLIDE",
           "first_order_progress", "slide_first_order_progress"]

g, sigma, L, B, eta = sp.symbols("g sigma L B eta", positive=True)
"""|ĝ|, σ̂, L, B and η; all positive (the guarantee holds for either sign of ĝ with |ĝ|)."""


def first_order_progress(g_hat, half_width):
    """The guaranteed lower bound on gĝ when |g − ĝ| ≤ ``half_width`` (= 2σ̂/√B):
    |ĝ|(|ĝ| − half_width), valid for either sign of ĝ (works on numbers, arrays, sympy)."""
    return abs(g_hat) * (abs(g_hat) - half_width)


def slide_first_order_progress(g_hat, half_width):
    """The slide's (ĝ − 2σ̂/√B)ĝ: a lower bound on gĝ only when ĝ ≥ 0."""
    return (g_hat - half_width) * g_hat

SLIDE = {
    "eta_of_B": (1 / L) * (1 - 2 * sigma / (g * sp.sqrt(B))),
    "B_star": 16 * sigma**2 / g**2,
    "eta_star": 1 / (2 * L),
    "eta_1": g**2 / (32 * sigma**2 * L),
}
"""The closed forms exactly as the slides print them (with the OCR's q̂ read as ĝ)."""
SLIDE["guarantee"] = -(L / 2) * SLIDE["eta_of_B"] ** 2 * g**2


def guarantee_rhs(eta_=eta, B_=B):
    """The bound on loss(β − ηĝ) − loss(β): −η(ĝ − 2σ̂/√B)ĝ + ½Lη²ĝ²."""
    return -eta_ * (g - 2 * sigma / sp.sqrt(B_)) * g + sp.Rational(1, 2) * L * eta_**2 * g**2


def steps() -> dict:
    """Every step of the appendix, derived: the results of :func:`derive` plus the slide's
    intermediate lines, each as a sympy expression (or an equation ``sp.Eq``)."""
    rhs = guarantee_rhs()
    d_eta = sp.diff(rhs, eta)
    (eta_of_B,) = sp.solve(d_eta, eta)
    guarantee = sp.factor(rhs.subs(eta, eta_of_B))
    per_example = eta_of_B**2 / B  # progress per example, up to the constant −(L/2)ĝ²
    critical = sp.solve(sp.diff(per_example, B), B)
    second = sp.diff(per_example, B, 2)
    maxima = [c for c in critical if sp.simplify(second.subs(B, c)).is_negative]
    if len(maxima) != 1:
        raise RuntimeError(f"expected one maximiser of eta*(B)^2/B, found {maxima}")
    (B_star,) = maxima
    eta_star = sp.simplify(eta_of_B.subs(B, B_star))
    (B_min,) = sp.solve(eta_of_B, B)  # η*(B) = 0: below it no positive step is guaranteed to help
    return {
        # "Optimizing η we get ĝ(ĝ − 2σ̂/√B) = Lηĝ²": the stationarity condition of the bound
        "optimality_in_eta": sp.Eq(g * (g - 2 * sigma / sp.sqrt(B)), L * eta * g**2),
        "d_guarantee_d_eta": d_eta,
        "eta_of_B": eta_of_B,
        "guarantee": guarantee,
        "per_example": per_example,
        # the slide's rewriting: η*(B)²/B = (1/L²)(1/√B − 2σ̂/(ĝB))²
        "per_example_slide": (1 / L**2) * (1 / sp.sqrt(B) - 2 * sigma / (g * B)) ** 2,
        # "0 = −½ B^{-3/2} + (2σ̂/ĝ) B^{-2}": the derivative of the root's inner function
        "inner_derivative": sp.diff(1 / sp.sqrt(B) - 2 * sigma / (g * B), B),
        "critical_points": critical,
        "B_min": B_min,
        "d_per_example_d_B": sp.diff(per_example, B),
        "second_derivative_at_B_star": sp.simplify(second.subs(B, B_star)),
        "B_star": B_star,
        "eta_star": eta_star,
        "eta_1": sp.simplify(eta_star / B_star),
    }


def derive() -> dict:
    """The five results of the appendix: ``eta_of_B``, ``guarantee``, ``B_star``,
    ``eta_star``, ``eta_1``, as sympy expressions in :data:`g`, :data:`sigma`, :data:`L`,
    :data:`B`."""
    s = steps()
    return {key: s[key] for key in ("eta_of_B", "guarantee", "B_star", "eta_star", "eta_1")}
