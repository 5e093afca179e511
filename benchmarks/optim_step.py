"""Time ``step()`` of lecturekit's optimizers against the matching ``torch.optim`` ones.

    python -m benchmarks.optim_step            # from the repository root

A stack of 25 Linear(200, 200) layers (50 parameter tensors, 1,005,000 float32 parameters) gets
a fixed random ``.grad`` on every parameter; each optimizer is warmed up, then timed as the median
over several repeats of N steps, the variants interleaved so that load from other processes falls
on all of them alike. The budget (DESIGN.md) is lecturekit ≤ 1.5x torch's default. On CPU
tensors torch's default is its single-tensor loop (foreach=False); foreach=True is shown too.
This is a report, not a test: it always exits 0.
"""

from __future__ import annotations

import statistics
import time
import traceback

import torch

from lecturekit import optim as lko

LAYERS, WIDTH = 25, 200
WARMUP, N, REPEATS = 5, 20, 7

PAIRS = [  # name, lecturekit optimizer, torch optimizer, torch keyword arguments
    ("SGD(momentum=0.9)", lambda p: lko.SGD(p, lr=1e-3, momentum=0.9),
     torch.optim.SGD, dict(lr=1e-3, momentum=0.9)),
    ("RMSprop", lambda p: lko.RMSprop(p, lr=1e-3, eps_inside_sqrt=False),
     torch.optim.RMSprop, dict(lr=1e-3)),
    ("Adam", lambda p: lko.Adam(p, lr=1e-3, bias_correction=True, eps_inside_sqrt=False),
     torch.optim.Adam, dict(lr=1e-3)),
]


def model_params(seed: int = 0) -> list[torch.Tensor]:
    """The model's parameters, each with a random float32 ``.grad``."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)])
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    return params


def ms_per_step(opt) -> float:
    start = time.perf_counter()
    for _ in range(N):
        opt.step()
    return (time.perf_counter() - start) / N * 1e3


def main() -> None:
    params = model_params()
    print(f"{len(params)} tensors, {sum(p.numel() for p in params):,} parameters (float32), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {REPEATS} x {N} steps")
    print(f"{'optimizer':<18} {'lecturekit':>10} {'torch':>9} {'foreach=F':>9} {'foreach=T':>9}"
          f" {'ratio':>6} {'vs F':>6}  (ms/step; ratio = lecturekit / torch default)")
    for name, ours, theirs, kw in PAIRS:
        opts = {
            "lecturekit": ours(model_params()),
            "torch": theirs(model_params(), **kw),
            "foreach=False": theirs(model_params(), **kw, foreach=False),
            "foreach=True": theirs(model_params(), **kw, foreach=True),
        }
        for opt in opts.values():
            for _ in range(WARMUP):
                opt.step()
        times = {label: [] for label in opts}
        for _ in range(REPEATS):
            for label, opt in opts.items():
                times[label].append(ms_per_step(opt))
        ms = {label: statistics.median(t) for label, t in times.items()}
        print(f"{name:<18} {ms['lecturekit']:>10.2f} {ms['torch']:>9.2f} "
              f"{ms['foreach=False']:>9.2f} {ms['foreach=True']:>9.2f} "
              f"{ms['lecturekit'] / ms['torch']:>6.2f} "
              f"{ms['lecturekit'] / ms['foreach=False']:>6.2f}")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a report, not a test: say what went wrong, still exit 0
        traceback.print_exc()
