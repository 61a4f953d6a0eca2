//===- Backend.h - Where a program's memory and kernels live ----*- C++ -*-===//
//
// A backend owns one rank's arena and runs its kernel instructions. The
// interface is deliberately narrow so that a CUDA backend (arena in device
// memory, kernels queued on a stream, cuBLASLt GEMMs) slots in beside the CPU
// one: the executor only moves bytes in and out by arena offset, hands arena
// addresses to the communicator, and asks for kernel instruction i to run.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_BACKEND_H
#define GALVATRON_RUNTIME_BACKEND_H

#include "galvatron/Runtime/RankProgram.h"
#include "galvatron/Runtime/Status.h"

#include <memory>
#include <string_view>

namespace galvatron::runtime {

class Backend {
public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;

  /// Binds the backend to a validated `program` (which must outlive it):
  /// allocates the arena of exactly `program.arenaSize` bytes and binds
  /// every kernel instruction, once, to the backend's implementation for its
  /// (kernel, element type) with its attributes decoded (`bindKernel` in
  /// KernelCatalog.h); a program needing an implementation the backend
  /// lacks is refused here, before anything runs.
  virtual Status load(const RankProgram &program) = 0;

  /// Copies host bytes into / out of the arena.
  virtual Status write(uint64_t offset, const void *data, uint64_t size) = 0;
  virtual Status read(uint64_t offset, void *data, uint64_t size) = 0;

  /// Arena byte `offset` as the communicator addresses it (a host pointer
  /// here, a device pointer for a CUDA backend with NCCL).
  virtual void *address(uint64_t offset) = 0;

  /// Runs kernel instruction `index` of the loaded program.
  virtual Status runKernel(size_t index) = 0;

  /// Waits until queued kernels finished (for timing and before reads by
  /// other parties). A no-op for synchronous backends.
  virtual Status synchronize() = 0;

  /// Bytes the backend allocated for the arena.
  virtual uint64_t arenaBytes() const = 0;
};

/// The CPU backend: f32, f16 and bf16 kernels (16-bit ones compute in f32),
/// GEMMs through OpenBLAS, other kernels parallelized over `threads` OpenMP
/// threads (0: OpenMP's default).
std::unique_ptr<Backend> createCPUBackend(int threads);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_BACKEND_H
