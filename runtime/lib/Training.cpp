//===- Training.cpp - Data, batches and checkpoints of training runs ------===//

#include "galvatron/Runtime/Training.h"

#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/Parameters.h"
#include "galvatron/Runtime/TensorFiles.h"

#include "CPU/CPUKernels.h"
#include "Json.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include <dirent.h>
#include <sys/stat.h>

namespace galvatron::runtime {

//===----------------------------------------------------------------------===//
// Token data
//===----------------------------------------------------------------------===//

namespace {
constexpr int32_t kLlmcMagic = 20240520;
constexpr int64_t kLlmcHeaderBytes = 256 * 4;
/// Positions of the synthetic stream (practically endless).
constexpr int64_t kSyntheticTokens = int64_t(1) << 40;

uint32_t readLittleEndian(const uint8_t *bytes, unsigned width) {
  uint32_t value = 0;
  for (unsigned i = 0; i < width; ++i)
    value |= uint32_t(bytes[i]) << (8 * i);
  return value;
}
} // namespace

Expected<TokenData> TokenData::open(const std::string &path,
                                    unsigned rawTokenBytes) {
  std::vector<uint8_t> header;
  Expected<InputFile> file = openRegularFile(path, "token file");
  if (!file)
    return file.takeStatus();
  int64_t size = int64_t(file->size);
  TokenData data;
  int64_t offset = 0;
  unsigned width = rawTokenBytes;
  int64_t count = 0;
  std::string format = "raw uint" + std::to_string(8 * rawTokenBytes);
  if (size >= kLlmcHeaderBytes) {
    GALVATRON_RETURN_IF_ERROR(readFileRange(path, 0, kLlmcHeaderBytes, header));
    if (int32_t(readLittleEndian(header.data(), 4)) == kLlmcMagic) {
      uint32_t version = readLittleEndian(header.data() + 4, 4);
      if (version != 1 && version != 2)
        return error("token file '", path, "': llm.c header version ",
                     version, " is not 1 (uint16) or 2 (uint32)");
      width = version == 1 ? 2 : 4;
      count = int64_t(readLittleEndian(header.data() + 8, 4));
      offset = kLlmcHeaderBytes;
      if (offset + count * width > size)
        return error("token file '", path, "': the header promises ", count,
                     " tokens but the file holds ",
                     (size - offset) / int64_t(width));
      format = "llm.c uint" + std::to_string(8 * width);
    }
  }
  if (offset == 0) {
    if (size % width)
      return error("token file '", path, "' of ", size,
                   " bytes is not a whole number of ", width, "-byte tokens");
    count = size / width;
  }
  std::vector<uint8_t> bytes;
  GALVATRON_RETURN_IF_ERROR(
      readFileRange(path, uint64_t(offset), uint64_t(count * width), bytes));
  data.tokens.resize(count);
  for (int64_t i = 0; i < count; ++i)
    data.tokens[i] = readLittleEndian(&bytes[i * width], width);
  data.text = "'" + path + "' (" + format + ", " + std::to_string(count) +
              " tokens)";
  return data;
}

TokenData TokenData::synthetic(int64_t vocab, uint64_t seed) {
  TokenData data;
  data.isSynthetic = true;
  data.vocab = vocab;
  data.seed = mixBits(seed ^ 0x5EED5EED5EEDull);
  data.text = "synthetic (uniform over " + std::to_string(vocab) + " tokens)";
  return data;
}

int64_t TokenData::size() const {
  return isSynthetic ? kSyntheticTokens : int64_t(tokens.size());
}

int64_t TokenData::at(int64_t position) const {
  if (!isSynthetic)
    return tokens[position];
  return std::min<int64_t>(
      vocab - 1, int64_t(counterUniform(seed, uint64_t(position)) * double(vocab)));
}

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

int64_t BatchMaker::span() const {
  return shards * batch * seq + (info.loss == LossKind::nextToken ? 1 : 0);
}

Expected<Batch> BatchMaker::make(int64_t step, int64_t &position) const {
  if (data.size() < span())
    return error("the token data ", data.description(), " is shorter than ",
                 "one batch of ", batch, " x ", seq,
                 info.loss == LossKind::nextToken ? " (+1)" : "", " tokens");
  if (position + span() > data.size())
    position = 0;
  // This shard's sequences, contiguous from here.
  int64_t first = position + shard * batch * seq;
  Batch result;
  std::vector<int64_t> &inputs = result["input_ids"];
  std::vector<int64_t> &labels = result["labels"];
  inputs.resize(batch * seq);
  labels.resize(batch * seq);
  for (int64_t i = 0; i < batch * seq; ++i) {
    int64_t token = data.at(first + i);
    if (token < 0 || token >= info.vocabSize)
      return error("token ", token, " at position ", first + i, " of ",
                   data.description(), " is outside the model's vocabulary of ",
                   info.vocabSize);
    inputs[i] = token;
  }
  if (info.loss == LossKind::nextToken) {
    for (int64_t i = 0; i < batch * seq; ++i)
      labels[i] = data.at(first + i + 1);
    if (labels.back() < 0 || labels.back() >= info.vocabSize)
      return error("token ", labels.back(), " at position ",
                   first + batch * seq, " is outside the vocabulary");
  } else {
    // 15% of positions (at least one) per sequence; of those 80% become the
    // mask token, 10% a random token, 10% stay.
    uint64_t stepKey = mixBits(seed ^ mixBits(uint64_t(step)));
    for (int64_t b = 0; b < batch; ++b) {
      uint64_t key = mixBits(stepKey ^ uint64_t(shard * batch + b));
      uint64_t counter = 0;
      int64_t chosen = 0;
      for (int64_t s = 0; s < seq; ++s) {
        int64_t i = b * seq + s;
        bool masked = counterUniform(key, counter++) <= 0.15;
        // The last position is taken when no other was.
        if (!masked && s == seq - 1 && chosen == 0)
          masked = true;
        labels[i] = masked ? inputs[i] : -100;
        if (!masked)
          continue;
        ++chosen;
        double kind = counterUniform(key, counter++);
        if (kind <= 0.8)
          inputs[i] = maskToken;
        else if (kind <= 0.9)
          inputs[i] = std::min<int64_t>(
              info.vocabSize - 1,
              int64_t(counterUniform(key, counter++) * double(info.vocabSize)));
      }
    }
  }
  // For models that take them (BERT; exported GPT-2): no padding, one
  // segment.
  result["token_type_ids"].assign(batch * seq, 0);
  result["attention_mask"].assign(batch * seq, 1);
  position += shards * batch * seq;
  return result;
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

namespace {
/// Tensors of the progress, next to the variables.
constexpr const char *kStepName = "runtime.step";
constexpr const char *kPositionName = "runtime.data_position";
constexpr const char *kSeedName = "runtime.seed";
} // namespace

namespace {
constexpr const char *kManifestName = "manifest.json";
constexpr const char *kManifestFormat = "galvatron-checkpoint";
constexpr int64_t kManifestVersion = 1;

std::string inDirectory(const std::string &directory, const std::string &name) {
  return directory.empty() || directory.back() == '/' ? directory + name
                                                      : directory + "/" + name;
}

std::string partName(uint32_t rank, int64_t step) {
  return "checkpoint.step" + std::to_string(step) + ".rank" +
         std::to_string(rank) + ".safetensors";
}

/// The (rank, step) of a part's file name; none for other files.
std::optional<std::pair<uint32_t, int64_t>>
parsePartName(const std::string &name) {
  long long step = -1;
  unsigned rank = 0;
  if (std::sscanf(name.c_str(), "checkpoint.step%lld.rank%u.safetensors", &step,
                  &rank) != 2 ||
      step < 0 || partName(rank, step) != name)
    return std::nullopt;
  return std::make_pair(uint32_t(rank), int64_t(step));
}

/// The parts in `directory`, ordered by rank and step.
std::vector<std::pair<uint32_t, int64_t>>
listParts(const std::string &directory) {
  std::vector<std::pair<uint32_t, int64_t>> parts;
  std::unique_ptr<DIR, int (*)(DIR *)> listing(::opendir(directory.c_str()),
                                               ::closedir);
  if (!listing)
    return parts;
  while (const dirent *entry = ::readdir(listing.get()))
    if (auto part = parsePartName(entry->d_name))
      parts.push_back(*part);
  std::sort(parts.begin(), parts.end());
  return parts;
}

bool exists(const std::string &path) {
  struct stat status;
  return ::stat(path.c_str(), &status) == 0;
}
} // namespace

std::string checkpointPath(const std::string &directory, uint32_t rank,
                           uint32_t worldSize, int64_t step) {
  return inDirectory(directory, worldSize == 1 ? "checkpoint.safetensors"
                                               : partName(rank, step));
}

Status writeCheckpointManifest(const std::string &directory, uint32_t worldSize,
                               int64_t step) {
  std::string text = "{\"format\": \"" + std::string(kManifestFormat) +
                     "\", \"version\": " + std::to_string(kManifestVersion) +
                     ", \"step\": " + std::to_string(step) +
                     ", \"world_size\": " + std::to_string(worldSize) +
                     ", \"parts\": [";
  for (uint32_t rank = 0; rank < worldSize; ++rank)
    text += (rank ? ", " : "") + quoteJson(partName(rank, step));
  text += "]}\n";
  return writeFileAtomically(inDirectory(directory, kManifestName),
                             {{text.data(), text.size()}});
}

Expected<int64_t> findCheckpoint(const std::string &directory,
                                 uint32_t worldSize) {
  std::string manifestPath = inDirectory(directory, kManifestName);
  std::string where = "checkpoint '" + directory + "'";
  if (!exists(directory))
    return error("cannot open ", where, ": ", std::strerror(ENOENT));
  if (!exists(manifestPath)) {
    if (worldSize == 1)
      return int64_t(0);
    if (exists(checkpointPath(directory, 0, 1, 0)))
      return error(where, " holds the checkpoint of a one-rank job; this ",
                   "program runs on ", worldSize, " ranks");
    std::string found;
    for (auto [rank, step] : listParts(directory))
      found += (found.empty() ? "" : ", ") + std::string("rank ") +
               std::to_string(rank) + " at step " + std::to_string(step);
    return error(where, " is incomplete: it has no ", kManifestName,
                 ", which rank 0 writes once every rank's part of a step is "
                 "saved (parts found: ",
                 found.empty() ? "none" : found, ")");
  }
  Expected<InputFile> file = openRegularFile(manifestPath);
  if (!file)
    return file.takeStatus();
  std::vector<uint8_t> bytes;
  if (file->size > (1u << 20))
    return error("'", manifestPath, "' is not a checkpoint manifest (",
                 file->size, " bytes)");
  GALVATRON_RETURN_IF_ERROR(readFileRange(manifestPath, 0, file->size, bytes));
  Expected<JsonValue> manifest = parseJson(std::string_view(
      reinterpret_cast<const char *>(bytes.data()), bytes.size()));
  if (!manifest)
    return manifest.takeStatus().withContext("'" + manifestPath + "'");
  auto integer = [&](const char *key) -> const JsonValue * {
    const JsonValue *value = manifest->get(key);
    return value && value->kind == JsonValue::Kind::integer ? value : nullptr;
  };
  const JsonValue *format = manifest->get("format");
  const JsonValue *version = integer("version");
  const JsonValue *step = integer("step");
  const JsonValue *size = integer("world_size");
  const JsonValue *parts = manifest->get("parts");
  if (!format || format->string != kManifestFormat || !version ||
      version->integer != kManifestVersion || !step || step->integer < 0 ||
      !size || !parts || parts->kind != JsonValue::Kind::array)
    return error("'", manifestPath, "' is not a checkpoint manifest of ",
                 "version ", kManifestVersion);
  if (size->integer != int64_t(worldSize))
    return error(where, " holds the parts of a job of ", size->integer,
                 " ranks; this program runs on ", worldSize);
  if (worldSize == 1)
    return error(where, " has a manifest but a one-rank job writes none");
  for (uint32_t rank = 0; rank < worldSize; ++rank)
    if (parts->items.size() != worldSize ||
        parts->items[rank].string != partName(rank, step->integer))
      return error("'", manifestPath, "' does not list the parts of step ",
                   step->integer, " of ", worldSize, " ranks");
  return step->integer;
}

void removeOlderCheckpointParts(const std::string &directory, uint32_t rank,
                                int64_t step) {
  for (auto [partRank, partStep] : listParts(directory))
    if (partRank == rank && partStep != step)
      std::remove(inDirectory(directory, partName(rank, partStep)).c_str());
}

Status saveCheckpoint(Executor &executor, const std::string &path,
                      const TrainingProgress &progress) {
  TensorType scalar{ElementType::i64, {}};
  return saveParameters(executor, path, /*withState=*/true,
                        {NamedTensor{kStepName, scalar, &progress.step},
                         NamedTensor{kPositionName, scalar,
                                     &progress.dataPosition},
                         NamedTensor{kSeedName, scalar, &progress.seed}});
}

Expected<TrainingProgress> loadCheckpoint(Executor &executor,
                                          const std::string &path) {
  Expected<SafeTensorsReader> reader = SafeTensorsReader::open(path);
  if (!reader)
    return reader.takeStatus();
  std::vector<uint8_t> bytes;
  auto read = [&](const std::string &name,
                  const TensorType &type) -> Status {
    const SafeTensorsReader::Entry *entry = reader->find(name);
    if (!entry)
      return error("'", name, "' is missing from checkpoint '", path, "'");
    if (entry->type != type)
      return error("'", name, "' in checkpoint '", path, "' is ",
                   entry->type.str(), ", expected ", type.str());
    return reader->read(*entry, bytes);
  };
  const RankProgram &rank = executor.rankProgram();
  std::vector<uint8_t> buffer;
  for (const Parameter &parameter : rank.parameters) {
    // A padded slice is saved without its padding.
    const TensorType &type = rank.buffers[parameter.buffer].type;
    GALVATRON_RETURN_IF_ERROR(read(
        parameter.name,
        TensorType{type.elementType, parameter.validShape(type.shape)}));
    buffer.resize(type.byteSize());
    unpackValidPart(parameter, type, bytes.data(), buffer.data());
    GALVATRON_RETURN_IF_ERROR(
        executor.writeBuffer(parameter.buffer, buffer.data(), buffer.size()));
  }
  TrainingProgress progress;
  TensorType scalar{ElementType::i64, {}};
  for (auto [name, field] :
       {std::make_pair(kStepName, &progress.step),
        std::make_pair(kPositionName, &progress.dataPosition),
        std::make_pair(kSeedName, &progress.seed)}) {
    GALVATRON_RETURN_IF_ERROR(read(name, scalar));
    std::memcpy(field, bytes.data(), sizeof(int64_t));
  }
  if (progress.step < 0 || progress.dataPosition < 0)
    return error("checkpoint '", path, "' records a negative step or position");
  return progress;
}

//===----------------------------------------------------------------------===//
// Peak FLOPs
//===----------------------------------------------------------------------===//

double measureGemmFlops() {
  constexpr int64_t n = 1024;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  double best = 0.0;
  for (int repeat = 0; repeat < 3; ++repeat) {
    auto start = std::chrono::steady_clock::now();
    if (!cpu::gemm(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f,
                   c.data())
             .isOk())
      return 0.0;
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    best = std::max(best, 2.0 * double(n * n * n) / seconds);
  }
  return best;
}

} // namespace galvatron::runtime
