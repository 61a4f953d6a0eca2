//===- TensorFiles.h - .npy and safetensors files ---------------*- C++ -*-===//
//
// Program inputs and outputs travel as NumPy .npy files, parameters and
// checkpoints as safetensors files (names as in the source model). Readers
// check every header field against the file's size and report a malformed
// file by name; writers replace their file atomically.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_TENSORFILES_H
#define GALVATRON_RUNTIME_TENSORFILES_H

#include "galvatron/Runtime/AtomicFile.h"
#include "galvatron/Runtime/Program.h"
#include "galvatron/Runtime/Status.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace galvatron::runtime {

/// A tensor in host memory, little-endian, row-major.
struct HostTensor {
  TensorType type;
  std::vector<uint8_t> data;
};

/// Reads a C-ordered .npy file (format 1.0 to 3.0) of f32, f16, i64, i32 or
/// bool elements, or of bf16 stored as its raw bits (dtype '<u2': NumPy has
/// no bfloat16).
Expected<HostTensor> readNpy(const std::string &path);
Status writeNpy(const std::string &path, const TensorType &type,
                const void *data);

/// A tensor to write: `data` holds type.byteSize() bytes.
struct NamedTensor {
  std::string name;
  TensorType type;
  const void *data;
};

Status writeSafeTensors(const std::string &path,
                        const std::vector<NamedTensor> &tensors);

/// A safetensors file whose header has been read and checked; tensors are
/// read on demand.
class SafeTensorsReader {
public:
  struct Entry {
    std::string name;
    TensorType type;
    /// Byte range in the file.
    uint64_t begin, end;
  };

  static Expected<SafeTensorsReader> open(const std::string &path);

  const std::string &path() const { return filePath; }
  const std::vector<Entry> &entries() const { return list; }
  const Entry *find(const std::string &name) const;
  /// Reads `entry`'s bytes into `bytes`.
  Status read(const Entry &entry, std::vector<uint8_t> &bytes) const;

private:
  std::string filePath;
  std::shared_ptr<FILE> file;
  std::vector<Entry> list;
};

/// Reads `size` bytes at `offset` of `path`; fails when the file is shorter.
Status readFileRange(const std::string &path, uint64_t offset, uint64_t size,
                     std::vector<uint8_t> &bytes);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_TENSORFILES_H
