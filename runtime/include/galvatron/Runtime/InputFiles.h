//===- InputFiles.h - Files read safely -------------------------*- C++ -*-===//
//
// Every file the compiler or the runtime reads by a name it was given (a
// program, tensors, tokens, a model's external weights) is opened here: only
// regular files, never blocking on a FIFO or a device, and external weight
// locations confined to the model's folder.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_INPUTFILES_H
#define GALVATRON_RUNTIME_INPUTFILES_H

#include "galvatron/Runtime/Program.h"
#include "galvatron/Runtime/Status.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace galvatron::runtime {

/// A regular file open for reading, and its size.
struct InputFile {
  std::shared_ptr<FILE> file;
  uint64_t size = 0;
};

/// Opens the regular file `path`. A directory, a FIFO, a socket or a device
/// is refused with a message saying what it is (opening never blocks).
/// Messages name the file as "WHAT 'PATH'" ("'PATH'" without `what`).
Expected<InputFile> openRegularFile(const std::string &path,
                                    const std::string &what = "");

/// Why `location`, a model's external-data location, may not be read, or
/// ok: it must be a relative path inside the model's folder (not empty, no
/// NUL, not absolute, no '..' component). The message is a predicate that
/// reads after "external data 'LOCATION' ".
Status checkExternalLocation(const std::string &location);

/// The path of the external data `location` of the model in `directory`,
/// checked for everything before reading it: `location` passes
/// checkExternalLocation, exists, stays inside the folder once symbolic
/// links are resolved, is a regular file and holds the bytes [offset,
/// offset + bytes). Messages read after "external data 'LOCATION' ".
Expected<std::string> resolveExternalData(const std::string &directory,
                                          const std::string &location,
                                          uint64_t offset, uint64_t bytes);

/// The file holding a parameter's external data, the bytes of its whole
/// source tensor `source` (a shard's full shape), resolved in the model
/// folder `directory` by resolveExternalData. Messages start with
/// "external data 'LOCATION'".
Expected<std::string> resolveParameterData(const ExternalData &external,
                                           const TensorType &source,
                                           const std::string &directory);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_INPUTFILES_H
