//===- RuntimeOps.td - The grt runtime-program dialect -----*- tablegen -*-===//
//
// The `grt` dialect spells out a compiled program as the runtime executes
// it: for each rank, numbered buffers at byte offsets in one arena and an
// instruction stream of kernel calls, collectives on explicit device groups
// and send/recv to explicit peers. `galvatron-translate --emit-program`
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
  let summary = "A compiled program: device groups and one program per rank";
  let description = [{
    `world_size` is the number of processes the program runs on; offsets
    and sizes of buffers are multiples of `alignment` bytes. `model` names
    the source model and `model_directory` is where external parameter data
    is looked up.

    ```mlir
    grt.executable world_size 2 alignment 64 {
      grt.group @tp ranks [0, 1]
      grt.program rank 0 arena 4096 { ... }
      grt.program rank 1 arena 4096 { ... }
    }
    ```
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntPositive]>:$world_size,
                       ConfinedAttr<I64Attr, [IntPositive]>:$alignment,
                       OptionalAttr<StrAttr>:$model,
                       OptionalAttr<StrAttr>:$model_directory,
                       OptionalAttr<Galvatron_TrainingAttr>:$training);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `world_size` $world_size `alignment` $alignment attr-dict-with-keyword
    $body
  }];
  let hasRegionVerifier = 1;
}

def Grt_GroupOp : Grt_Op<"group", [Symbol, HasParent<"ExecutableOp">]> {
  let summary = "A device group that collectives run on";
  let description = [{
    World ranks in group order: member i of the group holds part i of an
    all-gather or reduce-scatter.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, DenseI64ArrayAttr:$ranks);
  let assemblyFormat = "$sym_name `ranks` $ranks attr-dict";
  let hasVerifier = 1;
}

def Grt_ProgramOp : Grt_Op<"program",
    [HasParent<"ExecutableOp">, NoTerminator, SingleBlock]> {
  let summary = "The program of one rank";
  let description = [{
    `arena_size` bytes hold every buffer of the rank; the memory plan is
    checked when the program verifies: buffers live at the same time never
    share bytes, except a result computed in place over an operand the
    instruction reads for the last time.
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$rank,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$arena_size);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat =
      "`rank` $rank `arena` $arena_size attr-dict-with-keyword $body";
  let hasRegionVerifier = 1;
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
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$offset);
  let assemblyFormat = "`offset` $offset attr-dict `:` type($buffer)";
}

def Grt_InputOp : Grt_BufferDefOp<"input"> {
  let summary = "A buffer the caller fills before the run";
  let arguments = (ins StrAttr:$name,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset);
  let assemblyFormat = "$name `offset` $offset attr-dict `:` type($buffer)";
}

def Grt_ParameterOp : Grt_BufferDefOp<"parameter"> {
  let summary = "A buffer holding a trainable weight";
  let description = [{
    Holds the source model's parameter `name`, or the slice of it starting
    at `slice_start` of a tensor of `full_shape` (a shard). A full shape
    that refines the source tensor's (a fused [h, 3h] weight as [h, 3, h])
    comes with the source's `source_shape`. Values come from
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

def Grt_KernelOp : Grt_Op<"kernel",
    [HasParent<"ProgramOp">, AttrSizedOperandSegments]> {
  let summary = "Calls a kernel of the runtime";
  let description = [{
    Runs the kernel named `kernel` (runtime/include/galvatron/Runtime/
    Kernels.def), reading `inputs` and writing `outputs`, configured by
    `config`: integers (or booleans), floats and `array<i64>` lists. `layer`
    names the source layer for profiles and diagnostics.

    ```mlir
    grt.kernel "softmax" ins(%0 : memref<2x8xf32>) outs(%1 : memref<2x8xf32>)
        {axis = -1 : i64} layer "h.0"
    ```
  }];
  let arguments = (ins StrAttr:$kernel, Variadic<Grt_Buffer>:$inputs,
                       Variadic<Grt_Buffer>:$outputs, DictionaryAttr:$config,
                       OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    $kernel `ins` `(` ($inputs^ `:` type($inputs))? `)`
    `outs` `(` $outputs `:` type($outputs) `)` $config
    (`layer` $layer^)? attr-dict
  }];
  let hasVerifier = 1;
}

class Grt_CollectiveOp<string mnemonic, string summaryText>
    : Grt_Op<mnemonic, [HasParent<"ProgramOp">,
                        DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = summaryText;
}

class Grt_ReducingCollectiveOp<string mnemonic, string summaryText>
    : Grt_CollectiveOp<mnemonic, summaryText> {
  let arguments = (ins Grt_ReduceKind:$reduce, Grt_Buffer:$input,
                       Grt_Buffer:$output, FlatSymbolRefAttr:$group,
                       OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    $reduce `ins` `(` $input `:` type($input) `)`
    `outs` `(` $output `:` type($output) `)` `group` $group
    (`layer` $layer^)? attr-dict
  }];
}

class Grt_MovingCollectiveOp<string mnemonic, string summaryText>
    : Grt_CollectiveOp<mnemonic, summaryText> {
  let arguments = (ins Grt_Buffer:$input, Grt_Buffer:$output,
                       FlatSymbolRefAttr:$group, OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    `ins` `(` $input `:` type($input) `)`
    `outs` `(` $output `:` type($output) `)` `group` $group
    (`layer` $layer^)? attr-dict
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
    "World rank `root`'s input copied to every member's output"> {
  let arguments = (ins ConfinedAttr<I64Attr, [IntNonNegative]>:$root,
                       Grt_Buffer:$input, Grt_Buffer:$output,
                       FlatSymbolRefAttr:$group, OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    `root` $root `ins` `(` $input `:` type($input) `)`
    `outs` `(` $output `:` type($output) `)` `group` $group
    (`layer` $layer^)? attr-dict
  }];
}

def Grt_SendOp : Grt_Op<"send", [HasParent<"ProgramOp">]> {
  let summary = "Sends a buffer to world rank `peer`";
  let arguments = (ins Grt_Buffer:$input,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$peer,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$tag,
                       OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    $input `to` $peer `tag` $tag (`layer` $layer^)? attr-dict `:`
    type($input)
  }];
}

def Grt_RecvOp : Grt_Op<"recv", [HasParent<"ProgramOp">]> {
  let summary = "Receives a buffer from world rank `peer`";
  let arguments = (ins Grt_Buffer:$output,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$peer,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$tag,
                       OptionalAttr<StrAttr>:$layer);
  let assemblyFormat = [{
    $output `from` $peer `tag` $tag (`layer` $layer^)? attr-dict `:`
    type($output)
  }];
}

def Grt_OutputOp : Grt_Op<"output", [HasParent<"ProgramOp">]> {
  let summary = "Names a buffer as a program output";
  let arguments = (ins StrAttr:$name, Grt_Buffer:$buffer);
  let assemblyFormat = "$name $buffer attr-dict `:` type($buffer)";
}

#endif // GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEOPS_TD
