//===- RuntimeOps.td - The grt runtime-program dialect -----*- tablegen -*-===//
//
// The `grt` dialect spells out a compiled program as the runtime executes
// it: for each pipeline stage (shared by the stage's ranks), numbered
// buffers at byte offsets in one arena and instructions (kernel calls,
// collectives on group families over mesh axes, send/recv to a peer stage)
// in blocks that a schedule runs in a loop over micro-batches. `galvatron-translate --emit-program`
// serializes it one to one into the program file format
// (runtime/schema/program.fbs); the verifiers apply the runtime's own
// validation, so IR that verifies is a program the runtime accepts.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEOPS_TD
#define GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEOPS_TD

include "galvatron/Dialect/Galvatron/IR/GalvatronAttrs.td"
include "galvatron/Dialect/Runtime/IR/RuntimeBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def Grt_ExecutableOp : Grt_Op<"executable",
    [SymbolTable, NoTerminator, SingleBlock, IsolatedFromAbove]> {
  let summary = "A compiled program: group families and one program per stage";
  let description = [{
    `world_size` processes run the program in `stages` pipeline stages of
    world_size / stages ranks each (stage-major: rank = stage · ranks per
    stage + local index); every rank of a stage runs the stage's
    `grt.program`. Offsets and sizes of buffers are multiples of
    `alignment` bytes. `model` names the source model and
    `model_directory` is where external parameter data is looked up. An
    executable that holds some of the stages (one stage's lowering) is
    checked stage by stage; one that holds all of them is a whole program,
    whose stages' communication must match.

    ```mlir
    grt.executable world_size 4 alignment 64 stages 2 {
      grt.group @g2x1 sizes [2] strides [1]
      grt.program stage 0 arena 4096 { ... }
      grt.program stage 1 arena 4096 { ... }
    }
    ```
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntPositive]>:$world_size,
                       ConfinedAttr<I64Attr, [IntPositive]>:$alignment,
                       ConfinedAttr<I64Attr, [IntPositive]>:$stages,
                       OptionalAttr<StrAttr>:$model,
                       OptionalAttr<StrAttr>:$model_directory,
                       OptionalAttr<Galvatron_TrainingAttr>:$training);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `world_size` $world_size `alignment` $alignment `stages` $stages
    attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
}

def Grt_GroupOp : Grt_Op<"group", [Symbol, HasParent<"ExecutableOp">]> {
  let summary = "A family of device groups over mesh axes";
  let description = [{
    The group of world rank r holds the ranks that differ from r only in
    the coordinates (r / stride) % size of the axes (`sizes[i]`,
    `strides[i]`), in group order: the first axis varies slowest. Member i
    of a group holds part i of an all-gather or reduce-scatter. Tensor-
    parallel pairs of consecutive ranks are `sizes [2] strides [1]`; the
    pipeline group of a local index over 4 stages of 8 ranks is
    `sizes [4] strides [8]`. The description does not grow with the world.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, DenseI64ArrayAttr:$sizes,
                       DenseI64ArrayAttr:$strides);
  let assemblyFormat = "$sym_name `sizes` $sizes `strides` $strides attr-dict";
  let hasVerifier = 1;
}

def Grt_ProgramOp : Grt_Op<"program",
    [HasParent<"ExecutableOp">, NoTerminator, SingleBlock]> {
  let summary = "The program every rank of one pipeline stage runs";
  let description = [{
    `arena_size` bytes hold every buffer of a rank of the stage. The body
    declares the buffers, then the instructions: directly (run once, in
    order) or in `grt.block`s that a `grt.schedule` runs, then binds the
    outputs. The memory plan is checked when the program verifies, over
    the whole schedule: buffers live at the same time never share bytes,
    except a result computed in place over an operand the instruction
    reads for the last time.
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$stage,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$arena_size);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat =
      "`stage` $stage `arena` $arena_size attr-dict-with-keyword $body";
}

def Grt_BlockOp : Grt_Op<"block",
    [HasParent<"ProgramOp">, NoTerminator, SingleBlock]> {
  let summary = "Instructions that the schedule runs together";
  let description = [{
    A `slotted` block works on one micro-batch: it reads and writes the
    slotted buffers of the micro-batch's slot (the copy of slot k lies
    k · slot size bytes above the buffer's offset).
  }];
  let arguments = (ins StrAttr:$name, UnitAttr:$slotted);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat =
      "$name (`slotted` $slotted^)? attr-dict-with-keyword $body";
}

def Grt_ScheduleOp : Grt_Op<"schedule", [HasParent<"ProgramOp">]> {
  let summary = "How one run of the program runs its blocks";
  let description = [{
    Phases in order, each running its steps `iterations` times: a step
    names a block and the micro-batch of the first iteration (one more per
    iteration). Micro-batch m works in slot m % `slots`; slot 0 spans
    [`slot_offset`, `slot_offset` + `slot_size`) of the arena and slot k
    lies k · `slot_size` bytes above it. 1F1B on the first of two stages
    with 4 micro-batches:

    ```mlir
    grt.schedule micro_batches 4 slots 2 at 4096 size 1024
        [1 x [forward 0], 3 x [forward 1, backward 0], 1 x [backward 3],
         1 x [optimizer 0]]
    ```
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntPositive]>:$micro_batches,
                       ConfinedAttr<I64Attr, [IntPositive]>:$slots,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$slot_offset,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$slot_size,
                       ArrayAttr:$phases);
  let assemblyFormat = [{
    `micro_batches` $micro_batches `slots` $slots `at` $slot_offset
    `size` $slot_size custom<Phases>($phases) attr-dict
  }];
  let hasVerifier = 1;
}

def Grt_RankTermAttr : Grt_Attr<"RankTerm", "term"> {
  let summary = "A rank-dependent part of an integer";
  let description = [{
    `#grt.term<"starts"[1], 16 * @g2x1>` adds 16 times the rank's position
    in its group of family @g2x1 to element 1 of the integers `starts`.
  }];
  let parameters = (ins "StringAttr":$key, "int64_t":$index,
                        "int64_t":$coefficient, "FlatSymbolRefAttr":$group);
  let assemblyFormat =
      "`<` $key `[` $index `]` `,` $coefficient `*` $group `>`";
}

//===----------------------------------------------------------------------===//
// Buffers
//===----------------------------------------------------------------------===//

class Grt_BufferDefOp<string mnemonic, list<Trait> traits = []>
    : Grt_Op<mnemonic, !listconcat([HasParent<"ProgramOp">], traits)> {
  let results = (outs Grt_Buffer:$buffer);
}

def Grt_BufferOp : Grt_BufferDefOp<"buffer"> {
  let summary = "A temporary buffer at an arena offset";
  let description = [{
    A `slotted` buffer belongs to a micro-batch: `offset` is slot 0's copy.
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       UnitAttr:$slotted);
  let assemblyFormat =
      "`offset` $offset (`slotted` $slotted^)? attr-dict `:` type($buffer)";
}

def Grt_InputOp : Grt_BufferDefOp<"input"> {
  let summary = "A buffer the caller fills before the run";
  let description = [{
    With `per_micro_batch "block"` the caller gives the rows of every
    micro-batch stacked along dimension 0, and micro-batch m's rows are
    written into the buffer (of its slot) before each run of `block` for
    m. With `slotted` the buffer is slotted (see grt.buffer).
  }];
  let arguments = (ins StrAttr:$name,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       OptionalAttr<StrAttr>:$block, UnitAttr:$slotted);
  let assemblyFormat = [{
    $name `offset` $offset (`per_micro_batch` $block^)?
    (`slotted` $slotted^)? attr-dict `:` type($buffer)
  }];
}

def Grt_ParameterOp : Grt_BufferDefOp<"parameter"> {
  let summary = "A buffer holding a trainable weight";
  let description = [{
    Holds the source model's parameter `name`, or the slice of it starting
    at `slice_start` of a tensor of `full_shape` (a shard), plus the
    rank-dependent `slice_terms` (`#grt.term<"slice_start"[d], ...>`: which
    rank holds which slice). A full shape that refines the source tensor's
    (a fused [h, 3h] weight as [h, 3, h]) comes with the source's
    `source_shape`. Values come from
    a checkpoint, the `external` data, or the `init` initializer. With
    `state` it holds training state instead (a gradient accumulator, an
    optimizer moment, a counter): not a weight, started from `init`, saved
    in checkpoints. Either persists across runs and instructions may
    overwrite it.
  }];
  let arguments = (ins StrAttr:$name,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       OptionalAttr<Galvatron_InitAttr>:$init,
                       OptionalAttr<Galvatron_ExternalDataAttr>:$external,
                       OptionalAttr<DenseI64ArrayAttr>:$full_shape,
                       OptionalAttr<DenseI64ArrayAttr>:$slice_start,
                       OptionalAttr<TypedArrayAttrBase<Grt_RankTermAttr,
                                    "rank terms">>:$slice_terms,
                       UnitAttr:$state,
                       OptionalAttr<DenseI64ArrayAttr>:$source_shape);
  let assemblyFormat = "$name `offset` $offset attr-dict `:` type($buffer)";
}

def Grt_ConstantOp : Grt_BufferDefOp<"constant"> {
  let summary = "A buffer loaded with constant values before the run";
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       ElementsAttr:$value);
  let assemblyFormat =
      "`offset` $offset $value attr-dict `:` type($buffer)";
  let hasVerifier = 1;
}

def Grt_ViewOp : Grt_BufferDefOp<"view"> {
  let summary = "Another shape for bytes of a buffer (a free reshape)";
  let description = [{
    Reinterprets the bytes of `source` starting `byte_offset` bytes into it.
    The source is a buffer of its own, not a view.
  }];
  let arguments = (ins Grt_Buffer:$source,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$byte_offset);
  let assemblyFormat = [{
    $source `at` $byte_offset attr-dict `:` type($source) `to` type($buffer)
  }];
}

//===----------------------------------------------------------------------===//
// Instructions
//===----------------------------------------------------------------------===//

/// Instructions sit in a program (run once, in order) or in its blocks.
defvar Grt_InstructionParent = ParentOneOf<["ProgramOp", "BlockOp"]>;

/// `async N` on a collective, send or recv: the instruction is only
/// started (format 2.1) and completes at the `grt.wait N` after it; its
/// buffers stay its own until then. Consecutive starts may share an event
/// (they complete together). `last_micro_batch`: started only in the
/// schedule's last micro-batch (the data-parallel gradient sync of the
/// last backward, waited for in the optimizer block).
defvar Grt_EventArgs = OptionalAttr<ConfinedAttr<I64Attr, [IntNonNegative]>>;

def Grt_KernelOp : Grt_Op<"kernel",
    [Grt_InstructionParent, AttrSizedOperandSegments]> {
  let summary = "Calls a kernel of the runtime";
  let description = [{
    Runs the kernel named `kernel` (runtime/include/galvatron/Runtime/
    Kernels.def), reading `inputs` and writing `outputs`, configured by
    `config`: integers (or booleans), floats and `array<i64>` lists, plus
    the rank-dependent `terms` of integers. `layer` names the source layer
    for profiles and diagnostics.

    ```mlir
    grt.kernel "softmax" ins(%0 : memref<2x8xf32>) outs(%1 : memref<2x8xf32>)
        {axis = -1 : i64} layer "h.0"
    grt.kernel "slice" ins(%x : memref<4x8xf32>) outs(%y : memref<2x8xf32>)
        {starts = array<i64: 0, 0>, limits = array<i64: 2, 8>,
         strides = array<i64: 1, 1>}
        terms [#grt.term<"starts"[0], 2 * @g2x1>,
               #grt.term<"limits"[0], 2 * @g2x1>]
    ```
  }];
  let arguments = (ins StrAttr:$kernel, Variadic<Grt_Buffer>:$inputs,
                       Variadic<Grt_Buffer>:$outputs, DictionaryAttr:$config,
                       OptionalAttr<TypedArrayAttrBase<Grt_RankTermAttr,
                                    "rank terms">>:$terms,
                       OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    $kernel `ins` `(` ($inputs^ `:` type($inputs))? `)`
    `outs` `(` $outputs `:` type($outputs) `)` $config
    (`terms` $terms^)? (`layer` $layer^)? attr-dict
  }];
  let hasVerifier = 1;
}

class Grt_CollectiveOp<string mnemonic, string summaryText>
    : Grt_Op<mnemonic, [Grt_InstructionParent,
                        DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = summaryText;
}

class Grt_ReducingCollectiveOp<string mnemonic, string summaryText>
    : Grt_CollectiveOp<mnemonic, summaryText> {
  let arguments = (ins Grt_ReduceKind:$reduce, Grt_Buffer:$input,
                       Grt_Buffer:$output, FlatSymbolRefAttr:$group,
                       OptionalAttr<StrAttr>:$layer, Grt_EventArgs:$event,
                       UnitAttr:$last_micro_batch);
  let assemblyFormat = [{
    $reduce `ins` `(` $input `:` type($input) `)`
    `outs` `(` $output `:` type($output) `)` `group` $group
    (`layer` $layer^)? (`async` $event^)?
    (`last_micro_batch` $last_micro_batch^)? attr-dict
  }];
}

class Grt_MovingCollectiveOp<string mnemonic, string summaryText>
    : Grt_CollectiveOp<mnemonic, summaryText> {
  let arguments = (ins Grt_Buffer:$input, Grt_Buffer:$output,
                       FlatSymbolRefAttr:$group, OptionalAttr<StrAttr>:$layer,
                       Grt_EventArgs:$event, UnitAttr:$last_micro_batch);
  let assemblyFormat = [{
    `ins` `(` $input `:` type($input) `)`
    `outs` `(` $output `:` type($output) `)` `group` $group
    (`layer` $layer^)? (`async` $event^)?
    (`last_micro_batch` $last_micro_batch^)? attr-dict
  }];
}

def Grt_AllReduceOp : Grt_ReducingCollectiveOp<"all_reduce",
    "Every member's input reduced into every member's output">;
def Grt_ReduceScatterOp : Grt_ReducingCollectiveOp<"reduce_scatter",
    "Member i keeps part i (along dimension 0) of the reduced input">;
def Grt_AllGatherOp : Grt_MovingCollectiveOp<"all_gather",
    "The members' inputs concatenated along dimension 0 in group order">;
def Grt_AllToAllOp : Grt_MovingCollectiveOp<"all_to_all",
    "Part j of member i's input becomes part i of member j's output">;

def Grt_BroadcastOp : Grt_CollectiveOp<"broadcast",
    "The input of the member at position `root` copied to every member"> {
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$root,
                       Grt_Buffer:$input, Grt_Buffer:$output,
                       FlatSymbolRefAttr:$group, OptionalAttr<StrAttr>:$layer,
                       Grt_EventArgs:$event, UnitAttr:$last_micro_batch);
  let assemblyFormat = [{
    `root` $root `ins` `(` $input `:` type($input) `)`
    `outs` `(` $output `:` type($output) `)` `group` $group
    (`layer` $layer^)? (`async` $event^)?
    (`last_micro_batch` $last_micro_batch^)? attr-dict
  }];
}

def Grt_SendOp : Grt_Op<"send", [Grt_InstructionParent]> {
  let summary = "Sends a buffer to pipeline stage `peer`";
  let description = [{
    To the rank of stage `peer` with the sender's local index.
  }];
  let arguments = (ins Grt_Buffer:$input,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$peer,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$tag,
                       OptionalAttr<StrAttr>:$layer, Grt_EventArgs:$event);
  let assemblyFormat = [{
    $input `to` `stage` $peer `tag` $tag (`layer` $layer^)?
    (`async` $event^)? attr-dict `:` type($input)
  }];
}

def Grt_RecvOp : Grt_Op<"recv", [Grt_InstructionParent]> {
  let summary = "Receives a buffer from pipeline stage `peer`";
  let description = [{
    From the rank of stage `peer` with the receiver's local index.
  }];
  let arguments = (ins Grt_Buffer:$output,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$peer,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$tag,
                       OptionalAttr<StrAttr>:$layer, Grt_EventArgs:$event);
  let assemblyFormat = [{
    $output `from` `stage` $peer `tag` $tag (`layer` $layer^)?
    (`async` $event^)? attr-dict `:` type($output)
  }];
}

def Grt_WaitOp : Grt_Op<"wait", [Grt_InstructionParent]> {
  let summary = "Waits for the communication started with an event";
  let description = [{
    The instructions after it may use the buffers of the collectives and
    messages started with `async $event` (format 2.1): the compute queue
    waits for the communication queue here. Several waits in a row are
    one synchronization point; the starts issued between two kernels form
    one group (one NCCL group on GPUs).

    ```mlir
    grt.all_reduce sum ins(%g : memref<64xf32>) outs(%g : memref<64xf32>)
        group @dp async 0
    grt.kernel "gelu" ins(%a : memref<8xf32>) outs(%b : memref<8xf32>) {}
    grt.wait 0
    ```
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$event);
  let assemblyFormat = "$event attr-dict";
}

def Grt_OutputOp : Grt_Op<"output", [HasParent<"ProgramOp">]> {
  let summary = "Names a buffer as a program output";
  let arguments = (ins StrAttr:$name, Grt_Buffer:$buffer);
  let assemblyFormat = "$name $buffer attr-dict `:` type($buffer)";
}

#endif // GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEOPS_TD
