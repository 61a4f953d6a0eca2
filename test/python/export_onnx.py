"""Exports one of galvatron_models' modules to ONNX with torch.onnx.

    export_onnx.py MODEL OUT.onnx [--opset N] [--layers L] [--batch B]
        [--seq S] [--dynamic] [--external-data] [--strip-names] [--no-fold]
        [--fresh]

--dynamic marks batch and sequence dimensions symbolic ("batch",
"sequence"); --external-data moves every initializer into OUT's folder as
"<stem>.weights"; --strip-names clears the node names (as exporters without
scope names write them); --no-fold disables torch's constant folding; --fresh initializes the model as Hugging
Face initializes a new one (galvatron_models.initialize_fresh) instead of
with distinct values everywhere.
"""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402
import torch  # noqa: E402

import galvatron_models  # noqa: E402


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
    if args.strip_names or args.external_data:
        proto = onnx.load(args.output)
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
