//===- VJPBuilder.h - What a vector-Jacobian rule works with ----*- C++ -*-===//
//
// The context the autodiff engine hands to `VJPOpInterface::buildVJP`, and
// the side-effect resource of parameters and state variables.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_VJPBUILDER_H
#define GALVATRON_DIALECT_GALVATRON_IR_VJPBUILDER_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace mlir::galvatron {

/// Parameters and state variables: `param` and `read_state` read it, `assign`
/// writes it, so reads are never reordered across writes.
struct VariableResource : public SideEffects::Resource::Base<VariableResource> {
  StringRef getName() final { return "galvatron.variables"; }
};

/// Pipeline channels: `send` and `recv` read and write it, so messages are
/// never reordered, duplicated or dropped.
struct ChannelResource : public SideEffects::Resource::Base<ChannelResource> {
  StringRef getName() final { return "galvatron.channels"; }
};

/// A rank-0 constant `value` of `elementType` (float or integer).
Value buildScalar(OpBuilder &builder, Location loc, double value,
                  Type elementType);
/// A tensor of zeros: a broadcast scalar, never a large constant.
Value buildZeros(OpBuilder &builder, Location loc, RankedTensorType type);

/// Builds the operand gradients of one forward op inside a backward layer.
/// Forward values reach the rule through `primal`, which returns their copy
/// on the backward side; the rule may only ask for values it declared in
/// `getVJPPrimals`.
class VJPBuilder {
public:
  using PrimalLookup = llvm::function_ref<Value(Value)>;
  using VariableSink = llvm::function_ref<void(FlatSymbolRefAttr, Value)>;

  VJPBuilder(OpBuilder &builder, Operation *op, ArrayRef<Value> resultGradients,
             ArrayRef<bool> wanted, PrimalLookup lookup, VariableSink sink)
      : builder(builder), op(op), resultGradients(resultGradients),
        wanted(wanted), lookup(lookup), sink(sink),
        operandGradients(op->getNumOperands()) {}

  OpBuilder &getBuilder() { return builder; }
  Location getLoc() { return op->getLoc(); }
  Operation *getOp() { return op; }

  /// The backward-side value of forward operand or result `forward`.
  Value primal(Value forward);
  /// The gradient of result `index`; null when it is zero.
  Value resultGradient(unsigned index) { return resultGradients[index]; }
  /// Whether operand `index` needs a gradient.
  bool wantsGradient(unsigned index) { return wanted[index]; }

  /// Records the gradient of operand `index` (ignored when not wanted).
  void setGradient(unsigned index, Value gradient);
  ArrayRef<Value> getOperandGradients() { return operandGradients; }

  /// Hands the gradient of a parameter to the engine.
  void addVariableGradient(FlatSymbolRefAttr variable, Value gradient) {
    sink(variable, gradient);
  }

  //===--------------------------------------------------------------------===//
  // Helpers shared by the rules
  //===--------------------------------------------------------------------===//

  Value scalar(double value, Type elementType) {
    return buildScalar(builder, getLoc(), value, elementType);
  }
  Value zeros(RankedTensorType type) {
    return buildZeros(builder, getLoc(), type);
  }
  /// Sums `gradient` over the dimensions NumPy broadcasting added to reach its
  /// shape from `type`'s, the adjoint of broadcasting `type` up.
  Value sumToShape(Value gradient, RankedTensorType type);
  /// Broadcasts `value` (whose rank may be lower) to `type`'s shape.
  Value broadcastTo(Value value, RankedTensorType type);
  /// Converts `value` to `type`'s element type when they differ.
  Value castTo(Value value, RankedTensorType type);

private:
  OpBuilder &builder;
  Operation *op;
  ArrayRef<Value> resultGradients;
  ArrayRef<bool> wanted;
  PrimalLookup lookup;
  VariableSink sink;
  SmallVector<Value> operandGradients;
};

} // namespace mlir::galvatron

#endif // GALVATRON_DIALECT_GALVATRON_IR_VJPBUILDER_H
