"""lecturekit.problems against closed forms, sympy and torch.func Hessians."""

import numpy as np
import pytest
import sympy as sp
import torch

import lecturekit as lk


@pytest.fixture(scope="module")
def problem():
    return lk.problems.OneDim.make(n=500, seed=3)


def test_one_dim_moments_are_population_moments(problem):
    y = problem.y
    assert problem.mean_y == pytest.approx(y.sum() / y.size)
    assert problem.var_y == pytest.approx(((y - y.mean()) ** 2).sum() / y.size)
    assert problem.skew_y > 0.5  # Gamma(2): skewness 2/sqrt(2) ~ 1.41 in the population


def test_one_dim_gradient_matches_sympy(problem):
    beta, yy = sp.symbols("beta y", real=True)
    d_loss = sp.diff(sp.Rational(1, 2) * (beta - yy) ** 2, beta)
    g_sym = np.mean([float(d_loss.subs({beta: 1.7, yy: float(v)})) for v in problem.y])
    assert problem.g(1.7) == pytest.approx(g_sym, rel=1e-12)
    # the training loss is the mean of the per-example losses
    assert problem.loss(1.7) == pytest.approx(np.mean(0.5 * (1.7 - problem.y) ** 2), rel=1e-12)


@pytest.mark.parametrize("B", [1, 5, 25])
def test_g_hat_moments_match_closed_forms(problem, B):
    rng = np.random.default_rng(0)
    gh = problem.g_hat(0.3, rng, B, size=200_000)
    se_mean = np.sqrt(problem.g_hat_var(B) / gh.size)
    assert abs(gh.mean() - problem.g(0.3)) < 4 * se_mean
    assert gh.var() == pytest.approx(problem.g_hat_var(B), rel=0.02)
    skew = ((gh - gh.mean()) ** 3).mean() / gh.var() ** 1.5
    assert skew == pytest.approx(problem.g_hat_skew(B), abs=0.05)


def test_stationary_variance_solves_the_fixed_point(problem):
    for eta in [0.01, 0.5, 1.0, 1.9]:
        V = problem.stationary_var(eta, 4)
        assert V == pytest.approx((1 - eta) ** 2 * V + eta**2 * problem.var_y / 4)
    with pytest.raises(ValueError, match="eta"):
        problem.stationary_var(2.0, 1)


def test_batch_size_is_validated(problem):
    with pytest.raises(ValueError, match="batch size B"):
        problem.g_hat(0.0, np.random.default_rng(0), 0)


def test_saddle_gradient_and_hessian_match_torch():
    def loss(z):
        return 0.5 * z[0] ** 2 + 0.25 * (z[1] ** 2 - 1) ** 2

    z = torch.tensor([0.3, -0.7], dtype=torch.float64)
    gx, gy = lk.problems.saddle_grad(0.3, -0.7)
    assert np.allclose([gx, gy], torch.func.grad(loss)(z).numpy(), atol=1e-14)
    assert lk.problems.saddle_loss(0.3, -0.7) == pytest.approx(loss(z).item())
    H = torch.func.hessian(loss)(torch.zeros(2, dtype=torch.float64))
    assert torch.linalg.eigvalsh(H).tolist() == [-1.0, 1.0]  # a saddle, not a minimum
    assert lk.problems.saddle_loss(0.0, 1.0) == 0.0 and lk.problems.saddle_loss(0, 0) == 0.25


def test_log_cosh_is_stable_and_matches_numpy():
    x = np.linspace(-5, 5, 101)
    assert np.allclose(lk.problems.log_cosh(x), np.log(np.cosh(x)), atol=1e-13)
    assert np.isfinite(lk.problems.log_cosh(1e4)) and lk.problems.log_cosh(1e4) > 0
    assert np.allclose(lk.problems.log_cosh_grad(x), np.tanh(x))


@pytest.mark.parametrize("eta", [2.5, 3.0, 4.0])
def test_two_cycle_is_a_fixed_point_of_two_steps(eta):
    x = lk.problems.two_cycle(eta)
    one = x - eta * np.tanh(x)
    assert one == pytest.approx(-x, abs=1e-12)
    assert one - eta * np.tanh(one) == pytest.approx(x, abs=1e-12)
    with pytest.raises(ValueError):
        lk.problems.two_cycle(2.0)
