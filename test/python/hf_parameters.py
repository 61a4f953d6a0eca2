"""Compares galvatron IR's parameters with a PyTorch model built from the
same Hugging Face config.json by galvatron_models.

    galvatron-translate --config cfg.json | python3 hf_parameters.py cfg.json
    python3 hf_parameters.py a.json=a.mlir b.json=b.mlir

reads the IR (on stdin, or the file after each config) and checks that its `galvatron.parameter` names and
shapes equal the torch module's named_parameters() (tied weights once, as
torch lists them). The torch module is built on the meta device, so
billion-parameter configs cost no memory. Exits 1 listing the differences;
prints "<config>: <N> parameters match" otherwise. --layers N overrides the block
count on both sides as galvatron-translate's --layers does.

The mapping from config fields to modules (defaults included) is written
here independently of galvatron's C++ reader.
"""

import argparse
import contextlib
import json
import os
import re
import sys

import torch

import galvatron_models as gm


@contextlib.contextmanager
def meta_device():
    """Creates every tensor of a module's construction on the meta device."""
    names = ["empty", "zeros", "ones", "randn", "rand", "full", "arange", "tensor"]
    originals = {name: getattr(torch, name) for name in names}

    def wrap(function):
        def create(*args, **kwargs):
            # Modules pass device=None explicitly.
            if kwargs.get("device") is None:
                kwargs["device"] = "meta"
            return function(*args, **kwargs)
        return create

    for name, function in originals.items():
        setattr(torch, name, wrap(function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(torch, name, function)


def build(cfg, layers):
    """The torch module of `cfg`'s architecture."""
    arch = cfg["architectures"][0]
    c = dict(cfg)
    if arch == "GPT2LMHeadModel":
        c.setdefault("n_positions", 1024)
        if layers:
            c["n_layer"] = layers
        return gm.GPT2LMHeadModel(c)
    if arch in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"):
        c.setdefault("num_key_value_heads",
                     8 if arch == "MistralForCausalLM" else c["num_attention_heads"])
        c.setdefault("rms_norm_eps", 1e-6)
        if arch == "Qwen2ForCausalLM":
            c["qkv_bias"] = True
        # Rotary tables are sized by the context; a short one suffices here.
        c["max_position_embeddings"] = 8
        if layers:
            c["num_hidden_layers"] = layers
        return gm.LlamaForCausalLM(c)
    if arch in ("BertModel", "BertForMaskedLM"):
        c.setdefault("type_vocab_size", 2)
        if layers:
            c["num_hidden_layers"] = layers
        return gm.BertModel(c) if arch == "BertModel" else gm.BertForMaskedLM(c)
    if arch == "T5ForConditionalGeneration":
        c.setdefault("relative_attention_max_distance", 128)
        if layers:
            c["num_layers"] = layers
        return gm.T5ForConditionalGeneration(c)
    if arch in ("ViTModel", "ViTForImageClassification"):
        c["num_labels"] = len(c.get("id2label", {})) or c.get("num_labels", 2)
        c.setdefault("num_channels", 3)
        if layers:
            c["num_hidden_layers"] = layers
        if arch == "ViTModel":
            return gm.ViTModel(c, add_pooling_layer=True)
        return gm.ViTForImageClassification(c)
    raise SystemExit("unsupported architecture " + arch)


def torch_parameters(cfg, layers):
    with meta_device():
        model = build(cfg, layers)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def ir_parameters(text):
    pattern = re.compile(r'galvatron\.parameter @"?([\w.]+)"? .*: tensor<([0-9x]+)x[a-z]+[0-9]*>')
    found = {}
    for match in pattern.finditer(text):
        found[match.group(1)] = tuple(int(d) for d in match.group(2).split("x"))
    return found


def compare(config_path, ir_text, layers):
    """Differences between the IR's parameters and the torch model's."""
    with open(config_path) as f:
        cfg = json.load(f)
    expected = torch_parameters(cfg, layers)
    actual = ir_parameters(ir_text)
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append("missing in the IR: %s %s" % (name, expected[name]))
        elif name not in expected:
            problems.append("not in the torch model: %s %s" % (name, actual[name]))
        elif expected[name] != actual[name]:
            problems.append("shape of %s: IR %s, torch %s" % (name, actual[name], expected[name]))
    values = sum(int(torch.Size(shape).numel()) for shape in expected.values())
    return problems, len(expected), values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+", metavar="CONFIG[=IR]",
                        help="a config and the IR file built from it (stdin "
                             "when only one config is given without IR)")
    parser.add_argument("--layers", type=int, default=0)
    args = parser.parse_args()
    failed = False
    for item in args.configs:
        config_path, _, ir_path = item.partition("=")
        if ir_path:
            with open(ir_path) as f:
                ir_text = f.read()
        elif len(args.configs) == 1:
            ir_text = sys.stdin.read()
        else:
            raise SystemExit("give CONFIG=IR for each of several configs")
        problems, count, values = compare(config_path, ir_text, args.layers)
        name = os.path.basename(config_path)
        if problems:
            failed = True
            print("%s: %d differences" % (name, len(problems)))
            print("\n".join("  " + problem for problem in problems[:20]))
            if len(problems) > 20:
                print("  ... and %d more" % (len(problems) - 20))
        else:
            print("%s: %d parameters match (%d values)" % (name, count, values))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
