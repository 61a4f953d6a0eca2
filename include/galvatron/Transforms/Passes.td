//===- Passes.td - Galvatron cross-cutting passes ----------*- tablegen -*-===//

#ifndef GALVATRON_TRANSFORMS_PASSES_TD
#define GALVATRON_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def PrintTensorParallel : Pass<"galvatron-print-tensor-parallel",
                               "::mlir::ModuleOp"> {
  let summary = "Print how Megatron-style tensor parallelism shards each layer";
  let description = [{
    Runs the tensor-parallel analysis on every layer and prints, per layer:
    whether it can be sharded (and why not), the head counts that must
    divide among TP ranks, whether sequence parallelism applies, each
    linear's kind (column, row, replicated), each parameter's split, the
    communication points (reduce-partial = Megatron's g, replicated-input =
    Megatron's f, gathers and scatters, the vocabulary-parallel loss) and
    the vocabulary-parallel outputs. The IR is left unchanged.
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "File to print to ('-' is stdout)">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

#endif // GALVATRON_TRANSFORMS_PASSES_TD
