//===- Program.h - In-memory model of a compiled program --------*- C++ -*-===//
//
// What a program file holds, as plain C++ values: for each rank, numbered
// buffers at offsets in one arena, the parameters, constants, inputs and
// outputs bound to buffers, and the instruction stream (kernel calls,
// collectives on explicit device groups, send/recv to explicit peers).
//
// The compiler builds this model and serializes it (ProgramFile.h); the
// runtime deserializes it, validates it (ProgramValidator.h) and executes it.
// Nothing here depends on how the file is encoded.
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
/// minor versions only add optional fields and kernels.
constexpr uint32_t kFormatMajorVersion = 1;
constexpr uint32_t kFormatMinorVersion = 3;

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
// Buffers and what is bound to them
//===----------------------------------------------------------------------===//

/// A tensor stored at `offset` bytes into the rank's arena. A view
/// (`viewOf` set) reinterprets bytes of another buffer (its root, which is
/// not itself a view): a reshape costs nothing. Instructions read and write
/// buffers; the memory plan guarantees that buffers live at the same time
/// never share bytes.
struct Buffer {
  TensorType type;
  uint64_t offset = 0;
  std::optional<uint32_t> viewOf;
  /// For diagnostics: the value or layer the buffer came from.
  std::string name;
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
/// first index per dimension; both are empty when the buffer holds the
/// whole tensor. A slice may extend past the full shape (a vocabulary
/// padded to split evenly): the elements past it are padding, zero, never
/// loaded or saved.
struct Parameter {
  uint32_t buffer = 0;
  std::string name;
  std::vector<int64_t> fullShape;
  std::vector<int64_t> sliceStart;
  std::optional<Initializer> init;
  std::optional<ExternalData> external;
  bool state = false;

  bool isSlice() const { return !fullShape.empty(); }
  /// The part of a buffer of `shape` that lies inside the full shape: its
  /// extent per dimension (the shape itself unless the slice is padded).
  std::vector<int64_t> validShape(const std::vector<int64_t> &shape) const;
};

/// Bytes loaded into `buffer` before the first instruction.
struct Constant {
  uint32_t buffer = 0;
  std::vector<uint8_t> data;
};

/// A named program input or output.
struct Binding {
  std::string name;
  uint32_t buffer = 0;
};

//===----------------------------------------------------------------------===//
// Instructions
//===----------------------------------------------------------------------===//

enum class AttributeKind : uint8_t { integer, real, integers };
constexpr unsigned kNumAttributeKinds = 3;

/// A typed kernel attribute (`axis = 1`, `epsilon = 1e-5`, `perm = [0,2,1]`).
struct Attribute {
  std::string name;
  AttributeKind kind = AttributeKind::integer;
  int64_t integer = 0;
  double real = 0.0;
  std::vector<int64_t> integers;

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

enum class InstructionKind : uint8_t {
  kernel,
  allReduce,
  allGather,
  reduceScatter,
  allToAll,
  broadcast,
  send,
  recv,
};
constexpr unsigned kNumInstructionKinds = 8;
std::string_view instructionKindName(InstructionKind kind);

enum class ReduceOp : uint8_t { sum, max, min, avg };
constexpr unsigned kNumReduceOps = 4;
std::string_view reduceOpName(ReduceOp op);

/// One step of a rank's instruction stream.
///
/// - `kernel`: runs the kernel named `kernel` (see KernelCatalog.h) reading
///   `inputs` and writing `outputs`, configured by `attributes`.
/// - Collectives run among the ranks of `groups[group]` (in that order) with
///   one input and one output buffer: `allReduce` (reduced with `reduce`),
///   `allGather` (the members' inputs concatenated along dimension 0),
///   `reduceScatter` (the reduced input split along dimension 0, member i
///   keeping part i), `allToAll` (input split along dimension 0, part j sent
///   to member j, received parts concatenated) and `broadcast` (world rank
///   `peer`'s input copied to every member's output).
/// - `send` sends `inputs[0]` to world rank `peer`; `recv` receives
///   `outputs[0]` from `peer`; messages match by `tag`.
struct Instruction {
  InstructionKind kind = InstructionKind::kernel;
  std::string kernel;
  std::vector<uint32_t> inputs, outputs;
  std::vector<Attribute> attributes;
  uint32_t group = 0;
  ReduceOp reduce = ReduceOp::sum;
  int32_t peer = 0;
  int32_t tag = 0;
  /// Index into RankProgram::layers, or -1: the source layer, for profiles
  /// and diagnostics.
  int32_t layer = -1;
};

/// The program of one rank.
struct RankProgram {
  uint32_t rank = 0;
  uint64_t arenaSize = 0;
  std::vector<Buffer> buffers;
  std::vector<Parameter> parameters;
  std::vector<Constant> constants;
  std::vector<Binding> inputs, outputs;
  std::vector<Instruction> instructions;
  std::vector<std::string> layers;

  /// The buffer whose bytes `index` uses: itself, or the root of a view.
  uint32_t rootOf(uint32_t index) const {
    return buffers[index].viewOf ? *buffers[index].viewOf : index;
  }
};

/// What a runtime needs to drive a training step: how batches derive labels
/// (see docs/architecture.md, "The training step"), the model FLOPs of one
/// step (for MFU) and the vocabulary size (synthetic and masked tokens).
enum class LossKind : uint8_t { nextToken, maskedToken };
constexpr unsigned kNumLossKinds = 2;

struct TrainingInfo {
  LossKind loss = LossKind::nextToken;
  int64_t modelFlops = 0;
  int64_t vocabSize = 0;
};

/// A whole compiled program: one RankProgram per rank of a job of
/// `worldSize` processes, the device groups the collectives run on, and
/// where the source model's files are.
struct Program {
  uint32_t worldSize = 1;
  /// Offsets and sizes of buffers are multiples of this.
  uint32_t alignment = 64;
  std::vector<std::vector<uint32_t>> groups;
  std::vector<RankProgram> ranks;
  /// Informational: the model the program was compiled from.
  std::string model;
  /// Directory that parameters' external-data locations are relative to.
  std::string modelDirectory;
  /// Set when every run of the program is one training step.
  std::optional<TrainingInfo> training;

  /// The program of `rank`, or null.
  const RankProgram *findRank(uint32_t rank) const;
};

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_PROGRAM_H
