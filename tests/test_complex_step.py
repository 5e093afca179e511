"""lecturekit.complex_step: the three derivative formulas on Martins et al.'s test function
(against a 50-digit reference), the complex-safe abs and the holomorphic logsumexp."""

import mpmath
import numpy as np
import pytest
import torch

from lecturekit import complex_step as cs

EXACT = mpmath.diff(lambda x: mpmath.exp(x) / mpmath.sqrt(mpmath.sin(x) ** 3
                                                         + mpmath.cos(x) ** 3),
                    mpmath.mpf("1.5"))


def rel_err(value):
    return abs(value - float(EXACT)) / float(EXACT)


def test_reference_value_is_the_papers():
    with mpmath.workdps(50):
        assert abs(EXACT - mpmath.mpf("4.05342789389862")) < 5e-15
    assert cs.F_PRIME == pytest.approx(float(EXACT), rel=1e-15)


def test_complex_step_is_exact_to_rounding_for_every_small_step():
    hs = 10.0 ** -np.arange(8, 301)
    errors = [rel_err(cs.complex_step(cs.f, cs.X0, h)) for h in hs]
    assert max(errors) < 5e-16  # two ulps: one ulp of f' is 2.2e-16 relative


@pytest.mark.parametrize(("formula", "best_h", "best_err"), [
    (cs.forward_difference, 1e-8, 1e-8), (cs.central_difference, 1e-5, 1e-10)])
def test_finite_differences_bottom_out_where_theory_says(formula, best_h, best_err):
    hs = 10.0 ** -np.arange(1, 20, 0.25)
    errors = np.array([rel_err(formula(cs.f, cs.X0, h)) for h in hs])
    k = errors.argmin()
    assert best_h / 10 <= hs[k] <= best_h * 10
    assert best_err / 30 <= errors[k] <= best_err * 10
    assert rel_err(formula(cs.f, cs.X0, 1e-17)) == 1.0  # x + h == x: the difference is 0


def test_abs_cs_is_abs_on_reals_and_its_complex_step_is_the_sign():
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    assert np.array_equal(cs.abs_cs(x), np.abs(x))
    assert np.array_equal(cs.complex_step(cs.abs_cs, x, 1e-20), np.sign(x))
    assert np.array_equal(cs.complex_step(np.abs, x, 1e-20), np.zeros(4))  # the failure
    z = torch.tensor([-2.0 + 1e-20j, 3.0 + 1e-20j], dtype=torch.complex128)
    assert torch.equal(cs.abs_cs(z).imag / 1e-20, torch.tensor([-1.0, 1.0], dtype=torch.float64))


def test_logsumexp_matches_torch_real_complex_and_large():
    g = torch.Generator().manual_seed(0)
    z = 50 * torch.randn(4, 7, generator=g, dtype=torch.float64) + 1000
    for dim in (0, 1, -1):
        assert torch.allclose(cs.logsumexp(z, dim), torch.logsumexp(z, dim), rtol=1e-15)
    w = torch.complex(torch.randn(4, 7, generator=g, dtype=torch.float64),
                      torch.randn(4, 7, generator=g, dtype=torch.float64))
    direct = torch.log(torch.exp(w).sum(1))
    assert torch.allclose(cs.logsumexp(w, 1), direct, rtol=1e-14)
    assert torch.allclose(cs.logsumexp(w + 1000, 1), direct + 1000, rtol=1e-14)


def test_logsumexp_mask_drops_entries_without_nan_gradients():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
    out = cs.logsumexp(z, 1, mask)
    for k in range(3):
        assert torch.isclose(out[k], torch.logsumexp(z[k][mask[k]], 0), rtol=1e-15)
    (grad,) = torch.autograd.grad(out.sum(), z)
    assert torch.isfinite(grad).all() and (grad[~mask] == 0).all()
    assert torch.allclose(grad.sum(1), torch.ones(3, dtype=torch.float64))  # softmax rows
    with pytest.raises(ValueError, match="mask"):
        cs.logsumexp(z, 1, torch.zeros(3, 5, dtype=torch.bool))


def test_logsumexp_complex_step_gives_the_softmax_directional_derivative():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, generator=g, dtype=torch.float64) + 700  # exp would overflow unshifted
    v = torch.randn(6, generator=g, dtype=torch.float64)
    h = 1e-30
    derivative = cs.logsumexp(torch.complex(z, h * v), 0).imag / h
    assert torch.isclose(derivative, torch.softmax(z, 0) @ v, rtol=1e-14)


def test_slide_pytorch_note_is_the_old_variable_api():
    """Errata, slide "Hessian-Vector Products": "Φ.grad is a variable while Φ.grad.data is a
    tensor" was PyTorch <= 0.3. Since 0.4 .grad is a plain Tensor (no graph unless asked),
    Variable(t) returns a Tensor, and create_graph=True (or torch.func) gives Hv."""
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([1.0, -1.0], dtype=torch.float64)
    (w**3).sum().backward()
    assert type(w.grad) is torch.Tensor and w.grad.grad_fn is None
    assert type(w.grad.data) is torch.Tensor
    assert type(torch.autograd.Variable(w)) is torch.Tensor
    (g,) = torch.autograd.grad((w**3).sum(), w, create_graph=True)
    (Hu,) = torch.autograd.grad(g @ u, w)
    expected = 6 * w.detach() * u  # H = diag(6 w)
    assert torch.equal(Hu, expected)
    _, Hu_func = torch.func.jvp(torch.func.grad(lambda t: (t**3).sum()), (w.detach(),), (u,))
    assert torch.equal(Hu_func, expected)


def test_torch_kernels_on_complex_input_as_the_chapter_says():
    """The chapter's table: abs and vector_norm return a real modulus (complex step silently 0),
    relu, comparisons, softmax and cross_entropy raise, logsumexp and tanh run and agree."""
    x = torch.tensor([-2.0, -0.5, 0.7, 1.5], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    h = 1e-20
    z = torch.complex(x, h * v)
    assert not z.abs().is_complex() and not torch.linalg.vector_norm(z).is_complex()
    for op in (torch.relu, lambda t: t > 0, lambda t: torch.softmax(t, 0),
               lambda t: torch.nn.functional.cross_entropy(t[None], torch.tensor([1]))):
        with pytest.raises((NotImplementedError, RuntimeError)):
            op(z)
    for op in (lambda t: torch.logsumexp(t, 0), lambda t: cs.logsumexp(t, 0),
               lambda t: torch.tanh(t).sum(), lambda t: cs.abs_cs(t).sum()):
        xg = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(op(xg), xg)
        assert torch.isclose(op(z).imag / h, g @ v, rtol=1e-14, atol=0)


def test_relu_kink_conventions():
    """Exercise "Where abs_cs is not enough": at 0 the complex step of abs_cs is +1 (the
    right-hand slope) while autograd's abs has slope 0; the mask Re z > 0 matches relu'(0) = 0."""
    assert cs.complex_step(cs.abs_cs, 0.0, 1e-20) == 1.0
    x = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.grad(x.abs(), x)[0] == 0 and torch.autograd.grad(x.relu(), x)[0] == 0
    z = torch.tensor(0.0 + 1e-20j, dtype=torch.complex128)
    assert (z * (z.real > 0)).imag == 0
