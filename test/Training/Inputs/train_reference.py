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

import functools
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "Runtime", "Inputs"))
from preset_reference import (FAMILIES, FLOAT32, PRESETS,  # noqa: E402
                              Rounded, read_checkpoint, read_safetensors)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "python"))
import galvatron_models  # noqa: E402

# fp32: gradients, losses and parameters within 1e-4 relative (L2 per
# tensor); bf16 tolerances are derived in main().
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


def mix_array(x):
    """SplitMix64's finalizer on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def dropout_sites(probability, seed, step, micro):
    """Dropout with the training step's masks, fed in: site `stream` keeps
    element e of the micro-batch's tensor when the uniform of key
    mix(mix(mix(seed ^ "dropout") ^ step) ^ stream) at counter
    micro * size + e exceeds the probability (docs/architecture.md,
    "Dropout"), and scales what it keeps by 1 / (1 - p)."""
    def drop(x, stream):
        key = mix(mix(mix(seed ^ 0x64726F706F7574) ^ step) ^ stream)
        size = x.numel()
        counters = np.arange(size, dtype=np.uint64) + np.uint64(micro * size)
        bits = mix_array(mix_array(counters) ^ np.uint64(key))
        uniform = ((bits >> np.uint64(11)) + np.uint64(1)).astype(np.float64) \
            / 9007199254740992.0
        keep = torch.from_numpy(uniform > probability).reshape(x.shape)
        return x * keep.to(x.dtype) * (1.0 / (1.0 - probability))
    return drop


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

def accumulate_step(family, config, weights, x, labels, micro, ops, step,
                    dropout):
    """The mean over micro-batches of each micro-batch's mean token loss;
    each micro-batch's backward accumulates its gradients (scaled by
    1 / micro) into the f32 parameters' .grad, as the training step does.
    `dropout` maps the model's dropout kinds ("dropout",
    "attention_dropout") to their probabilities."""
    total = 0.0
    rows = labels.shape[0] // micro
    for m in range(micro):
        part = {k: v[m * rows:(m + 1) * rows] for k, v in x.items()}
        for kind, probability in dropout.items():
            if probability > 0:
                config = dict(config, **{kind: dropout_sites(probability, 0,
                                                             step, m)})
        logits = FAMILIES[family](weights, config, part, ops)["logits"]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            labels[m * rows:(m + 1) * rows].reshape(-1), ignore_index=-100)
        (loss / micro).backward()
        total += loss.item() / micro
    return total


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


def exported_config(model):
    """The dimensions of a test/python model exported to ONNX with its
    default two layers ("gpt2-onnx": GPT-2's Hugging Face layout)."""
    family, _, source = model.partition("-")
    if source != "onnx" or family != "gpt2":
        raise SystemExit(f"unknown model '{model}'")
    c = galvatron_models.config(family, 2)
    return dict(family="gpt", layers=c["n_layer"], hidden=c["n_embd"],
                heads=c["n_head"], seq=8, vocab=c["vocab_size"], eps=1e-5)


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
                    precision="fp32",
                    beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                    clip=1.0, optimizer="adamw", momentum=0.9, dropout=0.0,
                    attention_dropout=0.0)
    for option in argv[8:]:
        key, value = option.lstrip("-").split("=")
        kind = type(settings[key])
        settings[key] = value if kind is str else kind(float(value))
    config = PRESETS.get(model) or exported_config(model)
    family = config["family"]
    initial = read_safetensors(weights_path)
    tokens = np.fromfile(tokens_path, dtype="<u2")
    with open(log_path) as f:
        logged = [json.loads(line) for line in f]
    steps = len(logged)
    run = functools.partial(reference, family, config, initial, tokens, steps,
                            settings)
    if settings["precision"] == "fp32":
        losses, grads, final = run(FLOAT32, torch.float32)
        grad_tolerance = loss_tolerance = param_tolerance = TOLERANCE
        param_note = ""
    else:
        # bf16's spacing is 2^-7 of a value (8 significant bits). Two
        # implementations with the same cast points round the same f32
        # values, except where their f32 results (summed in other orders)
        # straddle a rounding boundary: there they differ by one bf16 unit.
        # Gradients are held to one unit over each tensor (2^-7 relative,
        # L2) or twice the reference's own spread if that is larger (the
        # same bf16 reference computed in f64 instead of f32: how far such
        # flips alone move it on this machine), losses (means over tokens
        # whose flips do not correlate) to 2^-10. AdamW turns flips in
        # near-zero gradients into updates of +-lr either way, so
        # parameters are held to twice the reference's spread.
        losses, grads, final = run(Rounded(torch.bfloat16), torch.float32)
        _, spread_grads, spread = run(Rounded(torch.bfloat16, torch.float64),
                                      torch.float64)
        floor = largest_error(spread, final, family, config)
        grad_floor = largest_error(spread_grads, grads, family, config)[1]
        grad_tolerance = max(2.0 ** -7, 2.0 * grad_floor)
        loss_tolerance = 2.0 ** -10
        param_tolerance = 2.0 * floor[1]
        param_note = (f" = twice the bf16 reference's spread {floor[1]:.1e} "
                      f"computed in f64, at {floor[0]}")

    # Gradients of the first step before clipping, as the optimizer=none run
    # keeps them.
    ours = read_checkpoint(grads_dir)
    ok, worst, count = True, 0.0, 0
    for name, reference_grad in grads.items():
        our_grad = ours[name + ".grad"].numpy()
        keep = varying(name, family, config, our_grad.shape)
        noise = np.abs(our_grad[~keep]).max(initial=0.0)
        bound = grad_tolerance * np.abs(reference_grad).max(initial=0.0)
        if noise > max(bound, 1e-6):
            print(f"{model}: gradient of {name} is {noise:.1e} where it must "
                  "vanish")
            ok = False
        error = relative_error(our_grad[keep], reference_grad[keep])
        count += 1
        if error > grad_tolerance:
            print(f"{model}: gradient of {name} DIFFERS FROM PyTorch "
                  f"(relative error {error:.1e})")
            ok = False
        worst = max(worst, error)
    print(f"{model}: {count} gradients "
          f"{'match' if ok else 'DIFFER FROM'} PyTorch "
          f"(max relative error {worst:.1e}, tolerance {grad_tolerance:.1e}"
          + ("" if settings["precision"] == "fp32" else
             f"; the reference's spread {grad_floor:.1e}") + ")")
    worst_loss = max(abs(entry["loss"] - loss) / abs(loss)
                     for entry, loss in zip(logged, losses))
    verdict = "match" if worst_loss <= loss_tolerance else "DIFFER FROM"
    ok &= worst_loss <= loss_tolerance
    print(f"{model}: losses of {steps} steps {verdict} PyTorch "
          f"(max relative error {worst_loss:.1e}, tolerance "
          f"{loss_tolerance:.1e})")
    trained = {name: value.numpy()
               for name, value in read_checkpoint(trained_dir).items()}
    worst_name, worst = largest_error(trained, final, family, config)
    name = "SGD" if settings["optimizer"] == "sgd" else "AdamW"
    if worst <= param_tolerance:
        print(f"{model}: {len(final)} parameters after {steps} {name} steps "
              f"match PyTorch (max relative error {worst:.1e} at "
              f"{worst_name}, tolerance {param_tolerance:.1e}{param_note})")
    else:
        print(f"{model}: {worst_name} after {steps} steps DIFFERS FROM "
              f"PyTorch (relative error {worst:.1e}, tolerance "
              f"{param_tolerance:.1e}{param_note})")
        ok = False
    return 0 if ok else 1


def reference(family, config, initial, tokens, steps, settings, ops, dtype):
    """Trains from `initial` with torch.autograd and torch.optim, master
    weights and optimizer state in `dtype`, the forward's precision given by
    `ops`: the loss of every step, the gradients of the first step and the
    parameters after the last (name -> float32 array)."""
    weights = {name: value.clone().to(dtype).requires_grad_(True)
               for name, value in initial.items()}
    compared = list(weights)
    if family == "bert":
        # The pooler does not reach the loss: the training program drops it.
        hidden = config["hidden"]
        weights["bert.pooler.dense.weight"] = torch.zeros(hidden, hidden,
                                                          dtype=dtype)
        weights["bert.pooler.dense.bias"] = torch.zeros(hidden, dtype=dtype)
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
    data = batches(tokens, family, settings["batch"] * settings["micro"],
                   config["seq"], config["vocab"], steps)
    losses, first_grads = [], {}
    for step, (x, labels) in enumerate(data, start=1):
        optimizer.zero_grad(set_to_none=True)
        losses.append(accumulate_step(family, config, weights, x, labels,
                                      settings["micro"], ops, step,
                                      {kind: settings[kind] for kind in
                                       ("dropout", "attention_dropout")}))
        trained = [w for w in weights.values() if w.grad is not None]
        if step == 1:
            first_grads = {name: value.grad.float().numpy().copy()
                           for name, value in weights.items()
                           if value.grad is not None}
        if settings["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(trained, settings["clip"])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings["lr"], settings["min_lr"],
                                        settings["warmup"], settings["decay"])
        optimizer.step()
    return losses, first_grads, {name: weights[name].detach().float().numpy()
                                 for name in compared}


def largest_error(actual, expected, family, config):
    """(name, error) of the tensor of `expected` that `actual` differs from
    most (relative, L2)."""
    errors = {name: relative_error(
        actual[name][varying(name, family, config, value.shape)],
        value[varying(name, family, config, value.shape)])
        for name, value in expected.items()}
    worst = max(errors, key=errors.get)
    return worst, errors[worst]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
