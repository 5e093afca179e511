"""lecturekit.sgd: runners against exact moments, schedules against the theorem's conditions.

Three tests here are the proofs the errata page cites for the convergence-theorem slide.
"""

import numpy as np
import pytest
import sympy as sp

import lecturekit as lk


@pytest.fixture(scope="module")
def problem():
    return lk.problems.OneDim.make(n=1000, seed=0)


def rms(e):
    return np.sqrt((e**2).mean(axis=-1))


def test_constant_rate_simulation_matches_exact_moments(problem):
    rng = np.random.default_rng(1)
    beta0, eta, B, T = problem.mean_y + 5, 0.3, 4, 60
    runs = lk.sgd.run_one_dim(problem, beta0, eta, B, T, n_chains=20_000, rng=rng)
    m, v = lk.sgd.one_dim_moments(problem, beta0, eta, B, T)
    e = runs - problem.mean_y
    assert np.allclose(e.mean(axis=1), m, atol=0.02)
    assert np.allclose(e.var(axis=1)[1:], v[1:], rtol=0.05)
    assert v[-1] == pytest.approx(problem.stationary_var(eta, B), rel=1e-9)


def test_g_hat_is_the_batch_mean_of_per_example_gradients(problem):
    """Slides: g-hat and g are E_Batch and E_Train of d loss / d beta for loss = (beta - y)^2 / 2,
    so OneDim.g_hat and OneDim.g equal autograd's per-example gradients averaged."""
    import torch

    beta = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    per_example = lk.stats.per_example_grads(0.5 * (beta - torch.as_tensor(problem.y)) ** 2,
                                             [beta])[:, 0].numpy()
    assert problem.g(1.7) == pytest.approx(per_example.mean(), rel=1e-12)  # E_Train
    for B in [1, 7]:
        batch = np.random.default_rng(6).integers(0, problem.y.size, size=B)  # the same draws
        g_hat = problem.g_hat(1.7, np.random.default_rng(6), B)
        assert g_hat == pytest.approx(per_example[batch].mean(), rel=1e-12)  # E_Batch


def test_slide_update_needs_minus_equals(problem):
    """Errata: the slide prints Φ = η ∇loss; the update is Φ −= η ∇loss."""
    rng = np.random.default_rng(2)
    beta = np.full(200, problem.mean_y + 5.0)
    as_printed = beta.copy()
    for _ in range(200):
        beta = beta - 0.1 * problem.g_hat(beta, rng, 8)
        as_printed = 0.1 * problem.g_hat(as_printed, rng, 8)
    best = problem.loss(problem.mean_y)
    assert problem.loss(beta).mean() < best + 0.05
    assert problem.loss(as_printed).mean() > best + 1.0


def test_power_schedule_conditions():
    """Errata: which p give sum eta = inf and sum eta^2 < inf (sympy's p-series test)."""
    t = sp.symbols("t", positive=True, integer=True)
    for p_val, diverges, square_summable in [
        (0, True, False), (sp.Rational(1, 4), True, False), (sp.Rational(1, 2), True, False),
        (sp.Rational(3, 5), True, True), (1, True, True), (2, False, True),
    ]:
        assert (not sp.Sum(1 / t**p_val, (t, 1, sp.oo)).is_convergent()) == diverges, p_val
        assert sp.Sum(1 / t ** (2 * p_val), (t, 1, sp.oo)).is_convergent() == square_summable
    eta = lk.sgd.power_schedule(0.8, 0.5)
    assert eta(np.array([1, 4])).tolist() == [0.8, 0.4]
    with pytest.raises(ValueError):
        lk.sgd.power_schedule(0.0, 1)


def test_constant_rate_keeps_wandering(problem):
    """Errata: a rate that does not tend to 0 as t -> infinity never converges."""
    m, v = lk.sgd.one_dim_moments(problem, problem.mean_y + 10, 0.8, 1, 10_000)
    assert np.sqrt(v[-1]) == pytest.approx(np.sqrt(problem.stationary_var(0.8, 1)))
    assert np.sqrt(v[-1]) > 1.0


def test_schedules_converge_stall_or_wander(problem):
    """Errata: the three behaviours of eta_t = 0.8 / t^p, from simulation and exact moments."""
    rng = np.random.default_rng(3)
    beta0, T = problem.mean_y + 10, 4000
    final = {}
    for p in [0.0, 0.6, 1.0, 2.0]:
        eta = lk.sgd.power_schedule(0.8, p)
        e = lk.sgd.run_one_dim(problem, beta0, eta, 1, T, 2000, rng, every=T) - problem.mean_y
        m, v = lk.sgd.one_dim_moments(problem, beta0, eta, 1, T)
        assert rms(e[-1]) == pytest.approx(np.sqrt(m[-1] ** 2 + v[-1]), rel=0.1)
        final[p] = (rms(e[-1]), e[-1].mean())
    assert final[0.0][0] > 1.0  # wanders
    assert final[1.0][0] < final[0.6][0] < 0.1  # converges, 1/t fastest
    assert final[2.0][1] == pytest.approx(10 * lk.sgd.stall_factor(0.8), abs=0.1)  # stalls


def test_stall_factor_matches_eulers_product():
    assert lk.sgd.stall_factor(0.8, T=10**6) == pytest.approx(lk.sgd.stall_factor(0.8), rel=1e-5)
    x = sp.symbols("x")
    assert sp.simplify(sp.sin(sp.pi * x) / (sp.pi * x)).subs(x, sp.sqrt(0.8)).evalf() == (
        pytest.approx(lk.sgd.stall_factor(0.8)))
    with pytest.raises(ValueError):
        lk.sgd.stall_factor(0.8, p=1.5)


def test_one_over_t_is_the_running_average(problem):
    """With eta_t = 1/t, SGD on the 1-D example returns the mean of the batch targets seen."""
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    runs = lk.sgd.run_one_dim(problem, 7.0, lk.sgd.power_schedule(1.0, 1.0), 3, 50, 5, rng_a)
    means = problem.sample_batch_means(rng_b, 3, (50, 5))
    assert np.allclose(runs[1:], np.cumsum(means, axis=0) / np.arange(1, 51)[:, None])


def test_gradient_descent_reaches_the_saddle_from_its_stable_line():
    def grad(z):
        return np.stack(lk.problems.saddle_grad(z[..., 0], z[..., 1]), axis=-1)

    on_line = lk.sgd.gradient_descent(grad, [1.0, 0.0], 0.1, 300)[-1]
    off_line = lk.sgd.gradient_descent(grad, [1.0, 1e-6], 0.1, 300)[-1]
    assert np.allclose(on_line, [0, 0], atol=1e-10)
    assert np.allclose(off_line, [0, 1], atol=1e-6)


def test_fixed_step_cycles_and_schedule_converges():
    x_star = lk.problems.two_cycle(3.0)
    path = lk.sgd.gradient_descent(lk.problems.log_cosh_grad, 0.5, 3.0, 60)
    assert np.allclose(np.abs(path[-10:]), x_star, atol=1e-8)
    decaying = lk.sgd.gradient_descent(lk.problems.log_cosh_grad, 0.5,
                                       lk.sgd.power_schedule(3.0, 0.75), 60)
    assert abs(decaying[-1]) < 1e-6


def test_rates_must_be_positive(problem):
    with pytest.raises(ValueError, match="positive"):
        lk.sgd.run_one_dim(problem, 0.0, -0.1, 1, 10, 2, np.random.default_rng(0))


@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_momentum_moments_match_simulation_and_reduce_to_sgd(problem, mu):
    beta0, eta, B, T = problem.mean_y + 3, 0.1, 2, 80
    m, v = lk.sgd.momentum_moments(problem, beta0, eta, mu, B, T)
    if mu == 0.0:
        m0, v0 = lk.sgd.one_dim_moments(problem, beta0, eta, B, T)
        assert np.allclose(m, m0) and np.allclose(v, v0)
    rng = np.random.default_rng(5)
    beta = np.full(20_000, beta0)
    g_tilde = np.zeros_like(beta)
    for _ in range(T):  # the slide's EMA momentum, written out
        g_tilde = mu * g_tilde + (1 - mu) * problem.g_hat(beta, rng, B)
        beta = beta - eta * g_tilde
    e = beta - problem.mean_y
    assert e.mean() == pytest.approx(m[-1], abs=0.03)
    assert e.var() == pytest.approx(v[-1], rel=0.05)


def test_path_runs_any_torch_optimizer():
    import torch

    def loss(z):
        return lk.problems.ravine(z)

    gd = lk.sgd.path(loss, [1.0, 1.0], lambda p: torch.optim.SGD(p, lr=0.01), 3)
    by_hand = [np.array([1.0, 1.0])]
    for _ in range(3):
        x, y = by_hand[-1]
        by_hand.append(by_hand[-1] - 0.01 * np.array([x, 50 * y]))
    assert np.allclose(gd, by_hand)
    nest = lk.sgd.path(loss, [1.0, 1.0], lambda p: lk.optim.Nesterov(p, lr=0.03, mu=0.9), 300)
    assert loss(torch.tensor(nest[-1])).item() < 1e-3
    assert lk.problems.rosenbrock(np.array([1.0, 1.0])) == 0.0
