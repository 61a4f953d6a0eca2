//===- GalvatronDialect.td - Galvatron dialect definition --*- tablegen -*-===//
//
// The `galvatron` dialect: tensor-level Transformer training graphs with
// explicit layers, parameters declared by reference, and hybrid-parallel
// strategy attributes.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONDIALECT_TD
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONDIALECT_TD

include "mlir/IR/OpBase.td"

def Galvatron_Dialect : Dialect {
  let name = "galvatron";
  let cppNamespace = "::mlir::galvatron";
  let summary = "Transformer graphs with explicit layers and parallel strategies";
  let description = [{
    Ops at the granularity of ONNX / PyTorch modules on statically shaped
    builtin tensors. Every op of a model function lives inside a
    `galvatron.layer` region, the unit of parallel strategy; weights are
    declared once at module level by `galvatron.parameter` (shape, element
    type, initializer, optional external-data reference) and read with
    `galvatron.param`, so IR size never grows with the parameter count.

    Per-layer `#galvatron.strategy` and per-module `#galvatron.plan`
    attributes describe a hybrid-parallel plan; the dialect verifies that a
    plan is consistent (degrees positive, pp * tp * dp equal to the device
    count, stages ordered).
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
  let hasConstantMaterializer = 1;
  let extraClassDeclaration = [{
    void registerAttributes();

    /// Name of the module attribute holding the `#galvatron.plan`.
    static constexpr ::llvm::StringLiteral getPlanAttrName() {
      return ::llvm::StringLiteral("galvatron.plan");
    }
    /// Name of the module attribute naming the model (informational).
    static constexpr ::llvm::StringLiteral getModelAttrName() {
      return ::llvm::StringLiteral("galvatron.model");
    }
    /// Name of the function argument / result attribute keeping the name the
    /// source model gave a graph input or output.
    static constexpr ::llvm::StringLiteral getNameAttrName() {
      return ::llvm::StringLiteral("galvatron.name");
    }
  }];
}

class Galvatron_Op<string mnemonic, list<Trait> traits = []>
    : Op<Galvatron_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Type constraints. Shapes are static: the compiler plans memory ahead of time.
//===----------------------------------------------------------------------===//

def Galvatron_FloatTensor : StaticShapeTensorOf<[F16, BF16, F32]>;
def Galvatron_IndexTensor : StaticShapeTensorOf<[I32, I64]>;
def Galvatron_BoolTensor : StaticShapeTensorOf<[I1]>;
def Galvatron_Tensor : StaticShapeTensorOf<[F16, BF16, F32, I1, I32, I64]>;

/// Device groups, `[[0, 1], [2, 3]]`: lists of world ranks (see
/// GalvatronCollectives.td).
def Galvatron_DeviceGroupsAttr
    : TypedArrayAttrBase<DenseI64ArrayAttr, "device groups">;

/// The vocabulary of a lookup or loss whose blocks pad it.
def Galvatron_VocabSizeAttr : ConfinedAttr<I64Attr, [IntPositive]>;

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONDIALECT_TD
