//===- KernelCatalog.h - Kernel signatures ----------------------*- C++ -*-===//
//
// The contract of every kernel, independent of any backend: operand counts,
// element types (and which operand's type selects an implementation),
// shapes and typed attributes, how those attributes decode into the typed
// structures kernels read (KernelAttributes.h), and which inputs the output
// may overwrite in place. The runtime checks each kernel call of a loaded
// program against it, and the compiler's runtime dialect verifies its kernel
// ops with the very same code, so a program the compiler accepts is one the
// runtime accepts.
//
// Semantics follow the galvatron dialect op of the same name
// (include/galvatron/Dialect/Galvatron/IR/GalvatronOps.td); attributes that
// are optional there are explicit here (attention's `scale`, rotary's
// `rotary_dim`), so kernels never re-derive defaults.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_KERNELCATALOG_H
#define GALVATRON_RUNTIME_KERNELCATALOG_H

#include "galvatron/Runtime/KernelAttributes.h"
#include "galvatron/Runtime/RankProgram.h"
#include "galvatron/Runtime/Status.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace galvatron::runtime {

enum class Opcode : uint16_t {
#define GALVATRON_KERNEL(Enumerator, name) Enumerator,
#include "galvatron/Runtime/Kernels.def"
};

constexpr unsigned kNumOpcodes = 0
#define GALVATRON_KERNEL(Enumerator, name) +1
#include "galvatron/Runtime/Kernels.def"
    ;

struct AttributeSpec {
  std::string_view name;
  AttributeKind kind;
  bool required;
};

class KernelCall;

/// Any number of operands.
constexpr unsigned kVariadic = ~0u;

/// A set of element types.
using ElementTypes = uint32_t;
constexpr ElementTypes typeSet(ElementType type) {
  return 1u << unsigned(type);
}
constexpr ElementTypes kFloatTypes = typeSet(ElementType::f32) |
                                     typeSet(ElementType::f16) |
                                     typeSet(ElementType::bf16);
constexpr ElementTypes kNumericTypes =
    kFloatTypes | typeSet(ElementType::i32) | typeSet(ElementType::i64);
constexpr ElementTypes kAnyType = (1u << kNumElementTypes) - 1;
/// "f32, f16 or bf16".
std::string describeTypes(ElementTypes types);

/// Operand `index` of a call: an input, or with `output` a result.
struct OperandRef {
  bool output;
  unsigned index;
};
constexpr OperandRef input(unsigned index) { return {false, index}; }
constexpr OperandRef output(unsigned index) { return {true, index}; }

struct KernelSpec {
  Opcode opcode;
  std::string_view name;
  unsigned minInputs, maxInputs;
  unsigned minOutputs, maxOutputs;
  std::vector<AttributeSpec> attributes;
  /// Bit i set: output 0 may occupy exactly the bytes of input i (the
  /// kernel reads each element before writing it).
  uint32_t inPlaceInputs;
  /// The operand whose element type selects a backend's implementation, and
  /// the types it may have: a backend binds each call to its kernel for
  /// (opcode, that type), and implements every type listed here.
  OperandRef dispatch;
  ElementTypes types;
  /// Checks element types, shapes and attribute values; counts, attribute
  /// kinds and the dispatch operand's type are already checked.
  Status (*verify)(const KernelCall &call);
  /// The attributes of a verified call as the kernel reads them.
  KernelAttributes (*decode)(const KernelCall &call);
  /// (result, operand) pairs beyond result 0 that may share exactly the same
  /// bytes (an optimizer update writes each state over its old value).
  std::vector<std::pair<unsigned, unsigned>> inPlaceResults = {};

  /// Whether result `output` may occupy exactly the bytes of operand `input`.
  bool mayOverwrite(unsigned output, unsigned input) const;
};

/// The kernel called `name`, or null.
const KernelSpec *findKernel(std::string_view name);
const KernelSpec &getKernel(Opcode opcode);

/// A kernel call as validation sees it: operand types and attributes.
class KernelCall : public AttributeList {
public:
  KernelCall(const KernelSpec &spec, std::vector<TensorType> inputs,
             std::vector<TensorType> outputs,
             const std::vector<Attribute> &attributes)
      : AttributeList(attributes), spec(spec), inputs(std::move(inputs)),
        outputs(std::move(outputs)) {}

  const TensorType &operand(OperandRef ref) const {
    return ref.output ? outputs[ref.index] : inputs[ref.index];
  }
  /// The element type selecting the implementation (operand counts must
  /// have been checked).
  ElementType dispatchType() const {
    return operand(spec.dispatch).elementType;
  }

  const KernelSpec &spec;
  std::vector<TensorType> inputs, outputs;
};

/// Checks a call of `spec`: operand counts, attribute names and kinds, then
/// the kernel's own rules. The message names the rule broken.
Status verifyKernelCall(const KernelCall &call);

/// The call kernel instruction `instruction` of `program` makes (`spec` is
/// its kernel): the operand types are its buffers', the attributes
/// `attributes` (a stage program's validator passes the attributes at a
/// corner of the ranks) or the instruction's own (a rank's program, where
/// they are resolved).
KernelCall makeKernelCall(const KernelSpec &spec, const ProgramBody &program,
                          const Instruction &instruction,
                          const std::vector<Attribute> &attributes);
KernelCall makeKernelCall(const KernelSpec &spec, const RankProgram &rank,
                          const Instruction &instruction);

/// A kernel instruction as a backend binds it, once, when it loads a
/// program: the kernel, the element type that selects its implementation
/// (the dispatch operand's) and its attributes decoded. A backend keeps one
/// implementation per (opcode, element type) and hands it the decoded
/// attributes on every call.
struct KernelBinding {
  const KernelSpec *spec;
  ElementType type;
  KernelAttributes attributes;
};

/// Checks and binds a kernel instruction of `rank`.
Expected<KernelBinding> bindKernel(const RankProgram &rank,
                                   const Instruction &instruction);

/// NumPy broadcast of two shapes, or nothing when they do not broadcast.
std::optional<std::vector<int64_t>>
broadcastShapes(const std::vector<int64_t> &a, const std::vector<int64_t> &b);

/// Maps a possibly negative axis into [0, rank), or nothing.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_KERNELCATALOG_H
