"""lecturekit.digits: K networks trained as one batched network equal K separate runs."""

import pytest
import torch

import lecturekit as lk
from lecturekit import digits


@pytest.fixture(scope="module")
def data():
    return digits.load()


def test_data_is_split_and_standardised(data):
    assert data.X_train.shape == (1297, 64) and data.X_val.shape == (500, 64)
    assert set(data.y_train.tolist()) == set(range(10))
    assert torch.allclose(data.X_train.mean(0), torch.zeros(64), atol=1e-5)


def test_batched_networks_equal_separate_networks(data):
    """The batched forward pass and gradient of member k equal those of an nn.Sequential with
    member k's weights, so batching changes nothing about any one network."""
    params = digits.init(3, seed=5, dtype=torch.float64)
    X, y = data.X_train[:40].double(), data.y_train[:40]
    digits.losses(params, X, y).sum().backward()
    for k in range(3):
        net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
        net = net.double()
        with torch.no_grad():
            for layer, W, b in ((net[0], params[0], params[1]), (net[2], params[2], params[3])):
                layer.weight.copy_(W[k])
                layer.bias.copy_(b[k])
        loss = torch.nn.functional.cross_entropy(net(X), y)
        loss.backward()
        assert torch.allclose(net[0].weight.grad, params[0].grad[k], atol=1e-12)
        assert torch.allclose(net[2].bias.grad, params[3].grad[k], atol=1e-12)


def test_training_a_member_alone_or_in_a_batch_gives_the_same_network(data):
    """Member 0 of a K = 3 run (Adam, elementwise) equals a K = 1 run with the same seed."""
    def make(p):
        return lk.optim.Adam(p, lr=1e-2)

    together = digits.train(make, data, K=3, steps=30, seed=7)
    init_alone = digits.init(1, seed=7)
    assert torch.equal(init_alone[0][0], digits.init(3, seed=7)[0][0])
    # member 0 sees the first row of each (K, B) batch draw: replay with K = 1 by hand
    params = digits.init(1, seed=7)
    opt = make(params)
    gen = torch.Generator().manual_seed(10_000 + 7)
    for _ in range(30):
        idx = torch.randint(len(data.y_train), (3, 32), generator=gen)[:1]
        opt.zero_grad()
        digits.losses(params, data.X_train[idx], data.y_train[idx]).sum().backward()
        opt.step()
    assert torch.allclose(params[0][0], together["params"][0][0], atol=1e-6)


def test_adam_learns_digits(data):
    out = digits.train(lambda p: lk.optim.Adam(p, lr=1e-2), data, K=2, steps=300)
    assert (out["val_acc"] > 0.9).all(), out["val_acc"]
    with pytest.raises(ValueError):
        digits.init(0)


@pytest.mark.parametrize("name", ["SGD", "momentum", "RMSprop", "Adam"])
def test_sweep_member_is_a_separate_run_at_its_rate(data, name):
    """Member (i, j) of a sweep equals train() with K = 1, rate lrs[i] and seed seeds[j], also
    under a schedule (rate scaling of the displacement is exact up to float rounding)."""
    makers = {
        "SGD": lambda p, lr: lk.optim.SGD(p, lr=lr),
        "momentum": lambda p, lr: lk.optim.SGD(p, lr=lr, momentum=0.9),
        "RMSprop": lambda p, lr: lk.optim.RMSprop(p, lr=lr, eps_inside_sqrt=False),
        "Adam": lambda p, lr: lk.optim.Adam(p, lr=lr, bias_correction=True,
                                            eps_inside_sqrt=False),
    }
    make = makers[name]
    lrs, seeds = [3e-3, 3e-2], (4, 9)

    def schedule(t):
        return 1 - t / 40

    out = digits.sweep(make, data, lrs, seeds=seeds, steps=40, B=16, schedule=schedule)
    for i, lr in enumerate(lrs):
        for j, s in enumerate(seeds):
            alone = digits.train(lambda p, lr=lr: make(p, lr), data, K=1, steps=40, B=16,
                                 seed=s, schedule=schedule)
            assert torch.allclose(out["val_loss"][i, j], alone["val_loss"][0], rtol=1e-4)
    assert out["val_loss"].shape == (2, 2)


def test_sweep_members_do_not_interact(data):
    """A member at a rate that blows up (loss far above ln 10) leaves the others unchanged."""
    def make(p, lr):
        return lk.optim.SGD(p, lr=lr)

    both = digits.sweep(make, data, [1e-2, 1e3], seeds=(0,), steps=30)
    alone = digits.sweep(make, data, [1e-2], seeds=(0,), steps=30)
    assert both["val_loss"][1, 0] > 100
    assert torch.allclose(both["val_loss"][0], alone["val_loss"][0], rtol=1e-5)
