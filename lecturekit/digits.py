r"""A cheap real workload: small MLPs on scikit-learn's bundled digits, many trained side by side.

The attention model is the book's running workload, but a sweep over optimizers, learning rates
and seeds on it does not fit a notebook's budget. This module trains *an ensemble of independent
networks as one batched network*: every weight carries a leading axis of length K (one network
per seed, or per setting), each network draws its own minibatches, and the loss summed over
networks has, for each network's weights, exactly that network's gradient. Element-wise
optimizers (SGD, momentum, RMSProp, Adam: everything in :mod:`lecturekit.optim` but
:class:`~lecturekit.optim.DerivedSGD` with a shared B*) then update K networks in one step,
exactly as K separate runs would.

Data: the 1797 8x8 digit images that ship inside scikit-learn (no network), standardised with
the training split's statistics, split once by a seeded permutation into 1297 training and 500
validation images.

Network (per member k): :math:`z = W_2^{k} \tanh(W_1^{k} x + b_1^{k}) + b_2^{k}`, loss the mean
cross-entropy over the batch; default sizes 64-32-10 (2410 parameters).

For sweeps over learning rates, :func:`sweep` also puts every (rate, seed) pair in one batched
network: the optimizer steps once at rate 1 and each member's displacement is multiplied by its
own rate (exact for optimizers whose step is the rate times a rate-free direction).

Used in the RMSProp and Adam chapter (a fair, tuned, multi-seed comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Digits", "load", "init", "logits", "losses", "train", "sweep"]


@dataclass(frozen=True)
class Digits:
    """Standardised digits: ``X_train`` (1297, 64), ``y_train``, ``X_val`` (500, 64), ``y_val``."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor


def load(n_val: int = 500, seed: int = 0, dtype=torch.float32) -> Digits:
    """scikit-learn's bundled digits, split by a seeded permutation and standardised (pixels
    that are constant on the training split are left at 0)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    X, y = torch.tensor(X, dtype=dtype)[perm], torch.tensor(y)[perm]
    X_train, X_val = X[n_val:], X[:n_val]
    mean, std = X_train.mean(0), X_train.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return Digits((X_train - mean) / std, y[n_val:], (X_val - mean) / std, y[:n_val])


def init(K: int, sizes=(64, 32, 10), seed: int = 0, dtype=torch.float32) -> list[torch.Tensor]:
    """Weights of K networks, each initialised like ``torch.nn.Linear`` (uniform in
    ±1/√fan_in), member k from its own generator seeded ``seed + k``; leaf tensors with
    ``requires_grad``: [W1 (K, h, d), b1 (K, h), W2 (K, c, h), b2 (K, c)]."""
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    d, h, c = sizes
    members = []
    for k in range(K):
        gen = torch.Generator().manual_seed(seed + k)

        def uniform(*shape, fan_in, gen=gen):
            return (torch.rand(*shape, generator=gen, dtype=dtype) * 2 - 1) / fan_in**0.5

        members.append([uniform(h, d, fan_in=d), uniform(h, fan_in=d),
                        uniform(c, h, fan_in=h), uniform(c, fan_in=h)])
    return [torch.stack(ws).requires_grad_() for ws in zip(*members, strict=True)]


def logits(params, X):
    """Logits (K, N, c) of the K networks on inputs X, shared (N, d) or per network (K, N, d)."""
    W1, b1, W2, b2 = params
    if X.dim() == 2:
        X = X.expand(W1.shape[0], *X.shape)
    hidden = torch.tanh(torch.baddbmm(b1.unsqueeze(1), X, W1.transpose(1, 2)))
    return torch.baddbmm(b2.unsqueeze(1), hidden, W2.transpose(1, 2))


def losses(params, X, y):
    """Mean cross-entropy of each network, shape (K,); y is (N,) shared or (K, N)."""
    z = logits(params, X)
    if y.dim() == 1:
        y = y.expand(z.shape[0], -1)
    return torch.nn.functional.cross_entropy(z.transpose(1, 2), y, reduction="none").mean(1)


def train(make_optimizer, data: Digits, K: int, steps: int, B: int = 32, seed: int = 0,
          schedule=None, record_every: int = 0, sizes=(64, 32, 10)):
    """Train K networks side by side with their own minibatches (drawn with replacement).

    ``make_optimizer(params)`` returns a ``torch.optim.Optimizer``; ``schedule(t)``, if given,
    multiplies every group's initial ``lr`` at step t (0-based). Returns a dict with the final
    ``params``, ``train_loss`` and ``val_loss`` (K,), ``val_acc`` (K,), and, if
    ``record_every``, the training loss of each network every ``record_every`` steps
    (``curve``, shape (n, K)). A network whose loss becomes non-finite keeps its NaN: divergence
    is a result to report, not to hide.
    """
    params = init(K, sizes, seed=seed)
    opt = make_optimizer(params)
    base = [group["lr"] for group in opt.param_groups]
    gen = torch.Generator().manual_seed(10_000 + seed)
    n = len(data.y_train)
    curve = []
    for t in range(steps):
        if schedule is not None:
            for group, lr in zip(opt.param_groups, base, strict=True):
                group["lr"] = lr * schedule(t)
        idx = torch.randint(n, (K, B), generator=gen)
        opt.zero_grad()
        batch_losses = losses(params, data.X_train[idx], data.y_train[idx])
        batch_losses.sum().backward()  # each network's weights get that network's gradient
        opt.step()
        if record_every and t % record_every == 0:
            curve.append(batch_losses.detach())
    out = {"params": params, **_evaluate(params, data)}
    if record_every:
        out["curve"] = torch.stack(curve)
    return out


def sweep(make_optimizer, data: Digits, lrs, seeds=(0, 1, 2, 3, 4), steps: int = 1000,
          B: int = 32, schedule=None, sizes=(64, 32, 10)):
    """Train one network per (learning rate, seed) pair, all side by side as one batched network.

    Member (i, j) is the network that ``train(lambda p: make_optimizer(p, lrs[i]), data, K=1,
    steps, B, seed=seeds[j], schedule)`` trains (same initialisation, same minibatches; tested),
    up to float rounding: the optimizer runs once with rate 1, ``make_optimizer(params, 1.0)``,
    and each member's displacement is then multiplied by its own rate. That is exact for every
    optimizer whose step is the rate times a direction that does not depend on the rate:
    SGD (also with torch-style ``momentum``), RMSProp, Adam (either form), EMAMomentum; not
    HeavyBall under a schedule (its buffer holds the rate). ``schedule(t)`` multiplies every
    rate at step t (0-based).

    Returns a dict with ``lrs`` (R,), ``seeds``, and ``train_loss``, ``val_loss``, ``val_acc`` of
    shape (R, S). A rate far too large shows as a large loss (the tanh units keep it finite) or
    as NaN, which is kept: divergence is a result to report. Members never interact (tested).
    """
    lrs = torch.as_tensor(lrs, dtype=torch.float32)
    R, S = len(lrs), len(seeds)
    members = [init(1, sizes, seed=s) for s in seeds]  # member j: init(1, seed=seeds[j])
    params = [torch.cat(ws).repeat(R, *[1] * (ws[0].dim() - 1)).detach().requires_grad_()
              for ws in zip(*members, strict=True)]  # member index i * S + j
    scale = [lrs.repeat_interleave(S).view(-1, *[1] * (p.dim() - 1)) for p in params]
    opt = make_optimizer(params, 1.0)
    gens = [torch.Generator().manual_seed(10_000 + s) for s in seeds]
    n = len(data.y_train)
    for t in range(steps):
        rate = 1.0 if schedule is None else schedule(t)
        for group in opt.param_groups:
            group["lr"] = rate
        idx = torch.cat([torch.randint(n, (1, B), generator=g) for g in gens]).repeat(R, 1)
        opt.zero_grad()
        losses(params, data.X_train[idx], data.y_train[idx]).sum().backward()
        old = [p.detach().clone() for p in params]
        opt.step()
        with torch.no_grad():
            for p, p_old, s in zip(params, old, scale, strict=True):
                p.sub_(p_old).mul_(s).add_(p_old)  # displacement at rate 1, times the rate
    return {"lrs": lrs, "seeds": tuple(seeds),
            **{key: value.view(R, S) for key, value in _evaluate(params, data).items()}}


def _evaluate(params, data: Digits) -> dict:
    """Each network's final ``train_loss``, ``val_loss`` and ``val_acc``, shape (K,)."""
    with torch.no_grad():
        return {
            "train_loss": losses(params, data.X_train, data.y_train),
            "val_loss": losses(params, data.X_val, data.y_val),
            "val_acc": (logits(params, data.X_val).argmax(-1) == data.y_val).float().mean(1),
        }
