//===- ONNXModel.cpp - A parsed ONNX model and its tensor data ------------===//
//
// The only code that touches protobuf's parser. Protobuf's C++ runtime and the
// generated onnx-ml.pb.h compile and run without exceptions (parse errors are
// return values), so this file builds with the project's -fno-exceptions.
//
//===----------------------------------------------------------------------===//

#include "ONNXModel.h"

#include "galvatron/Runtime/InputFiles.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"
#include "llvm/Support/Endian.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <climits>
#include <cstring>

using namespace mlir::galvatron::onnx_import;
using llvm::Expected;
using llvm::SmallVector;
using llvm::StringRef;
using llvm::Twine;
using mlir::galvatron::makeError;

namespace protoio = google::protobuf::io;
namespace rt = ::galvatron::runtime;
using WireFormat = google::protobuf::internal::WireFormatLite;

/// Deepest nesting of messages accepted (graphs in attributes nest).
constexpr int kRecursionLimit = 64;

Expected<std::unique_ptr<ONNXModel>>
ONNXModel::parse(StringRef bytes, std::string fileName, std::string directory) {
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    return makeError("the file is larger than the 2 GiB a protobuf can hold; "
                     "store the weights as external data");
  auto result = std::unique_ptr<ONNXModel>(new ONNXModel());
  result->modelFileName = std::move(fileName);
  result->directory = std::move(directory);
  protoio::CodedInputStream input(
      reinterpret_cast<const uint8_t *>(bytes.data()),
      static_cast<int>(bytes.size()));
  input.SetRecursionLimit(kRecursionLimit);
  if (!result->model.ParseFromCodedStream(&input) ||
      !input.ConsumedEntireMessage())
    return makeError("not a valid ONNX model (the protobuf is malformed or "
                     "truncated)");
  if (!result->model.has_graph())
    return makeError("the model has no graph");

  bool hasDefault = false;
  for (const onnx::OperatorSetIdProto &entry : result->model.opset_import())
    if (entry.domain().empty() || entry.domain() == "ai.onnx") {
      hasDefault = true;
      result->opset = entry.version();
    }
  if (!hasDefault)
    return makeError("the model imports no opset of the default domain "
                     "(ai.onnx)");
  if (result->opset < kMinOpset || result->opset > kMaxOpset)
    return makeError("the model uses opset " + Twine(result->opset) +
                     " of the default domain; the importer supports opsets " +
                     Twine(kMinOpset) + " to " + Twine(kMaxOpset));
  result->scanEmbeddedRanges(bytes);
  return result;
}

int64_t ONNXModel::opsetOf(StringRef domain) const {
  for (const onnx::OperatorSetIdProto &entry : model.opset_import()) {
    StringRef name = entry.domain();
    bool isDefault = name.empty() || name == "ai.onnx";
    if (name == domain ||
        (isDefault && (domain.empty() || domain == "ai.onnx")))
      return entry.version();
  }
  return -1;
}

//===----------------------------------------------------------------------===//
// Locating embedded initializer bytes
//===----------------------------------------------------------------------===//

static uint32_t makeTag(int field, WireFormat::WireType type) {
  return static_cast<uint32_t>(field << 3 | type);
}

void ONNXModel::scanEmbeddedRanges(StringRef bytes) {
  // Field numbers from onnx.proto: ModelProto.graph = 7,
  // GraphProto.initializer = 5, TensorProto.float_data = 4, name = 8,
  // raw_data = 9.
  struct Candidate {
    std::string name;
    int64_t offset = -1, length = 0;
  };
  std::vector<Candidate> candidates;
  protoio::CodedInputStream input(
      reinterpret_cast<const uint8_t *>(bytes.data()),
      static_cast<int>(bytes.size()));
  input.SetRecursionLimit(kRecursionLimit);
  auto readLength = [&](uint32_t &length) {
    return input.ReadVarint32(&length) &&
           length <= static_cast<uint32_t>(input.BytesUntilLimit());
  };
  auto scanTensor = [&]() {
    uint32_t length;
    if (!readLength(length))
      return false;
    auto limit = input.PushLimit(static_cast<int>(length));
    Candidate candidate;
    while (uint32_t tag = input.ReadTag()) {
      if (tag == makeTag(8, WireFormat::WIRETYPE_LENGTH_DELIMITED)) {
        uint32_t size;
        if (!readLength(size) ||
            !input.ReadString(&candidate.name, static_cast<int>(size)))
          return false;
      } else if (tag == makeTag(9, WireFormat::WIRETYPE_LENGTH_DELIMITED) ||
                 tag == makeTag(4, WireFormat::WIRETYPE_LENGTH_DELIMITED)) {
        uint32_t size;
        if (!readLength(size))
          return false;
        candidate.offset = input.CurrentPosition();
        candidate.length = size;
        if (!input.Skip(static_cast<int>(size)))
          return false;
      } else if (!WireFormat::SkipField(&input, tag)) {
        return false;
      }
    }
    input.PopLimit(limit);
    candidates.push_back(std::move(candidate));
    return true;
  };
  auto scan = [&]() {
    while (uint32_t tag = input.ReadTag()) {
      if (tag != makeTag(7, WireFormat::WIRETYPE_LENGTH_DELIMITED)) {
        if (!WireFormat::SkipField(&input, tag))
          return;
        continue;
      }
      uint32_t length;
      if (!readLength(length))
        return;
      auto limit = input.PushLimit(static_cast<int>(length));
      while (uint32_t graphTag = input.ReadTag()) {
        if (graphTag == makeTag(5, WireFormat::WIRETYPE_LENGTH_DELIMITED)) {
          if (!scanTensor())
            return;
        } else if (!WireFormat::SkipField(&input, graphTag)) {
          return;
        }
      }
      input.PopLimit(limit);
    }
  };
  scan();

  // Keep a range only where the file bytes are exactly what protobuf parsed.
  llvm::StringMap<const onnx::TensorProto *> initializers;
  for (const onnx::TensorProto &tensor : graph().initializer())
    initializers[tensor.name()] = &tensor;
  for (const Candidate &candidate : candidates) {
    const onnx::TensorProto *tensor = initializers.lookup(candidate.name);
    if (!tensor || candidate.offset < 0)
      continue;
    StringRef expected;
    if (tensor->has_raw_data())
      expected = tensor->raw_data();
    else if (tensor->data_type() == onnx::TensorProto::FLOAT &&
             llvm::sys::IsLittleEndianHost)
      expected =
          StringRef(reinterpret_cast<const char *>(tensor->float_data().data()),
                    tensor->float_data_size() * sizeof(float));
    if (expected.empty() ||
        static_cast<int64_t>(expected.size()) != candidate.length ||
        bytes.substr(candidate.offset, candidate.length) != expected)
      continue;
    embeddedRanges[candidate.name] = {candidate.offset, candidate.length};
  }
}

//===----------------------------------------------------------------------===//
// External data
//===----------------------------------------------------------------------===//

static Expected<int64_t> parseExternalNumber(StringRef text, StringRef what,
                                             StringRef tensor) {
  int64_t value;
  if (text.getAsInteger(10, value) || value < 0)
    return makeError("external data " + what + " '" + text + "' of tensor '" +
                     tensor + "' is not a non-negative integer");
  return value;
}

Expected<ONNXModel::ExternalFile>
ONNXModel::resolveExternal(const onnx::TensorProto &tensor,
                           int64_t expectedBytes) const {
  StringRef name = tensor.name();
  ExternalFile file;
  file.offset = 0;
  file.length = -1;
  for (const onnx::StringStringEntryProto &entry : tensor.external_data()) {
    if (entry.key() == "location") {
      file.location = entry.value();
    } else if (entry.key() == "offset" || entry.key() == "length") {
      Expected<int64_t> value =
          parseExternalNumber(entry.value(), entry.key(), name);
      if (!value)
        return value.takeError();
      (entry.key() == "offset" ? file.offset : file.length) = *value;
    }
  }
  StringRef location = file.location;
  auto refuse = [&](const Twine &why) {
    return makeError("external data '" + location + "' of tensor '" + name +
                     "' " + why);
  };
  if (location.empty())
    return makeError("tensor '" + name +
                     "' is stored externally but names no location");
  if (file.length < 0)
    file.length = expectedBytes;
  if (file.length != expectedBytes)
    return refuse("has length " + Twine(file.length) + " but a " +
                  dtypeName(tensor.data_type()) +
                  " tensor of that shape needs " + Twine(expectedBytes) +
                  " bytes");
  // The rules every reader of external data shares (the runtime too).
  rt::Expected<std::string> path = rt::resolveExternalData(
      directory, file.location, file.offset, file.length);
  if (!path)
    return refuse(path.status().message());
  file.path = *path;
  return file;
}

//===----------------------------------------------------------------------===//
// Tensor contents
//===----------------------------------------------------------------------===//

Expected<SmallVector<int64_t>>
ONNXModel::tensorShape(const onnx::TensorProto &tensor) {
  SmallVector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
  Expected<int64_t> count = checkedNumel(shape);
  if (!count)
    return makeError("tensor '" + tensor.name() +
                     "': " + llvm::toString(count.takeError()));
  return shape;
}

/// Bytes the raw data of a tensor occupies, from its shape and type.
static Expected<int64_t> rawSize(const onnx::TensorProto &tensor) {
  Expected<SmallVector<int64_t>> shape = ONNXModel::tensorShape(tensor);
  if (!shape)
    return shape.takeError();
  int64_t size = dtypeSize(static_cast<DType>(tensor.data_type()));
  int64_t bytes;
  if (!size || __builtin_mul_overflow(*checkedNumel(*shape), size, &bytes))
    return makeError("tensor '" + tensor.name() + "' of element type " +
                     dtypeName(tensor.data_type()) + " cannot be read");
  return bytes;
}

/// Values stored in the typed field that holds a tensor of its element type.
static int64_t typedValueCount(const onnx::TensorProto &tensor) {
  switch (static_cast<DType>(tensor.data_type())) {
  case DType::Float:
    return tensor.float_data_size();
  case DType::Double:
    return tensor.double_data_size();
  case DType::Int64:
    return tensor.int64_data_size();
  case DType::UInt32:
  case DType::UInt64:
    return tensor.uint64_data_size();
  default:
    return tensor.int32_data_size();
  }
}

static bool isExternal(const onnx::TensorProto &tensor) {
  return tensor.data_location() == onnx::TensorProto::EXTERNAL;
}

Expected<RawBytes> ONNXModel::rawBytes(const onnx::TensorProto &tensor) const {
  Expected<int64_t> bytes = rawSize(tensor);
  if (!bytes)
    return bytes.takeError();
  RawBytes result;
  if (isExternal(tensor)) {
    Expected<ExternalFile> file = resolveExternal(tensor, *bytes);
    if (!file)
      return file.takeError();
    auto buffer = llvm::MemoryBuffer::getFileSlice(file->path, file->length,
                                                   file->offset);
    if (!buffer)
      return makeError("cannot read external data '" + file->location +
                       "' of tensor '" + tensor.name() +
                       "': " + buffer.getError().message());
    result.owner = std::move(*buffer);
    result.data = result.owner->getBuffer();
  } else if (tensor.has_raw_data()) {
    result.data = tensor.raw_data();
  } else if (tensor.data_type() == onnx::TensorProto::FLOAT &&
             llvm::sys::IsLittleEndianHost) {
    result.data =
        StringRef(reinterpret_cast<const char *>(tensor.float_data().data()),
                  tensor.float_data_size() * sizeof(float));
  } else {
    return makeError("tensor '" + tensor.name() +
                     "' is not stored as raw data");
  }
  if (static_cast<int64_t>(result.data.size()) != *bytes)
    return makeError("tensor '" + tensor.name() + "' holds " +
                     Twine(result.data.size()) +
                     " bytes but its shape and "
                     "type need " +
                     Twine(*bytes));
  return std::move(result);
}

/// Decodes one little-endian element of `type` from `data`.
static void decodeElement(DType type, const char *data, HostTensor &result,
                          int64_t index) {
  namespace endian = llvm::support::endian;
  auto halfToDouble = [](uint16_t bits, const llvm::fltSemantics &semantics) {
    return llvm::APFloat(semantics, llvm::APInt(16, bits)).convertToDouble();
  };
  switch (type) {
  case DType::Float: {
    uint32_t bits = endian::read32le(data);
    float value;
    std::memcpy(&value, &bits, sizeof value);
    result.floats[index] = value;
    return;
  }
  case DType::Double: {
    uint64_t bits = endian::read64le(data);
    double value;
    std::memcpy(&value, &bits, sizeof value);
    result.floats[index] = value;
    return;
  }
  case DType::Float16:
    result.floats[index] =
        halfToDouble(endian::read16le(data), llvm::APFloat::IEEEhalf());
    return;
  case DType::BFloat16:
    result.floats[index] =
        halfToDouble(endian::read16le(data), llvm::APFloat::BFloat());
    return;
  case DType::Bool:
    result.ints[index] = data[0] != 0;
    return;
  case DType::Int8:
    result.ints[index] = static_cast<int8_t>(data[0]);
    return;
  case DType::UInt8:
    result.ints[index] = static_cast<uint8_t>(data[0]);
    return;
  case DType::Int16:
    result.ints[index] = static_cast<int16_t>(endian::read16le(data));
    return;
  case DType::UInt16:
    result.ints[index] = endian::read16le(data);
    return;
  case DType::Int32:
    result.ints[index] = static_cast<int32_t>(endian::read32le(data));
    return;
  case DType::UInt32:
    result.ints[index] = endian::read32le(data);
    return;
  case DType::Int64:
  case DType::UInt64:
    result.ints[index] = static_cast<int64_t>(endian::read64le(data));
    return;
  default:
    return;
  }
}

HostResult ONNXModel::decode(const onnx::TensorProto &tensor) const {
  StringRef name = tensor.name();
  if (!isHostType(tensor.data_type()))
    return makeError("tensor '" + name + "' has element type " +
                     dtypeName(tensor.data_type()) +
                     ", which the importer cannot read");
  if (tensor.has_segment())
    return makeError("tensor '" + name +
                     "' is segmented, which the "
                     "importer does not support");
  auto type = static_cast<DType>(tensor.data_type());
  Expected<SmallVector<int64_t>> shape = tensorShape(tensor);
  if (!shape)
    return shape.takeError();
  int64_t count = *checkedNumel(*shape);
  if (count > kMaxHostElements)
    return makeError("tensor '" + name + "' has " + Twine(count) +
                     " elements, more than the " + Twine(kMaxHostElements) +
                     " the importer evaluates");
  HostTensor result = HostTensor::zeros(type, *shape);
  int64_t size = dtypeSize(type);

  if (isExternal(tensor) || tensor.has_raw_data()) {
    Expected<RawBytes> bytes = rawBytes(tensor);
    if (!bytes)
      return bytes.takeError();
    for (int64_t i = 0; i < count; ++i)
      decodeElement(type, bytes->data.data() + i * size, result, i);
    return result;
  }

  if (typedValueCount(tensor) != count)
    return makeError("tensor '" + name + "' stores " +
                     Twine(typedValueCount(tensor)) +
                     " values but its shape has " + Twine(count));
  switch (type) {
  case DType::Float:
    for (int64_t i = 0; i < count; ++i)
      result.floats[i] = tensor.float_data(i);
    break;
  case DType::Double:
    for (int64_t i = 0; i < count; ++i)
      result.floats[i] = tensor.double_data(i);
    break;
  case DType::Int64:
    for (int64_t i = 0; i < count; ++i)
      result.ints[i] = tensor.int64_data(i);
    break;
  case DType::UInt32:
  case DType::UInt64:
    for (int64_t i = 0; i < count; ++i)
      result.ints[i] =
          wrapToType(type, static_cast<int64_t>(tensor.uint64_data(i)));
    break;
  default: {
    // Narrow integers, bool, float16 and bfloat16 live in int32_data.
    for (int64_t i = 0; i < count; ++i) {
      int32_t value = tensor.int32_data(i);
      if (isFloatType(type)) {
        char bits[2];
        llvm::support::endian::write16le(bits, static_cast<uint16_t>(value));
        decodeElement(type, bits, result, i);
      } else {
        result.ints[i] = wrapToType(type, value);
      }
    }
    break;
  }
  }
  return result;
}

Expected<TensorLocation>
ONNXModel::locate(const onnx::TensorProto &tensor) const {
  Expected<int64_t> bytes = rawSize(tensor);
  if (!bytes)
    return bytes.takeError();
  TensorLocation result;
  if (isExternal(tensor)) {
    Expected<ExternalFile> file = resolveExternal(tensor, *bytes);
    if (!file)
      return file.takeError();
    result.location = file->location;
    result.offset = file->offset;
    result.length = file->length;
    return result;
  }
  result.location = modelFileName;
  result.key = tensor.name();
  auto range = embeddedRanges.find(tensor.name());
  if (range != embeddedRanges.end() && range->second.second == *bytes) {
    result.offset = range->second.first;
    result.length = range->second.second;
    return result;
  }
  // Not contiguous in the file: only the key finds the values.
  if (tensor.has_raw_data()) {
    if (static_cast<int64_t>(tensor.raw_data().size()) != *bytes)
      return makeError("tensor '" + tensor.name() + "' holds " +
                       Twine(tensor.raw_data().size()) +
                       " bytes but its shape and type need " + Twine(*bytes));
    return result;
  }
  int64_t count = *bytes / dtypeSize(static_cast<DType>(tensor.data_type()));
  if (typedValueCount(tensor) != count)
    return makeError("tensor '" + tensor.name() + "' stores " +
                     Twine(typedValueCount(tensor)) +
                     " values but its shape has " + Twine(count));
  return result;
}
