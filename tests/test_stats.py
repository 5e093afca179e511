"""lecturekit.stats against the 1-D example's closed forms and against direct computation."""

import numpy as np
import pytest
import torch

import lecturekit as lk


@pytest.fixture(scope="module")
def problem():
    return lk.problems.OneDim.make(n=1000, seed=0)


def test_per_example_grads_of_the_one_dim_example(problem):
    beta = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    y = torch.as_tensor(problem.y[:50])
    G = lk.stats.per_example_grads(0.5 * (beta - y) ** 2, [beta])
    assert G.shape == (50, 1)
    assert torch.allclose(G[:, 0], 3.0 - y)  # d/dbeta of (beta - y)^2 / 2


def test_moments_and_b_star_match_closed_forms(problem):
    y = torch.as_tensor(problem.y)
    per_example = (3.0 - y)[:, None]  # the whole training set as one batch
    g_hat, sigma_hat = lk.stats.moments(per_example)
    assert g_hat.item() == pytest.approx(problem.g(3.0))
    assert sigma_hat.item() == pytest.approx(np.sqrt(problem.var_y))
    assert lk.stats.b_star(g_hat, sigma_hat).item() == pytest.approx(
        16 * problem.var_y / problem.g(3.0) ** 2)
    assert lk.stats.b_star(torch.zeros(1), torch.ones(1)).item() == float("inf")


def test_noise_scale_recovers_sigma2_over_g2(problem):
    rng = np.random.default_rng(0)
    beta, (Bs, Bb) = 2.5, (4, 64)
    sq = {B: np.mean(problem.g_hat(beta, rng, B, size=40_000) ** 2) for B in (Bs, Bb)}
    G2, tr, B_simple = lk.stats.noise_scale(sq[Bs], sq[Bb], Bs, Bb)
    assert G2 == pytest.approx(problem.g(beta) ** 2, rel=0.05)
    assert tr == pytest.approx(problem.var_y, rel=0.05)
    assert B_simple == pytest.approx(problem.var_y / problem.g(beta) ** 2, rel=0.1)
    with pytest.raises(ValueError):
        lk.stats.noise_scale(1.0, 1.0, 8, 8)


def test_b_star_from_moments_and_flatten():
    mean = torch.tensor([2.0, 0.0, 1.0])
    mean_sq = torch.tensor([5.0, 3.0, 1.0 - 1e-9])  # sigma^2 = 1, 3, and rounding below 0
    out = lk.stats.b_star_from_moments(mean, mean_sq)
    assert out[0].item() == pytest.approx(16 * 1 / 4)
    assert out[1].item() == float("inf") and out[2].item() == 0.0
    assert torch.equal(lk.stats.b_star(mean, torch.tensor([1.0, 1.0, 0.0])), out)
    assert lk.stats.flatten([torch.ones(2, 2), torch.zeros(3)]).tolist() == [1, 1, 1, 1, 0, 0, 0]
