//===- InputFiles.cpp - Files read safely ---------------------------------===//

#include "galvatron/Runtime/InputFiles.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace galvatron::runtime {

namespace {

/// "is a directory, not a regular file" and the like.
std::string notRegular(mode_t mode) {
  const char *kind = S_ISDIR(mode)                    ? "a directory"
                     : S_ISFIFO(mode)                 ? "a FIFO (named pipe)"
                     : S_ISSOCK(mode)                 ? "a socket"
                     : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
                                                      : "a special file";
  return std::string("is ") + kind + ", not a regular file";
}

std::optional<std::string> realPath(const std::string &path) {
  char *resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved)
    return std::nullopt;
  std::string result = resolved;
  std::free(resolved);
  return result;
}

} // namespace

Expected<InputFile> openRegularFile(const std::string &path,
                                    const std::string &what) {
  std::string named = (what.empty() ? "'" : what + " '") + path + "'";
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
  int descriptor = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (descriptor < 0)
    return error("cannot open ", named, ": ", std::strerror(errno));
  struct stat status;
  if (::fstat(descriptor, &status) != 0) {
    int cause = errno;
    ::close(descriptor);
    return error("cannot open ", named, ": ", std::strerror(cause));
  }
  if (!S_ISREG(status.st_mode)) {
    ::close(descriptor);
    return error(named, " ", notRegular(status.st_mode));
  }
  FILE *file = ::fdopen(descriptor, "rb");
  if (!file) {
    int cause = errno;
    ::close(descriptor);
    return error("cannot open ", named, ": ", std::strerror(cause));
  }
  return InputFile{std::shared_ptr<FILE>(file, std::fclose),
                   uint64_t(status.st_size)};
}

Status checkExternalLocation(const std::string &location) {
  if (location.empty())
    return error("names no file");
  if (location.find('\0') != std::string::npos)
    return error("has a NUL character in its path");
  if (location[0] == '/' || location[0] == '\\')
    return error("is an absolute path; external data must be relative to "
                 "the model's folder");
  // Components split at '/' and, for files written on Windows, '\'.
  size_t begin = 0;
  while (begin <= location.size()) {
    size_t end = location.find_first_of("/\\", begin);
    if (end == std::string::npos)
      end = location.size();
    if (location.compare(begin, end - begin, "..") == 0 && end - begin == 2)
      return error("leaves the model's folder ('..' in the path)");
    begin = end + 1;
  }
  return Status::ok();
}

Expected<std::string> resolveExternalData(const std::string &directory,
                                          const std::string &location,
                                          uint64_t offset, uint64_t bytes) {
  GALVATRON_RETURN_IF_ERROR(checkExternalLocation(location));
  if (directory.empty())
    return error("cannot be read: the model was not loaded from a folder");
  std::string path = directory.back() == '/' ? directory + location
                                             : directory + "/" + location;
  struct stat status;
  if (::stat(path.c_str(), &status) != 0)
    return error("does not exist (looked for '", path, "')");
  std::optional<std::string> realFile = realPath(path);
  std::optional<std::string> realDirectory = realPath(directory);
  if (!realFile || !realDirectory)
    return error("cannot be resolved");
  std::string prefix = *realDirectory == "/" ? "/" : *realDirectory + "/";
  if (realFile->compare(0, prefix.size(), prefix) != 0)
    return error("resolves to '", *realFile,
                 "', outside the model's folder (through a symbolic link)");
  if (!S_ISREG(status.st_mode))
    return error(notRegular(status.st_mode));
  uint64_t size = uint64_t(status.st_size);
  if (offset > size || bytes > size - offset)
    return error("is truncated: bytes [", offset, ", ", offset, " + ", bytes,
                 ") lie beyond the end of the file (", size, " bytes)");
  return path;
}

Expected<std::string> resolveParameterData(const ExternalData &external,
                                           const TensorType &source,
                                           const std::string &directory) {
  uint64_t bytes = source.byteSize();
  if (external.length != -1 && uint64_t(external.length) != bytes)
    return error("external data '", external.location, "' of ", external.length,
                 " bytes does not fit ", source.str(), " (", bytes, " bytes)");
  Expected<std::string> path = resolveExternalData(
      directory, external.location, uint64_t(external.offset), bytes);
  if (!path)
    return error("external data '", external.location, "' ",
                 path.status().message());
  return path;
}

} // namespace galvatron::runtime
