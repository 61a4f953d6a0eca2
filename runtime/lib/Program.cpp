//===- Program.cpp - In-memory model of a compiled program ----------------===//

#include "galvatron/Runtime/Program.h"

#include <algorithm>
#include <sstream>

namespace galvatron::runtime {

unsigned elementSize(ElementType type) {
  switch (type) {
  case ElementType::f32:
  case ElementType::i32:
    return 4;
  case ElementType::f16:
  case ElementType::bf16:
    return 2;
  case ElementType::i64:
    return 8;
  case ElementType::i1:
    return 1;
  }
  return 0;
}

static constexpr std::string_view kElementTypeNames[] = {"f32", "f16", "bf16",
                                                         "i64", "i32", "i1"};

std::string_view elementTypeName(ElementType type) {
  return kElementTypeNames[unsigned(type)];
}

std::optional<ElementType> parseElementType(std::string_view name) {
  for (unsigned i = 0; i < kNumElementTypes; ++i)
    if (kElementTypeNames[i] == name)
      return ElementType(i);
  return std::nullopt;
}

std::vector<int64_t>
Parameter::validShape(const std::vector<int64_t> &shape,
                      const std::vector<int64_t> &start) const {
  if (!isSlice())
    return shape;
  std::vector<int64_t> valid(shape);
  for (size_t d = 0; d < valid.size() && d < fullShape.size(); ++d)
    valid[d] =
        std::max<int64_t>(0, std::min(shape[d], fullShape[d] - start[d]));
  return valid;
}

bool refinesShape(const std::vector<int64_t> &full,
                  const std::vector<int64_t> &source) {
  size_t next = 0;
  for (int64_t size : source) {
    int64_t product = 1;
    while (next < full.size() && full[next] != 0 &&
           size % (product * full[next]) == 0 && product != size)
      product *= full[next++];
    if (product != size)
      return false;
  }
  return next == full.size();
}

int64_t TensorType::numElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? "," : "") << shape[i];
  os << "]";
  return os.str();
}

std::string TensorType::str() const {
  return std::string(elementTypeName(elementType)) + shapeString(shape);
}

uint32_t Group::size() const {
  uint32_t members = 1;
  for (const GroupAxis &axis : axes)
    members *= axis.size;
  return members;
}

uint32_t Group::coordinate(uint32_t rank, size_t axis) const {
  return rank / axes[axis].stride % axes[axis].size;
}

uint32_t Group::position(uint32_t rank) const {
  uint32_t position = 0;
  for (size_t a = 0; a < axes.size(); ++a)
    position = position * axes[a].size + coordinate(rank, a);
  return position;
}

std::vector<uint32_t> Group::members(uint32_t rank) const {
  uint32_t base = rank;
  for (size_t a = 0; a < axes.size(); ++a)
    base -= coordinate(rank, a) * axes[a].stride;
  std::vector<uint32_t> ranks{base};
  // The last axis varies fastest: expand from the first.
  for (const GroupAxis &axis : axes) {
    std::vector<uint32_t> next;
    next.reserve(ranks.size() * axis.size);
    for (uint32_t member : ranks)
      for (uint32_t c = 0; c < axis.size; ++c)
        next.push_back(member + c * axis.stride);
    ranks = std::move(next);
  }
  return ranks;
}

Attribute Attribute::makeInteger(std::string name, int64_t value) {
  return Attribute{std::move(name), AttributeKind::integer, value, 0.0, {}, {}};
}

Attribute Attribute::makeReal(std::string name, double value) {
  return Attribute{std::move(name), AttributeKind::real, 0, value, {}, {}};
}

Attribute Attribute::makeIntegers(std::string name,
                                  std::vector<int64_t> values) {
  return Attribute{std::move(name), AttributeKind::integers, 0, 0.0,
                   std::move(values), {}};
}

std::string_view instructionKindName(InstructionKind kind) {
  static constexpr std::string_view names[] = {
      "kernel",     "all_reduce", "all_gather", "reduce_scatter",
      "all_to_all", "broadcast",  "send",       "recv",
      "wait"};
  return names[unsigned(kind)];
}

std::string_view reduceOpName(ReduceOp op) {
  static constexpr std::string_view names[] = {"sum", "max", "min", "avg"};
  return names[unsigned(op)];
}

const Attribute *AttributeList::find(std::string_view name) const {
  for (const Attribute &attribute : *attributes)
    if (attribute.name == name)
      return &attribute;
  return nullptr;
}

int64_t AttributeList::integer(std::string_view name, int64_t fallback) const {
  const Attribute *attribute = find(name);
  return attribute ? attribute->integer : fallback;
}

double AttributeList::real(std::string_view name, double fallback) const {
  const Attribute *attribute = find(name);
  return attribute ? attribute->real : fallback;
}

std::vector<int64_t> AttributeList::integers(std::string_view name) const {
  const Attribute *attribute = find(name);
  return attribute ? attribute->integers : std::vector<int64_t>();
}

} // namespace galvatron::runtime
