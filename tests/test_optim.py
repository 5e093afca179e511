"""lecturekit.optim against references: torch.optim, the slide equations written out by hand,
the slide's equivalence claims, and the Optimizer contract (groups, state_dict, None and zero
gradients, validation).

Every tensor is float64, created as such (the global default dtype is left alone), and
equivalences hold to 1e-12 after 50 steps. Gradients come from a fixed random quadratic plus
pre-drawn noise, through autograd closures, so trajectories feed back into the gradients.
"""

import copy
import math

import pytest
import torch

from lecturekit import optim as lko

F64 = torch.float64
STEPS = 50
SHAPES = [(3,), (2, 4), (5,)]  # the first two parameters form group 0, the last one group 1


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


class NoisyQuadratic:
    """ℓ_k(Φ) = Σ_i ½ Φ_iᵀ A_i Φ_i − (c_i − n_{k,i})ᵀ Φ_i at the k-th call of a closure.

    Every instance made with the same seed has the same start, A_i, c_i and noise sequence n_k,
    so two optimizers on two closures see the same gradients as functions of their own Φ.
    The loss is separable: the gradient of Φ_i depends on Φ_i only.
    """

    def __init__(self, seed=0, noise=0.1, n_calls=2 * STEPS):
        gen = torch.Generator().manual_seed(seed)

        def draw(*shape):
            return torch.randn(*shape, generator=gen, dtype=F64)

        self.start = [draw(*shape) for shape in SHAPES]
        self.A, self.c = [], []
        for shape in SHAPES:
            n = math.prod(shape)
            Q = draw(n, n)
            self.A.append(Q @ Q.T / n + 0.1 * torch.eye(n, dtype=F64))
            self.c.append(draw(*shape))
        self.noise = [[noise * draw(*shape) for shape in SHAPES] for _ in range(n_calls)]

    def params(self):
        return [x.clone().requires_grad_() for x in self.start]

    def closure(self, params, start=0):
        """A torch-style closure (zero the gradients, loss, backward, return the loss)."""
        calls = iter(self.noise[start:])

        def closure():
            noise = next(calls)
            for p in params:
                p.grad = None
            loss = sum(0.5 * p.flatten() @ A @ p.flatten() - (c - n).flatten() @ p.flatten()
                       for p, A, c, n in zip(params, self.A, self.c, noise, strict=True))
            loss.backward()
            return loss.detach()

        return closure


def groups(params, second):
    return [{"params": params[:2]}, {"params": params[2:], **second}]


def run(opt, closure, steps=STEPS):
    return [opt.step(closure) for _ in range(steps)]


def run_pair(ours, ours_kw, ours_second, theirs, theirs_kw, theirs_second):
    """Our optimizer and a reference on the same NoisyQuadratic, two groups, STEPS steps."""
    prob = NoisyQuadratic()
    a, b = prob.params(), prob.params()
    opt_a = ours(groups(a, ours_second), **ours_kw)
    opt_b = theirs(groups(b, theirs_second), **theirs_kw)
    run(opt_a, prob.closure(a))
    run(opt_b, prob.closure(b))
    return a, b, opt_a, opt_b


def assert_same_as_torch(a, b, opt_a, opt_b):
    for p, q in zip(a, b, strict=True):
        close(p, q)
        ours, theirs = opt_a.state.get(p, {}), opt_b.state.get(q, {})
        assert ours.keys() == theirs.keys()
        for key in ours:
            close(ours[key], theirs[key])


# --- torch.optim references ----------------------------------------------------------------------

SGD_CASES = [dict(momentum=m, dampening=d, nesterov=n)
             for m in (0, 0.9) for d in (0, 0.5) for n in (False, True)
             if not n or (m > 0 and d == 0)]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: "-".join(f"{v}" for v in kw.values()))
def test_sgd_matches_torch(kw):
    second = dict(lr=0.02, momentum=0.5) if kw["momentum"] else dict(lr=0.02)
    a, b, opt_a, opt_b = run_pair(lko.SGD, dict(lr=0.05, **kw), second,
                                  torch.optim.SGD, dict(lr=0.05, **kw), second)
    assert_same_as_torch(a, b, opt_a, opt_b)
    assert bool(opt_a.state) == (kw["momentum"] != 0)


@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_rmsprop_torch_form_matches_torch(eps):
    a, b, opt_a, opt_b = run_pair(
        lko.RMSprop, dict(lr=0.01, beta=0.9, eps=eps, eps_inside_sqrt=False),
        dict(lr=0.003, beta=0.99), torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, eps=eps),
        dict(lr=0.003, alpha=0.99))
    assert_same_as_torch(a, b, opt_a, opt_b)


@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_adam_torch_form_matches_torch(eps):
    second = dict(lr=0.003, betas=(0.8, 0.999))
    a, b, opt_a, opt_b = run_pair(
        lko.Adam, dict(lr=0.01, betas=(0.9, 0.99), eps=eps, bias_correction=True,
                       eps_inside_sqrt=False), second,
        torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.99), eps=eps), second)
    assert_same_as_torch(a, b, opt_a, opt_b)


# --- the slide equations, written out by hand ----------------------------------------------------


def ema_by_hand(Phi, g_hat, st, lr, mu):
    st["g_tilde"] = mu * st.get("g_tilde", 0) + (1 - mu) * g_hat
    Phi -= lr * st["g_tilde"]


def heavy_ball_by_hand(Phi, g_hat, st, lr, mu):
    st["v"] = mu * st.get("v", 0) + lr * g_hat
    Phi -= st["v"]


def rmsprop_by_hand(Phi, g_hat, st, lr, beta, eps):
    st["s"] = beta * st.get("s", 0) + (1 - beta) * g_hat**2
    Phi -= lr / torch.sqrt(st["s"] + eps) * g_hat


def adam_by_hand(Phi, g_hat, st, lr, betas, eps, bias_correction=False):
    beta1, beta2 = betas
    st["t"] = t = st.get("t", 0) + 1
    st["g_tilde"] = beta1 * st.get("g_tilde", 0) + (1 - beta1) * g_hat
    st["s"] = beta2 * st.get("s", 0) + (1 - beta2) * g_hat**2
    g_tilde, s = st["g_tilde"], st["s"]
    if bias_correction:
        g_tilde, s = g_tilde / (1 - beta1**t), s / (1 - beta2**t)
    Phi -= lr / torch.sqrt(s + eps) * g_tilde


def nesterov_lookahead_by_hand(Phi, st, lr, mu):
    return Phi - lr * mu * st.get("g_tilde", 0)


def by_hand(update, hypers, lookahead=None):
    """Φ and per-parameter state after STEPS hand-written steps; ĝ at ``lookahead`` if given."""
    prob = NoisyQuadratic()
    Phis = [x.clone() for x in prob.start]
    at = prob.params()  # where ĝ is measured
    closure = prob.closure(at)
    states = [{} for _ in Phis]
    for _ in range(STEPS):
        with torch.no_grad():
            for x, Phi, st, h in zip(at, Phis, states, hypers, strict=True):
                x.copy_(lookahead(Phi, st, **h) if lookahead else Phi)
        closure()
        with torch.no_grad():
            for x, Phi, st, h in zip(at, Phis, states, hypers, strict=True):
                update(Phi, x.grad, st, **h)
    return Phis, states


SLIDE_CASES = {  # class, group-0 hyperparameters, group-1 overrides, by hand, state names
    "EMAMomentum": (lko.EMAMomentum, dict(lr=0.1, mu=0.9), dict(lr=0.05, mu=0.5),
                    ema_by_hand, {"g_tilde": "g_tilde"}),
    "HeavyBall": (lko.HeavyBall, dict(lr=0.01, mu=0.9), dict(lr=0.02, mu=0.5),
                  heavy_ball_by_hand, {"v": "v"}),
    "Nesterov": (lko.Nesterov, dict(lr=0.1, mu=0.9), dict(lr=0.05, mu=0.5),
                 ema_by_hand, {"g_tilde": "g_tilde"}),
    "RMSprop": (lko.RMSprop, dict(lr=0.01, beta=0.9, eps=1e-3), dict(lr=0.003, beta=0.99),
                rmsprop_by_hand, {"square_avg": "s"}),
    "Adam": (lko.Adam, dict(lr=0.01, betas=(0.9, 0.99), eps=1e-3), dict(lr=0.003),
             adam_by_hand, {"exp_avg": "g_tilde", "exp_avg_sq": "s"}),
    "Adam-bias-corrected": (lko.Adam, dict(lr=0.01, betas=(0.9, 0.99), eps=1e-3,
                                           bias_correction=True), dict(lr=0.003),
                            adam_by_hand, {"exp_avg": "g_tilde", "exp_avg_sq": "s"}),
}


@pytest.mark.parametrize("case", SLIDE_CASES)
def test_slide_form_matches_equations_by_hand(case):
    cls, kw, second, update, names = SLIDE_CASES[case]
    prob = NoisyQuadratic()
    params = prob.params()
    opt = cls(groups(params, second), **kw)
    run(opt, prob.closure(params))
    lookahead = nesterov_lookahead_by_hand if cls is lko.Nesterov else None
    Phis, states = by_hand(update, [kw, kw, {**kw, **second}], lookahead)
    for p, Phi, st in zip(params, Phis, states, strict=True):
        close(p.detach(), Phi)
        for ours, slide in names.items():
            close(opt.state[p][ours], st[slide])


def test_adam_without_bias_correction_steps_differ_by_the_stated_factor():
    """For a constant ĝ and negligible ε the slide's step is (1 − β1^t)/sqrt(1 − β2^t) times
    torch's: 3.16 at t = 1, largest (6.57) at t = 12 for the default betas."""
    a, b = torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64)
    slide = lko.Adam([a], lr=0.01, eps=1e-300)
    theirs = torch.optim.Adam([b], lr=0.01, eps=1e-300)
    g_hat = torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    factors = []
    for t in range(1, 31):
        a0, b0 = a.clone(), b.clone()
        a.grad, b.grad = g_hat.clone(), g_hat.clone()
        slide.step()
        theirs.step()
        factors.append((a - a0) / (b - b0))
        close(factors[-1], torch.full((3,), (1 - 0.9**t) / math.sqrt(1 - 0.999**t), dtype=F64))
    assert round(float(factors[0][0]), 2) == 3.16
    assert max(range(30), key=lambda i: float(factors[i][0])) + 1 == 12


# --- the slide's claims and the relations to torch.optim.SGD -------------------------------------


def test_heavy_ball_with_lr_eta_one_minus_mu_is_ema_momentum():
    """The slide: l_r = η(1 − μ) gives v = η g̃ and the same Φ^t, gradients depending on Φ."""
    a, b, ema, hb = run_pair(
        lko.EMAMomentum, dict(lr=0.1, mu=0.9), dict(lr=0.05, mu=0.5),
        lko.HeavyBall, dict(lr=0.1 * (1 - 0.9), mu=0.9), dict(lr=0.05 * (1 - 0.5), mu=0.5))
    for p, q, eta in zip(a, b, [0.1, 0.1, 0.05], strict=True):
        close(p, q)
        close(hb.state[q]["v"], eta * ema.state[p]["g_tilde"])


def test_heavy_ball_is_torch_momentum_from_the_first_step():
    """torch's buffer starts at ĝ = μ·0 + ĝ, so with dampening 0 there is no first-step gap."""
    a, b, hb, sgd = run_pair(lko.HeavyBall, dict(lr=0.01, mu=0.9), dict(lr=0.02, mu=0.5),
                             torch.optim.SGD, dict(lr=0.01, momentum=0.9),
                             dict(lr=0.02, momentum=0.5))
    for p, q, l_r in zip(a, b, [0.01, 0.01, 0.02], strict=True):
        close(p, q)
        close(hb.state[p]["v"], l_r * sgd.state[q]["momentum_buffer"])


def test_a_learning_rate_change_rescales_heavy_ball_velocity_only_for_new_gradients():
    """Halving lr after 10 steps: torch rescales its whole step, HeavyBall only new ĝ's, and
    EMAMomentum (whose lr multiplies g̃) stays equal to torch with lr = η(1 − μ)."""
    mu, l_r = 0.9, 0.01
    gen = torch.Generator().manual_seed(2)
    g_hats = [torch.randn(4, generator=gen, dtype=F64) for _ in range(20)]
    hb_p, ema_p, sgd_p = (torch.zeros(4, dtype=F64) for _ in range(3))
    hb = lko.HeavyBall([hb_p], lr=l_r, mu=mu)
    ema = lko.EMAMomentum([ema_p], lr=l_r / (1 - mu), mu=mu)
    sgd = torch.optim.SGD([sgd_p], lr=l_r, momentum=mu)
    for t, g_hat in enumerate(g_hats):
        if t == 10:
            for opt in (hb, ema, sgd):
                opt.param_groups[0]["lr"] /= 2
        for p, opt in [(hb_p, hb), (ema_p, ema), (sgd_p, sgd)]:
            p.grad = g_hat.clone()
            opt.step()
        if t == 9:
            close(hb_p, sgd_p)
    close(ema_p, sgd_p)
    assert not torch.allclose(hb_p, sgd_p, rtol=1e-6, atol=1e-6)


def test_ema_momentum_is_torch_momentum_with_lr_eta_one_minus_mu():
    a, b, ema, sgd = run_pair(lko.EMAMomentum, dict(lr=0.1, mu=0.9), dict(lr=0.05, mu=0.5),
                              torch.optim.SGD, dict(lr=0.1 * (1 - 0.9), momentum=0.9),
                              dict(lr=0.05 * (1 - 0.5), momentum=0.5))
    for p, q, mu in zip(a, b, [0.9, 0.9, 0.5], strict=True):
        close(p, q)
        close(ema.state[p]["g_tilde"], (1 - mu) * sgd.state[q]["momentum_buffer"])


def test_torch_dampened_momentum_differs_from_ema_momentum_by_its_first_buffer():
    """SGD(lr=η, momentum=μ, dampening=μ) starts its buffer at ĝ⁰, not (1 − μ)ĝ⁰: for the same
    gradients its buffer is g̃^t + μ^t ĝ⁰, and its first step is 1/(1 − μ) times the slide's."""
    eta, mu = 0.1, 0.9
    gen = torch.Generator().manual_seed(1)
    g_hats = [torch.randn(4, generator=gen, dtype=F64) for _ in range(STEPS)]
    a, b = torch.zeros(4, dtype=F64), torch.zeros(4, dtype=F64)
    ema = lko.EMAMomentum([a], lr=eta, mu=mu)
    sgd = torch.optim.SGD([b], lr=eta, momentum=mu, dampening=mu)
    for t, g_hat in enumerate(g_hats, start=1):
        a.grad, b.grad = g_hat.clone(), g_hat.clone()
        ema.step()
        sgd.step()
        if t == 1:
            close(b, a / (1 - mu))
        close(sgd.state[b]["momentum_buffer"], ema.state[a]["g_tilde"] + mu**t * g_hats[0])


def test_nesterov_is_torch_nesterov_after_the_change_of_variables():
    """θ^t = Φ^t − η μ g̃^t, b^t = g̃^t / (1 − μ), lr = η(1 − μ); same loss at every step."""
    hyper = [(0.1, 0.9), (0.1, 0.9), (0.05, 0.5)]  # (η, μ) per parameter; group 1 differs
    prob = NoisyQuadratic()
    a, b = prob.params(), prob.params()
    ours = lko.Nesterov(groups(a, dict(lr=0.05, mu=0.5)), lr=0.1, mu=0.9)
    theirs = torch.optim.SGD(groups(b, dict(lr=0.05 * (1 - 0.5), momentum=0.5)),
                             lr=0.1 * (1 - 0.9), momentum=0.9, nesterov=True)
    closure_a, closure_b = prob.closure(a), prob.closure(b)
    for _ in range(STEPS):
        close(ours.step(closure_a), theirs.step(closure_b))
        for p, q, (eta, mu) in zip(a, b, hyper, strict=True):
            g_tilde = ours.state[p]["g_tilde"]
            close(q, p - eta * mu * g_tilde)
            close(theirs.state[q]["momentum_buffer"], g_tilde / (1 - mu))


def test_nesterov_needs_a_closure_and_restores_parameters():
    prob = NoisyQuadratic()
    params = prob.params()
    opt = lko.Nesterov(params, lr=0.1, mu=0.9)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
    run(opt, prob.closure(params), steps=3)
    before = [p.detach().clone() for p in params]

    def failing():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        opt.step(failing)
    for p, x in zip(params, before, strict=True):
        assert torch.equal(p, x)  # moved back from the lookahead although the closure raised

    def only_first():  # the other parameters have a g̃ but get no gradient this step
        for p in params:
            p.grad = None
        (params[0] ** 2).sum().backward()

    g_tildes = [opt.state[p]["g_tilde"].clone() for p in params]
    opt.step(only_first)
    for p, x, g_tilde in zip(params[1:], before[1:], g_tildes[1:], strict=True):
        assert torch.equal(p, x)
        assert torch.equal(opt.state[p]["g_tilde"], g_tilde)


# --- every optimizer makes progress --------------------------------------------------------------


def ill_conditioned_quadratic():
    """½ xᵀHx in 10 dimensions, eigenvalues 1 ... 1e-3 in a random basis, from x = 1."""
    gen = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(10, 10, generator=gen, dtype=F64))
    H = Q @ torch.diag(10 ** torch.linspace(0, -3, 10, dtype=F64)) @ Q.T
    x = torch.ones(10, dtype=F64)

    def closure():
        x.grad = H @ x
        return 0.5 * x @ H @ x

    return x, closure


def rosenbrock():
    """(1 − a)² + 100 (b − a²)² from (−1.5, 2), where it is 12.5; minimum 0 at (1, 1)."""
    x = torch.tensor([-1.5, 2.0], dtype=F64)

    def closure():
        a, b = x
        x.grad = torch.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
        return (1 - a) ** 2 + 100 * (b - a * a) ** 2

    return x, closure


TORCH_ADAM = dict(bias_correction=True, eps_inside_sqrt=False)
PROGRESS = {  # class, hyperparameters on the quadratic (300 steps), on Rosenbrock (1000 steps)
    "SGD": (lko.SGD, dict(lr=1.0, momentum=0.9), dict(lr=1e-3, momentum=0.9)),
    "SGD-nesterov": (lko.SGD, dict(lr=1.0, momentum=0.9, nesterov=True),
                     dict(lr=1e-3, momentum=0.9, nesterov=True)),
    "EMAMomentum": (lko.EMAMomentum, dict(lr=10.0, mu=0.9), dict(lr=1e-2, mu=0.9)),
    "HeavyBall": (lko.HeavyBall, dict(lr=1.0, mu=0.9), dict(lr=1e-3, mu=0.9)),
    "Nesterov": (lko.Nesterov, dict(lr=10.0, mu=0.9), dict(lr=1e-2, mu=0.9)),
    "RMSprop": (lko.RMSprop, dict(lr=1e-2), dict(lr=1e-2)),
    "RMSprop-torch": (lko.RMSprop, dict(lr=1e-2, eps_inside_sqrt=False),
                      dict(lr=1e-2, eps_inside_sqrt=False)),
    "Adam": (lko.Adam, dict(lr=3e-2), dict(lr=3e-2)),
    "Adam-torch": (lko.Adam, dict(lr=0.1, **TORCH_ADAM), dict(lr=0.1, **TORCH_ADAM)),
}


@pytest.mark.parametrize("case", PROGRESS)
def test_every_optimizer_lowers_the_loss(case):
    cls, quad_kw, rosen_kw = PROGRESS[case]
    for make, kw, steps, factor in [(ill_conditioned_quadratic, quad_kw, 300, 1e-2),
                                    (rosenbrock, rosen_kw, 1000, 1e-2)]:
        x, closure = make()
        opt = cls([x], **kw)
        loss0 = closure()
        run(opt, closure, steps)
        assert closure() < factor * loss0, (make.__name__, kw)


# --- the Optimizer contract ----------------------------------------------------------------------

ALL = {  # class, group-0 hyperparameters, group-1 overrides
    "SGD": (lko.SGD, dict(lr=0.05, momentum=0.9, dampening=0.5), dict(lr=0.02, momentum=0.5)),
    "SGD-nesterov": (lko.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.02)),
    "EMAMomentum": (lko.EMAMomentum, dict(lr=0.1, mu=0.9), dict(lr=0.05, mu=0.5)),
    "HeavyBall": (lko.HeavyBall, dict(lr=0.01, mu=0.9), dict(lr=0.02, mu=0.5)),
    "Nesterov": (lko.Nesterov, dict(lr=0.1, mu=0.9), dict(lr=0.05, mu=0.5)),
    "RMSprop": (lko.RMSprop, dict(lr=0.01, beta=0.9), dict(lr=0.003, eps=1e-4)),
    "RMSprop-torch": (lko.RMSprop, dict(lr=0.01, eps_inside_sqrt=False), dict(lr=0.003)),
    "Adam": (lko.Adam, dict(lr=0.01), dict(lr=0.003, betas=(0.8, 0.9))),
    "Adam-torch": (lko.Adam, dict(lr=0.01, **TORCH_ADAM), dict(lr=0.003, betas=(0.8, 0.9))),
    "Adam-bias-corrected": (lko.Adam, dict(lr=0.01, bias_correction=True), dict(lr=0.003)),
}


@pytest.mark.parametrize("case", ALL)
def test_param_groups_use_their_own_hyperparameters(case):
    """Two groups in one optimizer = one optimizer per group (the loss is separable)."""
    cls, kw, second = ALL[case]
    prob = NoisyQuadratic()
    a, b = prob.params(), prob.params()
    run(cls(groups(a, second), **kw), prob.closure(a))
    first, rest = cls(b[:2], **kw), cls(b[2:], **{**kw, **second})
    closure_first, closure_rest = prob.closure(b), prob.closure(b)
    for _ in range(STEPS):
        first.step(closure_first)
        rest.step(closure_rest)
    for p, q in zip(a, b, strict=True):
        close(p, q)


@pytest.mark.parametrize("case", ALL)
def test_state_dict_round_trip_resumes_identically(case):
    cls, kw, second = ALL[case]
    prob = NoisyQuadratic()
    a = prob.params()
    opt_a = cls(groups(a, second), **kw)
    closure_a = prob.closure(a)
    run(opt_a, closure_a, steps=5)
    saved = copy.deepcopy(opt_a.state_dict())  # as torch.save would
    b = [p.detach().clone().requires_grad_() for p in a]
    opt_b = cls(groups(b, {}), **{**kw, "lr": 123.0})  # hyperparameters come from `saved`
    opt_b.load_state_dict(saved)
    run(opt_a, closure_a, steps=10)
    run(opt_b, prob.closure(b, start=5), steps=10)
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
        assert opt_a.state[p].keys() == opt_b.state[q].keys()
        for key in opt_a.state[p]:
            assert torch.equal(opt_a.state[p][key], opt_b.state[q][key])


@pytest.mark.parametrize("case", ALL)
def test_zero_gradients_leave_parameters_unchanged_and_finite(case):
    cls, kw, second = ALL[case]
    params = NoisyQuadratic().params()
    start = [p.detach().clone() for p in params]
    opt = cls(groups(params, second), **kw)

    def zero_gradients():
        for p in params:
            p.grad = torch.zeros_like(p)

    run(opt, zero_gradients, steps=100)
    for p, x in zip(params, start, strict=True):
        assert torch.equal(p, x)
        assert all(torch.isfinite(v).all() for v in opt.state[p].values())


@pytest.mark.parametrize("case", ALL)
def test_parameters_without_a_gradient_are_skipped(case):
    cls, kw, _ = ALL[case]
    prob = NoisyQuadratic()
    params = prob.params()
    frozen = params[1].detach().clone()
    opt = cls(params, **kw)
    closure = prob.closure(params)

    def closure_without_second():
        loss = closure()
        params[1].grad = None
        return loss

    run(opt, closure_without_second, steps=5)
    assert torch.equal(params[1], frozen)
    assert not opt.state.get(params[1])
    assert not torch.equal(params[0], prob.start[0])


MU = dict(mu=0.5)
BAD = [  # class, valid required arguments, bad hyperparameters, the argument the error names
    (lko.SGD, {}, dict(lr=-0.1), "lr"),
    (lko.SGD, {}, dict(momentum=-0.5), "momentum"),
    (lko.SGD, {}, dict(nesterov=True), "nesterov"),
    (lko.SGD, {}, dict(momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    (lko.EMAMomentum, MU, dict(mu=1.0), "mu"),
    (lko.HeavyBall, MU, dict(mu=-0.1), "mu"),
    (lko.Nesterov, MU, dict(lr=float("nan")), "lr"),
    (lko.RMSprop, {}, dict(beta=1.0), "beta"),
    (lko.RMSprop, {}, dict(eps=0.0), "eps"),
    (lko.RMSprop, dict(eps_inside_sqrt=False), dict(eps=0.0), "eps"),
    (lko.Adam, {}, dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (lko.Adam, {}, dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    (lko.Adam, {}, dict(eps=-1e-8), "eps"),
]


@pytest.mark.parametrize(("cls", "valid", "bad", "name"), BAD,
                         ids=[f"{c.__name__}-{n}" for c, _, _, n in BAD])
def test_invalid_hyperparameters_raise_value_error_naming_them(cls, valid, bad, name):
    p, q = torch.zeros(2, dtype=F64), torch.zeros(2, dtype=F64)
    valid = dict(lr=0.1, **valid)
    with pytest.raises(ValueError, match=name):
        cls([p], **{**valid, **bad})
    with pytest.raises(ValueError, match=name):  # in a parameter group
        cls([{"params": [p], **bad}], **valid)
    opt = cls([p], **valid)
    with pytest.raises(ValueError, match=name):
        opt.add_param_group({"params": [q], **bad})
    assert len(opt.param_groups) == 1
    if cls is lko.SGD:  # torch rejects the same SGD settings
        with pytest.raises(ValueError):
            torch.optim.SGD([p], **{**valid, **bad})


def test_edge_hyperparameters_are_accepted():
    p = torch.zeros(2, dtype=F64)
    lko.SGD([p], lr=0.0, momentum=1.5)  # as torch: momentum >= 0 only
    lko.EMAMomentum([p], lr=0.0, mu=0.0)
    lko.Adam([p], lr=0.1, betas=(0.0, 0.0), eps=1e-300)


# --- DerivedSGD: the lecture's derived algorithm ---------------------------------------------


def _derived_by_hand(grads, B, L, w_min=1e-3, w_max=0.5):
    """The slide's equations (s-tilde corrected) with the documented guards, in plain torch."""
    Phi = torch.zeros_like(grads[0])
    g_t, s_t = torch.zeros_like(Phi), torch.zeros_like(Phi)

    def b_star(g_t, s_t):
        sigma2 = B * torch.clamp(s_t - g_t**2, min=0)  # per-example variance: B Var(g_hat)
        out = torch.full_like(g_t, float("inf"))
        nz = g_t != 0
        out[nz] = 16 * sigma2[nz] / g_t[nz] ** 2
        return torch.clamp(out, min=B)

    for t, g_hat in enumerate(grads, start=1):
        w = torch.clamp(torch.clamp(B / b_star(g_t, s_t), w_min, w_max), min=1 / t)
        g_t = (1 - w) * g_t + w * g_hat
        s_t = (1 - w) * s_t + w * g_hat**2
        Phi = Phi - B / (2 * b_star(g_t, s_t) * L) * g_hat
    return Phi, g_t, s_t


def test_derived_sgd_matches_the_slide_equations():
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(7, generator=gen, dtype=torch.float64) + 0.3 for _ in range(40)]
    grads[5][2] = 0.0
    p = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    opt = lko.DerivedSGD([p], B=4, L=2.0)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    Phi, g_t, s_t = _derived_by_hand(grads, B=4, L=2.0)
    assert torch.allclose(p.detach(), Phi, rtol=0, atol=1e-12)
    assert torch.allclose(opt.state[p]["g_tilde"], g_t, rtol=0, atol=1e-12)
    assert torch.allclose(opt.state[p]["s_tilde"], s_t, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["zero", "constant", "huge", "tiny"])
def test_derived_sgd_never_produces_nan_or_inf(kind):
    p = torch.ones(5, dtype=torch.float64, requires_grad=True)
    opt = lko.DerivedSGD([p], B=8, L=1.0)
    value = {"zero": 0.0, "constant": 1.0, "huge": 1e150, "tiny": 1e-300}[kind]
    for _ in range(50):
        p.grad = torch.full_like(p, value)
        opt.step()
    assert torch.isfinite(p).all()
    assert not torch.isnan(opt.state[p]["B_star"]).any()
    if kind == "constant":  # no noise: sigma = 0, B* = B, eta = 1/(2L) exactly
        assert torch.allclose(p.detach(), torch.full_like(p, 1 - 50 * 0.5))


def _running_b_star(B, g, sigma, per_example, steps=6_000, burn_in=2_000, chains=50, seed=0):
    """Median B* of DerivedSGD fed synthetic gradients: each example's gradient is
    g + sigma * xi per coordinate, a batch averages B of them. DerivedSGD works coordinate by
    coordinate, so ``chains`` independent copies of each coordinate run side by side; the
    median is over steps after ``burn_in`` and over chains."""
    gen = torch.Generator().manual_seed(seed)
    g, sigma = g.repeat(chains, 1), sigma.repeat(chains, 1)
    p = torch.zeros_like(g, requires_grad=True)
    opt = lko.DerivedSGD([p], B=B, L=1.0)
    history = []
    for t in range(steps):
        xi = torch.randn(B, *g.shape, generator=gen, dtype=torch.float64)
        examples = g + sigma * xi
        p.grad = examples.mean(0)
        opt.step(sq_means={p: (examples**2).mean(0)} if per_example else None)
        if t >= burn_in:  # past the start-up, where the averages span few batches
            history.append(opt.state[p]["B_star"].clone())
    return torch.stack(history).flatten(0, 1).median(dim=0).values


@pytest.mark.parametrize("B", [1, 4, 16, 64])
def test_derived_sgd_b_star_tracks_the_per_example_value(B):
    """The running B* tracks the per-example 16 sigma^2 / g^2 at every B, within 30% (the
    slide's formula gives that divided by B). With batch means only, in the regime where the
    window B*/B spans enough batches to estimate a variance (here B*/B >= 25)."""
    g = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    sigma = torch.tensor([10.0, 5.0, 4.0], dtype=torch.float64)
    target = 16 * sigma**2 / g**2  # 1600, 1600, 4096
    median = _running_b_star(B, g, sigma, per_example=False)
    assert torch.all((median / target - 1).abs() < 0.3), (B, median, target)


@pytest.mark.parametrize("B", [1, 4, 16, 64])
def test_derived_sgd_b_star_from_per_example_squares_tracks_it_when_B_nears_B_star(B):
    """Given per-example squares, B* is right even when the window is a few batches."""
    g = torch.tensor([1.0, 1.0, -0.5], dtype=torch.float64)
    sigma = torch.tensor([3.0, 5.0, 2.5], dtype=torch.float64)
    target = 16 * sigma**2 / g**2  # 144, 400, 400: B*/B down to 2.25 at B = 64
    median = _running_b_star(B, g, sigma, per_example=True)
    assert torch.all((median / target - 1).abs() < 0.3), (B, median, target)


def test_derived_sgd_lowers_a_noisy_quadratic_and_validates():
    gen = torch.Generator().manual_seed(1)
    p = torch.full((10,), 5.0, dtype=torch.float64, requires_grad=True)
    h = torch.linspace(0.1, 1.0, 10, dtype=torch.float64)
    opt = lko.DerivedSGD([p], B=1, L=1.0)
    for _ in range(500):
        p.grad = h * p.detach() + 0.5 * torch.randn(10, generator=gen, dtype=torch.float64)
        opt.step()
    assert (0.5 * h * p.detach() ** 2).sum() < 0.05 * (0.5 * h * 25).sum()
    for bad in (dict(B=0, L=1.0), dict(B=1, L=0.0), dict(B=1, L=1.0, w_min=0.6, w_max=0.5)):
        with pytest.raises(ValueError):
            lko.DerivedSGD([p], **bad)
