//===- GalvatronOps.td - Galvatron operations --------------*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONOPS_TD
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONOPS_TD

include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.td"
include "galvatron/Dialect/Galvatron/IR/GalvatronAttrs.td"
include "galvatron/Dialect/Galvatron/IR/GalvatronInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

// Parameters and state variables: reads are never reordered across writes.
def Galvatron_VariableResource : Resource<"::mlir::galvatron::VariableResource">;
// Point-to-point channels between pipeline stages: messages keep their order.
def Galvatron_ChannelResource : Resource<"::mlir::galvatron::ChannelResource">;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Galvatron_ParameterOp : Galvatron_Op<"parameter",
    [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "Declares a trainable weight";
  let description = [{
    Declares a weight by name, type, initializer and (for imported models) a
    reference to where its values already live. The IR never holds weight
    values. Names follow the source model (`transformer.h.0.attn.c_attn.weight`)
    so checkpoints map one to one.

    ```mlir
    galvatron.parameter @"transformer.wte.weight" : tensor<50257x768xf32>
        {init = #galvatron.init<normal(0.0, 0.02)>}
    ```
  }];
  let arguments = (ins
    SymbolNameAttr:$sym_name,
    TypeAttrOf<Galvatron_FloatTensor>:$type,
    OptionalAttr<Galvatron_InitAttr>:$init,
    OptionalAttr<Galvatron_ExternalDataAttr>:$external);
  let assemblyFormat = "$sym_name `:` $type attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
    /// Number of scalar values the parameter holds.
    int64_t getNumElements() { return getTensorType().getNumElements(); }
  }];
}

def Galvatron_ParamOp : Galvatron_Op<"param",
    [MemoryEffects<[MemRead<Galvatron_VariableResource>]>,
     DeclareOpInterfaceMethods<SymbolUserOpInterface>,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Reads a declared parameter";
  let description = [{
    Yields the current value of the `galvatron.parameter` named by `name`. A
    weight shared by two layers (a tied embedding and LM head) is read in
    both with the same name. The read has value semantics: a later
    `galvatron.assign` to the parameter does not change what it yielded.
    Its gradient goes to the parameter (the autodiff engine accumulates it
    into the parameter's gradient state).
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Training state
//===----------------------------------------------------------------------===//

def Galvatron_StateOp : Galvatron_Op<"state",
    [Symbol, HasParent<"::mlir::ModuleOp">,
     DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Declares a mutable training variable";
  let description = [{
    Training state that lives across steps and is not a trainable weight:
    gradient accumulators, optimizer moments, the step counter, the loss
    scale. `kind` says which (`gradient`, `optimizer`, `control`); state
    kept per parameter names it with `of`, so partitioning shards it like
    the parameter and checkpoints group it. Every state starts from its
    initializer and is saved in checkpoints next to the parameters.
    `galvatron.read_state` reads it, `galvatron.assign` writes it. Kept apart
    from `galvatron.parameter` so that parameter counts, memory accounting
    and weight loading only ever see trainable weights.

    ```mlir
    galvatron.state gradient @"w.grad" of @w : tensor<16x32xf32>
        {init = #galvatron.init<zeros>}
    galvatron.state control @"train.step" : tensor<i64>
        {init = #galvatron.init<zeros>}
    ```
  }];
  let arguments = (ins
    Galvatron_StateKind:$kind,
    SymbolNameAttr:$sym_name,
    TypeAttrOf<Galvatron_Tensor>:$type,
    Galvatron_InitAttr:$init,
    OptionalAttr<FlatSymbolRefAttr>:$parameter);
  let assemblyFormat =
      "$kind $sym_name (`of` $parameter^)? `:` $type attr-dict";
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Galvatron_ReadStateOp : Galvatron_Op<"read_state",
    [MemoryEffects<[MemRead<Galvatron_VariableResource>]>,
     DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reads a training state variable";
  let description = [{
    Yields the current value of the `galvatron.state` named by `name`, with
    value semantics (a later `galvatron.assign` does not change it). State
    is not differentiated.
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Galvatron_AssignOp : Galvatron_Op<"assign",
    [MemoryEffects<[MemWrite<Galvatron_VariableResource>]>,
     DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Overwrites a parameter or state variable";
  let description = [{
    Stores `value` into the `galvatron.parameter` or `galvatron.state` named
    by `name`; the types must match. Reads before the assignment keep the
    old value, reads after it see the new one. The optimizer step assigns
    parameters and moments, the backward pass gradient accumulators.
  }];
  let arguments = (ins FlatSymbolRefAttr:$name, Galvatron_Tensor:$value);
  let assemblyFormat = "$name `,` $value attr-dict `:` type($value)";
}

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def Galvatron_LayerOp : Galvatron_Op<"layer", [
    IsolatedFromAbove, RecursiveMemoryEffects,
    SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "One layer of a model: the unit of parallel strategy";
  let description = [{
    A transformer block (`encoder` or `decoder`) or one of the parts outside
    the blocks (`embedding`, `head`, `other`). The region's arguments are
    bound to the operands, and `galvatron.yield` gives the results: a layer
    reads nothing from above but parameters, so each layer can be costed,
    partitioned and recomputed on its own. An optional `strategy` holds the
    layer's hybrid-parallel strategy. A `backward` layer (printed after the
    kind) is the reverse-mode counterpart of the forward layer of the same
    name: it receives the gradients of that layer's results and its saved
    activations, and yields the gradients of its inputs.

    ```mlir
    %h = galvatron.layer decoder "transformer.h.0" (%x = %e : tensor<1x8x16xf32>)
        -> tensor<1x8x16xf32> {
      ...
      galvatron.yield %y : tensor<1x8x16xf32>
    }
    ```
  }];
  let arguments = (ins
    StrAttr:$layer_name,
    Galvatron_LayerKind:$kind,
    Variadic<AnyType>:$inputs,
    OptionalAttr<Galvatron_StrategyAttr>:$strategy,
    UnitAttr:$backward);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let skipDefaultBuilders = 1;
  let builders = [
    OpBuilder<(ins "::mlir::TypeRange":$resultTypes, "::llvm::StringRef":$name,
                   "LayerKind":$kind, "::mlir::ValueRange":$inputs)>
  ];
  let extraClassDeclaration = [{
    ::mlir::Block &getBodyBlock() { return getBody().front(); }
    /// Encoder and decoder layers are the repeated transformer blocks.
    bool isTransformerBlock() {
      return getKind() == LayerKind::encoder || getKind() == LayerKind::decoder;
    }
  }];
}

def Galvatron_YieldOp : Galvatron_Op<"yield",
    [Pure, Terminator, ReturnLike, HasParent<"LayerOp">]> {
  let summary = "Returns a layer's results";
  let arguments = (ins Variadic<AnyType>:$values);
  let builders = [OpBuilder<(ins), [{ /* nothing to yield */ }]>];
  let assemblyFormat = "attr-dict ($values^ `:` type($values))?";
}

//===----------------------------------------------------------------------===//
// Constants and casts
//===----------------------------------------------------------------------===//

def Galvatron_ConstantOp : Galvatron_Op<"constant",
    [ConstantLike, Pure, AllTypesMatch<["value", "result"]>]> {
  let summary = "A small constant tensor";
  let description = [{
    Scalars and small tensors (scales, masks folded at import). Weights are
    never constants: a constant holds at most 65536 elements.
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    static constexpr int64_t kMaxElements = 65536;
  }];
}

def Galvatron_CastOp : Galvatron_Op<"cast", [Galvatron_PositionwiseTPRule,
    Galvatron_Kernel, Pure, SameOperandsAndResultShape,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Converts the element type";
  let arguments = (ins Galvatron_Tensor:$input);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class Galvatron_UnaryOp<string mnemonic, list<Trait> traits = []>
    : Galvatron_Op<mnemonic,
        !listconcat([Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
                     Elementwise, SameOperandsAndResultType,
                     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>], traits)> {
  let arguments = (ins Galvatron_FloatTensor:$input);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Galvatron_NegOp : Galvatron_UnaryOp<"neg"> { let summary = "-x"; }
def Galvatron_AbsOp : Galvatron_UnaryOp<"abs"> { let summary = "|x|"; }
def Galvatron_ExpOp : Galvatron_UnaryOp<"exp"> { let summary = "e^x"; }
def Galvatron_LogOp : Galvatron_UnaryOp<"log"> { let summary = "ln x"; }
def Galvatron_SqrtOp : Galvatron_UnaryOp<"sqrt"> { let summary = "√x"; }
def Galvatron_RsqrtOp : Galvatron_UnaryOp<"rsqrt"> { let summary = "1/√x"; }
def Galvatron_ReciprocalOp : Galvatron_UnaryOp<"reciprocal"> {
  let summary = "1/x";
}
def Galvatron_TanhOp : Galvatron_UnaryOp<"tanh"> { let summary = "tanh x"; }
def Galvatron_ErfOp : Galvatron_UnaryOp<"erf"> { let summary = "erf x"; }
def Galvatron_SigmoidOp : Galvatron_UnaryOp<"sigmoid"> {
  let summary = "1/(1+e^-x)";
}
def Galvatron_ReluOp : Galvatron_UnaryOp<"relu"> { let summary = "max(x, 0)"; }
def Galvatron_SiluOp : Galvatron_UnaryOp<"silu"> {
  let summary = "x·sigmoid(x) (SwiGLU's gate)";
}
def Galvatron_GeluOp : Galvatron_UnaryOp<"gelu"> {
  let summary = "GELU, exact (erf) or tanh approximation";
  let arguments = (ins Galvatron_FloatTensor:$input,
      DefaultValuedAttr<Galvatron_GeluApproximation,
                        "GeluApproximation::none">:$approximate);
  let assemblyFormat =
      "$input (`approximate` `=` $approximate^)? attr-dict `:` type($result)";
}

class Galvatron_BinaryOp<string mnemonic, list<Trait> traits = []>
    : Galvatron_Op<mnemonic,
        !listconcat([Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
                     SameOperandsElementType, InferTypeOpAdaptor,
                     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>], traits)> {
  let description = [{
    Elementwise with NumPy broadcasting: the result shape is the broadcast of
    the operand shapes.
  }];
  let arguments = (ins Galvatron_Tensor:$lhs, Galvatron_Tensor:$rhs);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat =
      "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def Galvatron_AddOp : Galvatron_BinaryOp<"add", [Commutative]> {
  let summary = "a + b";
}
def Galvatron_SubOp : Galvatron_BinaryOp<"sub"> { let summary = "a - b"; }
def Galvatron_MulOp : Galvatron_BinaryOp<"mul", [Commutative]> {
  let summary = "a · b";
}
def Galvatron_DivOp : Galvatron_BinaryOp<"div"> { let summary = "a / b"; }
def Galvatron_PowOp : Galvatron_BinaryOp<"pow"> { let summary = "a ^ b"; }
def Galvatron_MaxOp : Galvatron_BinaryOp<"max", [Commutative]> {
  let summary = "max(a, b)";
}
def Galvatron_MinOp : Galvatron_BinaryOp<"min", [Commutative]> {
  let summary = "min(a, b)";
}

def Galvatron_SelectOp : Galvatron_Op<"select", [Galvatron_PositionwiseTPRule,
    Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "cond ? a : b, elementwise with broadcasting";
  let arguments = (ins Galvatron_BoolTensor:$condition, Galvatron_Tensor:$lhs,
                       Galvatron_Tensor:$rhs);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = [{
    $condition `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

def Galvatron_CompareOp : Galvatron_Op<"compare",
    [Galvatron_Kernel, Pure, SameOperandsElementType, InferTypeOpAdaptor]> {
  let summary = "Elementwise comparison with broadcasting";
  let description = [{
    `predicate` (eq, ne, lt, le, gt, ge) of `lhs` and `rhs`, elementwise
    with NumPy broadcasting; the result is i1. Comparisons with NaN are
    false except `ne`.

    ```mlir
    %m = galvatron.compare gt, %x, %zero : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xi1>
    ```
  }];
  let arguments = (ins Galvatron_ComparePredicate:$predicate,
                       Galvatron_Tensor:$lhs, Galvatron_Tensor:$rhs);
  let results = (outs Galvatron_BoolTensor:$result);
  let assemblyFormat = [{
    $predicate `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

def Galvatron_MatmulOp : Galvatron_Op<"matmul", [Galvatron_TPRule,
    Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    SameOperandsElementType, DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>,
    DeclareOpInterfaceMethods<Galvatron_FlopCountOpInterface>]> {
  let summary = "Batched matrix product with NumPy batch broadcasting";
  let description = [{
    `lhs` is [..., M, K] (or [..., K, M] with `transpose_lhs`), `rhs` is
    [..., K, N] (or [..., N, K] with `transpose_rhs`); leading batch
    dimensions broadcast. The result is [..., M, N].
  }];
  let arguments = (ins Galvatron_FloatTensor:$lhs, Galvatron_FloatTensor:$rhs,
      DefaultValuedAttr<BoolAttr, "false">:$transpose_lhs,
      DefaultValuedAttr<BoolAttr, "false">:$transpose_rhs);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def Galvatron_LinearOp : Galvatron_Op<"linear", [Galvatron_PositionwiseTPRule,
    Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    SameOperandsElementType, DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>,
    DeclareOpInterfaceMethods<Galvatron_FlopCountOpInterface>]> {
  let summary = "x·W + b: a fully connected layer";
  let description = [{
    `input` is [..., K]; `weight` is [K, N] (Hugging Face Conv1D layout) or,
    with `transpose_weight`, [N, K] (torch.nn.Linear layout); the optional
    `bias` is [N]. The result is [..., N]. Tensor parallelism splits N
    (column parallel) or K (row parallel).
  }];
  let arguments = (ins Galvatron_FloatTensor:$input,
      Galvatron_FloatTensor:$weight, Optional<Galvatron_FloatTensor>:$bias,
      DefaultValuedAttr<BoolAttr, "false">:$transpose_weight);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let extraClassDeclaration = [{
    int64_t getInFeatures() {
      auto shape = getWeight().getType().getShape();
      return getTransposeWeight() ? shape[1] : shape[0];
    }
    int64_t getOutFeatures() {
      auto shape = getWeight().getType().getShape();
      return getTransposeWeight() ? shape[0] : shape[1];
    }
  }];
}

def Galvatron_EmbeddingOp : Galvatron_Op<"embedding",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Looks up rows of a table";
  let description = [{
    `table` is [V, D], `indices` is any shape of integers in [0, V); the
    result is indices.shape + [D].

    With `vocab_groups` the table is one block of rows of a vocabulary split
    over each group (vocabulary parallelism): member i holds rows
    [i·V, (i+1)·V) of the group's V·n, indices lie in [0, V·n), and an index
    outside the member's block gives a zero row, so that the members' results
    sum to the lookup in the whole table. `vocab_size` (at most V·n) is the
    vocabulary when the blocks pad it (a vocabulary the members do not
    divide): indices lie in [0, vocab_size) and the rows past it are
    padding.

    ```mlir
    %e = galvatron.embedding %table, %ids vocab_groups [[0, 1]] : (tensor<128x64xf32>, tensor<4x8xi64>) -> tensor<4x8x64xf32>
    ```
  }];
  let arguments = (ins Galvatron_FloatTensor:$table,
                       Galvatron_IndexTensor:$indices,
                       OptionalAttr<Galvatron_DeviceGroupsAttr>:$vocab_groups,
                       OptionalAttr<Galvatron_VocabSizeAttr>:$vocab_size);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $indices (`vocab_groups` custom<DeviceGroups>($vocab_groups)^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let builders = [OpBuilder<(ins "Value":$table, "Value":$indices), [{
    build($_builder, $_state, table, indices, ArrayAttr(), IntegerAttr());
  }]>];
}

//===----------------------------------------------------------------------===//
// Normalization and softmax
//===----------------------------------------------------------------------===//

def Galvatron_LayerNormOp : Galvatron_Op<"layer_norm",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
    SameOperandsElementType, AllTypesMatch<["input", "result"]>,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Layer normalization over the last dimension";
  let arguments = (ins Galvatron_FloatTensor:$input,
      Galvatron_FloatTensor:$weight, Optional<Galvatron_FloatTensor>:$bias,
      DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galvatron_RMSNormOp : Galvatron_Op<"rms_norm",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
    SameOperandsElementType, AllTypesMatch<["input", "result"]>,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "RMS normalization over the last dimension (LLaMA, T5)";
  let arguments = (ins Galvatron_FloatTensor:$input,
      Galvatron_FloatTensor:$weight,
      DefaultValuedAttr<F64Attr, "1e-6">:$epsilon);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galvatron_SoftmaxOp : Galvatron_Op<"softmax",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
    SameOperandsAndResultType,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Softmax along one axis";
  let arguments = (ins Galvatron_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

def Galvatron_ReshapeOp : Galvatron_Op<"reshape",
    [Galvatron_PositionwiseTPRule, Pure, SameOperandsAndResultElementType,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Reinterprets the shape; element count is preserved";
  let arguments = (ins Galvatron_Tensor:$input);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasFolder = 1;
  let hasVerifier = 1;
}

def Galvatron_TransposeOp : Galvatron_Op<"transpose",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    SameOperandsAndResultElementType,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Permutes dimensions: result dim i is input dim perm[i]";
  let arguments = (ins Galvatron_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat =
      "$input `,` $perm attr-dict `:` type($input) `->` type($result)";
  let hasFolder = 1;
}

def Galvatron_SliceOp : Galvatron_Op<"slice",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    SameOperandsAndResultElementType,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Static strided slice: [start, limit) with stride per dim";
  let arguments = (ins Galvatron_Tensor:$input, DenseI64ArrayAttr:$starts,
      DenseI64ArrayAttr:$limits, DenseI64ArrayAttr:$strides);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = [{
    $input $starts `to` $limits `step` $strides attr-dict `:`
    type($input) `->` type($result)
  }];
  let hasFolder = 1;
}

def Galvatron_ConcatOp : Galvatron_Op<"concat",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    SameOperandsAndResultElementType,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Concatenates tensors along an axis";
  let arguments = (ins Variadic<Galvatron_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat =
      "$inputs attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

def Galvatron_SplitOp : Galvatron_Op<"split",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Splits a tensor along an axis into pieces of given sizes";
  let arguments = (ins Galvatron_Tensor:$input, I64Attr:$axis,
                       DenseI64ArrayAttr:$sizes);
  let results = (outs Variadic<Galvatron_Tensor>:$results);
  let assemblyFormat =
      "$input attr-dict `:` type($input) `->` type($results)";
}

def Galvatron_BroadcastOp : Galvatron_Op<"broadcast",
    [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
    SameOperandsAndResultElementType,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Broadcasts to a larger shape under NumPy rules";
  let arguments = (ins Galvatron_Tensor:$input);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasFolder = 1;
  let hasVerifier = 1;
}

def Galvatron_PadOp : Galvatron_Op<"pad",
    [Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    SameOperandsAndResultElementType,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Pads with a constant: before, after and between elements";
  let description = [{
    Per dimension, places the input's elements `low` positions from the
    start, with `interior` padding elements between neighbours and `high`
    after the last; every other element is `value`. A dimension of size n
    becomes low + n + (n - 1)·interior + high. The adjoint of a strided
    slice is a pad with low = start and interior = stride - 1.

    ```mlir
    %p = galvatron.pad %x low [0, 1] high [0, 2] interior [0, 1]
        : tensor<2x3xf32> -> tensor<2x8xf32>
    ```
  }];
  let arguments = (ins Galvatron_Tensor:$input, DenseI64ArrayAttr:$low,
      DenseI64ArrayAttr:$high, DenseI64ArrayAttr:$interior,
      DefaultValuedAttr<F64Attr, "0.0">:$value);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = [{
    $input `low` $low `high` $high `interior` $interior attr-dict `:`
    type($input) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class Galvatron_ReduceOp<string mnemonic>
    : Galvatron_Op<mnemonic,
        [Galvatron_PositionwiseTPRule, Galvatron_Kernel, Pure,
        InferTypeOpAdaptor, SameOperandsAndResultElementType,
         DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let arguments = (ins Galvatron_FloatTensor:$input,
      DenseI64ArrayAttr:$axes,
      DefaultValuedAttr<BoolAttr, "false">:$keep_dims);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $axes attr-dict `:` type($input) `->` type($result)";
}

def Galvatron_ReduceSumOp : Galvatron_ReduceOp<"reduce_sum"> {
  let summary = "Sum over axes";
}
def Galvatron_ReduceMeanOp : Galvatron_ReduceOp<"reduce_mean"> {
  let summary = "Mean over axes";
}
def Galvatron_ReduceMaxOp : Galvatron_ReduceOp<"reduce_max"> {
  let summary = "Maximum over axes";
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

def Galvatron_RotaryOp : Galvatron_Op<"rotary",
    [Galvatron_PositionwiseTPRule, Galvatron_DerivedKernel, Pure,
    SameOperandsAndResultType,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Rotary position embedding (RoPE)";
  let description = [{
    Rotates pairs of the first `rotary_dim` features of the last dimension
    by position · theta^(-2i/rotary_dim), positions counted along
    `seq_axis` from 0. Pairs are (i, i + rotary_dim/2) (LLaMA, GPT-NeoX
    rotate-half) or, with `interleaved`, (2i, 2i+1) (GPT-J).
  }];
  let arguments = (ins Galvatron_FloatTensor:$input, I64Attr:$seq_axis,
      DefaultValuedAttr<F64Attr, "10000.0">:$theta,
      OptionalAttr<I64Attr>:$rotary_dim,
      DefaultValuedAttr<BoolAttr, "false">:$interleaved);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getEffectiveRotaryDim() {
      auto dim = getRotaryDim();
      return dim ? *dim : getInput().getType().getShape().back();
    }
  }];
}

def Galvatron_AttentionOp : Galvatron_Op<"attention", [Galvatron_TPRule,
    Galvatron_DerivedKernel, Pure, Galvatron_DropoutMask,
    InferTypeOpAdaptor, DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>,
    DeclareOpInterfaceMethods<Galvatron_FlopCountOpInterface>]> {
  let summary = "Fused scaled dot-product attention";
  let description = [{
    softmax(scale · Q·Kᵀ + mask) · V per head. `query` is [B, Hq, S, D],
    `key` [B, Hkv, T, D], `value` [B, Hkv, T, Dv] with Hq a multiple of Hkv
    (grouped-query attention shares each key/value head among Hq/Hkv query
    heads: query head h reads key/value head floor(h / (Hq/Hkv)), the order
    of Hugging Face's `repeat_kv`). `mask`, when given, is added to the scores and broadcasts to
    [B, Hq, S, T] (padding masks, relative position biases). `causal` masks
    key positions after the query position. `scale` defaults to 1/√D. The
    result is [B, Hq, S, Dv].

    With `dropout` = p > 0 (training only; inference programs leave it
    out) the probabilities are dropped before the product with V, as
    `galvatron.dropout` drops a tensor: probability element e of the whole
    [B, Hq, S, T] tensor of the step's global batch is kept, scaled by
    1/(1 − p), by the counter-based generator of site `stream`; `shard`
    says where a rank's part lies after partitioning (heads under tensor
    parallelism, rows under data parallelism). The backward draws the
    same mask again: nothing is saved for it.
  }];
  let arguments = (ins Galvatron_FloatTensor:$query, Galvatron_FloatTensor:$key,
      Galvatron_FloatTensor:$value, Optional<Galvatron_FloatTensor>:$mask,
      DefaultValuedAttr<BoolAttr, "false">:$causal,
      OptionalAttr<F64Attr>:$scale,
      DefaultValuedAttr<F64Attr, "0.0">:$dropout,
      DefaultValuedAttr<I64Attr, "0">:$stream,
      OptionalAttr<DictionaryAttr>:$shard);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`,` $mask^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let builders = [
    // Attention without dropout.
    OpBuilder<(ins "::mlir::Value":$query, "::mlir::Value":$key,
                   "::mlir::Value":$value, "::mlir::Value":$mask,
                   "bool":$causal, "::mlir::FloatAttr":$scale), [{
      build($_builder, $_state, query, key, value, mask,
            $_builder.getBoolAttr(causal), scale, ::mlir::FloatAttr(),
            ::mlir::IntegerAttr(), ::mlir::DictionaryAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    double getEffectiveScale() {
      if (auto s = getScale()) return s->convertToDouble();
      return 1.0 / std::sqrt(double(getQuery().getType().getShape()[3]));
    }
  }];
}

def Galvatron_TrilMaskOp : Galvatron_Op<"tril_mask", [Galvatron_Kernel, Pure]> {
  let summary = "Lower-triangular boolean mask (causal attention, ONNX Trilu)";
  let description = [{
    For a result of shape [..., R, C] (rank >= 2),
    `result[..., i, j] = (j - i <= diagonal)`; leading dimensions repeat the
    same R x C mask. With `diagonal = 0` it marks the key positions a causal
    query may attend to, so `select(tril_mask, scores, -inf)` is a causal
    mask whatever the sequence length, without a constant of R·C elements.
    ONNX `Trilu(x, k)` keeps x where the mask with diagonal k is true
    (lower) or where the mask with diagonal k - 1 is false (upper).

    ```mlir
    %causal = galvatron.tril_mask {diagonal = 0} : tensor<1x1x8x8xi1>
    ```
  }];
  let arguments = (ins DefaultValuedAttr<I64Attr, "0">:$diagonal);
  let results = (outs Galvatron_BoolTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Galvatron_DropoutOp : Galvatron_Op<"dropout", [Pure,
    AllTypesMatch<["input", "result"]>, Galvatron_PositionwiseTPRule,
    Galvatron_Kernel, Galvatron_DropoutMask, DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Dropout: zeroes elements at random, scales the others up";
  let description = [{
    `result` = `input` · `mask` / (1 − `probability`), where the i1 `mask`
    keeps each element with probability 1 − `probability`. The mask is a
    function of the run's seed, the training step, `stream` (one per
    dropout site of the model, such as a layer's residual dropout) and the
    element's index in the whole tensor of the step's global batch, drawn
    by a counter-based generator: every parallel plan draws the serial
    run's mask. After partitioning, `shard` says where the part a rank
    holds lies in the whole tensor of one micro-batch, in the form of a
    parameter's `galvatron.shard` (`{full_shape = array<i64: ...>, splits =
    [{dim = d, groups = [...]}, ...]}`).
    Inference programs leave it out (the identity).

    ```mlir
    %y, %keep = galvatron.dropout %x {probability = 1.000000e-01 : f64, stream = 3 : i64} : tensor<2x8x64xf32> -> tensor<2x8x64xi1>
    ```
  }];
  let arguments = (ins Galvatron_FloatTensor:$input, F64Attr:$probability,
      I64Attr:$stream, OptionalAttr<DictionaryAttr>:$shard);
  let results = (outs Galvatron_FloatTensor:$result,
                      Galvatron_BoolTensor:$mask);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($mask)";
  let hasVerifier = 1;
  let builders = [
    OpBuilder<(ins "::mlir::Value":$input, "double":$probability,
                   "int64_t":$stream), [{
      auto type = ::llvm::cast<::mlir::RankedTensorType>(input.getType());
      build($_builder, $_state, type,
            ::mlir::RankedTensorType::get(type.getShape(),
                                          $_builder.getI1Type()),
            input, $_builder.getF64FloatAttr(probability),
            $_builder.getI64IntegerAttr(stream), ::mlir::DictionaryAttr());
    }]>
  ];
}

def Galvatron_CrossEntropyOp : Galvatron_Op<"cross_entropy",
    [Galvatron_TPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Softmax cross-entropy of logits against integer labels";
  let description = [{
    `logits` is [..., V], `labels` has the leading shape [...]; labels equal
    to `ignore_index` do not count. The result is the f32 scalar mean (or
    sum) over counted positions.
  }];
  let arguments = (ins Galvatron_FloatTensor:$logits,
      Galvatron_IndexTensor:$labels,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      DefaultValuedAttr<Galvatron_LossReduction,
                        "LossReduction::mean">:$reduction);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat =
      "$logits `,` $labels attr-dict `:` functional-type(operands, results)";
}

def Galvatron_RelativePositionBucketOp : Galvatron_Op<"relative_position_bucket",
    [Galvatron_Kernel, Pure]> {
  let summary = "T5's bucketed relative positions";
  let description = [{
    Produces the [S, T] integer tensor of buckets of (key position − query
    position) in T5's scheme: half the buckets exact, the rest logarithmic up
    to `max_distance`; `bidirectional` splits the buckets by sign. An
    embedding lookup of the result gives the relative position bias.
  }];
  let arguments = (ins I64Attr:$num_buckets, I64Attr:$max_distance,
                       BoolAttr:$bidirectional);
  let results = (outs StaticShapeTensorOf<[I64]>:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Galvatron_ExtractPatchesOp : Galvatron_Op<"extract_patches",
    [Galvatron_TPRule, Galvatron_Kernel, Pure, InferTypeOpAdaptor,
    DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Cuts images into flattened non-overlapping patches (ViT)";
  let description = [{
    `input` is [B, C, H, W]; the result is [B, (H/P)·(W/P), C·P·P] with
    patches in row-major order and features ordered (c, y, x), so a
    convolution with kernel = stride = P equals a linear layer over patches.
  }];
  let arguments = (ins Galvatron_FloatTensor:$input, I64Attr:$patch_size);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$input attr-dict `:` type($input) `->` type($result)";
}

//===----------------------------------------------------------------------===//
// Fused gradients. The backward counterparts of ops whose reverse-mode rule
// would otherwise be a long chain of small ops; kernels compute in f32 for
// 16-bit tensors.
//===----------------------------------------------------------------------===//

def Galvatron_ActivationGradOp : Galvatron_Op<"activation_grad",
    [Galvatron_Kernel, Pure, SameOperandsAndResultType]> {
  let summary = "Gradient through an activation: grad · f'(input)";
  let description = [{
    Elementwise `grad · f'(input)` for `activation`:
    relu: 1 where input > 0, else 0;
    silu: s·(1 + x·(1 − s)) with s = sigmoid(x);
    gelu (exact): Φ(x) + x·φ(x), Φ the standard normal CDF, φ its density;
    gelu_tanh: the derivative of 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
  }];
  let arguments = (ins Galvatron_Activation:$activation,
      Galvatron_FloatTensor:$grad, Galvatron_FloatTensor:$input);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat =
      "$activation `,` $grad `,` $input attr-dict `:` type($result)";
}

def Galvatron_LayerNormGradOp : Galvatron_Op<"layer_norm_grad",
    [Galvatron_Kernel, Pure, SameOperandsElementType]> {
  let summary = "Gradients of layer normalization";
  let description = [{
    For y = (x − μ)·r·w + b over the last dimension (μ the mean,
    r = 1/√(σ² + epsilon), σ² the biased variance), given `grad` = ∂L/∂y:
    `input_grad` = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = grad·w and
    x̂ = (x − μ)·r; `weight_grad` = Σ grad·x̂ and `bias_grad` = Σ grad,
    summed over every leading position. Mean and r are recomputed from
    `input`.
  }];
  let arguments = (ins Galvatron_FloatTensor:$grad,
      Galvatron_FloatTensor:$input, Galvatron_FloatTensor:$weight,
      DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Galvatron_FloatTensor:$input_grad,
      Galvatron_FloatTensor:$weight_grad, Galvatron_FloatTensor:$bias_grad);
  let assemblyFormat =
      "$grad `,` $input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galvatron_RMSNormGradOp : Galvatron_Op<"rms_norm_grad",
    [Galvatron_Kernel, Pure, SameOperandsElementType]> {
  let summary = "Gradients of RMS normalization";
  let description = [{
    For y = x·r·w over the last dimension with r = 1/√(mean(x²) + epsilon),
    given `grad` = ∂L/∂y: `input_grad` = r·(ĝ − x·r²·mean(ĝ·x)) with
    ĝ = grad·w, and `weight_grad` = Σ grad·x·r over every leading position.
  }];
  let arguments = (ins Galvatron_FloatTensor:$grad,
      Galvatron_FloatTensor:$input, Galvatron_FloatTensor:$weight,
      DefaultValuedAttr<F64Attr, "1e-6">:$epsilon);
  let results = (outs Galvatron_FloatTensor:$input_grad,
      Galvatron_FloatTensor:$weight_grad);
  let assemblyFormat =
      "$grad `,` $input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galvatron_AttentionGradOp : Galvatron_Op<"attention_grad",
    [Galvatron_DerivedKernel, Galvatron_DropoutMask, Pure,
    SameOperandsElementType]> {
  let summary = "Gradients of fused scaled dot-product attention";
  let description = [{
    The gradients of `galvatron.attention` with the same operands and
    attributes, given `grad` = ∂L/∂output ([B, Hq, S, Dv]). With
    P = softmax(scale·Q·Kᵀ + mask) (causal positions masked) recomputed per
    row and dP = grad·Vᵀ: dS = P ∘ (dP − rowsum(P ∘ dP)),
    `query_grad` = scale·dS·K, `key_grad` = scale·dSᵀ·Q and
    `value_grad` = Pᵀ·grad, where key and value gradients sum over the query
    heads sharing a key/value head. The optional `mask_grad` (requested by
    giving its type; only with a mask) is dS summed over the dimensions the
    mask broadcasts along: the gradient of a trainable bias (T5's relative
    positions). With `dropout`, the probabilities' mask is drawn again as
    the forward drew it (same `stream` and `shard`): with M the kept
    elements scaled by 1/(1 − `dropout`), `value_grad` = (P ∘ M)ᵀ·grad and
    dP above is (grad·Vᵀ) ∘ M.
  }];
  let arguments = (ins Galvatron_FloatTensor:$grad,
      Galvatron_FloatTensor:$query, Galvatron_FloatTensor:$key,
      Galvatron_FloatTensor:$value, Optional<Galvatron_FloatTensor>:$mask,
      DefaultValuedAttr<BoolAttr, "false">:$causal,
      OptionalAttr<F64Attr>:$scale,
      DefaultValuedAttr<F64Attr, "0.0">:$dropout,
      DefaultValuedAttr<I64Attr, "0">:$stream,
      OptionalAttr<DictionaryAttr>:$shard);
  let results = (outs Galvatron_FloatTensor:$query_grad,
      Galvatron_FloatTensor:$key_grad, Galvatron_FloatTensor:$value_grad,
      Optional<Galvatron_FloatTensor>:$mask_grad);
  let assemblyFormat = [{
    $grad `,` $query `,` $key `,` $value (`,` $mask^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Galvatron_EmbeddingGradOp : Galvatron_Op<"embedding_grad",
    [Galvatron_Kernel, Pure]> {
  let summary = "Gradient of an embedding table (scatter-add)";
  let description = [{
    Row v of the result is the sum of `grad`'s rows at every position whose
    index is v; rows no index selects are zero. `grad` is indices.shape + [D],
    the result the table's [V, D]. Indices lie in [0, V), as for the lookup.
    With `vocab_groups` (see `galvatron.embedding`) the result is the
    member's block of rows of the whole table's gradient: positions whose
    index lies outside the block add nothing; `vocab_size` as for the
    lookup.
  }];
  let arguments = (ins Galvatron_FloatTensor:$grad,
                       Galvatron_IndexTensor:$indices,
                       OptionalAttr<Galvatron_DeviceGroupsAttr>:$vocab_groups,
                       OptionalAttr<Galvatron_VocabSizeAttr>:$vocab_size);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $indices (`vocab_groups` custom<DeviceGroups>($vocab_groups)^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Galvatron_CrossEntropyGradOp : Galvatron_Op<"cross_entropy_grad",
    [Galvatron_Kernel, Pure]> {
  let summary = "Gradient of softmax cross-entropy with respect to the logits";
  let description = [{
    `grad` is the f32 scalar gradient of the loss. Each counted row (label
    not `ignore_index`) gets grad · (softmax(logits) − onehot(label)) / N,
    with N the number of counted rows for `mean` and 1 for `sum`; ignored
    rows get zero, and so does everything when no row counts.
  }];
  let arguments = (ins 0DTensorOf<[F32]>:$grad,
      Galvatron_FloatTensor:$logits, Galvatron_IndexTensor:$labels,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      DefaultValuedAttr<Galvatron_LossReduction,
                        "LossReduction::mean">:$reduction);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $logits `,` $labels attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

def Galvatron_LRScheduleOp : Galvatron_Op<"lr_schedule", [Galvatron_Kernel,
    Pure]> {
  let summary = "Learning rate of an optimizer step: warm-up, then cosine";
  let description = [{
    For the 1-based update number t (`step`), with W = `warmup_steps` and
    D = `decay_steps`: lr·t/W while t ≤ W; then
    min_lr + ½·(lr − min_lr)·(1 + cos(π·(t − W)/(D − W))) while t ≤ D; then
    min_lr. D ≤ W means no decay: lr after the warm-up.
  }];
  let arguments = (ins 0DTensorOf<[I64]>:$step, F64Attr:$lr,
      DefaultValuedAttr<F64Attr, "0.0">:$min_lr,
      DefaultValuedAttr<I64Attr, "0">:$warmup_steps,
      DefaultValuedAttr<I64Attr, "0">:$decay_steps);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = "$step attr-dict `:` type($step) `->` type($result)";
  let hasVerifier = 1;
}

def Galvatron_AdamWUpdateOp : Galvatron_Op<"adamw_update", [Galvatron_Kernel,
    Pure,
    AllTypesMatch<["param", "exp_avg", "exp_avg_sq", "new_param",
                   "new_exp_avg", "new_exp_avg_sq"]>]> {
  let summary = "One AdamW update of a parameter and its moments";
  let description = [{
    With g = grad·grad_scale (the clipping coefficient, divided by the loss
    scale under fp16) and t = `step` (1-based):
    p ← p·(1 − lr·weight_decay);
    m ← beta1·m + (1 − beta1)·g;  v ← beta2·v + (1 − beta2)·g²;
    p ← p − (lr / (1 − beta1^t)) · m / (√v / √(1 − beta2^t) + epsilon),
    the arithmetic of torch.optim.AdamW. When `enable` is given and false
    (a skipped fp16 step) the results equal the inputs.
  }];
  let arguments = (ins Galvatron_FloatTensor:$param,
      Galvatron_FloatTensor:$grad, Galvatron_FloatTensor:$exp_avg,
      Galvatron_FloatTensor:$exp_avg_sq, 0DTensorOf<[F32]>:$lr,
      0DTensorOf<[I64]>:$step, 0DTensorOf<[F32]>:$grad_scale,
      Optional<0DTensorOf<[I1]>>:$enable,
      DefaultValuedAttr<F64Attr, "0.9">:$beta1,
      DefaultValuedAttr<F64Attr, "0.999">:$beta2,
      DefaultValuedAttr<F64Attr, "1e-8">:$epsilon,
      DefaultValuedAttr<F64Attr, "0.01">:$weight_decay);
  let results = (outs Galvatron_FloatTensor:$new_param,
      Galvatron_FloatTensor:$new_exp_avg, Galvatron_FloatTensor:$new_exp_avg_sq);
  let assemblyFormat = [{
    $param `,` $grad `,` $exp_avg `,` $exp_avg_sq `,` $lr `,` $step `,`
    $grad_scale (`,` $enable^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Galvatron_SGDUpdateOp : Galvatron_Op<"sgd_update", [Galvatron_Kernel, Pure,
    AllTypesMatch<["param", "momentum_buffer", "new_param",
                   "new_momentum_buffer"]>]> {
  let summary = "One SGD-with-momentum update of a parameter";
  let description = [{
    With g = grad·grad_scale + weight_decay·p:
    b ← momentum·b + g; p ← p − lr·(nesterov ? g + momentum·b : b), the
    arithmetic of torch.optim.SGD without dampening (the buffer starts at
    zero, which equals torch's first-step copy). When `enable` is given and
    false the results equal the inputs.
  }];
  let arguments = (ins Galvatron_FloatTensor:$param,
      Galvatron_FloatTensor:$grad, Galvatron_FloatTensor:$momentum_buffer,
      0DTensorOf<[F32]>:$lr, 0DTensorOf<[F32]>:$grad_scale,
      Optional<0DTensorOf<[I1]>>:$enable,
      DefaultValuedAttr<F64Attr, "0.9">:$momentum,
      DefaultValuedAttr<F64Attr, "0.0">:$weight_decay,
      DefaultValuedAttr<BoolAttr, "false">:$nesterov);
  let results = (outs Galvatron_FloatTensor:$new_param,
      Galvatron_FloatTensor:$new_momentum_buffer);
  let assemblyFormat = [{
    $param `,` $grad `,` $momentum_buffer `,` $lr `,` $grad_scale
    (`,` $enable^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Pipeline
//===----------------------------------------------------------------------===//

def Galvatron_SendOp : Galvatron_Op<"send",
    [MemoryEffects<[MemRead<Galvatron_ChannelResource>,
                    MemWrite<Galvatron_ChannelResource>]>,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface, ["isGradientSource"]>]> {
  let summary = "Sends a tensor to another pipeline stage";
  let description = [{
    Hands `value` to pipeline stage `peer`, which takes it with the
    `galvatron.recv` of the same `tag`. The rank on the other side is the one
    holding the same position inside its stage (rank = stage · devices / pp
    + local index). Messages between two ranks with one tag arrive in the
    order they were sent, so the micro-batches of a schedule need no tags of
    their own. A `send` is a gradient source: its adjoint receives the
    gradient of `value` from the peer.

    ```mlir
    galvatron.send %hidden to stage 1 tag 0 : tensor<2x64x128xf32>
    ```
  }];
  let arguments = (ins Galvatron_Tensor:$value, I64Attr:$peer, I64Attr:$tag);
  let assemblyFormat = [{
    $value `to` `stage` $peer `tag` $tag attr-dict `:` type($value)
  }];
  let hasVerifier = 1;
}

def Galvatron_RecvOp : Galvatron_Op<"recv",
    [MemoryEffects<[MemRead<Galvatron_ChannelResource>,
                    MemWrite<Galvatron_ChannelResource>]>,
     DeclareOpInterfaceMethods<Galvatron_VJPOpInterface,
                               ["isGradientSource", "isVariedSource"]>]> {
  let summary = "Receives a tensor from another pipeline stage";
  let description = [{
    Takes the tensor that stage `peer` sends with the same `tag` (see
    `galvatron.send`). `differentiable` marks a value that depends on the
    sender's parameters: the autodiff engine then treats the result as
    varying with the weights, and its adjoint sends the result's gradient
    (zeros when the loss does not use it) back to the peer, matching the
    sender's adjoint receive.

    ```mlir
    %hidden = galvatron.recv from stage 0 tag 0 differentiable : tensor<2x64x128xf32>
    ```
  }];
  let arguments = (ins I64Attr:$peer, I64Attr:$tag, UnitAttr:$differentiable);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = [{
    `from` `stage` $peer `tag` $tag (`differentiable` $differentiable^)?
    attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Training schedule
//===----------------------------------------------------------------------===//

def Galvatron_ScheduleOp : Galvatron_Op<"schedule",
    [Symbol, HasParent<"::mlir::ModuleOp">,
     DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "The calls one device makes in a training step, as a loop";
  let description = [{
    Names the `forward` function (one micro-batch: takes the data inputs,
    returns the activations its backward needs), the `backward` function
    (takes exactly those, accumulates parameter gradients into state) and
    the `optimizer` function (no arguments; updates parameters and returns
    the step's metrics), and the calls of one training step as phases: each
    runs its calls a number of times, the micro-batch of every call one
    higher each time. Every micro-batch in [0, `micro_batches`) has one
    forward call and, after it, one backward call; the optimizer step comes
    once, last. Between a micro-batch's forward and backward its saved
    activations are live, which is what checkpointing and the pipeline
    schedule trade. The phases do not grow with the micro-batches. `loss`
    tells the data pipeline how to derive labels.

    ```mlir
    // 1F1B on the first of two stages, 4 micro-batches: a warm-up
    // forward, a steady state of 3 forward-backward pairs, a cool-down.
    galvatron.schedule @train_step loss next_token micro_batches 4
        forward @forward backward @backward optimizer @optimizer_step
        [1 x [forward 0], 3 x [forward 1, backward 0], 1 x [backward 3],
         1 x [optimizer]]
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, Galvatron_LossKind:$loss,
      I64Attr:$micro_batches, FlatSymbolRefAttr:$forward,
      FlatSymbolRefAttr:$backward, FlatSymbolRefAttr:$optimizer,
      TypedArrayAttrBase<Galvatron_SchedulePhaseAttr, "schedule phases">:$phases);
  let assemblyFormat = [{
    $sym_name `loss` $loss `micro_batches` $micro_batches
    `forward` $forward `backward` $backward `optimizer` $optimizer
    custom<SchedulePhases>($phases) attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The calls in order, each with its micro-batch (-1: the optimizer).
    SmallVector<std::pair<ScheduleStepKind, int64_t>> expand();
  }];
}

include "galvatron/Dialect/Galvatron/IR/GalvatronCollectives.td"

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONOPS_TD
