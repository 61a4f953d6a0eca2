//===- ProgramValidator.cpp - Semantic checks of a program ----------------===//

#include "galvatron/Runtime/ProgramValidator.h"

#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace galvatron::runtime {

std::string describeInstruction(const RankProgram &rank, size_t index) {
  const Instruction &instruction = rank.instructions[index];
  std::string text = "instruction " + std::to_string(index) + " (";
  if (instruction.kind == InstructionKind::kernel)
    text += "kernel '" + instruction.kernel + "'";
  else
    text += instructionKindName(instruction.kind);
  if (instruction.layer >= 0 && size_t(instruction.layer) < rank.layers.size())
    text += " in layer '" + rank.layers[instruction.layer] + "'";
  return text + ")";
}

static std::string describeBuffer(const RankProgram &rank, uint32_t index) {
  std::string text = "buffer " + std::to_string(index);
  if (index < rank.buffers.size() && !rank.buffers[index].name.empty())
    text += " ('" + rank.buffers[index].name + "')";
  return text;
}

//===----------------------------------------------------------------------===//
// Buffers
//===----------------------------------------------------------------------===//

static Status checkShape(const std::vector<int64_t> &shape) {
  if (int64_t(shape.size()) > kMaxRank)
    return error("rank ", shape.size(), " exceeds the limit of ", kMaxRank);
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0)
      return error("shape ", shapeString(shape), " has a negative dimension");
    if (dim > 0 && count > kMaxElements / dim)
      return error("shape ", shapeString(shape), " has more than 2^48 elements");
    count *= dim;
  }
  return Status::ok();
}

/// [begin, end) of a buffer's bytes in the arena.
static std::pair<uint64_t, uint64_t> byteRange(const Buffer &buffer) {
  return {buffer.offset, buffer.offset + buffer.type.byteSize()};
}

static Status checkBuffer(const Program &program, const RankProgram &rank,
                          uint32_t index) {
  const Buffer &buffer = rank.buffers[index];
  GALVATRON_RETURN_IF_ERROR(checkShape(buffer.type.shape));
  uint64_t size = buffer.type.byteSize();
  if (buffer.offset > rank.arenaSize || size > rank.arenaSize - buffer.offset)
    return error("bytes [", buffer.offset, ", ", buffer.offset + size,
                 ") lie outside the arena of ", rank.arenaSize, " bytes");
  if (!buffer.viewOf) {
    if (buffer.offset % program.alignment)
      return error("offset ", buffer.offset, " is not a multiple of the ",
                   program.alignment, "-byte alignment");
    return Status::ok();
  }
  uint32_t root = *buffer.viewOf;
  if (root >= rank.buffers.size() || root == index)
    return error("is a view of buffer ", root, ", which does not exist");
  const Buffer &rootBuffer = rank.buffers[root];
  if (rootBuffer.viewOf)
    return error("is a view of buffer ", root, ", itself a view");
  auto [begin, end] = byteRange(rootBuffer);
  if (buffer.offset < begin || buffer.offset + size > end)
    return error("view bytes [", buffer.offset, ", ", buffer.offset + size,
                 ") lie outside buffer ", root, "'s [", begin, ", ", end, ")");
  if (buffer.offset % elementSize(buffer.type.elementType))
    return error("view offset ", buffer.offset, " is not aligned to its ",
                 elementTypeName(buffer.type.elementType), " elements");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Parameters, constants, bindings
//===----------------------------------------------------------------------===//

/// What a root buffer is bound to; a buffer has at most one role.
enum class Role { none, parameter, constant, input };

static Status checkParameter(const RankProgram &rank,
                             const Parameter &parameter) {
  if (parameter.name.empty())
    return error("has no name");
  const TensorType &type = rank.buffers[parameter.buffer].type;
  if (parameter.state) {
    // Counters are integers; state starts from its initializer.
    if (type.elementType == ElementType::i1)
      return error("state cannot be i1");
    if (!parameter.init || parameter.external)
      return error("state needs an initializer and no external data");
    if (isInteger(type.elementType) && (parameter.init->kind == InitKind::normal ||
                                        parameter.init->kind == InitKind::uniform))
      return error("integer state needs a zeros, ones or constant initializer");
  } else if (!isFloat(type.elementType)) {
    return error("buffer must hold floats, got ", type.str());
  }
  if (!parameter.init && !parameter.external)
    return error("needs an initializer or external data");
  if (parameter.init) {
    const Initializer &init = *parameter.init;
    if (unsigned(init.kind) >= kNumInitKinds)
      return error("unknown initializer kind ", unsigned(init.kind));
    if (init.kind == InitKind::normal && !(init.b >= 0.0))
      return error("normal initializer has a negative standard deviation");
    if (init.kind == InitKind::uniform && !(init.a <= init.b))
      return error("uniform initializer has low > high");
  }
  if (parameter.external) {
    const ExternalData &external = *parameter.external;
    if (external.location.empty() || external.offset < 0 ||
        external.length < -1)
      return error("malformed external data reference");
    if (Status confined = checkExternalLocation(external.location); !confined)
      return error("external data '", external.location, "' ",
                   confined.message());
  }
  if (!parameter.isSlice()) {
    if (!parameter.sliceStart.empty())
      return error("has a slice start but no full shape");
    return Status::ok();
  }
  GALVATRON_RETURN_IF_ERROR(checkShape(parameter.fullShape));
  if (parameter.fullShape.size() != type.shape.size() ||
      parameter.sliceStart.size() != type.shape.size())
    return error("slice of ", shapeString(parameter.fullShape), " at ",
                 shapeString(parameter.sliceStart), " does not fit ",
                 type.str());
  // A slice may extend past the full shape (a padded vocabulary's rows):
  // the elements past it are padding.
  for (size_t dim = 0; dim < type.shape.size(); ++dim)
    if (parameter.sliceStart[dim] < 0)
      return error("slice ", type.str(), " of ",
                   shapeString(parameter.fullShape), " starts at ",
                   shapeString(parameter.sliceStart));
  return Status::ok();
}

static Status checkBindings(const RankProgram &rank,
                            const std::vector<Binding> &bindings,
                            std::string_view what) {
  std::set<std::string> names;
  for (const Binding &binding : bindings) {
    if (binding.buffer >= rank.buffers.size())
      return error(what, " '", binding.name, "' refers to buffer ",
                   binding.buffer, ", which does not exist");
    if (binding.name.empty())
      return error("an ", what, " has no name");
    if (!names.insert(binding.name).second)
      return error(what, " '", binding.name, "' is bound twice");
  }
  return Status::ok();
}

static Status checkRoles(const RankProgram &rank) {
  std::vector<Role> roles(rank.buffers.size(), Role::none);
  std::set<std::string> names;
  auto claim = [&](uint32_t buffer, Role role,
                   const std::string &what) -> Status {
    if (buffer >= rank.buffers.size())
      return error(what, " refers to buffer ", buffer,
                   ", which does not exist");
    if (rank.buffers[buffer].viewOf)
      return error(what, " is bound to view ", describeBuffer(rank, buffer),
                   " instead of a buffer of its own");
    if (roles[buffer] != Role::none)
      return error(what, " is bound to ", describeBuffer(rank, buffer),
                   ", which already holds a parameter, constant or input");
    roles[buffer] = role;
    return Status::ok();
  };
  for (const Parameter &parameter : rank.parameters) {
    std::string what = "parameter '" + parameter.name + "'";
    GALVATRON_RETURN_IF_ERROR(claim(parameter.buffer, Role::parameter, what));
    GALVATRON_RETURN_IF_ERROR(checkParameter(rank, parameter).withContext(what));
    if (!names.insert(parameter.name).second)
      return error(what, " is declared twice");
  }
  for (size_t i = 0; i < rank.constants.size(); ++i) {
    const Constant &constant = rank.constants[i];
    std::string what = "constant " + std::to_string(i);
    GALVATRON_RETURN_IF_ERROR(claim(constant.buffer, Role::constant, what));
    uint64_t expected = rank.buffers[constant.buffer].type.byteSize();
    if (constant.data.size() != expected)
      return error(what, " holds ", constant.data.size(), " bytes, but ",
                   describeBuffer(rank, constant.buffer), " needs ", expected);
  }
  GALVATRON_RETURN_IF_ERROR(checkBindings(rank, rank.inputs, "input"));
  GALVATRON_RETURN_IF_ERROR(checkBindings(rank, rank.outputs, "output"));
  for (const Binding &input : rank.inputs)
    GALVATRON_RETURN_IF_ERROR(
        claim(input.buffer, Role::input, "input '" + input.name + "'"));
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Instructions
//===----------------------------------------------------------------------===//

static bool sameBytes(const Buffer &a, const Buffer &b) {
  return byteRange(a) == byteRange(b);
}

static bool overlap(const Buffer &a, const Buffer &b) {
  auto [aBegin, aEnd] = byteRange(a);
  auto [bBegin, bEnd] = byteRange(b);
  return aBegin < bEnd && bBegin < aEnd;
}

/// Results never share bytes with each other; a result shares bytes with an
/// operand only when it occupies exactly the operand's bytes and `mayOverwrite`
/// (result, operand) allows it.
template <typename MayOverwrite>
static Status checkOperandOverlap(const RankProgram &rank,
                                  const Instruction &instruction,
                                  MayOverwrite mayOverwrite) {
  const auto &buffers = rank.buffers;
  for (size_t o = 0; o < instruction.outputs.size(); ++o) {
    const Buffer &output = buffers[instruction.outputs[o]];
    for (size_t p = 0; p < o; ++p)
      if (overlap(output, buffers[instruction.outputs[p]]))
        return error("results #", p, " and #", o, " share bytes");
    for (size_t i = 0; i < instruction.inputs.size(); ++i) {
      const Buffer &input = buffers[instruction.inputs[i]];
      if (!overlap(output, input))
        continue;
      bool allowed = mayOverwrite(unsigned(o), unsigned(i)) &&
                     sameBytes(output, input);
      if (!allowed)
        return error("result #", o, " overlaps operand #", i,
                     " but may not be computed in place");
    }
  }
  return Status::ok();
}

static Status checkKernel(const RankProgram &rank,
                          const Instruction &instruction) {
  const KernelSpec *spec = findKernel(instruction.kernel);
  if (!spec)
    return error("unknown kernel '", instruction.kernel, "'");
  GALVATRON_RETURN_IF_ERROR(
      verifyKernelCall(makeKernelCall(*spec, rank, instruction)));
  return checkOperandOverlap(rank, instruction,
                             [spec](unsigned output, unsigned input) {
                               return spec->mayOverwrite(output, input);
                             });
}

static Status checkPeer(const Program &program, const RankProgram &rank,
                        int32_t peer, std::string_view what) {
  if (peer < 0 || uint32_t(peer) >= program.worldSize)
    return error(what, " ", peer, " is not a rank of the ", program.worldSize,
                 "-rank world");
  if (uint32_t(peer) == rank.rank)
    return error(what, " ", peer, " is this rank itself");
  return Status::ok();
}

static Status checkCollective(const Program &program, const RankProgram &rank,
                              const Instruction &instruction) {
  if (instruction.group >= program.groups.size())
    return error("group ", instruction.group, " does not exist");
  const std::vector<uint32_t> &group = program.groups[instruction.group];
  if (std::find(group.begin(), group.end(), rank.rank) == group.end())
    return error("rank ", rank.rank, " is not a member of group ",
                 instruction.group);
  if (instruction.inputs.size() != 1 || instruction.outputs.size() != 1)
    return error("takes one operand and one result");
  if (unsigned(instruction.reduce) >= kNumReduceOps)
    return error("unknown reduction ", unsigned(instruction.reduce));
  const TensorType &in = rank.buffers[instruction.inputs[0]].type;
  const TensorType &out = rank.buffers[instruction.outputs[0]].type;
  if (in.elementType != out.elementType)
    return error("operand ", in.str(), " and result ", out.str(),
                 " differ in element type");
  int64_t members = int64_t(group.size());
  bool reduces = instruction.kind == InstructionKind::allReduce ||
                 instruction.kind == InstructionKind::reduceScatter;
  // 16-bit floats reduce in f32 arithmetic (Communicator.h).
  if (reduces && !(isFloat(in.elementType) ||
                   (isInteger(in.elementType) &&
                    instruction.reduce != ReduceOp::avg)))
    return error("cannot reduce ", in.str(), " with ",
                 reduceOpName(instruction.reduce));
  // `chunked` is the side split into one part per member along dimension 0,
  // `part` the side holding one part.
  auto checkChunks = [&](const TensorType &chunked,
                         const TensorType &part) -> Status {
    std::vector<int64_t> expected = part.shape;
    if (expected.empty() || chunked.rank() != part.rank() ||
        (expected[0] = part.shape[0] * members, chunked.shape != expected))
      return error(chunked.str(), " must be ", members, " parts like ",
                   part.str(), " along dimension 0");
    return Status::ok();
  };
  bool inPlace = false;
  switch (instruction.kind) {
  case InstructionKind::allReduce:
  case InstructionKind::broadcast:
    if (in.shape != out.shape)
      return error("operand ", in.str(), " and result ", out.str(),
                   " differ in shape");
    inPlace = true;
    break;
  case InstructionKind::allGather:
    GALVATRON_RETURN_IF_ERROR(checkChunks(out, in));
    break;
  case InstructionKind::reduceScatter:
    GALVATRON_RETURN_IF_ERROR(checkChunks(in, out));
    break;
  case InstructionKind::allToAll:
    if (in.shape != out.shape || in.rank() == 0 || in.shape[0] % members)
      return error("operand ", in.str(), " and result ", out.str(),
                   " must have one shape with dimension 0 divisible by ",
                   members);
    break;
  default:
    break;
  }
  if (instruction.kind == InstructionKind::broadcast &&
      std::find(group.begin(), group.end(), uint32_t(instruction.peer)) ==
          group.end())
    return error("root ", instruction.peer, " is not a member of group ",
                 instruction.group);
  return checkOperandOverlap(rank, instruction,
                             [inPlace](unsigned output, unsigned input) {
                               return inPlace && output == 0 && input == 0;
                             });
}

Status validateInstruction(const Program &program, const RankProgram &rank,
                           const Instruction &instruction) {
  for (uint32_t index : instruction.inputs)
    if (index >= rank.buffers.size())
      return error("operand buffer ", index, " does not exist");
  for (uint32_t index : instruction.outputs)
    if (index >= rank.buffers.size())
      return error("result buffer ", index, " does not exist");
  if (instruction.layer < -1 ||
      (instruction.layer >= 0 && size_t(instruction.layer) >= rank.layers.size()))
    return error("layer index ", instruction.layer, " does not exist");
  switch (instruction.kind) {
  case InstructionKind::kernel:
    return checkKernel(rank, instruction);
  case InstructionKind::allReduce:
  case InstructionKind::allGather:
  case InstructionKind::reduceScatter:
  case InstructionKind::allToAll:
  case InstructionKind::broadcast:
    return checkCollective(program, rank, instruction);
  case InstructionKind::send:
  case InstructionKind::recv: {
    bool send = instruction.kind == InstructionKind::send;
    if (instruction.inputs.size() != (send ? 1u : 0u) ||
        instruction.outputs.size() != (send ? 0u : 1u))
      return error(send ? "send takes one operand and no result"
                        : "recv takes one result and no operand");
    if (instruction.tag < 0)
      return error("tag ", instruction.tag, " is negative");
    return checkPeer(program, rank, instruction.peer, "peer");
  }
  }
  return error("unknown instruction kind ", unsigned(instruction.kind));
}

//===----------------------------------------------------------------------===//
// Memory plan
//===----------------------------------------------------------------------===//

Expected<std::vector<LiveRange>> computeLiveRanges(const RankProgram &rank) {
  const int64_t count = int64_t(rank.instructions.size());
  std::vector<LiveRange> ranges(rank.buffers.size(),
                                LiveRange{LiveRange::kNever, LiveRange::kNever});
  auto touch = [&](uint32_t root, int64_t at) {
    ranges[root].end = std::max(ranges[root].end, at);
  };
  for (const Parameter &parameter : rank.parameters)
    ranges[parameter.buffer] = LiveRange{-1, count};
  for (const Constant &constant : rank.constants)
    ranges[constant.buffer] = LiveRange{-1, count};
  for (const Binding &input : rank.inputs)
    ranges[input.buffer].start = -1, touch(input.buffer, -1);
  for (int64_t i = 0; i < count; ++i) {
    const Instruction &instruction = rank.instructions[i];
    for (uint32_t input : instruction.inputs) {
      uint32_t root = rank.rootOf(input);
      if (ranges[root].start == LiveRange::kNever)
        return error(describeInstruction(rank, i), ": reads ",
                     describeBuffer(rank, input), " before it is written");
      touch(root, i);
    }
    for (uint32_t output : instruction.outputs) {
      uint32_t root = rank.rootOf(output);
      if (ranges[root].start == LiveRange::kNever)
        ranges[root].start = i;
      touch(root, i);
    }
  }
  for (const Binding &output : rank.outputs) {
    uint32_t root = rank.rootOf(output.buffer);
    if (ranges[root].start == LiveRange::kNever)
      return error("output '", output.name, "' is never written");
    ranges[root].end = count;
  }
  return ranges;
}

Status checkMemoryPlan(const RankProgram &rank) {
  const int64_t count = int64_t(rank.instructions.size());
  Expected<std::vector<LiveRange>> live = computeLiveRanges(rank);
  if (!live)
    return live.takeStatus();
  const std::vector<LiveRange> &ranges = *live;

  // Instruction `at` may write root `later` over root `earlier` when it reads
  // `earlier` for the last time in place (checked per instruction).
  auto handsOver = [&](uint32_t earlier, uint32_t later, int64_t at) {
    if (at < 0 || at >= count)
      return false;
    const Instruction &instruction = rank.instructions[at];
    bool reads = std::any_of(
        instruction.inputs.begin(), instruction.inputs.end(),
        [&](uint32_t b) { return rank.rootOf(b) == earlier; });
    bool writes = std::any_of(
        instruction.outputs.begin(), instruction.outputs.end(),
        [&](uint32_t b) { return rank.rootOf(b) == later; });
    return reads && writes;
  };

  std::vector<uint32_t> roots;
  for (uint32_t b = 0; b < rank.buffers.size(); ++b)
    if (!rank.buffers[b].viewOf && ranges[b].start != LiveRange::kNever &&
        rank.buffers[b].type.byteSize() > 0)
      roots.push_back(b);
  std::stable_sort(roots.begin(), roots.end(), [&](uint32_t a, uint32_t b) {
    return rank.buffers[a].offset < rank.buffers[b].offset;
  });
  for (size_t i = 0; i < roots.size(); ++i) {
    uint32_t a = roots[i];
    uint64_t aEnd = byteRange(rank.buffers[a]).second;
    for (size_t j = i + 1;
         j < roots.size() && rank.buffers[roots[j]].offset < aEnd; ++j) {
      uint32_t b = roots[j];
      const LiveRange &x = ranges[a], &y = ranges[b];
      if (x.end < y.start || y.end < x.start)
        continue;
      if ((x.end == y.start && handsOver(a, b, y.start)) ||
          (y.end == x.start && handsOver(b, a, x.start)))
        continue;
      return error(describeBuffer(rank, a), " and ", describeBuffer(rank, b),
                   " share bytes while both are live (instructions ",
                   std::max(x.start, y.start), " to ", std::min(x.end, y.end),
                   ")");
    }
  }
  return Status::ok();
}

MemoryUsage analyzeMemory(const RankProgram &rank) {
  MemoryUsage usage;
  usage.arenaBytes = rank.arenaSize;
  Expected<std::vector<LiveRange>> live = computeLiveRanges(rank);
  if (!live)
    return usage;
  for (const Parameter &parameter : rank.parameters)
    (parameter.state ? usage.stateBytes : usage.parameterBytes) +=
        rank.buffers[parameter.buffer].type.byteSize();
  // Per step, the distinct byte ranges of live roots (a result computed in
  // place shares its operand's range at the step it is written).
  int64_t count = int64_t(rank.instructions.size());
  for (int64_t step = -1; step <= count; ++step) {
    std::set<std::pair<uint64_t, uint64_t>> occupied;
    for (uint32_t b = 0; b < rank.buffers.size(); ++b) {
      const LiveRange &range = (*live)[b];
      if (!rank.buffers[b].viewOf && range.start != LiveRange::kNever &&
          range.start <= step && step <= range.end)
        occupied.insert(byteRange(rank.buffers[b]));
    }
    uint64_t bytes = 0;
    for (const auto &[begin, end] : occupied)
      bytes += end - begin;
    usage.peakLiveBytes = std::max(usage.peakLiveBytes, bytes);
  }
  return usage;
}

//===----------------------------------------------------------------------===//
// Program
//===----------------------------------------------------------------------===//

Status validateRankProgram(const Program &program, const RankProgram &rank) {
  for (uint32_t b = 0; b < rank.buffers.size(); ++b)
    GALVATRON_RETURN_IF_ERROR(
        checkBuffer(program, rank, b).withContext(describeBuffer(rank, b)));
  GALVATRON_RETURN_IF_ERROR(checkRoles(rank));
  // Constants are loaded once, before the first of possibly many runs.
  std::set<uint32_t> constants;
  for (const Constant &constant : rank.constants)
    constants.insert(constant.buffer);
  for (size_t i = 0; i < rank.instructions.size(); ++i) {
    GALVATRON_RETURN_IF_ERROR(
        validateInstruction(program, rank, rank.instructions[i])
            .withContext(describeInstruction(rank, i)));
    for (uint32_t output : rank.instructions[i].outputs)
      if (constants.count(rank.rootOf(output)))
        return error(describeInstruction(rank, i), ": writes ",
                     describeBuffer(rank, output),
                     ", which holds a constant");
  }
  return checkMemoryPlan(rank);
}

/// The communication of one rank, by channel: per (group) the sequence of
/// collectives, per (source, destination, tag) the sequence of messages.
struct Traffic {
  std::map<uint32_t, std::vector<std::string>> collectives;
  std::map<std::tuple<uint32_t, uint32_t, int32_t>, std::vector<std::string>>
      messages;
};

static Traffic collectTraffic(const RankProgram &rank) {
  Traffic traffic;
  for (const Instruction &instruction : rank.instructions) {
    switch (instruction.kind) {
    case InstructionKind::kernel:
      break;
    case InstructionKind::send:
      traffic.messages[{rank.rank, uint32_t(instruction.peer), instruction.tag}]
          .push_back(rank.buffers[instruction.inputs[0]].type.str());
      break;
    case InstructionKind::recv:
      traffic.messages[{uint32_t(instruction.peer), rank.rank, instruction.tag}]
          .push_back(rank.buffers[instruction.outputs[0]].type.str());
      break;
    default: {
      std::string signature =
          std::string(instructionKindName(instruction.kind)) + " " +
          std::string(reduceOpName(instruction.reduce)) + " root " +
          std::to_string(instruction.peer) + " " +
          rank.buffers[instruction.inputs[0]].type.str();
      traffic.collectives[instruction.group].push_back(signature);
    }
    }
  }
  return traffic;
}

/// With every rank present: members of a group issue the same collectives
/// in the same order, and every send has the matching recv.
static Status checkTrafficMatches(const Program &program) {
  std::vector<Traffic> traffic;
  for (const RankProgram &rank : program.ranks)
    traffic.push_back(collectTraffic(rank));
  for (size_t g = 0; g < program.groups.size(); ++g) {
    const std::vector<uint32_t> &group = program.groups[g];
    const RankProgram *first = program.findRank(group[0]);
    auto reference = traffic[first - program.ranks.data()].collectives[g];
    for (uint32_t member : group) {
      const RankProgram *rank = program.findRank(member);
      if (traffic[rank - program.ranks.data()].collectives[g] != reference)
        return error("ranks ", group[0], " and ", member,
                     " issue different collectives on group ", g);
    }
  }
  std::map<std::tuple<uint32_t, uint32_t, int32_t>, std::vector<std::string>>
      sent, received;
  for (size_t r = 0; r < program.ranks.size(); ++r)
    for (const auto &[channel, messages] : traffic[r].messages)
      (std::get<0>(channel) == program.ranks[r].rank ? sent : received)
          .emplace(channel, messages);
  if (sent != received) {
    for (const auto &[channel, messages] : sent)
      if (received[channel] != messages)
        return error("rank ", std::get<0>(channel), " sends ", messages.size(),
                     " message(s) with tag ", std::get<2>(channel), " to rank ",
                     std::get<1>(channel), " that it does not receive alike");
    return error("a rank receives a message that no rank sends");
  }
  return Status::ok();
}

Status validateProgram(const Program &program) {
  if (program.worldSize < 1 || program.worldSize > kMaxWorldSize)
    return error("world size ", program.worldSize, " is out of range");
  if (program.alignment < 1 || program.alignment > 4096 ||
      (program.alignment & (program.alignment - 1)))
    return error("alignment ", program.alignment,
                 " is not a power of two up to 4096");
  for (size_t g = 0; g < program.groups.size(); ++g) {
    const std::vector<uint32_t> &group = program.groups[g];
    if (group.empty())
      return error("group ", g, " is empty");
    std::set<uint32_t> seen;
    for (uint32_t member : group) {
      if (member >= program.worldSize)
        return error("group ", g, " names rank ", member, " outside the ",
                     program.worldSize, "-rank world");
      if (!seen.insert(member).second)
        return error("group ", g, " names rank ", member, " twice");
    }
  }
  if (program.ranks.empty())
    return error("the program has no rank programs");
  if (program.training && (program.training->modelFlops < 0 ||
                           program.training->vocabSize < 1))
    return error("training information needs non-negative model FLOPs and a "
                 "positive vocabulary size");
  std::set<uint32_t> ranks;
  for (const RankProgram &rank : program.ranks) {
    if (rank.rank >= program.worldSize)
      return error("rank program ", rank.rank, " is outside the ",
                   program.worldSize, "-rank world");
    if (!ranks.insert(rank.rank).second)
      return error("rank ", rank.rank, " has two programs");
    GALVATRON_RETURN_IF_ERROR(validateRankProgram(program, rank).withContext(
        "rank " + std::to_string(rank.rank)));
  }
  if (program.ranks.size() == program.worldSize)
    return checkTrafficMatches(program);
  return Status::ok();
}

} // namespace galvatron::runtime
