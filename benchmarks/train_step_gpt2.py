"""Training-step time of GPT-2 small on Galvatron's CPU backend against PyTorch.

  /usr/bin/python3 benchmarks/train_step_gpt2.py [--build build] [--threads N]
      [--batch 1] [--seq-len 256] [--steps 3] [--model gpt2-small]

Compiles the preset's training step (galvatron-compile --train: cross-entropy
loss, backward, global-norm clipping, AdamW) and runs --steps steps on
synthetic tokens with galvatron-run; then runs the same step in PyTorch
eager mode (the forward of Hugging Face's GPT2LMHeadModel in
torch.nn.functional, loss.backward(), clip_grad_norm_, torch.optim.AdamW) on
the same thread count. Each side reports its fastest step (the first one
warms caches and allocators up); prints both and their ratio.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "Runtime", "Inputs"))
import preset_reference  # noqa: E402
from gpt2_forward import SIZES, VOCAB, gpt2_weights  # noqa: E402


def galvatron_step(args, workdir):
    program = os.path.join(workdir, "train.gxp")
    tools = os.path.join(args.build, "bin")
    subprocess.run([os.path.join(tools, "galvatron-compile"),
                    f"--model={args.model}", f"--batch={args.batch}",
                    f"--seq-len={args.seq_len}", "--train=lr=1e-4",
                    "-o", program], check=True)
    log = os.path.join(workdir, "log.jsonl")
    subprocess.run([os.path.join(tools, "galvatron-run"), program,
                    "--steps", str(args.steps), "--synthetic",
                    f"--threads={args.threads}", "--log", log], check=True)
    with open(log) as f:
        return min(json.loads(line)["seconds"] for line in f)


def torch_step(args):
    torch.set_num_threads(args.threads)
    layers, hidden, heads = SIZES[args.model]
    generator = torch.Generator().manual_seed(0)
    weights = gpt2_weights(args.model, generator)
    for value in weights.values():
        value.requires_grad_(True)
    optimizer = torch.optim.AdamW(list(weights.values()), lr=1e-4)
    config = dict(layers=layers, hidden=hidden, heads=heads, eps=1e-5)
    tokens = torch.randint(0, VOCAB, (args.batch, args.seq_len + 1),
                           generator=generator)
    inputs = {"input_ids": tokens[:, :-1]}
    best = float("inf")
    for _ in range(args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = preset_reference.gpt(weights, config, inputs)["logits"]
        loss = F.cross_entropy(logits.reshape(-1, VOCAB),
                               tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(weights.values()), 1.0)
        optimizer.step()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--model", default="gpt2-small", choices=sorted(SIZES))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        ours = galvatron_step(args, workdir)
    reference = torch_step(args)
    print(f"{args.model} training step (AdamW), batch {args.batch}, seq "
          f"{args.seq_len}, {args.threads} thread(s), fastest of {args.steps}:")
    print(f"  galvatron CPU backend: {ours * 1e3:9.1f} ms")
    print(f"  PyTorch {torch.__version__} eager: {reference * 1e3:9.1f} ms")
    print(f"  ratio galvatron / PyTorch: {ours / reference:.2f}")


if __name__ == "__main__":
    main()
