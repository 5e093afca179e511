r"""The lecture's attention-based translation model, and the task the book trains it on.

The slide ("Review of Attention") defines, for input positions t and output positions i,

.. math::

    \alpha^{i,t} = \operatorname{softmax}_t\;
        v^\top \tanh(W^a [s^i, \overset{\leftrightarrow}{h}^t]),
    \qquad c^i = \sum_t \alpha^{i,t}\, \overset{\leftrightarrow}{h}^t,

    s^{i+1} = \mathrm{RNNCELL}_\Phi(s^i, [e(y^i), c^i]), \qquad
    Q_\Phi(\cdot \mid s^{i+1}) = \operatorname{softmax}(W^y s^{i+1}),

    \mathrm{loss} = \sum_i -\log Q_\Phi(y^{i+1} \mid s^{i+1}).

The slide writes the score as ``softmax tanh(W^a [s^i, h^t])``; a softmax over t needs one
*scalar* per t, so ``W^a`` must end in a single output. The book does it as Bahdanau et al. do:
``W^a`` maps to a d_a-dimensional hidden layer and a vector ``v`` (``v_a`` below) reduces the tanh
to the scalar score. The bidirectional encoder and RNNCELL are GRUs. The slide leaves s^0
unspecified; here s^0 = tanh(W^0 h←^1), the backward encoder's summary of the whole input.

The task (:func:`make_dates`) translates dates written in six human formats into ISO 8601:
``"march 14, 2017" -> "2017-03-14"``. It needs alignment: the year, month and day sit at
different input positions in each format, so each output character must attend to the right
input characters. :func:`workload` packages model, data and loss for later chapters.

``python -m lecturekit.attention`` trains with the defaults and prints
``exact_match=<validation exact-match accuracy> seconds=<training wall time>``.
Taught in the Review of Attention chapter (attention.ipynb).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = [
    "MONTHS", "FORMATS", "PATTERNS", "parse", "Vocab", "SRC", "TGT", "make_dates", "encode_pairs",
    "AttentionModel", "Workload", "workload", "train", "exact_match", "final_val_loss",
    "holomorphic_loss",
]

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
FORMATS = {
    "d month yyyy": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "month d, yyyy": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "mon d yyyy": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    "m/d/yy": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
    "the dth of month yyyy": lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
}
_D, _M, _Y = r"(?P<day>\d{1,2})", r"(?P<month>[a-z]+|\d{1,2})", r"(?P<year>\d{4})"
PATTERNS = {  # the inverse of FORMATS: where each field sits in a source sentence
    "d month yyyy": rf"{_D} {_M} {_Y}",
    "month d, yyyy": rf"{_M} {_D}, {_Y}",
    "dd.mm.yyyy": rf"{_D}\.{_M}\.{_Y}",
    "mon d yyyy": rf"{_M} {_D} {_Y}",
    "m/d/yy": rf"{_M}/{_D}/(?P<year>\d\d)",
    "the dth of month yyyy": rf"the {_D}(?:st|nd|rd|th) of {_M} {_Y}",
}
FIRST_DAY, N_DAYS = dt.date(1950, 1, 1), 100 * 365 + 25  # 1950-01-01 .. 2049-12-31


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Vocab:
    """Characters <-> integer ids, with PAD = 0 (and BOS, EOS for the target side)."""

    def __init__(self, chars: str, specials=("<pad>",)):
        self.itos = list(specials) + sorted(set(chars))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            token = self.itos[int(i)]
            if token == "<eos>":
                break
            if not token.startswith("<"):
                out.append(token)
        return "".join(out)


SRC = Vocab("abcdefghijklmnopqrstuvwxyz0123456789 ,./")
TGT = Vocab("0123456789-", specials=("<pad>", "<bos>", "<eos>"))
PAD, BOS, EOS = 0, TGT.stoi["<bos>"], TGT.stoi["<eos>"]


def parse(src: str):
    """The format of a source sentence and the character positions of its year, month and day.

    Returns ``(format_name, {"year": range, "month": range, "day": range})``; used to check
    that attention aligns each output field with the matching source field.
    """
    for name, pattern in PATTERNS.items():
        m = re.fullmatch(pattern, src)
        if m and (name != "mon d yyyy" or len(m["month"]) == 3) and (
                name != "d month yyyy" or not m["month"].isdigit()):
            return name, {f: range(m.start(f), m.end(f)) for f in ("year", "month", "day")}
    raise ValueError(f"not a date in a known format: {src!r}")


def make_dates(n: int, seed: int, exclude: set[str] | frozenset = frozenset()):
    """n distinct (source, target) pairs: a random date in a random format, and its ISO form.

    Sources in ``exclude`` are skipped, so a validation set can be kept disjoint from training.
    """
    rng = np.random.default_rng(seed)
    names = list(FORMATS)
    pairs, seen = [], set(exclude)
    while len(pairs) < n:
        day = FIRST_DAY + dt.timedelta(days=int(rng.integers(N_DAYS)))
        src = FORMATS[names[int(rng.integers(len(names)))]](day)
        if src not in seen:
            seen.add(src)
            pairs.append((src, day.isoformat()))
    return pairs


def encode_pairs(pairs):
    """Pad sources to a (n, T) tensor and targets to (n, 1 + len + 1) = BOS y^1..y^n EOS."""
    T = max(len(s) for s, _ in pairs)
    x = torch.full((len(pairs), T), PAD, dtype=torch.long)
    y = torch.full((len(pairs), 12), PAD, dtype=torch.long)
    for k, (src, tgt) in enumerate(pairs):
        x[k, : len(src)] = torch.tensor(SRC.encode(src))
        y[k] = torch.tensor([BOS] + TGT.encode(tgt) + [EOS])
    return x, y


class AttentionModel(nn.Module):
    """Encoder, attention and decoder of the slide, one attribute per slide symbol.

    * ``e_x``: input character embedding; ``encoder``: bidirectional GRU giving h↔^t.
    * ``W_0``: s^0 = tanh(W^0 h←^1) (the slide leaves s^0 open).
    * ``W_a``, ``v_a``: the score v^T tanh(W^a [s^i, h↔^t]) (``v_a`` makes it a scalar).
    * ``e``: output embedding e(y); ``cell``: RNNCELL_Φ, a GRU cell on [e(y^i), c^i].
    * ``W_y``: Q_Φ(·|s^{i+1}) = softmax(W^y s^{i+1}).
    """

    def __init__(self, d_emb: int = 32, d_h: int = 64, d_s: int = 128, d_a: int = 64):
        super().__init__()
        self.d_s, self.d_hh = d_s, 2 * d_h
        self.e_x = nn.Embedding(len(SRC), d_emb, padding_idx=PAD)
        self.encoder = nn.GRU(d_emb, d_h, batch_first=True, bidirectional=True)
        self.W_0 = nn.Linear(d_h, d_s)
        self.W_a = nn.Linear(d_s + 2 * d_h, d_a)
        self.v_a = nn.Linear(d_a, 1, bias=False)
        self.e = nn.Embedding(len(TGT), d_emb, padding_idx=PAD)
        self.cell = nn.GRUCell(d_emb + 2 * d_h, d_s)
        self.W_y = nn.Linear(d_s, len(TGT))

    def encode(self, x):
        """h↔^t for every input position t, shape (batch, T, 2 d_h); and s^0."""
        lengths = (x != PAD).sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.e_x(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        s0 = torch.tanh(self.W_0(h_n[1]))  # h_n[1]: the backward GRU after reading x^1
        return h, s0

    def attend(self, s_i, h, Wh, mask):
        """α^{i,t} = softmax_t v^T tanh(W^a [s^i, h↔^t]) and c^i = Σ_t α^{i,t} h↔^t.

        W^a [s, h] = W^a_s s + W^a_h h; the h half, ``Wh``, is computed once per sentence.
        Padded positions get α = 0.
        """
        W_s = self.W_a.weight[:, : self.d_s]
        score = self.v_a(torch.tanh(Wh + (s_i @ W_s.T)[:, None, :])).squeeze(-1)
        alpha = torch.softmax(score.masked_fill(~mask, float("-inf")), dim=1)
        c_i = torch.einsum("bt,btd->bd", alpha, h)
        return alpha, c_i

    def forward(self, x, y_in):
        """Teacher-forced logits W^y s^{i+1} for each i, and the attention α^{i,t}.

        ``y_in`` holds y^0 = BOS, y^1, ..., y^{n-1}; returns logits (batch, n, |TGT|) and
        alphas (batch, n, T).
        """
        h, s = self.encode(x)
        mask = x != PAD
        Wh = h @ self.W_a.weight[:, self.d_s:].T + self.W_a.bias
        logits, alphas = [], []
        for i in range(y_in.shape[1]):
            alpha, c_i = self.attend(s, h, Wh, mask)
            s = self.cell(torch.cat([self.e(y_in[:, i]), c_i], dim=1), s)  # s^{i+1}
            logits.append(self.W_y(s))
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)

    def loss(self, x, y, reduction: str = "mean"):
        """loss = Σ_i −log Q_Φ(y^{i+1} | s^{i+1}) per sentence; ``"mean"`` averages over the
        batch (E_Batch), ``"none"`` returns one loss per sentence (for per-example gradients)."""
        logits, _ = self(x, y[:, :-1])
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), y[:, 1:], reduction="none")
        per_sentence = nll.sum(1)
        return per_sentence.mean() if reduction == "mean" else per_sentence

    @torch.no_grad()
    def translate(self, x, max_len: int = 11):
        """Greedy decoding: y^{i+1} = argmax Q_Φ(·|s^{i+1}). Returns ids (batch, max_len) and
        the attention (batch, max_len, T)."""
        h, s = self.encode(x)
        mask = x != PAD
        Wh = h @ self.W_a.weight[:, self.d_s:].T + self.W_a.bias
        y_i = torch.full((x.shape[0],), BOS, dtype=torch.long)
        ys, alphas = [], []
        for _ in range(max_len):
            alpha, c_i = self.attend(s, h, Wh, mask)
            s = self.cell(torch.cat([self.e(y_i), c_i], dim=1), s)
            y_i = self.W_y(s).argmax(1)
            ys.append(y_i)
            alphas.append(alpha)
        return torch.stack(ys, 1), torch.stack(alphas, 1)


def exact_match(model: AttentionModel, x, y) -> float:
    """Fraction of sentences whose greedy translation equals the target exactly."""
    model.eval()
    ids, _ = model.translate(x)
    model.train()
    return float((ids == y[:, 1:]).all(1).float().mean())


@dataclass
class Workload:
    """The running workload: a model, its training data and its loss, for later chapters.

    ``batch(B, generator)`` draws B training pairs uniformly with replacement (so ĝ is an
    unbiased estimate of g); ``loss(batch)`` is E_Batch loss at the model's current Φ;
    ``train_loss()`` is the full training loss, whose gradient is g.
    """

    model: AttentionModel
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    history: list = field(default_factory=list)

    def batch(self, B: int, generator: torch.Generator | None = None):
        if B < 1:
            raise ValueError(f"batch size B must be at least 1, got {B}")
        idx = torch.randint(len(self.x_train), (B,), generator=generator)
        return self.x_train[idx], self.y_train[idx]

    def loss(self, batch, reduction: str = "mean"):
        return self.model.loss(*batch, reduction=reduction)

    def train_loss(self, chunk: int = 2000) -> torch.Tensor:
        """E_Train loss, computed in chunks, with gradients."""
        n = len(self.x_train)
        parts = [self.model.loss(self.x_train[k:k + chunk], self.y_train[k:k + chunk],
                                 reduction="none").sum() for k in range(0, n, chunk)]
        return torch.stack(parts).sum() / n

    def exact_match(self) -> float:
        return exact_match(self.model, self.x_val, self.y_val)

    def val_loss(self) -> float:
        """The loss averaged over the validation set, at the current Φ, without gradients."""
        with torch.no_grad():
            return self.model.loss(self.x_val, self.y_val).item()


def workload(seed: int = 0, n_train: int = 10_000, n_val: int = 1000, **model_kw) -> Workload:
    """A fresh, seeded model and the seeded date task (validation disjoint from training)."""
    val = make_dates(n_val, seed=10_000 + seed)
    tr = make_dates(n_train, seed=seed, exclude={s for s, _ in val})
    torch.manual_seed(seed)
    model = AttentionModel(**model_kw)
    return Workload(model, *encode_pairs(tr), *encode_pairs(val))


def train(wl: Workload, steps: int = 600, B: int = 64, lr: float = 3e-3, seed: int = 0,
          clip: float = 1.0, log_every: int = 50, optimizer=None):
    """Adam on the workload for ``steps`` batches of size B; appends (step, loss, exact_match)
    rows to ``wl.history`` every ``log_every`` steps and returns the history."""
    gen = torch.Generator().manual_seed(seed)
    opt = optimizer or torch.optim.Adam(wl.model.parameters(), lr=lr)
    running = None
    for step in range(1, steps + 1):
        loss = wl.loss(wl.batch(B, gen))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(wl.model.parameters(), clip)
        opt.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % log_every == 0 or step == steps:
            wl.history.append((step, running, wl.exact_match()))
    return wl.history


def final_val_loss(make_optimizer, seed: int, steps: int, B: int, clip: float = 1.0,
                   n_train: int = 2000, n_val: int = 300, **model_kw) -> float:
    """The optimizer chapters' experiment: a fresh seeded workload, ``steps`` batches of size B
    with ``make_optimizer(parameters)``, then the validation loss. ``clip=float("inf")`` turns
    gradient clipping off."""
    wl = workload(seed, n_train=n_train, n_val=n_val, **model_kw)
    train(wl, steps=steps, B=B, seed=seed, clip=clip, log_every=steps,
          optimizer=make_optimizer(wl.model.parameters()))
    return wl.val_loss()


def holomorphic_loss(model: AttentionModel, batch, params=None, reduction: str = "mean"):
    r"""``holomorphic_loss(model, batch, params=None, reduction="mean") -> Tensor``.

    ``model.loss(*batch)`` written with holomorphic operations only, so that it accepts complex
    parameters and complex-step differentiation works through it (chapter "Complex-step
    differentiation"). For real parameters it equals ``model.loss`` (to rounding, ~1e-15 in
    float64). ``params`` are the parameter values to use: ``None`` (the model's own), a mapping
    name -> tensor, or a sequence in ``model.named_parameters()`` order (as ``lk.hvp.hvp``
    passes them); they may be complex, and the model itself is not changed.

    What changes from :meth:`AttentionModel.loss`, whose kernels ``softmax`` and
    ``cross_entropy`` are not implemented for complex tensors and whose ``nn.Embedding`` and
    ``pack_padded_sequence`` have no complex autograd (torch 2.x):

    * cross-entropy is ``logsumexp(z) − z_y`` and the attention softmax is
      ``exp(s − logsumexp(s))``, with :func:`lecturekit.complex_step.logsumexp`, which shifts
      by the largest real part and drops padded positions by ``where`` (no -inf, no max of a
      complex number);
    * the bidirectional GRU is written out step by step (PyTorch's gate equations and weight
      layout), without packing: a padded step leaves the state unchanged,
      h ← m h_new + (1 − m) h with m ∈ {0, 1}, and its output is 0, so the result equals the
      packed ``nn.GRU``'s; the decoder's GRU cell is written out the same way;
    * embeddings are plain indexing of the weight (the value of ``padding_idx``'s row never
      reaches the loss, as padded steps are masked out).

    The complex-step Hessian-vector product through it is tested against double backward
    through ``model.loss`` in ``tests/test_attention.py``.
    """
    names = [n for n, _ in model.named_parameters()]
    if params is None:
        P = dict(model.named_parameters())
    elif isinstance(params, dict):
        P = dict(params)
    else:
        P = dict(zip(names, params, strict=True))
    from .complex_step import logsumexp

    x, y = batch
    mask = x != PAD  # (batch, T)
    m = mask.to(P["e_x.weight"].real.dtype)[..., None]  # (batch, T, 1)

    def linear(u, name):
        out = u @ P[name + ".weight"].T
        return out + P[name + ".bias"] if name + ".bias" in P else out

    def gru_step(gi, h, suffix, prefix):  # PyTorch's GRU: gates r, z, n in this order
        gh = h @ P[f"{prefix}weight_hh{suffix}"].T + P[f"{prefix}bias_hh{suffix}"]
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h

    # encoder: h↔^t = [h→^t, h←^t], padded steps masked instead of packed
    emb = P["e_x.weight"][x]
    B, T = x.shape
    outs = []
    for suffix, steps in (("_l0", range(T)), ("_l0_reverse", range(T - 1, -1, -1))):
        gi = emb @ P[f"encoder.weight_ih{suffix}"].T + P[f"encoder.bias_ih{suffix}"]
        h = gi.new_zeros(B, gi.shape[-1] // 3)
        out = [None] * T
        for t in steps:
            h = m[:, t] * gru_step(gi[:, t], h, suffix, "encoder.") + (1 - m[:, t]) * h
            out[t] = m[:, t] * h
        outs.append(torch.stack(out, 1))
    h_enc = torch.cat(outs, -1)  # (batch, T, 2 d_h)
    s = torch.tanh(linear(h, "W_0"))  # h: the backward GRU after reading x^1

    # attention and decoder
    W_a = P["W_a.weight"]
    Wh = h_enc @ W_a[:, model.d_s:].T + P["W_a.bias"]
    W_s = W_a[:, : model.d_s]
    y_in, y_out = y[:, :-1], y[:, 1:]
    logits = []
    for i in range(y_in.shape[1]):
        score = (torch.tanh(Wh + (s @ W_s.T)[:, None, :]) @ P["v_a.weight"].T).squeeze(-1)
        alpha = torch.exp(score - logsumexp(score, 1, mask)[:, None]) * m[..., 0]
        c_i = torch.einsum("bt,btd->bd", alpha, h_enc)
        inp = torch.cat([P["e.weight"][y_in[:, i]], c_i], dim=1)
        gi = inp @ P["cell.weight_ih"].T + P["cell.bias_ih"]
        s = gru_step(gi, s, "", "cell.")
        logits.append(linear(s, "W_y"))
    z = torch.stack(logits, 1)  # (batch, n, |TGT|)
    nll = logsumexp(z, -1) - z.gather(-1, y_out[..., None]).squeeze(-1)
    per_sentence = nll.sum(1)
    return per_sentence.mean() if reduction == "mean" else per_sentence


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args(argv)
    wl = workload(args.seed)
    start = time.perf_counter()
    train(wl, steps=args.steps, B=args.batch_size, lr=args.lr, seed=args.seed,
          log_every=args.steps)
    seconds = time.perf_counter() - start
    print(f"exact_match={wl.exact_match():.4f} seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
