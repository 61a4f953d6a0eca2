//===- CPUBackend.cpp - The CPU backend -----------------------------------===//

#include "galvatron/Runtime/Backend.h"

#include "CPUKernels.h"

#include "galvatron/Runtime/ProgramValidator.h"

#include <cblas.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>

namespace galvatron::runtime {

using cpu::CPUKernelTable;
using cpu::KernelArgs;
using cpu::KernelEntry;

const CPUKernelTable &cpu::kernelTable() {
  static const CPUKernelTable table = [] {
    CPUKernelTable built;
    cpu::registerElementwiseKernels(built);
    cpu::registerLinearAlgebraKernels(built);
    cpu::registerNormalizationKernels(built);
    cpu::registerDataMovementKernels(built);
    cpu::registerReductionKernels(built);
    cpu::registerTransformerKernels(built);
    cpu::registerTrainingKernels(built);
    return built;
  }();
  return table;
}

namespace {

class CPUBackend final : public Backend {
public:
  explicit CPUBackend(int threads) {
    if (threads > 0) {
#ifdef _OPENMP
      omp_set_num_threads(threads);
#endif
      openblas_set_num_threads(threads);
    }
  }
  ~CPUBackend() override { std::free(arena); }

  std::string_view name() const override { return "cpu"; }

  Status load(const RankProgram &program) override {
    // Kernels first: a program this backend cannot run allocates nothing.
    // Each call binds to the implementation for its kernel and element
    // type, with its attributes decoded, once.
    std::vector<std::optional<Kernel>> prepared(program.instructions.size());
    for (size_t i = 0; i < program.instructions.size(); ++i) {
      const Instruction &instruction = program.instructions[i];
      if (instruction.kind != InstructionKind::kernel)
        continue;
      Expected<KernelBinding> binding = bindKernel(program, instruction);
      if (!binding)
        return binding.takeStatus().withContext(
            describeInstruction(program, i));
      const KernelEntry *entry =
          cpu::kernelTable().find(binding->spec->opcode, binding->type);
      if (!entry)
        return error("the cpu backend has no ", elementTypeName(binding->type),
                     " kernel '", instruction.kernel, "'");
      if (entry->attributes != binding->attributes.index())
        return error("the cpu backend's kernel '", instruction.kernel,
                     "' reads other attributes than the catalog decodes");
      prepared[i].emplace(Kernel{entry, {}, std::move(binding->attributes)});
    }
    // A backend loaded again drops its previous program.
    std::free(arena);
    arena = nullptr;
    kernels.clear();
    // Memory is committed lazily: refuse an arena the machine cannot hold
    // rather than be killed while filling it.
    uint64_t physical = uint64_t(sysconf(_SC_PHYS_PAGES)) *
                        uint64_t(sysconf(_SC_PAGE_SIZE));
    if (program.arenaSize > physical)
      return error("the arena of ", program.arenaSize,
                   " bytes exceeds this machine's ", physical,
                   " bytes of memory");
    // Whole cache lines, and at least one, so that the pointer is valid.
    uint64_t bytes = (program.arenaSize + 63) / 64 * 64;
    arena = static_cast<uint8_t *>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!arena)
      return error("cannot allocate the arena of ", program.arenaSize,
                   " bytes");
    size = program.arenaSize;
    for (size_t i = 0; i < prepared.size(); ++i) {
      if (!prepared[i])
        continue;
      const Instruction &instruction = program.instructions[i];
      for (uint32_t index : instruction.inputs)
        prepared[i]->args.inputs.push_back(tensor(program, index));
      for (uint32_t index : instruction.outputs)
        prepared[i]->args.outputs.push_back(tensor(program, index));
    }
    kernels = std::move(prepared);
    for (std::optional<Kernel> &kernel : kernels)
      if (kernel)
        kernel->decoded = std::visit(
            [](const auto &decoded) -> const void * { return &decoded; },
            kernel->attributes);
    return Status::ok();
  }

  Status write(uint64_t offset, const void *data, uint64_t bytes) override {
    GALVATRON_RETURN_IF_ERROR(checkRange(offset, bytes));
    std::memcpy(arena + offset, data, bytes);
    return Status::ok();
  }

  Status read(uint64_t offset, void *data, uint64_t bytes) override {
    GALVATRON_RETURN_IF_ERROR(checkRange(offset, bytes));
    std::memcpy(data, arena + offset, bytes);
    return Status::ok();
  }

  void *address(uint64_t offset) override { return arena + offset; }

  Status runKernel(size_t index) override {
    const Kernel &kernel = *kernels[index];
    return kernel.entry->invoke(kernel.entry->function, kernel.args,
                                kernel.decoded);
  }

  Status synchronize() override { return Status::ok(); }

  uint64_t arenaBytes() const override { return size; }

private:
  struct Kernel {
    const KernelEntry *entry;
    KernelArgs args;
    KernelAttributes attributes;
    /// The alternative `attributes` holds (set once the kernel has its
    /// final place).
    const void *decoded = nullptr;
  };

  cpu::Tensor tensor(const RankProgram &program, uint32_t index) {
    const Buffer &buffer = program.buffers[index];
    return cpu::Tensor{&buffer.type, arena + buffer.offset};
  }

  Status checkRange(uint64_t offset, uint64_t bytes) const {
    if (offset > size || bytes > size - offset)
      return error("bytes [", offset, ", ", offset + bytes,
                   ") lie outside the arena of ", size, " bytes");
    return Status::ok();
  }

  uint8_t *arena = nullptr;
  uint64_t size = 0;
  std::vector<std::optional<Kernel>> kernels;
};

} // namespace

std::unique_ptr<Backend> createCPUBackend(int threads) {
  return std::make_unique<CPUBackend>(threads);
}

} // namespace galvatron::runtime
