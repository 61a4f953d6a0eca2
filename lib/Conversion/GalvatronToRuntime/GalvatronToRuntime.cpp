//===- GalvatronToRuntime.cpp - Lower a model function to a program -------===//
//
// Flattens the entry function's layers into one instruction stream over
// numbered buffers, gives parameters and training state persistent buffers
// (reads and assignments become accesses to them), decides which results
// overwrite their operands in place, plans the arena from live ranges, and
// emits a grt.executable.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/MemoryPlanner.h"
#include "galvatron/Conversion/Passes.h"
#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include "llvm/Support/Debug.h"

#include <cmath>
#include <map>
#include <limits>

#define DEBUG_TYPE "galvatron-lower-to-runtime"

namespace mlir::galvatron {
#define GEN_PASS_DEF_LOWERTORUNTIME
#include "galvatron/Conversion/Passes.h.inc"
} // namespace mlir::galvatron

using namespace mlir;
using namespace mlir::galvatron;
namespace rt = ::galvatron::runtime;

namespace {

//===----------------------------------------------------------------------===//
// Kernel calls
//===----------------------------------------------------------------------===//

/// The value of a constant made by a `fill` kernel where it is used: a
/// splat of several elements (a zeroed gradient, a mask), which as stored
/// data would hold arena bytes for the whole step and file bytes besides.
std::optional<double> getFillValue(Operation *op) {
  auto constant = dyn_cast<ConstantOp>(op);
  auto splat = constant ? dyn_cast<SplatElementsAttr>(constant.getValue())
                        : SplatElementsAttr();
  if (!splat || splat.getNumElements() < 2)
    return std::nullopt;
  Attribute element = splat.getSplatValue<Attribute>();
  if (auto real = dyn_cast<FloatAttr>(element))
    return real.getValueAsDouble();
  if (auto integer = dyn_cast<IntegerAttr>(element))
    return static_cast<double>(integer.getType().isInteger(1)
                                   ? integer.getValue().getZExtValue()
                                   : integer.getValue().getSExtValue());
  return std::nullopt;
}

/// Gives every user of a filled constant its own fill right before it, so
/// the bytes live only while used, and a fill assigned to a variable (a
/// gradient reset) is written straight into it.
void placeFillsAtUses(func::FuncOp function) {
  SmallVector<Operation *> fills;
  function.walk([&](ConstantOp constant) {
    if (getFillValue(constant))
      fills.push_back(constant);
  });
  for (Operation *fill : fills) {
    for (OpOperand &use : llvm::make_early_inc_range(fill->getUses())) {
      OpBuilder builder(use.getOwner());
      use.set(builder.clone(*fill)->getResult(0));
    }
    fill->erase();
  }
}

/// A 16-bit value widened to f32 only to be added to an f32 value (a mixed
/// precision gradient added to its f32 accumulator): the `add` kernel reads
/// it as it is, so the f32 copy, as large as the weight, is never stored.
bool isWidenedAddend(Operation *op) {
  auto widening = [](Operation *op) {
    auto cast = dyn_cast_or_null<CastOp>(op);
    Type from = cast ? cast.getInput().getType().getElementType() : Type();
    return cast && cast.getType().getElementType().isF32() &&
           (from.isBF16() || from.isF16());
  };
  if (!widening(op) || !op->hasOneUse())
    return false;
  // The other addend stays f32 (of two widened addends, neither is kept).
  auto add = dyn_cast<AddOp>(*op->getUsers().begin());
  Value other = add && add.getLhs() == op->getResult(0) ? add.getRhs()
                : add                                   ? add.getLhs()
                                                        : Value();
  return other && other != op->getResult(0) &&
         !widening(other.getDefiningOp());
}

/// A square only a sum reads (a global norm's): `reduce_sum` squares as it
/// sums (`square`), so no temporary as large as the gradient holds it.
bool isSummedSquare(Operation *op) {
  auto mul = dyn_cast_or_null<MulOp>(op);
  return mul && mul.getLhs() == mul.getRhs() && mul->hasOneUse() &&
         isa<ReduceSumOp>(*mul->getUsers().begin());
}

/// The runtime kernel an op calls: its own (RuntimeKernelOpInterface), or
/// `fill`; empty when it has none.
std::string getKernelName(Operation *op) {
  if (getFillValue(op))
    return "fill";
  auto kernel = dyn_cast<RuntimeKernelOpInterface>(op);
  return kernel ? kernel.getKernelName().str() : std::string();
}

/// Whether result `result` of `op` may occupy exactly the bytes of its
/// operand `operand`: where its kernel allows, and an all-reduce always
/// (the communicator reduces in place).
bool mayOverwrite(Operation *op, unsigned result, unsigned operand) {
  if (isa<AllReduceOp>(op))
    return result == 0 && operand == 0;
  const rt::KernelSpec *spec = rt::findKernel(getKernelName(op));
  return spec && spec->mayOverwrite(result, operand);
}

/// A kernel attribute as the grt dialect holds it: flags are set only when
/// true, enums are integers.
Attribute toKernelAttribute(Attribute value, const rt::AttributeSpec &spec) {
  Builder b(value.getContext());
  if (auto flag = dyn_cast<BoolAttr>(value))
    return flag.getValue() || spec.required ? flag : Attribute();
  if (auto integer = dyn_cast<IntegerAttr>(value);
      integer && !integer.getType().isInteger(64))
    return b.getI64IntegerAttr(integer.getInt());
  return value;
}

/// The runtime kernel an op calls and its config: the kernel's attributes
/// as the catalog lists them, with the op's values. The catalog's element
/// types are checked here so that the error names the op.
FailureOr<std::pair<std::string, DictionaryAttr>>
describeKernel(Operation *op) {
  std::string name = getKernelName(op);
  const rt::KernelSpec *spec = rt::findKernel(name);
  if (!spec)
    return op->emitOpError() << "has no runtime kernel";
  auto kernel = dyn_cast<RuntimeKernelOpInterface>(op);
  Builder b(op->getContext());
  SmallVector<NamedAttribute> config;
  for (const rt::AttributeSpec &attribute : spec->attributes) {
    StringRef key(attribute.name.data(), attribute.name.size());
    Attribute value;
    if (std::optional<double> fill = getFillValue(op); fill && key == "value")
      value = b.getF64FloatAttr(*fill);
    else if (key == "square")
      value = b.getBoolAttr(isSummedSquare(op->getOperand(0).getDefiningOp()));
    else if (kernel)
      value = kernel.getKernelAttribute(key);
    if (value)
      value = toKernelAttribute(value, attribute);
    if (value)
      config.push_back(b.getNamedAttr(key, value));
  }
  rt::OperandRef dispatch = spec->dispatch;
  Value selector = dispatch.output ? op->getResult(dispatch.index)
                                   : op->getOperand(dispatch.index);
  std::optional<rt::ElementType> type = grt::convertElementType(
      cast<ShapedType>(selector.getType()).getElementType());
  if (!type || !(spec->types & rt::typeSet(*type)))
    return op->emitOpError()
           << "has no runtime kernel for " << selector.getType()
           << ": kernel '" << name << "' takes "
           << rt::describeTypes(spec->types);
  return std::make_pair(name, b.getDictionaryAttr(config));
}

//===----------------------------------------------------------------------===//
// Variable access
//===----------------------------------------------------------------------===//

/// Whether `op` becomes a kernel call (rather than a buffer binding).
bool isKernelOp(Operation *op) {
  return op->getDialect() &&
         op->getDialect()->getNamespace() ==
             GalvatronDialect::getDialectNamespace() &&
         (getFillValue(op) ||
          !isa<ParamOp, ReadStateOp, AssignOp, ConstantOp, ReshapeOp, LayerOp,
               YieldOp>(op));
}

/// How reads and assignments of parameters and state become accesses to
/// their persistent buffers. A read normally is the variable's buffer; an
/// assigned value is normally computed directly in it (its producer writes
/// there, in place over the old value where the kernel allows). Value
/// semantics hold throughout: a read still used after the variable is
/// written is a copy (a snapshot), and an assignment whose producer cannot
/// write into the variable is a copy at the assignment.
class VariableAccess {
public:
  explicit VariableAccess(func::FuncOp entry);

  bool isSnapshot(Operation *read) const { return snapshots.contains(read); }
  bool isCopied(AssignOp assign) const { return copied.contains(assign); }
  /// The variable a kernel result is computed in, or null.
  StringAttr writtenInto(Value result) const { return writes.lookup(result); }

private:
  static constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  void number(Block &block);
  int64_t lastUse(Value value);
  bool canWriteInto(StringAttr variable, size_t index, Value value);

  DenseMap<Operation *, int64_t> position;
  DenseMap<Value, int64_t> lastUses;
  /// Per variable, its reads and assignments in program order.
  llvm::MapVector<StringAttr, SmallVector<Operation *>> reads;
  llvm::MapVector<StringAttr, SmallVector<AssignOp>> assigns;

  DenseSet<Operation *> snapshots;
  DenseSet<Operation *> copied;
  DenseMap<Value, StringAttr> writes;
};

/// The value `value` is, looking through layer boundaries (and, with
/// `views`, through reshapes, which share bytes).
Value traceValue(Value value, bool views) {
  while (true) {
    if (auto argument = dyn_cast<BlockArgument>(value)) {
      auto layer = dyn_cast<LayerOp>(argument.getOwner()->getParentOp());
      if (!layer)
        return value;
      value = layer.getInputs()[argument.getArgNumber()];
      continue;
    }
    Operation *op = value.getDefiningOp();
    if (auto layer = dyn_cast<LayerOp>(op)) {
      value = cast<YieldOp>(layer.getBodyBlock().getTerminator())
                  .getValues()[cast<OpResult>(value).getResultNumber()];
      continue;
    }
    if (auto reshape = dyn_cast<ReshapeOp>(op); reshape && views) {
      value = reshape.getInput();
      continue;
    }
    return value;
  }
}

StringAttr variableOf(Operation *op) {
  if (auto param = dyn_cast<ParamOp>(op))
    return param.getNameAttr().getAttr();
  if (auto read = dyn_cast<ReadStateOp>(op))
    return read.getNameAttr().getAttr();
  return {};
}

VariableAccess::VariableAccess(func::FuncOp entry) {
  number(entry.getBody().front());
  // Where each variable is written: at the producer when it writes into the
  // variable, else at the copying assignment.
  llvm::MapVector<StringAttr, SmallVector<int64_t>> writePositions;
  for (auto &[variable, list] : assigns) {
    for (size_t index = 0; index < list.size(); ++index) {
      AssignOp assign = list[index];
      Value value = traceValue(assign.getValue(), /*views=*/false);
      if (canWriteInto(variable, index, value)) {
        writes[value] = variable;
        writePositions[variable].push_back(position.lookup(value.getDefiningOp()));
        // An all-reduce computed in the variable reduces in place, so what
        // it reduces (the accumulator plus the last gradient, in a hoisted
        // data-parallel sync) can be computed there too.
        if (auto reduce = value.getDefiningOp<AllReduceOp>()) {
          Value sum = traceValue(reduce->getOperand(0), /*views=*/false);
          if (lastUse(sum) == position.lookup(reduce) &&
              canWriteInto(variable, index, sum)) {
            writes[sum] = variable;
            writePositions[variable].push_back(
                position.lookup(sum.getDefiningOp()));
          }
        }
        continue;
      }
      copied.insert(assign);
      writePositions[variable].push_back(position.lookup(assign));
    }
  }
  for (auto &[variable, list] : reads) {
    for (Operation *read : list) {
      int64_t at = position.lookup(read), end = lastUse(read->getResult(0));
      for (int64_t write : writePositions.lookup(variable))
        if (at < write && write < end)
          snapshots.insert(read);
    }
  }
}

void VariableAccess::number(Block &block) {
  for (Operation &op : block) {
    position[&op] = int64_t(position.size());
    if (StringAttr variable = variableOf(&op))
      reads[variable].push_back(&op);
    if (auto assign = dyn_cast<AssignOp>(op))
      assigns[assign.getNameAttr().getAttr()].push_back(assign);
    if (auto layer = dyn_cast<LayerOp>(op))
      number(layer.getBodyBlock());
  }
}

int64_t VariableAccess::lastUse(Value value) {
  if (auto it = lastUses.find(value); it != lastUses.end())
    return it->second;
  int64_t last = -1;
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    int64_t at = position.lookup(user);
    if (auto layer = dyn_cast<LayerOp>(user))
      at = lastUse(layer.getBodyBlock().getArgument(use.getOperandNumber()));
    else if (isa<YieldOp>(user))
      at = lastUse(user->getParentOp()->getResult(use.getOperandNumber()));
    else if (auto reshape = dyn_cast<ReshapeOp>(user))
      at = std::max(at, lastUse(reshape.getResult()));
    else if (isa<func::ReturnOp>(user))
      at = kForever;
    last = std::max(last, at);
  }
  lastUses[value] = last;
  return last;
}

/// Whether `value`, assigned by assignment `index` of `variable` (or what
/// that assignment's all-reduce reduces), can be computed directly in the
/// variable's buffer: its producer is a kernel that runs after the previous
/// assignment, no read of the old value is used after the producer (or, at
/// the producer, only as an operand the kernel may overwrite in place), and
/// the value is not used after the variable's next write.
bool VariableAccess::canWriteInto(StringAttr variable, size_t index,
                                  Value value) {
  SmallVector<AssignOp> &list = assigns[variable];
  AssignOp assign = list[index];
  auto result = dyn_cast<OpResult>(value);
  if (!result || !isKernelOp(result.getOwner()) || writes.contains(value) ||
      value.getType() != assign.getValue().getType())
    return false;
  Operation *producer = result.getOwner();
  if (!isa<AllReduceOp, AllGatherOp>(producer) &&
      !rt::findKernel(getKernelName(producer)))
    return false;
  int64_t at = position.lookup(producer);
  if (index > 0 && position.lookup(list[index - 1]) > at)
    return false;
  for (Operation *read : reads.lookup(variable)) {
    int64_t readAt = position.lookup(read);
    if (readAt > position.lookup(assign) || lastUse(read->getResult(0)) < at)
      continue;
    if (readAt > at || lastUse(read->getResult(0)) > at)
      return false;
    // Used by the producer itself: only where it may overwrite that operand.
    for (OpOperand &operand : producer->getOpOperands())
      if (traceValue(operand.get(), /*views=*/true) == read->getResult(0) &&
          !mayOverwrite(producer, result.getResultNumber(),
                        operand.getOperandNumber()))
        return false;
  }
  if (index + 1 < list.size()) {
    AssignOp next = list[index + 1];
    int64_t nextWrite = position.lookup(next);
    if (Operation *nextProducer =
            traceValue(next.getValue(), /*views=*/false).getDefiningOp())
      if (int64_t producedAt = position.lookup(nextProducer);
          producedAt > position.lookup(assign))
        nextWrite = std::min(nextWrite, producedAt);
    if (lastUse(value) >= nextWrite)
      return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Device groups on the mesh
//===----------------------------------------------------------------------===//

/// The group families a stage's collectives run on, derived from their
/// explicit groups (the partitioner lists every group XLA-style): a family
/// is the mesh axes the groups vary along, so that the program names it in
/// constant space however many ranks there are.
class GroupFamilies {
public:
  GroupFamilies(int64_t worldSize, int64_t firstRank, int64_t ranks)
      : worldSize(worldSize), firstRank(firstRank), ranks(ranks) {}

  /// The family of `groups` (the groups of `op` or of a shard of it).
  /// Fails, on `op`, when the groups name ranks outside the world, leave a
  /// rank of the stage out, or do not form one family over mesh axes.
  FailureOr<FlatSymbolRefAttr> familyOf(Operation *op, ArrayAttr groups);
  /// Members of one group of `family`.
  int64_t sizeOf(FlatSymbolRefAttr family) const;
  const llvm::MapVector<StringAttr, MeshAxes> &all() const { return families; }

private:
  int64_t worldSize, firstRank, ranks;
  DenseMap<ArrayAttr, FlatSymbolRefAttr> cache;
  llvm::MapVector<StringAttr, MeshAxes> families;
};

FailureOr<FlatSymbolRefAttr> GroupFamilies::familyOf(Operation *op,
                                                     ArrayAttr groups) {
  if (auto it = cache.find(groups); it != cache.end())
    return it->second;
  int64_t covered = 0;
  for (Attribute group : groups)
    for (int64_t member : cast<DenseI64ArrayAttr>(group).asArrayRef()) {
      if (member >= worldSize)
        return op->emitOpError() << "names rank " << member
                                 << " outside a world of " << worldSize;
      covered += member >= firstRank && member < firstRank + ranks;
    }
  // Groups are disjoint (their verifier checks it).
  if (covered != ranks)
    return op->emitOpError() << "has no device group for some of the ranks ["
                             << firstRank << ", " << firstRank + ranks
                             << ") of its stage";
  std::string message;
  FailureOr<MeshAxes> axes = getMeshAxes(groups, message);
  if (failed(axes))
    return op->emitOpError() << message;
  StringAttr name = StringAttr::get(op->getContext(), axes->name());
  families.try_emplace(name, *axes);
  return cache[groups] = FlatSymbolRefAttr::get(name);
}

int64_t GroupFamilies::sizeOf(FlatSymbolRefAttr family) const {
  int64_t members = 1;
  for (auto [size, stride] : families.lookup(family.getAttr()).axes)
    members *= size;
  return members;
}

//===----------------------------------------------------------------------===//
// The lowering
//===----------------------------------------------------------------------===//

enum class Role { temporary, input, parameter, state, constant };

/// A value's storage: a buffer of its own (a root) or a view of a root.
struct ValueBuffer {
  RankedTensorType type;
  Role role = Role::temporary;
  /// The root (itself for a root) and where in it the bytes start.
  unsigned root;
  uint64_t offsetInRoot = 0;
  /// Input or parameter name.
  std::string name;
  ParameterOp parameter;
  StateOp state;
  ElementsAttr value;
  /// A shard's place in the whole: which rank holds which slice.
  SmallVector<Attribute> sliceTerms;
  /// An input written before each run of this block (per micro-batch).
  std::optional<unsigned> block;

  uint64_t bytes() const {
    return uint64_t(type.getNumElements()) *
           rt::elementSize(*grt::convertElementType(type.getElementType()));
  }
};

/// One instruction: a kernel call, a collective on a group family, or a
/// message to a pipeline stage.
struct KernelStep {
  enum class Kind {
    kernel,
    allReduce,
    allGather,
    reduceScatter,
    allToAll,
    send,
    recv,
    wait
  };
  Operation *op;
  std::string kernel;
  DictionaryAttr config;
  StringAttr layer;
  SmallVector<unsigned> inputs, outputs;
  Kind kind = Kind::kernel;
  grt::ReduceKind reduce = grt::ReduceKind::sum;
  /// The pipeline stage a message goes to or comes from, and its tag.
  int64_t peer = 0, tag = 0;
  /// The collective's group family.
  FlatSymbolRefAttr group;
  /// Rank-dependent parts of the kernel's integers (#grt.term).
  SmallVector<Attribute> terms;
  /// The event of a started collective or message, or of a wait (-1: a
  /// synchronous one); a start for the last micro-batch only.
  int64_t event = -1;
  bool lastMicroBatch = false;

  bool communicates() const { return kind != Kind::kernel && kind != Kind::wait; }
};

/// Where and how `--galvatron-lower-to-runtime` places communication.
struct CommunicationPlacement {
  /// Start collectives and messages early and wait for them late.
  bool overlap = true;
  /// Data-parallel gradient buckets synced in the last backward.
  uint64_t bucketBytes = 25 << 20;
};

/// A function lowered as one block of the program.
struct BlockSource {
  func::FuncOp function;
  StringRef name;
  bool slotted;
};

/// Where the lowering puts each root: the bytes live throughout (parameters,
/// state, constants) first; above them, with a schedule, one slot per
/// micro-batch in flight holding what a micro-batch keeps from its forward
/// to its backward (and whatever else the plan fits there), then the
/// scratch the blocks use inside themselves; the optimizer plans the bytes
/// above the persistent ones afresh.
struct Layout {
  SmallVector<uint64_t> offsets;
  SmallVector<bool> slotted;
  uint64_t arena = 0;
  uint64_t slotOffset = 0, slotSize = 0;
};

class Lowering {
public:
  Lowering(ModuleOp module, ArrayRef<BlockSource> blocks, ScheduleOp schedule,
           uint64_t alignment, int64_t stage, int64_t stages,
           int64_t worldSize)
      : module(module), sources(blocks), schedule(schedule),
        alignment(alignment), stage(stage), stages(stages),
        worldSize(worldSize),
        families(worldSize, stage * (worldSize / stages), worldSize / stages) {
  }

  LogicalResult collect();
  /// Starts communication early and waits for it late (see
  /// `CommunicationPlacement`), then computes the live ranges.
  void placeCommunication(const CommunicationPlacement &placement);
  void assignInPlace();
  Layout plan();
  void emit(const Layout &layout, StringRef modelDirectory);

private:
  FailureOr<unsigned> newBuffer(Operation *op, Value value, Role role);
  /// A temporary without a value of its own (collectives' staging).
  unsigned newTemporary(RankedTensorType type);
  /// `type` over the bytes of `buffer` (a view of its root).
  unsigned newView(unsigned buffer, RankedTensorType type);
  LogicalResult visitCollective(Operation *op, StringAttr layer);
  /// Adds to `step` the `vocab_start` of the rank's block and the
  /// `vocab_size` (the blocks together, or the op's own when they pad it)
  /// when `op` works on a vocabulary split over device groups.
  LogicalResult addVocabBlock(Operation *op, KernelStep &step);
  /// Adds to `step` where the part of `op`'s masked tensor lies in the
  /// whole tensor of a micro-batch (`whole_shape`, `offsets`) when it is
  /// partitioned.
  LogicalResult addMaskShard(DropoutMaskOpInterface op, KernelStep &step);
  /// The terms placing `shard`'s part of `owner` in the whole, as `key`'s
  /// entries: along each split dimension, the rank's place in the split's
  /// group times the part the split leaves.
  FailureOr<SmallVector<Attribute>> shardTerms(Operation *owner,
                                               const ParameterShard &shard,
                                               StringRef key);
  void addTranspose(Operation *op, StringAttr layer, unsigned input,
                    unsigned output, ArrayRef<int64_t> perm);
  FailureOr<unsigned> variableBuffer(Operation *user, StringAttr name);
  /// Where `op` writes `result`: the variable it is computed in, or a new
  /// temporary.
  FailureOr<unsigned> resultBuffer(Operation *op, Value result);
  LogicalResult visit(Operation *op, StringAttr layer);
  void addCopy(Operation *op, StringAttr layer, unsigned from, unsigned to);
  /// `#grt.term<key[index], coefficient * family>`.
  Attribute term(StringRef key, int64_t index, int64_t coefficient,
                 FlatSymbolRefAttr family);
  unsigned rootOf(unsigned buffer) const { return buffers[buffer].root; }
  /// The class (set of roots sharing bytes through in-place results).
  unsigned classOf(unsigned root) const { return rootClass[root]; }
  /// Slots the schedule's micro-batches in flight need.
  int64_t slotsNeeded();
  /// Moves the optimizer block's data-parallel syncs of gradient
  /// accumulators into buckets started in the last micro-batch's backward,
  /// waited for at the start of the optimizer block.
  void hoistGradientSync(uint64_t bucketBytes, int64_t &nextEvent);
  /// Moves each collective or message of `block` up to where its operands
  /// are ready (at most one layer ahead) and waits for it as late as its
  /// users allow (at most one layer later).
  void overlapInBlock(SmallVector<KernelStep, 0> &block, int64_t &nextEvent);
  void computeLiveRanges();

  ModuleOp module;
  SmallVector<BlockSource> sources;
  ScheduleOp schedule;
  uint64_t alignment;
  int64_t stage, stages, worldSize;
  GroupFamilies families;
  /// The variable accesses of the function being visited.
  std::unique_ptr<VariableAccess> access;

  SmallVector<ValueBuffer> buffers;
  DenseMap<Value, unsigned> bufferOf;
  /// Parameters and state by name.
  llvm::StringMap<unsigned> variableBuffers;
  SmallVector<KernelStep, 0> steps;
  /// Per block: its steps [first, end).
  SmallVector<std::pair<size_t, size_t>> blockSteps;
  SmallVector<std::pair<std::string, unsigned>> outputs;

  // Per root buffer: first write (-1 before the run) and last access
  // (steps.size() after it).
  SmallVector<int64_t> start, end;
  /// Per step: the wait completing it when it is started (else -1).
  SmallVector<int64_t> waitOf;
  SmallVector<unsigned> rootClass;
};

FailureOr<unsigned> Lowering::newBuffer(Operation *op, Value value, Role role) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.hasStaticShape() ||
      !grt::convertElementType(type.getElementType())) {
    InFlightDiagnostic diagnostic = op->emitOpError();
    if (auto argument = dyn_cast<BlockArgument>(value))
      diagnostic << "argument #" << argument.getArgNumber() << " has type ";
    else
      diagnostic << "produces ";
    return diagnostic << value.getType()
                      << ", which the runtime cannot hold (static tensors of "
                         "f32, f16, bf16, i64, i32 or i1)";
  }
  unsigned index = buffers.size();
  ValueBuffer &buffer = buffers.emplace_back();
  buffer.type = type;
  buffer.role = role;
  buffer.root = index;
  bufferOf[value] = index;
  return index;
}

unsigned Lowering::newTemporary(RankedTensorType type) {
  unsigned index = buffers.size();
  ValueBuffer &buffer = buffers.emplace_back();
  buffer.type = type;
  buffer.root = index;
  return index;
}

unsigned Lowering::newView(unsigned source, RankedTensorType type) {
  unsigned index = newTemporary(type);
  buffers[index].root = buffers[source].root;
  buffers[index].offsetInRoot = buffers[source].offsetInRoot;
  return index;
}

Attribute Lowering::term(StringRef key, int64_t index, int64_t coefficient,
                         FlatSymbolRefAttr family) {
  MLIRContext *context = module.getContext();
  return grt::RankTermAttr::get(context, StringAttr::get(context, key), index,
                                coefficient, family);
}

LogicalResult Lowering::addVocabBlock(Operation *op, KernelStep &step) {
  ArrayAttr groups;
  int64_t local = 0;
  auto rowsOf = [](Type type) {
    return cast<RankedTensorType>(type).getShape().front();
  };
  auto columnsOf = [](Value logits) {
    return cast<RankedTensorType>(logits.getType()).getShape().back();
  };
  TypeSwitch<Operation *>(op)
      .Case([&](EmbeddingOp op) {
        groups = op.getVocabGroupsAttr();
        local = rowsOf(op.getTable().getType());
      })
      .Case([&](EmbeddingGradOp op) {
        groups = op.getVocabGroupsAttr();
        local = rowsOf(op.getType());
      })
      .Case<VocabCrossEntropyStatsOp, VocabCrossEntropyOp,
            VocabCrossEntropyGradOp>([&](auto op) {
        groups = op.getVocabGroupsAttr();
        local = columnsOf(op.getLogits());
      });
  if (!groups)
    return success();
  FailureOr<FlatSymbolRefAttr> family = families.familyOf(op, groups);
  if (failed(family))
    return failure();
  // Member i holds rows [i · local, (i + 1) · local) of the vocabulary.
  Builder b(op->getContext());
  SmallVector<NamedAttribute> entries(step.config.getValue());
  entries.push_back(b.getNamedAttr("vocab_start", b.getI64IntegerAttr(0)));
  // An op whose blocks pad the vocabulary names its size (describeKernel
  // took it from the op).
  if (!step.config.contains("vocab_size"))
    entries.push_back(b.getNamedAttr(
        "vocab_size",
        b.getI64IntegerAttr(families.sizeOf(*family) * local)));
  step.config = b.getDictionaryAttr(entries);
  step.terms.push_back(term("vocab_start", 0, local, *family));
  return success();
}

FailureOr<SmallVector<Attribute>>
Lowering::shardTerms(Operation *owner, const ParameterShard &shard,
                     StringRef key) {
  SmallVector<Attribute> terms;
  SmallVector<int64_t> block(shard.fullShape);
  for (const ParameterShard::Split &split : shard.splits) {
    FailureOr<FlatSymbolRefAttr> family = families.familyOf(owner, split.groups);
    if (failed(family))
      return failure();
    block[split.dim] /= families.sizeOf(*family);
    terms.push_back(term(key, split.dim, block[split.dim], *family));
  }
  return terms;
}

LogicalResult Lowering::addMaskShard(DropoutMaskOpInterface op,
                                    KernelStep &step) {
  if (!op.getMaskShard())
    return success();
  std::string error;
  FailureOr<ParameterShard> shard =
      ParameterShard::fromAttr(op.getMaskShard(), error);
  if (failed(shard))
    return op->emitOpError() << "shard " << error;
  FailureOr<SmallVector<Attribute>> terms = shardTerms(op, *shard, "offsets");
  if (failed(terms))
    return failure();
  Builder b(op->getContext());
  SmallVector<NamedAttribute> entries(step.config.getValue());
  entries.push_back(b.getNamedAttr(
      "whole_shape", b.getDenseI64ArrayAttr(shard->fullShape)));
  entries.push_back(b.getNamedAttr(
      "offsets", b.getDenseI64ArrayAttr(
                     SmallVector<int64_t>(shard->fullShape.size(), 0))));
  step.config = b.getDictionaryAttr(entries);
  llvm::append_range(step.terms, *terms);
  return success();
}

void Lowering::addTranspose(Operation *op, StringAttr layer, unsigned input,
                            unsigned output, ArrayRef<int64_t> perm) {
  Builder b(op->getContext());
  KernelStep &step = steps.emplace_back();
  step.op = op;
  step.kernel = "transpose";
  step.config = b.getDictionaryAttr(
      b.getNamedAttr("perm", b.getDenseI64ArrayAttr(perm)));
  step.layer = layer;
  step.inputs = {input};
  step.outputs = {output};
}

/// `shape` with `size` inserted at `position`.
static SmallVector<int64_t> insertDim(ArrayRef<int64_t> shape,
                                      int64_t position, int64_t size) {
  SmallVector<int64_t> result(shape);
  result.insert(result.begin() + position, size);
  return result;
}

/// The permutation moving dimension `from` to position `to`.
static SmallVector<int64_t> movePermutation(int64_t rank, int64_t from,
                                            int64_t to) {
  SmallVector<int64_t> perm;
  for (int64_t d = 0; d < rank; ++d)
    if (d != from)
      perm.push_back(d);
  perm.insert(perm.begin() + to, from);
  return perm;
}

/// Collectives run along dimension 0 in the runtime; other dimensions go
/// through a transpose that brings the member index to the front (or back).
LogicalResult Lowering::visitCollective(Operation *op, StringAttr layer) {
  auto groups = op->getAttrOfType<ArrayAttr>("groups");
  FailureOr<FlatSymbolRefAttr> family = families.familyOf(op, groups);
  if (failed(family))
    return failure();
  if (isa<ReplicateOp>(op)) {
    bufferOf[op->getResult(0)] = bufferOf.lookup(op->getOperand(0));
    return success();
  }
  Value input = op->getOperand(0), result = op->getResult(0);
  auto inputType = cast<RankedTensorType>(input.getType());
  auto resultType = cast<RankedTensorType>(result.getType());
  int64_t members = families.sizeOf(*family);
  Builder b(op->getContext());
  if (auto shard = dyn_cast<ShardOp>(op)) {
    // The member's part is a local slice: member i's starts at i · part.
    SmallVector<int64_t> starts(inputType.getRank(), 0),
        limits(inputType.getShape()), strides(inputType.getRank(), 1);
    int64_t dim = shard.getDim();
    int64_t part = resultType.getDimSize(dim);
    limits[dim] = part;
    FailureOr<unsigned> output = newBuffer(op, result, Role::temporary);
    if (failed(output))
      return failure();
    KernelStep &step = steps.emplace_back();
    step.op = op;
    step.kernel = "slice";
    step.config = b.getDictionaryAttr(
        {b.getNamedAttr("starts", b.getDenseI64ArrayAttr(starts)),
         b.getNamedAttr("limits", b.getDenseI64ArrayAttr(limits)),
         b.getNamedAttr("strides", b.getDenseI64ArrayAttr(strides))});
    step.terms = {term("starts", dim, part, *family),
                  term("limits", dim, part, *family)};
    step.layer = layer;
    step.inputs = {bufferOf.lookup(input)};
    step.outputs = {*output};
    return success();
  }
  KernelStep collective;
  collective.op = op;
  collective.layer = layer;
  collective.group = *family;
  auto reduceKind = [](CollectiveReduction reduction) {
    switch (reduction) {
    case CollectiveReduction::sum:
      return grt::ReduceKind::sum;
    case CollectiveReduction::avg:
      return grt::ReduceKind::avg;
    case CollectiveReduction::max:
      return grt::ReduceKind::max;
    }
    llvm_unreachable("unknown reduction");
  };
  auto tensorOf = [&](ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, inputType.getElementType());
  };
  if (auto allReduce = dyn_cast<AllReduceOp>(op)) {
    collective.kind = KernelStep::Kind::allReduce;
    collective.reduce = reduceKind(allReduce.getReduce());
    collective.inputs = {bufferOf.lookup(input)};
    FailureOr<unsigned> output = resultBuffer(op, result);
    if (failed(output))
      return failure();
    collective.outputs = {*output};
    steps.push_back(std::move(collective));
    return success();
  }
  if (auto gather = dyn_cast<AllGatherOp>(op)) {
    // Gather [1, part...] into [members, part...], then move the member
    // index next to `dim`, whose bytes are then the result's.
    int64_t dim = gather.getDim();
    collective.kind = KernelStep::Kind::allGather;
    collective.inputs = {
        newView(bufferOf.lookup(input),
                tensorOf(insertDim(inputType.getShape(), 0, 1)))};
    // A gathered weight assigned to its variable (ZeRO-1/2's updated
    // slices) lands in the variable's bytes.
    std::optional<unsigned> variable;
    if (access->writtenInto(result)) {
      FailureOr<unsigned> index = resultBuffer(op, result);
      if (failed(index))
        return failure();
      variable = *index;
    }
    auto wholeLayout = [&](int64_t at) {
      RankedTensorType type =
          tensorOf(insertDim(inputType.getShape(), at, members));
      return variable && at == dim ? newView(*variable, type)
                                   : newTemporary(type);
    };
    unsigned gathered = wholeLayout(0);
    collective.outputs = {gathered};
    steps.push_back(std::move(collective));
    unsigned whole = gathered;
    if (dim != 0) {
      whole = wholeLayout(dim);
      addTranspose(op, layer, gathered, whole,
                   movePermutation(inputType.getRank() + 1, 0, dim));
    }
    if (variable)
      return success();
    // A view's root precedes it.
    FailureOr<unsigned> output = newBuffer(op, result, Role::temporary);
    if (failed(output))
      return failure();
    buffers[*output].root = whole;
    return success();
  }
  if (auto exchange = dyn_cast<AllToAllOp>(op)) {
    // Bring the member index of split_dim to the front, exchange the parts,
    // and move the member index next to concat_dim, whose bytes are then
    // the result's.
    int64_t split = exchange.getSplitDim(), concat = exchange.getConcatDim();
    int64_t rank = inputType.getRank();
    SmallVector<int64_t> part(inputType.getShape());
    part[split] /= members;
    unsigned staged =
        newView(bufferOf.lookup(input), tensorOf(insertDim(part, split, members)));
    if (split != 0) {
      unsigned front = newTemporary(tensorOf(insertDim(part, 0, members)));
      addTranspose(op, layer, staged, front,
                   movePermutation(rank + 1, split, 0));
      staged = front;
    }
    collective.kind = KernelStep::Kind::allToAll;
    collective.inputs = {staged};
    unsigned exchanged = newTemporary(tensorOf(insertDim(part, 0, members)));
    collective.outputs = {exchanged};
    steps.push_back(std::move(collective));
    unsigned whole = exchanged;
    if (concat != 0) {
      whole = newTemporary(tensorOf(insertDim(part, concat, members)));
      addTranspose(op, layer, exchanged, whole,
                   movePermutation(rank + 1, 0, concat));
    }
    FailureOr<unsigned> output = newBuffer(op, result, Role::temporary);
    if (failed(output))
      return failure();
    buffers[*output].root = whole;
    return success();
  }
  auto scatter = cast<ReduceScatterOp>(op);
  int64_t dim = scatter.getDim();
  collective.kind = KernelStep::Kind::reduceScatter;
  collective.reduce = reduceKind(scatter.getReduce());
  // Bring the member index of `dim` to the front, reduce-scatter, and view
  // the [1, part...] result as the part.
  SmallVector<int64_t> split = insertDim(resultType.getShape(), dim, members);
  unsigned staged = newView(bufferOf.lookup(input), tensorOf(split));
  if (dim != 0) {
    unsigned front = newTemporary(
        tensorOf(insertDim(resultType.getShape(), 0, members)));
    addTranspose(op, layer, staged, front,
                 movePermutation(resultType.getRank() + 1, dim, 0));
    staged = front;
  }
  collective.inputs = {staged};
  unsigned scattered =
      newTemporary(tensorOf(insertDim(resultType.getShape(), 0, 1)));
  collective.outputs = {scattered};
  steps.push_back(std::move(collective));
  FailureOr<unsigned> output = newBuffer(op, result, Role::temporary);
  if (failed(output))
    return failure();
  buffers[*output].root = scattered;
  return success();
}

LogicalResult Lowering::visit(Operation *op, StringAttr layer) {
  if (isa<AllReduceOp, ReplicateOp, AllGatherOp, ReduceScatterOp, AllToAllOp,
          ShardOp>(op))
    return visitCollective(op, layer);
  if (auto nested = dyn_cast<LayerOp>(op)) {
    Block &body = nested.getBodyBlock();
    for (auto [argument, operand] :
         llvm::zip(body.getArguments(), nested.getInputs()))
      bufferOf[argument] = bufferOf.lookup(operand);
    for (Operation &inner : body.without_terminator())
      if (failed(visit(&inner, nested.getLayerNameAttr())))
        return failure();
    auto yield = cast<YieldOp>(body.getTerminator());
    for (auto [result, value] :
         llvm::zip(nested.getResults(), yield.getValues()))
      bufferOf[result] = bufferOf.lookup(value);
    return success();
  }
  if (StringAttr name = variableOf(op)) {
    FailureOr<unsigned> variable = variableBuffer(op, name);
    if (failed(variable))
      return failure();
    if (!access->isSnapshot(op)) {
      bufferOf[op->getResult(0)] = *variable;
      return success();
    }
    FailureOr<unsigned> copy =
        newBuffer(op, op->getResult(0), Role::temporary);
    if (failed(copy))
      return failure();
    addCopy(op, layer, *variable, *copy);
    return success();
  }
  if (auto assign = dyn_cast<AssignOp>(op)) {
    FailureOr<unsigned> variable =
        variableBuffer(op, assign.getNameAttr().getAttr());
    if (failed(variable))
      return failure();
    if (access->isCopied(assign))
      addCopy(op, layer, bufferOf.lookup(assign.getValue()), *variable);
    return success();
  }
  if (auto constant = dyn_cast<ConstantOp>(op); constant && !getFillValue(op)) {
    FailureOr<unsigned> index =
        newBuffer(op, constant.getResult(), Role::constant);
    if (failed(index))
      return failure();
    buffers[*index].value = constant.getValue();
    return success();
  }
  // Folded into their user's kernel, which reads the operand itself.
  if (isWidenedAddend(op) || isSummedSquare(op)) {
    bufferOf[op->getResult(0)] = bufferOf.lookup(op->getOperand(0));
    return success();
  }
  if (auto reshape = dyn_cast<ReshapeOp>(op)) {
    // A view: the same bytes under another shape.
    const ValueBuffer source = buffers[bufferOf.lookup(reshape.getInput())];
    FailureOr<unsigned> index =
        newBuffer(op, reshape.getResult(), Role::temporary);
    if (failed(index))
      return failure();
    buffers[*index].root = source.root;
    buffers[*index].offsetInRoot = source.offsetInRoot;
    return success();
  }
  // Pipeline messages name the peer stage; each rank talks to the rank of
  // that stage with its own local index.
  if (isa<SendOp, RecvOp>(op)) {
    KernelStep step{op, "", {}, layer, {}, {}};
    auto send = dyn_cast<SendOp>(op);
    auto recv = dyn_cast<RecvOp>(op);
    step.kind = send ? KernelStep::Kind::send : KernelStep::Kind::recv;
    step.peer = send ? send.getPeer() : recv.getPeer();
    step.tag = send ? send.getTag() : recv.getTag();
    if (step.peer >= stages || step.peer == stage)
      return op->emitOpError() << "goes to stage " << step.peer
                               << ", not another stage of the " << stages
                               << "-stage pipeline";
    if (send) {
      step.inputs.push_back(bufferOf.lookup(send.getValue()));
    } else {
      FailureOr<unsigned> index =
          newBuffer(op, recv.getResult(), Role::temporary);
      if (failed(index))
        return failure();
      step.outputs.push_back(*index);
    }
    steps.push_back(std::move(step));
    return success();
  }
  FailureOr<std::pair<std::string, DictionaryAttr>> kernel = describeKernel(op);
  if (failed(kernel))
    return failure();
  KernelStep step{op, kernel->first, kernel->second, layer, {}, {}};
  if (failed(addVocabBlock(op, step)))
    return failure();
  if (auto masked = dyn_cast<DropoutMaskOpInterface>(op);
      masked && failed(addMaskShard(masked, step)))
    return failure();
  for (Value operand : op->getOperands())
    step.inputs.push_back(bufferOf.lookup(operand));
  // The `add` kernel takes a 16-bit addend second.
  if (isa<AddOp>(op) && isWidenedAddend(op->getOperand(0).getDefiningOp()))
    std::swap(step.inputs[0], step.inputs[1]);
  for (Value result : op->getResults()) {
    FailureOr<unsigned> index = resultBuffer(op, result);
    if (failed(index))
      return failure();
    step.outputs.push_back(*index);
  }
  steps.push_back(std::move(step));
  return success();
}

FailureOr<unsigned> Lowering::resultBuffer(Operation *op, Value result) {
  StringAttr variable = access->writtenInto(result);
  if (!variable)
    return newBuffer(op, result, Role::temporary);
  FailureOr<unsigned> index = variableBuffer(op, variable);
  if (succeeded(index))
    bufferOf[result] = *index;
  return index;
}

/// The shard a parameter or state variable holds. State shaped like its
/// sharded parameter is the same slice of the whole state tensor.
static std::optional<ParameterShard> variableShard(ModuleOp module,
                                                   Operation *symbol) {
  std::optional<ParameterShard> shard = getParameterShard(symbol);
  if (auto state = dyn_cast<StateOp>(symbol); !shard && state)
    if (auto of = state.getParameterAttr())
      if (auto owner = module.lookupSymbol<ParameterOp>(of);
          owner && owner.getTensorType() == state.getTensorType())
        return getParameterShard(owner);
  return shard;
}

FailureOr<unsigned> Lowering::variableBuffer(Operation *user, StringAttr name) {
  auto it = variableBuffers.find(name);
  if (it != variableBuffers.end())
    return it->second;
  Operation *symbol = module.lookupSymbol(name);
  auto parameter = dyn_cast_or_null<ParameterOp>(symbol);
  auto state = dyn_cast_or_null<StateOp>(symbol);
  if (!parameter && !state)
    return user->emitOpError() << "refers to '" << name.getValue()
                               << "', which is neither a parameter nor state";
  SmallVector<Attribute> sliceTerms;
  if (std::optional<ParameterShard> shard = variableShard(module, symbol)) {
    FailureOr<SmallVector<Attribute>> terms =
        shardTerms(symbol, *shard, "slice_start");
    if (failed(terms))
      return failure();
    sliceTerms = std::move(*terms);
  }
  RankedTensorType type =
      parameter ? parameter.getTensorType() : state.getTensorType();
  // The buffer stands for the variable, not for one SSA value.
  unsigned index = buffers.size();
  if (!grt::convertElementType(type.getElementType()))
    return user->emitOpError() << "variable '" << name.getValue()
                               << "' has type " << type
                               << ", which the runtime cannot hold";
  ValueBuffer &buffer = buffers.emplace_back();
  buffer.type = type;
  buffer.role = parameter ? Role::parameter : Role::state;
  buffer.root = index;
  buffer.name = name.str();
  buffer.parameter = parameter;
  buffer.state = state;
  buffer.sliceTerms = std::move(sliceTerms);
  variableBuffers[name] = index;
  return index;
}

void Lowering::addCopy(Operation *op, StringAttr layer, unsigned from,
                       unsigned to) {
  steps.push_back(KernelStep{op, "copy", DictionaryAttr::get(op->getContext()),
                             layer, {from}, {to}});
}

LogicalResult Lowering::collect() {
  // With a schedule: the forward's arguments are per-micro-batch inputs, its
  // results what the backward takes, and the optimizer's results the
  // outputs; a lone function's arguments and results are the program's.
  SmallVector<unsigned> forwardResults;
  for (auto [blockIndex, source] : llvm::enumerate(sources)) {
    func::FuncOp function = source.function;
    access = std::make_unique<VariableAccess>(function);
    size_t first = steps.size();
    bool isForward = schedule && blockIndex == 0;
    bool isBackward = schedule && blockIndex == 1;
    for (auto [index, argument] : llvm::enumerate(function.getArguments())) {
      if (isBackward) {
        bufferOf[argument] = forwardResults[index];
        continue;
      }
      FailureOr<unsigned> buffer = newBuffer(function, argument, Role::input);
      if (failed(buffer))
        return failure();
      auto name = function.getArgAttrOfType<StringAttr>(
          index, GalvatronDialect::getNameAttrName());
      buffers[*buffer].name =
          name ? name.str() : "input" + std::to_string(index);
      if (isForward)
        buffers[*buffer].block = unsigned(blockIndex);
    }
    for (Operation &op : function.getBody().front()) {
      auto ret = dyn_cast<func::ReturnOp>(op);
      if (!ret) {
        if (failed(visit(&op, StringAttr())))
          return failure();
        continue;
      }
      for (auto [index, value] : llvm::enumerate(ret.getOperands())) {
        if (isForward) {
          forwardResults.push_back(bufferOf.lookup(value));
          continue;
        }
        auto name = function.getResultAttrOfType<StringAttr>(
            index, GalvatronDialect::getNameAttrName());
        outputs.emplace_back(
            name ? name.str() : "output" + std::to_string(index),
            bufferOf.lookup(value));
      }
    }
    blockSteps.emplace_back(first, steps.size());
  }
  return success();
}

void Lowering::computeLiveRanges() {
  int64_t count = steps.size();
  start.assign(buffers.size(), count);
  end.assign(buffers.size(), -1);
  for (auto [index, buffer] : llvm::enumerate(buffers)) {
    if (buffer.root != index)
      continue;
    if (buffer.role != Role::temporary)
      start[index] = -1;
    if (buffer.role == Role::parameter || buffer.role == Role::state ||
        buffer.role == Role::constant)
      end[index] = count;
  }
  for (auto [i, step] : llvm::enumerate(steps)) {
    for (unsigned input : step.inputs)
      end[rootOf(input)] = std::max<int64_t>(end[rootOf(input)], i);
    for (unsigned output : step.outputs) {
      start[output] = std::min<int64_t>(start[output], i);
      end[output] = std::max<int64_t>(end[output], i);
    }
  }
  for (auto &[name, buffer] : outputs)
    end[rootOf(buffer)] = count;
  // A started instruction's buffers are its own until its wait.
  waitOf.assign(steps.size(), -1);
  for (auto [i, step] : llvm::enumerate(steps)) {
    if (!step.communicates() || step.event < 0 || step.lastMicroBatch)
      continue;
    size_t w = i + 1;
    while (steps[w].kind != KernelStep::Kind::wait ||
           steps[w].event != step.event)
      ++w;
    waitOf[i] = int64_t(w);
    for (unsigned buffer : llvm::concat<unsigned>(step.inputs, step.outputs))
      end[rootOf(buffer)] = std::max<int64_t>(end[rootOf(buffer)], w);
  }
}

void Lowering::assignInPlace() {
  rootClass.assign(buffers.size(), 0);
  for (unsigned i = 0; i < buffers.size(); ++i)
    rootClass[i] = i;
  for (auto [index, step] : llvm::enumerate(steps)) {
    // Bit i: output 0 may occupy exactly the bytes of input i.
    uint32_t inPlaceInputs = 0;
    if (step.kind == KernelStep::Kind::kernel)
      inPlaceInputs = rt::findKernel(step.kernel)->inPlaceInputs;
    else if (step.kind == KernelStep::Kind::allReduce)
      inPlaceInputs = 1;
    if (!inPlaceInputs || step.outputs.empty())
      continue;
    unsigned output = step.outputs[0];
    // A result computed in a parameter or state already has its storage.
    if (buffers[output].role != Role::temporary)
      continue;
    uint64_t bytes = buffers[output].bytes();
    auto overwritable = [&](unsigned slot) {
      if (slot >= 32 || !(inPlaceInputs >> slot & 1))
        return false;
      const ValueBuffer &input = buffers[step.inputs[slot]];
      const ValueBuffer &root = buffers[input.root];
      // Only a temporary read here for the last time; every operand using
      // its bytes must be one the kernel may overwrite, whole.
      int64_t lastRead = waitOf[index] >= 0 ? waitOf[index] : int64_t(index);
      if (root.role != Role::temporary || end[input.root] != lastRead ||
          root.bytes() != bytes)
        return false;
      for (auto [other, operand] : llvm::enumerate(step.inputs)) {
        const ValueBuffer &buffer = buffers[operand];
        if (buffer.root == input.root &&
            (other >= 32 || !(inPlaceInputs >> other & 1) ||
             buffer.offsetInRoot != 0 || buffer.bytes() != bytes))
          return false;
      }
      return true;
    };
    for (unsigned slot = 0; slot < step.inputs.size(); ++slot) {
      if (overwritable(slot)) {
        rootClass[output] = classOf(rootOf(step.inputs[slot]));
        break;
      }
    }
  }
}

int64_t Lowering::slotsNeeded() {
  int64_t flying = 0, most = 1;
  for (auto [kind, micro] : schedule.expand()) {
    if (kind == ScheduleStepKind::forward)
      most = std::max(most, ++flying);
    else if (kind == ScheduleStepKind::backward)
      --flying;
  }
  return most;
}

/// The roots `step` reads and writes.
static void rootsOf(const KernelStep &step, ArrayRef<ValueBuffer> buffers,
                    DenseSet<unsigned> &reads, DenseSet<unsigned> &writes) {
  for (unsigned input : step.inputs)
    reads.insert(buffers[input].root);
  for (unsigned output : step.outputs)
    writes.insert(buffers[output].root);
}

/// Whether `step` must run after (or before) one that reads `reads` and
/// writes `writes`: it writes what the other reads or writes, or reads
/// what the other writes.
static bool dependsOn(const KernelStep &step, ArrayRef<ValueBuffer> buffers,
                      const DenseSet<unsigned> &reads,
                      const DenseSet<unsigned> &writes) {
  for (unsigned input : step.inputs)
    if (writes.contains(buffers[input].root))
      return true;
  for (unsigned output : step.outputs)
    if (reads.contains(buffers[output].root) ||
        writes.contains(buffers[output].root))
      return true;
  return false;
}

void Lowering::hoistGradientSync(uint64_t bucketBytes, int64_t &nextEvent) {
  auto [backwardFirst, backwardEnd] = blockSteps[1];
  auto [optimizerFirst, optimizerEnd] = blockSteps[2];
  int64_t perStage = worldSize / stages;
  auto insideStage = [&](FlatSymbolRefAttr family) {
    for (auto [size, stride] : families.all().lookup(family.getAttr()).axes)
      if (size * stride > perStage)
        return false;
    return true;
  };
  auto touches = [&](const KernelStep &step, unsigned root) {
    return llvm::any_of(llvm::concat<const unsigned>(step.inputs, step.outputs),
                        [&](unsigned b) { return rootOf(b) == root; });
  };
  // Whether the all-reduce at `i` of accumulator `root` into a temporary
  // may reduce in place instead: the optimizer reads the temporary only
  // before it next writes the accumulator, and never reads the
  // accumulator itself after the all-reduce.
  auto canReduceInPlace = [&](size_t i, unsigned root) {
    unsigned result = rootOf(steps[i].outputs[0]);
    if (result == root)
      return true;
    if (buffers[result].role != Role::temporary ||
        buffers[result].bytes() != buffers[root].bytes() ||
        buffers[steps[i].inputs[0]].offsetInRoot != 0 ||
        buffers[steps[i].inputs[0]].bytes() != buffers[root].bytes())
      return false;
    bool overwritten = false;
    for (size_t j = i + 1; j < optimizerEnd; ++j) {
      for (unsigned input : steps[j].inputs)
        if (rootOf(input) == root || (overwritten && rootOf(input) == result))
          return false;
      for (unsigned output : steps[j].outputs)
        overwritten |= rootOf(output) == root;
    }
    return true;
  };
  // An all-reduce of an accumulator, inside the stage, before the
  // optimizer uses the accumulator otherwise (made in place when it is
  // not): it may run as soon as the last backward wrote the accumulator
  // (its position there).
  SmallVector<std::pair<size_t, size_t>> moved; // (optimizer step, after)
  DenseSet<unsigned> used;
  for (size_t i = optimizerFirst; i < optimizerEnd; ++i) {
    const KernelStep &step = steps[i];
    if (step.kind == KernelStep::Kind::allReduce &&
        buffers[rootOf(step.inputs[0])].role == Role::state &&
        !used.contains(rootOf(step.inputs[0])) && insideStage(step.group) &&
        canReduceInPlace(i, rootOf(step.inputs[0]))) {
      unsigned root = rootOf(step.inputs[0]);
      for (size_t j = backwardEnd; j-- > backwardFirst;)
        if (touches(steps[j], root)) {
          moved.emplace_back(i, j);
          break;
        }
    }
    for (unsigned b : llvm::concat<const unsigned>(step.inputs, step.outputs))
      used.insert(rootOf(b));
  }
  if (moved.empty())
    return;
  // The result's bytes become the accumulator's.
  for (auto [i, after] : moved) {
    unsigned root = rootOf(steps[i].inputs[0]);
    unsigned result = rootOf(steps[i].outputs[0]);
    if (result == root)
      continue;
    for (ValueBuffer &buffer : buffers)
      if (buffer.root == result)
        buffer.root = root;
  }
  llvm::stable_sort(moved, [](auto a, auto b) { return a.second < b.second; });
  // Buckets of about `bucketBytes`, in the order the backward completes
  // their gradients, each started after its last gradient.
  SmallVector<int64_t> events;
  DenseMap<size_t, SmallVector<KernelStep, 0>> startsAfter;
  uint64_t bytes = 0;
  SmallVector<KernelStep, 0> bucket;
  for (auto [k, entry] : llvm::enumerate(moved)) {
    KernelStep step = steps[entry.first];
    bytes += buffers[step.inputs[0]].bytes();
    bucket.push_back(step);
    if (bytes < bucketBytes && k + 1 < moved.size())
      continue;
    int64_t event = nextEvent++;
    events.push_back(event);
    LLVM_DEBUG(llvm::dbgs() << "gradient bucket " << event << ": "
                            << bucket.size() << " tensors, " << bytes
                            << " bytes\n");
    for (KernelStep &member : bucket) {
      member.event = event;
      member.lastMicroBatch = true;
      startsAfter[entry.second].push_back(member);
    }
    bucket.clear();
    bytes = 0;
  }
  DenseSet<size_t> removed;
  for (auto [i, after] : moved)
    removed.insert(i);
  SmallVector<KernelStep, 0> reordered;
  SmallVector<std::pair<size_t, size_t>> ranges;
  for (auto [b, range] : llvm::enumerate(blockSteps)) {
    size_t first = reordered.size();
    if (b == 2)
      for (int64_t event : events) {
        KernelStep &wait = reordered.emplace_back();
        wait.op = steps[range.first].op;
        wait.kind = KernelStep::Kind::wait;
        wait.event = event;
      }
    for (size_t i = range.first; i < range.second; ++i) {
      if (!removed.contains(i))
        reordered.push_back(steps[i]);
      if (auto it = startsAfter.find(i); it != startsAfter.end())
        reordered.append(it->second.begin(), it->second.end());
    }
    ranges.emplace_back(first, reordered.size());
  }
  steps = std::move(reordered);
  blockSteps = std::move(ranges);
}

void Lowering::overlapInBlock(SmallVector<KernelStep, 0> &block,
                              int64_t &nextEvent) {
  // Layers in the order the block runs them.
  auto layerIndices = [&]() {
    SmallVector<int64_t> indices;
    int64_t index = 0;
    for (auto [i, step] : llvm::enumerate(block)) {
      if (i && step.layer != block[i - 1].layer)
        ++index;
      indices.push_back(index);
    }
    return indices;
  };
  SmallVector<int64_t> layerOf = layerIndices();
  // Starts move up, past kernels only (collectives and messages keep their
  // order, so every rank still issues them alike).
  for (size_t i = 0; i < block.size(); ++i) {
    if (!block[i].communicates() || block[i].event >= 0)
      continue;
    DenseSet<unsigned> reads, writes;
    rootsOf(block[i], buffers, reads, writes);
    size_t to = i;
    while (to > 0 && block[to - 1].kind == KernelStep::Kind::kernel &&
           layerOf[to - 1] + 1 >= layerOf[i] &&
           !dependsOn(block[to - 1], buffers, reads, writes))
      --to;
    if (to == i)
      continue;
    KernelStep moving = block[i];
    int64_t layer = layerOf[i];
    block.erase(block.begin() + i);
    layerOf.erase(layerOf.begin() + i);
    block.insert(block.begin() + to, moving);
    layerOf.insert(layerOf.begin() + to, layer);
  }
  // Waits go down, before the first user, at most to the end of the next
  // layer; a user that only accumulates into state (a ZeRO gradient added
  // to its shard) sinks with the wait.
  auto accumulates = [&](const KernelStep &step) {
    return step.kind == KernelStep::Kind::kernel &&
           llvm::all_of(step.outputs, [&](unsigned output) {
             Role role = buffers[rootOf(output)].role;
             return role == Role::state || role == Role::parameter;
           });
  };
  // Per position: the waits (and the accumulations sunk with them) placed
  // before it; positions whose step sank.
  std::map<size_t, SmallVector<KernelStep, 0>> before;
  DenseSet<size_t> sunk;
  for (size_t i = 0; i < block.size(); ++i) {
    if (!block[i].communicates() || block[i].event >= 0)
      continue;
    block[i].event = nextEvent++;
    DenseSet<unsigned> reads, writes;
    rootsOf(block[i], buffers, reads, writes);
    SmallVector<size_t> sinking;
    size_t at = i + 1;
    for (; at < block.size() && layerOf[at] <= layerOf[i] + 1; ++at) {
      if (!dependsOn(block[at], buffers, reads, writes))
        continue;
      // An accumulation that sank already runs later than here: wait
      // before its old place, which is earlier.
      if (sunk.contains(at) || !accumulates(block[at]))
        break;
      sinking.push_back(at);
      rootsOf(block[at], buffers, reads, writes);
    }
    // Never inside a group of starts sharing an event (a bucket).
    auto continuesGroup = [&](size_t at) {
      return at < block.size() && block[at].communicates() &&
             block[at].event >= 0 && block[at - 1].communicates() &&
             block[at - 1].event == block[at].event;
    };
    while (continuesGroup(at))
      --at;
    KernelStep wait;
    wait.op = block[i].op;
    wait.layer = block[i].layer;
    wait.kind = KernelStep::Kind::wait;
    wait.event = block[i].event;
    SmallVector<KernelStep, 0> &placedHere = before[at];
    placedHere.push_back(wait);
    for (size_t k : sinking) {
      placedHere.push_back(block[k]);
      sunk.insert(k);
    }
  }
  SmallVector<KernelStep, 0> placed;
  for (size_t i = 0; i <= block.size(); ++i) {
    if (auto it = before.find(i); it != before.end())
      placed.append(it->second.begin(), it->second.end());
    if (i < block.size() && !sunk.contains(i))
      placed.push_back(block[i]);
  }
  block = std::move(placed);
}

void Lowering::placeCommunication(const CommunicationPlacement &placement) {
  if (placement.overlap) {
    int64_t nextEvent = 0;
    if (schedule)
      hoistGradientSync(placement.bucketBytes, nextEvent);
    SmallVector<KernelStep, 0> all;
    SmallVector<std::pair<size_t, size_t>> ranges;
    for (auto [first, end] : blockSteps) {
      SmallVector<KernelStep, 0> block(steps.begin() + first,
                                       steps.begin() + end);
      overlapInBlock(block, nextEvent);
      ranges.emplace_back(all.size(), all.size() + block.size());
      all.append(block.begin(), block.end());
    }
    steps = std::move(all);
    blockSteps = std::move(ranges);
  }
  computeLiveRanges();
}

Layout Lowering::plan() {
  Layout layout;
  layout.offsets.assign(buffers.size(), 0);
  layout.slotted.assign(buffers.size(), false);
  // Bytes live throughout, packed.
  uint64_t persistent = 0;
  for (auto [index, buffer] : llvm::enumerate(buffers)) {
    if (buffer.root != index ||
        (buffer.role != Role::parameter && buffer.role != Role::state &&
         buffer.role != Role::constant))
      continue;
    layout.offsets[index] = persistent;
    persistent += llvm::alignTo(buffer.bytes(), alignment);
  }
  // One request per class of the other roots sharing bytes, by the block
  // (or, with a schedule, the frame of forward and backward) using it.
  struct Class {
    unsigned root;
    MemoryRequest request;
  };
  SmallVector<Class> classes;
  DenseMap<unsigned, unsigned> classIndex;
  for (auto [index, buffer] : llvm::enumerate(buffers)) {
    if (buffer.root != index || start[index] > end[index] ||
        buffer.role == Role::parameter || buffer.role == Role::state ||
        buffer.role == Role::constant)
      continue;
    auto [it, inserted] = classIndex.try_emplace(classOf(index), classes.size());
    if (inserted) {
      classes.push_back(
          {classOf(index), {buffer.bytes(), start[index], end[index]}});
      continue;
    }
    MemoryRequest &request = classes[it->second].request;
    request.start = std::min(request.start, start[index]);
    request.end = std::max(request.end, end[index]);
  }
  auto place = [&](ArrayRef<unsigned> members, uint64_t boundary) {
    SmallVector<MemoryRequest> requests;
    for (unsigned c : members)
      requests.push_back(classes[c].request);
    return planMemory(requests, alignment, boundary);
  };
  SmallVector<uint64_t> classOffset(classes.size(), 0);
  SmallVector<bool> classSlotted(classes.size(), false);
  uint64_t dynamic = 0;
  if (!schedule) {
    SmallVector<unsigned> all =
        llvm::to_vector(llvm::seq<unsigned>(0, classes.size()));
    MemoryPlan memory = place(all, 0);
    for (unsigned c : all)
      classOffset[c] = persistent + memory.offsets[c];
    dynamic = memory.size;
  } else {
    // What a micro-batch keeps from its forward to its backward fills the
    // bottom of its frame (slot 0); the frame's other requests lie wholly
    // in the slot or wholly above it (the scratch every slot shares).
    int64_t backwardStart = int64_t(blockSteps[1].first);
    int64_t optimizerStart = int64_t(blockSteps[2].first);
    SmallVector<unsigned> frame, optimizer;
    uint64_t slotSize = 0;
    for (auto [c, cls] : llvm::enumerate(classes)) {
      MemoryRequest &request = cls.request;
      if (request.start >= optimizerStart) {
        optimizer.push_back(c);
        continue;
      }
      frame.push_back(c);
      if (request.start < backwardStart && request.end >= backwardStart) {
        request.fixedOffset = slotSize;
        slotSize += llvm::alignTo(request.size, alignment);
      }
    }
    // With one slot nothing moves: the whole frame is the slot, and a
    // request may span what the slot keeps and what it does not.
    int64_t slots = slotsNeeded();
    MemoryPlan memory = place(frame, slots > 1 ? slotSize : 0);
    if (slots == 1)
      slotSize = llvm::alignTo(memory.size, alignment);
    for (auto [i, c] : llvm::enumerate(frame)) {
      uint64_t offset = memory.offsets[i];
      classSlotted[c] = offset < slotSize;
      classOffset[c] = classSlotted[c]
                           ? persistent + offset
                           : persistent + slots * slotSize + (offset - slotSize);
    }
    uint64_t frameBytes =
        slots * slotSize + (memory.size > slotSize ? memory.size - slotSize : 0);
    // The optimizer runs with no micro-batch in flight.
    MemoryPlan update = place(optimizer, 0);
    for (auto [i, c] : llvm::enumerate(optimizer))
      classOffset[c] = persistent + update.offsets[i];
    dynamic = std::max(frameBytes, update.size);
    layout.slotOffset = persistent;
    layout.slotSize = slotSize;
  }
  for (auto [c, cls] : llvm::enumerate(classes)) {
    layout.offsets[cls.root] = classOffset[c];
    layout.slotted[cls.root] = classSlotted[c];
  }
  // Members of a class take its offset.
  for (auto [index, buffer] : llvm::enumerate(buffers))
    if (buffer.root == index && classOf(index) != index) {
      layout.offsets[index] = layout.offsets[classOf(index)];
      layout.slotted[index] = layout.slotted[classOf(index)];
    }
  layout.arena = persistent + dynamic;
  return layout;
}

/// Model FLOPs of one forward call: every matrix op of the function.
static double forwardFlops(func::FuncOp function) {
  double flops = 0;
  function.walk([&](FlopCountOpInterface op) {
    flops += static_cast<double>(op.getFlops());
  });
  return flops;
}

/// The classes of the loss a forward computes, or 0 without a loss (a
/// pipeline stage before the last).
static int64_t vocabularyOf(func::FuncOp forward) {
  int64_t vocabulary = 0;
  auto columnsOf = [](Value logits) {
    return cast<RankedTensorType>(logits.getType()).getShape().back();
  };
  forward.walk([&](Operation *op) {
    if (auto loss = dyn_cast<CrossEntropyOp>(op))
      vocabulary = columnsOf(loss.getLogits());
    // The vocabulary split over the loss's groups (less their padding).
    if (auto loss = dyn_cast<VocabCrossEntropyOp>(op))
      vocabulary = loss.getVocabSize().value_or(
          columnsOf(loss.getLogits()) *
          cast<DenseI64ArrayAttr>(loss.getVocabGroups()[0]).size());
  });
  return vocabulary;
}

void Lowering::emit(const Layout &layout, StringRef modelDirectory) {
  MLIRContext *context = module.getContext();
  OpBuilder builder(context);
  Location loc = sources.front().function.getLoc();
  builder.setInsertionPointToEnd(module.getBody());
  auto model = module->getAttrOfType<StringAttr>(
      GalvatronDialect::getModelAttrName());
  // A training step's model FLOPs: 3 x the forward of every micro-batch on
  // each of the stage's ranks.
  TrainingAttr training;
  if (schedule)
    training = TrainingAttr::get(
        context, schedule.getLoss(),
        3.0 * static_cast<double>(schedule.getMicroBatches()) *
            forwardFlops(sources.front().function) *
            static_cast<double>(worldSize / stages),
        vocabularyOf(sources.front().function));
  auto executable = grt::ExecutableOp::create(
      builder, loc, worldSize, alignment, stages, model,
      modelDirectory.empty() ? StringAttr() : builder.getStringAttr(modelDirectory),
      training);
  builder.setInsertionPointToStart(&executable.getBody().emplaceBlock());
  for (auto &[name, mesh] : families.all()) {
    SmallVector<int64_t> sizes, strides;
    for (auto [size, stride] : mesh.axes) {
      sizes.push_back(size);
      strides.push_back(stride);
    }
    grt::GroupOp::create(builder, loc, name, sizes, strides);
  }
  auto program = grt::ProgramOp::create(builder, loc, stage, layout.arena);
  builder.setInsertionPointToStart(&program.getBody().emplaceBlock());

  auto offsetOf = [&](unsigned index) {
    return int64_t(layout.offsets[buffers[index].root]);
  };
  auto memrefOf = [](RankedTensorType type) {
    return MemRefType::get(type.getShape(), type.getElementType());
  };
  SmallVector<Value> values(buffers.size());
  // Inputs, parameters and constants first, then temporaries and views in
  // the order they were created (a view follows its root).
  for (Role role : {Role::input, Role::parameter, Role::state, Role::constant,
                    Role::temporary}) {
    for (auto [index, buffer] : llvm::enumerate(buffers)) {
      if (buffer.role != role)
        continue;
      MemRefType type = memrefOf(buffer.type);
      if (buffer.root != index) {
        values[index] = grt::ViewOp::create(builder, loc, type,
                                            values[buffer.root],
                                            buffer.offsetInRoot);
        continue;
      }
      bool slotted = layout.slotted[index];
      switch (role) {
      case Role::input:
        values[index] = grt::InputOp::create(
            builder, loc, type, buffer.name, offsetOf(index),
            buffer.block ? builder.getStringAttr(sources[*buffer.block].name)
                         : StringAttr(),
            slotted);
        break;
      case Role::parameter:
      case Role::state: {
        Operation *symbol = buffer.parameter ? buffer.parameter.getOperation()
                                             : buffer.state.getOperation();
        std::optional<ParameterShard> shard = variableShard(module, symbol);
        DenseI64ArrayAttr fullShape, sliceStart, sourceShape;
        ArrayAttr sliceTerms;
        if (shard) {
          // Without the padding: a padded vocabulary's rows past it are
          // padding.
          fullShape = builder.getDenseI64ArrayAttr(shard->getUnpaddedShape());
          sliceStart = builder.getDenseI64ArrayAttr(
              SmallVector<int64_t>(shard->fullShape.size(), 0));
          sliceTerms = builder.getArrayAttr(buffer.sliceTerms);
          if (!shard->sourceShape.empty())
            sourceShape = builder.getDenseI64ArrayAttr(shard->sourceShape);
        }
        values[index] =
            buffer.parameter
                ? grt::ParameterOp::create(
                      builder, symbol->getLoc(), type, buffer.name,
                      offsetOf(index), buffer.parameter.getInitAttr(),
                      buffer.parameter.getExternalAttr(), fullShape,
                      sliceStart, sliceTerms, /*state=*/false, sourceShape)
                : grt::ParameterOp::create(
                      builder, symbol->getLoc(), type, buffer.name,
                      offsetOf(index), buffer.state.getInitAttr(),
                      ExternalDataAttr(), fullShape, sliceStart, sliceTerms,
                      /*state=*/true, sourceShape);
        break;
      }
      case Role::constant:
        values[index] = grt::ConstantOp::create(builder, loc, type,
                                                offsetOf(index), buffer.value);
        break;
      case Role::temporary:
        values[index] =
            grt::BufferOp::create(builder, loc, type, offsetOf(index), slotted);
        break;
      }
    }
  }
  auto emitStep = [&](const KernelStep &step) {
    SmallVector<Value> inputs, results;
    for (unsigned input : step.inputs)
      inputs.push_back(values[input]);
    for (unsigned output : step.outputs)
      results.push_back(values[output]);
    Location at = step.op->getLoc();
    Operation *emitted = nullptr;
    switch (step.kind) {
    case KernelStep::Kind::kernel:
      grt::KernelOp::create(
          builder, at, step.kernel, inputs, results, step.config,
          step.terms.empty() ? ArrayAttr() : builder.getArrayAttr(step.terms),
          step.layer);
      break;
    case KernelStep::Kind::allReduce:
      emitted = grt::AllReduceOp::create(
          builder, at, grt::ReduceKindAttr::get(context, step.reduce),
          inputs[0], results[0], step.group, step.layer, IntegerAttr(),
          UnitAttr());
      break;
    case KernelStep::Kind::allGather:
      emitted = grt::AllGatherOp::create(builder, at, inputs[0], results[0],
                                         step.group, step.layer,
                                         IntegerAttr(), UnitAttr());
      break;
    case KernelStep::Kind::reduceScatter:
      emitted = grt::ReduceScatterOp::create(
          builder, at, grt::ReduceKindAttr::get(context, step.reduce),
          inputs[0], results[0], step.group, step.layer, IntegerAttr(),
          UnitAttr());
      break;
    case KernelStep::Kind::allToAll:
      emitted = grt::AllToAllOp::create(builder, at, inputs[0], results[0],
                                        step.group, step.layer, IntegerAttr(),
                                        UnitAttr());
      break;
    case KernelStep::Kind::send:
      emitted = grt::SendOp::create(builder, at, inputs[0], step.peer,
                                    step.tag, step.layer, IntegerAttr());
      break;
    case KernelStep::Kind::recv:
      emitted = grt::RecvOp::create(builder, at, results[0], step.peer,
                                    step.tag, step.layer, IntegerAttr());
      break;
    case KernelStep::Kind::wait:
      grt::WaitOp::create(builder, at, step.event);
      break;
    }
    if (emitted && step.event >= 0)
      emitted->setAttr("event", builder.getI64IntegerAttr(step.event));
    if (emitted && step.lastMicroBatch)
      emitted->setAttr("last_micro_batch", builder.getUnitAttr());
  };
  if (!schedule) {
    for (const KernelStep &step : steps)
      emitStep(step);
  } else {
    for (auto [source, range] : llvm::zip(sources, blockSteps)) {
      OpBuilder::InsertionGuard guard(builder);
      auto block = grt::BlockOp::create(builder, loc, source.name,
                                        source.slotted);
      builder.setInsertionPointToStart(&block.getBody().emplaceBlock());
      for (size_t i = range.first; i < range.second; ++i)
        emitStep(steps[i]);
    }
    // The galvatron schedule's phases, its calls named by their blocks.
    SmallVector<Attribute> phases;
    for (auto phase : schedule.getPhases().getAsRange<SchedulePhaseAttr>()) {
      SmallVector<Attribute> entries{
          builder.getI64IntegerAttr(phase.getIterations())};
      for (auto step : phase.getSteps().getAsRange<ScheduleStepAttr>()) {
        entries.push_back(builder.getStringAttr(
            sources[unsigned(step.getKind())].name));
        entries.push_back(builder.getI64IntegerAttr(
            std::max<int64_t>(step.getMicroBatch(), 0)));
      }
      phases.push_back(builder.getArrayAttr(entries));
    }
    grt::ScheduleOp::create(builder, loc, schedule.getMicroBatches(),
                            slotsNeeded(), layout.slotOffset, layout.slotSize,
                            builder.getArrayAttr(phases));
  }
  for (auto &[name, buffer] : outputs)
    grt::OutputOp::create(builder, loc, name, values[buffer]);
}

} // namespace

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace mlir::galvatron {
namespace {
struct LowerToRuntimePass : impl::LowerToRuntimeBase<LowerToRuntimePass> {
  using LowerToRuntimeBase::LowerToRuntimeBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](Operation *at) -> InFlightDiagnostic {
      signalPassFailure();
      return at->emitError();
    };
    if (alignment < 1 || (alignment & (alignment - 1)) || alignment > 4096) {
      fail(module) << "alignment must be a power of two up to 4096, got "
                   << int64_t(alignment);
      return;
    }
    // A training step's schedule lowers as blocks run in a loop; a
    // function as one block.
    SmallVector<BlockSource> blocks;
    std::string name = entry;
    if (name.empty()) {
      auto schedules = module.getOps<ScheduleOp>();
      name = schedules.empty() ? "main"
                               : (*schedules.begin()).getSymName().str();
    }
    Operation *symbol = module.lookupSymbol(name);
    auto schedule = dyn_cast_or_null<ScheduleOp>(symbol);
    if (schedule) {
      for (auto [name, function, slotted] :
           {std::tuple(StringRef("forward"), schedule.getForwardAttr(), true),
            std::tuple(StringRef("backward"), schedule.getBackwardAttr(), true),
            std::tuple(StringRef("optimizer"), schedule.getOptimizerAttr(),
                       false)})
        blocks.push_back(
            {module.lookupSymbol<func::FuncOp>(function), name, slotted});
    } else if (auto function = dyn_cast_or_null<func::FuncOp>(symbol);
               function && !function.isExternal()) {
      blocks.push_back({function, "main", false});
    } else {
      fail(module) << "no function or galvatron.schedule '" << name
                   << "' to lower";
      return;
    }
    for (BlockSource &block : blocks)
      if (!block.function.getBody().hasOneBlock()) {
        fail(block.function) << "must have a single block to be lowered";
        return;
      }
    PlanAttr plan = getPlan(module);
    int64_t world = worldSize ? int64_t(worldSize)
                              : (plan ? plan.getDevices() : 1);
    int64_t stages = plan ? plan.getPp() : 1;
    if (world < 1 || world % stages) {
      fail(module) << "a world of " << world << " ranks does not split into "
                   << stages << " pipeline stages";
      return;
    }
    // The stage whose layers the functions hold.
    std::optional<int64_t> stage;
    for (BlockSource &block : blocks)
      for (LayerOp layer : block.function.getBody().getOps<LayerOp>())
        if (StrategyAttr strategy = layer.getStrategyAttr()) {
          if (stage && *stage != strategy.getStage()) {
            fail(layer) << "lies on stage " << strategy.getStage()
                        << " but the program is stage " << *stage
                        << "'s (split the pipeline first: "
                           "--galvatron-pipeline=stage=N)";
            return;
          }
          stage = strategy.getStage();
        }
    // Dropout trains only: a forward program leaves it out.
    if (!schedule) {
      blocks.front().function.walk([](AttentionOp op) {
        op.getProperties().dropout = FloatAttr();
        op.getProperties().stream = IntegerAttr();
        op.removeShardAttr();
      });
      WalkResult dropped = blocks.front().function.walk([&](DropoutOp op) {
        if (!op.getMask().use_empty()) {
          op.emitOpError() << "has its mask used outside a training step";
          signalPassFailure();
          return WalkResult::interrupt();
        }
        op.getResult().replaceAllUsesWith(op.getInput());
        op->erase();
        return WalkResult::advance();
      });
      if (dropped.wasInterrupted())
        return;
    }
    for (BlockSource &block : blocks)
      placeFillsAtUses(block.function);
    Lowering lowering(module, blocks, schedule, uint64_t(alignment),
                      stage.value_or(0), stages, world);
    if (failed(lowering.collect()))
      return signalPassFailure();
    CommunicationPlacement placement;
    placement.overlap = overlap;
    if (!(bucketMb > 0.0) || bucketMb > double(1 << 20)) {
      fail(module) << "bucket-mb must lie in (0, 1048576], got "
                   << double(bucketMb);
      return;
    }
    placement.bucketBytes =
        std::max<uint64_t>(1, uint64_t(bucketMb * double(1 << 20)));
    lowering.placeCommunication(placement);
    lowering.assignInPlace();
    lowering.emit(lowering.plan(), modelDirectory);
    // The program replaces the model: drop the functions, schedule,
    // parameters and state.
    if (schedule)
      schedule.erase();
    for (BlockSource &block : blocks)
      block.function.erase();
    for (Operation &op : llvm::make_early_inc_range(*module.getBody()))
      if (isa<ParameterOp, StateOp>(op))
        op.erase();
  }
};
} // namespace
} // namespace mlir::galvatron
