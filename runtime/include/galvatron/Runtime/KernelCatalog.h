//===- KernelCatalog.h - Kernel signatures ----------------------*- C++ -*-===//
//
// The contract of every kernel, independent of any backend: operand counts,
// element types, shapes and typed attributes, and which inputs the output
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

#include "galvatron/Runtime/Program.h"
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

struct KernelSpec {
  Opcode opcode;
  std::string_view name;
  unsigned minInputs, maxInputs;
  unsigned minOutputs, maxOutputs;
  std::vector<AttributeSpec> attributes;
  /// Bit i set: output 0 may occupy exactly the bytes of input i (the
  /// kernel reads each element before writing it).
  uint32_t inPlaceInputs;
  /// Checks element types, shapes and attribute values; counts and
  /// attribute kinds are already checked.
  Status (*verify)(const KernelCall &call);
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

  const KernelSpec &spec;
  std::vector<TensorType> inputs, outputs;
};

/// Checks a call of `spec`: operand counts, attribute names and kinds, then
/// the kernel's own rules. The message names the rule broken.
Status verifyKernelCall(const KernelCall &call);

/// NumPy broadcast of two shapes, or nothing when they do not broadcast.
std::optional<std::vector<int64_t>>
broadcastShapes(const std::vector<int64_t> &a, const std::vector<int64_t> &b);

/// Maps a possibly negative axis into [0, rank), or nothing.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_KERNELCATALOG_H
