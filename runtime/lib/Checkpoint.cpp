//===- Checkpoint.cpp - Checkpoints of the source model's tensors ---------===//

#include "galvatron/Runtime/Checkpoint.h"

#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/Parameters.h"
#include "galvatron/Runtime/RankProgram.h"

#include "CPU/CPUKernels.h"
#include "Json.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace galvatron::runtime {
namespace {

constexpr const char *kManifestName = "manifest.json";
constexpr const char *kManifestFormat = "galvatron-checkpoint";
constexpr int64_t kManifestVersion = 2;
/// File stems of the weights and of the training state.
constexpr const char *kWeightsStem = "model";
constexpr const char *kStateStem = "optimizer";
constexpr const char *kCheckpointPrefix = "checkpoint-";

std::string inDirectory(const std::string &directory, const std::string &name) {
  return directory.empty() || directory.back() == '/' ? directory + name
                                                      : directory + "/" + name;
}

bool exists(const std::string &path) {
  struct stat status;
  return ::stat(path.c_str(), &status) == 0;
}

bool isDirectory(const std::string &path) {
  struct stat status;
  return ::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode);
}

/// The entries of `directory`, sorted.
std::vector<std::string> listDirectory(const std::string &directory) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR *)> listing(::opendir(directory.c_str()),
                                               ::closedir);
  if (!listing)
    return names;
  while (const dirent *entry = ::readdir(listing.get()))
    if (std::strcmp(entry->d_name, ".") && std::strcmp(entry->d_name, ".."))
      names.push_back(entry->d_name);
  std::sort(names.begin(), names.end());
  return names;
}

/// Removes `path`, a file or a directory of files (what a checkpoint is).
Status removeTree(const std::string &path) {
  if (isDirectory(path))
    for (const std::string &name : listDirectory(path))
      std::remove(inDirectory(path, name).c_str());
  if (std::remove(path.c_str()) != 0 && errno != ENOENT)
    return error("cannot remove '", path, "': ", std::strerror(errno));
  return Status::ok();
}

/// Whether `name` is a checkpoint's directory: checkpoint-<step>, possibly
/// with a suffix (one being written, or a second one of the same step).
bool isCheckpointName(const std::string &name) {
  size_t length = std::strlen(kCheckpointPrefix);
  return name.compare(0, length, kCheckpointPrefix) == 0 &&
         name.size() > length && std::isdigit((unsigned char)name[length]);
}

/// Orders names with the numbers in them compared by value (h.2 before
/// h.10), then as plain strings.
bool naturalLess(const std::string &a, const std::string &b) {
  size_t i = 0, j = 0;
  auto digit = [](char c) { return std::isdigit((unsigned char)c) != 0; };
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t endA = i, endB = j;
      while (endA < a.size() && digit(a[endA]))
        ++endA;
      while (endB < b.size() && digit(b[endB]))
        ++endB;
      while (i + 1 < endA && a[i] == '0')
        ++i;
      while (j + 1 < endB && b[j] == '0')
        ++j;
      if (endA - i != endB - j)
        return endA - i < endB - j;
      if (int order = a.compare(i, endA - i, b, j, endB - j))
        return order < 0;
      i = endA;
      j = endB;
    } else if (a[i] != b[j]) {
      return (unsigned char)a[i] < (unsigned char)b[j];
    } else {
      ++i;
      ++j;
    }
  }
  if (a.size() - i != b.size() - j)
    return a.size() - i < b.size() - j;
  return a < b;
}

int64_t boxElements(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  return count;
}

bool overlap(const LogicalTensor::Part &a, const LogicalTensor::Part &b) {
  for (size_t d = 0; d < a.start.size(); ++d)
    if (a.start[d] + a.shape[d] <= b.start[d] ||
        b.start[d] + b.shape[d] <= a.start[d])
      return false;
  return true;
}

/// A checkpoint holds finite values only: a diverged run must not replace
/// the last good one.
Status checkFinite(const std::string &name, const TensorType &type,
                   const std::vector<uint8_t> &bytes) {
  if (!isFloat(type.elementType))
    return Status::ok();
  // f32 (nearly every buffer) without the per-element type switch.
  const float *floats = reinterpret_cast<const float *>(bytes.data());
  bool f32 = type.elementType == ElementType::f32;
  for (int64_t i = 0; i < type.numElements(); ++i) {
    double value =
        f32 ? floats[i] : cpu::loadElement(bytes.data(), type.elementType, i);
    if (!std::isfinite(value))
      return error("'", name, "' holds a non-finite value (", value,
                   " at element ", i, ")");
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// File layout
//===----------------------------------------------------------------------===//

/// One safetensors file, laid out before anything is written.
struct FileLayout {
  std::string name;
  /// The file's first bytes: the header's length and the header.
  std::string header;
  uint64_t size = 0;
  /// Each tensor (an index into the tensor list) and where its bytes start.
  std::vector<std::pair<size_t, uint64_t>> tensors;
};

struct Layout {
  std::vector<FileLayout> files;
  /// Hugging Face index files of sharded groups: name and JSON text.
  std::vector<std::pair<std::string, std::string>> indexes;
};

/// Lays out the tensors `members` (indices into `tensors`) as `stem`.
/// safetensors, or, when larger than `maxShardBytes`, as Hugging Face
/// shards them: greedily, in order, into STEM-0000i-of-0000n.safetensors
/// with the index STEM.safetensors.index.json.
void planGroup(const std::vector<LogicalTensor> &tensors,
               const std::vector<size_t> &members, const std::string &stem,
               uint64_t maxShardBytes, const SafeTensorsMetadata &metadata,
               Layout &layout) {
  if (members.empty())
    return;
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shardBytes = 0, total = 0;
  for (size_t index : members) {
    uint64_t bytes = tensors[index].type.byteSize();
    if (!shards.back().empty() && shardBytes + bytes > maxShardBytes) {
      shards.emplace_back();
      shardBytes = 0;
    }
    shards.back().push_back(index);
    shardBytes += bytes;
    total += bytes;
  }
  auto number = [](size_t value) {
    char text[16];
    std::snprintf(text, sizeof(text), "%05zu", value);
    return std::string(text);
  };
  std::string weightMap;
  for (size_t s = 0; s < shards.size(); ++s) {
    FileLayout file;
    file.name = shards.size() == 1
                    ? stem + ".safetensors"
                    : stem + "-" + number(s + 1) + "-of-" +
                          number(shards.size()) + ".safetensors";
    std::vector<std::string> names;
    std::vector<TensorType> types;
    for (size_t index : shards[s]) {
      names.push_back(tensors[index].name);
      types.push_back(tensors[index].type);
      weightMap += std::string(weightMap.empty() ? "" : ",\n") + "    " +
                   quoteJson(tensors[index].name) + ": " + quoteJson(file.name);
    }
    file.header = safeTensorsHeader(names, types, metadata);
    uint64_t offset = file.header.size();
    for (size_t index : shards[s]) {
      file.tensors.emplace_back(index, offset);
      offset += tensors[index].type.byteSize();
    }
    file.size = offset;
    layout.files.push_back(std::move(file));
  }
  if (shards.size() > 1)
    layout.indexes.emplace_back(
        stem + ".safetensors.index.json",
        "{\n  \"metadata\": {\"total_size\": " + std::to_string(total) +
            "},\n  \"weight_map\": {\n" + weightMap + "\n  }\n}\n");
}

Layout planLayout(const std::vector<LogicalTensor> &tensors, bool withState,
                  uint64_t maxShardBytes, const SafeTensorsMetadata &metadata) {
  std::vector<size_t> weights, state;
  for (size_t i = 0; i < tensors.size(); ++i)
    (tensors[i].state ? state : weights).push_back(i);
  Layout layout;
  planGroup(tensors, weights, kWeightsStem, maxShardBytes, metadata, layout);
  if (withState)
    planGroup(tensors, state, kStateStem, maxShardBytes, metadata, layout);
  return layout;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

Status writeAt(int descriptor, const std::string &path, const uint8_t *data,
               uint64_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t written = ::pwrite(descriptor, data, size, off_t(offset));
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return error("cannot write '", path, "': ",
                   std::strerror(written < 0 ? errno : ENOSPC));
    data += written;
    size -= uint64_t(written);
    offset += uint64_t(written);
  }
  return Status::ok();
}

/// Flushes `descriptor` to the disk and closes it.
Status closeFile(int descriptor, const std::string &path) {
  bool ok = ::fsync(descriptor) == 0;
  int cause = errno;
  ok &= ::close(descriptor) == 0;
  if (!ok)
    return error("cannot write '", path, "': ", std::strerror(cause));
  return Status::ok();
}

/// Rank 0: creates the files of `layout` in `directory` at their full size,
/// their headers written (the data is left to the ranks owning it), and
/// the index files.
Status createFiles(const std::string &directory, const Layout &layout) {
  for (const FileLayout &file : layout.files) {
    std::string path = inDirectory(directory, file.name);
    int descriptor = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (descriptor < 0)
      return error("cannot write '", path, "': ", std::strerror(errno));
    Status status = writeAt(descriptor, path,
                            reinterpret_cast<const uint8_t *>(file.header.data()),
                            file.header.size(), 0);
    if (status.isOk() && ::ftruncate(descriptor, off_t(file.size)) != 0)
      status = error("cannot write '", path, "': ", std::strerror(errno));
    Status closed = closeFile(descriptor, path);
    GALVATRON_RETURN_IF_ERROR(status);
    GALVATRON_RETURN_IF_ERROR(closed);
  }
  for (const auto &[name, text] : layout.indexes)
    GALVATRON_RETURN_IF_ERROR(writeFileAtomically(
        inDirectory(directory, name), {{text.data(), text.size()}}));
  return Status::ok();
}

/// Every rank: writes the parts of the layout's tensors it owns into the
/// files rank 0 created in `directory`.
Status writeParts(Executor &executor, const std::vector<LogicalTensor> &tensors,
                  const std::string &directory, const Layout &layout) {
  const RankProgram &rank = executor.rankProgram();
  std::vector<uint8_t> bytes;
  for (const FileLayout &file : layout.files) {
    std::string path = inDirectory(directory, file.name);
    int descriptor = -1;
    for (const auto &[index, offset] : file.tensors) {
      const LogicalTensor &tensor = tensors[index];
      for (const LogicalTensor::Part &part : tensor.parts) {
        if (part.rank != rank.rank)
          continue;
        const Parameter &parameter = rank.parameters[part.parameter];
        const TensorType &type = rank.buffers[parameter.buffer].type;
        bytes.resize(type.byteSize());
        GALVATRON_RETURN_IF_ERROR(
            executor.readBuffer(parameter.buffer, bytes.data(), bytes.size()));
        GALVATRON_RETURN_IF_ERROR(checkFinite(tensor.name, type, bytes));
        if (part.shape != type.shape)
          bytes = packValidPart(parameter, type, bytes.data());
        if (descriptor < 0) {
          descriptor = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
          if (descriptor < 0)
            return error("cannot open '", path, "', which rank 0 created: ",
                         std::strerror(errno),
                         " (every rank must see the checkpoint directory: "
                         "put it on a file system all ranks share)");
        }
        uint64_t size = elementSize(type.elementType);
        Status status = Status::ok();
        forEachContiguousRun(
            TensorBox{tensor.fullShape, part.start, part.shape},
            [&](int64_t inTensor, int64_t inBox, int64_t count) {
              if (status.isOk())
                status = writeAt(descriptor, path, bytes.data() + inBox * size,
                                 uint64_t(count) * size,
                                 offset + uint64_t(inTensor) * size);
            });
        if (!status.isOk()) {
          ::close(descriptor);
          return status;
        }
      }
    }
    if (descriptor >= 0)
      GALVATRON_RETURN_IF_ERROR(closeFile(descriptor, path));
  }
  return Status::ok();
}

Status syncDirectory(const std::string &directory) {
  int descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0)
    return error("cannot open '", directory, "': ", std::strerror(errno));
  ::fsync(descriptor);
  ::close(descriptor);
  return Status::ok();
}

/// A name every rank of the job shares and another job does not: rank 0's
/// random number.
std::string jobToken(Communicator &comm) {
  int64_t token = 0;
  if (comm.rank() == 0)
    token = int64_t(std::random_device()() & 0x7FFFFFFF);
  token = comm.allGatherValue(token)[0];
  char text[16];
  std::snprintf(text, sizeof(text), "%08llx", (long long)token);
  return text;
}

/// The directory the manifest of `directory` names, or empty.
std::string namedCheckpoint(const std::string &directory) {
  std::vector<uint8_t> bytes;
  std::string path = inDirectory(directory, kManifestName);
  Expected<InputFile> file = openRegularFile(path);
  if (!file || file->size > (1u << 20) ||
      !readFileRange(path, 0, file->size, bytes).isOk())
    return "";
  Expected<JsonValue> manifest = parseJson(std::string_view(
      reinterpret_cast<const char *>(bytes.data()), bytes.size()));
  const JsonValue *name = manifest ? manifest->get("checkpoint") : nullptr;
  return name && name->kind == JsonValue::Kind::string ? name->string : "";
}

std::string manifestText(const std::string &checkpoint, const Layout &layout,
                         const TrainingProgress &progress,
                         const Program &program) {
  std::string files;
  auto add = [&](const std::string &name, uint64_t size) {
    files += std::string(files.empty() ? "" : ", ") + quoteJson(name) + ": " +
             std::to_string(size);
  };
  for (const FileLayout &file : layout.files)
    add(file.name, file.size);
  for (const auto &[name, text] : layout.indexes)
    add(name, text.size());
  return "{\"format\": \"" + std::string(kManifestFormat) +
         "\", \"version\": " + std::to_string(kManifestVersion) +
         ", \"step\": " + std::to_string(progress.step) +
         ", \"checkpoint\": " + quoteJson(checkpoint) +
         ", \"data_position\": " + std::to_string(progress.dataPosition) +
         ", \"seed\": " + std::to_string(progress.seed) +
         ", \"model\": " + quoteJson(program.model) +
         ", \"world_size\": " + std::to_string(program.worldSize) +
         ", \"files\": {" + files + "}}\n";
}

/// Rank 0, once every rank wrote its parts into `staged`: renames it into
/// place as checkpoint-<S> (checkpoint-<S>.1 when the manifest names a
/// checkpoint-<S> already, so that it stays intact until the new manifest
/// lands), writes the manifest, then removes the other checkpoints.
Status publish(const std::string &directory, const std::string &staged,
               const Layout &layout, const TrainingProgress &progress,
               const Program &program) {
  std::string name = kCheckpointPrefix + std::to_string(progress.step);
  if (namedCheckpoint(directory) == name)
    name += ".1";
  std::string path = inDirectory(directory, name);
  GALVATRON_RETURN_IF_ERROR(removeTree(path));
  if (std::rename(staged.c_str(), path.c_str()) != 0)
    return error("cannot rename '", staged, "' to '", path,
                 "': ", std::strerror(errno));
  GALVATRON_RETURN_IF_ERROR(syncDirectory(directory));
  std::string text = manifestText(name, layout, progress, program);
  GALVATRON_RETURN_IF_ERROR(writeFileAtomically(
      inDirectory(directory, kManifestName), {{text.data(), text.size()}}));
  for (const std::string &entry : listDirectory(directory))
    if (entry != name && isCheckpointName(entry))
      (void)removeTree(inDirectory(directory, entry));
  return Status::ok();
}

} // namespace

//===----------------------------------------------------------------------===//
// Logical tensors
//===----------------------------------------------------------------------===//

Expected<std::vector<LogicalTensor>>
collectLogicalTensors(const Program &program, bool withState) {
  std::map<std::string, LogicalTensor> byName;
  // Each rank holds its stage's parameters (in the stage's order, as its
  // RankProgram does), at the slices the rank terms give it.
  for (uint32_t r = 0; r < program.worldSize; ++r) {
    const StageProgram &stage = program.stages[program.stageOf(r)];
    for (uint32_t p = 0; p < stage.parameters.size(); ++p) {
      const Parameter &parameter = stage.parameters[p];
      if (parameter.state && !withState)
        continue;
      const TensorType &type = stage.buffers[parameter.buffer].type;
      TensorType model{type.elementType, parameter.modelShape(type.shape)};
      auto [entry, fresh] = byName.try_emplace(parameter.name);
      LogicalTensor &tensor = entry->second;
      if (fresh) {
        tensor.name = parameter.name;
        tensor.type = model;
        tensor.state = parameter.state;
        tensor.fullShape = parameter.wholeShape(type.shape);
      } else if (tensor.type != model || tensor.state != parameter.state) {
        return error("rank ", r, " holds '", parameter.name, "' as ",
                     model.str(), " but rank ", tensor.parts.front().rank,
                     " as ", tensor.type.str());
      }
      auto isWhole = [&](const LogicalTensor::Part &part) {
        return part.shape == tensor.fullShape;
      };
      // One coordinate system for the parts: a slice's (a whole tensor is
      // the box of every refinement of its shape).
      if (parameter.isSlice() && parameter.fullShape != tensor.fullShape) {
        if (!std::all_of(tensor.parts.begin(), tensor.parts.end(), isWhole))
          return error("ranks ", tensor.parts.front().rank, " and ", r,
                       " hold slices of '", parameter.name,
                       "' in different layouts (",
                       shapeString(tensor.fullShape), " and ",
                       shapeString(parameter.fullShape), ")");
        tensor.fullShape = parameter.fullShape;
        for (LogicalTensor::Part &part : tensor.parts) {
          part.start.assign(tensor.fullShape.size(), 0);
          part.shape = tensor.fullShape;
        }
      }
      LogicalTensor::Part part{r, p, {}, {}};
      if (parameter.isSlice()) {
        // Without the padding of a padded slice (a block of padding only
        // holds nothing of the tensor).
        part.start = sliceStartOf(program, parameter, r);
        part.shape = parameter.validShape(type.shape, part.start);
        if (boxElements(part.shape) == 0)
          continue;
      } else {
        part.start.assign(tensor.fullShape.size(), 0);
        part.shape = tensor.fullShape;
      }
      // Replicas: the lowest rank holding a box writes it (or a box
      // holding it: a whole tensor covers the slices of other ranks).
      auto within = [](const LogicalTensor::Part &inner,
                       const LogicalTensor::Part &outer) {
        for (size_t d = 0; d < inner.start.size(); ++d)
          if (inner.start[d] < outer.start[d] ||
              inner.start[d] + inner.shape[d] > outer.start[d] + outer.shape[d])
            return false;
        return true;
      };
      if (std::any_of(tensor.parts.begin(), tensor.parts.end(),
                      [&](const LogicalTensor::Part &other) {
                        return within(part, other);
                      }))
        continue;
      tensor.parts.erase(std::remove_if(tensor.parts.begin(),
                                        tensor.parts.end(),
                                        [&](const LogicalTensor::Part &other) {
                                          return within(other, part);
                                        }),
                         tensor.parts.end());
      tensor.parts.push_back(std::move(part));
    }
  }
  std::vector<LogicalTensor> tensors;
  for (auto &[name, tensor] : byName) {
    int64_t covered = 0;
    for (size_t i = 0; i < tensor.parts.size(); ++i) {
      covered += boxElements(tensor.parts[i].shape);
      for (size_t j = 0; j < i; ++j)
        if (overlap(tensor.parts[i], tensor.parts[j]))
          return error("ranks ", tensor.parts[j].rank, " and ",
                       tensor.parts[i].rank, " hold overlapping slices of '",
                       name, "'");
    }
    if (covered != boxElements(tensor.fullShape))
      return error("the ranks hold ", covered, " of the ",
                   boxElements(tensor.fullShape), " elements of '", name, "'");
    tensors.push_back(std::move(tensor));
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const LogicalTensor &a, const LogicalTensor &b) {
              return naturalLess(a.name, b.name);
            });
  return tensors;
}

//===----------------------------------------------------------------------===//
// Saving
//===----------------------------------------------------------------------===//

Status saveCheckpoint(Executor &executor, Communicator &comm,
                      const std::vector<LogicalTensor> &tensors,
                      const CheckpointOptions &options,
                      const TrainingProgress &progress,
                      const Agreement &agree) {
  bool lead = comm.rank() == 0;
  Layout layout = planLayout(tensors, /*withState=*/true, options.maxShardBytes,
                             {{"step", std::to_string(progress.step)}});
  std::string staged = inDirectory(
      options.directory, kCheckpointPrefix + std::to_string(progress.step) +
                             ".incomplete-" + jobToken(comm));
  Status created = Status::ok();
  if (lead) {
    if (::mkdir(staged.c_str(), 0777) != 0)
      created = error("cannot create directory '", staged,
                      "': ", std::strerror(errno));
    else
      created = createFiles(staged, layout);
  }
  Status written = agree(std::move(created));
  if (written.isOk())
    written = agree(writeParts(executor, tensors, staged, layout));
  if (!written.isOk()) {
    if (lead)
      (void)removeTree(staged);
    return written;
  }
  return agree(lead ? publish(options.directory, staged, layout, progress,
                              executor.program())
                    : Status::ok());
}

Status saveWeights(Executor &executor, Communicator &comm,
                   const std::vector<LogicalTensor> &tensors,
                   const std::string &path, const Agreement &agree) {
  bool lead = comm.rank() == 0;
  Layout layout = planLayout(tensors, /*withState=*/false, UINT64_MAX, {});
  std::string staged = path + ".incomplete-" + jobToken(comm);
  size_t slash = staged.rfind('/');
  std::string directory =
      slash == std::string::npos ? "." : staged.substr(0, slash + 1);
  if (!layout.files.empty())
    layout.files[0].name = staged.substr(slash + 1);
  Status written = agree(lead ? createFiles(directory, layout) : Status::ok());
  if (written.isOk())
    written = agree(writeParts(executor, tensors, directory, layout));
  Status renamed = Status::ok();
  if (lead && written.isOk() && std::rename(staged.c_str(), path.c_str()) != 0)
    renamed = error("cannot write '", path, "': ", std::strerror(errno));
  if (lead && (!written.isOk() || !renamed.isOk()))
    std::remove(staged.c_str());
  if (!written.isOk())
    return written;
  return agree(std::move(renamed));
}

//===----------------------------------------------------------------------===//
// Finding a checkpoint
//===----------------------------------------------------------------------===//

Expected<CheckpointInfo> findCheckpoint(const std::string &directory) {
  std::string where = "checkpoint '" + directory + "'";
  if (!exists(directory))
    return error("cannot open ", where, ": ", std::strerror(ENOENT));
  std::string manifestPath = inDirectory(directory, kManifestName);
  if (!exists(manifestPath)) {
    std::string found;
    for (const std::string &entry : listDirectory(directory))
      if (isCheckpointName(entry))
        found += (found.empty() ? "" : ", ") + entry;
    return error(where, " is incomplete: it has no ", kManifestName,
                 ", which rank 0 writes once every rank's part of a step is "
                 "saved (checkpoints found: ",
                 found.empty() ? "none" : found, ")");
  }
  Expected<InputFile> file = openRegularFile(manifestPath);
  if (!file)
    return file.takeStatus();
  if (file->size > (1u << 20))
    return error("'", manifestPath, "' is not a checkpoint manifest (",
                 file->size, " bytes)");
  std::vector<uint8_t> bytes;
  GALVATRON_RETURN_IF_ERROR(readFileRange(manifestPath, 0, file->size, bytes));
  Expected<JsonValue> manifest = parseJson(std::string_view(
      reinterpret_cast<const char *>(bytes.data()), bytes.size()));
  if (!manifest)
    return manifest.takeStatus().withContext("'" + manifestPath + "'");
  auto field = [&](const char *key, JsonValue::Kind kind) -> const JsonValue * {
    const JsonValue *value = manifest->get(key);
    return value && value->kind == kind ? value : nullptr;
  };
  using Kind = JsonValue::Kind;
  const JsonValue *format = field("format", Kind::string);
  const JsonValue *version = field("version", Kind::integer);
  if (!format || format->string != kManifestFormat || !version)
    return error("'", manifestPath, "' is not a checkpoint manifest");
  if (version->integer != kManifestVersion)
    return error("'", manifestPath, "' is a checkpoint manifest of version ",
                 version->integer, "; this Galvatron reads version ",
                 kManifestVersion,
                 version->integer == 1
                     ? " (version 1 checkpoints hold each rank's own parts and "
                       "cannot be resumed)"
                     : "");
  const JsonValue *step = field("step", Kind::integer);
  const JsonValue *name = field("checkpoint", Kind::string);
  const JsonValue *position = field("data_position", Kind::integer);
  const JsonValue *seed = field("seed", Kind::integer);
  const JsonValue *files = field("files", Kind::object);
  auto plainName = [](const std::string &text) {
    return !text.empty() && text.find('/') == std::string::npos &&
           text != "." && text != "..";
  };
  if (!step || step->integer < 0 || !name || !isCheckpointName(name->string) ||
      !plainName(name->string) || !position || position->integer < 0 || !seed ||
      !files)
    return error("'", manifestPath, "' is not a complete checkpoint manifest");
  CheckpointInfo info;
  info.progress = {step->integer, position->integer, seed->integer};
  info.directory = inDirectory(directory, name->string);
  if (!isDirectory(info.directory))
    return error(where, " is damaged: its manifest names '", name->string,
                 "', which is missing");
  for (const auto &[file, size] : files->members) {
    if (!plainName(file) || size.kind != Kind::integer || size.integer < 0)
      return error("'", manifestPath, "' lists a malformed file entry");
    std::string path = inDirectory(info.directory, file);
    Expected<InputFile> opened = openRegularFile(path);
    if (!opened)
      return error(where, " is damaged: ", opened.status().message());
    if (opened->size != uint64_t(size.integer))
      return error(where, " is damaged: '", path, "' holds ", opened->size,
                   " bytes, the manifest says ", size.integer);
    info.files[file] = uint64_t(size.integer);
  }
  return info;
}

//===----------------------------------------------------------------------===//
// Reading tensors
//===----------------------------------------------------------------------===//

Expected<TensorStore> TensorStore::open(const std::string &path) {
  TensorStore store;
  store.where = path;
  std::vector<std::string> shards;
  std::string indexPath;
  if (isDirectory(path)) {
    if (exists(inDirectory(path, kManifestName))) {
      Expected<CheckpointInfo> checkpoint = findCheckpoint(path);
      if (!checkpoint)
        return checkpoint.takeStatus();
      return open(*checkpoint, /*state=*/false);
    }
    std::string index = inDirectory(path, "model.safetensors.index.json");
    std::string single = inDirectory(path, "model.safetensors");
    if (exists(index))
      indexPath = index;
    else if (exists(single))
      shards.push_back(single);
    else
      return error("'", path, "' holds no model.safetensors, "
                   "model.safetensors.index.json or checkpoint manifest");
  } else if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    indexPath = path;
  } else {
    shards.push_back(path);
  }
  if (!indexPath.empty()) {
    // A Hugging Face index: {"metadata": {...}, "weight_map": {name: file}}.
    Expected<InputFile> file = openRegularFile(indexPath);
    if (!file)
      return file.takeStatus();
    if (file->size > (uint64_t(1) << 26))
      return error("'", indexPath, "' is not a safetensors index (",
                   file->size, " bytes)");
    std::vector<uint8_t> bytes;
    GALVATRON_RETURN_IF_ERROR(readFileRange(indexPath, 0, file->size, bytes));
    Expected<JsonValue> json = parseJson(std::string_view(
        reinterpret_cast<const char *>(bytes.data()), bytes.size()));
    if (!json)
      return json.takeStatus().withContext("'" + indexPath + "'");
    const JsonValue *map = json->get("weight_map");
    if (!map || map->kind != JsonValue::Kind::object)
      return error("'", indexPath, "' is not a safetensors index (it has no "
                   "weight_map)");
    size_t slash = indexPath.rfind('/');
    std::string folder =
        slash == std::string::npos ? "" : indexPath.substr(0, slash);
    std::set<std::string> seen;
    for (const auto &[name, shard] : map->members) {
      if (shard.kind != JsonValue::Kind::string || shard.string.empty() ||
          shard.string.find('/') != std::string::npos)
        return error("'", indexPath, "': the file of '", name,
                     "' is not a file name in the index's folder");
      if (seen.insert(shard.string).second)
        shards.push_back(inDirectory(folder, shard.string));
    }
  }
  for (const std::string &shard : shards) {
    Expected<SafeTensorsReader> reader = SafeTensorsReader::open(shard);
    if (!reader)
      return reader.takeStatus();
    store.files.push_back(std::move(*reader));
  }
  for (size_t f = 0; f < store.files.size(); ++f)
    for (size_t e = 0; e < store.files[f].entries().size(); ++e)
      if (!store.index.emplace(store.files[f].entries()[e].name,
                               std::make_pair(f, e))
               .second)
        return error("'", path, "' holds '", store.files[f].entries()[e].name,
                     "' twice");
  return store;
}

Expected<TensorStore> TensorStore::open(const CheckpointInfo &checkpoint,
                                        bool state) {
  std::string stem = state ? kStateStem : kWeightsStem;
  std::string index = stem + ".safetensors.index.json";
  std::string single = stem + ".safetensors";
  std::string path;
  if (checkpoint.files.count(index))
    path = inDirectory(checkpoint.directory, index);
  else if (checkpoint.files.count(single))
    path = inDirectory(checkpoint.directory, single);
  else
    return error("checkpoint '", checkpoint.directory, "' has no ", single,
                 " (its manifest lists neither it nor ", index, ")");
  Expected<TensorStore> store = open(path);
  if (!store)
    return store;
  // Every file must be of the manifest's step: a file of another checkpoint
  // copied in would mix steps.
  std::string step = std::to_string(checkpoint.progress.step);
  for (const SafeTensorsReader &file : store->files) {
    size_t slash = file.path().rfind('/');
    if (!checkpoint.files.count(file.path().substr(slash + 1)))
      return error("checkpoint '", checkpoint.directory, "': '", file.path(),
                   "' is not among the files its manifest lists");
    if (file.metadata("step") != step)
      return error("checkpoint '", checkpoint.directory, "' mixes steps: '",
                   file.path(), "' was written at step ",
                   file.metadata("step").empty() ? "(none)"
                                                 : file.metadata("step"),
                   ", the manifest names step ", step);
  }
  return store;
}

std::pair<const SafeTensorsReader *, const SafeTensorsReader::Entry *>
TensorStore::find(const std::string &name) const {
  auto found = index.find(name);
  if (found == index.end())
    return {nullptr, nullptr};
  const SafeTensorsReader &file = files[found->second.first];
  return {&file, &file.entries()[found->second.second]};
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> names;
  for (const auto &[name, where] : index)
    names.push_back(name);
  return names;
}

Status TensorStore::load(Executor &executor, const Parameter &parameter) const {
  const RankProgram &rank = executor.rankProgram();
  const TensorType &type = rank.buffers[parameter.buffer].type;
  std::string what =
      (parameter.state ? "state '" : "parameter '") + parameter.name + "'";
  auto [file, entry] = find(parameter.name);
  if (!entry)
    return error(what, " is missing from '", where, "'");
  std::string in = what + " in '" + file->path() + "'";
  const std::vector<int64_t> &shape = parameter.modelShape(type.shape);
  if (entry->type.shape != shape)
    return error(in, ": has shape ", shapeString(entry->type.shape),
                 ", expected ", shapeString(shape));
  ElementType from = entry->type.elementType;
  if (from != type.elementType && !(isFloat(from) && isFloat(type.elementType)))
    return error(in, ": holds ", elementTypeName(from), " values, expected ",
                 elementTypeName(type.elementType));
  TensorBox box = parameterBox(parameter, type);
  std::vector<uint8_t> bytes;
  GALVATRON_RETURN_IF_ERROR(file->readBox(*entry, box, bytes));
  if (from != type.elementType) {
    int64_t count = boxElements(box.shape);
    std::vector<uint8_t> converted(count * elementSize(type.elementType));
    for (int64_t i = 0; i < count; ++i)
      cpu::storeElement(converted.data(), type.elementType, i,
                        cpu::loadElement(bytes.data(), from, i));
    bytes.swap(converted);
  }
  if (box.shape != type.shape) {
    std::vector<uint8_t> padded(type.byteSize());
    unpackValidPart(parameter, type, bytes.data(), padded.data());
    bytes.swap(padded);
  }
  return executor.writeBuffer(parameter.buffer, bytes.data(), bytes.size());
}

Expected<TrainingProgress>
loadCheckpoint(Executor &executor, const CheckpointInfo &checkpoint,
               const std::vector<LogicalTensor> &tensors) {
  Expected<TensorStore> weights = TensorStore::open(checkpoint, false);
  if (!weights)
    return weights.takeStatus();
  Expected<TensorStore> state = TensorStore::open(checkpoint, true);
  if (!state)
    return state.takeStatus();
  // The same model: the same weights by name (shapes are checked as they
  // load).
  std::vector<std::string> held = weights->names(), wanted, extra, missing;
  for (const LogicalTensor &tensor : tensors)
    if (!tensor.state)
      wanted.push_back(tensor.name);
  std::sort(wanted.begin(), wanted.end());
  std::set_difference(held.begin(), held.end(), wanted.begin(), wanted.end(),
                      std::back_inserter(extra));
  std::set_difference(wanted.begin(), wanted.end(), held.begin(), held.end(),
                      std::back_inserter(missing));
  auto some = [](const std::vector<std::string> &names) {
    return std::to_string(names.size()) + " ('" + names.front() + "'" +
           (names.size() > 1 ? ", ..." : "") + ")";
  };
  if (!extra.empty() || !missing.empty())
    return error("checkpoint '", checkpoint.directory,
                 "' is not of this program's model: it holds ",
                 extra.empty() ? "no" : some(extra),
                 " weights the program does not have and lacks ",
                 missing.empty() ? "none" : some(missing),
                 " of the program's");
  for (const Parameter &parameter : executor.rankProgram().parameters)
    GALVATRON_RETURN_IF_ERROR(
        (parameter.state ? *state : *weights).load(executor, parameter));
  return checkpoint.progress;
}

} // namespace galvatron::runtime
