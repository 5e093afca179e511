"""lecturekit.bounds: the appendix derived by sympy equals what the slides print."""

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
