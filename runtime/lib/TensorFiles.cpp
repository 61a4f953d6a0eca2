//===- TensorFiles.cpp - .npy and safetensors files -----------------------===//

#include "galvatron/Runtime/TensorFiles.h"

#include "Json.h"

#include "galvatron/Runtime/InputFiles.h"

#include <array>
#include <cerrno>
#include <cstring>

namespace galvatron::runtime {
namespace {

Status readAt(FILE *file, const std::string &path, uint64_t offset,
              void *data, uint64_t size) {
  if (fseeko(file, off_t(offset), SEEK_SET) != 0 ||
      std::fread(data, 1, size, file) != size)
    return error("'", path, "' is truncated: cannot read ", size,
                 " bytes at offset ", offset);
  return Status::ok();
}


//===----------------------------------------------------------------------===//
// .npy
//===----------------------------------------------------------------------===//

constexpr char kNpyMagic[] = "\x93NUMPY";

/// The names a file format gives element types, indexed by ElementType.
using TypeNames = std::array<const char *, kNumElementTypes>;
/// NumPy has no bfloat16: .npy files hold bf16 tensors as their raw bits.
constexpr TypeNames kNpyTypes = {"<f4", "<f2", "<u2", "<i8", "<i4", "|b1"};
constexpr TypeNames kSafeTensorsTypes = {"F32", "F16", "BF16",
                                         "I64", "I32", "BOOL"};

std::optional<ElementType> typeNamed(const TypeNames &names,
                                     std::string_view name) {
  for (unsigned i = 0; i < kNumElementTypes; ++i)
    if (name == names[i])
      return ElementType(i);
  return std::nullopt;
}

/// The value of `key` in a .npy header (a Python dict literal), as text.
std::optional<std::string> npyField(const std::string &header,
                                    const std::string &key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos)
    return std::nullopt;
  at = header.find(':', at);
  if (at == std::string::npos)
    return std::nullopt;
  ++at;
  while (at < header.size() && header[at] == ' ')
    ++at;
  size_t end;
  if (at < header.size() && header[at] == '(')
    end = header.find(')', at) + 1;
  else if (at < header.size() && header[at] == '\'')
    end = header.find('\'', at + 1) + 1;
  else
    end = header.find_first_of(",}", at);
  if (end == std::string::npos || end == 0 || end > header.size())
    return std::nullopt;
  return header.substr(at, end - at);
}

Status parseNpyHeader(const std::string &header, TensorType &type) {
  auto descr = npyField(header, "descr");
  auto fortran = npyField(header, "fortran_order");
  auto shape = npyField(header, "shape");
  if (!descr || !fortran || !shape || descr->size() < 2 || shape->size() < 2)
    return error("malformed .npy header");
  auto elementType = typeNamed(kNpyTypes, descr->substr(1, descr->size() - 2));
  if (!elementType)
    return error("unsupported .npy dtype ", *descr,
                 " (expected <f4, <f2, <u2 (bf16 bits), <i8, <i4 or |b1)");
  if (*fortran != "False")
    return error("Fortran-ordered .npy arrays are not supported");
  type.elementType = *elementType;
  type.shape.clear();
  std::string dims = shape->substr(1, shape->size() - 2);
  size_t at = 0;
  int64_t count = 1;
  while (at < dims.size()) {
    while (at < dims.size() && (dims[at] == ' ' || dims[at] == ','))
      ++at;
    if (at >= dims.size())
      break;
    int64_t value = 0;
    size_t digits = 0;
    while (at < dims.size() && dims[at] >= '0' && dims[at] <= '9') {
      if (value > kMaxElements)
        return error("malformed .npy shape ", *shape);
      value = value * 10 + (dims[at++] - '0');
      ++digits;
    }
    if (digits == 0 || (value > 0 && count > kMaxElements / value))
      return error("malformed .npy shape ", *shape);
    count *= value;
    type.shape.push_back(value);
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// safetensors
//===----------------------------------------------------------------------===//

Status parseEntry(const std::string &name, const JsonValue &value,
                  uint64_t dataStart, uint64_t fileSize,
                  SafeTensorsReader::Entry &entry) {
  const JsonValue *dtype = value.get("dtype");
  const JsonValue *shape = value.get("shape");
  const JsonValue *offsets = value.get("data_offsets");
  if (!dtype || dtype->kind != JsonValue::Kind::string || !shape ||
      shape->kind != JsonValue::Kind::array || !offsets ||
      offsets->kind != JsonValue::Kind::array || offsets->items.size() != 2)
    return error("needs a dtype, a shape and two data_offsets");
  auto type = typeNamed(kSafeTensorsTypes, dtype->string);
  if (!type)
    return error("unsupported dtype ", dtype->string);
  entry.name = name;
  entry.type.elementType = *type;
  int64_t count = 1;
  for (const JsonValue &dim : shape->items) {
    if (dim.kind != JsonValue::Kind::integer || dim.integer < 0 ||
        (dim.integer > 0 && count > kMaxElements / dim.integer))
      return error("malformed shape");
    count *= dim.integer;
    entry.type.shape.push_back(dim.integer);
  }
  const JsonValue &begin = offsets->items[0], &end = offsets->items[1];
  if (begin.kind != JsonValue::Kind::integer ||
      end.kind != JsonValue::Kind::integer || begin.integer < 0 ||
      end.integer < begin.integer ||
      uint64_t(end.integer) > fileSize - dataStart)
    return error("data_offsets lie outside the file");
  if (uint64_t(end.integer - begin.integer) != entry.type.byteSize())
    return error("holds ", end.integer - begin.integer, " bytes, but ",
                 entry.type.str(), " needs ", entry.type.byteSize());
  entry.begin = dataStart + uint64_t(begin.integer);
  entry.end = dataStart + uint64_t(end.integer);
  return Status::ok();
}

} // namespace

Expected<HostTensor> readNpy(const std::string &path) {
  Expected<InputFile> input = openRegularFile(path);
  if (!input)
    return input.takeStatus();
  FILE *file = input->file.get();
  uint64_t size = input->size;
  uint8_t prefix[12];
  if (size < 10 || !readAt(file, path, 0, prefix, 10).isOk() ||
      std::memcmp(prefix, kNpyMagic, 6) != 0)
    return error("'", path, "' is not a .npy file");
  uint8_t major = prefix[6];
  uint64_t headerLength, headerStart;
  if (major == 1) {
    headerLength = prefix[8] | (uint64_t(prefix[9]) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    GALVATRON_RETURN_IF_ERROR(readAt(file, path, 0, prefix, 12));
    headerLength = prefix[8] | (uint64_t(prefix[9]) << 8) |
                   (uint64_t(prefix[10]) << 16) | (uint64_t(prefix[11]) << 24);
    headerStart = 12;
  } else {
    return error("'", path, "': unsupported .npy version ", int(major));
  }
  if (headerLength > size - headerStart)
    return error("'", path, "' is truncated");
  std::string header(headerLength, '\0');
  GALVATRON_RETURN_IF_ERROR(
      readAt(file, path, headerStart, header.data(), headerLength));
  HostTensor tensor;
  GALVATRON_RETURN_IF_ERROR(
      parseNpyHeader(header, tensor.type).withContext("'" + path + "'"));
  uint64_t dataStart = headerStart + headerLength;
  uint64_t bytes = tensor.type.byteSize();
  if (size - dataStart != bytes)
    return error("'", path, "' holds ", size - dataStart,
                 " data bytes, but ", tensor.type.str(), " needs ", bytes);
  tensor.data.resize(bytes);
  GALVATRON_RETURN_IF_ERROR(
      readAt(file, path, dataStart, tensor.data.data(), bytes));
  return tensor;
}

Status writeNpy(const std::string &path, const TensorType &type,
                const void *data) {
  const char *descr = kNpyTypes[unsigned(type.elementType)];
  std::string shape = "(";
  for (int64_t dim : type.shape)
    shape += std::to_string(dim) + ", ";
  if (type.shape.size() > 1)
    shape.erase(shape.size() - 2);
  else if (type.shape.size() == 1)
    shape.pop_back();
  shape += ")";
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that the data starts at a multiple of 64 bytes.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string prefix(kNpyMagic, 6);
  prefix += '\x01';
  prefix += '\x00';
  prefix += char(header.size() & 0xFF);
  prefix += char(header.size() >> 8);
  return writeFileAtomically(path, {{prefix.data(), prefix.size()},
                                {header.data(), header.size()},
                                {data, type.byteSize()}});
}

std::string safeTensorsHeader(const std::vector<std::string> &names,
                              const std::vector<TensorType> &types,
                              const SafeTensorsMetadata &metadata) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"";
  for (const auto &[key, value] : metadata)
    header += "," + quoteJson(key) + ":" + quoteJson(value);
  header += "}";
  uint64_t offset = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const TensorType &type = types[i];
    header += "," + quoteJson(names[i]) + ":{\"dtype\":\"" +
              kSafeTensorsTypes[unsigned(type.elementType)] + "\",\"shape\":[";
    for (size_t d = 0; d < type.shape.size(); ++d)
      header += (d ? "," : "") + std::to_string(type.shape[d]);
    uint64_t end = offset + type.byteSize();
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  // The data section starts 8-byte aligned, as other writers do.
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i)
    prefix[i] = char(uint64_t(header.size()) >> (8 * i));
  return prefix + header;
}

Status writeSafeTensors(const std::string &path,
                        const std::vector<NamedTensor> &tensors,
                        const SafeTensorsMetadata &metadata) {
  std::vector<std::string> names;
  std::vector<TensorType> types;
  for (const NamedTensor &tensor : tensors) {
    names.push_back(tensor.name);
    types.push_back(tensor.type);
  }
  std::string header = safeTensorsHeader(names, types, metadata);
  std::vector<FilePart> parts = {{header.data(), header.size()}};
  for (const NamedTensor &tensor : tensors)
    parts.emplace_back(tensor.data, tensor.type.byteSize());
  return writeFileAtomically(path, parts);
}

void forEachContiguousRun(
    const TensorBox &box,
    const std::function<void(int64_t, int64_t, int64_t)> &run) {
  size_t rank = box.shape.size();
  for (int64_t size : box.shape)
    if (size == 0)
      return;
  // A run spans dimensions [inner, rank): whole ones after `inner`.
  size_t inner = rank;
  int64_t length = 1;
  while (inner > 0) {
    --inner;
    length *= box.shape[inner];
    if (box.shape[inner] != box.whole[inner])
      break;
  }
  std::vector<int64_t> strides(rank, 1);
  for (size_t d = rank; d-- > 1;)
    strides[d - 1] = strides[d] * box.whole[d];
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d)
    base += box.start[d] * strides[d];
  std::vector<int64_t> index(inner, 0);
  for (int64_t packed = 0;; packed += length) {
    int64_t offset = base;
    for (size_t d = 0; d < inner; ++d)
      offset += index[d] * strides[d];
    run(offset, packed, length);
    // The next run: an odometer over the outer dimensions of the box.
    size_t d = inner;
    while (d > 0 && ++index[d - 1] == box.shape[d - 1])
      index[--d] = 0;
    if (d == 0)
      return;
  }
}

Expected<SafeTensorsReader> SafeTensorsReader::open(const std::string &path) {
  Expected<InputFile> input = openRegularFile(path);
  if (!input)
    return input.takeStatus();
  FILE *file = input->file.get();
  uint64_t size = input->size;
  uint8_t prefix[8];
  if (size < 8)
    return error("'", path, "' is not a safetensors file (too short)");
  GALVATRON_RETURN_IF_ERROR(readAt(file, path, 0, prefix, 8));
  uint64_t headerLength = 0;
  for (int i = 0; i < 8; ++i)
    headerLength |= uint64_t(prefix[i]) << (8 * i);
  if (headerLength > size - 8 || headerLength > (uint64_t(1) << 30))
    return error("'", path, "' is not a safetensors file (header length ",
                 headerLength, " exceeds the file)");
  std::string header(headerLength, '\0');
  GALVATRON_RETURN_IF_ERROR(
      readAt(file, path, 8, header.data(), headerLength));
  Expected<JsonValue> json = parseJson(header);
  if (!json)
    return json.takeStatus().withContext("'" + path + "' header");
  if (json->kind != JsonValue::Kind::object)
    return error("'", path, "' header is not a JSON object");
  SafeTensorsReader reader;
  reader.filePath = path;
  reader.file = input->file;
  for (const auto &[name, value] : json->members) {
    if (name == "__metadata__") {
      for (const auto &[key, text] : value.members)
        if (text.kind == JsonValue::Kind::string)
          reader.meta.emplace_back(key, text.string);
      continue;
    }
    GALVATRON_RETURN_IF_ERROR(
        parseEntry(name, value, 8 + headerLength, size,
                   reader.list.emplace_back())
            .withContext("'" + path + "': tensor '" + name + "'"));
  }
  return reader;
}

const SafeTensorsReader::Entry *
SafeTensorsReader::find(const std::string &name) const {
  for (const Entry &entry : list)
    if (entry.name == name)
      return &entry;
  return nullptr;
}

std::string SafeTensorsReader::metadata(const std::string &key) const {
  for (const auto &[name, value] : meta)
    if (name == key)
      return value;
  return "";
}

Status SafeTensorsReader::read(const Entry &entry,
                               std::vector<uint8_t> &bytes) const {
  bytes.resize(entry.end - entry.begin);
  return readAt(file.get(), filePath, entry.begin, bytes.data(), bytes.size());
}

Status SafeTensorsReader::readBox(const Entry &entry, const TensorBox &box,
                                  std::vector<uint8_t> &bytes) const {
  return readTensorBox(file.get(), filePath, entry.begin,
                       entry.type.elementType, box, bytes);
}

Status readTensorBox(FILE *file, const std::string &path, uint64_t dataOffset,
                     ElementType type, const TensorBox &box,
                     std::vector<uint8_t> &bytes) {
  uint64_t size = elementSize(type);
  bytes.resize(TensorType{type, box.shape}.byteSize());
  Status status = Status::ok();
  forEachContiguousRun(box, [&](int64_t inTensor, int64_t inBox,
                                int64_t count) {
    if (status.isOk())
      status = readAt(file, path, dataOffset + uint64_t(inTensor) * size,
                      bytes.data() + inBox * size, uint64_t(count) * size);
  });
  return status;
}

Status readFileRange(const std::string &path, uint64_t offset, uint64_t size,
                     std::vector<uint8_t> &bytes) {
  Expected<InputFile> input = openRegularFile(path);
  if (!input)
    return input.takeStatus();
  uint64_t total = input->size;
  if (offset > total || size > total - offset)
    return error("'", path, "' holds ", total, " bytes; cannot read ", size,
                 " at offset ", offset);
  bytes.resize(size);
  return readAt(input->file.get(), path, offset, bytes.data(), size);
}

} // namespace galvatron::runtime
