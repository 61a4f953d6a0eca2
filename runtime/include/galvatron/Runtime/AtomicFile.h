//===- AtomicFile.h - Files replaced whole or not at all --------*- C++ -*-===//
//
// Programs, tensors and checkpoints are written through a temporary file and
// a rename, so a crash or a full disk never leaves a torn file behind.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_ATOMICFILE_H
#define GALVATRON_RUNTIME_ATOMICFILE_H

#include "galvatron/Runtime/Status.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace galvatron::runtime {

/// Bytes to write: `size` bytes at `data`.
using FilePart = std::pair<const void *, uint64_t>;

/// Writes `parts` to `path` through a temporary file, flushed to the disk
/// before a rename replaces `path`: a crash leaves the old file or the new
/// one, never a torn one. An existing device or pipe is written in place.
Status writeFileAtomically(const std::string &path,
                           const std::vector<FilePart> &parts);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_ATOMICFILE_H
