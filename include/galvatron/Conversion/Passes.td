//===- Passes.td - Conversions out of the galvatron dialect -*- tablegen -*-===//

#ifndef GALVATRON_CONVERSION_PASSES_TD
#define GALVATRON_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowerToRuntime : Pass<"galvatron-lower-to-runtime", "::mlir::ModuleOp"> {
  let summary = "Lower a galvatron model function to a runtime program";
  let description = [{
    Replaces the module's galvatron parameters and its entry function by a
    `grt.executable` holding the program of each rank (one rank for now):

    - Layers are flattened; every instruction keeps its layer's name.
    - Each value becomes a numbered buffer: function arguments become
      inputs, `galvatron.param` reads parameters (one buffer per
      parameter, however often it is read), `galvatron.constant` constants,
      `galvatron.reshape` a view of its operand's bytes, and every other op
      a kernel call (runtime/include/galvatron/Runtime/Kernels.def) writing
      fresh temporaries. Returned values are bound as outputs under the
      names in `galvatron.name`.
    - A kernel that may compute in place writes its result over an operand
      it reads for the last time (same bytes, not an input, parameter,
      constant or output).
    - Buffers get arena offsets from their live ranges: parameters and
      constants live throughout, inputs from the start to their last use,
      outputs from their definition to the end, temporaries from definition
      to last use. Space is reused once free (greedy by size, best-fitting
      gap), offsets are multiples of `alignment`.

    - With a `#galvatron.plan`, the job has the plan's device count and
      the program is rank `rank`'s. Pipeline messages go to the rank of
      the peer stage holding the same local index (ranks are stage-major:
      rank = stage · devices / pp + local index).

    The result verifies with the runtime's own validation and serializes to
    a program file with `galvatron-translate --emit-program`.
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"main\"",
           "The function to lower">,
    Option<"alignment", "alignment", "int64_t", /*default=*/"64",
           "Alignment of buffers in bytes (a power of two)">,
    Option<"modelDirectory", "model-dir", "std::string", /*default=*/"\"\"",
           "Directory that external parameter data is relative to">,
    Option<"rank", "rank", "int64_t", /*default=*/"0",
           "The world rank whose program this is (of the plan's devices)">
  ];
  let dependentDialects = ["::mlir::galvatron::grt::GrtDialect"];
}

#endif // GALVATRON_CONVERSION_PASSES_TD
