//===- Passes.td - Conversions out of the galvatron dialect -*- tablegen -*-===//

#ifndef GALVATRON_CONVERSION_PASSES_TD
#define GALVATRON_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowerToRuntime : Pass<"galvatron-lower-to-runtime", "::mlir::ModuleOp"> {
  let summary = "Lower a model function or a training schedule to a runtime program";
  let description = [{
    Replaces the module's galvatron parameters and its entry (a function,
    or a `galvatron.schedule` and the functions it calls) by a
    `grt.executable` holding the program of the module's pipeline stage,
    which every rank of the stage runs:

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
    - A schedule lowers as three blocks (forward and backward of one
      micro-batch, slotted; the optimizer step) and its phases as the
      program's schedule: a loop over the micro-batches whose size does not
      depend on their number. The forward's arguments are inputs per
      micro-batch (the caller gives every micro-batch's rows); its results
      are what the backward of the same micro-batch reads, kept in the
      micro-batch's slot; the optimizer's results are the outputs.
    - Buffers get arena offsets from their live ranges: parameters, state
      and constants packed at the bottom; with a schedule, above them one
      slot per micro-batch in flight (what a micro-batch keeps from its
      forward to its backward, and what else of its frame fits there) and
      the scratch its blocks share; the optimizer plans the same bytes
      afresh. Space is reused once free (greedy by size, best-fitting gap),
      offsets are multiples of `alignment`.

    An SPMD function (partitioned by `--galvatron-partition`) lowers once
    for all ranks of its stage: each collective's explicit device groups
    become a group family over mesh axes (`grt.group @g_2x1 sizes [2]
    strides [1]`; the groups must form one, cover the stage's ranks and lie
    inside the world), `galvatron.shard` becomes a slice and a sharded
    parameter its part of the whole, both starting at a rank-dependent
    offset (`#grt.term`: coefficient times the rank's position in its
    group), and a vocabulary split a rank-dependent `vocab_start`.
    Collectives along a dimension other than 0 go through a transpose,
    since the runtime's run along dimension 0. Pipeline messages
    (`galvatron.send` / `recv`) name the peer stage; the runtime pairs
    ranks of the same local index (ranks are stage-major, rank = stage ·
    devices / pp + local index). The stage is the one its layers'
    strategies name (0 without a plan).

    With `overlap`, communication is asynchronous (format 2.1): each
    collective and message is started as soon as its operand is ready (at
    most one layer ahead: a ZeRO-3 weight is gathered during the layer
    before) and waited for right before its first user (at most one layer
    later), keeping the order in which collectives start. The optimizer's
    in-place data-parallel all-reduces of gradient accumulators move into
    buckets of `bucket-mb` MiB started in the last micro-batch's backward
    right after the bucket's last gradient (`last_micro_batch`), waited for
    at the start of the optimizer block. The memory plan keeps the buffers
    of a started instruction live until its wait.

    The result verifies with the runtime's own validation and serializes to
    a program file with `galvatron-translate --emit-program`.
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"\"",
           "The function or schedule to lower (default: the module's "
           "galvatron.schedule, else @main)">,
    Option<"alignment", "alignment", "int64_t", /*default=*/"64",
           "Alignment of buffers in bytes (a power of two)">,
    Option<"modelDirectory", "model-dir", "std::string", /*default=*/"\"\"",
           "Directory that external parameter data is relative to">,
    Option<"worldSize", "world-size", "int64_t", /*default=*/"0",
           "Ranks of the job (0: the module plan's device count, else 1)">,
    Option<"overlap", "overlap", "bool", /*default=*/"true",
           "Start collectives and messages early and wait for them late "
           "(format 2.1), moving the data-parallel gradient sync into "
           "buckets of the last micro-batch's backward">,
    Option<"bucketMb", "bucket-mb", "double", /*default=*/"25.0",
           "Size of a data-parallel gradient bucket in MiB (PyTorch DDP's "
           "default)">
  ];
  let dependentDialects = ["::mlir::galvatron::grt::GrtDialect"];
}

#endif // GALVATRON_CONVERSION_PASSES_TD
