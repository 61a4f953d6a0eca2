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

    An SPMD function (partitioned by `--galvatron-partition`) lowers for
    one `rank` of a `world-size` job: each collective runs on the one of
    its device groups that holds the rank (`grt.group @g0_1 ranks [0, 1]`,
    named after its members so programs of several ranks merge into one
    executable), `galvatron.shard` becomes a slice of the rank's part, and a
    parameter with `galvatron.shard` is bound to its part of the whole
    (`full_shape` / `slice_start`). Collectives along a dimension other
    than 0 go through a transpose, since the runtime's run along
    dimension 0.
    Pipeline messages (`galvatron.send` / `recv` to a stage) go to the rank
    of the peer stage with the same local index: ranks are stage-major,
    rank = stage · devices / pp + local index.

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
           "The world rank whose program to emit from an SPMD function">,
    Option<"worldSize", "world-size", "int64_t", /*default=*/"0",
           "Ranks of the job (0: the module plan's device count, else 1)">
  ];
  let dependentDialects = ["::mlir::galvatron::grt::GrtDialect"];
}

#endif // GALVATRON_CONVERSION_PASSES_TD
