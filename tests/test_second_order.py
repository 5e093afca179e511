"""lecturekit.second_order against scipy.optimize, torch.optim.LBFGS and closed forms.

Tolerances on iteration counts are stated per test: the methods share the algorithm but not the
line search (scipy uses MINPACK's dcsrch, torch its own cubic search), so counts may differ by
a few iterations while the limit point agrees to 1e-8.
"""

import math

import numpy as np
import pytest
import scipy.optimize as so
import torch

from lecturekit import second_order as so2

torch.set_num_threads(1)
X0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)


def spd(n, eigenvalues, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return Q @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ Q.T


def test_linear_cg_converges_in_at_most_n_steps():
    n = 30
    H = spd(n, torch.linspace(1, 100, n))
    b = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = so2.conjugate_gradient(H, b, tol=1e-10)
    assert r.success and r.nit <= n
    assert torch.allclose(r.x, torch.linalg.solve(H, b), atol=1e-8)
    # with k distinct eigenvalues CG needs k steps (Nocedal & Wright, Thm 5.4)
    H3 = spd(n, [1.0] * 10 + [5.0] * 10 + [20.0] * 10)
    r3 = so2.conjugate_gradient(lambda v: H3 @ v, b, tol=1e-10)
    assert r3.nit == 3


def test_wolfe_line_search_satisfies_the_strong_wolfe_conditions():
    def fun(x):
        return so2.rosenbrock(x)

    f0, g0 = so2.value_and_grad(fun, X0)
    p = -g0
    counted = so2._Counted(fun)
    a, f, d, _, ok = so2.wolfe_line_search(so2._searcher(counted, X0, p), float(f0),
                                           float(g0 @ p), 1.0, 1e-4, 0.9)
    assert ok
    assert f <= float(f0) + 1e-4 * a * float(g0 @ p)
    assert abs(d) <= 0.9 * abs(float(g0 @ p))


def test_bfgs_matches_scipy_on_rosenbrock():
    ref = so.minimize(so.rosen, X0.numpy(), jac=so.rosen_der, method="BFGS",
                      options={"gtol": 1e-8})
    r = so2.bfgs(so2.rosenbrock, X0, gtol=1e-8)
    assert r.success and ref.success
    assert np.allclose(r.x.numpy(), ref.x, atol=1e-8)
    assert float(r.jac.abs().max()) <= 1e-8
    assert abs(r.nit - ref.nit) <= 3  # scipy 1.17: 34; ours: 35
    assert r.skipped == 0
    assert r.path.shape == (r.nit + 1, 2)


def test_newton_with_backtracking_on_rosenbrock():
    ref = so.minimize(so.rosen, X0.numpy(), jac=so.rosen_der, hess=so.rosen_hess,
                      method="trust-exact", options={"gtol": 1e-8})
    r = so2.newton(so2.rosenbrock, X0, line_search=True, gtol=1e-8)
    assert r.success
    assert np.allclose(r.x.numpy(), ref.x, atol=1e-8)
    assert abs(r.nit - ref.nit) <= 5  # scipy's exact-Hessian trust region: 25; ours: 21
    # first step is the slide's ΔΦ = -H⁻¹∇ℓ with scipy's analytic Hessian and gradient
    x = X0.numpy()
    dPhi = -np.linalg.solve(so.rosen_hess(x), so.rosen_der(x))
    assert np.allclose(r.path[1], x + r.etas[0] * dPhi, atol=1e-12)


def test_damped_newton_on_a_quadratic_contracts_by_one_minus_eta():
    H = spd(4, [1.0, 3.0, 10.0, 100.0])
    x_star = torch.arange(4, dtype=torch.float64)

    def fun(x):
        return 0.5 * (x - x_star) @ H @ (x - x_star)

    x0 = torch.zeros(4, dtype=torch.float64)
    assert so2.newton(fun, x0).nit == 1
    r = so2.newton(fun, x0, eta=0.5, maxiter=5)
    errors = np.linalg.norm(r.path - x_star.numpy(), axis=1)
    assert np.allclose(errors[1:] / errors[:-1], 0.5)
    with pytest.raises(ValueError, match="eta"):
        so2.newton(fun, x0, eta=1.5)


def test_lbfgs_matches_torch_and_scipy_on_rosenbrock():
    r = so2.lbfgs(so2.rosenbrock, X0, m=10, gtol=1e-8)
    x = X0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1000, tolerance_grad=1e-8,
                            tolerance_change=0, history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f = so2.rosenbrock(x)
        f.backward()
        return f

    opt.step(closure)
    state = opt.state[x]
    ref = so.minimize(so.rosen, X0.numpy(), jac=so.rosen_der, method="L-BFGS-B",
                      options={"gtol": 1e-8, "ftol": 0, "maxcor": 10})
    assert r.success
    assert np.allclose(r.x.numpy(), x.detach().numpy(), atol=1e-8)
    assert np.allclose(r.x.numpy(), ref.x, atol=1e-8)
    # torch 2.13: 37 iterations, 46 evaluations; ours: 37, 46; scipy L-BFGS-B: 38, 46
    assert abs(r.nit - state["n_iter"]) <= 2 and abs(r.nfev - state["func_evals"]) <= 3
    assert abs(r.nit - ref.nit) <= 3


def test_five_dimensional_rosenbrock_table_of_scipys_tutorial():
    x0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])
    ref = so.minimize(so.rosen, x0, jac=so.rosen_der, method="BFGS")
    r = so2.bfgs(so2.rosenbrock, torch.tensor(x0), gtol=1e-5)
    assert abs(r.nit - ref.nit) <= 3 and abs(r.nfev - ref.nfev) <= 5  # scipy 25/30, ours 26/30
    assert r.fun < 1e-10 and ref.fun < 1e-10
    rn = so2.newton(so2.rosenbrock, torch.tensor(x0), line_search=True, gtol=1e-5)
    assert np.allclose(rn.x.numpy(), np.ones(5), atol=1e-6)


def test_nonlinear_cg_reaches_the_minimum():
    ref = so.minimize(so.rosen, X0.numpy(), jac=so.rosen_der, method="CG",
                      options={"gtol": 1e-8})
    r = so2.nonlinear_cg(so2.rosenbrock, X0, gtol=1e-8)
    assert r.success and np.allclose(r.x.numpy(), ref.x, atol=1e-8)


def test_noisy_gradients_give_skipped_pairs_and_m_stays_positive_definite():
    g = torch.Generator().manual_seed(0)

    def noisy(x):  # exact value, gradient x + noise (fresh on every call)
        noise = 3 * torch.randn(x.shape, generator=g, dtype=torch.float64)
        return 0.5 * (x @ x) + (x - x.detach()) @ noise

    x0 = torch.full((5,), 3.0, dtype=torch.float64)
    runs = [so2.bfgs(noisy, x0, maxiter=30) for _ in range(20)]
    assert sum(r.skipped for r in runs) > 0
    assert all(torch.linalg.eigvalsh(r.hess_inv).min() > 0 for r in runs)
    assert sum(so2.lbfgs(noisy, x0, maxiter=30).skipped for _ in range(20)) > 0


def test_units_bits_scale_the_gradient_step_not_the_newton_step():
    X, y = so2.breast_cancer(standardize=True)
    nats, bits = so2.logistic_loss(X, y, base=math.e), so2.logistic_loss(X, y, base=2)
    phi = torch.zeros(X.shape[1], dtype=torch.float64)
    _, g_nats = so2.value_and_grad(nats, phi)
    _, g_bits = so2.value_and_grad(bits, phi)
    assert torch.allclose(g_bits, g_nats / math.log(2), rtol=1e-14)
    newton_nats = torch.linalg.solve(so2.hessian(nats, phi), g_nats)
    newton_bits = torch.linalg.solve(so2.hessian(bits, phi), g_bits)
    assert torch.allclose(newton_bits, newton_nats, rtol=1e-10)


def test_newton_is_affine_invariant_and_gradient_descent_is_not():
    A = torch.tensor([[3.0, 1.0], [0.0, 0.5]], dtype=torch.float64)

    def fun(x):
        return so2.rosenbrock(x) / 100

    def fun_z(z):  # the same loss in coordinates z with Φ = A z
        return fun(A @ z)

    z0 = torch.linalg.solve(A, X0)
    rx = so2.newton(fun, X0, eta=0.5, maxiter=8)
    rz = so2.newton(fun_z, z0, eta=0.5, maxiter=8)
    assert np.allclose(rz.path @ A.numpy().T, rx.path, atol=1e-10)
    gx = so2.gradient_descent(fun, X0, lr=1e-3, maxiter=8)
    gz = so2.gradient_descent(fun_z, z0, lr=1e-3, maxiter=8)
    assert not np.allclose(gz.path @ A.numpy().T, gx.path, atol=1e-3)


def test_directional_derivative_is_the_limit_of_difference_quotients():
    X, y = so2.breast_cancer(standardize=True)
    fun = so2.logistic_loss(X, y, lam=0.1)
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(31, generator=g, dtype=torch.float64)
    dphi = torch.randn(31, generator=g, dtype=torch.float64)
    f0, grad = so2.value_and_grad(fun, phi)
    errors = [abs(((fun(phi + eps * dphi) - f0) / eps).item() - (grad @ dphi).item())
              for eps in (1e-2, 1e-3, 1e-4)]
    assert errors[0] < 1e-1 and 8 < errors[0] / errors[1] < 12 < errors[0] / errors[2]


def test_hessian_matches_scipy_and_the_double_backward_bilinear_form():
    x = np.array([-1.2, 1.0])
    H = so2.hessian(so2.rosenbrock, torch.tensor(x))
    assert np.allclose(H.numpy(), so.rosen_hess(x), rtol=1e-14)
    d1, d2 = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([2.0, 0.5],
                                                                           dtype=torch.float64)
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(so2.rosenbrock(xt), xt, create_graph=True)
    (Hd1,) = torch.autograd.grad(g @ d1, xt)
    assert torch.allclose(Hd1 @ d2, d1 @ H @ d2, rtol=1e-14)


def test_minibatch_lbfgs_pairs():
    X, y = so2.breast_cancer(standardize=True)

    def batch_fun(idx):
        return so2.logistic_loss(X[idx], y[idx], lam=0.1)

    x0 = torch.zeros(31, dtype=torch.float64)

    def run(pairs, B):
        return so2.minibatch_lbfgs(batch_fun, x0, len(X), B, 40, 0.3, pairs=pairs,
                                   generator=torch.Generator().manual_seed(0))

    # with the full batch both kinds of pair are the same exact gradient difference
    naive, same = run("naive", len(X)), run("same", len(X))
    assert np.allclose(naive.path, same.path, atol=1e-12)
    assert same.njev[-1] == 2 * naive.njev[-1]
    # same-batch pairs of a convex loss always have s'y > 0; different batches often do not
    assert run("same", 32).skipped == 0 and run("naive", 32).skipped > 0
    with pytest.raises(ValueError, match="pairs"):
        run("sqn", 32)


def test_sqn_pairs_are_exact_curvature_along_averaged_steps():
    """SQN (Byrd et al. 2016): with the full batch as S_H, every pair satisfies y = H(mean) s
    exactly (checked against the explicit Hessian), none is skipped on a convex loss, and the
    cost counts a Hessian-vector product on B_H examples as 2 B_H / B batch gradients."""
    X, y = so2.breast_cancer(standardize=True)

    def batch_fun(idx):
        return so2.logistic_loss(X[idx], y[idx], lam=0.1)

    x0 = torch.zeros(31, dtype=torch.float64)
    N, B, L = len(X), 32, 10
    r = so2.sqn(batch_fun, x0, N, B, 100, 0.3, L=L, B_H=N,
                generator=torch.Generator().manual_seed(0))
    assert r.skipped == 0 and r.pairs == 100 // L - 1
    assert np.isclose(r.njev[-1], 100 + (100 // L - 1) * 2 * N / B)
    full = batch_fun(torch.arange(N))
    mean = torch.as_tensor(r.path[-L:]).mean(0)
    H = so2.hessian(full, mean)
    v = torch.randn(31, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(so2._hvp(full, mean, v), H @ v, atol=1e-12)
    f_star = so2.lbfgs(full, x0).fun
    assert float(full(torch.as_tensor(r.x))) - float(f_star) < 1e-2


def test_newton_line_search_stops_on_an_ascent_direction():
    """On l = -x^2 + x^4/4 from 0.5 the Hessian is negative and the Newton step points uphill:
    the line search must say so at once rather than backtrack to nothing; min_curvature fixes
    it and reaches the minimum x = sqrt(2)."""
    def f(x):
        return (-(x**2) + x**4 / 4).sum()

    x0 = torch.tensor([0.5], dtype=torch.float64)
    r = so2.newton(f, x0, line_search=True)
    assert not r.success and "not a descent direction" in r.message and r.nfev <= 2
    fixed = so2.newton(f, x0, line_search=True, min_curvature=1e-3)
    assert fixed.success and abs(float(fixed.x[0]) - 2**0.5) < 1e-8
