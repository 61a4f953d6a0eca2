#!/usr/bin/python3
"""Checks that galvatron trains the model a torch.onnx export came from.

  train_onnx_reference.py MODEL INITIAL.safetensors TOKENS LOG
      [--lr=X] [--momentum=X] [--weight-decay=X] [--mask-token=N]

MODEL is a test/python model exported with export_onnx.py --fresh (built
again here, seeded alike: galvatron_models.build(MODEL, fresh=True)).
INITIAL holds the parameters the import made (galvatron-run --save-params
before any step), LOG galvatron-run's log of its SGD steps on TOKENS.

Checks (1) that the import holds the module's parameters: the same names
and values, one tensor per parameter of the module (a tie the module has,
such as GPT-2's LM head and embedding, is one parameter; equal values that
torch.onnx merged are several; a linear layer's W that torch.onnx stored
transposed under a name of its own matches by value), and (2) that torch.optim.SGD on the module,
from the same values and on the batches galvatron-run makes, gives the loss
of every logged step within 1e-5 relative. Prints the parameter counts of
both and one line per check; exits 1 when one fails.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Runtime", "Inputs"))
import galvatron_models  # noqa: E402
from preset_reference import read_safetensors  # noqa: E402
from train_reference import batches  # noqa: E402

TOLERANCE = 1e-5


def count(tensors):
    return sum(int(np.prod(value.shape)) for value in tensors.values())


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    model_name, initial_path, tokens_path, log_path = argv[1:5]
    settings = {"lr": 0.1, "momentum": 0.0, "weight-decay": 0.0,
                "mask-token": -1.0}
    for option in argv[5:]:
        key, value = option.lstrip("-").split("=")
        settings[key] = float(value)
    module, inputs, names, _ = galvatron_models.build(model_name, fresh=True)
    batch, seq = inputs[0].shape
    vocab = galvatron_models.config(model_name)["vocab_size"]
    masked = model_name.startswith("bert")

    ok = True
    ours = {name: value.float().numpy()
            for name, value in read_safetensors(initial_path).items()}
    theirs = dict(module.named_parameters())
    print("%s: the import has %d parameters (%d values), PyTorch's module %d "
          "(%d values)" % (model_name, len(ours), count(ours), len(theirs),
                           count({n: p.detach() for n, p in theirs.items()})))
    # torch.onnx folds the W^T of a linear layer into a new initializer
    # named "onnx::MatMul_N": such a parameter stands for the module's W
    # whose transpose it holds.
    renamed = {}
    unnamed = [name for name in theirs if name not in ours]
    for name in sorted(set(ours) - set(theirs)):
        match = [source for source in unnamed
                 if theirs[source].dim() == 2 and name.startswith("onnx::") and
                 np.array_equal(ours[name], theirs[source].detach().numpy().T)]
        if len(match) == 1:
            renamed[match[0]] = name
            unnamed.remove(match[0])
    extra = sorted(set(ours) - set(theirs) - set(renamed.values()))
    if unnamed or extra:
        print("%s: parameters DIFFER: only in the import %s, only in PyTorch "
              "%s" % (model_name, extra, unnamed))
        ok = False
    for name in sorted(set(ours) & set(theirs)):
        if not np.array_equal(ours[name], theirs[name].detach().numpy()):
            print("%s: the import's initial %s DIFFERS" % (model_name, name))
            ok = False
    if ok:
        print("%s: names and initial values match PyTorch's (%d as the "
              "transposes that torch.onnx renamed)" % (model_name, len(renamed)))

    with open(log_path) as f:
        logged = [json.loads(line)["loss"] for line in f if line.strip()]
    tokens = np.fromfile(tokens_path, dtype="<u2")
    mask_token = int(settings["mask-token"])
    optimizer = torch.optim.SGD(module.parameters(), lr=settings["lr"],
                                momentum=settings["momentum"],
                                weight_decay=settings["weight-decay"])
    family = "bert" if masked else "gpt"
    data = batches(tokens, family, batch, seq, vocab, len(logged),
                   mask_token=mask_token if mask_token >= 0 else vocab - 1)
    worst = 0.0
    for step, ((x, labels), loss_logged) in enumerate(zip(data, logged), 1):
        optimizer.zero_grad(set_to_none=True)
        arguments = {"input_ids": x["input_ids"],
                     "token_type_ids": torch.zeros_like(x["input_ids"]),
                     "attention_mask": torch.ones_like(x["input_ids"])}
        logits = module(*(arguments[name] for name in names))
        loss = F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1),
                               ignore_index=-100)
        loss.backward()
        optimizer.step()
        worst = max(worst, abs(loss_logged - loss.item()) / abs(loss.item()))
    good = worst <= TOLERANCE
    print("%s: losses of %d SGD steps %s PyTorch's (max relative error %.1e)"
          % (model_name, len(logged), "match" if good else "DIFFER FROM",
             worst))
    return 0 if ok and good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
