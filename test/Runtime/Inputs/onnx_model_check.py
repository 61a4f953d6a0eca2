"""Runs a torch.onnx export of a GPT-2/LLaMA/BERT/T5/ViT-shaped model through
galvatron-compile and galvatron-run and compares with PyTorch.

    onnx_model_check.py MODEL DIR --compile C --run R [--external-data]
        [--batch B] [--seq S]

Builds the model of test/python/galvatron_models.py (fixed seed), exports it
with test/python/export_onnx.py into DIR, compiles the .onnx file (its
weights stay in the file, or in DIR with --external-data, and galvatron-run
reads them from there), runs it on the model's example inputs and compares
every output with the PyTorch module's: max |ours - torch| / max |torch|
must stay within 1e-4. Positions an attention_mask pads out are left out of
a causal model's comparison: a padded query there sees no unmasked key, its
attention is undefined (Hugging Face's GPT-2 then attends to later keys
through float overflow).
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, "..", "..", "python")
sys.path.insert(0, PYTHON)
sys.path.insert(0, HERE)
import galvatron_models  # noqa: E402
import preset_reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=galvatron_models.MODELS)
    parser.add_argument("directory")
    parser.add_argument("--compile", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--external-data", action="store_true")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=8)
    args = parser.parse_args()

    os.makedirs(args.directory, exist_ok=True)
    onnx_path = os.path.join(args.directory, args.model + ".onnx")
    program = os.path.join(args.directory, args.model + ".gxp")
    export = [sys.executable, os.path.join(PYTHON, "export_onnx.py"), args.model,
              onnx_path, f"--batch={args.batch}", f"--seq={args.seq}"]
    if args.external_data:
        export.append("--external-data")
    subprocess.run(export, check=True)
    subprocess.run([args.compile, onnx_path, "-o", program, "--quiet"],
                   check=True)

    model, inputs, input_names, output_names = galvatron_models.build(
        args.model, batch=args.batch, seq=args.seq)
    command = [args.run, program, "--quiet", "--output-dir",
               os.path.join(args.directory, "out")]
    for name, value in zip(input_names, inputs):
        path = os.path.join(args.directory, name + ".npy")
        np.save(path, value.numpy())
        command.append(f"--input={name}={path}")
    subprocess.run(command, check=True)

    with torch.no_grad():
        expected = model(*inputs)
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    kept = None
    if args.model in ("gpt2", "llama") and "attention_mask" in input_names:
        kept = inputs[input_names.index("attention_mask")].numpy().astype(bool)
    matches = [preset_reference.compare(
                   args.model, name,
                   np.load(os.path.join(args.directory, "out", name + ".npy")),
                   reference.numpy(), kept)
               for name, reference in zip(output_names, expected)]
    return 0 if all(matches) else 1

if __name__ == "__main__":
    sys.exit(main())
