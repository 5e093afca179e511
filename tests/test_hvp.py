"""lecturekit.hvp against explicit Hessians from torch.func and eigendecompositions from eigh."""

import math

import pytest
import torch

import lecturekit as lk

METHODS_TOL = {  # relative error |Hv - H v| / |H v| allowed on the small network (float64)
    "double_backward": 1e-12,
    "forward_over_reverse": 1e-12,
    "reverse_over_reverse": 1e-12,
    "finite_difference": 1e-7,
    "complex_step": 1e-14,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models: one thread is fastest, and far faster when other processes load the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


@pytest.fixture(scope="module")
def small():
    """The chapter's small network (64-12-10 tanh MLP, 910 parameters), on 100 digits to be
    quick, float64, after 50 gradient steps (at initialisation the largest-magnitude
    eigenvalue is negative), with its explicit Hessian from torch.func.hessian."""
    loss_fn, params = lk.hvp.digits_mlp(n=100, steps=50)
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]

    def flat_loss(x):
        return loss_fn([t.reshape(s) for t, s in zip(x.split(sizes), shapes, strict=True)])

    H = torch.func.hessian(flat_loss)(flat(params))
    return loss_fn, params, H


def test_the_small_network_has_under_1000_parameters(small):
    _, params, H = small
    assert sum(p.numel() for p in params) == 910 == H.shape[0]
    assert torch.allclose(H, H.T, atol=1e-13)


@pytest.mark.parametrize("method", lk.hvp.METHODS)
def test_every_method_matches_the_explicit_hessian(small, method):
    loss_fn, params, H = small
    gen = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    Hv = lk.hvp.hvp(loss_fn, params, v, method=method)
    assert [a.shape for a in Hv] == [p.shape for p in params]
    assert all(not a.requires_grad for a in Hv)
    ref = H @ flat(v)
    assert float((flat(Hv) - ref).norm() / ref.norm()) < METHODS_TOL[method]


def test_complex_step_takes_the_sign_of_the_conjugate_gradient(small):
    """torch returns conj(ℓ'(z)) for Re ℓ(z): Im grad = -Hv h, so Hv = -Im grad / h."""
    loss_fn, params, H = small
    gen = torch.Generator().manual_seed(2)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    h = 1e-30
    z = [torch.complex(p, h * vi).requires_grad_() for p, vi in zip(params, v, strict=True)]
    g = torch.autograd.grad(loss_fn(z).real, z)
    ref = H @ flat(v)
    raw = flat([gi.imag / h for gi in g])
    assert float((raw + ref).norm() / ref.norm()) < 1e-14  # the raw imaginary part is -Hv
    Hv = flat(lk.hvp.hvp(loss_fn, params, v, method="complex_step", h=h))
    assert float((Hv - ref).norm() / ref.norm()) < 1e-14
    # a scalar check of the convention: d/dz of z^2 at z = 1 + 2i is 2z, torch gives conj(2z)
    w = torch.tensor(1 + 2j, dtype=torch.complex128, requires_grad=True)
    (gw,) = torch.autograd.grad((w**2).real, w)
    assert gw == (2 * w).conj()


def test_complex_step_is_exact_at_tiny_steps_finite_differences_are_not(small):
    loss_fn, params, H = small
    gen = torch.Generator().manual_seed(3)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    ref = H @ flat(v)

    def err(method, h):
        return float((flat(lk.hvp.hvp(loss_fn, params, v, method=method, h=h)) - ref).norm()
                     / ref.norm())

    assert err("complex_step", 1e-100) < 1e-14
    assert err("finite_difference", 1e-12) > 1e-6  # cancellation
    assert err("finite_difference", 1e-2) > 1e-3  # truncation, O(h^2)


def test_bad_arguments_are_refused(small):
    loss_fn, params, _ = small
    v = [torch.ones_like(p) for p in params]
    with pytest.raises(ValueError, match="method"):
        lk.hvp.hvp(loss_fn, params, v, method="newton")
    with pytest.raises(TypeError, match="complex"):
        lk.hvp.hvp(lambda p: loss_fn(p).real, params, v, method="complex_step")
    with pytest.raises(ValueError, match="tol"):
        lk.hvp.power_iteration(loss_fn, params, tol=0)


def test_the_slide_example_matches_the_explicit_hessian():
    torch.manual_seed(0)
    A = torch.randn(5, 5, dtype=torch.float64)
    x = torch.randn(5, dtype=torch.float64)

    def f(z):
        return (z @ A @ z) * torch.sin(z).sum() + (z**4).sum()

    v = torch.randn(5, dtype=torch.float64)
    H = torch.func.hessian(f)(x)
    for method in lk.hvp.METHODS[:3]:
        (Hv,) = lk.hvp.hvp(lambda p: f(p[0]), [x], [v], method=method)
        assert torch.allclose(Hv, H @ v, atol=1e-12)


def test_power_iteration_finds_the_largest_eigenvalue():
    torch.manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    eig = torch.tensor([5.0, 2.0, 1.0, 0.5, -1.0, 0.1], dtype=torch.float64)
    H = Q @ torch.diag(eig) @ Q.T
    x = torch.zeros(6, dtype=torch.float64)
    r = lk.hvp.power_iteration(lambda p: 0.5 * p[0] @ H @ p[0], [x], tol=1e-12,
                               max_iters=500, generator=torch.Generator().manual_seed(0))
    assert r.converged and r.nit == len(r.history) < 500
    assert abs(r.eigenvalue - 5.0) < 1e-10
    assert r.residual <= 1e-6
    assert torch.allclose((H @ r.eigenvector[0]).abs(), 5.0 * r.eigenvector[0].abs(), atol=1e-6)


def test_power_iteration_on_the_small_network_against_eigh(small):
    """The stopping rule (relative change below tol and residual r below sqrt(tol)) and the
    bound it rests on: for symmetric H and unit v, |λ - λ_1| <= (r |λ|)^2 / gap, gap the
    distance from λ to the rest of the spectrum; r reported as |Hv - λv| / |λ|."""
    loss_fn, params, H = small
    evals = torch.linalg.eigvalsh(H)
    assert evals[-1] > -evals[0]  # the largest eigenvalue is also the largest in magnitude
    top, second = float(evals[-1]), float(evals[-2])
    for tol in (1e-3, 1e-6):
        r = lk.hvp.power_iteration(loss_fn, params, tol=tol,
                                   generator=torch.Generator().manual_seed(0))
        assert r.converged and r.nit == len(r.history)
        v = flat(r.eigenvector)
        assert math.isclose(float(v.norm()), 1.0, rel_tol=1e-12)
        assert math.isclose(r.eigenvalue, float(v @ H @ v), rel_tol=1e-12)
        res = float((H @ v - r.eigenvalue * v).norm()) / abs(r.eigenvalue)
        assert math.isclose(r.residual, res, rel_tol=1e-6)
        assert r.residual <= math.sqrt(tol)
        assert abs(r.history[-1] - r.history[-2]) <= tol * abs(r.eigenvalue)
        gap = r.eigenvalue - second
        # the bound is attained when v lies in the span of u_1 and u_2 (nearly so here):
        # allow for rounding in the last digits
        bound = (r.residual * r.eigenvalue) ** 2 / gap
        assert 0 <= top - r.eigenvalue <= bound * (1 + 1e-6)
        assert (top - r.eigenvalue) / top <= tol * top / (top - second)


def test_power_iteration_reports_non_convergence():
    H = torch.diag(torch.tensor([1.0, 0.999999, 0.5], dtype=torch.float64))
    r = lk.hvp.power_iteration(lambda p: 0.5 * p[0] @ H @ p[0],
                               [torch.zeros(3, dtype=torch.float64)], tol=1e-12, max_iters=5,
                               generator=torch.Generator().manual_seed(0))
    assert not r.converged and r.nit == 5 and len(r.history) == 5


def test_hvp_through_the_attention_model():
    """Double backward through the packed nn.GRU, against central differences of gradients."""
    wl = lk.attention.workload(0, n_train=50, n_val=5, d_emb=3, d_h=2, d_s=3, d_a=2)
    wl.model.double()
    params = [p.detach() for p in wl.model.parameters()]
    batch = wl.batch(3, torch.Generator().manual_seed(0))
    loss_fn = lk.hvp.functional_loss(wl.model, lambda m: m.loss(*batch))
    gen = torch.Generator().manual_seed(0)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    Hv = lk.hvp.hvp(loss_fn, params, v)
    fd = lk.hvp.hvp(loss_fn, params, v, method="finite_difference", h=1e-5)
    for a, b in zip(Hv, fd, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert float(loss_fn(params)) == wl.loss(batch).item()  # the model is unchanged


def test_explicit_hessian_helper_matches_torch_func(small):
    loss_fn, params, H = small
    assert torch.allclose(lk.hvp.hessian(loss_fn, params), H, atol=1e-13)


def test_lanczos_top_k_against_eigh(small):
    """Full reorthogonalization keeps Q orthonormal, so the top Ritz values converge to the top
    eigenvalues without spurious copies; the residual β_m|s_m| is the true |Hy - θy|."""
    loss_fn, params, H = small
    evals = torch.linalg.eigvalsh(H).flip(0)
    r = lk.hvp.lanczos(loss_fn, params, k=5, iters=40, generator=torch.Generator().manual_seed(0))
    assert r.nit == 40 and len(r.alpha) == 40 and len(r.beta) == 39
    theta = torch.tensor(r.eigenvalues, dtype=torch.float64)
    assert torch.allclose(theta, evals[:5], rtol=1e-8, atol=0)
    for theta, y, res in zip(r.eigenvalues, r.eigenvectors, r.residuals, strict=True):
        y = flat(y)
        assert math.isclose(float(y.norm()), 1.0, rel_tol=1e-10)
        assert math.isclose(float((H @ y - theta * y).norm()), res, rel_tol=1e-3, abs_tol=1e-12)
    # Q^T H Q = T: the tridiagonal matrix of the recurrence, from the Ritz pairs
    assert math.isclose(sum(r.weights), 1.0, rel_tol=1e-12)


def test_lanczos_stops_at_an_invariant_subspace():
    eig = torch.tensor([3.0, 1.0, 1.0, 1.0, -2.0], dtype=torch.float64)
    x = torch.zeros(5, dtype=torch.float64)
    r = lk.hvp.lanczos(lambda p: 0.5 * (eig * p[0] ** 2).sum(), [x], k=3, iters=5,
                       generator=torch.Generator().manual_seed(0))
    assert r.nit == 3  # three distinct eigenvalues: a Krylov space of dimension 3
    assert r.eigenvalues == pytest.approx([3.0, 1.0, -2.0], abs=1e-12)


def test_hutchinson_std_formula_matches_the_empirical_std(small):
    """sqrt(2(|H|_F^2 - sum H_ii^2)/n) against the spread of the estimate over many draws."""
    loss_fn, params, H = small
    r = lk.hvp.hutchinson(loss_fn, params, n=1500, generator=torch.Generator().manual_seed(0))
    s = torch.tensor(r.samples, dtype=torch.float64)
    per_probe = lk.hvp.hutchinson_std(H, 1)
    assert abs(float(s.std()) / per_probe - 1) < 0.05  # sampling error of a std: ~2% here
    # and it rejects the Gaussian-probe formula sqrt(2 |H|_F^2), 9% higher on this network
    gaussian = math.sqrt(2 * float((H**2).sum()))
    assert abs(float(s.std()) / gaussian - 1) > 0.05
    groups = s[:1500].reshape(100, 15).mean(1)  # 100 estimates with n = 15 probes each
    assert abs(float(groups.std()) / lk.hvp.hutchinson_std(H, 15) - 1) < 0.2
    assert abs(r.trace - float(torch.trace(H))) < 4 * lk.hvp.hutchinson_std(H, 1500)
    assert math.isclose(r.std, float(s.std()) / math.sqrt(1500), rel_tol=1e-12)
    # the samples are z^T H z for Rademacher z: exact for a diagonal H
    d = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    r = lk.hvp.hutchinson(lambda p: 0.5 * (d * p[0] ** 2).sum(),
                          [torch.zeros(3, dtype=torch.float64)], n=5)
    assert r.samples == [2.0] * 5 and r.std == 0.0


def test_slq_is_gauss_quadrature_of_the_spectral_density(small):
    """Each probe's nodes and weights integrate polynomials of degree < 2m exactly
    (v^T H^p v), and the smoothed SLQ density is close to the exact smoothed density."""
    import numpy as np

    loss_fn, params, H = small
    evals = torch.linalg.eigvalsh(H).numpy()
    r = lk.hvp.slq(loss_fn, params, iters=30, n_v=8, generator=torch.Generator().manual_seed(0))
    assert r.nodes.shape == r.weights.shape == (8, 30)
    assert np.allclose(r.weights.sum(1), 1.0, atol=1e-12)
    gen = torch.Generator().manual_seed(0)  # the same probes, rebuilt
    for k in range(8):
        v = flat(lk.hvp._rademacher(params, gen))
        v = v / v.norm()
        Hp_v = v
        for p in range(1, 21):
            Hp_v = H @ Hp_v
            quad = float((r.weights[k] * r.nodes[k] ** p).sum())
            assert math.isclose(quad, float(v @ Hp_v), rel_tol=1e-8, abs_tol=1e-14)
    grid = np.linspace(evals[0] - 0.05, evals[-1] + 0.05, 400)
    sigma = 0.02
    exact = lk.hvp.density(evals, np.full(len(evals), 1 / len(evals)), grid, sigma)
    est = lk.hvp.density(r.nodes, r.weights, grid, sigma)
    step = grid[1] - grid[0]
    assert math.isclose(est.sum() * step, 1.0, rel_tol=1e-3)
    assert np.abs(est - exact).sum() * step < 0.1  # L1 distance of two densities, at most 2


def test_hutchinson_std_formula_is_the_exact_std_over_all_rademacher_vectors():
    """Var z^T H z = 2 (|H|_F^2 - sum_i H_ii^2), exactly: enumerate all 2^5 sign vectors."""
    import itertools

    torch.manual_seed(0)
    A = torch.randn(5, 5, dtype=torch.float64)
    H = A + A.T
    Z = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=5)), dtype=torch.float64)
    q = torch.einsum("ki,ij,kj->k", Z, H, Z)
    assert math.isclose(float(q.mean()), float(torch.trace(H)), rel_tol=1e-12)
    assert math.isclose(float(q.std(unbiased=False)), lk.hvp.hutchinson_std(H), rel_tol=1e-12)
    assert math.isclose(lk.hvp.hutchinson_std(H, 4), lk.hvp.hutchinson_std(H) / 2,
                        rel_tol=1e-12)
