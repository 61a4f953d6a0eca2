"""PyTorch reference of galvatron-run's training steps on the tiny presets.

Rebuilds each step with torch.autograd and torch.optim.AdamW from the very
initial weights galvatron-run saved (--save-params), on the batches of the
data contract (docs/architecture.md, "The training step"), and compares the
loss of every step, every gradient (a run compiled with optimizer=none
keeps them in its checkpoint) and every parameter after the steps.

  train_reference.py tokens OUT.bin COUNT VOCAB
      write COUNT random uint16 tokens below VOCAB (nanoGPT's raw layout)
  train_reference.py llmc RAW.bin OUT.bin VERSION [COUNT]
      rewrite raw uint16 tokens in llm.c's layout (256 int32 header: magic
      20240520, VERSION 1 = uint16 or 2 = uint32 tokens, COUNT)
  train_reference.py check MODEL WEIGHTS TOKENS GRADS_DIR LOG TRAINED_DIR
                     [--key=value ...]
      compare; the keys are the step's settings (batch, micro, lr, ...)
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "Runtime", "Inputs"))
from preset_reference import (FAMILIES, PRESETS, read_checkpoint,  # noqa: E402
                              read_safetensors)

TOLERANCE = 1e-4
MASK64 = (1 << 64) - 1


# -----------------------------------------------------------------------------
# The data contract, independently of the runtime
# -----------------------------------------------------------------------------

def mix(x):
    """SplitMix64's finalizer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def uniform(key, counter):
    return ((mix(mix(counter) ^ key) >> 11) + 1) / 9007199254740992.0


def batches(tokens, family, batch, seq, vocab, steps, seed=0, mask_token=103):
    """The (inputs, labels) of steps 1..steps, as galvatron-run makes them."""
    position = 0
    masked = family == "bert"
    span = batch * seq + (0 if masked else 1)
    for step in range(1, steps + 1):
        if position + span > len(tokens):
            position = 0
        window = tokens[position:position + span].astype(np.int64)
        inputs = window[:batch * seq].copy()
        if not masked:
            labels = window[1:]
        else:
            labels = np.full(batch * seq, -100, dtype=np.int64)
            step_key = mix(seed ^ mix(step))
            for b in range(batch):
                key = mix(step_key ^ b)
                counter = 0
                chosen = 0
                for s in range(seq):
                    i = b * seq + s
                    take = uniform(key, counter) <= 0.15
                    counter += 1
                    if not take and s == seq - 1 and chosen == 0:
                        take = True
                    if not take:
                        continue
                    chosen += 1
                    labels[i] = inputs[i]
                    kind = uniform(key, counter)
                    counter += 1
                    if kind <= 0.8:
                        inputs[i] = mask_token
                    elif kind <= 0.9:
                        inputs[i] = min(vocab - 1,
                                        int(uniform(key, counter) * vocab))
                        counter += 1
        position += batch * seq
        x = {"input_ids": torch.from_numpy(inputs.reshape(batch, seq))}
        if masked:
            x["token_type_ids"] = torch.zeros(batch, seq, dtype=torch.int64)
            x["attention_mask"] = torch.ones(batch, seq, dtype=torch.int64)
        yield x, torch.from_numpy(np.asarray(labels).reshape(batch, seq))


def learning_rate(step, lr, min_lr, warmup, decay):
    if step <= warmup:
        return lr * step / warmup
    if decay > warmup and step <= decay:
        return min_lr + 0.5 * (lr - min_lr) * (
            1 + math.cos(math.pi * (step - warmup) / (decay - warmup)))
    return min_lr if decay > warmup else lr


# -----------------------------------------------------------------------------
# The reference step
# -----------------------------------------------------------------------------

def loss_of(family, config, weights, x, labels, micro):
    """Mean over micro-batches of each micro-batch's mean token loss."""
    total = 0.0
    rows = labels.shape[0] // micro
    for m in range(micro):
        part = {k: v[m * rows:(m + 1) * rows] for k, v in x.items()}
        logits = FAMILIES[family](weights, config, part)["logits"]
        total = total + F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            labels[m * rows:(m + 1) * rows].reshape(-1), ignore_index=-100)
    return total / micro


def varying(name, family, config, shape):
    """The elements whose gradient is not zero by symmetry. Softmax attention
    is invariant to a bias added to every key (it shifts each row of scores
    by a constant), so the key bias's exact gradient is zero: both sides hold
    only rounding noise there, which AdamW's normalization turns into
    updates that no two implementations share. Those elements are checked
    to be negligible instead of compared."""
    keep = np.ones(shape, dtype=bool)
    if family == "bert" and name.endswith("attention.self.key.bias"):
        keep[:] = False
    if family == "gpt" and name.endswith("attn.c_attn.bias"):
        hidden = config["hidden"]
        keep[hidden:2 * hidden] = False
    return keep


def relative_error(ours, reference):
    """||ours - reference|| / ||reference|| (L2 over the tensor). Adam
    normalizes every element, so an element with a gradient far below the
    tensor's largest carries its rounding into an update of full size; a
    max-norm ratio would single out such elements."""
    ours, reference = ours.astype(np.float64), reference.astype(np.float64)
    scale = np.linalg.norm(reference)
    return np.linalg.norm(ours - reference) / (scale if scale > 0 else 1.0)


def main(argv):
    if len(argv) == 5 and argv[1] == "tokens":
        rng = np.random.RandomState(4321)
        rng.randint(0, int(argv[4]), int(argv[3])).astype("<u2").tofile(argv[2])
        return 0
    if len(argv) in (5, 6) and argv[1] == "llmc":
        tokens = np.fromfile(argv[2], dtype="<u2")
        version = int(argv[4])
        header = np.zeros(256, dtype="<i4")
        header[:3] = [20240520, version,
                      int(argv[5]) if len(argv) == 6 else len(tokens)]
        with open(argv[3], "wb") as f:
            f.write(header.tobytes())
            f.write(tokens.astype("<u4" if version == 2 else "<u2").tobytes())
        return 0
    if len(argv) < 8 or argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    model, weights_path, tokens_path, grads_dir, log_path, trained_dir = argv[2:8]
    settings = dict(batch=1, micro=1, lr=1e-3, min_lr=0.0, warmup=0, decay=0,
                    beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                    clip=1.0, optimizer="adamw", momentum=0.9)
    for option in argv[8:]:
        key, value = option.lstrip("-").split("=")
        kind = type(settings[key])
        settings[key] = value if kind is str else kind(float(value))
    config = PRESETS[model]
    family = config["family"]
    initial = read_safetensors(weights_path)
    tokens = np.fromfile(tokens_path, dtype="<u2")
    with open(log_path) as f:
        logged = [json.loads(line) for line in f]
    steps = len(logged)
    weights = {name: value.clone().requires_grad_(True)
               for name, value in initial.items()}
    compared = list(weights)
    if family == "bert":
        # The pooler does not reach the loss: the training program drops it.
        hidden = config["hidden"]
        weights["bert.pooler.dense.weight"] = torch.zeros(hidden, hidden)
        weights["bert.pooler.dense.bias"] = torch.zeros(hidden)
    if settings["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(
            list(weights.values()), lr=settings["lr"],
            momentum=settings["momentum"],
            weight_decay=settings["weight_decay"])
    else:
        optimizer = torch.optim.AdamW(
            list(weights.values()), lr=settings["lr"],
            betas=(settings["beta1"], settings["beta2"]), eps=settings["eps"],
            weight_decay=settings["weight_decay"])
    ok = True
    data = batches(tokens, family, settings["batch"] * settings["micro"],
                   config["seq"], config["vocab"], steps)
    worst_loss = 0.0
    for step, (x, labels) in enumerate(data, start=1):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(family, config, weights, x, labels, settings["micro"])
        loss.backward()
        error = abs(logged[step - 1]["loss"] - loss.item()) / abs(loss.item())
        worst_loss = max(worst_loss, error)
        if step == 1:
            # Gradients before clipping, as the optimizer=none run keeps them.
            grads = read_checkpoint(grads_dir)
            worst, count = 0.0, 0
            for name, value in weights.items():
                if value.grad is None:
                    continue
                ours = grads[name + ".grad"].numpy()
                keep = varying(name, family, config, ours.shape)
                noise = np.abs(ours[~keep]).max(initial=0.0)
                if noise > 1e-6:
                    print(f"{model}: gradient of {name} is {noise:.1e} where "
                          "it must vanish")
                    ok = False
                error = relative_error(ours[keep], value.grad.numpy()[keep])
                count += 1
                if error > TOLERANCE:
                    print(f"{model}: gradient of {name} DIFFERS FROM PyTorch "
                          f"(relative error {error:.1e})")
                    ok = False
                worst = max(worst, error)
            print(f"{model}: {count} gradients match PyTorch "
                  f"(max relative error {worst:.1e})")
        trained = [w for w in weights.values() if w.grad is not None]
        if settings["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(trained, settings["clip"])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings["lr"], settings["min_lr"],
                                        settings["warmup"], settings["decay"])
        optimizer.step()
    verdict = "match" if worst_loss <= TOLERANCE else "DIFFER FROM"
    ok &= worst_loss <= TOLERANCE
    print(f"{model}: losses of {steps} steps {verdict} PyTorch "
          f"(max relative error {worst_loss:.1e})")
    final = read_checkpoint(trained_dir)
    worst = 0.0
    for name in compared:
        value = weights[name].detach().numpy()
        keep = varying(name, family, config, value.shape)
        error = relative_error(final[name].numpy()[keep], value[keep])
        if error > TOLERANCE:
            print(f"{model}: {name} after {steps} steps DIFFERS FROM PyTorch "
                  f"(relative error {error:.1e})")
            ok = False
        worst = max(worst, error)
    name = "SGD" if settings["optimizer"] == "sgd" else "AdamW"
    print(f"{model}: {len(compared)} parameters after {steps} {name} steps "
          f"match PyTorch (max relative error {worst:.1e})"
          if worst <= TOLERANCE else f"{model}: parameters DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
