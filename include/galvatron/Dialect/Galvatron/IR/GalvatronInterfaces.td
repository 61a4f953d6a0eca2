//===- GalvatronInterfaces.td - Galvatron op interfaces ----*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONINTERFACES_TD
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONINTERFACES_TD

include "mlir/IR/OpBase.td"

def Galvatron_FlopCountOpInterface : OpInterface<"FlopCountOpInterface"> {
  let cppNamespace = "::mlir::galvatron";
  let description = [{
    Ops that do matrix-multiply work report its forward FLOPs, counting a
    multiply-add as two. Ops without this interface count as zero FLOPs, the
    convention of the standard formulas (a GPT layer is
    24·b·s·h² + 4·b·s²·h, causal attention not halved).
  }];
  let methods = [
    InterfaceMethod<"Forward FLOPs of this op.", "int64_t", "getFlops">
  ];
}

def Galvatron_VJPOpInterface : OpInterface<"VJPOpInterface"> {
  let cppNamespace = "::mlir::galvatron";
  let description = [{
    The reverse-mode rule of an op: given the gradients of its results, build
    the gradients of its operands (a vector-Jacobian product). The autodiff
    engine (`galvatron/Transforms/Autodiff.h`) calls it layer by layer in
    reverse, inside the backward layer it is building, through a
    `VJPBuilder` that maps the forward values the rule declared it needs to
    their backward-side copies (saved activations, recomputed values or
    re-read weights), holds the result gradients (null means zero) and
    collects the operand gradients (null for operands that need none, such
    as integer indices). Ops that read a variable hand its gradient to the
    engine with `VJPBuilder::addVariableGradient`.

    Ops that carry values out of a function without results (a pipeline
    `send`) are gradient sources: the engine calls their rule even though no
    result gradient exists, and the rule produces the operand gradient
    itself (a `recv`).

    Ops without float operands (constants, comparisons, position buckets)
    never depend on a parameter, so they need no rule.
  }];
  let methods = [
    InterfaceMethod<[{
        Appends to `values` the forward values (operands or results of this
        op) the rule reads when the operands flagged in `wanted` need
        gradients. The engine saves or recomputes exactly these.
      }], "void", "getVJPPrimals",
      (ins "::llvm::ArrayRef<bool>":$wanted,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$values)>,
    InterfaceMethod<[{
        Builds the gradients of the wanted operands with `vjp`'s builder and
        records them with `vjp.setGradient`. Fails (with a diagnostic) when
        the op cannot be differentiated as configured.
      }], "::mlir::LogicalResult", "buildVJP",
      (ins "::mlir::galvatron::VJPBuilder &":$vjp)>,
    InterfaceMethod<[{
        Whether the op produces operand gradients without any result
        gradient (ops that send values out of the function).
      }], "bool", "isGradientSource", (ins), [{}], [{ return false; }]>,
    InterfaceMethod<[{
        Whether the results vary with the trained weights although no operand
        does (an activation received from another pipeline stage).
      }], "bool", "isVariedSource", (ins), [{}], [{ return false; }]>
  ];
}

def Galvatron_TensorParallelOpInterface
    : OpInterface<"TensorParallelOpInterface"> {
  let cppNamespace = "::mlir::galvatron";
  let description = [{
    How Megatron-style tensor parallelism shards the op, independent of the
    degree (lib/Analysis/TensorParallelAnalysis.cpp walks a layer and calls
    it on every op): from its operands' shardings, the shardings of its
    results, the communication its operands need, the weights it splits and
    the sizes that must divide among the ranks, stated through the
    `TPRuleContext` (ShardingRule.h). An op without this interface keeps the
    layer at tp = 1 when one of its operands is sharded or a partial sum.

    The same ranks may run DeepSpeed-Ulysses sequence parallelism instead
    (lib/Analysis/UlyssesAnalysis.cpp): the op's Ulysses rule states, through
    the `UlyssesRuleContext`, how it keeps its operands' sequence or heads
    splits, or that it needs them whole. An op without this interface has
    its split operands gathered whole.
  }];
  let methods = [
    InterfaceMethod<[{
        States the shardings of the results and what the operands need.
      }], "void", "propagateTensorParallel",
      (ins "::mlir::galvatron::TPRuleContext &":$context)>,
    InterfaceMethod<[{
        Whether the op acts position by position on its replicated [batch,
        sequence, ...] activations, so Megatron sequence parallelism may
        split them along the sequence.
      }], "bool", "isPositionwise",
      (ins "const ::mlir::galvatron::TPRuleContext &":$context), [{}],
      [{ return false; }]>,
    InterfaceMethod<[{
        States the Ulysses layouts of the results and what the operands
        need.
      }], "void", "propagateUlysses",
      (ins "::mlir::galvatron::UlyssesRuleContext &":$context)>
  ];
}

def Galvatron_RuntimeKernelOpInterface
    : OpInterface<"RuntimeKernelOpInterface"> {
  let cppNamespace = "::mlir::galvatron";
  let description = [{
    The op runs as one runtime kernel. The kernel's contract (its operands,
    the element types it takes, its attribute names and kinds) is the
    runtime's catalog (runtime/lib/KernelCatalog.cpp), which the lowering
    and the runtime both check calls against; the op supplies the kernel's
    name and the value of each attribute the catalog lists, by default its
    own attribute of that name (flags as booleans, enums as integers).
  }];
  let methods = [
    InterfaceMethod<"The kernel's name in the program format.",
      "::llvm::StringRef", "getKernelName", (ins), [{}],
      [{ return $_op->getName().stripDialect(); }]>,
    InterfaceMethod<[{
        The value of kernel attribute `name`, or null when the call leaves
        it out. Ops override it for values they derive (defaults that
        depend on shapes).
      }], "::mlir::Attribute", "getKernelAttribute",
      (ins "::llvm::StringRef":$name), [{}],
      [{ return $_op->getInherentAttr(name).value_or(::mlir::Attribute()); }]>
  ];
}

def Galvatron_DropoutMaskOpInterface : OpInterface<"DropoutMaskOpInterface"> {
  let cppNamespace = "::mlir::galvatron";
  let description = [{
    The op drops elements of a tensor (its "masked tensor": a dropout's
    input, attention's [B, Hq, S, T] probabilities) with a mask drawn by
    the counter-based generator at each element's index in the whole
    tensor of the step's global batch ("Dropout" in docs/architecture.md).
    The partitioner builds the op with its `shard` attribute where the part a
    rank holds lies in the whole masked tensor of one micro-batch (the
    masked tensor's leading dimensions split as the op's first result's);
    the lowering turns it into the kernel's `whole_shape` and `offsets`,
    so every plan draws the serial run's mask.
  }];
  let methods = [
    InterfaceMethod<"Whether the op drops anything (probability > 0).",
      "bool", "dropsElements">,
    InterfaceMethod<"The shape of the masked tensor this op holds.",
      "::llvm::SmallVector<int64_t>", "getMaskedShape">,
    InterfaceMethod<"Where the part lies in the whole, or null when whole.",
      "::mlir::DictionaryAttr", "getMaskShard", (ins), [{}],
      [{ return $_op.getShardAttr(); }]>,
    InterfaceMethod<"The name of the attribute holding where the part lies.",
      "::mlir::StringAttr", "getMaskShardAttrName", (ins), [{}],
      [{ return $_op.getShardAttrName(); }]>
  ];
}

// Shorthands for op trait lists: a TP rule and a Ulysses rule (with its
// sequence-parallel rule), a runtime kernel (with attributes the op
// derives), a dropout mask.
defvar Galvatron_TPRule =
    DeclareOpInterfaceMethods<Galvatron_TensorParallelOpInterface>;
defvar Galvatron_PositionwiseTPRule =
    DeclareOpInterfaceMethods<Galvatron_TensorParallelOpInterface,
                              ["isPositionwise"]>;
defvar Galvatron_Kernel = Galvatron_RuntimeKernelOpInterface;
defvar Galvatron_DerivedKernel =
    DeclareOpInterfaceMethods<Galvatron_RuntimeKernelOpInterface,
                              ["getKernelAttribute"]>;
defvar Galvatron_DropoutMask =
    DeclareOpInterfaceMethods<Galvatron_DropoutMaskOpInterface>;

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONINTERFACES_TD
