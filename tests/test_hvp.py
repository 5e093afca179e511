"""lecturekit.hvp against explicit Hessians from torch.func."""

import torch

import lecturekit as lk


def test_hvp_matches_the_explicit_hessian():
    torch.manual_seed(0)
    A = torch.randn(5, 5, dtype=torch.float64)
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def f(z):
        return (z @ A @ z) * torch.sin(z).sum() + (z**4).sum()

    v = torch.randn(5, dtype=torch.float64)
    H = torch.func.hessian(f)(x.detach())
    (Hv,) = lk.hvp.hvp(f(x), [x], [v])
    assert torch.allclose(Hv, H @ v, atol=1e-12)


def test_power_iteration_finds_the_largest_eigenvalue():
    torch.manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    eig = torch.tensor([5.0, 2.0, 1.0, 0.5, -1.0, 0.1], dtype=torch.float64)
    H = Q @ torch.diag(eig) @ Q.T
    x = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    lam, v = lk.hvp.power_iteration(lambda: 0.5 * x @ H @ x, [x], iters=200,
                                    generator=torch.Generator().manual_seed(0))
    assert abs(lam - 5.0) < 1e-8
    assert torch.allclose((H @ v[0]).abs(), 5.0 * v[0].abs(), atol=1e-6)


def test_hvp_through_the_attention_model():
    wl = lk.attention.workload(0, n_train=50, n_val=5, d_emb=3, d_h=2, d_s=3, d_a=2)
    wl.model.double()
    params = list(wl.model.parameters())
    batch = wl.batch(3, torch.Generator().manual_seed(0))
    v = [torch.randn_like(p) for p in params]
    Hv = lk.hvp.hvp(wl.loss(batch), params, v)
    eps = 1e-6  # central difference of the gradient along v
    def grad_at(shift):
        with torch.no_grad():
            for p, vi in zip(params, v, strict=True):
                p.add_(shift * vi)
        g = torch.autograd.grad(wl.loss(batch), params)
        with torch.no_grad():
            for p, vi in zip(params, v, strict=True):
                p.sub_(shift * vi)
        return g
    fd = [(a - b) / (2 * eps) for a, b in zip(grad_at(eps), grad_at(-eps), strict=True)]
    for h, f in zip(Hv, fd, strict=True):
        assert torch.allclose(h, f, atol=1e-5)
