//===- TensorShapes.h - Shapes of ranked tensor values ----------*- C++ -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_TENSORSHAPES_H
#define GALVATRON_DIALECT_GALVATRON_IR_TENSORSHAPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"

namespace mlir::galvatron::tensors {

/// The shape of a ranked tensor value; empty for anything else.
inline ArrayRef<int64_t> shapeOf(Value value) {
  if (auto type = dyn_cast<RankedTensorType>(value.getType()))
    return type.getShape();
  return {};
}

inline int64_t rankOf(Value value) {
  return static_cast<int64_t>(shapeOf(value).size());
}

} // namespace mlir::galvatron::tensors

#endif // GALVATRON_DIALECT_GALVATRON_IR_TENSORSHAPES_H
