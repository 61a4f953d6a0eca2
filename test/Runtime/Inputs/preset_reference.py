"""PyTorch references of the *-tiny presets, to check galvatron-run against.

An independent implementation of each family's forward pass with
torch.nn.functional, following the Hugging Face models the presets mirror
(GPT-2, LLaMA, BERT, T5 v1.0, ViT), reading the very weights galvatron-run
used from the safetensors file it saved.

  preset_reference.py inputs MODEL DIR        write random inputs to DIR/*.npy
  preset_reference.py check MODEL WEIGHTS.safetensors INPUTS_DIR OUTPUTS_DIR
      compare galvatron-run's outputs with PyTorch's; exit 1 on a mismatch
"""

import itertools
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

# Relative tolerance of the comparison: max |ours - torch| / max |torch|.
TOLERANCE = 1e-4

# Dimensions of the presets (lib/Models/ModelPresets.cpp).
PRESETS = {
    "gpt-tiny": dict(family="gpt", layers=2, hidden=64, heads=4, seq=64,
                     vocab=256, eps=1e-5),
    "llama-tiny": dict(family="llama", layers=2, hidden=64, heads=4,
                       kv_heads=2, seq=64, vocab=256, eps=1e-5),
    "bert-tiny": dict(family="bert", layers=2, hidden=64, heads=4, seq=32,
                      vocab=256, eps=1e-12),
    "t5-tiny": dict(family="t5", layers=2, hidden=64, heads=4, seq=32,
                    vocab=256, eps=1e-6, buckets=32, max_distance=128),
    "vit-tiny": dict(family="vit", layers=2, hidden=64, heads=4, patch=8,
                     image=32, channels=3, eps=1e-12),
}

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64,
                      "I32": np.int32}


def read_safetensors(path):
    """Reads a safetensors file by hand: u64 header length, JSON, data."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[8 + length + begin:8 + length + end],
                              dtype=SAFETENSORS_DTYPES[entry["dtype"]])
        tensors[name] = torch.from_numpy(
            array.reshape(entry["shape"]).copy())
    return tensors


def read_checkpoint(directory):
    """Every tensor of the complete checkpoint in `directory` (galvatron-run
    --checkpoint), whole, by name: the weights and the training state of
    the checkpoint its manifest names, from all of its files."""
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    folder = os.path.join(directory, manifest["checkpoint"])
    tensors = {}
    for name in manifest["files"]:
        if name.endswith(".safetensors"):
            tensors.update(read_safetensors(os.path.join(folder, name)))
    return tensors


def inputs_of(model):
    c = PRESETS[model]
    rng = np.random.RandomState(1234)
    if c["family"] in ("gpt", "llama"):
        return {"input_ids": rng.randint(0, c["vocab"], (1, c["seq"]))}
    if c["family"] == "bert":
        mask = np.ones((1, c["seq"]), dtype=np.int64)
        mask[0, -5:] = 0  # padding at the end
        return {"input_ids": rng.randint(0, c["vocab"], (1, c["seq"])),
                "token_type_ids": rng.randint(0, 2, (1, c["seq"])),
                "attention_mask": mask}
    if c["family"] == "t5":
        return {"input_ids": rng.randint(0, c["vocab"], (1, c["seq"])),
                "decoder_input_ids": rng.randint(0, c["vocab"], (1, c["seq"]))}
    shape = (1, c["channels"], c["image"], c["image"])
    return {"pixel_values": rng.standard_normal(shape).astype(np.float32)}


def typed(name, array):
    return array.astype(np.float32 if name == "pixel_values" else np.int64)


# -----------------------------------------------------------------------------
# Building blocks
# -----------------------------------------------------------------------------

def heads(x, n):
    b, s, hd = x.shape
    return x.view(b, s, n, hd // n).transpose(1, 2)


def merge(x):
    b, n, s, d = x.shape
    return x.transpose(1, 2).reshape(b, s, n * d)


def attend(q, k, v, bias=None, causal=False, scale=None, groups=1,
           dropout=None):
    """Softmax attention; `groups` query heads share each key/value head;
    `dropout`, when given, maps the probabilities to their dropped form."""
    k = k.repeat_interleave(groups, dim=1)
    v = v.repeat_interleave(groups, dim=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if bias is not None:
        scores = scores + bias
    if causal:
        s, t = scores.shape[-2:]
        keep = torch.tril(torch.ones(s, t, dtype=torch.bool))
        scores = scores.masked_fill(~keep, float("-inf"))
    probabilities = torch.softmax(scores, dim=-1)
    if dropout is not None:
        probabilities = dropout(probabilities)
    return torch.matmul(probabilities, v)


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def layer_norm(w, prefix, x, eps, ops=None):
    ops = ops or FLOAT32
    return ops.op(F.layer_norm, x, (x.shape[-1],), w[prefix + ".weight"],
                  w[prefix + ".bias"], eps)


def dense(w, prefix, x, bias=True, ops=None):
    """torch.nn.Linear layout: weight [out, in]."""
    ops = ops or FLOAT32
    return ops.op(F.linear, x, w[prefix + ".weight"],
                  w[prefix + ".bias"] if bias else None)


# -----------------------------------------------------------------------------
# Precision
# -----------------------------------------------------------------------------

class Float32:
    """The model in f32: parameters as read, every op as PyTorch runs it."""

    def params(self, w):
        return w

    def op(self, function, *args, **kwargs):
        """One op of galvatron's graph (a GEMM with its bias, a norm, the
        fused attention, rotary, an embedding lookup)."""
        return function(*args, **kwargs)

    def logits(self, x):
        return x

    def mask(self, keep, value):
        """value where `keep` (0/1 integers) is 0, else 0."""
        return (1.0 - keep.float()) * value


class CastOnRead(dict):
    """Parameters cast to `dtype` at every read, as galvatron casts each
    read of an f32 master weight: each read's gradient comes back to the
    f32 parameter through its own cast."""

    def __init__(self, weights, dtype):
        super().__init__(weights)
        self.dtype = dtype

    def __getitem__(self, name):
        return super().__getitem__(name).to(self.dtype)


class Rounded(Float32):
    """Mixed precision with galvatron's cast points, written out rather than
    left to autocast: f32 master weights cast to `dtype` at each read; each
    op of galvatron's graph computes in f32 from its 16-bit operands and
    rounds its result once (so do PyTorch's own 16-bit elementwise ops); the
    loss in f32 (`compute`). Autograd then rounds every gradient an op
    produces once, where the op's operands were widened. (PyTorch 1.13's
    own bf16 GELU and SiLU round inside, forward and backward: they too go
    through `op`.)"""

    def __init__(self, dtype, compute=torch.float32):
        self.dtype, self.compute = dtype, compute

    def params(self, w):
        return CastOnRead(w, self.dtype)

    def op(self, function, *args, **kwargs):
        def widen(value):
            return value.to(self.compute) if torch.is_tensor(value) and \
                value.is_floating_point() else value
        result = function(*map(widen, args),
                          **{k: widen(v) for k, v in kwargs.items()})
        return result.to(self.dtype)

    def logits(self, x):
        return x.to(self.compute)

    def mask(self, keep, value):
        return (1.0 - keep.to(self.dtype)) * torch.tensor(value,
                                                          dtype=self.dtype)


FLOAT32 = Float32()


def lookup(table, ids):
    return table[ids]


# -----------------------------------------------------------------------------
# Families
# -----------------------------------------------------------------------------

def conv1d(x, weight, bias):
    """GPT-2's Conv1D layout: weight [in, out]."""
    return x @ weight + bias


def gpt(w, c, x, ops=FLOAT32):
    """`c["dropout"]` and `c["attention_dropout"]`, when given, are
    (x, stream) -> x with dropout applied: the former at the embeddings and,
    in each block, the attention output and the MLP output, the latter on
    each block's attention probabilities. Sites draw streams 0, 1, ... in
    program order, as the model builder numbers them."""
    w = ops.params(w)
    streams = itertools.count()

    def site(kind):
        """The dropout of the next site of `kind`, or None."""
        function = c.get(kind)
        if function is None:
            return None
        stream = next(streams)
        return lambda value: function(value, stream)

    def drop(value):
        dropout = site("dropout")
        return value if dropout is None else dropout(value)

    ids = x["input_ids"]
    s = ids.shape[1]
    h = drop(ops.op(lookup, w["transformer.wte.weight"], ids) +
             w["transformer.wpe.weight"][:s])
    for i in range(c["layers"]):
        p = f"transformer.h.{i}"
        a = layer_norm(w, p + ".ln_1", h, c["eps"], ops)
        qkv = ops.op(conv1d, a, w[p + ".attn.c_attn.weight"],
                     w[p + ".attn.c_attn.bias"])
        q, k, v = qkv.split(c["hidden"], dim=2)
        o = merge(ops.op(attend, heads(q, c["heads"]), heads(k, c["heads"]),
                         heads(v, c["heads"]), causal=True,
                         dropout=site("attention_dropout")))
        h = h + drop(ops.op(conv1d, o, w[p + ".attn.c_proj.weight"],
                            w[p + ".attn.c_proj.bias"]))
        m = layer_norm(w, p + ".ln_2", h, c["eps"], ops)
        m = ops.op(F.gelu, ops.op(conv1d, m, w[p + ".mlp.c_fc.weight"],
                                  w[p + ".mlp.c_fc.bias"]), approximate="tanh")
        h = h + drop(ops.op(conv1d, m, w[p + ".mlp.c_proj.weight"],
                            w[p + ".mlp.c_proj.bias"]))
    h = layer_norm(w, "transformer.ln_f", h, c["eps"], ops)
    return {"logits": ops.logits(ops.op(F.linear, h,
                                        w["transformer.wte.weight"]))}


def rotate(x, theta=10000.0):
    """Rotary embedding, rotate-half pairs, over [B, H, S, D]."""
    d, s = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2).float() / d))
    freqs = torch.outer(torch.arange(s).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return x * emb.cos() + torch.cat((-x2, x1), dim=-1) * emb.sin()


def llama(w, c, x, ops=FLOAT32):
    w = ops.params(w)
    h = ops.op(lookup, w["model.embed_tokens.weight"], x["input_ids"])
    groups = c["heads"] // c["kv_heads"]
    for i in range(c["layers"]):
        p = f"model.layers.{i}"
        a = ops.op(rms_norm, h, w[p + ".input_layernorm.weight"], c["eps"])
        q = ops.op(rotate, heads(dense(w, p + ".self_attn.q_proj", a, False,
                                       ops), c["heads"]))
        k = ops.op(rotate, heads(dense(w, p + ".self_attn.k_proj", a, False,
                                       ops), c["kv_heads"]))
        v = heads(dense(w, p + ".self_attn.v_proj", a, False, ops),
                  c["kv_heads"])
        o = merge(ops.op(attend, q, k, v, causal=True, groups=groups))
        h = h + dense(w, p + ".self_attn.o_proj", o, False, ops)
        m = ops.op(rms_norm, h, w[p + ".post_attention_layernorm.weight"],
                   c["eps"])
        m = ops.op(F.silu, dense(w, p + ".mlp.gate_proj", m, False, ops)) * \
            dense(w, p + ".mlp.up_proj", m, False, ops)
        h = h + dense(w, p + ".mlp.down_proj", m, False, ops)
    h = ops.op(rms_norm, h, w["model.norm.weight"], c["eps"])
    return {"logits": ops.logits(dense(w, "lm_head", h, False, ops))}


def bert(w, c, x, ops=FLOAT32):
    w = ops.params(w)
    s = x["input_ids"].shape[1]
    e = "bert.embeddings"
    h = (ops.op(lookup, w[e + ".word_embeddings.weight"], x["input_ids"]) +
         w[e + ".position_embeddings.weight"][:s] +
         ops.op(lookup, w[e + ".token_type_embeddings.weight"],
                x["token_type_ids"]))
    h = layer_norm(w, e + ".LayerNorm", h, c["eps"], ops)
    mask = ops.mask(x["attention_mask"], -10000.0)[:, None, None, :]
    for i in range(c["layers"]):
        p = f"bert.encoder.layer.{i}"
        q = heads(dense(w, p + ".attention.self.query", h, ops=ops), c["heads"])
        k = heads(dense(w, p + ".attention.self.key", h, ops=ops), c["heads"])
        v = heads(dense(w, p + ".attention.self.value", h, ops=ops), c["heads"])
        o = dense(w, p + ".attention.output.dense",
                  merge(ops.op(attend, q, k, v, mask)), ops=ops)
        a = layer_norm(w, p + ".attention.output.LayerNorm", h + o, c["eps"],
                       ops)
        m = ops.op(F.gelu, dense(w, p + ".intermediate.dense", a, ops=ops))
        h = layer_norm(w, p + ".output.LayerNorm",
                       a + dense(w, p + ".output.dense", m, ops=ops), c["eps"],
                       ops)
    logits = ops.logits(ops.op(F.linear, h, w[e + ".word_embeddings.weight"]))
    pooled = torch.tanh(dense(w, "bert.pooler.dense", h[:, 0], ops=ops))
    return {"logits": logits, "pooler_output": pooled}


def t5_bucket(relative, bidirectional, buckets, max_distance):
    result = torch.zeros_like(relative)
    if bidirectional:
        buckets //= 2
        result += (relative > 0).long() * buckets
        relative = relative.abs()
    else:
        relative = -torch.min(relative, torch.zeros_like(relative))
    exact = buckets // 2
    large = exact + (torch.log(relative.float() / exact) /
                     math.log(max_distance / exact) *
                     (buckets - exact)).long()
    large = torch.min(large, torch.full_like(large, buckets - 1))
    return result + torch.where(relative < exact, relative, large)


def t5_bias(w, c, name, s, bidirectional):
    positions = torch.arange(s)
    relative = positions[None, :] - positions[:, None]
    buckets = t5_bucket(relative, bidirectional, c["buckets"],
                        c["max_distance"])
    return w[name][buckets].permute(2, 0, 1)[None]


def t5(w, c, x):
    n, eps = c["heads"], c["eps"]

    def attention(prefix, query, memory, bias, causal):
        q = heads(dense(w, prefix + ".q", query, False), n)
        k = heads(dense(w, prefix + ".k", memory, False), n)
        v = heads(dense(w, prefix + ".v", memory, False), n)
        return dense(w, prefix + ".o",
                     merge(attend(q, k, v, bias, causal, scale=1.0)), False)

    def feed_forward(prefix, h):
        m = rms_norm(h, w[prefix + ".layer_norm.weight"], eps)
        m = F.relu(dense(w, prefix + ".DenseReluDense.wi", m, False))
        return h + dense(w, prefix + ".DenseReluDense.wo", m, False)

    s = x["input_ids"].shape[1]
    bias = t5_bias(w, c, "encoder.block.0.layer.0.SelfAttention."
                   "relative_attention_bias.weight", s, True)
    h = w["shared.weight"][x["input_ids"]]
    for i in range(c["layers"]):
        p = f"encoder.block.{i}.layer"
        a = rms_norm(h, w[p + ".0.layer_norm.weight"], eps)
        h = h + attention(p + ".0.SelfAttention", a, a, bias, False)
        h = feed_forward(p + ".1", h)
    encoded = rms_norm(h, w["encoder.final_layer_norm.weight"], eps)

    bias = t5_bias(w, c, "decoder.block.0.layer.0.SelfAttention."
                   "relative_attention_bias.weight", s, False)
    h = w["shared.weight"][x["decoder_input_ids"]]
    for i in range(c["layers"]):
        p = f"decoder.block.{i}.layer"
        a = rms_norm(h, w[p + ".0.layer_norm.weight"], eps)
        h = h + attention(p + ".0.SelfAttention", a, a, bias, True)
        a = rms_norm(h, w[p + ".1.layer_norm.weight"], eps)
        h = h + attention(p + ".1.EncDecAttention", a, encoded, None, False)
        h = feed_forward(p + ".2", h)
    h = rms_norm(h, w["decoder.final_layer_norm.weight"], eps)
    h = h * (c["hidden"] ** -0.5)
    return {"logits": h @ w["shared.weight"].T}


def vit(w, c, x):
    e = "vit.embeddings"
    patches = F.conv2d(x["pixel_values"],
                       w[e + ".patch_embeddings.projection.weight"],
                       w[e + ".patch_embeddings.projection.bias"],
                       stride=c["patch"])
    h = patches.flatten(2).transpose(1, 2)
    cls = w[e + ".cls_token"].expand(h.shape[0], -1, -1)
    h = torch.cat([cls, h], dim=1) + w[e + ".position_embeddings"]
    for i in range(c["layers"]):
        p = f"vit.encoder.layer.{i}"
        a = layer_norm(w, p + ".layernorm_before", h, c["eps"])
        q = heads(dense(w, p + ".attention.attention.query", a), c["heads"])
        k = heads(dense(w, p + ".attention.attention.key", a), c["heads"])
        v = heads(dense(w, p + ".attention.attention.value", a), c["heads"])
        h = h + dense(w, p + ".attention.output.dense",
                      merge(attend(q, k, v)))
        m = layer_norm(w, p + ".layernorm_after", h, c["eps"])
        m = F.gelu(dense(w, p + ".intermediate.dense", m))
        h = h + dense(w, p + ".output.dense", m)
    h = layer_norm(w, "vit.layernorm", h, c["eps"])
    return {"logits": dense(w, "classifier", h[:, 0])}


FAMILIES = {"gpt": gpt, "llama": llama, "bert": bert, "t5": t5, "vit": vit}


def compare(model, name, ours, reference, kept=None):
    """Prints whether `ours` matches PyTorch's `reference` (at the positions
    `kept`, a boolean mask of the leading dimensions, if given) within
    TOLERANCE, relative to the largest reference value; returns it."""
    if ours.shape != reference.shape:
        print(f"{model}: {name} has shape {ours.shape}, "
              f"PyTorch {reference.shape}")
        return False
    if kept is not None:
        ours, reference = ours[kept], reference[kept]
    error = np.abs(ours - reference).max() / np.abs(reference).max()
    verdict = "matches" if error <= TOLERANCE else "DIFFERS FROM"
    print(f"{model}: {name} {verdict} PyTorch (max relative error {error:.1e})")
    return error <= TOLERANCE


def main(argv):
    if len(argv) == 4 and argv[1] == "inputs":
        os.makedirs(argv[3], exist_ok=True)
        for name, array in inputs_of(argv[2]).items():
            np.save(os.path.join(argv[3], name + ".npy"), typed(name, array))
        return 0
    if len(argv) != 6 or argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    model, weights, inputs, outputs = argv[2:]
    config = PRESETS[model]
    w = read_safetensors(weights)
    x = {name: torch.from_numpy(np.load(os.path.join(inputs, name + ".npy")))
         for name in inputs_of(model)}
    with torch.no_grad():
        expected = FAMILIES[config["family"]](w, config, x)
    matches = [compare(model, name,
                       np.load(os.path.join(outputs, name + ".npy")),
                       reference.numpy())
               for name, reference in expected.items()]
    return 0 if all(matches) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
