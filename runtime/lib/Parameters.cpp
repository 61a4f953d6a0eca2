//===- Parameters.cpp - Where parameter values come from ------------------===//

#include "galvatron/Runtime/Parameters.h"

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

namespace {

uint64_t hashName(const std::string &name) {
  uint64_t hash = 0xCBF29CE484222325ull; // FNV-1a
  for (unsigned char c : name)
    hash = (hash ^ c) * 0x100000001B3ull;
  return hash;
}

/// Converts `count` values between element types.
void convertElements(const uint8_t *in, ElementType from, uint8_t *out,
                     ElementType to, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    cpu::storeElement(out, to, i, cpu::loadElement(in, from, i));
}

/// The shape of the tensor a parameter's values come from.
std::vector<int64_t> sourceShape(const Parameter &parameter,
                                 const TensorType &type) {
  return parameter.isSlice() ? parameter.fullShape : type.shape;
}

/// Turns the full source tensor (of `sourceType`) into the parameter's
/// buffer bytes: converts the element type and cuts out the slice.
Status fitSource(const Parameter &parameter, const TensorType &type,
                 const TensorType &sourceType, std::vector<uint8_t> &bytes) {
  if (sourceType.shape != sourceShape(parameter, type))
    return error("has shape ", shapeString(sourceType.shape), ", expected ",
                 shapeString(sourceShape(parameter, type)));
  if (!isFloat(sourceType.elementType))
    return error("holds ", elementTypeName(sourceType.elementType),
                 " values, expected floats");
  if (sourceType.elementType != type.elementType) {
    std::vector<uint8_t> converted(sourceType.numElements() *
                                   elementSize(type.elementType));
    convertElements(bytes.data(), sourceType.elementType, converted.data(),
                    type.elementType, sourceType.numElements());
    bytes.swap(converted);
  }
  if (!parameter.isSlice())
    return Status::ok();
  std::vector<int64_t> strides = cpu::stridesOf(parameter.fullShape);
  int64_t base = 0;
  for (size_t d = 0; d < strides.size(); ++d)
    base += parameter.sliceStart[d] * strides[d];
  TensorType valid{type.elementType, parameter.validShape(type.shape)};
  std::vector<uint8_t> part(valid.byteSize());
  if (valid.numElements() > 0)
    cpu::stridedCopy(bytes.data(), base, strides, part.data(), valid.shape,
                     elementSize(type.elementType));
  std::vector<uint8_t> slice(type.byteSize());
  unpackValidPart(parameter, type, part.data(), slice.data());
  bytes.swap(slice);
  return Status::ok();
}

/// Calls `row(inner, outer)` for each innermost row of the box `valid` at
/// the origin of a tensor of `shape`: its element offset in a packed box
/// and in the tensor.
template <typename Row>
void forEachValidRow(const std::vector<int64_t> &shape,
                     const std::vector<int64_t> &valid, Row row) {
  int64_t count = 1;
  for (int64_t size : valid)
    count *= size;
  if (count == 0)
    return;
  if (valid.empty())
    return row(0, 0, 1);
  int64_t length = valid.back();
  std::vector<int64_t> strides = cpu::stridesOf(shape);
  for (int64_t packed = 0; packed < count; packed += length) {
    int64_t offset = 0, rest = packed / length;
    for (size_t d = valid.size() - 1; d-- > 0;) {
      offset += (rest % valid[d]) * strides[d];
      rest /= valid[d];
    }
    row(packed, offset, length);
  }
}

Status readExternal(const Parameter &parameter, const TensorType &type,
                    const std::string &directory, std::vector<uint8_t> &bytes) {
  const ExternalData &external = *parameter.external;
  TensorType source{type.elementType, sourceShape(parameter, type)};
  Expected<std::string> path =
      resolveParameterData(external, source, directory);
  if (!path)
    return path.takeStatus();
  GALVATRON_RETURN_IF_ERROR(readFileRange(*path, uint64_t(external.offset),
                                          source.byteSize(), bytes));
  return fitSource(parameter, type, source, bytes);
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

} // namespace

std::vector<uint8_t> packValidPart(const Parameter &parameter,
                                   const TensorType &type,
                                   const uint8_t *bytes) {
  TensorType valid{type.elementType, parameter.validShape(type.shape)};
  unsigned size = elementSize(type.elementType);
  std::vector<uint8_t> part(valid.byteSize());
  forEachValidRow(type.shape, valid.shape,
                  [&](int64_t packed, int64_t offset, int64_t length) {
                    std::memcpy(part.data() + packed * size,
                                bytes + offset * size, length * size);
                  });
  return part;
}

void unpackValidPart(const Parameter &parameter, const TensorType &type,
                     const uint8_t *part, uint8_t *bytes) {
  std::vector<int64_t> valid = parameter.validShape(type.shape);
  unsigned size = elementSize(type.elementType);
  if (valid != type.shape)
    std::memset(bytes, 0, type.byteSize());
  forEachValidRow(type.shape, valid,
                  [&](int64_t packed, int64_t offset, int64_t length) {
                    std::memcpy(bytes + offset * size, part + packed * size,
                                length * size);
                  });
}

void initializeParameter(const Parameter &parameter, const TensorType &type,
                         uint64_t seed, uint8_t *out) {
  const Initializer &init = *parameter.init;
  uint64_t key = mixBits(seed ^ mixBits(hashName(parameter.name)));
  int64_t count = type.numElements();
  // Index in the full tensor of each element of the (possibly sliced) buffer.
  std::vector<int64_t> fullStrides =
      cpu::stridesOf(sourceShape(parameter, type));
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
  std::optional<SafeTensorsReader> checkpoint;
  if (!options.checkpoint.empty()) {
    Expected<SafeTensorsReader> reader =
        SafeTensorsReader::open(options.checkpoint);
    if (!reader)
      return reader.takeStatus();
    checkpoint = std::move(*reader);
  }
  std::string directory = options.modelDirectory.empty()
                              ? executor.program().modelDirectory
                              : options.modelDirectory;
  ParameterReport report;
  std::vector<uint8_t> bytes;
  for (const Parameter &parameter : rank.parameters) {
    const TensorType &type = rank.buffers[parameter.buffer].type;
    std::string what = "parameter '" + parameter.name + "'";
    if (parameter.state) {
      // Training state starts from its initializer; checkpoints of a run
      // restore it (loadCheckpoint).
      bytes.resize(type.byteSize());
      initializeParameter(parameter, type, options.seed, bytes.data());
      GALVATRON_RETURN_IF_ERROR(
          executor.writeBuffer(parameter.buffer, bytes.data(), bytes.size()));
      continue;
    } else if (checkpoint) {
      const SafeTensorsReader::Entry *entry = checkpoint->find(parameter.name);
      if (!entry)
        return error(what, " is missing from '", checkpoint->path(), "'");
      GALVATRON_RETURN_IF_ERROR(checkpoint->read(*entry, bytes));
      GALVATRON_RETURN_IF_ERROR(
          fitSource(parameter, type, entry->type, bytes)
              .withContext(what + " in '" + checkpoint->path() + "'"));
      ++report.fromCheckpoint;
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

Status saveParameters(Executor &executor, const std::string &path,
                      bool withState, std::vector<NamedTensor> extra) {
  const RankProgram &rank = executor.rankProgram();
  std::vector<std::vector<uint8_t>> values;
  std::vector<NamedTensor> tensors;
  std::vector<const Parameter *> saved;
  for (const Parameter &parameter : rank.parameters) {
    if (parameter.state && !withState)
      continue;
    saved.push_back(&parameter);
    if (parameter.isSlice() && !withState)
      return error("parameter '", parameter.name,
                   "' is a slice; rank ", rank.rank,
                   " cannot save the whole tensor");
    const TensorType &type = rank.buffers[parameter.buffer].type;
    values.emplace_back(type.byteSize());
    GALVATRON_RETURN_IF_ERROR(executor.readBuffer(
        parameter.buffer, values.back().data(), values.back().size()));
    if (withState)
      GALVATRON_RETURN_IF_ERROR(
          checkFinite(parameter.name, type, values.back()));
  }
  // A padded slice is saved without its padding.
  for (size_t i = 0; i < saved.size(); ++i) {
    const TensorType &type = rank.buffers[saved[i]->buffer].type;
    TensorType valid{type.elementType, saved[i]->validShape(type.shape)};
    if (valid.shape != type.shape)
      values[i] = packValidPart(*saved[i], type, values[i].data());
    tensors.push_back(NamedTensor{saved[i]->name, valid, values[i].data()});
  }
  tensors.insert(tensors.end(), extra.begin(), extra.end());
  return writeSafeTensors(path, tensors);
}

} // namespace galvatron::runtime
