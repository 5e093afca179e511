"""lecturekit.mcmc against exact answers: closed forms, scipy, the recursions themselves."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

import lecturekit.mcmc as mc


def _spd(D, seed):
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    return Q @ np.diag(rng.uniform(0.5, 3.0, D)) @ Q.T


def test_sgld_step_is_the_welling_teh_update():
    Phi = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = mc.SGLD([Phi], lr=0.1, temperature=2.0, generator=torch.Generator().manual_seed(3))
    Phi.grad = torch.tensor([4.0, 1.0, -2.0], dtype=torch.float64)
    opt.step()
    xi = torch.randn(3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) \
        - 0.05 * torch.tensor([4.0, 1.0, -2.0], dtype=torch.float64) + 0.2**0.5 * xi
    torch.testing.assert_close(Phi.detach(), expected)


def test_sgld_at_zero_temperature_is_gradient_descent_with_half_the_rate():
    Phi = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ref = Phi.detach().clone().requires_grad_()
    opt, sgd = mc.SGLD([Phi], lr=0.2, temperature=0.0), torch.optim.SGD([ref], lr=0.1)
    for _ in range(5):
        for p in (Phi, ref):
            p.grad = 3 * p.detach() ** 2
        opt.step()
        sgd.step()
    torch.testing.assert_close(Phi, ref)


def test_sgld_rejects_bad_arguments():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="learning rate"):
        mc.SGLD([p], lr=0.0)
    with pytest.raises(ValueError, match="temperature"):
        mc.SGLD([p], lr=0.1, temperature=-1.0)


def test_sgld_samples_a_gaussian_with_the_predicted_covariance():
    """Full-batch SGLD on U = x A x / 2: the chains' covariance is the Lyapunov solution."""
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    eps, K, T = 0.2, 4000, 200
    X = torch.zeros(K, 2, dtype=torch.float64, requires_grad=True)
    opt = mc.SGLD([X], lr=eps, generator=torch.Generator().manual_seed(0))
    At = torch.tensor(A)
    for _ in range(T):
        X.grad = X.detach() @ At
        opt.step()
    emp = np.cov(X.detach().numpy().T)
    np.testing.assert_allclose(emp, mc.sgld_stationary_cov(A, eps), atol=0.05)


def test_stationary_cov_one_dim_closed_form():
    a, c, eta, B = 2.0, 3.0, 0.3, 4
    exact = eta * c / (B * a * (2 - eta * a))  # sum of (1 - eta a)^(2k) eta^2 c / B
    assert mc.stationary_cov([[a]], [[c]], eta, B)[0, 0] == pytest.approx(exact)
    assert mc.stationary_cov([[a]], [[c]], eta, B, exact=False)[0, 0] == pytest.approx(
        eta * c / (2 * a * B))


def test_stationary_cov_solves_both_lyapunov_equations_and_the_recursion():
    A, C = _spd(4, 0), _spd(4, 1)
    eta, B = 0.2, 8
    S = mc.stationary_cov(A, C, eta, B)
    M = np.eye(4) - eta * A
    np.testing.assert_allclose(S, M @ S @ M.T + eta**2 / B * C, atol=1e-12)
    P = np.zeros((4, 4))  # covariance recursion of Phi -= eta (A Phi + zeta), from Phi = 0
    for _ in range(2000):
        P = M @ P @ M.T + eta**2 / B * C
    np.testing.assert_allclose(S, P, atol=1e-12)
    S_ou = mc.stationary_cov(A, C, eta, B, exact=False)
    np.testing.assert_allclose(A @ S_ou + S_ou @ A, eta / B * C, atol=1e-12)
    small = mc.stationary_cov(A, C, 1e-4, B), mc.stationary_cov(A, C, 1e-4, B, exact=False)
    np.testing.assert_allclose(*small, atol=1e-3 * np.abs(small[1]).max())  # small-eta limit


def test_stationary_cov_has_no_solution_beyond_two_over_L():
    with pytest.raises(ValueError, match="no stationary"):
        mc.stationary_cov(np.diag([1.0, 4.0]), np.eye(2), eta=0.51)
    with pytest.raises(ValueError, match="batch size"):
        mc.stationary_cov(np.eye(2), np.eye(2), eta=0.1, B=0)


def test_sgld_stationary_cov_limits():
    A = _spd(3, 2)
    np.testing.assert_allclose(mc.sgld_stationary_cov(A, 1e-5), np.linalg.inv(A), rtol=1e-4)
    a, eps = 2.0, 0.5  # 1-D full batch: eps / (1 - (1 - eps a / 2)^2) = 1 / (a (1 - eps a / 4))
    assert mc.sgld_stationary_cov([[a]], eps)[0, 0] == pytest.approx(1 / (a * (1 - eps * a / 4)))


def test_mandt_rate_minimises_the_ou_kl():
    A, C = _spd(3, 3), _spd(3, 4)
    N, B = 500, 10
    post = np.linalg.inv(N * A)

    def kl(log_eta):
        S = mc.stationary_cov(A, C, np.exp(log_eta), B, exact=False)
        return mc.gaussian_kl(np.zeros(3), S, np.zeros(3), post)

    best = np.exp(minimize_scalar(kl, bounds=(-12, 0), method="bounded",
                                  options={"xatol": 1e-9}).x)
    assert best == pytest.approx(mc.mandt_rate(C, B, N), rel=1e-5)
    assert mc.mandt_rate(C, B, N) == pytest.approx(2 * B * 3 / (N * np.trace(C)))


def test_cyclic_cosine_matches_huang_et_al():
    T, M, lr0 = 100, 4, 0.2
    t = np.arange(1, T + 1)
    a = mc.cyclic_cosine(t, lr0, T, M)
    assert a[0] == lr0 and a[25] == lr0 and a[50] == lr0  # restarts at t = 1, 26, 51, 76
    assert a[24] == pytest.approx(lr0 / 2 * (np.cos(np.pi * 24 / 25) + 1))
    assert a[12] == pytest.approx(lr0 / 2 * (np.cos(np.pi * 12 / 25) + 1))
    assert np.all(np.diff(a[:25]) < 0)
    with pytest.raises(ValueError, match="1-based"):
        mc.cyclic_cosine(0, lr0, T, M)


def test_polynomial_rate_and_its_range():
    assert mc.polynomial_rate(3, 2.0, 1.0, 0.75) == pytest.approx(2.0 * 4**-0.75)
    with pytest.raises(ValueError, match="gamma"):
        mc.polynomial_rate(3, 1.0, 1.0, 0.5)


def test_gaussian_kl_and_posterior_closed_forms():
    assert mc.gaussian_kl([0.0], [[1.0]], [1.0], [[2.0]]) == pytest.approx(
        0.5 * (1 / 2 + 1 / 2 - 1 + np.log(2)))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    mean, cov = mc.linear_regression_posterior(X, y, noise_var=0.5, prior_prec=2.0)
    # the posterior mode is ridge regression with penalty noise_var * prior_prec
    ridge = np.linalg.solve(X.T @ X + 1.0 * np.eye(3), X.T @ y)
    np.testing.assert_allclose(mean, ridge)
    np.testing.assert_allclose(np.linalg.inv(cov), X.T @ X / 0.5 + 2.0 * np.eye(3))


def test_gradient_flow_is_the_limit_of_small_steps():
    """N t steps Phi -= (eta / N) g tend to the flow dPhi/dt = -eta g, error ~ 1/N."""
    from scipy.linalg import expm

    A, b, eta = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([1.0, -1.0]), 0.7
    star, phi0 = np.linalg.solve(A, b), np.array([3.0, -2.0])
    flow = star + expm(-eta * A) @ (phi0 - star)
    errors = []
    for N in [100, 400, 1600]:
        phi = phi0.copy()
        for _ in range(N):
            phi -= eta / N * (A @ phi - b)  # the corrected update: -=, not =
        errors.append(np.linalg.norm(phi - flow))
    assert errors[0] / errors[1] == pytest.approx(4, rel=0.02)
    assert errors[1] / errors[2] == pytest.approx(4, rel=0.01)


def test_gradient_flow_guarantees_progress_with_the_factor_eta():
    """l(Phi(T)) - l(Phi(0)) = -eta * integral |grad l|^2 dt along the flow (not -integral)."""
    from scipy.integrate import solve_ivp

    def loss(p):
        return 0.5 * (1 - p[0]) ** 2 + 2 * (p[1] - p[0] ** 2) ** 2

    def grad(p):
        u, v = p
        return np.array([-(1 - u) - 8 * u * (v - u**2), 4 * (v - u**2)])

    eta = 0.5
    sol = solve_ivp(lambda t, z: [*(-eta * grad(z[:2])), grad(z[:2]) @ grad(z[:2])],
                    (0, 4), [-1.0, 1.0, 0.0], method="DOP853", rtol=1e-11, atol=1e-12,
                    dense_output=True)
    drop = loss(sol.y[:2, -1]) - loss(sol.y[:2, 0])
    assert drop == pytest.approx(-eta * sol.y[2, -1], rel=1e-8)
    assert drop != pytest.approx(-sol.y[2, -1], rel=0.1)  # the slide's line without eta
    losses = [loss(sol.sol(t)[:2]) for t in np.linspace(0, 4, 50)]
    assert np.all(np.diff(losses) <= 0)  # d l / dt <= 0
