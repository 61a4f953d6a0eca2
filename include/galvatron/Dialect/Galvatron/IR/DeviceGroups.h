//===- DeviceGroups.h - The device groups of collectives --------*- C++ -*-===//
//
// The `[[0, 1], [2, 3]]` syntax of a collective's groups, and the mesh axes
// that describe such groups without listing them.
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

/// A family of device groups over mesh axes: the group of world rank r
/// holds the ranks that differ from r only in the coordinates
/// (r / stride) % size of `axes` ({size, stride} pairs, in group order: the
/// first varies slowest). What the runtime's programs record instead of
/// member lists, so that their size does not grow with the world.
struct MeshAxes {
  SmallVector<std::pair<int64_t, int64_t>> axes;

  /// `g` followed by `_<size>x<stride>` per axis: one name per family.
  std::string name() const;
};

/// The mesh axes of explicit `groups` (non-empty, of one size, disjoint):
/// the member order of the first group gives the axes, and every group must
/// be that group moved to a base rank whose coordinates are all 0. Fails,
/// naming why, for groups that are not one such family.
FailureOr<MeshAxes> getMeshAxes(ArrayAttr groups, std::string &error);

/// How a partitioned parameter's declared (local) tensor lies in the whole:
/// the attribute `galvatron.shard` on a `galvatron.parameter`,
/// `{full_shape = array<i64: ...>, splits = [{dim = d, groups = [...]}, ...]}`.
/// Each split divides the block left by the previous ones along `dim` among
/// the members of each group, member i keeping part i (tensor parallelism
/// first, then ZeRO-3 within the tensor-parallel part). The full shape may
/// refine the source tensor's (a fused QKV weight [h, 3h] as [h, 3, h]) so
/// that a rank's part is one box; the runtime initializes and loads a slice
/// by the element's index in the whole, which refining leaves unchanged.
/// A refined shard records the source tensor's shape as `source_shape`
/// (checkpoints and weight files hold the tensor under that shape). The
/// full shape may also pad the tensor (a vocabulary split among ranks it
/// does not divide): `unpadded_shape` then gives the full shape without the
/// padding, whose elements are zero and not part of the model.
struct ParameterShard {
  struct Split {
    int64_t dim;
    ArrayAttr groups;
  };
  SmallVector<int64_t> fullShape;
  SmallVector<Split> splits;
  /// The source tensor's shape when the full shape refines it; else empty.
  SmallVector<int64_t> sourceShape;
  /// The full shape without padding when the full shape pads it; else
  /// empty.
  SmallVector<int64_t> unpaddedShape;

  /// The full shape without its padding.
  ArrayRef<int64_t> getUnpaddedShape() const {
    return unpaddedShape.empty() ? ArrayRef<int64_t>(fullShape)
                                 : unpaddedShape;
  }

  static constexpr llvm::StringLiteral getAttrName() {
    return llvm::StringLiteral("galvatron.shard");
  }
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
