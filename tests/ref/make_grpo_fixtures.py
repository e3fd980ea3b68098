#!/usr/bin/python3
"""make_grpo_fixtures.py - the GRPO loss and its gradient for two model fixtures, from the
independent float64 PyTorch decoder of make_model_fixtures.py (SPEC §2, DeepSeekMath GRPO).

For llama_mha_f32 and qwen2_gqa_f32 it writes into tests/fixtures/models/<name>/:

  grpo_case.json            the case: G = 4 sequences of T = 16 tokens (a shared prompt of P = 5
                            tokens, completions of 11, 7, 4 and 9 tokens, zero padding after),
                            mask[i][t] = 1 for completion tokens, the live per-token log-probs
                            logp[i][t] = log p(ids[i][t] | ids[i][:t]), the sampling policy's
                            old_logp and the reference policy's ref_logp (logp plus fixed
                            perturbations, 0 where masked), rewards, advantages, beta, eps, and
                            the expected loss, mean k3 and clipped share; under "zero_std" the
                            same with equal rewards (advantages 0: only the KL term is left)
  grpo_grads.safetensors    d loss / d parameter (float32, Hugging Face names)
  grpo_grads_zero_std.safetensors

The loss, exactly as common/grpo.h defines it:
  A_i = (r_i - mean r) / std r (std with n - 1; all 0 when std == 0)
  l = -min(rho A, clamp(rho, 1 - eps, 1 + eps) A) + beta (exp(ref - logp) - (ref - logp) - 1),
      rho = exp(logp - old)
  loss = (1/G) sum_i (1/L_i) sum_{t in completion i} l[i][t]
The perturbations keep every ratio at least 0.02 away from the clip edges (asserted), so float32
rounding in the engine cannot flip a token between clipped and not; the script also asserts that,
for positive and for negative advantages, some ratios lie above 1 + eps, some below 1 - eps and
some inside, and that autograd agrees within 1e-7 with central finite differences of the float64
loss on the largest and on one seeded-random entry of every tensor.

Run with Debian's PyTorch:  /usr/bin/python3 tests/ref/make_grpo_fixtures.py
Deterministic: a rerun gives byte-identical files.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures as mf  # noqa: E402

FIXTURES = ["llama_mha_f32", "qwen2_gqa_f32"]
G, T, P = 4, 16, 5
LENS = [11, 7, 4, 9]
BETA, EPS = 0.04, 0.2


def make_ids(vocab):
    """A shared prompt and four different completions from a fixed linear congruential stream."""
    x = 12345
    def nxt():
        nonlocal x
        x = (x * 1103515245 + 12345) % (1 << 31)
        return x % vocab
    prompt = [nxt() for _ in range(P)]
    ids = []
    for i in range(G):
        comp = [nxt() for _ in range(LENS[i])]
        seq = prompt + comp
        ids.append(seq + [0] * (T - len(seq)))
    return ids


def advantages(r):
    n = len(r)
    mean = sum(r) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))
    return [(x - mean) / sd if sd > 1e-12 else 0.0 for x in r]


def live_logp(f, w, ids):
    """logp[i][t] for t >= 1 (position 0 has no prediction), as a (G, T) tensor with zeros at t = 0."""
    rows = []
    for s in ids:
        lp = torch.log_softmax(mf.reference_logits(f, w, s), dim=-1)       # (T, V)
        got = lp[:-1].gather(1, torch.tensor(s[1:])[:, None])[:, 0]         # predicts tokens 1..T-1
        rows.append(torch.cat([torch.zeros(1, dtype=got.dtype), got]))
    return torch.stack(rows)


def loss_of(logp, mask, old, ref, adv):
    rho = torch.exp(logp - old)
    a = torch.tensor(adv, dtype=torch.float64)[:, None]
    unclipped = rho * a
    clipped = torch.clamp(rho, 1 - EPS, 1 + EPS) * a
    surr = -torch.minimum(unclipped, clipped)
    k3 = torch.exp(ref - logp) - (ref - logp) - 1
    per_tok = (surr + BETA * k3) * mask
    per_seq = per_tok.sum(1) / mask.sum(1)
    return per_seq.mean(), k3, (clipped < unclipped) & (mask > 0)


def one_case(f, stored, ids, mask, rewards, perturb):
    w = {k: v.to(torch.float64).requires_grad_(True) for k, v in stored.items()}
    logp = live_logp(f, w, ids)
    base = logp.detach()
    old = (base + perturb[0]) * mask
    ref = (base + perturb[1]) * mask
    adv = advantages(rewards)
    loss, k3, clip = loss_of(logp, mask, old, ref, adv)
    loss.backward()
    grads = {k: v.grad.to(torch.float32) for k, v in w.items()}
    # central finite differences of the float64 loss, for every tensor: its largest gradient entry
    # and one entry drawn by a seeded generator (so that small entries are checked too)
    gen = torch.Generator().manual_seed(2402)
    h = 1e-6
    fd_err = 0.0
    for name in sorted(w):
        g = w[name].grad.reshape(-1)
        picks = [int(g.abs().argmax()), int(torch.randint(g.numel(), (1,), generator=gen))]
        for j in picks:
            vals = []
            for sgn in (1, -1):
                w2 = {k: v.detach().clone() for k, v in w.items()}
                w2[name].reshape(-1)[j] += sgn * h
                l2, _, _ = loss_of(live_logp(f, w2, ids), mask, old, ref, adv)
                vals.append(float(l2))
            fd = (vals[0] - vals[1]) / (2 * h)
            err = abs(fd - float(g[j]))
            fd_err = max(fd_err, err)
            assert err <= 1e-7 * max(1.0, abs(float(g[j]))), ("finite differences disagree", name, j, fd, float(g[j]))
    n_tok = float(mask.sum())
    case = {
        "input_ids": ids,
        "mask": [[int(m) for m in row] for row in mask.tolist()],
        "logp": [[float(x) if m else 0.0 for x, m in zip(lr, mr)] for lr, mr in zip(base.tolist(), mask.tolist())],
        "old_logp": old.tolist(),
        "ref_logp": ref.tolist(),
        "rewards": rewards,
        "advantages": adv,
        "beta": BETA,
        "eps": EPS,
        "loss": float(loss),
        "kl_mean": float((k3 * mask).sum()) / n_tok,
        "clip_frac": float(clip.sum()) / n_tok,
    }
    rho = torch.exp(base - old)
    for i in range(G):
        for t in range(T):
            if mask[i][t]:
                r = float(rho[i][t])
                assert abs(r - (1 - EPS)) > 0.02 and abs(r - (1 + EPS)) > 0.02, ("ratio near a clip edge", i, t, r)
    # json writes each float64 as its shortest round-trip repr: the file holds exactly the inputs
    # the expected numbers were computed from
    assert torch.equal(torch.tensor(case["old_logp"], dtype=torch.float64), old)
    assert torch.equal(torch.tensor(case["ref_logp"], dtype=torch.float64), ref)
    return case, grads, clip, adv, fd_err


def run(f, root):
    d = os.path.join(root, f["name"])
    files = json.load(open(os.path.join(d, "meta.json")))["weight_files"]
    stored = {}
    for fname in files:
        with open(os.path.join(d, fname), "rb") as fh:
            stored.update(mf.st_decode(fh.read(), fname))
    vocab = stored["model.embed_tokens.weight"].shape[0]
    ids = make_ids(vocab)
    mask = torch.zeros(G, T, dtype=torch.float64)
    for i in range(G):
        mask[i, P:P + LENS[i]] = 1
    k = torch.arange(G * T, dtype=torch.float64).reshape(G, T)
    # old - logp spans about +-0.5 (ratios 0.6..1.65), ref - logp about +-0.3
    d_old = 0.5 * torch.sin(1.7 * k + 0.3)
    d_ref = 0.3 * torch.cos(0.9 * k + 1.1)
    d_old = torch.where((torch.exp(-d_old) - 0.8).abs() < 0.025, d_old + 0.06, d_old)
    d_old = torch.where((torch.exp(-d_old) - 1.2).abs() < 0.025, d_old + 0.06, d_old)
    case, grads, clip, adv, fd_err = one_case(f, stored, ids, mask, [1.0, 0.0, 0.5, 0.0], (d_old, d_ref))
    # coverage, for A > 0 and for A < 0 separately: completion tokens with the ratio above 1 + eps,
    # below 1 - eps and inside, and tokens where the min picks the clamped term (zero surrogate
    # gradient: rho > 1 + eps when A > 0, rho < 1 - eps when A < 0)
    rho = torch.exp(-d_old)
    for sign in (1, -1):
        toks = [(i, t) for i in range(G) if adv[i] * sign > 0 for t in range(T) if mask[i][t] > 0]
        hi = sum(1 for i, t in toks if float(rho[i][t]) > 1 + EPS)
        lo = sum(1 for i, t in toks if float(rho[i][t]) < 1 - EPS)
        inside = len(toks) - hi - lo
        zero_grad = sum(1 for i, t in toks if bool(clip[i][t]))
        assert hi > 0 and lo > 0 and inside > 0, ("ratio coverage", sign, hi, lo, inside)
        assert zero_grad == (hi if sign > 0 else lo), ("clipped tokens", sign, zero_grad, hi, lo)
    zcase, zgrads, _, _, zfd_err = one_case(f, stored, ids, mask, [0.5, 0.5, 0.5, 0.5], (d_old, d_ref))
    case["format_version"] = 1
    case["generator"] = "tests/ref/make_grpo_fixtures.py"
    case["torch_version"] = torch.__version__
    case["zero_std"] = zcase
    with open(os.path.join(d, "grpo_case.json"), "w") as fh:
        fh.write(json.dumps(case, indent=1) + "\n")
    with open(os.path.join(d, "grpo_grads.safetensors"), "wb") as fh:
        fh.write(mf.st_encode(grads, {"format": "pt"}))
    with open(os.path.join(d, "grpo_grads_zero_std.safetensors"), "wb") as fh:
        fh.write(mf.st_encode(zgrads, {"format": "pt"}))
    print(f"{f['name']:18s} loss {case['loss']:+.8f} kl {case['kl_mean']:.6f} clipped {case['clip_frac']:.3f}; "
          f"zero-std loss {zcase['loss']:+.8f}; grad absmax {max(float(g.abs().max()) for g in grads.values()):.4g} "
          f"(zero-std {max(float(g.abs().max()) for g in zgrads.values()):.4g}); "
          f"finite-difference error {max(fd_err, zfd_err):.2g}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "fixtures", "models")
    torch.set_num_threads(2)
    by_name = {f["name"]: f for f in mf.FIXTURES}
    for n in FIXTURES:
        run(by_name[n], root)


if __name__ == "__main__":
    main()
