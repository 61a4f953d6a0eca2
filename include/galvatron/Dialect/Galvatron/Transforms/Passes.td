//===- Passes.td - Galvatron dialect passes ----------------*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD
#define GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ModelStats : Pass<"galvatron-model-stats", "::mlir::ModuleOp"> {
  let summary = "Print per-layer and total parameter counts and forward FLOPs";
  let description = [{
    For every function that contains layers, prints one row per layer with
    the parameters it owns (a parameter belongs to the first layer reading
    it; later readers list it as shared), and its forward FLOPs counted from
    matrix work (multiply-add = 2; a GPT layer is 24·b·s·h² + 4·b·s²·h).
    Totals count every parameter once. The IR is left unchanged.
  }];
  let options = [
    Option<"json", "json", "bool", /*default=*/"false",
           "Print the statistics as JSON">,
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "File to print to ('-' is stdout)">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

#endif // GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD
