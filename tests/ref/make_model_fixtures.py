#!/usr/bin/python3
"""make_model_fixtures.py - tiny Hugging Face-layout models and their expected logits.

The numerical reference for the dsm transformer core (tests/unit/test_model_ref.c). For each
fixture it writes, under tests/fixtures/models/<name>/:

  config.json                 as transformers' save_pretrained writes it for the architecture
  model.safetensors           (or model-0000k-of-0000n.safetensors + model.safetensors.index.json)
  ids.json                    the token ids fed to the model (a JSON list)
  logits.f32                  expected logits, float32 little-endian, row-major [n_ids x vocab]
  meta.json                   what was computed, with which torch, seed and dtype

The decoder here is written by hand from the published architecture (LLaMA / Qwen2: embedding,
RMSNorm, rotary embedding in the rotate-half convention, causal attention with GQA, SwiGLU MLP,
final norm, untied or tied lm_head). It shares no code with the C engine nor with transformers. It
computes in float64 from the weights exactly as stored (bf16/f16 upcast), read back from the
safetensors files this script wrote with its own reader, so the reference is more accurate than
the float32 engine it judges.

Run with Debian's PyTorch (python3-torch, 1.13 CPU); no other packages are needed:

    /usr/bin/python3 tests/ref/make_model_fixtures.py [--out DIR] [--only NAME ...]
    /usr/bin/python3 tests/ref/make_model_fixtures.py --fuzz-corpus tests/fuzz/corpus

Output is deterministic: running it twice gives byte-identical files.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import zlib

import torch

BASE_SEED = 1234
N_IDS = 24
# The C test demands an identical argmax at every position; a reference whose top two logits are
# closer than this would make that check depend on float32 rounding, so such fixtures are refused.
MIN_TOP2_GAP = 1e-3

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
ST_FROM_NAME = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}
TORCH_DTYPE_NAME = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
INT_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}

# ---- the fixtures ------------------------------------------------------------------------------
# Sizes are tiny so that each fixture directory stays well under 200 KB; the parameters that
# change the computation differ between fixtures so that each code path is exercised somewhere.
FIXTURES = [
    dict(name="llama_mha_f32",
         desc="LLaMA, MHA (2 heads, head_dim 16), float32, untied lm_head, rope_theta 1e4, "
              "no biases",
         arch="llama", vocab=256, hidden=32, inter=64, layers=2, heads=2, kv_heads=2,
         theta=10000.0, tied=False, dtype=torch.float32, eps=1e-5, style="old"),
    dict(name="llama_gqa_tied_bias_f32",
         desc="LLaMA, GQA 4 q / 2 kv heads (head_dim 8), float32, tied embeddings, "
              "rope_theta 5e5, attention_bias=true (q, k, v and o biases), eos list",
         arch="llama", vocab=300, hidden=32, inter=64, layers=2, heads=4, kv_heads=2,
         theta=500000.0, tied=True, dtype=torch.float32, eps=1e-5, attn_bias=True,
         eos=[2, 3], style="new"),
    dict(name="qwen2_gqa_f32",
         desc="Qwen2, GQA 4 q / 2 kv heads (head_dim 8), float32, untied lm_head, "
              "rope_theta 1e6, q/k/v biases (no o bias)",
         arch="qwen2", vocab=256, hidden=32, inter=64, layers=2, heads=4, kv_heads=2,
         theta=1000000.0, tied=False, dtype=torch.float32, eps=1e-6, style="old"),
    dict(name="qwen2_tied_bf16",
         desc="Qwen2, GQA 4 q / 2 kv heads (head_dim 12), bfloat16 weights, tied embeddings, "
              "rope_theta 1e6, q/k/v biases",
         arch="qwen2", vocab=300, hidden=48, inter=96, layers=2, heads=4, kv_heads=2,
         theta=1000000.0, tied=True, dtype=torch.bfloat16, eps=1e-6, style="new"),
    dict(name="llama_f16",
         desc="LLaMA, MHA 4 heads (head_dim 12), float16 weights, untied lm_head, "
              "rope_theta 1e4",
         arch="llama", vocab=300, hidden=48, inter=80, layers=2, heads=4, kv_heads=4,
         theta=10000.0, tied=False, dtype=torch.float16, eps=1e-5, style="old"),
    dict(name="llama_rope_linear",
         desc="LLaMA, MQA 2 q / 1 kv head (head_dim 16), float32, tied, rope_scaling linear "
              "factor 4 written with both 'type' and 'rope_type' keys",
         arch="llama", vocab=300, hidden=32, inter=64, layers=2, heads=2, kv_heads=1,
         theta=10000.0, tied=True, dtype=torch.float32, eps=1e-5,
         rope_scaling={"factor": 4.0, "rope_type": "linear", "type": "linear"}, style="new"),
    dict(name="llama_head_dim",
         desc="LLaMA, GQA 4 q / 2 kv heads with explicit head_dim 12 != hidden/heads = 8, "
              "float32, tied, rope_theta 1e4",
         arch="llama", vocab=300, hidden=32, inter=64, layers=2, heads=4, kv_heads=2,
         head_dim=12, theta=10000.0, tied=True, dtype=torch.float32, eps=1e-5, style="new"),
    dict(name="llama_sharded",
         desc="LLaMA, MHA 4 heads (head_dim 8), float32, untied, rope_theta 1e4, weights in two "
              "shards with model.safetensors.index.json",
         arch="llama", vocab=256, hidden=32, inter=64, layers=2, heads=4, kv_heads=4,
         theta=10000.0, tied=False, dtype=torch.float32, eps=1e-5, shards=2, style="old"),
]


# ---- safetensors, written and read by hand -----------------------------------------------------

def tensor_bytes(t):
    """Raw little-endian bytes of a contiguous tensor in its own dtype."""
    assert sys.byteorder == "little"
    return t.contiguous().view(INT_VIEW[t.dtype]).numpy().tobytes()


def st_encode(tensors, metadata=None):
    """A safetensors image: u64 LE header length, JSON header padded with spaces to a multiple of
    8 bytes, then the tensors' bytes in the order of the header (sorted by name)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def st_decode(data, where):
    """Parse a safetensors image into {name: tensor in its stored dtype}, checking the layout."""
    if len(data) < 8:
        raise ValueError(f"{where}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{where}: header length {n} beyond the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    spans = []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt, size = ST_FROM_NAME[e["dtype"]]
        begin, end = e["data_offsets"]
        count = math.prod(e["shape"])
        if not (0 <= begin <= end <= len(body)) or end - begin != count * size:
            raise ValueError(f"{where}: tensor {name}: bad data_offsets")
        spans.append((begin, end))
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=INT_VIEW[dt]) if count else torch.zeros(0, dtype=INT_VIEW[dt])
        out[name] = t.view(dt).reshape(e["shape"]).clone()
    spans.sort()
    for (b0, e0), (b1, _) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{where}: overlapping tensors")
    return out


# ---- random weights ----------------------------------------------------------------------------

def head_dim_of(f):
    return f.get("head_dim", f["hidden"] // f["heads"])


def make_weights(f, gen):
    """Hugging Face parameter names -> float32 tensors. Std 0.2 keeps logits O(1) but far from
    tiny; norm weights 1 +- 0.1 and nonzero biases make every op visible in the output."""
    C, F, V = f["hidden"], f["inter"], f["vocab"]
    Hq, Hkv, D = f["heads"], f["kv_heads"], head_dim_of(f)

    def randn(*shape, std=0.2):
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * std

    def norm_w(n):
        return 1.0 + randn(n, std=0.1)

    qkv_bias = f["arch"] == "qwen2" or f.get("attn_bias", False)
    o_bias = f["arch"] == "llama" and f.get("attn_bias", False)
    w = {"model.embed_tokens.weight": randn(V, C, std=0.5)}
    for i in range(f["layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm_w(C)
        w[p + "self_attn.q_proj.weight"] = randn(Hq * D, C)
        w[p + "self_attn.k_proj.weight"] = randn(Hkv * D, C)
        w[p + "self_attn.v_proj.weight"] = randn(Hkv * D, C)
        w[p + "self_attn.o_proj.weight"] = randn(C, Hq * D)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = randn(Hq * D)
            w[p + "self_attn.k_proj.bias"] = randn(Hkv * D)
            w[p + "self_attn.v_proj.bias"] = randn(Hkv * D)
        if o_bias:
            w[p + "self_attn.o_proj.bias"] = randn(C)
        w[p + "post_attention_layernorm.weight"] = norm_w(C)
        w[p + "mlp.gate_proj.weight"] = randn(F, C)
        w[p + "mlp.up_proj.weight"] = randn(F, C)
        w[p + "mlp.down_proj.weight"] = randn(C, F)
    w["model.norm.weight"] = norm_w(C)
    if not f["tied"]:
        w["lm_head.weight"] = randn(V, C, std=0.4)
    return w


def make_ids(f, gen):
    """N_IDS ids in [0, V): random, with 0 and V-1 present and some ids repeated."""
    V = f["vocab"]
    ids = torch.randint(1, V - 1, (N_IDS,), generator=gen).tolist()
    ids[2] = 0
    ids[9] = V - 1
    ids[13] = ids[4]
    ids[17] = ids[4]
    ids[20] = V - 1
    ids[21] = 0
    return ids


# ---- config.json -------------------------------------------------------------------------------

def make_config(f):
    """config.json as transformers writes it: sorted keys, indent 2, trailing newline. style "old"
    is transformers 4.40-era output (no head_dim for LLaMA), "new" is 4.46-era output."""
    eos = f.get("eos", 2)
    c = {
        "architectures": ["LlamaForCausalLM" if f["arch"] == "llama" else "Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "hidden_size": f["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": f["inter"],
        "max_position_embeddings": 128,
        "model_type": f["arch"],
        "num_attention_heads": f["heads"],
        "num_hidden_layers": f["layers"],
        "num_key_value_heads": f["kv_heads"],
        "rms_norm_eps": f["eps"],
        "rope_scaling": f.get("rope_scaling"),
        "rope_theta": f["theta"],
        "tie_word_embeddings": f["tied"],
        "torch_dtype": TORCH_DTYPE_NAME[f["dtype"]],
        "transformers_version": "4.46.3" if f["style"] == "new" else "4.40.2",
        "use_cache": True,
        "vocab_size": f["vocab"],
    }
    if f["arch"] == "llama":
        c["attention_bias"] = f.get("attn_bias", False)
        c["mlp_bias"] = False
        c["pretraining_tp"] = 1
        if f["style"] == "new" or "head_dim" in f:
            c["head_dim"] = head_dim_of(f)
    else:
        c["max_window_layers"] = f["layers"]
        c["sliding_window"] = 128
        c["use_sliding_window"] = False
        if f["style"] == "old":
            del c["rope_scaling"]
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


# ---- the reference decoder (float64) -----------------------------------------------------------

def rmsnorm(x, w, eps):
    # x (T, C), w (C)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_cos_sin(T, D, theta, factor):
    # (T, D) tables; inv_freq_i = theta^(-2i/D); linear scaling divides positions by factor
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    pos = torch.arange(T, dtype=torch.float64) / factor
    ang = torch.outer(pos, inv_freq)           # (T, D/2)
    ang = torch.cat([ang, ang], dim=-1)        # (T, D)
    return ang.cos(), ang.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def linear(x, w, b=None):
    # x (T, K), w (N, K) -> (T, N)
    y = x @ w.t()
    return y + b if b is not None else y


def reference_logits(f, w, ids):
    """Forward pass of the whole sequence in float64; returns (T, V)."""
    C, Hq, Hkv, D = f["hidden"], f["heads"], f["kv_heads"], head_dim_of(f)
    eps = f["eps"]
    factor = f["rope_scaling"]["factor"] if f.get("rope_scaling") else 1.0
    w = {k: v.to(torch.float64) for k, v in w.items()}
    T = len(ids)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]          # (T, C)
    cos, sin = rope_cos_sin(T, D, f["theta"], factor)               # (T, D)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for i in range(f["layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, w[p + "self_attn.q_proj.weight"], w.get(p + "self_attn.q_proj.bias"))
        k = linear(h, w[p + "self_attn.k_proj.weight"], w.get(p + "self_attn.k_proj.bias"))
        v = linear(h, w[p + "self_attn.v_proj.weight"], w.get(p + "self_attn.v_proj.bias"))
        q = q.view(T, Hq, D).transpose(0, 1)                        # (Hq, T, D)
        k = k.view(T, Hkv, D).transpose(0, 1)                       # (Hkv, T, D)
        v = v.view(T, Hkv, D).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = Hq // Hkv                                             # query head h uses kv h//rep
        k = k.repeat_interleave(rep, dim=0)                         # (Hq, T, D)
        v = v.repeat_interleave(rep, dim=0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(D)                  # (Hq, T, T)
        s = s.masked_fill(mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v                            # (Hq, T, D)
        a = a.transpose(0, 1).reshape(T, Hq * D)
        x = x + linear(a, w[p + "self_attn.o_proj.weight"], w.get(p + "self_attn.o_proj.bias"))
        h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = linear(h, w[p + "mlp.gate_proj.weight"])
        u = linear(h, w[p + "mlp.up_proj.weight"])
        x = x + linear(g * torch.sigmoid(g) * u, w[p + "mlp.down_proj.weight"])
    x = rmsnorm(x, w["model.norm.weight"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return linear(x, head)                                          # (T, V)


# ---- writing a fixture -------------------------------------------------------------------------

def write_weights(f, stored, out):
    """Write stored (name -> tensor in storage dtype) as one file or as f["shards"] shards;
    returns the list of files written."""
    meta = {"format": "pt"}
    n = f.get("shards", 1)
    if n == 1:
        with open(os.path.join(out, "model.safetensors"), "wb") as fh:
            fh.write(st_encode(stored, meta))
        return ["model.safetensors"]
    # split in model order (embeddings and early layers first), as transformers does
    names = list(stored)
    per = (len(names) + n - 1) // n
    files, weight_map = [], {}
    for k in range(n):
        fname = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        part = {nm: stored[nm] for nm in names[k * per:(k + 1) * per]}
        with open(os.path.join(out, fname), "wb") as fh:
            fh.write(st_encode(part, meta))
        for nm in part:
            weight_map[nm] = fname
        files.append(fname)
    total = sum(t.numel() * t.element_size() for t in stored.values())
    index = {"metadata": {"total_size": total},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as fh:
        fh.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return files


def make_fixture(f, root):
    seed = BASE_SEED + zlib.crc32(f["name"].encode()) % 100000 + f.get("seed_bump", 0)
    gen = torch.Generator().manual_seed(seed)
    weights = make_weights(f, gen)
    ids = make_ids(f, gen)
    stored = {k: v.to(f["dtype"]) for k, v in weights.items()}

    out = os.path.join(root, f["name"])
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, "config.json"), "w") as fh:
        fh.write(make_config(f))
    files = write_weights(f, stored, out)

    # read the weights back with our own parser: the reference uses exactly what is on disk
    back = {}
    for fname in files:
        with open(os.path.join(out, fname), "rb") as fh:
            back.update(st_decode(fh.read(), fname))
    assert set(back) == set(stored)
    for k in back:
        assert back[k].dtype == f["dtype"] and torch.equal(back[k], stored[k]), k

    logits = reference_logits(f, back, ids)
    top2 = logits.topk(2, dim=-1).values
    gap = float((top2[:, 0] - top2[:, 1]).min())
    if gap < MIN_TOP2_GAP:
        raise SystemExit(f"{f['name']}: top-2 logit gap {gap:.2e} < {MIN_TOP2_GAP}: argmax would "
                         "be fragile; give this fixture a seed_bump")

    with open(os.path.join(out, "ids.json"), "w") as fh:
        fh.write(json.dumps(ids) + "\n")
    with open(os.path.join(out, "logits.f32"), "wb") as fh:
        fh.write(tensor_bytes(logits.to(torch.float32)))
    meta = {
        "format_version": 1,
        "generator": "tests/ref/make_model_fixtures.py",
        "torch_version": torch.__version__,
        "seed": seed,
        "description": f["desc"],
        "arch": f["arch"],
        "weights_dtype": TORCH_DTYPE_NAME[f["dtype"]],
        "compute_dtype": "float64",
        "weight_files": files,
        "n_ids": len(ids),
        "vocab_size": f["vocab"],
        "logits_file": "logits.f32",
        "logits_layout": "float32 little-endian, row-major [n_ids x vocab_size]",
        "logits_std": round(float(logits.std()), 4),
        "logits_absmax": round(float(logits.abs().max()), 4),
        "min_top2_gap": round(gap, 6),
    }
    with open(os.path.join(out, "meta.json"), "w") as fh:
        fh.write(json.dumps(meta, indent=2) + "\n")
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{f['name']:26s} {size / 1024:6.1f} KB  logits std {meta['logits_std']:.3f} "
          f"absmax {meta['logits_absmax']:.3f}  min top-2 gap {gap:.4f}")


def write_fuzz_corpus(root):
    """Small valid safetensors seeds for tests/fuzz/fuzz_safetensors.c (scripts/fuzz.sh)."""
    g = torch.Generator().manual_seed(BASE_SEED)
    seeds = {
        "one_f32.safetensors": ({"w": torch.randn(2, 3, generator=g)}, None),
        "three_dtypes.safetensors": ({"a.weight": torch.randn(4, generator=g),
                                      "b.weight": torch.randn(2, 2, generator=g).half(),
                                      "c.bias": torch.randn(3, 1, generator=g).bfloat16()},
                                     {"format": "pt"}),
        "empty.safetensors": ({}, None),
        "metadata_only.safetensors": ({}, {"format": "pt", "note": "x"}),
        "zero_size.safetensors": ({"z": torch.zeros(0, 4), "s": torch.ones(())}, None),
        "rank4.safetensors": ({"t": torch.randn(1, 2, 1, 3, generator=g).bfloat16()}, None),
    }
    os.makedirs(root, exist_ok=True)
    for name, (tensors, meta) in seeds.items():
        with open(os.path.join(root, name), "wb") as fh:
            fh.write(st_encode(tensors, meta))
    print(f"wrote {len(seeds)} seeds to {root}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "models"),
                    help="fixture root (default tests/fixtures/models)")
    ap.add_argument("--only", nargs="*", help="fixture names to regenerate (default all)")
    ap.add_argument("--fuzz-corpus", metavar="DIR",
                    help="instead write small seed files for the safetensors fuzzer to DIR")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.fuzz_corpus:
        write_fuzz_corpus(a.fuzz_corpus)
        return
    names = {f["name"] for f in FIXTURES}
    for n in a.only or []:
        if n not in names:
            raise SystemExit(f"unknown fixture {n!r}; known: {', '.join(sorted(names))}")
    os.makedirs(a.out, exist_ok=True)
    for f in FIXTURES:
        if not a.only or f["name"] in a.only:
            make_fixture(f, os.path.normpath(a.out))


if __name__ == "__main__":
    main()
