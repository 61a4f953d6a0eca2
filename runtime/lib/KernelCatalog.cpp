//===- KernelCatalog.cpp - Kernel signatures ------------------------------===//

#include "galvatron/Runtime/KernelCatalog.h"

#include <algorithm>
#include <array>

namespace galvatron::runtime {

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

std::optional<std::vector<int64_t>>
broadcastShapes(const std::vector<int64_t> &a, const std::vector<int64_t> &b) {
  size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (x != y && x != 1 && y != 1)
      return std::nullopt;
    result[i] = x == 1 ? y : x;
  }
  return result;
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

//===----------------------------------------------------------------------===//
// Rules shared by several kernels
//===----------------------------------------------------------------------===//

static Status expectType(const TensorType &type, ElementType expected,
                         std::string_view what) {
  if (type.elementType != expected)
    return error(what, " must be ", elementTypeName(expected), ", got ",
                 type.str());
  return Status::ok();
}

static Status expectIndices(const TensorType &type, std::string_view what) {
  if (!isInteger(type.elementType))
    return error(what, " must be i32 or i64, got ", type.str());
  return Status::ok();
}

static Status expectOutput(const KernelCall &call, const TensorType &expected,
                           unsigned index = 0) {
  if (call.outputs[index] != expected)
    return error("result #", index, " must be ", expected.str(), ", got ",
                 call.outputs[index].str());
  return Status::ok();
}

static Status expectFlag(const KernelCall &call, std::string_view name) {
  int64_t value = call.integer(name);
  if (value != 0 && value != 1)
    return error("attribute '", name, "' must be 0 or 1, got ", value);
  return Status::ok();
}

/// Float elementwise: one float input (16-bit floats compute in f32), the
/// result of the same type.
static Status verifyUnary(const KernelCall &call) {
  return expectOutput(call, call.inputs[0]);
}

static Status verifyGelu(const KernelCall &call) {
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "approximate"));
  return verifyUnary(call);
}

/// Two operands of one numeric type broadcast to a result of `result`
/// elements (the operands' type when unset).
static Status verifyBroadcastingPair(const KernelCall &call,
                                     std::optional<ElementType> result) {
  const TensorType &lhs = call.inputs[0], &rhs = call.inputs[1];
  if (lhs.elementType != rhs.elementType)
    return error("operands must both be of one float type, i32 or i64, got ",
                 lhs.str(), " and ", rhs.str());
  auto shape = broadcastShapes(lhs.shape, rhs.shape);
  if (!shape)
    return error("operand shapes ", shapeString(lhs.shape), " and ",
                 shapeString(rhs.shape), " do not broadcast");
  return expectOutput(call,
                      TensorType{result.value_or(lhs.elementType), *shape});
}

static Status verifyBinary(const KernelCall &call) {
  return verifyBroadcastingPair(call, std::nullopt);
}

/// `add` also takes an f32 lhs and a 16-bit rhs, giving f32: a 16-bit
/// gradient added to its f32 accumulator without an f32 copy of it.
static Status verifyAdd(const KernelCall &call) {
  const TensorType &lhs = call.inputs[0], &rhs = call.inputs[1];
  if (lhs.elementType != ElementType::f32 || !isFloat(rhs.elementType))
    return verifyBinary(call);
  TensorType widened = rhs;
  widened.elementType = ElementType::f32;
  return verifyBinary(KernelCall(call.spec, {lhs, widened}, call.outputs,
                                 call.all()));
}

static Status verifySelect(const KernelCall &call) {
  const TensorType &condition = call.inputs[0], &lhs = call.inputs[1],
                   &rhs = call.inputs[2];
  GALVATRON_RETURN_IF_ERROR(
      expectType(condition, ElementType::i1, "condition"));
  if (lhs.elementType != rhs.elementType)
    return error("operands have different element types: ", lhs.str(), " and ",
                 rhs.str());
  auto shape = broadcastShapes(condition.shape, lhs.shape);
  if (shape)
    shape = broadcastShapes(*shape, rhs.shape);
  if (!shape)
    return error("shapes ", shapeString(condition.shape), ", ",
                 shapeString(lhs.shape), " and ", shapeString(rhs.shape),
                 " do not broadcast");
  return expectOutput(call, TensorType{lhs.elementType, *shape});
}

static Status verifyCast(const KernelCall &call) {
  if (call.outputs[0].shape != call.inputs[0].shape)
    return error("result shape ", shapeString(call.outputs[0].shape),
                 " differs from the operand's ",
                 shapeString(call.inputs[0].shape));
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

static Status verifyMatmul(const KernelCall &call) {
  const TensorType &lhs = call.inputs[0], &rhs = call.inputs[1];
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "transpose_lhs"));
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "transpose_rhs"));
  GALVATRON_RETURN_IF_ERROR(expectType(rhs, lhs.elementType, "rhs"));
  if (lhs.rank() < 2 || rhs.rank() < 2)
    return error("operands must have rank >= 2, got ", lhs.str(), " and ",
                 rhs.str());
  bool tl = call.flag("transpose_lhs"), tr = call.flag("transpose_rhs");
  const auto &l = lhs.shape, &r = rhs.shape;
  size_t lr = l.size(), rr = r.size();
  int64_t m = tl ? l[lr - 1] : l[lr - 2], lk = tl ? l[lr - 2] : l[lr - 1];
  int64_t rk = tr ? r[rr - 1] : r[rr - 2], n = tr ? r[rr - 2] : r[rr - 1];
  if (lk != rk)
    return error("contracting dimensions differ: ", lk, " vs ", rk);
  auto batch = broadcastShapes(std::vector<int64_t>(l.begin(), l.end() - 2),
                               std::vector<int64_t>(r.begin(), r.end() - 2));
  if (!batch)
    return error("batch dimensions of ", lhs.str(), " and ", rhs.str(),
                 " do not broadcast");
  batch->push_back(m);
  batch->push_back(n);
  return expectOutput(call, TensorType{lhs.elementType, *batch});
}

static Status verifyLinear(const KernelCall &call) {
  const TensorType &input = call.inputs[0], &weight = call.inputs[1];
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "transpose_weight"));
  GALVATRON_RETURN_IF_ERROR(expectType(weight, input.elementType, "weight"));
  if (input.rank() < 1 || weight.rank() != 2)
    return error("input must have rank >= 1 and weight rank 2, got ",
                 input.str(), " and ", weight.str());
  bool transposed = call.flag("transpose_weight");
  int64_t in = weight.shape[transposed ? 1 : 0];
  int64_t out = weight.shape[transposed ? 0 : 1];
  if (input.shape.back() != in)
    return error("input features ", input.shape.back(),
                 " do not match the weight's ", in);
  TensorType bias{input.elementType, {out}};
  if (call.inputs.size() == 3 && call.inputs[2] != bias)
    return error("bias must be ", bias.str(), ", got ", call.inputs[2].str());
  TensorType result = input;
  result.shape.back() = out;
  return expectOutput(call, result);
}

/// A block of `local` ids of a split vocabulary lies inside it, or is one
/// of its equal blocks extending into the padding (ids past `vocab_size`).
static Status verifyVocabBlock(const KernelCall &call, int64_t local) {
  int64_t start = call.integer("vocab_start", 0);
  int64_t size = call.integer("vocab_size", local);
  bool inside = start + local <= size;
  bool paddedBlock = start % std::max<int64_t>(local, 1) == 0;
  if (start < 0 || size < 1 || (!inside && !paddedBlock))
    return error("vocabulary block [", start, ", ", start + local,
                 ") is not a block of [0, ", size, ")");
  return Status::ok();
}

static Status verifyEmbedding(const KernelCall &call) {
  const TensorType &table = call.inputs[0], &indices = call.inputs[1];
  GALVATRON_RETURN_IF_ERROR(expectIndices(indices, "indices"));
  if (table.rank() != 2)
    return error("table must have rank 2, got ", table.str());
  GALVATRON_RETURN_IF_ERROR(verifyVocabBlock(call, table.shape[0]));
  TensorType result{table.elementType, indices.shape};
  result.shape.push_back(table.shape[1]);
  return expectOutput(call, result);
}

//===----------------------------------------------------------------------===//
// Normalization
//===----------------------------------------------------------------------===//

static Status verifyNorm(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  if (input.rank() < 1)
    return error("input must have rank >= 1");
  if (!(call.real("epsilon") > 0.0))
    return error("epsilon must be positive, got ", call.real("epsilon"));
  TensorType vector{input.elementType, {input.shape.back()}};
  for (size_t i = 1; i < call.inputs.size(); ++i)
    if (call.inputs[i] != vector)
      return error(i == 1 ? "weight" : "bias", " must be ", vector.str(),
                   " to match the last dimension, got ", call.inputs[i].str());
  return expectOutput(call, input);
}

static Status verifySoftmax(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  if (!normalizeAxis(call.integer("axis"), input.rank()))
    return error("axis ", call.integer("axis"), " is out of range for ",
                 input.str());
  return expectOutput(call, input);
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

static Status verifyTranspose(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  std::vector<int64_t> perm = call.integers("perm");
  if (int64_t(perm.size()) != input.rank())
    return error("permutation ", shapeString(perm), " does not fit ",
                 input.str());
  std::vector<bool> seen(perm.size(), false);
  TensorType result{input.elementType, {}};
  for (int64_t dim : perm) {
    if (dim < 0 || dim >= input.rank() || seen[dim])
      return error("invalid permutation ", shapeString(perm));
    seen[dim] = true;
    result.shape.push_back(input.shape[dim]);
  }
  return expectOutput(call, result);
}

static Status verifySlice(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  std::vector<int64_t> starts = call.integers("starts"),
                       limits = call.integers("limits"),
                       strides = call.integers("strides");
  if (int64_t(starts.size()) != input.rank() ||
      int64_t(limits.size()) != input.rank() ||
      int64_t(strides.size()) != input.rank())
    return error("needs a start, limit and stride for each dimension of ",
                 input.str());
  TensorType result{input.elementType, {}};
  for (int64_t dim = 0; dim < input.rank(); ++dim) {
    if (strides[dim] < 1)
      return error("stride of dimension ", dim, " must be positive");
    if (starts[dim] < 0 || starts[dim] > limits[dim] ||
        limits[dim] > input.shape[dim])
      return error("[", starts[dim], ", ", limits[dim],
                   ") is out of bounds for dimension ", dim, " of ",
                   input.str());
    int64_t extent = limits[dim] - starts[dim];
    result.shape.push_back(extent ? (extent - 1) / strides[dim] + 1 : 0);
  }
  return expectOutput(call, result);
}

/// The tensors in `parts` must equal `whole` except along `axis`, where their
/// sizes add up to whole's.
static Status verifyPartition(const TensorType &whole,
                              const std::vector<TensorType> &parts,
                              int64_t axis, std::string_view partName) {
  auto normalized = normalizeAxis(axis, whole.rank());
  if (!normalized)
    return error("axis ", axis, " is out of range for ", whole.str());
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const TensorType &part = parts[i];
    if (part.elementType != whole.elementType || part.rank() != whole.rank())
      return error(partName, " #", i, " ", part.str(), " does not match ",
                   whole.str());
    for (int64_t dim = 0; dim < whole.rank(); ++dim)
      if (dim != *normalized && part.shape[dim] != whole.shape[dim])
        return error(partName, " #", i, " ", part.str(), " differs from ",
                     whole.str(), " in dimension ", dim);
    total += part.shape[*normalized];
  }
  if (total != whole.shape[*normalized])
    return error(partName, "s add up to ", total, " along axis ", axis,
                 ", expected ", whole.shape[*normalized]);
  return Status::ok();
}

static Status verifyConcat(const KernelCall &call) {
  return verifyPartition(call.outputs[0], call.inputs, call.integer("axis"),
                         "operand");
}

static Status verifySplit(const KernelCall &call) {
  return verifyPartition(call.inputs[0], call.outputs, call.integer("axis"),
                         "result");
}

static Status verifyBroadcast(const KernelCall &call) {
  const TensorType &input = call.inputs[0], &output = call.outputs[0];
  auto shape = broadcastShapes(input.shape, output.shape);
  if (input.elementType != output.elementType || input.rank() > output.rank() ||
      !shape || *shape != output.shape)
    return error("cannot broadcast ", input.str(), " to ", output.str());
  return Status::ok();
}

static Status verifyReduce(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "keep_dims"));
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "square"));
  std::vector<bool> reduced(input.rank(), false);
  for (int64_t axis : call.integers("axes")) {
    auto normalized = normalizeAxis(axis, input.rank());
    if (!normalized || reduced[*normalized])
      return error("reduction axis ", axis, " is out of range or repeated for ",
                   input.str());
    reduced[*normalized] = true;
  }
  TensorType result{input.elementType, {}};
  for (int64_t dim = 0; dim < input.rank(); ++dim) {
    if (!reduced[dim])
      result.shape.push_back(input.shape[dim]);
    else if (call.flag("keep_dims"))
      result.shape.push_back(1);
  }
  return expectOutput(call, result);
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

static Status verifyRotary(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "interleaved"));
  if (input.rank() < 2)
    return error("input must have rank >= 2, got ", input.str());
  auto seqAxis = normalizeAxis(call.integer("seq_axis"), input.rank());
  if (!seqAxis || *seqAxis == input.rank() - 1)
    return error("sequence axis ", call.integer("seq_axis"),
                 " must name a dimension of ", input.str(),
                 " other than the last");
  int64_t rotaryDim = call.integer("rotary_dim");
  if (rotaryDim < 2 || rotaryDim % 2 || rotaryDim > input.shape.back())
    return error("rotary dimension ", rotaryDim,
                 " must be even, at least 2 and at most ", input.shape.back());
  if (!(call.real("theta") > 0.0))
    return error("theta must be positive");
  return expectOutput(call, input);
}

/// A dropout probability (attribute `name`) in [0, 1) and, when the call
/// holds a part of the masked tensor, `whole_shape` and `offsets` placing
/// `part` in it.
static Status verifyDropoutPart(const KernelCall &call, std::string_view name,
                                const TensorType &part) {
  double probability = call.real(name);
  if (!(probability >= 0.0 && probability < 1.0))
    return error(name, " must lie in [0, 1), got ", probability);
  if (!call.find("whole_shape") && !call.find("offsets"))
    return Status::ok();
  std::vector<int64_t> whole = call.integers("whole_shape");
  std::vector<int64_t> offsets = call.integers("offsets");
  if (whole.size() != part.shape.size() || offsets.size() != whole.size())
    return error("whole_shape and offsets need one entry per dimension of ",
                 part.str());
  for (size_t d = 0; d < whole.size(); ++d)
    if (offsets[d] < 0 || offsets[d] > whole[d] - part.shape[d])
      return error("part ", part.str(), " at offsets ",
                   shapeString(offsets), " does not lie in the whole ",
                   shapeString(whole));
  return Status::ok();
}

static Status verifyAttention(const KernelCall &call) {
  const TensorType &q = call.inputs[0], &k = call.inputs[1],
                   &v = call.inputs[2];
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "causal"));
  for (const TensorType *type : {&q, &k, &v})
    if (type->elementType != q.elementType || type->rank() != 4)
      return error("query, key and value must be of one float type and shape "
                   "[batch, heads, seq, head_dim], got ",
                   q.str(), ", ", k.str(), " and ", v.str());
  int64_t batch = q.shape[0], heads = q.shape[1], seq = q.shape[2];
  int64_t kvHeads = k.shape[1], keyLen = k.shape[2];
  if (k.shape[0] != batch || v.shape[0] != batch || v.shape[1] != kvHeads ||
      v.shape[2] != keyLen || k.shape[3] != q.shape[3])
    return error("query ", q.str(), ", key ", k.str(), " and value ", v.str(),
                 " do not fit together");
  if (kvHeads == 0 || heads % kvHeads)
    return error(heads, " query heads are not a multiple of ", kvHeads,
                 " key/value heads");
  if (call.flag("causal") && keyLen != seq)
    return error("causal attention needs equal query and key lengths, got ",
                 seq, " and ", keyLen);
  if (call.inputs.size() == 4) {
    const TensorType &mask = call.inputs[3];
    std::vector<int64_t> scores = {batch, heads, seq, keyLen};
    auto shape = broadcastShapes(mask.shape, scores);
    if (mask.elementType != q.elementType || mask.rank() > 4 || !shape ||
        *shape != scores)
      return error("mask ", mask.str(), " does not broadcast to the scores ",
                   shapeString(scores));
  }
  GALVATRON_RETURN_IF_ERROR(verifyDropoutPart(
      call, "dropout", TensorType{q.elementType, {batch, heads, seq, keyLen}}));
  return expectOutput(
      call, TensorType{q.elementType, {batch, heads, seq, v.shape[3]}});
}

static Status verifyCrossEntropy(const KernelCall &call) {
  const TensorType &logits = call.inputs[0], &labels = call.inputs[1];
  GALVATRON_RETURN_IF_ERROR(expectIndices(labels, "labels"));
  if (logits.rank() < 1 ||
      std::vector<int64_t>(logits.shape.begin(), logits.shape.end() - 1) !=
          labels.shape)
    return error("labels ", labels.str(),
                 " must match the leading shape of the logits ", logits.str());
  int64_t reduction = call.integer("reduction");
  if (reduction != 0 && reduction != 1)
    return error("reduction must be 0 (mean) or 1 (sum), got ", reduction);
  return expectOutput(call, TensorType{ElementType::f32, {}});
}

static Status verifyRelativePositionBucket(const KernelCall &call) {
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "bidirectional"));
  const TensorType &output = call.outputs[0];
  if (output.rank() != 2)
    return error("result must be i64 [query_len, key_len], got ", output.str());
  int64_t minimum = call.flag("bidirectional") ? 4 : 2;
  if (call.integer("num_buckets") < minimum)
    return error("needs at least ", minimum, " buckets, got ",
                 call.integer("num_buckets"));
  if (call.integer("max_distance") < 1)
    return error("max_distance must be positive");
  return Status::ok();
}

static Status verifyExtractPatches(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  int64_t patch = call.integer("patch_size");
  if (input.rank() != 4)
    return error("images must be [batch, channels, height, width], got ",
                 input.str());
  if (patch < 1 || input.shape[2] % patch || input.shape[3] % patch)
    return error("patch size ", patch, " does not tile ", input.str());
  int64_t patches = (input.shape[2] / patch) * (input.shape[3] / patch);
  return expectOutput(call, TensorType{input.elementType,
                                       {input.shape[0], patches,
                                        input.shape[1] * patch * patch}});
}

static Status verifyTrilMask(const KernelCall &call) {
  const TensorType &output = call.outputs[0];
  if (output.rank() < 2)
    return error("result must be i1 [..., rows, cols], got ", output.str());
  return Status::ok();
}

static Status verifyDropout(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  GALVATRON_RETURN_IF_ERROR(expectOutput(call, input, 0));
  GALVATRON_RETURN_IF_ERROR(
      expectOutput(call, TensorType{ElementType::i1, input.shape}, 1));
  return verifyDropoutPart(call, "probability", input);
}

//===----------------------------------------------------------------------===//
// Data movement and comparisons used by training
//===----------------------------------------------------------------------===//

static Status verifyCopy(const KernelCall &call) {
  return expectOutput(call, call.inputs[0]);
}

static Status verifyFill(const KernelCall &) { return Status::ok(); }

static Status verifyCompare(const KernelCall &call) {
  int64_t predicate = call.integer("predicate");
  if (predicate < 0 || predicate > 5)
    return error("predicate must be 0 to 5 (eq, ne, lt, le, gt, ge), got ",
                 predicate);
  return verifyBroadcastingPair(call, ElementType::i1);
}

static Status verifyPad(const KernelCall &call) {
  const TensorType &input = call.inputs[0];
  std::vector<int64_t> low = call.integers("low"), high = call.integers("high"),
                       interior = call.integers("interior");
  if (int64_t(low.size()) != input.rank() ||
      int64_t(high.size()) != input.rank() ||
      int64_t(interior.size()) != input.rank())
    return error("needs low, high and interior padding for each dimension of ",
                 input.str());
  TensorType result{input.elementType, {}};
  for (int64_t dim = 0; dim < input.rank(); ++dim) {
    if (low[dim] < 0 || high[dim] < 0 || interior[dim] < 0)
      return error("padding of dimension ", dim, " must be non-negative");
    int64_t size = input.shape[dim];
    result.shape.push_back(low[dim] + size +
                           std::max<int64_t>(size - 1, 0) * interior[dim] +
                           high[dim]);
  }
  return expectOutput(call, result);
}

//===----------------------------------------------------------------------===//
// Fused gradients
//===----------------------------------------------------------------------===//

static Status verifyActivationGrad(const KernelCall &call) {
  int64_t activation = call.integer("activation");
  if (activation < 0 || activation > 3)
    return error("activation must be 0 to 3 (relu, silu, gelu, gelu_tanh), "
                 "got ",
                 activation);
  if (call.inputs[1] != call.inputs[0])
    return error("input ", call.inputs[1].str(), " must match the gradient ",
                 call.inputs[0].str());
  return expectOutput(call, call.inputs[0]);
}

static Status verifyNormGrad(const KernelCall &call) {
  const TensorType &grad = call.inputs[0], &input = call.inputs[1];
  if (input != grad || input.rank() < 1)
    return error("input ", input.str(), " must match the gradient ",
                 grad.str());
  if (!(call.real("epsilon") > 0.0))
    return error("epsilon must be positive, got ", call.real("epsilon"));
  TensorType vector{input.elementType, {input.shape.back()}};
  if (call.inputs[2] != vector)
    return error("weight must be ", vector.str(), ", got ",
                 call.inputs[2].str());
  GALVATRON_RETURN_IF_ERROR(expectOutput(call, input, 0));
  for (size_t i = 1; i < call.outputs.size(); ++i)
    GALVATRON_RETURN_IF_ERROR(expectOutput(call, vector, unsigned(i)));
  return Status::ok();
}

static Status verifyAttentionGrad(const KernelCall &call) {
  // The forward's operands follow the output gradient.
  KernelCall forward(
      call.spec,
      std::vector<TensorType>(call.inputs.begin() + 1, call.inputs.end()),
      {call.inputs[0]}, call.all());
  GALVATRON_RETURN_IF_ERROR(verifyAttention(forward));
  for (unsigned i = 0; i < 3; ++i)
    GALVATRON_RETURN_IF_ERROR(expectOutput(call, call.inputs[1 + i], i));
  if (call.outputs.size() == 4) {
    if (call.inputs.size() != 5)
      return error("a mask gradient needs a mask");
    GALVATRON_RETURN_IF_ERROR(expectOutput(call, call.inputs[4], 3));
  }
  return Status::ok();
}

static Status verifyEmbeddingGrad(const KernelCall &call) {
  const TensorType &grad = call.inputs[0], &indices = call.inputs[1];
  const TensorType &table = call.outputs[0];
  GALVATRON_RETURN_IF_ERROR(expectIndices(indices, "indices"));
  if (table.elementType != grad.elementType || table.rank() != 2)
    return error("result must be a table [vocab, dim] of the gradient's type, "
                 "got ",
                 table.str());
  GALVATRON_RETURN_IF_ERROR(verifyVocabBlock(call, table.shape[0]));
  TensorType expected{grad.elementType, indices.shape};
  expected.shape.push_back(table.shape[1]);
  if (grad != expected)
    return error("gradient must be ", expected.str(), ", got ", grad.str());
  return Status::ok();
}

/// stats, logits, max, labels of the vocabulary-parallel cross-entropy
/// starting at input `first` (stats absent when `first` is the logits).
static Status verifyVocabCrossEntropyOperands(const KernelCall &call,
                                              unsigned first, bool stats) {
  const TensorType &logits = call.inputs[first + stats];
  const TensorType &max = call.inputs[first + stats + 1];
  const TensorType &labels = call.inputs[first + stats + 2];
  GALVATRON_RETURN_IF_ERROR(expectIndices(labels, "labels"));
  std::vector<int64_t> rows(logits.shape.begin(), logits.shape.empty()
                                                      ? logits.shape.end()
                                                      : logits.shape.end() - 1);
  if (logits.rank() < 1 || labels.shape != rows)
    return error("labels ", labels.str(),
                 " must match the leading shape of the logits ", logits.str());
  TensorType rowMax{logits.elementType, rows};
  if (max != rowMax)
    return error("row maximum must be ", rowMax.str(), ", got ", max.str());
  std::vector<int64_t> pairs = rows;
  pairs.push_back(2);
  if (stats && call.inputs[first] != TensorType{ElementType::f32, pairs})
    return error("statistics must be f32", shapeString(pairs), ", got ",
                 call.inputs[first].str());
  return verifyVocabBlock(call, logits.shape.back());
}

static Status verifyVocabCrossEntropyStats(const KernelCall &call) {
  GALVATRON_RETURN_IF_ERROR(verifyVocabCrossEntropyOperands(call, 0, false));
  std::vector<int64_t> pairs = call.inputs[1].shape;
  pairs.push_back(2);
  return expectOutput(call, TensorType{ElementType::f32, pairs});
}

static Status verifyVocabCrossEntropy(const KernelCall &call) {
  GALVATRON_RETURN_IF_ERROR(verifyVocabCrossEntropyOperands(call, 0, true));
  int64_t reduction = call.integer("reduction");
  if (reduction != 0 && reduction != 1)
    return error("reduction must be 0 (mean) or 1 (sum), got ", reduction);
  return expectOutput(call, TensorType{ElementType::f32, {}});
}

static Status verifyVocabCrossEntropyGrad(const KernelCall &call) {
  if (call.inputs[0] != TensorType{ElementType::f32, {}})
    return error("loss gradient must be f32[], got ", call.inputs[0].str());
  GALVATRON_RETURN_IF_ERROR(verifyVocabCrossEntropyOperands(call, 1, true));
  int64_t reduction = call.integer("reduction");
  if (reduction != 0 && reduction != 1)
    return error("reduction must be 0 (mean) or 1 (sum), got ", reduction);
  return expectOutput(call, call.inputs[2]);
}

static Status verifyCrossEntropyGrad(const KernelCall &call) {
  if (call.inputs[0] != TensorType{ElementType::f32, {}})
    return error("loss gradient must be f32[], got ", call.inputs[0].str());
  KernelCall forward(
      call.spec,
      std::vector<TensorType>(call.inputs.begin() + 1, call.inputs.end()),
      {TensorType{ElementType::f32, {}}}, call.all());
  GALVATRON_RETURN_IF_ERROR(verifyCrossEntropy(forward));
  return expectOutput(call, call.inputs[1]);
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

static Status verifyLRSchedule(const KernelCall &call) {
  GALVATRON_RETURN_IF_ERROR(
      expectType(call.inputs[0], ElementType::i64, "step"));
  if (call.inputs[0].rank() != 0)
    return error("step must be a scalar, got ", call.inputs[0].str());
  if (call.real("lr") < 0.0 || call.real("min_lr") < 0.0)
    return error("learning rates must be non-negative");
  if (call.integer("warmup_steps") < 0 || call.integer("decay_steps") < 0)
    return error("step counts must be non-negative");
  return expectOutput(call, TensorType{ElementType::f32, {}});
}

/// Shared by the updates: `tensors` operands of the parameter's type, then
/// the named scalars, then an optional i1 `enable`; every result has the
/// parameter's type.
static Status verifyUpdate(
    const KernelCall &call, unsigned tensors,
    const std::vector<std::pair<std::string_view, ElementType>> &scalars) {
  const TensorType &param = call.inputs[0];
  for (unsigned i = 1; i < tensors; ++i)
    if (call.inputs[i] != param)
      return error("operand #", i, " ", call.inputs[i].str(),
                   " must match the parameter ", param.str());
  std::vector<std::pair<std::string_view, ElementType>> expected = scalars;
  if (call.inputs.size() == tensors + scalars.size() + 1)
    expected.push_back({"enable", ElementType::i1});
  else if (call.inputs.size() != tensors + scalars.size())
    return error("takes ", tensors + scalars.size(), " or ",
                 tensors + scalars.size() + 1, " operands");
  for (size_t i = 0; i < expected.size(); ++i)
    if (call.inputs[tensors + i] != TensorType{expected[i].second, {}})
      return error(expected[i].first, " must be a ",
                   elementTypeName(expected[i].second), " scalar, got ",
                   call.inputs[tensors + i].str());
  for (const char *name : {"beta1", "beta2", "momentum"})
    if (call.find(name) && !(call.real(name) >= 0.0 && call.real(name) < 1.0))
      return error(name, " must lie in [0, 1), got ", call.real(name));
  for (const char *name : {"epsilon", "weight_decay"})
    if (call.real(name) < 0.0)
      return error(name, " must be non-negative, got ", call.real(name));
  for (unsigned o = 0; o < call.outputs.size(); ++o)
    GALVATRON_RETURN_IF_ERROR(expectOutput(call, param, o));
  return Status::ok();
}

static Status verifyAdamWUpdate(const KernelCall &call) {
  return verifyUpdate(call, 4,
                      {{"lr", ElementType::f32},
                       {"step", ElementType::i64},
                       {"grad_scale", ElementType::f32}});
}

static Status verifySGDUpdate(const KernelCall &call) {
  GALVATRON_RETURN_IF_ERROR(expectFlag(call, "nesterov"));
  return verifyUpdate(
      call, 3, {{"lr", ElementType::f32}, {"grad_scale", ElementType::f32}});
}

//===----------------------------------------------------------------------===//
// Decoding attributes
//===----------------------------------------------------------------------===//

static KernelAttributes decodeNone(const KernelCall &) {
  return NoAttributes{};
}

static KernelAttributes decodeGelu(const KernelCall &call) {
  return GeluAttributes{call.flag("approximate")};
}

static KernelAttributes decodeMatmul(const KernelCall &call) {
  return MatmulAttributes{call.flag("transpose_lhs"),
                          call.flag("transpose_rhs")};
}

static KernelAttributes decodeLinear(const KernelCall &call) {
  return LinearAttributes{call.flag("transpose_weight")};
}

/// The vocabulary block of a call whose table or logits hold `local` ids.
static VocabBlock vocabBlock(const KernelCall &call, int64_t local) {
  return VocabBlock{call.integer("vocab_start", 0), local,
                    call.integer("vocab_size", local)};
}

static KernelAttributes decodeEmbedding(const KernelCall &call) {
  return EmbeddingAttributes{vocabBlock(call, call.inputs[0].shape[0])};
}

static KernelAttributes decodeEmbeddingGrad(const KernelCall &call) {
  return EmbeddingAttributes{vocabBlock(call, call.outputs[0].shape[0])};
}

static KernelAttributes decodeNorm(const KernelCall &call) {
  return NormAttributes{call.real("epsilon")};
}

/// The axis of softmax or split (of input 0) or concat (of the result).
static KernelAttributes decodeAxis(const KernelCall &call) {
  const TensorType &whole =
      call.spec.opcode == Opcode::Concat ? call.outputs[0] : call.inputs[0];
  return AxisAttributes{*normalizeAxis(call.integer("axis"), whole.rank())};
}

static KernelAttributes decodeTranspose(const KernelCall &call) {
  return TransposeAttributes{call.integers("perm")};
}

static KernelAttributes decodeSlice(const KernelCall &call) {
  return SliceAttributes{call.integers("starts"), call.integers("strides")};
}

static KernelAttributes decodeReduce(const KernelCall &call) {
  ReduceAttributes decoded;
  decoded.reduced.assign(call.inputs[0].rank(), false);
  for (int64_t axis : call.integers("axes"))
    decoded.reduced[*normalizeAxis(axis, call.inputs[0].rank())] = true;
  decoded.square = call.flag("square");
  return decoded;
}

static KernelAttributes decodeRotary(const KernelCall &call) {
  return RotaryAttributes{
      *normalizeAxis(call.integer("seq_axis"), call.inputs[0].rank()),
      call.real("theta"), call.integer("rotary_dim"), call.flag("interleaved")};
}

/// The dropout of `part` (probability attribute `name`) a call holds.
static DropoutAttributes decodeDropoutPart(const KernelCall &call,
                                           std::string_view name,
                                           const std::vector<int64_t> &part) {
  bool whole = !call.find("whole_shape");
  return DropoutAttributes{
      call.real(name), uint64_t(call.integer("stream")),
      whole ? part : call.integers("whole_shape"),
      whole ? std::vector<int64_t>(part.size(), 0) : call.integers("offsets")};
}

/// The attention kernels, whose query is operand `query` (the key follows).
template <unsigned query>
static KernelAttributes decodeAttention(const KernelCall &call) {
  const std::vector<int64_t> &q = call.inputs[query].shape,
                             &k = call.inputs[query + 1].shape;
  return AttentionAttributes{
      call.flag("causal"), float(call.real("scale")),
      decodeDropoutPart(call, "dropout", {q[0], q[1], q[2], k[2]})};
}

/// The cross-entropy kernels, whose logits are operand `logits`.
template <unsigned logits>
static KernelAttributes decodeCrossEntropy(const KernelCall &call) {
  return CrossEntropyAttributes{
      call.integer("ignore_index", -100), call.integer("reduction") == 0,
      vocabBlock(call, call.inputs[logits].shape.back())};
}

static KernelAttributes decodeRelativePositionBucket(const KernelCall &call) {
  return RelativePositionBucketAttributes{call.integer("num_buckets"),
                                          call.integer("max_distance"),
                                          call.flag("bidirectional")};
}

static KernelAttributes decodePatches(const KernelCall &call) {
  return PatchAttributes{call.integer("patch_size")};
}

static KernelAttributes decodeTrilMask(const KernelCall &call) {
  return TrilMaskAttributes{call.integer("diagonal")};
}

static KernelAttributes decodeDropout(const KernelCall &call) {
  return decodeDropoutPart(call, "probability", call.inputs[0].shape);
}

static KernelAttributes decodeFill(const KernelCall &call) {
  return FillAttributes{call.real("value")};
}

static KernelAttributes decodeCompare(const KernelCall &call) {
  return CompareAttributes{ComparePredicate(call.integer("predicate"))};
}

static KernelAttributes decodePad(const KernelCall &call) {
  return PadAttributes{call.integers("low"), call.integers("interior"),
                       call.real("value")};
}

static KernelAttributes decodeActivationGrad(const KernelCall &call) {
  return ActivationGradAttributes{Activation(call.integer("activation"))};
}

static KernelAttributes decodeLRSchedule(const KernelCall &call) {
  return LRScheduleAttributes{call.real("lr"), call.real("min_lr"),
                              call.integer("warmup_steps"),
                              call.integer("decay_steps")};
}

static KernelAttributes decodeAdamW(const KernelCall &call) {
  return AdamWAttributes{call.real("beta1"), call.real("beta2"),
                         call.real("epsilon"), call.real("weight_decay")};
}

static KernelAttributes decodeSGD(const KernelCall &call) {
  return SGDAttributes{call.real("momentum"), call.real("weight_decay"),
                       call.flag("nesterov")};
}

//===----------------------------------------------------------------------===//
// The catalog
//===----------------------------------------------------------------------===//

namespace {
constexpr AttributeKind kInt = AttributeKind::integer;
constexpr AttributeKind kReal = AttributeKind::real;
constexpr AttributeKind kInts = AttributeKind::integers;
constexpr uint32_t kFirst = 1, kBoth = 3, kNone = 0;
constexpr ElementTypes kF32 = typeSet(ElementType::f32);

// clang-format off
KernelSpec unary(Opcode opcode) {
  return {opcode, {}, 1, 1, 1, 1, {}, kFirst, input(0), kFloatTypes,
          verifyUnary, decodeNone};
}
KernelSpec binary(Opcode opcode) {
  return {opcode, {}, 2, 2, 1, 1, {}, kBoth, input(0), kNumericTypes,
          verifyBinary, decodeNone};
}
KernelSpec reduction(Opcode opcode) {
  return {opcode, {}, 1, 1, 1, 1,
          {{"axes", kInts, true}, {"keep_dims", kInt, false}},
          kNone, input(0), kFloatTypes, verifyReduce, decodeReduce};
}
// reduce_sum's `square` sums x·x (a norm's squares, without storing them).
KernelSpec sumReduction() {
  KernelSpec spec = reduction(Opcode::ReduceSum);
  spec.attributes.push_back({"square", kInt, false});
  return spec;
}
const std::vector<AttributeSpec> kVocabCrossEntropyAttributes = {
    {"vocab_start", kInt, false},
    {"vocab_size", kInt, false},
    {"ignore_index", kInt, false},
    {"reduction", kInt, false}};
// The attention kernels' dropout of the probabilities is optional (off at
// 0); `whole_shape` and `offsets` place a partitioned call's part.
const std::vector<AttributeSpec> kAttentionAttributes = {
    {"causal", kInt, false},     {"scale", kReal, true},
    {"dropout", kReal, false},   {"stream", kInt, false},
    {"whole_shape", kInts, false}, {"offsets", kInts, false}};

/// One spec per opcode (checked by the unit tests), in any order. Fields:
/// opcode, (name), inputs min/max, results min/max, attributes, in-place
/// inputs, dispatch operand, its types, verify, decode[, in-place results].
std::vector<KernelSpec> buildCatalog() {
  using O = Opcode;
  return {
      unary(O::Neg),
      unary(O::Abs),
      unary(O::Exp),
      unary(O::Log),
      unary(O::Sqrt),
      unary(O::Rsqrt),
      unary(O::Reciprocal),
      unary(O::Tanh),
      unary(O::Erf),
      unary(O::Sigmoid),
      unary(O::Relu),
      unary(O::Silu),
      {O::Gelu, {}, 1, 1, 1, 1, {{"approximate", kInt, false}}, kFirst,
       input(0), kFloatTypes, verifyGelu, decodeGelu},
      {O::Add, {}, 2, 2, 1, 1, {}, kBoth, input(0), kNumericTypes, verifyAdd,
       decodeNone},
      binary(O::Sub),
      binary(O::Mul),
      binary(O::Div),
      binary(O::Pow),
      binary(O::Max),
      binary(O::Min),
      {O::Select, {}, 3, 3, 1, 1, {}, 0b110, input(1), kAnyType, verifySelect,
       decodeNone},
      {O::Cast, {}, 1, 1, 1, 1, {}, kNone, input(0), kAnyType, verifyCast,
       decodeNone},
      {O::Matmul, {}, 2, 2, 1, 1,
       {{"transpose_lhs", kInt, false}, {"transpose_rhs", kInt, false}},
       kNone, input(0), kFloatTypes, verifyMatmul, decodeMatmul},
      {O::Linear, {}, 2, 3, 1, 1, {{"transpose_weight", kInt, false}},
       kNone, input(0), kFloatTypes, verifyLinear, decodeLinear},
      {O::Embedding, {}, 2, 2, 1, 1,
       {{"vocab_start", kInt, false}, {"vocab_size", kInt, false}}, kNone,
       input(0), kFloatTypes, verifyEmbedding, decodeEmbedding},
      {O::LayerNorm, {}, 2, 3, 1, 1, {{"epsilon", kReal, true}}, kFirst,
       input(0), kFloatTypes, verifyNorm, decodeNorm},
      {O::RMSNorm, {}, 2, 2, 1, 1, {{"epsilon", kReal, true}}, kFirst,
       input(0), kFloatTypes, verifyNorm, decodeNorm},
      {O::Softmax, {}, 1, 1, 1, 1, {{"axis", kInt, true}}, kFirst,
       input(0), kFloatTypes, verifySoftmax, decodeAxis},
      {O::Transpose, {}, 1, 1, 1, 1, {{"perm", kInts, true}}, kNone,
       input(0), kAnyType, verifyTranspose, decodeTranspose},
      {O::Slice, {}, 1, 1, 1, 1,
       {{"starts", kInts, true}, {"limits", kInts, true},
        {"strides", kInts, true}},
       kNone, input(0), kAnyType, verifySlice, decodeSlice},
      {O::Concat, {}, 1, kVariadic, 1, 1, {{"axis", kInt, true}}, kNone,
       output(0), kAnyType, verifyConcat, decodeAxis},
      {O::Split, {}, 1, 1, 1, kVariadic, {{"axis", kInt, true}}, kNone,
       input(0), kAnyType, verifySplit, decodeAxis},
      {O::Broadcast, {}, 1, 1, 1, 1, {}, kNone, input(0), kAnyType,
       verifyBroadcast, decodeNone},
      sumReduction(),
      reduction(O::ReduceMean),
      reduction(O::ReduceMax),
      {O::Rotary, {}, 1, 1, 1, 1,
       {{"seq_axis", kInt, true},
        {"theta", kReal, true},
        {"rotary_dim", kInt, true},
        {"interleaved", kInt, false}},
       kFirst, input(0), kFloatTypes, verifyRotary, decodeRotary},
      {O::Attention, {}, 3, 4, 1, 1, kAttentionAttributes, kNone, input(0),
       kFloatTypes, verifyAttention, decodeAttention<0>},
      {O::CrossEntropy, {}, 2, 2, 1, 1,
       {{"ignore_index", kInt, false}, {"reduction", kInt, false}}, kNone,
       input(0), kFloatTypes, verifyCrossEntropy, decodeCrossEntropy<0>},
      // logits, max, labels -> statistics.
      {O::VocabCrossEntropyStats, {}, 3, 3, 1, 1,
       {{"vocab_start", kInt, false},
        {"vocab_size", kInt, false},
        {"ignore_index", kInt, false}},
       kNone, input(0), kFloatTypes, verifyVocabCrossEntropyStats,
       decodeCrossEntropy<0>},
      // statistics, logits, max, labels -> loss.
      {O::VocabCrossEntropy, {}, 4, 4, 1, 1, kVocabCrossEntropyAttributes,
       kNone, input(1), kFloatTypes, verifyVocabCrossEntropy,
       decodeCrossEntropy<1>},
      {O::RelativePositionBucket, {}, 0, 0, 1, 1,
       {{"num_buckets", kInt, true},
        {"max_distance", kInt, true},
        {"bidirectional", kInt, true}},
       kNone, output(0), typeSet(ElementType::i64),
       verifyRelativePositionBucket, decodeRelativePositionBucket},
      {O::ExtractPatches, {}, 1, 1, 1, 1, {{"patch_size", kInt, true}},
       kNone, input(0), kFloatTypes, verifyExtractPatches, decodePatches},
      {O::TrilMask, {}, 0, 0, 1, 1, {{"diagonal", kInt, false}}, kNone,
       output(0), typeSet(ElementType::i1), verifyTrilMask, decodeTrilMask},
      // input -> result (over the input), mask.
      {O::Dropout, {}, 1, 1, 2, 2,
       {{"probability", kReal, true},
        {"stream", kInt, true},
        {"whole_shape", kInts, false},
        {"offsets", kInts, false}},
       kFirst, input(0), kFloatTypes, verifyDropout, decodeDropout},
      {O::Copy, {}, 1, 1, 1, 1, {}, kFirst, input(0), kAnyType, verifyCopy,
       decodeNone},
      {O::Fill, {}, 0, 0, 1, 1, {{"value", kReal, true}}, kNone, output(0),
       kAnyType, verifyFill, decodeFill},
      {O::Compare, {}, 2, 2, 1, 1, {{"predicate", kInt, true}}, kNone,
       input(0), kNumericTypes, verifyCompare, decodeCompare},
      {O::Pad, {}, 1, 1, 1, 1,
       {{"low", kInts, true},
        {"high", kInts, true},
        {"interior", kInts, true},
        {"value", kReal, false}},
       kNone, input(0), kFloatTypes, verifyPad, decodePad},
      {O::ActivationGrad, {}, 2, 2, 1, 1, {{"activation", kInt, true}},
       kFirst, input(0), kFloatTypes, verifyActivationGrad,
       decodeActivationGrad},
      {O::LayerNormGrad, {}, 3, 3, 3, 3, {{"epsilon", kReal, true}}, kNone,
       input(0), kFloatTypes, verifyNormGrad, decodeNorm},
      {O::RMSNormGrad, {}, 3, 3, 2, 2, {{"epsilon", kReal, true}}, kNone,
       input(0), kFloatTypes, verifyNormGrad, decodeNorm},
      {O::AttentionGrad, {}, 4, 5, 3, 4, kAttentionAttributes, kNone,
       input(0), kFloatTypes, verifyAttentionGrad, decodeAttention<1>},
      {O::EmbeddingGrad, {}, 2, 2, 1, 1,
       {{"vocab_start", kInt, false}, {"vocab_size", kInt, false}}, kNone,
       input(0), kFloatTypes, verifyEmbeddingGrad, decodeEmbeddingGrad},
      // loss gradient, logits, labels -> logits gradient.
      {O::CrossEntropyGrad, {}, 3, 3, 1, 1,
       {{"ignore_index", kInt, false}, {"reduction", kInt, false}}, kNone,
       input(1), kFloatTypes, verifyCrossEntropyGrad, decodeCrossEntropy<1>},
      // loss gradient, statistics, logits, max, labels -> logits gradient.
      {O::VocabCrossEntropyGrad, {}, 5, 5, 1, 1,
       kVocabCrossEntropyAttributes, kNone, input(2), kFloatTypes,
       verifyVocabCrossEntropyGrad, decodeCrossEntropy<2>},
      {O::LRSchedule, {}, 1, 1, 1, 1,
       {{"lr", kReal, true},
        {"min_lr", kReal, false},
        {"warmup_steps", kInt, false},
        {"decay_steps", kInt, false}},
       kNone, output(0), kF32, verifyLRSchedule, decodeLRSchedule},
      // Master weights and optimizer state are f32.
      // param, grad, exp_avg, exp_avg_sq, lr, step, grad_scale[, enable]
      // -> param, exp_avg, exp_avg_sq, each over its old value.
      {O::AdamWUpdate, {}, 7, 8, 3, 3,
       {{"beta1", kReal, true},
        {"beta2", kReal, true},
        {"epsilon", kReal, true},
        {"weight_decay", kReal, true}},
       kFirst, input(0), kF32, verifyAdamWUpdate, decodeAdamW,
       {{1, 2}, {2, 3}}},
      // param, grad, momentum_buffer, lr, grad_scale[, enable]
      // -> param, momentum_buffer.
      {O::SGDUpdate, {}, 5, 6, 2, 2,
       {{"momentum", kReal, true},
        {"weight_decay", kReal, true},
        {"nesterov", kInt, false}},
       kFirst, input(0), kF32, verifySGDUpdate, decodeSGD, {{1, 2}}},
  };
}
// clang-format on

constexpr std::array<std::string_view, kNumOpcodes> kOpcodeNames = {
#define GALVATRON_KERNEL(Enumerator, name) name,
#include "galvatron/Runtime/Kernels.def"
};

/// The specs indexed by opcode, named as in Kernels.def.
const std::vector<KernelSpec> &catalog() {
  static const std::vector<KernelSpec> specs = [] {
    std::vector<KernelSpec> built = buildCatalog();
    std::sort(built.begin(), built.end(),
              [](const KernelSpec &a, const KernelSpec &b) {
                return a.opcode < b.opcode;
              });
    for (KernelSpec &spec : built)
      spec.name = kOpcodeNames[unsigned(spec.opcode)];
    return built;
  }();
  return specs;
}
} // namespace

bool KernelSpec::mayOverwrite(unsigned output, unsigned input) const {
  if (output == 0)
    return input < 32 && (inPlaceInputs >> input & 1);
  return std::find(inPlaceResults.begin(), inPlaceResults.end(),
                   std::make_pair(output, input)) != inPlaceResults.end();
}

const KernelSpec &getKernel(Opcode opcode) {
  return catalog()[unsigned(opcode)];
}

const KernelSpec *findKernel(std::string_view name) {
  for (unsigned i = 0; i < kNumOpcodes; ++i)
    if (kOpcodeNames[i] == name)
      return &getKernel(Opcode(i));
  return nullptr;
}

static std::string_view attributeKindName(AttributeKind kind) {
  switch (kind) {
  case AttributeKind::integer:
    return "an integer";
  case AttributeKind::real:
    return "a real";
  case AttributeKind::integers:
    return "an integer list";
  }
  return "?";
}

static Status checkCount(size_t count, unsigned minimum, unsigned maximum,
                         std::string_view what) {
  if (count < minimum || (maximum != kVariadic && count > maximum)) {
    if (minimum == maximum)
      return error("takes ", minimum, " ", what, ", got ", count);
    if (maximum == kVariadic)
      return error("takes at least ", minimum, " ", what, ", got ", count);
    return error("takes ", minimum, " to ", maximum, " ", what, ", got ",
                 count);
  }
  return Status::ok();
}

Status verifyKernelCall(const KernelCall &call) {
  const KernelSpec &spec = call.spec;
  GALVATRON_RETURN_IF_ERROR(checkCount(call.inputs.size(), spec.minInputs,
                                       spec.maxInputs, "operands"));
  GALVATRON_RETURN_IF_ERROR(checkCount(call.outputs.size(), spec.minOutputs,
                                       spec.maxOutputs, "results"));
  const std::vector<Attribute> &attributes = call.all();
  for (size_t i = 0; i < attributes.size(); ++i) {
    const Attribute &attribute = attributes[i];
    auto known = std::find_if(
        spec.attributes.begin(), spec.attributes.end(),
        [&](const AttributeSpec &s) { return s.name == attribute.name; });
    if (known == spec.attributes.end())
      return error("unknown attribute '", attribute.name, "'");
    if (known->kind != attribute.kind)
      return error("attribute '", attribute.name, "' must be ",
                   attributeKindName(known->kind));
    for (size_t j = 0; j < i; ++j)
      if (attributes[j].name == attribute.name)
        return error("attribute '", attribute.name, "' is given twice");
  }
  for (const AttributeSpec &attribute : spec.attributes)
    if (attribute.required && !call.find(attribute.name))
      return error("missing attribute '", attribute.name, "'");
  const TensorType &selector = call.operand(spec.dispatch);
  if (!(spec.types & typeSet(selector.elementType)))
    return error(spec.dispatch.output ? "result #" : "operand #",
                 spec.dispatch.index, " must be ", describeTypes(spec.types),
                 ", got ", selector.str());
  return spec.verify(call);
}

KernelCall makeKernelCall(const KernelSpec &spec, const ProgramBody &program,
                          const Instruction &instruction,
                          const std::vector<Attribute> &attributes) {
  std::vector<TensorType> inputs, outputs;
  for (uint32_t index : instruction.inputs)
    inputs.push_back(program.buffers[index].type);
  for (uint32_t index : instruction.outputs)
    outputs.push_back(program.buffers[index].type);
  return KernelCall(spec, std::move(inputs), std::move(outputs), attributes);
}

KernelCall makeKernelCall(const KernelSpec &spec, const RankProgram &rank,
                          const Instruction &instruction) {
  return makeKernelCall(spec, rank, instruction, instruction.attributes);
}

Expected<KernelBinding> bindKernel(const RankProgram &rank,
                                   const Instruction &instruction) {
  const KernelSpec *spec = findKernel(instruction.kernel);
  if (!spec)
    return error("unknown kernel '", instruction.kernel, "'");
  KernelCall call = makeKernelCall(*spec, rank, instruction);
  GALVATRON_RETURN_IF_ERROR(verifyKernelCall(call));
  return KernelBinding{spec, call.dispatchType(), spec->decode(call)};
}

std::string describeTypes(ElementTypes types) {
  std::vector<std::string_view> names;
  for (unsigned i = 0; i < kNumElementTypes; ++i)
    if (types & typeSet(ElementType(i)))
      names.push_back(elementTypeName(ElementType(i)));
  std::string text;
  for (size_t i = 0; i < names.size(); ++i)
    text += std::string(i == 0                  ? ""
                        : i + 1 == names.size() ? " or "
                                                : ", ") +
            std::string(names[i]);
  return text;
}

} // namespace galvatron::runtime
