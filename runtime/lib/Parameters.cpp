//===- Parameters.cpp - Where parameter values come from ------------------===//

#include "galvatron/Runtime/Parameters.h"

#include "galvatron/Runtime/Checkpoint.h"
#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/TensorFiles.h"

#include "CPU/CPUKernels.h"

#include <cmath>
#include <cstring>

namespace galvatron::runtime {

uint64_t mixBits(uint64_t x) {
  // SplitMix64's finalizer: a bijection with good avalanche.
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double counterUniform(uint64_t key, uint64_t counter) {
  uint64_t bits = mixBits(mixBits(counter) ^ key);
  return double((bits >> 11) + 1) * (1.0 / 9007199254740992.0);
}

uint64_t dropoutKey(uint64_t seed, int64_t step, uint64_t stream) {
  // Keys of other generators (initializers, data) never meet these.
  constexpr uint64_t kDropoutDomain = 0x64726F706F7574ull; // "dropout"
  return mixBits(mixBits(mixBits(seed ^ kDropoutDomain) ^ uint64_t(step)) ^
                 stream);
}

namespace {

uint64_t hashName(const std::string &name) {
  uint64_t hash = 0xCBF29CE484222325ull; // FNV-1a
  for (unsigned char c : name)
    hash = (hash ^ c) * 0x100000001B3ull;
  return hash;
}

/// Reads the external data of `parameter` (the bytes of the whole source
/// tensor in the buffer's element type): the rank's slice only.
Status readExternal(const Parameter &parameter, const TensorType &type,
                    const std::string &directory, std::vector<uint8_t> &bytes) {
  const ExternalData &external = *parameter.external;
  TensorType source{type.elementType, parameter.wholeShape(type.shape)};
  Expected<std::string> path =
      resolveParameterData(external, source, directory);
  if (!path)
    return path.takeStatus();
  Expected<InputFile> file = openRegularFile(*path);
  if (!file)
    return file.takeStatus();
  TensorBox box = parameterBox(parameter, type);
  GALVATRON_RETURN_IF_ERROR(readTensorBox(file->file.get(), *path,
                                          uint64_t(external.offset),
                                          type.elementType, box, bytes));
  if (box.shape != type.shape) {
    std::vector<uint8_t> padded(type.byteSize());
    unpackValidPart(parameter, type, bytes.data(), padded.data());
    bytes.swap(padded);
  }
  return Status::ok();
}

/// The part of a buffer of `type` inside the whole tensor, as a box of the
/// buffer.
TensorBox validBox(const Parameter &parameter, const TensorType &type) {
  return TensorBox{type.shape, std::vector<int64_t>(type.rank(), 0),
                   parameter.validShape(type.shape)};
}

} // namespace

std::vector<uint8_t> packValidPart(const Parameter &parameter,
                                   const TensorType &type,
                                   const uint8_t *bytes) {
  TensorBox box = validBox(parameter, type);
  uint64_t size = elementSize(type.elementType);
  std::vector<uint8_t> part(TensorType{type.elementType, box.shape}.byteSize());
  forEachContiguousRun(box, [&](int64_t inBuffer, int64_t inPart,
                                int64_t count) {
    std::memcpy(part.data() + inPart * size, bytes + inBuffer * size,
                count * size);
  });
  return part;
}

void unpackValidPart(const Parameter &parameter, const TensorType &type,
                     const uint8_t *part, uint8_t *bytes) {
  TensorBox box = validBox(parameter, type);
  uint64_t size = elementSize(type.elementType);
  if (box.shape != type.shape)
    std::memset(bytes, 0, type.byteSize());
  forEachContiguousRun(box, [&](int64_t inBuffer, int64_t inPart,
                                int64_t count) {
    std::memcpy(bytes + inBuffer * size, part + inPart * size, count * size);
  });
}

TensorBox parameterBox(const Parameter &parameter, const TensorType &type) {
  if (!parameter.isSlice())
    return TensorBox{type.shape, std::vector<int64_t>(type.rank(), 0),
                     type.shape};
  return TensorBox{parameter.fullShape, parameter.sliceStart,
                   parameter.validShape(type.shape)};
}

void initializeParameter(const Parameter &parameter, const TensorType &type,
                         uint64_t seed, uint8_t *out) {
  const Initializer &init = *parameter.init;
  uint64_t key = mixBits(seed ^ mixBits(hashName(parameter.name)));
  int64_t count = type.numElements();
  // Index in the full tensor of each element of the (possibly sliced) buffer.
  std::vector<int64_t> fullStrides =
      cpu::stridesOf(parameter.wholeShape(type.shape));
  // -1 for padding past the full tensor.
  auto fullIndex = [&](int64_t i) -> int64_t {
    if (!parameter.isSlice())
      return i;
    int64_t index = 0;
    for (size_t d = type.shape.size(); d-- > 0;) {
      int64_t position = parameter.sliceStart[d] + i % type.shape[d];
      if (position >= parameter.fullShape[d])
        return -1;
      index += position * fullStrides[d];
      i /= type.shape[d];
    }
    return index;
  };
  cpu::parallelFor(count, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t index = fullIndex(i);
      uint64_t counter = uint64_t(index);
      double value = 0.0;
      switch (index < 0 ? InitKind::zeros : init.kind) {
      case InitKind::zeros:
        break;
      case InitKind::ones:
        value = 1.0;
        break;
      case InitKind::constant:
        value = init.a;
        break;
      case InitKind::uniform:
        value = init.a + (init.b - init.a) * (1.0 - counterUniform(key, counter));
        break;
      case InitKind::normal: {
        // Box-Muller on two independent uniforms of this element.
        double radius = std::sqrt(-2.0 * std::log(counterUniform(key, 2 * counter)));
        double angle = 6.283185307179586 * counterUniform(key, 2 * counter + 1);
        value = init.a + init.b * radius * std::cos(angle);
        break;
      }
      }
      cpu::storeElement(out, type.elementType, i, value);
    }
  });
}

Expected<ParameterReport> loadParameters(Executor &executor,
                                         const ParameterOptions &options) {
  const RankProgram &rank = executor.rankProgram();
  std::optional<TensorStore> weights;
  if (!options.checkpoint.empty()) {
    Expected<TensorStore> store = TensorStore::open(options.checkpoint);
    if (!store)
      return store.takeStatus();
    weights = std::move(*store);
  }
  std::string directory = options.modelDirectory.empty()
                              ? executor.program().modelDirectory
                              : options.modelDirectory;
  ParameterReport report;
  std::vector<uint8_t> bytes;
  for (const Parameter &parameter : rank.parameters) {
    const TensorType &type = rank.buffers[parameter.buffer].type;
    std::string what = "parameter '" + parameter.name + "'";
    if (weights && !parameter.state) {
      // The rank's slice of the whole tensor.
      GALVATRON_RETURN_IF_ERROR(weights->load(executor, parameter));
      ++report.fromCheckpoint;
      report.values += type.numElements();
      continue;
    }
    if (parameter.state) {
      // Training state starts from its initializer; checkpoints of a run
      // restore it (loadCheckpoint).
      bytes.resize(type.byteSize());
      initializeParameter(parameter, type, options.seed, bytes.data());
      GALVATRON_RETURN_IF_ERROR(
          executor.writeBuffer(parameter.buffer, bytes.data(), bytes.size()));
      continue;
    } else if (parameter.external && !options.initializersOnly) {
      GALVATRON_RETURN_IF_ERROR(
          readExternal(parameter, type, directory, bytes).withContext(what));
      ++report.fromExternalData;
    } else if (parameter.init) {
      bytes.resize(type.byteSize());
      initializeParameter(parameter, type, options.seed, bytes.data());
      ++report.initialized;
    } else {
      return error(what, " has no initializer; give a checkpoint");
    }
    GALVATRON_RETURN_IF_ERROR(
        executor.writeBuffer(parameter.buffer, bytes.data(), bytes.size()));
    report.values += type.numElements();
  }
  return report;
}

} // namespace galvatron::runtime
