//===- AtomicFile.cpp - Files replaced whole or not at all ----------------===//

#include "galvatron/Runtime/AtomicFile.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

namespace galvatron::runtime {

Status writeFileAtomically(const std::string &path,
                           const std::vector<FilePart> &parts) {
  // Devices and pipes (/dev/null, /dev/stdout, a FIFO) are written in place:
  // renaming over them would replace the node itself.
  struct stat status;
  bool special = ::stat(path.c_str(), &status) == 0 && !S_ISREG(status.st_mode);
  // A temporary name of this process alone: two writers of one path (two
  // runs sharing a checkpoint directory) never write into each other's file.
  static std::atomic<uint64_t> counter{0};
  std::string target = special ? path
                               : path + ".tmp." + std::to_string(::getpid()) +
                                     "." + std::to_string(counter++);
  FILE *file = std::fopen(target.c_str(), special ? "wb" : "wbx");
  if (!file)
    return error("cannot write '", path, "': ", std::strerror(errno));
  bool ok = true;
  for (const auto &[data, size] : parts)
    ok &= size == 0 || std::fwrite(data, 1, size, file) == size;
  ok &= std::fflush(file) == 0;
  ok &= special || ::fsync(::fileno(file)) == 0;
  ok &= std::fclose(file) == 0;
  ok = ok && (special || std::rename(target.c_str(), path.c_str()) == 0);
  if (ok)
    return Status::ok();
  int cause = errno;
  if (!special)
    std::remove(target.c_str());
  return error("cannot write '", path, "': ", std::strerror(cause));
}

} // namespace galvatron::runtime
