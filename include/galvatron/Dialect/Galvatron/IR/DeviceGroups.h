//===- DeviceGroups.h - The device groups of collectives --------*- C++ -*-===//
//
// The `[[0, 1], [2, 3]]` syntax of a collective's groups, and the lookup of
// one rank's group that lowering for that rank needs.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_DEVICEGROUPS_H
#define GALVATRON_DIALECT_GALVATRON_IR_DEVICEGROUPS_H

#include "mlir/IR/OpImplementation.h"

namespace mlir::galvatron {

ParseResult parseDeviceGroups(OpAsmParser &parser, ArrayAttr &groups);
void printDeviceGroups(OpAsmPrinter &printer, Operation *op, ArrayAttr groups);

/// Builds the groups attribute of `groups`.
ArrayAttr buildDeviceGroups(MLIRContext *context,
                            ArrayRef<SmallVector<int64_t>> groups);

/// Checks that `groups` are non-empty, of one size and disjoint sets of
/// world ranks, reporting on `op`.
LogicalResult verifyDeviceGroups(Operation *op, ArrayAttr groups);

/// Verifies the vocabulary-parallel attributes of `op`, whose members hold
/// blocks of `local` rows or columns: the groups, and a `vocabSize` (when
/// given, only with groups) no larger than the blocks together.
LogicalResult verifyVocabBlocks(Operation *op, ArrayAttr groups,
                                IntegerAttr vocabSize, int64_t local);

/// The group of `groups` holding `rank` and the rank's position in it, or
/// nullopt when no group holds it.
std::optional<std::pair<ArrayRef<int64_t>, int64_t>>
findDeviceGroup(ArrayAttr groups, int64_t rank);

/// How a partitioned parameter's declared (local) tensor lies in the whole:
/// the attribute `galvatron.shard` on a `galvatron.parameter`,
/// `{full_shape = array<i64: ...>, splits = [{dim = d, groups = [...]}, ...]}`.
/// Each split divides the block left by the previous ones along `dim` among
/// the members of each group, member i keeping part i (tensor parallelism
/// first, then ZeRO-3 within the tensor-parallel part). The full shape may
/// refine the source tensor's (a fused QKV weight [h, 3h] as [h, 3, h]) so
/// that a rank's part is one box; the runtime initializes and loads a slice
/// by the element's index in the whole, which refining leaves unchanged.
/// The full shape may also pad the source tensor (a vocabulary split among
/// ranks it does not divide): `source_shape = array<i64: ...>` then gives
/// the source tensor's shape, and elements past it are padding, zero and
/// not part of the model.
struct ParameterShard {
  struct Split {
    int64_t dim;
    ArrayAttr groups;
  };
  SmallVector<int64_t> fullShape;
  SmallVector<Split> splits;
  /// The source tensor's shape when the full shape pads it; else empty.
  SmallVector<int64_t> sourceShape;

  /// The shape of the tensor in the source model.
  ArrayRef<int64_t> getSourceShape() const {
    return sourceShape.empty() ? ArrayRef<int64_t>(fullShape) : sourceShape;
  }

  static constexpr llvm::StringLiteral getAttrName() {
    return llvm::StringLiteral("galvatron.shard");
  }
  /// Where `rank`'s part starts, or nullopt when a split has no group
  /// holding the rank.
  std::optional<SmallVector<int64_t>> sliceStart(int64_t rank) const;
  /// The shape of one part.
  SmallVector<int64_t> partShape() const;
  DictionaryAttr toAttr(MLIRContext *context) const;
  /// Parses the attribute, or fails with a message naming the problem.
  static FailureOr<ParameterShard> fromAttr(Attribute attr,
                                            std::string &error);
};

/// The shard description of a parameter declaration (or of training state
/// sharded unlike its parameter), if it has one.
std::optional<ParameterShard> getParameterShard(Operation *parameter);

/// A data-parallel weight whose gradient the training step, not autodiff,
/// synchronizes: the attribute `galvatron.data_parallel` on a
/// `galvatron.parameter` read by one layer,
/// `{groups = [...], zero = 0 | 1 | 2, dim = d}`. The parameter is stored
/// whole (its TP part) on every member of its group; `zero` 1 and 2 shard
/// its optimizer state along dimension `dim` of the stored part among the
/// members (ZeRO-1), stage 2 its gradient accumulator too (ZeRO-2).
struct DataParallelSync {
  ArrayAttr groups;
  int64_t zeroStage = 0;
  int64_t dim = 0;

  static constexpr llvm::StringLiteral getAttrName() {
    return llvm::StringLiteral("galvatron.data_parallel");
  }
  DictionaryAttr toAttr(MLIRContext *context) const;
  /// Parses the attribute for a parameter stored as `shape`, or fails with
  /// a message naming the problem.
  static FailureOr<DataParallelSync>
  fromAttr(Attribute attr, ArrayRef<int64_t> shape, std::string &error);
  /// The shard of the optimizer state of `parameter` (its own shard, then
  /// this one's split along `dim`).
  ParameterShard stateShard(Operation *parameter, ArrayRef<int64_t> shape) const;
};

/// The data-parallel sync of a parameter declaration, if it has one.
std::optional<DataParallelSync> getDataParallelSync(Operation *parameter);

} // namespace mlir::galvatron

#endif // GALVATRON_DIALECT_GALVATRON_IR_DEVICEGROUPS_H
