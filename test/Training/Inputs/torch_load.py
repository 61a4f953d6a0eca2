#!/usr/bin/python3
"""Loads the weights of a checkpoint by name into the PyTorch module of
test/python/galvatron_models.py that mirrors the preset (Hugging Face's
GPT2LMHeadModel or LlamaForCausalLM, configured like the preset) with
load_state_dict, runs it on the inputs and compares its logits with the
ones galvatron-run computed.

  torch_load.py MODEL WEIGHTS INPUT_IDS.npy LOGITS.npy

WEIGHTS is a checkpoint directory (galvatron-run --checkpoint), a
safetensors file or a Hugging Face index (*.safetensors.index.json).
Exits 1 unless every parameter of the module is loaded, nothing in the
file is left over, and the logits agree within 1e-5 of their largest
magnitude.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Runtime", "Inputs"))
import galvatron_models  # noqa: E402
from preset_reference import PRESETS, read_safetensors  # noqa: E402

TOLERANCE = 1e-5


def read_weights(path):
    """The weights of a checkpoint (its model*.safetensors files), of a
    Hugging Face index's shards, or of one file."""
    if os.path.isdir(path):
        with open(os.path.join(path, "manifest.json")) as f:
            manifest = json.load(f)
        folder = os.path.join(path, manifest["checkpoint"])
        files = [name for name in manifest["files"]
                 if name.startswith("model") and name.endswith(".safetensors")]
    elif path.endswith(".json"):
        folder = os.path.dirname(path)
        with open(path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        folder, files = "", [path]
    tensors = {}
    for name in files:
        tensors.update(read_safetensors(os.path.join(folder, name)))
    return tensors


def module_for(model, weights):
    c = PRESETS[model]
    if c["family"] == "gpt":
        return galvatron_models.GPT2LMHeadModel(dict(
            vocab_size=c["vocab"], n_positions=c["seq"], n_embd=c["hidden"],
            n_head=c["heads"], n_layer=c["layers"]))
    inner = weights["model.layers.0.mlp.gate_proj.weight"].shape[0]
    return galvatron_models.LlamaForCausalLM(dict(
        vocab_size=c["vocab"], hidden_size=c["hidden"], intermediate_size=inner,
        num_attention_heads=c["heads"], num_key_value_heads=c["kv_heads"],
        num_hidden_layers=c["layers"], max_position_embeddings=c["seq"],
        rms_norm_eps=c["eps"]))


def main(model, path, ids_path, logits_path):
    weights = read_weights(path)
    module = module_for(model, weights).eval()
    result = module.load_state_dict(weights, strict=False)
    # Left out: buffers, and weights tied to a loaded one (GPT-2's LM head
    # is its embedding).
    buffers = {name for name, _ in module.named_buffers()}
    variables = module.state_dict(keep_vars=True)
    missing = [name for name in result.missing_keys if name not in buffers and
               not any(variables[name] is variables[loaded] for loaded in weights)]
    if missing or result.unexpected_keys:
        sys.exit("%s: missing %s, unexpected %s" %
                 (model, missing, result.unexpected_keys))
    ids = torch.from_numpy(np.load(ids_path))
    with torch.no_grad():
        if PRESETS[model]["family"] == "gpt":
            logits = module(ids, torch.ones_like(ids))
        else:
            logits = module(ids)
    ours = np.load(logits_path)
    expected = logits.numpy()
    error = float(np.max(np.abs(ours - expected)) / np.max(np.abs(expected)))
    print("%s: PyTorch's %s loads the %d weights by name and computes the same "
          "logits (max relative error %.1e)" %
          (model, type(module).__name__, len(weights), error)
          if error <= TOLERANCE else "%s: logits DIFFER (%.1e)" % (model, error))
    return 0 if error <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
