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

for the fixtures in OPTIM_FIXTURES, two optimizer steps from the fixture weights, both with the
gradients of grads.safetensors, by torch.optim itself (weight decay on 2-D weights only, as the
Hugging Face Trainer groups parameters):

  adamw_2steps.safetensors   AdamW lr 1e-2, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1
  sgd_2steps.safetensors     SGD lr 0.5, weight_decay 0.1 (no momentum)

and, for the fixtures in LORA_FIXTURES, a LoRA case under lora/ (PEFT layout):

  lora/adapter_config.json        r 4, lora_alpha 8, all seven projections, dropout 0
  lora/adapter_model.safetensors  A (r, in) and B (out, r), random (B nonzero so that d/dA is too)
  lora/lora_grads.safetensors     d loss / d A and d loss / d B under the same PEFT names
  lora/lora_case.json             the loss with the adapter (same batch as train_case.json)

The adapted forward is the base forward with W + (alpha/r) B A in place of each targeted W, which
is what y = x Wᵀ + (alpha/r) (x Aᵀ) Bᵀ computes; autograd then gives d/dA and d/dB.

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
OPTIM_FIXTURES = ["qwen2_gqa_f32"]
LORA_FIXTURES = ["llama_gqa_tied_bias_f32", "qwen2_gqa_f32"]
LORA_R, LORA_ALPHA = 4, 8.0
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_case(ids):
    """Two overlapping sequences of the fixture ids with prompt-like and scattered masks."""
    seqs = [ids[0:SEQ], ids[8:8 + SEQ]]
    labels = [list(s) for s in seqs]
    for t in range(6):
        labels[0][t] = -100          # a "prompt" of 6 tokens
    labels[1][10] = labels[1][11] = -100
    labels[1][0] = -100              # position 0 is never a target anyway (shifted away)
    return seqs, labels


def batch_loss(f, w, seqs, labels):
    """Mean masked, shifted cross-entropy of the batch, the unmasked count and token log-probs."""
    total = torch.zeros((), dtype=torch.float64)
    n_valid = 0
    token_logp = []
    for s, lab in zip(seqs, labels):
        logp = torch.log_softmax(mf.reference_logits(f, w, s), dim=-1)
        nxt = torch.tensor(s[1:])
        token_logp.append(logp[:-1].gather(1, nxt[:, None])[:, 0].detach())
        tgt = torch.tensor(lab[1:])
        keep = tgt != -100
        n_valid += int(keep.sum())
        total = total - logp[:-1][keep].gather(1, tgt[keep][:, None]).sum()
    return total / n_valid, n_valid, token_logp


def run_optim(d, stored, grads):
    for fname, make in (("adamw_2steps.safetensors",
                         lambda groups: torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8)),
                        ("sgd_2steps.safetensors", lambda groups: torch.optim.SGD(groups, lr=0.5))):
        params = {k: v.to(torch.float32).clone().requires_grad_(True) for k, v in stored.items()}
        decay = [p for k, p in params.items() if p.dim() == 2]
        no_decay = [p for k, p in params.items() if p.dim() != 2]
        opt = make([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}])
        for _ in range(2):
            for k, p in params.items():
                p.grad = grads[k].clone()
            opt.step()
        with open(os.path.join(d, fname), "wb") as fh:
            fh.write(mf.st_encode({k: v.detach() for k, v in params.items()}, {"format": "pt"}))
    print(f"{os.path.basename(d):26s} AdamW and SGD 2-step references")


def run_lora(f, d, stored, seqs, labels):
    gen = torch.Generator().manual_seed(777)
    base = {k: v.to(torch.float64) for k, v in stored.items()}
    ab = {}
    for name in sorted(base):
        mod = name.split(".")[-2]
        if mod not in LORA_MODULES or not name.endswith(".weight"):
            continue
        n_out, n_in = base[name].shape
        stem = "base_model.model." + name[:-len(".weight")]
        ab[stem + ".lora_A.weight"] = (torch.randn(LORA_R, n_in, generator=gen) * 0.2).to(torch.float64).requires_grad_(True)
        ab[stem + ".lora_B.weight"] = (torch.randn(n_out, LORA_R, generator=gen) * 0.2).to(torch.float64).requires_grad_(True)
    scale = LORA_ALPHA / LORA_R
    w = dict(base)
    for name in base:
        stem = "base_model.model." + name[:-len(".weight")]
        if stem + ".lora_A.weight" in ab:
            w[name] = base[name] + scale * ab[stem + ".lora_B.weight"] @ ab[stem + ".lora_A.weight"]
    loss, n_valid, _ = batch_loss(f, w, seqs, labels)
    loss.backward()
    out = os.path.join(d, "lora")
    os.makedirs(out, exist_ok=True)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": LORA_R, "lora_alpha": LORA_ALPHA,
           "lora_dropout": 0.0, "target_modules": LORA_MODULES, "bias": "none",
           "fan_in_fan_out": False, "inference_mode": True, "use_rslora": False,
           "base_model_name_or_path": f["name"]}
    with open(os.path.join(out, "adapter_config.json"), "w") as fh:
        fh.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    with open(os.path.join(out, "adapter_model.safetensors"), "wb") as fh:
        fh.write(mf.st_encode({k: v.detach().to(torch.float32) for k, v in ab.items()}, {"format": "pt"}))
    with open(os.path.join(out, "lora_grads.safetensors"), "wb") as fh:
        fh.write(mf.st_encode({k: v.grad.to(torch.float32) for k, v in ab.items()}, {"format": "pt"}))
    with open(os.path.join(out, "lora_case.json"), "w") as fh:
        fh.write(json.dumps({"format_version": 1, "generator": "tests/ref/make_grad_fixtures.py",
                             "batch": "../train_case.json", "loss": float(loss), "n_valid": n_valid}, indent=1) + "\n")
    print(f"{f['name']:26s} LoRA r={LORA_R} alpha={LORA_ALPHA:g}: loss {float(loss):.6f}, {len(ab)} adapter tensors")


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
    if f["name"] in OPTIM_FIXTURES:
        run_optim(d, stored, grads)
    if f["name"] in LORA_FIXTURES:
        run_lora(f, d, stored, seqs, labels)


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
