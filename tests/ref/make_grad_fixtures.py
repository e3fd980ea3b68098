#!/usr/bin/python3
"""make_grad_fixtures.py - expected loss, per-token log-probabilities and gradients for the model
fixtures, from the independent float64 PyTorch decoder of make_model_fixtures.py.

For each fixture named in GRAD_FIXTURES it reads tests/fixtures/models/<name>/ (config from the
script's own table, weights with the script's own safetensors reader, ids.json) and writes:

  train_case.json      the batch (input_ids and labels, 2 sequences of 16 tokens, HF convention:
                       labels aligned with input_ids, -100 = ignored, shifted inside the loss),
                       the loss (mean over the unmasked targets of the whole batch, as HF's
                       CrossEntropyLoss(ignore_index=-100) over the flattened batch), the number
                       of unmasked targets, and token_logp[b][t] = log p(input_ids[b][t+1] | ..t)
  grads.safetensors    d loss / d parameter for every parameter, float32, Hugging Face names (a
                       tied model has one embedding tensor that collects both uses)

Gradients come from torch.autograd in float64 through the same hand-written decoder that produced
the logits fixtures; nothing is shared with the C engine. Run with Debian's PyTorch:

    /usr/bin/python3 tests/ref/make_grad_fixtures.py [--only NAME ...]

Deterministic: a rerun gives byte-identical files.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures as mf  # noqa: E402

GRAD_FIXTURES = ["llama_mha_f32", "llama_gqa_tied_bias_f32", "qwen2_gqa_f32", "qwen2_tied_bf16",
                 "llama_rope_linear", "llama_head_dim"]
SEQ = 16


def make_case(ids):
    """Two overlapping sequences of the fixture ids with prompt-like and scattered masks."""
    seqs = [ids[0:SEQ], ids[8:8 + SEQ]]
    labels = [list(s) for s in seqs]
    for t in range(6):
        labels[0][t] = -100          # a "prompt" of 6 tokens
    labels[1][10] = labels[1][11] = -100
    labels[1][0] = -100              # position 0 is never a target anyway (shifted away)
    return seqs, labels


def run(f, root):
    d = os.path.join(root, f["name"])
    files = json.load(open(os.path.join(d, "meta.json")))["weight_files"]
    stored = {}
    for fname in files:
        with open(os.path.join(d, fname), "rb") as fh:
            stored.update(mf.st_decode(fh.read(), fname))
    ids = json.load(open(os.path.join(d, "ids.json")))
    seqs, labels = make_case(ids)

    w = {k: v.to(torch.float64).requires_grad_(True) for k, v in stored.items()}
    total = torch.zeros((), dtype=torch.float64)
    n_valid = 0
    token_logp = []
    for s, lab in zip(seqs, labels):
        logits = mf.reference_logits(f, w, s)                       # (T, V)
        logp = torch.log_softmax(logits, dim=-1)
        nxt = torch.tensor(s[1:])
        token_logp.append(logp[:-1].gather(1, nxt[:, None])[:, 0].detach())
        tgt = torch.tensor(lab[1:])
        keep = tgt != -100
        n_valid += int(keep.sum())
        total = total - logp[:-1][keep].gather(1, tgt[keep][:, None]).sum()
    loss = total / n_valid
    loss.backward()

    grads = {k: v.grad.to(torch.float32) for k, v in w.items()}
    with open(os.path.join(d, "grads.safetensors"), "wb") as fh:
        fh.write(mf.st_encode(grads, {"format": "pt", "loss": repr(float(loss))}))
    case = {
        "format_version": 1,
        "generator": "tests/ref/make_grad_fixtures.py",
        "torch_version": torch.__version__,
        "input_ids": seqs,
        "labels": labels,
        "loss": float(loss),
        "n_valid": n_valid,
        "token_logp": [[round(float(x), 10) for x in t] for t in token_logp],
        "grads_file": "grads.safetensors",
        "grad_absmax": float(max(g.abs().max() for g in grads.values())),
    }
    with open(os.path.join(d, "train_case.json"), "w") as fh:
        fh.write(json.dumps(case, indent=1) + "\n")
    print(f"{f['name']:26s} loss {float(loss):.6f}  n_valid {n_valid}  grad absmax {case['grad_absmax']:.4f}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(here, "..", "fixtures", "models"))
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    torch.set_num_threads(2)
    by_name = {f["name"]: f for f in mf.FIXTURES}
    for n in a.only or GRAD_FIXTURES:
        if n not in by_name:
            raise SystemExit(f"unknown fixture {n!r}")
        run(by_name[n], os.path.normpath(a.root))


if __name__ == "__main__":
    main()
