"""Forward time of GPT-2 small on Galvatron's CPU backend against PyTorch.

  /usr/bin/python3 benchmarks/gpt2_forward.py [--build build] [--threads N]
      [--batch 1] [--seq-len 1024] [--repeat 5] [--model gpt2-small]

Compiles the preset with galvatron-compile, runs it with galvatron-run (the
fastest of --repeat runs, parameters initialized from the seed), and times
the same forward pass in PyTorch eager mode (torch.nn.functional, the
computation of Hugging Face's GPT2LMHeadModel) on the same thread count,
also the fastest of --repeat runs. Prints both times and their ratio.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "Runtime", "Inputs"))
import preset_reference  # noqa: E402

# GPT-2 presets: layers, hidden, heads (lib/Models/ModelPresets.cpp).
SIZES = {"gpt2-small": (12, 768, 12), "gpt2-medium": (24, 1024, 16)}
VOCAB, POSITIONS = 50257, 1024


def galvatron_time(args, ids_path, workdir):
    program = os.path.join(workdir, "model.gxp")
    tools = os.path.join(args.build, "bin")
    subprocess.run([os.path.join(tools, "galvatron-compile"),
                    f"--model={args.model}", f"--batch={args.batch}",
                    f"--seq-len={args.seq_len}", "-o", program], check=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    run = subprocess.run(
        [os.path.join(tools, "galvatron-run"), program,
         f"--input=input_ids={ids_path}", f"--threads={args.threads}",
         f"--repeat={args.repeat}"] + (["--profile"] if args.profile else []),
        check=True, env=env, capture_output=True, text=True)
    print(run.stdout, end="")
    match = re.search(r"time: ([0-9.]+) ms \(fastest", run.stdout)
    return float(match.group(1)) / 1e3


def gpt2_weights(model, generator):
    """GPT-2's parameters under Hugging Face's names, initialized as GPT-2
    does (normal 0.02, unit norms, zero biases)."""
    layers, hidden, _ = SIZES[model]
    weights = {}

    def normal(name, *shape):
        weights[name] = torch.randn(*shape, generator=generator) * 0.02

    normal("transformer.wte.weight", VOCAB, hidden)
    normal("transformer.wpe.weight", POSITIONS, hidden)
    for i in range(layers):
        p = f"transformer.h.{i}"
        for norm in ("ln_1", "ln_2"):
            weights[f"{p}.{norm}.weight"] = torch.ones(hidden)
            weights[f"{p}.{norm}.bias"] = torch.zeros(hidden)
        for name, fan_in, fan_out in (("attn.c_attn", hidden, 3 * hidden),
                                      ("attn.c_proj", hidden, hidden),
                                      ("mlp.c_fc", hidden, 4 * hidden),
                                      ("mlp.c_proj", 4 * hidden, hidden)):
            normal(f"{p}.{name}.weight", fan_in, fan_out)
            weights[f"{p}.{name}.bias"] = torch.zeros(fan_out)
    weights["transformer.ln_f.weight"] = torch.ones(hidden)
    weights["transformer.ln_f.bias"] = torch.zeros(hidden)
    return weights


def torch_time(args, ids):
    torch.set_num_threads(args.threads)
    layers, hidden, heads = SIZES[args.model]
    weights = gpt2_weights(args.model, torch.Generator().manual_seed(0))
    config = dict(layers=layers, hidden=hidden, heads=heads, eps=1e-5)
    inputs = {"input_ids": torch.from_numpy(ids)}
    best = float("inf")
    with torch.no_grad():
        for _ in range(args.repeat):
            start = time.perf_counter()
            preset_reference.gpt(weights, config, inputs)
            best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--model", default="gpt2-small", choices=sorted(SIZES))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="print galvatron-run's per-kernel profile")
    args = parser.parse_args()

    ids = np.random.RandomState(0).randint(
        0, VOCAB, (args.batch, args.seq_len)).astype(np.int64)
    with tempfile.TemporaryDirectory() as workdir:
        ids_path = os.path.join(workdir, "ids.npy")
        np.save(ids_path, ids)
        ours = galvatron_time(args, ids_path, workdir)
    reference = torch_time(args, ids)
    print(f"{args.model} forward, batch {args.batch}, seq {args.seq_len}, "
          f"{args.threads} thread(s), fastest of {args.repeat}:")
    print(f"  galvatron CPU backend: {ours * 1e3:9.1f} ms")
    print(f"  PyTorch {torch.__version__} eager: {reference * 1e3:9.1f} ms")
    print(f"  ratio galvatron / PyTorch: {ours / reference:.2f}")


if __name__ == "__main__":
    main()
