"""Exports one of galvatron_models' modules to ONNX with torch.onnx.

    export_onnx.py MODEL OUT.onnx [--opset N] [--layers L] [--batch B]
        [--seq S] [--dynamic] [--external-data] [--strip-names] [--no-fold]
        [--fresh] [--no-identity]

--dynamic marks batch and sequence dimensions symbolic ("batch",
"sequence"); --external-data moves every initializer into OUT's folder as
"<stem>.weights"; --strip-names clears the node names (as exporters without
scope names write them); --no-fold disables torch's constant folding; --fresh initializes the model as Hugging
Face initializes a new one (galvatron_models.initialize_fresh) instead of
with distinct values everywhere; --no-identity removes Identity nodes (as
graph optimizers do), so that merged initializers are read directly.
"""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402
import torch  # noqa: E402

import galvatron_models  # noqa: E402


def remove_identities(graph):
    """Reads each Identity's input where its output was read."""
    source = {node.output[0]: node.input[0] for node in graph.node
              if node.op_type == "Identity"}
    graph_outputs = {output.name for output in graph.output}
    kept = [node for node in graph.node if node.op_type != "Identity" or
            node.output[0] in graph_outputs]
    for node in kept:
        for i, name in enumerate(node.input):
            while name in source and name not in graph_outputs:
                name = source[name]
            node.input[i] = name
    del graph.node[:]
    graph.node.extend(kept)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=galvatron_models.MODELS)
    parser.add_argument("output")
    parser.add_argument("--opset", type=int, default=14)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=8)
    parser.add_argument("--dynamic", action="store_true")
    parser.add_argument("--external-data", action="store_true")
    parser.add_argument("--strip-names", action="store_true")
    parser.add_argument("--no-fold", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--no-identity", action="store_true")
    args = parser.parse_args()

    model, inputs, input_names, output_names = galvatron_models.build(
        args.model, batch=args.batch, seq=args.seq, layers=args.layers,
        fresh=args.fresh)
    dynamic_axes = None
    if args.dynamic:
        dynamic_axes = {}
        for name, value in zip(input_names, inputs):
            dynamic_axes[name] = {0: "batch"} if value.dim() != 2 else {0: "batch", 1: "sequence"}
        for name in output_names:
            dynamic_axes[name] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, args.output, input_names=input_names,
                          output_names=output_names, opset_version=args.opset,
                          do_constant_folding=not args.no_fold,
                          dynamic_axes=dynamic_axes)
    if args.strip_names or args.external_data or args.no_identity:
        proto = onnx.load(args.output)
        if args.no_identity:
            remove_identities(proto.graph)
        if args.strip_names:
            for node in proto.graph.node:
                node.name = ""
        if args.external_data:
            stem = os.path.splitext(os.path.basename(args.output))[0]
            onnx.save_model(proto, args.output, save_as_external_data=True,
                            all_tensors_to_one_file=True,
                            location=stem + ".weights", size_threshold=0)
        else:
            onnx.save(proto, args.output)


if __name__ == "__main__":
    main()
