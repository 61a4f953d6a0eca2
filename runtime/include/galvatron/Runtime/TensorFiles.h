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
#include <functional>
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

/// A safetensors header's `__metadata__`: strings by key. Every file written
/// here says {"format": "pt"}, which Hugging Face's loaders require.
using SafeTensorsMetadata = std::vector<std::pair<std::string, std::string>>;

/// The first bytes of a safetensors file holding tensors of `types`, named
/// `names`, back to back in that order: the header's length (8 bytes) and
/// the header, padded so that the data starts 8-byte aligned. Tensor i's
/// bytes follow at the sum of the sizes before it.
std::string safeTensorsHeader(const std::vector<std::string> &names,
                              const std::vector<TensorType> &types,
                              const SafeTensorsMetadata &metadata = {});

Status writeSafeTensors(const std::string &path,
                        const std::vector<NamedTensor> &tensors,
                        const SafeTensorsMetadata &metadata = {});

/// A box of a row-major tensor: `shape` elements from `start` on, indexed in
/// `whole`, the tensor's shape or a refinement of it (which orders the
/// elements alike).
struct TensorBox {
  std::vector<int64_t> whole, start, shape;
};

/// Calls `run(inTensor, inBox, count)` for each stretch of the box's
/// elements that lies contiguous in the tensor, in order: `count` elements
/// starting at element `inTensor` of the tensor and `inBox` of the box
/// (packed row-major).
void forEachContiguousRun(
    const TensorBox &box,
    const std::function<void(int64_t inTensor, int64_t inBox, int64_t count)>
        &run);

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
  /// The header's `__metadata__` value of `key`, or empty.
  std::string metadata(const std::string &key) const;
  /// Reads `entry`'s bytes into `bytes`.
  Status read(const Entry &entry, std::vector<uint8_t> &bytes) const;
  /// Reads the elements of `box` of `entry` (whose element count `box.whole`
  /// must have) into `bytes`, packed: only the bytes the box needs.
  Status readBox(const Entry &entry, const TensorBox &box,
                 std::vector<uint8_t> &bytes) const;

private:
  std::string filePath;
  std::shared_ptr<FILE> file;
  std::vector<Entry> list;
  SafeTensorsMetadata meta;
};

/// Reads the elements of `box` of the tensor of `type` elements whose bytes
/// start at `dataOffset` of `file` (named `path`) into `bytes`, packed.
Status readTensorBox(FILE *file, const std::string &path, uint64_t dataOffset,
                     ElementType type, const TensorBox &box,
                     std::vector<uint8_t> &bytes);

/// Reads `size` bytes at `offset` of `path`; fails when the file is shorter.
Status readFileRange(const std::string &path, uint64_t offset, uint64_t size,
                     std::vector<uint8_t> &bytes);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_TENSORFILES_H
