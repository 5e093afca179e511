"""Time one Hessian-vector product by each method of ``lecturekit.hvp``, as a ratio to one gradient.

    python -m benchmarks.hvp            # from the repository root

Two models, float32, one thread: the small MLP on digits (64-32-10 tanh, 2,410 parameters, the
1,297 training images as one batch) and the lecture's attention model
(``lecturekit.attention.workload``, default sizes, 177,390 parameters, a batch of 64). Every
timing includes the forward pass; the gradient is ``torch.autograd.grad`` of the same loss.
Each variant is warmed up, then timed as the median over 7 repeats of N calls, the variants
interleaved so that load from other processes falls on all of them alike.

The attention model's ``loss`` packs its sequences (``pack_padded_sequence`` into ``nn.GRU``):
double backward and finite differences work on it, the torch.func forms and complex step do not
(the error is printed). Those run on ``lecturekit.attention.holomorphic_loss``, the same loss
written without packing (a hand-written GRU), and are reported against the gradient of *that*
loss. The budget (DESIGN.md): double backward and forward-over-reverse <= 3x a gradient;
lecturekit's forward-over-reverse <= 1.1x calling torch.func directly. One more row,
``forward_ad dual tensors``, times forward-over-reverse done with
``torch.autograd.forward_ad`` instead of torch.func (same product; lecturekit does not use
it). Ratios, not absolute times, are the result (machines differ). This is a report, not a
test: it always exits 0.
"""

from __future__ import annotations

import statistics
import time
import traceback

import torch

import lecturekit as lk

WARMUP, REPEATS = 2, 7
CALLS = {"MLP on digits": 50, "attention model": 2}  # N calls per repeat


def mlp():
    data = lk.digits.load()
    loss_fn = lk.hvp.mlp_loss(data.X_train, data.y_train)
    params = [p.detach()[0] for p in lk.digits.init(1, (64, 32, 10), seed=0)]
    return "MLP on digits", loss_fn, loss_fn, params


def attention():
    wl = lk.attention.workload(0, n_train=2000, n_val=10)
    batch = wl.batch(64, torch.Generator().manual_seed(0))
    packed = lk.hvp.functional_loss(wl.model, lambda m: m.loss(*batch))
    params = [p.detach() for p in wl.model.parameters()]
    holo = getattr(lk.attention, "holomorphic_loss", None)
    unpacked = None if holo is None else (lambda p: holo(wl.model, batch, p))
    return "attention model", packed, unpacked, params


def gradient(loss_fn, params):
    x = [p.clone().requires_grad_(True) for p in params]
    return torch.autograd.grad(loss_fn(x), x)


def direct_forward_over_reverse(loss_fn, params, v):
    """torch.func called directly, as its documentation does it: jvp of grad."""
    def f(p):
        return loss_fn(list(p))

    return torch.func.jvp(torch.func.grad(f), (tuple(params),), (tuple(v),))[1]


def dual_forward_over_reverse(loss_fn, params, v):
    """Forward-over-reverse without torch.func: reverse-mode autograd run on forward-mode dual
    tensors (``torch.autograd.forward_ad``); the gradient's tangent is Hv. A candidate for a
    cheaper ``forward_over_reverse``, measured here only (lecturekit does not use it)."""
    import torch.autograd.forward_ad as fwAD

    x = [p.clone().requires_grad_(True) for p in params]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(a, b) for a, b in zip(x, v, strict=True)]
        g = torch.autograd.grad(loss_fn(duals), x)
        return [fwAD.unpack_dual(gi).tangent for gi in g]


def ms_per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e3


def variants(packed, unpacked, params, v):
    """label -> (callable, which gradient it is compared with), only those that run."""
    out = {"gradient": (lambda: gradient(packed, params), "gradient")}
    if unpacked is not packed and unpacked is not None:
        out["gradient (unpacked)"] = (lambda: gradient(unpacked, params), "gradient (unpacked)")
    for method in lk.hvp.METHODS:
        for loss_fn, tag in ((packed, ""), (unpacked, " (unpacked)")):
            if loss_fn is None or (tag and unpacked is packed):
                continue
            label = method + tag
            try:
                lk.hvp.hvp(loss_fn, params, v, method=method)
            except Exception as e:  # noqa: BLE001 -- report which method fails and why
                print(f"  {label}: fails: {type(e).__name__}: {str(e).splitlines()[0][:90]}")
                continue
            if tag == "" or not any(k.startswith(method) for k in out):
                out[label] = (lambda f=loss_fn, m=method: lk.hvp.hvp(f, params, v, method=m),
                              "gradient" + tag)
    fn = unpacked if "forward_over_reverse (unpacked)" in out else packed
    if "forward_over_reverse" in out or "forward_over_reverse (unpacked)" in out:
        tag = " (unpacked)" if fn is unpacked and unpacked is not packed else ""
        out["torch.func jvp(grad) direct" + tag] = (
            lambda: direct_forward_over_reverse(fn, params, v), "gradient" + tag)
        out["forward_ad dual tensors" + tag] = (
            lambda: dual_forward_over_reverse(fn, params, v), "gradient" + tag)
    return out


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, float32; "
          f"median of {REPEATS} repeats of N calls")
    for make in (mlp, attention):
        name, packed, unpacked, params = make()
        gen = torch.Generator().manual_seed(0)
        v = [torch.randn(p.shape, generator=gen) for p in params]
        print(f"\n{name}: {sum(p.numel() for p in params):,} parameters, N = {CALLS[name]}")
        runs = variants(packed, unpacked, params, v)
        for fn, _ in runs.values():
            for _ in range(WARMUP):
                fn()
        times = {label: [] for label in runs}
        for _ in range(REPEATS):
            for label, (fn, _) in runs.items():
                times[label].append(ms_per_call(fn, CALLS[name]))
        ms = {label: statistics.median(t) for label, t in times.items()}
        print(f"  {'':<40} {'ms':>8} {'x gradient':>11}")
        for label, (_, base) in runs.items():
            print(f"  {label:<40} {ms[label]:>8.2f} {ms[label] / ms[base]:>11.2f}")
        for tag in ("", " (unpacked)"):
            ours, theirs = "forward_over_reverse" + tag, "torch.func jvp(grad) direct" + tag
            if ours in ms and theirs in ms:
                print(f"  lecturekit / direct torch.func (forward-over-reverse{tag}): "
                      f"{ms[ours] / ms[theirs]:.2f}")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a report, not a test: say what went wrong, still exit 0
        traceback.print_exc()
