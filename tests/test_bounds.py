"""lecturekit.bounds: the appendix derived by sympy equals what the slides print."""

import numpy as np
import sympy as sp

import lecturekit as lk
from lecturekit.bounds import B, L, eta, g, sigma


def equal(a, b):
    return sp.simplify(a - b) == 0


def test_derive_returns_the_slide_results():
    d = lk.bounds.derive()
    assert set(d) == {"eta_of_B", "guarantee", "B_star", "eta_star", "eta_1"}
    for key, value in d.items():
        assert equal(value, lk.bounds.SLIDE[key]), key
        assert value.free_symbols <= {g, sigma, L, B}, key


def test_closed_forms_as_printed():
    d = lk.bounds.derive()
    assert equal(d["eta_of_B"], (1 - 2 * sigma / (g * sp.sqrt(B))) / L)
    assert equal(d["B_star"], 16 * sigma**2 / g**2)
    assert equal(d["eta_star"], 1 / (2 * L))
    assert equal(d["eta_1"], g**2 / (32 * sigma**2 * L))
    assert equal(d["guarantee"], -(L / 2) * d["eta_of_B"] ** 2 * g**2)


def test_b_star_is_a_maximum_and_the_other_critical_point_is_not():
    s = lk.bounds.steps()
    assert s["second_derivative_at_B_star"].is_negative
    assert sorted(s["critical_points"], key=lambda c: c.subs({g: 1, sigma: 1})) == [
        4 * sigma**2 / g**2, 16 * sigma**2 / g**2]  # at 4 sigma^2/g^2, eta*(B) = 0: a minimum
    numeric = sp.lambdify(B, s["per_example"].subs({g: 1.0, sigma: 0.5, L: 2.0}))
    best = 16 * 0.25
    assert all(numeric(best) > numeric(b) for b in (best * 0.9, best * 1.1, 1.0, 100.0))


def test_b_star_is_the_maximum_on_the_domain_where_eta_star_is_nonnegative():
    """On B >= B_min = 4 sigma^2/g^2 (eta*(B) >= 0), eta*(B)^2/B rises from 0 to its maximum at
    B* and then falls: with B = B_min u^2, its derivative is a positive factor times
    (u - 1)(2 - u), so it is > 0 for 1 < u < 2 and < 0 for u > 2; B* is u = 2."""
    s = lk.bounds.steps()
    assert equal(s["B_min"], 4 * sigma**2 / g**2)
    assert equal(s["eta_of_B"].subs(B, s["B_min"]), 0)
    assert equal(s["per_example"].subs(B, s["B_min"]), 0)
    assert equal(s["B_star"], s["B_min"] * 4)  # u = 2
    u = sp.Symbol("u", positive=True)
    d = s["d_per_example_d_B"].subs(B, s["B_min"] * u**2)
    ratio = sp.simplify(d / ((u - 1) * (2 - u)))
    assert ratio.is_positive, ratio
    assert sp.limit(s["per_example"], B, sp.oo) == 0
    # numerically, on a dense grid over [B_min, 100 B*] the maximum is at B*
    f = sp.lambdify(B, s["per_example"].subs({g: 1.0, sigma: 2.0, L: 1.0}))
    grid = np.geomspace(16.0, 6400.0, 20001)
    assert abs(grid[np.argmax(f(grid))] / 64.0 - 1) < 1e-3


def test_below_b_min_the_per_example_bound_is_unbounded():
    """Why the domain matters: eta*(B)^2/B is 9.0 at B = 1 and 43 at B = 0.5 (g = 1,
    sigma = 2, L = 1), against 0.0039 at B* = 64, and grows without bound as B -> 0."""
    s = lk.bounds.steps()
    f = sp.lambdify(B, s["per_example"].subs({g: 1.0, sigma: 2.0, L: 1.0}))
    assert round(f(1.0), 6) == 9.0 and round(f(0.5), 1) == 43.4 and round(f(64.0), 4) == 0.0039
    assert sp.limit(s["per_example"], B, 0, "+") == sp.oo


def test_first_order_progress_needs_the_absolute_value():
    """|g - g_hat| <= d implies g g_hat >= |g_hat|(|g_hat| - d) for either sign of g_hat
    (proved below for each sign); the slide's (g_hat - d) g_hat is a bound only for g_hat >= 0."""
    a, d = sp.symbols("a d", positive=True)  # |g_hat| = a, half-width d
    t = sp.Symbol("t", real=True)  # g = g_hat + t with |t| <= d
    for sign in (1, -1):
        g_hat = sign * a
        gap = (g_hat + t) * g_hat - lk.bounds.first_order_progress(g_hat, d)
        # gap = a (d + sign t) >= 0 because |t| <= d
        assert sp.expand(gap - a * (d + sign * t)) == 0
    rng = np.random.default_rng(0)
    g_hat, half = rng.normal(size=100_000), rng.uniform(0.01, 2, 100_000)
    g_true = g_hat + half * rng.uniform(-1, 1, 100_000)
    assert np.all(g_true * g_hat >= lk.bounds.first_order_progress(g_hat, half) - 1e-12)
    slide = lk.bounds.slide_first_order_progress(g_hat, half)
    assert np.all((g_true * g_hat >= slide - 1e-12)[g_hat >= 0])
    assert np.any((g_true * g_hat < slide)[g_hat < 0])  # e.g. g_hat = -1, d = 0.5, g = -0.5


def test_the_slides_intermediate_lines():
    s = lk.bounds.steps()
    # "Optimizing eta we get g(g - 2 sigma/sqrt B) = L eta g^2" is d/d eta = 0
    assert equal(sp.solve(s["optimality_in_eta"], eta)[0], s["eta_of_B"])
    assert equal(s["per_example"], s["per_example_slide"])
    assert equal(s["inner_derivative"], -B ** sp.Rational(-3, 2) / 2 + 2 * sigma / g * B**-2)


def test_guarantee_is_the_progress_bound_at_eta_of_b():
    rhs = lk.bounds.guarantee_rhs()
    d = lk.bounds.derive()
    assert equal(rhs.subs(eta, d["eta_of_B"]), d["guarantee"])
    # and eta*(B) minimises the bound: the second derivative in eta is L g^2 > 0
    assert sp.diff(rhs, eta, 2) == L * g**2
