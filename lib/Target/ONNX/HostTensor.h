//===- HostTensor.h - Tensors evaluated while importing ONNX ----*- C++ -*-===//
//
// The ONNX importer evaluates everything that is known before run time
// (shape arithmetic, masks, position ids, constants) on the host, because the
// dialect has static shapes and no ops for shape computations. A HostTensor is
// such a value; the functions below implement the ONNX semantics the importer
// folds, and the shape rules (broadcasting, Reshape, Slice, ...) that the
// run-time conversions share with them.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_TARGET_ONNX_HOSTTENSOR_H
#define GALVATRON_LIB_TARGET_ONNX_HOSTTENSOR_H

#include "galvatron/Support/Error.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::galvatron::onnx_import {

/// ONNX element types, numbered as TensorProto.DataType.
enum class DType : int32_t {
  Undefined = 0,
  Float = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Double = 11,
  UInt32 = 12,
  UInt64 = 13,
  Complex64 = 14,
  Complex128 = 15,
  BFloat16 = 16,
};

/// The ONNX spelling of a data type ("float", "int64", ...); "type N" for
/// codes outside the enum.
std::string dtypeName(int32_t code);
inline std::string dtypeName(DType type) {
  return dtypeName(static_cast<int32_t>(type));
}
bool isFloatType(DType type);
/// Integer and bool types (stored as int64 on the host).
bool isIntegerType(DType type);
/// Bytes per element of a fixed-size numeric type, 0 for others.
int64_t dtypeSize(DType type);
/// Whether `code` names a numeric type the host can hold.
bool isHostType(int32_t code);

/// Upper bound on the elements of a tensor evaluated on the host: enough for
/// the masks and position tables of long sequences, small enough that a
/// hostile shape cannot exhaust memory.
constexpr int64_t kMaxHostElements = int64_t(1) << 24;

/// A tensor whose contents are known at import. Integers and bools live in
/// `ints`, floating-point values (rounded to their type) in `floats`.
struct HostTensor {
  DType type = DType::Float;
  llvm::SmallVector<int64_t> shape;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  int64_t numel() const;
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  bool isFloat() const { return isFloatType(type); }
  double getDouble(int64_t index) const {
    return isFloat() ? floats[index] : static_cast<double>(ints[index]);
  }
  int64_t getInt(int64_t index) const;
  /// Whether every element equals the first.
  bool isSplat() const;

  static HostTensor zeros(DType type, llvm::ArrayRef<int64_t> shape);
  static HostTensor fromInts(DType type, llvm::ArrayRef<int64_t> shape,
                             llvm::ArrayRef<int64_t> values);
  static HostTensor fromDoubles(DType type, llvm::ArrayRef<int64_t> shape,
                                llvm::ArrayRef<double> values);
};

using HostResult = llvm::Expected<HostTensor>;

/// Rounds `value` to what an element of floating-point `type` holds.
double roundToType(DType type, double value);
/// Converts to an integer type with wrap-around (and 0/1 for bool); NaN and
/// out-of-range floats saturate instead of being undefined.
int64_t convertToInteger(DType type, double value);
int64_t wrapToType(DType type, int64_t value);

//===----------------------------------------------------------------------===//
// Shape rules shared by host evaluation and run-time conversion
//===----------------------------------------------------------------------===//

/// Number of elements, failing on negative dimensions or overflow.
llvm::Expected<int64_t> checkedNumel(llvm::ArrayRef<int64_t> shape);
/// Maps an axis in [-rank, rank) into [0, rank).
llvm::Expected<int64_t> normalizeAxis(int64_t axis, int64_t rank);
/// NumPy broadcast of two shapes.
llvm::Expected<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> a, llvm::ArrayRef<int64_t> b);
/// ONNX Reshape: 0 copies the input dimension (unless `allowZero`), -1 is
/// inferred.
llvm::Expected<llvm::SmallVector<int64_t>>
resolveReshape(llvm::ArrayRef<int64_t> input, llvm::ArrayRef<int64_t> requested,
               bool allowZero);
llvm::Expected<llvm::SmallVector<int64_t>>
resolveUnsqueeze(llvm::ArrayRef<int64_t> input, llvm::ArrayRef<int64_t> axes);
/// Squeeze; empty `axes` removes every dimension of size 1.
llvm::Expected<llvm::SmallVector<int64_t>>
resolveSqueeze(llvm::ArrayRef<int64_t> input, llvm::ArrayRef<int64_t> axes);
/// Validates a Transpose permutation; empty means reversed dimensions.
llvm::Expected<llvm::SmallVector<int64_t>>
resolvePermutation(int64_t rank, llvm::ArrayRef<int64_t> perm);
/// Normalized, distinct reduction axes; empty means all.
llvm::Expected<llvm::SmallVector<int64_t>>
resolveAxes(int64_t rank, llvm::ArrayRef<int64_t> axes);

/// A Slice resolved against a shape: per dimension the first index, the step
/// and the number of elements taken.
struct SliceSpec {
  llvm::SmallVector<int64_t> starts, steps, sizes;
  llvm::SmallVector<int64_t> resultShape() const { return sizes; }
};
/// ONNX Slice with clamping, negative indices and negative steps.
llvm::Expected<SliceSpec> resolveSlice(llvm::ArrayRef<int64_t> shape,
                                       llvm::ArrayRef<int64_t> starts,
                                       llvm::ArrayRef<int64_t> ends,
                                       llvm::ArrayRef<int64_t> axes,
                                       llvm::ArrayRef<int64_t> steps);

//===----------------------------------------------------------------------===//
// Host evaluation
//===----------------------------------------------------------------------===//

enum class UnaryKind {
  Neg,
  Abs,
  Exp,
  Log,
  Sqrt,
  Reciprocal,
  Tanh,
  Erf,
  Sigmoid,
  Relu,
  Not,
  Floor,
  Ceil,
  Round,
  Sin,
  Cos,
  Sign
};
enum class BinaryKind {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Max,
  Min,
  Mod,
  FMod,
  Equal,
  Less,
  Greater,
  LessOrEqual,
  GreaterOrEqual,
  And,
  Or,
  Xor
};
enum class ReduceKind { Sum, Mean, Max, Min, Prod };

/// Whether a binary op yields bool whatever its operand types.
bool isComparison(BinaryKind kind);

HostResult evaluateUnary(UnaryKind kind, const HostTensor &input);
HostResult evaluateBinary(BinaryKind kind, const HostTensor &lhs,
                          const HostTensor &rhs);
HostResult evaluateWhere(const HostTensor &condition, const HostTensor &lhs,
                         const HostTensor &rhs);
HostResult castTensor(const HostTensor &input, DType type);
HostResult reshapeTensor(const HostTensor &input,
                         llvm::ArrayRef<int64_t> shape);
HostResult transposeTensor(const HostTensor &input,
                           llvm::ArrayRef<int64_t> perm);
HostResult sliceTensor(const HostTensor &input, const SliceSpec &spec);
/// ONNX Gather; negative indices count from the end.
HostResult gatherTensor(const HostTensor &data, const HostTensor &indices,
                        int64_t axis);
HostResult concatTensors(llvm::ArrayRef<const HostTensor *> inputs,
                         int64_t axis);
HostResult expandTensor(const HostTensor &input, llvm::ArrayRef<int64_t> shape);
HostResult tileTensor(const HostTensor &input, llvm::ArrayRef<int64_t> repeats);
HostResult rangeTensor(const HostTensor &start, const HostTensor &limit,
                       const HostTensor &delta);
HostResult triluTensor(const HostTensor &input, int64_t diagonal, bool upper);
HostResult reduceTensor(ReduceKind kind, const HostTensor &input,
                        llvm::ArrayRef<int64_t> axes, bool keepDims);
HostResult splitTensor(const HostTensor &input, int64_t axis, int64_t offset,
                       int64_t size);

/// A constant whose last two dimensions hold `lower` where
/// column - row <= diagonal and `upper` elsewhere, the same in every leading
/// index (causal masks in bool or additive form).
struct TriangularPattern {
  int64_t diagonal;
  double lower, upper;
};
std::optional<TriangularPattern> matchTriangular(const HostTensor &tensor);

/// A rotary position table as Hugging Face builds it: [1, ..., 1, S, D] with
/// column j of row s holding cos (or sin) of s · theta^(-2(j mod D/2)/D)
/// (the frequencies repeated for both halves, rotate-half layout).
struct RotaryTablePattern {
  double theta;
  bool sine;
};
std::optional<RotaryTablePattern> matchRotaryTable(const HostTensor &tensor);

/// The dimensions along which every slice equals the first (the tensor is a
/// broadcast along them).
llvm::SmallVector<bool> findBroadcastDims(const HostTensor &tensor);

} // namespace mlir::galvatron::onnx_import

#endif // GALVATRON_LIB_TARGET_ONNX_HOSTTENSOR_H
