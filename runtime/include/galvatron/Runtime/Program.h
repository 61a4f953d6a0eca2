//===- Program.h - In-memory model of a compiled program --------*- C++ -*-===//
//
// What a program file holds, as plain C++ values. A job of N ranks is a
// pipeline of `stages.size()` stages, each run by N / stages ranks
// (stage-major: rank = stage · ranksPerStage + local index). Every stage has
// one program, shared by all of its ranks: numbered buffers at offsets in
// one arena, the parameters, constants, inputs and outputs bound to them,
// and instructions (kernel calls, collectives on device groups, send/recv
// to a peer stage) grouped into blocks that a schedule runs, the blocks of
// one micro-batch in a loop over the micro-batches.
//
// What differs between the ranks of a stage is symbolic: a device group is
// a family of groups described by mesh axes (which coordinates of the rank
// vary), and integers that depend on the rank (a parameter shard's start,
// a slice offset, a vocabulary block) carry terms `coefficient × the rank's
// position in its group of a family`. Nothing in a program grows with the
// number of ranks or of micro-batches. A rank instantiates its own concrete
// program (`RankProgram`, RankProgram.h) at load.
//
// The compiler builds this model and serializes it (ProgramFile.h); the
// runtime deserializes it, validates it (ProgramValidator.h) and executes
// it. Nothing here depends on how the file is encoded.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_PROGRAM_H
#define GALVATRON_RUNTIME_PROGRAM_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace galvatron::runtime {

/// Version of the program format this runtime reads and writes. A reader
/// accepts files of its major version and any minor version up to its own;
/// minor versions only add optional fields, instruction kinds and kernels,
/// or relax what is valid (2.3: parameter slices may extend past the full
/// shape).
constexpr uint32_t kFormatMajorVersion = 2;
constexpr uint32_t kFormatMinorVersion = 4;

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

/// Element type of a buffer. `i1` is stored as one byte per element (0 or 1).
enum class ElementType : uint8_t { f32, f16, bf16, i64, i32, i1 };
constexpr unsigned kNumElementTypes = 6;

/// Bytes per element.
unsigned elementSize(ElementType type);
/// "f32", "f16", ...
std::string_view elementTypeName(ElementType type);
std::optional<ElementType> parseElementType(std::string_view name);
inline bool isFloat(ElementType type) {
  return type == ElementType::f32 || type == ElementType::f16 ||
         type == ElementType::bf16;
}
inline bool isInteger(ElementType type) {
  return type == ElementType::i64 || type == ElementType::i32;
}

/// Largest element count of a tensor: keeps every byte size, index and
/// offset computation far from overflow.
constexpr int64_t kMaxElements = int64_t(1) << 48;

struct TensorType {
  ElementType elementType = ElementType::f32;
  std::vector<int64_t> shape;

  int64_t rank() const { return int64_t(shape.size()); }
  /// Product of the dimensions (1 for a scalar). Only meaningful for a valid
  /// shape (see `checkShape`).
  int64_t numElements() const;
  uint64_t byteSize() const { return uint64_t(numElements()) * elementSize(elementType); }
  /// "f32[2,3]".
  std::string str() const;
  bool operator==(const TensorType &other) const {
    return elementType == other.elementType && shape == other.shape;
  }
  bool operator!=(const TensorType &other) const { return !(*this == other); }
};

/// "[2,3]".
std::string shapeString(const std::vector<int64_t> &shape);

//===----------------------------------------------------------------------===//
// The device mesh
//===----------------------------------------------------------------------===//

/// One coordinate of a world rank: (rank / stride) % size.
struct GroupAxis {
  uint32_t size = 1;
  uint32_t stride = 1;
  bool operator==(const GroupAxis &other) const {
    return size == other.size && stride == other.stride;
  }
};

/// A family of device groups: the group of world rank r holds the ranks
/// that differ from r only in the coordinates of `axes`, in group order
/// (the first axis varies slowest). Tensor-parallel groups of 2 consecutive
/// ranks are {2, 1}; their data-parallel groups {dp, 2}; a pipeline group
/// (the same local index on every stage) {stages, ranksPerStage}. Valid
/// axes, sorted by stride, have each stride a multiple of the previous
/// stride times its size, so the groups of a family partition the ranks.
struct Group {
  std::vector<GroupAxis> axes;

  /// Members of one group.
  uint32_t size() const;
  /// `rank`'s coordinate along axis `axis`.
  uint32_t coordinate(uint32_t rank, size_t axis) const;
  /// Where `rank` stands in its group.
  uint32_t position(uint32_t rank) const;
  /// The world ranks of `rank`'s group, in group order.
  std::vector<uint32_t> members(uint32_t rank) const;
  bool operator==(const Group &other) const { return axes == other.axes; }
};

/// A rank-dependent part of an integer: `coefficient` times the rank's
/// position in its group of family `group` is added to element `index`
/// (0 for a single integer).
struct RankTerm {
  uint32_t index = 0;
  uint32_t group = 0;
  int64_t coefficient = 0;
  bool operator==(const RankTerm &other) const {
    return index == other.index && group == other.group &&
           coefficient == other.coefficient;
  }
};

//===----------------------------------------------------------------------===//
// Buffers and what is bound to them
//===----------------------------------------------------------------------===//

/// A tensor stored at `offset` bytes into the arena. A view (`viewOf` set)
/// reinterprets bytes of another buffer (its root, which is not itself a
/// view): a reshape costs nothing. A `slotted` root belongs to a
/// micro-batch: the program holds the copy of slot 0, and the copy of slot
/// k lies `k · slotSize` bytes above it (see Schedule). Instructions read
/// and write buffers; the memory plan guarantees that buffers live at the
/// same time never share bytes.
struct Buffer {
  TensorType type;
  uint64_t offset = 0;
  std::optional<uint32_t> viewOf;
  /// For diagnostics: the value or layer the buffer came from.
  std::string name;
  bool slotted = false;
};

enum class InitKind : uint8_t { zeros, ones, constant, normal, uniform };
constexpr unsigned kNumInitKinds = 5;

/// How a parameter is initialized without a checkpoint: `a` is the value,
/// mean or lower bound, `b` the standard deviation or upper bound.
struct Initializer {
  InitKind kind = InitKind::zeros;
  double a = 0.0, b = 0.0;
};

/// Where a parameter's values live outside the program: `length` bytes at
/// `offset` of `location` (relative to the program's model directory), `key`
/// naming the tensor inside a container (an ONNX initializer or a
/// safetensors entry). `length` -1 means to the end of the file.
struct ExternalData {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  std::string key;
};

/// A trainable weight held in `buffer`, or with `state` a training state
/// variable (gradient accumulator, optimizer moment, step counter): both
/// persist across runs of the program, start from their initializer (or a
/// checkpoint) and may be overwritten by instructions. The buffer may hold a
/// slice of the source model's tensor (a tensor- or ZeRO-parallel shard):
/// `fullShape` is the source tensor's shape and `sliceStart` the slice's
/// first index per dimension, plus `sliceTerms` (which rank holds which
/// slice); both are empty when the buffer holds the whole tensor. The full
/// shape may refine the source model's shape of the tensor, splitting a
/// dimension into factors so that a slice is one box (a fused QKV weight
/// [h, 3h] as [h, 3, h]): `sourceShape` then gives the source's shape, which
/// names the same elements in the same order. A slice may extend past the
/// full shape (a vocabulary padded to split evenly): the elements past it
/// are padding, zero, never loaded or saved.
struct Parameter {
  uint32_t buffer = 0;
  std::string name;
  std::vector<int64_t> fullShape;
  std::vector<int64_t> sliceStart;
  std::vector<RankTerm> sliceTerms;
  std::optional<Initializer> init;
  std::optional<ExternalData> external;
  bool state = false;
  std::vector<int64_t> sourceShape;

  bool isSlice() const { return !fullShape.empty(); }
  /// The part of a buffer of `shape` that lies inside the full shape: its
  /// extent per dimension (the shape itself unless the slice is padded).
  std::vector<int64_t> validShape(const std::vector<int64_t> &shape) const {
    return validShape(shape, sliceStart);
  }
  /// The same for the slice starting at `start` (a rank's, when the
  /// program's start has rank terms).
  std::vector<int64_t> validShape(const std::vector<int64_t> &shape,
                                  const std::vector<int64_t> &start) const;
  /// The shape of the whole tensor the buffer (of `shape`) holds a part of,
  /// in the coordinates of `sliceStart`.
  const std::vector<int64_t> &wholeShape(const std::vector<int64_t> &shape) const {
    return isSlice() ? fullShape : shape;
  }
  /// The whole tensor's shape in the source model.
  const std::vector<int64_t> &modelShape(const std::vector<int64_t> &shape) const {
    return sourceShape.empty() ? wholeShape(shape) : sourceShape;
  }
};

/// Whether `full` splits dimensions of `source` into factors, in order: each
/// dimension of `source` is the product of consecutive dimensions of `full`.
bool refinesShape(const std::vector<int64_t> &full,
                  const std::vector<int64_t> &source);

/// Bytes loaded into `buffer` before the first instruction.
struct Constant {
  uint32_t buffer = 0;
  std::vector<uint8_t> data;
};

/// A named program input or output. An input with `block` >= 0 is per
/// micro-batch: the caller gives the rows of every micro-batch stacked
/// along dimension 0, and before each run of block `block` for
/// micro-batch m, micro-batch m's rows are written into `buffer` (of that
/// micro-batch's slot). Other inputs are written once, before the run.
struct Binding {
  std::string name;
  uint32_t buffer = 0;
  int32_t block = -1;
};

//===----------------------------------------------------------------------===//
// Instructions
//===----------------------------------------------------------------------===//

enum class AttributeKind : uint8_t { integer, real, integers };
constexpr unsigned kNumAttributeKinds = 3;

/// A typed kernel attribute (`axis = 1`, `epsilon = 1e-5`, `perm = [0,2,1]`).
/// Integers may depend on the rank (`terms`; none in a rank's program).
struct Attribute {
  std::string name;
  AttributeKind kind = AttributeKind::integer;
  int64_t integer = 0;
  double real = 0.0;
  std::vector<int64_t> integers;
  std::vector<RankTerm> terms;

  static Attribute makeInteger(std::string name, int64_t value);
  static Attribute makeReal(std::string name, double value);
  static Attribute makeIntegers(std::string name, std::vector<int64_t> values);
};

/// Typed reads of an attribute list; absent optional attributes read as
/// `fallback`. Kinds are checked when a program is validated.
class AttributeList {
public:
  explicit AttributeList(const std::vector<Attribute> &attributes)
      : attributes(&attributes) {}

  const Attribute *find(std::string_view name) const;
  int64_t integer(std::string_view name, int64_t fallback = 0) const;
  double real(std::string_view name, double fallback = 0.0) const;
  std::vector<int64_t> integers(std::string_view name) const;
  bool flag(std::string_view name) const { return integer(name) != 0; }
  const std::vector<Attribute> &all() const { return *attributes; }

private:
  const std::vector<Attribute> *attributes;
};

/// New kinds are added at the end (a minor version), so that a reader of
/// an older minor version refuses what it does not know.
enum class InstructionKind : uint8_t {
  kernel,
  allReduce,
  allGather,
  reduceScatter,
  allToAll,
  broadcast,
  send,
  recv,
  /// Format 2.1: waits for the communication started with an event.
  wait,
};
constexpr unsigned kNumInstructionKinds = 9;
std::string_view instructionKindName(InstructionKind kind);
/// Collectives and send/recv: what the communicator runs.
inline bool isCommunication(InstructionKind kind) {
  return kind != InstructionKind::kernel && kind != InstructionKind::wait;
}
inline bool isCollective(InstructionKind kind) {
  return isCommunication(kind) && kind != InstructionKind::send &&
         kind != InstructionKind::recv;
}

enum class ReduceOp : uint8_t { sum, max, min, avg };
constexpr unsigned kNumReduceOps = 4;
std::string_view reduceOpName(ReduceOp op);

/// One instruction.
///
/// - `kernel`: runs the kernel named `kernel` (see KernelCatalog.h) reading
///   `inputs` and writing `outputs`, configured by `attributes`.
/// - Collectives run among the members of the rank's group of family
///   `group` (in group order) with one input and one output buffer:
///   `allReduce` (reduced with `reduce`), `allGather` (the members' inputs
///   concatenated along dimension 0), `reduceScatter` (the reduced input
///   split along dimension 0, member i keeping part i), `allToAll` (input
///   split along dimension 0, part j sent to member j, received parts
///   concatenated) and `broadcast` (the input of the member at position
///   `peer` copied to every member's output).
/// - `send` sends `inputs[0]` to pipeline stage `peer`, `recv` receives
///   `outputs[0]` from it: to and from the rank of that stage with the same
///   local index (in a rank's program: that world rank). Messages between
///   two ranks match by `tag`, in the order issued.
/// - A communication instruction with an `event` (>= 0, format 2.1) is only
///   started: it runs on the rank's communication queue while the
///   instructions after it run, and completes at the `wait` naming its
///   event, until which its operand and result belong to it (nothing else
///   reads or writes them; the memory plan keeps them). Consecutive starts
///   may share an event: they complete together (a DP gradient bucket).
///   The starts issued between two kernels form one group (one NCCL group:
///   a send/recv exchange between two stages cannot deadlock).
/// - `lastMicroBatch` (format 2.1): a communication instruction of a
///   slotted block that runs only for the schedule's last micro-batch (the
///   gradient sync started in the last backward); it touches persistent
///   buffers only.
struct Instruction {
  InstructionKind kind = InstructionKind::kernel;
  std::string kernel;
  std::vector<uint32_t> inputs, outputs;
  std::vector<Attribute> attributes;
  uint32_t group = 0;
  ReduceOp reduce = ReduceOp::sum;
  int32_t peer = 0;
  int32_t tag = 0;
  /// Index into the program's layers, or -1: the source layer, for
  /// profiles and diagnostics.
  int32_t layer = -1;
  /// The event of a started communication instruction or of a `wait`;
  /// -1: a communication instruction that completes before the next one.
  int32_t event = -1;
  bool lastMicroBatch = false;
};

/// Events of one stage program are numbered below this.
constexpr int32_t kMaxEvents = 1 << 20;

//===----------------------------------------------------------------------===//
// Blocks and the schedule
//===----------------------------------------------------------------------===//

/// Instructions [first, first + count) run together. A `slotted` block
/// works on one micro-batch, in that micro-batch's slot: its slotted
/// buffers are those of the slot.
struct Block {
  std::string name;
  uint32_t first = 0, count = 0;
  bool slotted = false;
};

/// Runs `block` for micro-batch `microBatch` + the phase's iteration.
struct ScheduleStep {
  uint32_t block = 0;
  int32_t microBatch = 0;
};

/// `iterations` times the steps, in order.
struct Phase {
  uint32_t iterations = 1;
  std::vector<ScheduleStep> steps;
};

/// One run of a program: its phases in order (warm-up, steady state and
/// cool-down of a pipeline schedule, then the optimizer). Micro-batch m
/// uses slot m % `slots`; the copy of slot k of a slotted buffer lies
/// `k · slotSize` bytes above slot 0's, slot 0 spanning
/// [slotOffset, slotOffset + slotSize).
struct Schedule {
  uint32_t microBatches = 1;
  uint32_t slots = 1;
  uint64_t slotOffset = 0;
  uint64_t slotSize = 0;
  std::vector<Phase> phases;
};

//===----------------------------------------------------------------------===//
// Programs
//===----------------------------------------------------------------------===//

/// What a stage's program and a rank's program have in common.
struct ProgramBody {
  uint64_t arenaSize = 0;
  std::vector<Buffer> buffers;
  std::vector<Parameter> parameters;
  std::vector<Constant> constants;
  std::vector<Binding> inputs, outputs;
  std::vector<Instruction> instructions;
  std::vector<std::string> layers;
  std::vector<Block> blocks;
  Schedule schedule;

  /// The buffer whose bytes `index` uses: itself, or the root of a view.
  uint32_t rootOf(uint32_t index) const {
    return buffers[index].viewOf ? *buffers[index].viewOf : index;
  }
};

/// The program every rank of pipeline stage `stage` runs.
struct StageProgram : ProgramBody {
  uint32_t stage = 0;
};

/// What a runtime needs to drive a training step: how batches derive labels
/// (see docs/architecture.md, "The training step"), the model FLOPs of one
/// step (for MFU) and the vocabulary size (synthetic and masked tokens).
enum class LossKind : uint8_t { nextToken, maskedToken };
constexpr unsigned kNumLossKinds = 2;

struct TrainingInfo {
  LossKind loss = LossKind::nextToken;
  double modelFlops = 0;
  int64_t vocabSize = 0;
};

/// A whole compiled program: a job of `worldSize` processes in
/// `stages.size()` pipeline stages, the group families its collectives run
/// on, and where the source model's files are.
struct Program {
  uint32_t worldSize = 1;
  /// Offsets and sizes of buffers are multiples of this.
  uint32_t alignment = 64;
  std::vector<Group> groups;
  std::vector<StageProgram> stages;
  /// Informational: the model the program was compiled from.
  std::string model;
  /// Directory that parameters' external-data locations are relative to.
  std::string modelDirectory;
  /// Set when every run of the program is one training step.
  std::optional<TrainingInfo> training;

  /// Ranks per stage (the world divides evenly; see the validator).
  uint32_t ranksPerStage() const {
    return stages.empty() ? worldSize : worldSize / uint32_t(stages.size());
  }
  uint32_t stageOf(uint32_t rank) const { return rank / ranksPerStage(); }
};

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_PROGRAM_H
