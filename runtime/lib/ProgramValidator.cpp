//===- ProgramValidator.cpp - Semantic checks of a program ----------------===//
//
// A stage's program is checked once for all of its ranks: rank-dependent
// integers are affine in the rank's positions in its groups with
// non-negative coefficients, so every bound a kernel or a parameter slice
// needs holds for every rank when it holds at the lowest corner (every
// position 0) and at the highest (every position the last of its group).
// The memory plan is checked on the timelines the schedule runs: the
// blocks of one micro-batch in their order (the frame, in one slot whose
// copies never meet), and each block that is not slotted on its own.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Runtime/ProgramValidator.h"

#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

namespace galvatron::runtime {

std::string describeInstruction(const ProgramBody &program, size_t index) {
  const Instruction &instruction = program.instructions[index];
  std::string text = "instruction " + std::to_string(index) + " (";
  if (instruction.kind == InstructionKind::kernel)
    text += "kernel '" + instruction.kernel + "'";
  else
    text += instructionKindName(instruction.kind);
  if (instruction.event >= 0)
    text += " of event " + std::to_string(instruction.event);
  if (instruction.layer >= 0 &&
      size_t(instruction.layer) < program.layers.size())
    text += " in layer '" + program.layers[instruction.layer] + "'";
  return text + ")";
}

static std::string describeBuffer(const ProgramBody &program, uint32_t index) {
  std::string text = "buffer " + std::to_string(index);
  if (index < program.buffers.size() && !program.buffers[index].name.empty())
    text += " ('" + program.buffers[index].name + "')";
  return text;
}

static std::string describeStage(const StageProgram &stage) {
  return "stage " + std::to_string(stage.stage);
}

//===----------------------------------------------------------------------===//
// Groups and rank-dependent integers
//===----------------------------------------------------------------------===//

static Status checkGroup(const Program &program, const Group &group) {
  uint64_t members = 1, span = 0;
  std::vector<GroupAxis> axes = group.axes;
  for (const GroupAxis &axis : axes) {
    if (axis.size < 1 || axis.stride < 1)
      return error("axis {", axis.size, ", ", axis.stride,
                   "} needs a positive size and stride");
    members *= axis.size;
    span += uint64_t(axis.size - 1) * axis.stride;
    if (members > program.worldSize || span >= program.worldSize)
      return error("axis {", axis.size, ", ", axis.stride,
                   "} reaches beyond the ", program.worldSize, "-rank world");
  }
  // Coordinates may not overlap: each stride is a multiple of the extent
  // of the axes below it.
  std::sort(axes.begin(), axes.end(),
            [](const GroupAxis &a, const GroupAxis &b) {
              return a.stride < b.stride;
            });
  for (size_t a = 1; a < axes.size(); ++a)
    if (axes[a].stride % (uint64_t(axes[a - 1].stride) * axes[a - 1].size))
      return error("axes {", axes[a - 1].size, ", ", axes[a - 1].stride,
                   "} and {", axes[a].size, ", ", axes[a].stride,
                   "} overlap");
  return Status::ok();
}

/// Terms of an integer (or of `count` integers) are well formed: existing
/// elements and groups, and coefficients small enough that no value can
/// overflow.
static Status checkTerms(const Program &program,
                         const std::vector<RankTerm> &terms, size_t count) {
  for (const RankTerm &term : terms) {
    if (term.index >= count)
      return error("a rank term names element ", term.index, " of ", count);
    if (term.group >= program.groups.size())
      return error("a rank term names group ", term.group,
                   ", which does not exist");
    if (term.coefficient < 0 ||
        term.coefficient > kMaxElements / program.groups[term.group].size())
      return error("a rank term has coefficient ", term.coefficient,
                   " outside [0, ", kMaxElements, " / group size]");
  }
  return Status::ok();
}

/// An integer at the lowest (every position 0) or highest (every position
/// the last of its group) corner of the ranks.
static int64_t atCorner(const Program &program, int64_t base,
                        const std::vector<RankTerm> &terms, uint32_t index,
                        bool high) {
  if (high)
    for (const RankTerm &term : terms)
      if (term.index == index)
        base += term.coefficient *
                int64_t(program.groups[term.group].size() - 1);
  return base;
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

static bool overlap(std::pair<uint64_t, uint64_t> a,
                    std::pair<uint64_t, uint64_t> b) {
  return a.first < b.second && b.first < a.second;
}

static bool overlap(const Buffer &a, const Buffer &b) {
  return overlap(byteRange(a), byteRange(b));
}

/// The slot region of slot 0 and of all slots.
static std::pair<uint64_t, uint64_t> slotRange(const Schedule &schedule) {
  return {schedule.slotOffset, schedule.slotOffset + schedule.slotSize};
}
static std::pair<uint64_t, uint64_t> slotsRange(const Schedule &schedule) {
  return {schedule.slotOffset,
          schedule.slotOffset + schedule.slots * schedule.slotSize};
}

static Status checkBuffer(const Program &program, const StageProgram &stage,
                          uint32_t index) {
  const Buffer &buffer = stage.buffers[index];
  GALVATRON_RETURN_IF_ERROR(checkShape(buffer.type.shape));
  uint64_t size = buffer.type.byteSize();
  if (buffer.offset > stage.arenaSize || size > stage.arenaSize - buffer.offset)
    return error("bytes [", buffer.offset, ", ", buffer.offset + size,
                 ") lie outside the arena of ", stage.arenaSize, " bytes");
  if (!buffer.viewOf) {
    if (buffer.offset % program.alignment)
      return error("offset ", buffer.offset, " is not a multiple of the ",
                   program.alignment, "-byte alignment");
    auto [begin, end] = slotRange(stage.schedule);
    if (buffer.slotted && (buffer.offset < begin || buffer.offset + size > end))
      return error("is slotted but lies outside slot 0's bytes [", begin, ", ",
                   end, ")");
    return Status::ok();
  }
  if (buffer.slotted)
    return error("is a slotted view; views follow their root");
  uint32_t root = *buffer.viewOf;
  if (root >= stage.buffers.size() || root == index)
    return error("is a view of buffer ", root, ", which does not exist");
  const Buffer &rootBuffer = stage.buffers[root];
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

static Status checkParameter(const Program &program, const StageProgram &stage,
                             const Parameter &parameter) {
  if (parameter.name.empty())
    return error("has no name");
  const TensorType &type = stage.buffers[parameter.buffer].type;
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
    if (!parameter.sliceStart.empty() || !parameter.sliceTerms.empty() ||
        !parameter.sourceShape.empty())
      return error("has a slice start or source shape but no full shape");
    return Status::ok();
  }
  if (!parameter.sourceShape.empty()) {
    GALVATRON_RETURN_IF_ERROR(checkShape(parameter.sourceShape));
    if (!refinesShape(parameter.fullShape, parameter.sourceShape))
      return error("full shape ", shapeString(parameter.fullShape),
                   " does not refine the source shape ",
                   shapeString(parameter.sourceShape));
  }
  GALVATRON_RETURN_IF_ERROR(checkShape(parameter.fullShape));
  if (parameter.fullShape.size() != type.shape.size() ||
      parameter.sliceStart.size() != type.shape.size())
    return error("slice of ", shapeString(parameter.fullShape), " at ",
                 shapeString(parameter.sliceStart), " does not fit ",
                 type.str());
  GALVATRON_RETURN_IF_ERROR(
      checkTerms(program, parameter.sliceTerms, type.shape.size()));
  // A slice may extend past the full shape when it is one of the equal
  // blocks of a padded dimension (a padded vocabulary's rows): the elements
  // past it are padding.
  for (bool high : {false, true})
    for (size_t dim = 0; dim < type.shape.size(); ++dim) {
      int64_t start = atCorner(program, parameter.sliceStart[dim],
                               parameter.sliceTerms, uint32_t(dim), high);
      int64_t size = type.shape[dim];
      bool padded = start + size > parameter.fullShape[dim];
      if (start < 0 || (padded && (size == 0 || start % size != 0)))
        return error("slice ", type.str(), " starts at ", start,
                     " in dimension ", dim, " on some rank, outside ",
                     shapeString(parameter.fullShape));
    }
  return Status::ok();
}

static Status checkBindings(const StageProgram &stage,
                            const std::vector<Binding> &bindings,
                            std::string_view what) {
  std::set<std::string> names;
  for (const Binding &binding : bindings) {
    if (binding.buffer >= stage.buffers.size())
      return error(what, " '", binding.name, "' refers to buffer ",
                   binding.buffer, ", which does not exist");
    if (binding.name.empty())
      return error("an ", what, " has no name");
    if (!names.insert(binding.name).second)
      return error(what, " '", binding.name, "' is bound twice");
    if (binding.block < -1 || binding.block >= int32_t(stage.blocks.size()) ||
        (binding.block >= 0 && !stage.blocks[binding.block].slotted))
      return error(what, " '", binding.name, "' names block ", binding.block,
                   ", which is not a slotted block of the program");
    if (binding.block >= 0 && what != "input")
      return error("output '", binding.name, "' cannot be per micro-batch");
    const Buffer &buffer = stage.buffers[binding.buffer];
    if (binding.block >= 0 && buffer.type.rank() == 0)
      return error("input '", binding.name,
                   "' is per micro-batch but has no rows (a scalar)");
    if (what == "output" && stage.buffers[stage.rootOf(binding.buffer)].slotted)
      return error("output '", binding.name, "' is bound to a slotted buffer");
  }
  return Status::ok();
}

static Status checkRoles(const Program &program, const StageProgram &stage) {
  std::vector<Role> roles(stage.buffers.size(), Role::none);
  std::set<std::string> names;
  auto claim = [&](uint32_t buffer, Role role,
                   const std::string &what) -> Status {
    if (buffer >= stage.buffers.size())
      return error(what, " refers to buffer ", buffer,
                   ", which does not exist");
    if (stage.buffers[buffer].viewOf)
      return error(what, " is bound to view ", describeBuffer(stage, buffer),
                   " instead of a buffer of its own");
    if (roles[buffer] != Role::none)
      return error(what, " is bound to ", describeBuffer(stage, buffer),
                   ", which already holds a parameter, constant or input");
    if (role != Role::input && stage.buffers[buffer].slotted)
      return error(what, " is bound to slotted ",
                   describeBuffer(stage, buffer));
    roles[buffer] = role;
    return Status::ok();
  };
  for (const Parameter &parameter : stage.parameters) {
    std::string what = "parameter '" + parameter.name + "'";
    GALVATRON_RETURN_IF_ERROR(claim(parameter.buffer, Role::parameter, what));
    GALVATRON_RETURN_IF_ERROR(
        checkParameter(program, stage, parameter).withContext(what));
    if (!names.insert(parameter.name).second)
      return error(what, " is declared twice");
  }
  for (size_t i = 0; i < stage.constants.size(); ++i) {
    const Constant &constant = stage.constants[i];
    std::string what = "constant " + std::to_string(i);
    GALVATRON_RETURN_IF_ERROR(claim(constant.buffer, Role::constant, what));
    uint64_t expected = stage.buffers[constant.buffer].type.byteSize();
    if (constant.data.size() != expected)
      return error(what, " holds ", constant.data.size(), " bytes, but ",
                   describeBuffer(stage, constant.buffer), " needs ", expected);
  }
  GALVATRON_RETURN_IF_ERROR(checkBindings(stage, stage.inputs, "input"));
  GALVATRON_RETURN_IF_ERROR(checkBindings(stage, stage.outputs, "output"));
  for (const Binding &input : stage.inputs)
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

/// Results never share bytes with each other; a result shares bytes with an
/// operand only when it occupies exactly the operand's bytes and `mayOverwrite`
/// (result, operand) allows it.
template <typename MayOverwrite>
static Status checkOperandOverlap(const StageProgram &stage,
                                  const Instruction &instruction,
                                  MayOverwrite mayOverwrite) {
  const auto &buffers = stage.buffers;
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

static Status checkKernel(const Program &program, const StageProgram &stage,
                          const Instruction &instruction) {
  const KernelSpec *spec = findKernel(instruction.kernel);
  if (!spec)
    return error("unknown kernel '", instruction.kernel, "'");
  for (const Attribute &attribute : instruction.attributes) {
    if (attribute.terms.empty())
      continue;
    if (attribute.kind == AttributeKind::real)
      return error("attribute '", attribute.name,
                   "' is a float and cannot depend on the rank");
    GALVATRON_RETURN_IF_ERROR(
        checkTerms(program, attribute.terms,
                   attribute.kind == AttributeKind::integer
                       ? 1
                       : attribute.integers.size())
            .withContext("attribute '" + attribute.name + "'"));
  }
  for (bool high : {false, true}) {
    std::vector<Attribute> attributes = instruction.attributes;
    bool symbolic = false;
    for (Attribute &attribute : attributes) {
      symbolic |= !attribute.terms.empty();
      attribute.integer =
          atCorner(program, attribute.integer, attribute.terms, 0, high);
      for (size_t i = 0; i < attribute.integers.size(); ++i)
        attribute.integers[i] = atCorner(program, attribute.integers[i],
                                         attribute.terms, uint32_t(i), high);
    }
    if (high && !symbolic)
      break;
    Status status = verifyKernelCall(
        makeKernelCall(*spec, stage, instruction, attributes));
    if (!status.isOk())
      return symbolic ? std::move(status).withContext(
                            high ? "on the rank with the highest positions"
                                 : "on the rank with the lowest positions")
                      : std::move(status);
  }
  return checkOperandOverlap(stage, instruction,
                             [spec](unsigned output, unsigned input) {
                               return spec->mayOverwrite(output, input);
                             });
}

static Status checkCollective(const Program &program, const StageProgram &stage,
                              const Instruction &instruction) {
  if (instruction.group >= program.groups.size())
    return error("group ", instruction.group, " does not exist");
  const Group &group = program.groups[instruction.group];
  if (instruction.inputs.size() != 1 || instruction.outputs.size() != 1)
    return error("takes one operand and one result");
  if (unsigned(instruction.reduce) >= kNumReduceOps)
    return error("unknown reduction ", unsigned(instruction.reduce));
  const TensorType &in = stage.buffers[instruction.inputs[0]].type;
  const TensorType &out = stage.buffers[instruction.outputs[0]].type;
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
      (instruction.peer < 0 || instruction.peer >= members))
    return error("root position ", instruction.peer, " is not in a group of ",
                 members);
  return checkOperandOverlap(stage, instruction,
                             [inPlace](unsigned output, unsigned input) {
                               return inPlace && output == 0 && input == 0;
                             });
}

static Status checkInstruction(const Program &program,
                               const StageProgram &stage,
                               const Instruction &instruction) {
  for (uint32_t index : instruction.inputs)
    if (index >= stage.buffers.size())
      return error("operand buffer ", index, " does not exist");
  for (uint32_t index : instruction.outputs)
    if (index >= stage.buffers.size())
      return error("result buffer ", index, " does not exist");
  if (instruction.layer < -1 ||
      (instruction.layer >= 0 && size_t(instruction.layer) >= stage.layers.size()))
    return error("layer index ", instruction.layer, " does not exist");
  if (instruction.kind != InstructionKind::kernel)
    for (const Attribute &attribute : instruction.attributes)
      if (!attribute.terms.empty())
        return error("only kernel attributes may depend on the rank");
  bool started = isCommunication(instruction.kind) && instruction.event >= 0;
  if (instruction.event < -1 || instruction.event >= kMaxEvents ||
      (instruction.kind == InstructionKind::kernel && instruction.event != -1))
    return error("event ", instruction.event,
                 instruction.kind == InstructionKind::kernel
                     ? " on a kernel (only communication is started)"
                     : " is out of range");
  if (instruction.lastMicroBatch && !started)
    return error("only a started communication instruction may run for the "
                 "last micro-batch only");
  switch (instruction.kind) {
  case InstructionKind::kernel:
    return checkKernel(program, stage, instruction);
  case InstructionKind::allReduce:
  case InstructionKind::allGather:
  case InstructionKind::reduceScatter:
  case InstructionKind::allToAll:
  case InstructionKind::broadcast:
    return checkCollective(program, stage, instruction);
  case InstructionKind::send:
  case InstructionKind::recv: {
    bool send = instruction.kind == InstructionKind::send;
    if (instruction.inputs.size() != (send ? 1u : 0u) ||
        instruction.outputs.size() != (send ? 0u : 1u))
      return error(send ? "send takes one operand and no result"
                        : "recv takes one result and no operand");
    if (instruction.tag < 0)
      return error("tag ", instruction.tag, " is negative");
    if (instruction.peer < 0 ||
        size_t(instruction.peer) >= program.stages.size())
      return error("peer stage ", instruction.peer, " is not a stage of the ",
                   program.stages.size(), "-stage pipeline");
    if (uint32_t(instruction.peer) == stage.stage)
      return error("peer stage ", instruction.peer, " is this stage itself");
    return Status::ok();
  }
  case InstructionKind::wait:
    if (!instruction.inputs.empty() || !instruction.outputs.empty() ||
        instruction.event < 0)
      return error("a wait names an event and no buffers");
    return Status::ok();
  }
  return error("unknown instruction kind ", unsigned(instruction.kind));
}

//===----------------------------------------------------------------------===//
// The schedule
//===----------------------------------------------------------------------===//

namespace {

/// One run of a block: for micro-batch `microBatch` (slotted blocks).
struct Event {
  uint32_t block;
  int64_t microBatch;
};

/// What the schedule runs, checked: events in order, the frame (the
/// slotted blocks every micro-batch runs, in order), and whether a
/// micro-batch is in flight (holds its slot) at each event.
struct ScheduleRuns {
  std::vector<Event> events;
  std::vector<uint32_t> frame;
  std::vector<bool> inFlight;
};

Expected<ScheduleRuns> checkSchedule(const StageProgram &stage) {
  const Schedule &schedule = stage.schedule;
  if (schedule.microBatches < 1 || schedule.slots < 1)
    return error("the schedule needs at least one micro-batch and one slot");
  if (schedule.slots > schedule.microBatches)
    return error("the schedule has ", schedule.slots, " slots for ",
                 schedule.microBatches, " micro-batches");
  ScheduleRuns runs;
  uint64_t total = 0;
  for (size_t p = 0; p < schedule.phases.size(); ++p) {
    const Phase &phase = schedule.phases[p];
    if (phase.iterations < 1 || phase.steps.empty())
      return error("phase ", p, " runs nothing");
    total += uint64_t(phase.iterations) * phase.steps.size();
    if (total > kMaxScheduleSteps)
      return error("the schedule runs more than ", kMaxScheduleSteps,
                   " blocks");
    for (const ScheduleStep &step : phase.steps)
      if (step.block >= stage.blocks.size())
        return error("phase ", p, " runs block ", step.block,
                     ", which does not exist");
  }
  if (total == 0)
    return error("the schedule runs nothing");
  for (const Phase &phase : schedule.phases)
    for (uint32_t i = 0; i < phase.iterations; ++i)
      for (const ScheduleStep &step : phase.steps)
        runs.events.push_back(Event{step.block, int64_t(step.microBatch) + i});

  // Every micro-batch runs the same slotted blocks in the same order: the
  // frame.
  std::vector<std::vector<uint32_t>> runsOf(schedule.microBatches);
  for (const Event &event : runs.events) {
    if (!stage.blocks[event.block].slotted)
      continue;
    if (event.microBatch < 0 || event.microBatch >= schedule.microBatches)
      return error("block '", stage.blocks[event.block].name,
                   "' runs for micro-batch ", event.microBatch, " outside [0, ",
                   schedule.microBatches, ")");
    runsOf[event.microBatch].push_back(event.block);
  }
  runs.frame = runsOf[0];
  for (size_t m = 1; m < runsOf.size(); ++m)
    if (runsOf[m] != runs.frame)
      return error("micro-batch ", m, " runs ", runsOf[m].size(),
                   " slotted block(s), not the ", runs.frame.size(),
                   " of micro-batch 0 in the same order");
  // A micro-batch holds its slot from its first block to its last; no
  // other micro-batch may use the slot meanwhile.
  std::vector<size_t> ran(schedule.microBatches, 0);
  std::vector<int64_t> holder(schedule.slots, -1);
  int64_t flying = 0;
  for (const Event &event : runs.events) {
    if (!stage.blocks[event.block].slotted) {
      runs.inFlight.push_back(flying > 0);
      continue;
    }
    int64_t &slot = holder[event.microBatch % schedule.slots];
    if (ran[event.microBatch]++ == 0) {
      if (slot >= 0)
        return error("micro-batch ", event.microBatch, " starts in slot ",
                     event.microBatch % schedule.slots, " while micro-batch ",
                     slot, " still holds it");
      slot = event.microBatch;
      ++flying;
    }
    runs.inFlight.push_back(true);
    if (ran[event.microBatch] == runs.frame.size()) {
      slot = -1;
      --flying;
    }
  }
  return runs;
}

/// The starts a wait at `wait` of `block` completes: the nearest started
/// instructions of its event before it in the block, consecutive (none
/// when the event was started in another block).
std::vector<uint32_t> startsOf(const StageProgram &stage, uint32_t block,
                               uint32_t wait) {
  int32_t event = stage.instructions[wait].event;
  auto isStart = [&](uint32_t i) {
    const Instruction &instruction = stage.instructions[i];
    return isCommunication(instruction.kind) && instruction.event == event;
  };
  std::vector<uint32_t> starts;
  uint32_t first = stage.blocks[block].first;
  uint32_t i = wait;
  while (i > first && !isStart(i - 1))
    --i;
  while (i > first && isStart(i - 1))
    starts.push_back(--i);
  return starts;
}

/// Asynchronous communication is well formed: a started instruction is
/// waited for later in its block (or, started for the last micro-batch
/// only, by a block that is not slotted and runs after it), is not started
/// again before its wait, and nothing else touches its buffers meanwhile
/// (no read of what it writes, no write of what it reads or writes).
Status checkEvents(const StageProgram &stage, const ScheduleRuns &runs) {
  std::vector<char> persistent(stage.buffers.size(), 0);
  for (const Parameter &parameter : stage.parameters)
    persistent[parameter.buffer] = 1;
  // Events started in one block and waited in another: where started,
  // where waited.
  std::map<int32_t, std::set<uint32_t>> lateStarts, lateWaits;
  // What the late events read and write.
  std::map<int32_t, std::vector<const Instruction *>> late;
  for (const Block &block : stage.blocks)
    for (uint32_t i = block.first; i < block.first + block.count; ++i) {
      const Instruction &instruction = stage.instructions[i];
      if (!instruction.lastMicroBatch)
        continue;
      if (!block.slotted)
        return error(describeInstruction(stage, i),
                     ": only a slotted block runs per micro-batch");
      for (auto *buffers : {&instruction.inputs, &instruction.outputs})
        for (uint32_t buffer : *buffers)
          if (!persistent[stage.rootOf(buffer)])
            return error(describeInstruction(stage, i),
                         ": started for the last micro-batch only, it may "
                         "use only parameters and state, not ",
                         describeBuffer(stage, buffer));
      late[instruction.event].push_back(&instruction);
    }
  for (uint32_t b = 0; b < stage.blocks.size(); ++b) {
    const Block &block = stage.blocks[b];
    // In-flight events, and the roots they read and write.
    std::map<int32_t, std::vector<uint32_t>> pending;
    std::map<uint32_t, int32_t> readBy, writtenBy;
    auto use = [&](const Instruction &instruction, int32_t event) {
      for (uint32_t input : instruction.inputs)
        readBy.emplace(stage.rootOf(input), event);
      for (uint32_t output : instruction.outputs)
        writtenBy[stage.rootOf(output)] = event;
    };
    // A block that is not slotted and waits for a late event starts with
    // it in flight.
    if (!block.slotted)
      for (uint32_t i = block.first; i < block.first + block.count; ++i) {
        const Instruction &instruction = stage.instructions[i];
        if (instruction.kind == InstructionKind::wait &&
            late.count(instruction.event))
          for (const Instruction *start : late[instruction.event])
            use(*start, instruction.event);
      }
    auto release = [&](int32_t event) {
      for (auto *roots : {&readBy, &writtenBy})
        for (auto it = roots->begin(); it != roots->end();)
          it = it->second == event ? roots->erase(it) : std::next(it);
    };
    for (uint32_t i = block.first; i < block.first + block.count; ++i) {
      const Instruction &instruction = stage.instructions[i];
      int32_t event = instruction.event;
      auto busy = [&](const std::map<uint32_t, int32_t> &roots,
                      uint32_t buffer) -> Status {
        auto it = roots.find(stage.rootOf(buffer));
        if (it == roots.end())
          return Status::ok();
        return error(describeInstruction(stage, i), " touches ",
                     describeBuffer(stage, buffer), " while event ",
                     it->second, " is in flight with it");
      };
      if (instruction.kind == InstructionKind::wait) {
        if (pending.erase(event)) {
          release(event);
          continue;
        }
        if (block.slotted || !late.count(event))
          return error(describeInstruction(stage, i), ": block '", block.name,
                       "' started no event ", event, " before it");
        release(event);
        lateWaits[event].insert(b);
        continue;
      }
      for (uint32_t input : instruction.inputs)
        GALVATRON_RETURN_IF_ERROR(busy(writtenBy, input));
      for (uint32_t output : instruction.outputs) {
        GALVATRON_RETURN_IF_ERROR(busy(writtenBy, output));
        GALVATRON_RETURN_IF_ERROR(busy(readBy, output));
      }
      if (event < 0)
        continue;
      bool continues = i > block.first &&
                       isCommunication(stage.instructions[i - 1].kind) &&
                       stage.instructions[i - 1].event == event;
      if ((pending.count(event) || lateStarts.count(event)) && !continues)
        return error(describeInstruction(stage, i), ": starts event ", event,
                     " again before waiting for it");
      if (instruction.lastMicroBatch) {
        lateStarts[event].insert(b);
      } else {
        pending[event].push_back(i);
      }
      use(instruction, event);
    }
    if (!pending.empty())
      return error("block '", block.name, "' ends with event ",
                   pending.begin()->first, " in flight (no wait)");
  }
  // Late events: started by the last micro-batch's run of their block,
  // waited once after it.
  std::map<int32_t, bool> inFlight;
  for (const auto &[event, blocks] : lateStarts)
    if (!lateWaits.count(event))
      return error("event ", event, " is started and never waited for");
  int64_t last = int64_t(stage.schedule.microBatches) - 1;
  for (const Event &run : runs.events) {
    const Block &block = stage.blocks[run.block];
    for (auto &[event, blocks] : lateStarts)
      if (blocks.count(run.block) && run.microBatch == last)
        inFlight[event] = true;
    for (auto &[event, blocks] : lateWaits) {
      if (!blocks.count(run.block))
        continue;
      if (!inFlight[event])
        return error("block '", block.name, "' waits for event ", event,
                     " before the last micro-batch starts it");
      inFlight[event] = false;
    }
  }
  for (const auto &[event, flying] : inFlight)
    if (flying)
      return error("the schedule ends with event ", event, " in flight");
  return Status::ok();
}

} // namespace

//===----------------------------------------------------------------------===//
// The memory plan
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kNever = -2;

/// One step of a timeline: an instruction of `block`, or (instruction -1)
/// the writes of the block's per-micro-batch inputs before its first
/// instruction.
struct Step {
  int64_t instruction;
  uint32_t block;
};

/// When each root's bytes are in use along a timeline: from its first write
/// (-1: before the first step) to its last access (the step count: after
/// the last step); kNever for roots the timeline does not use.
struct Liveness {
  std::vector<int64_t> start, end;
  bool used(uint32_t root) const { return start[root] != kNever; }
};

/// The timelines the schedule runs and what they share: roots live
/// throughout (parameters, state, constants, and inputs given once to a
/// schedule of several runs), the frame of one micro-batch, and every
/// block that is not slotted on its own.
struct Timelines {
  std::vector<char> isStatic;
  std::vector<Step> frame;
  /// Per block of the frame: the end of its steps in `frame`.
  std::vector<size_t> frameEnds;
  Liveness frameLive;
  std::map<uint32_t, std::pair<std::vector<Step>, Liveness>> unslotted;
};

template <typename F>
void forEachAccess(const StageProgram &stage, const Step &step, F &&f) {
  if (step.instruction < 0) {
    for (const Binding &input : stage.inputs)
      if (input.block == int32_t(step.block))
        f(stage.rootOf(input.buffer), /*write=*/true);
    return;
  }
  const Instruction &instruction = stage.instructions[step.instruction];
  if (instruction.kind == InstructionKind::wait) {
    // What the started instructions use stays in use until here (an
    // operand reduced in place lives on as the result).
    for (uint32_t start : startsOf(stage, step.block, uint32_t(step.instruction))) {
      const Instruction &started = stage.instructions[start];
      for (uint32_t input : started.inputs)
        if (std::none_of(started.outputs.begin(), started.outputs.end(),
                         [&](uint32_t output) {
                           return sameBytes(stage.buffers[input],
                                            stage.buffers[output]);
                         }))
          f(stage.rootOf(input), /*write=*/false);
      for (uint32_t output : started.outputs)
        f(stage.rootOf(output), /*write=*/false);
    }
    return;
  }
  for (uint32_t input : instruction.inputs)
    f(stage.rootOf(input), /*write=*/false);
  for (uint32_t output : instruction.outputs)
    f(stage.rootOf(output), /*write=*/true);
}

std::vector<Step> stepsOf(const StageProgram &stage, uint32_t blockIndex) {
  std::vector<Step> steps;
  const Block &block = stage.blocks[blockIndex];
  if (std::any_of(stage.inputs.begin(), stage.inputs.end(),
                  [&](const Binding &input) {
                    return input.block == int32_t(blockIndex);
                  }))
    steps.push_back(Step{-1, blockIndex});
  for (uint32_t i = block.first; i < block.first + block.count; ++i)
    steps.push_back(Step{int64_t(i), blockIndex});
  return steps;
}

std::string describeStep(const StageProgram &stage, const Step &step) {
  if (step.instruction < 0)
    return "the inputs of block '" + stage.blocks[step.block].name + "'";
  return describeInstruction(stage, size_t(step.instruction));
}

/// Live ranges of the dynamic roots along `steps`; `seeded` roots are
/// written before the first step, and with `outputs` the outputs are read
/// after the last.
Expected<Liveness> computeLiveness(const StageProgram &stage,
                                   const std::vector<Step> &steps,
                                   const std::vector<char> &isStatic,
                                   const std::vector<uint32_t> &seeded,
                                   bool outputs) {
  size_t count = stage.buffers.size();
  Liveness live{std::vector<int64_t>(count, kNever),
                std::vector<int64_t>(count, kNever)};
  std::set<uint32_t> constants;
  for (const Constant &constant : stage.constants)
    constants.insert(constant.buffer);
  for (uint32_t root : seeded)
    live.start[root] = live.end[root] = -1;
  for (size_t t = 0; t < steps.size(); ++t) {
    Status status;
    forEachAccess(stage, steps[t], [&](uint32_t root, bool write) {
      if (!status.isOk())
        return;
      if (isStatic[root]) {
        if (write && constants.count(root))
          status = error(describeStep(stage, steps[t]), ": writes ",
                         describeBuffer(stage, root),
                         ", which holds a constant");
        return;
      }
      if (!write && live.start[root] == kNever) {
        status = error(describeStep(stage, steps[t]), ": reads ",
                       describeBuffer(stage, root), " before it is written");
        return;
      }
      if (live.start[root] == kNever)
        live.start[root] = int64_t(t);
      live.end[root] = std::max(live.end[root], int64_t(t));
    });
    GALVATRON_RETURN_IF_ERROR(std::move(status));
  }
  if (outputs)
    for (const Binding &output : stage.outputs) {
      uint32_t root = stage.rootOf(output.buffer);
      if (isStatic[root])
        continue;
      if (live.start[root] == kNever)
        return error("output '", output.name,
                     "' is never written by the last block of the schedule");
      live.end[root] = int64_t(steps.size());
    }
  return live;
}

/// Whether step `at` writes root `later` over root `earlier`, which it reads
/// for the last time (in place).
bool handsOver(const StageProgram &stage, const std::vector<Step> &steps,
               uint32_t earlier, uint32_t later, int64_t at) {
  if (at < 0 || at >= int64_t(steps.size()) || steps[at].instruction < 0)
    return false;
  const Instruction &instruction = stage.instructions[steps[at].instruction];
  bool reads = std::any_of(
      instruction.inputs.begin(), instruction.inputs.end(),
      [&](uint32_t b) { return stage.rootOf(b) == earlier; });
  bool writes = std::any_of(
      instruction.outputs.begin(), instruction.outputs.end(),
      [&](uint32_t b) { return stage.rootOf(b) == later; });
  return reads && writes;
}

/// The used roots of `live` with bytes, by offset.
std::vector<uint32_t> usedRoots(const StageProgram &stage,
                                const Liveness &live) {
  std::vector<uint32_t> roots;
  for (uint32_t b = 0; b < stage.buffers.size(); ++b)
    if (!stage.buffers[b].viewOf && live.used(b) &&
        stage.buffers[b].type.byteSize() > 0)
      roots.push_back(b);
  std::stable_sort(roots.begin(), roots.end(), [&](uint32_t a, uint32_t b) {
    return stage.buffers[a].offset < stage.buffers[b].offset;
  });
  return roots;
}

/// No two roots share bytes while both are live, except where an
/// instruction hands an operand's bytes to its result.
Status checkConflicts(const StageProgram &stage, const std::vector<Step> &steps,
                      const Liveness &live) {
  std::vector<uint32_t> roots = usedRoots(stage, live);
  for (size_t i = 0; i < roots.size(); ++i) {
    uint32_t a = roots[i];
    uint64_t aEnd = byteRange(stage.buffers[a]).second;
    for (size_t j = i + 1;
         j < roots.size() && stage.buffers[roots[j]].offset < aEnd; ++j) {
      uint32_t b = roots[j];
      int64_t xs = live.start[a], xe = live.end[a];
      int64_t ys = live.start[b], ye = live.end[b];
      if (xe < ys || ye < xs)
        continue;
      if ((xe == ys && handsOver(stage, steps, a, b, ys)) ||
          (ye == xs && handsOver(stage, steps, b, a, xs)))
        continue;
      return error(describeBuffer(stage, a), " and ", describeBuffer(stage, b),
                   " share bytes while both are live (from ",
                   describeStep(stage, steps[std::max(std::max(xs, ys),
                                                      int64_t(0))]),
                   ")");
    }
  }
  return Status::ok();
}

/// Bytes live at each step of a timeline (roots of one byte range handed
/// over in place counted once).
std::vector<uint64_t> liveBytes(const StageProgram &stage,
                                const std::vector<Step> &steps,
                                const Liveness &live) {
  size_t count = steps.size();
  std::vector<int64_t> delta(count + 1, 0);
  auto add = [&](int64_t from, int64_t to, int64_t bytes) {
    from = std::max<int64_t>(from, 0);
    to = std::min<int64_t>(to, int64_t(count) - 1);
    if (from > to)
      return;
    delta[from] += bytes;
    delta[to + 1] -= bytes;
  };
  std::map<std::pair<uint64_t, uint64_t>, std::vector<uint32_t>> byRange;
  for (uint32_t root : usedRoots(stage, live)) {
    auto range = byteRange(stage.buffers[root]);
    add(live.start[root], live.end[root], int64_t(range.second - range.first));
    byRange[range].push_back(root);
  }
  for (auto &[range, roots] : byRange) {
    std::sort(roots.begin(), roots.end(), [&](uint32_t a, uint32_t b) {
      return live.start[a] < live.start[b];
    });
    for (size_t i = 1; i < roots.size(); ++i)
      if (live.end[roots[i - 1]] == live.start[roots[i]])
        add(live.start[roots[i]], live.start[roots[i]],
            -int64_t(range.second - range.first));
  }
  std::vector<uint64_t> bytes(count, 0);
  int64_t running = 0;
  for (size_t t = 0; t < count; ++t) {
    running += delta[t];
    bytes[t] = uint64_t(running);
  }
  return bytes;
}

Expected<Timelines> buildTimelines(const StageProgram &stage,
                                   const ScheduleRuns &runs) {
  Timelines timelines;
  size_t count = stage.buffers.size();
  timelines.isStatic.assign(count, 0);
  for (const Parameter &parameter : stage.parameters)
    timelines.isStatic[parameter.buffer] = 1;
  for (const Constant &constant : stage.constants)
    timelines.isStatic[constant.buffer] = 1;
  // Inputs given once stay for every run of a longer schedule; with one
  // run they live from before it to their last use.
  bool once = runs.events.size() == 1;
  std::vector<uint32_t> seeded;
  for (const Binding &input : stage.inputs) {
    if (input.block >= 0)
      continue;
    if (once)
      seeded.push_back(input.buffer);
    else
      timelines.isStatic[input.buffer] = 1;
  }
  uint32_t last = runs.events.back().block;
  std::set<uint32_t> seen;
  for (uint32_t block : runs.frame) {
    if (!seen.insert(block).second)
      return error("block '", stage.blocks[block].name,
                   "' runs twice for one micro-batch");
    std::vector<Step> steps = stepsOf(stage, block);
    timelines.frame.insert(timelines.frame.end(), steps.begin(), steps.end());
    timelines.frameEnds.push_back(timelines.frame.size());
  }
  bool outputsInFrame = !stage.outputs.empty() && stage.blocks[last].slotted;
  if (outputsInFrame)
    return error("outputs must be written by a block that is not slotted, "
                 "and the schedule ends with block '",
                 stage.blocks[last].name, "'");
  Expected<Liveness> frame = computeLiveness(
      stage, timelines.frame, timelines.isStatic,
      once && stage.blocks[last].slotted ? seeded : std::vector<uint32_t>{},
      false);
  if (!frame)
    return frame.takeStatus().withContext("the frame of a micro-batch");
  timelines.frameLive = std::move(*frame);
  for (const Event &event : runs.events) {
    if (stage.blocks[event.block].slotted ||
        timelines.unslotted.count(event.block))
      continue;
    std::vector<Step> steps = stepsOf(stage, event.block);
    Expected<Liveness> live = computeLiveness(
        stage, steps, timelines.isStatic,
        once ? seeded : std::vector<uint32_t>{}, event.block == last);
    if (!live)
      return live.takeStatus().withContext("block '" +
                                           stage.blocks[event.block].name + "'");
    timelines.unslotted.emplace(event.block,
                                std::make_pair(std::move(steps), std::move(*live)));
  }
  return timelines;
}

/// Roots live throughout never share bytes with each other or with any
/// root a timeline uses.
Status checkStaticRoots(const StageProgram &stage, const Timelines &timelines) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<uint32_t> roots;
  for (uint32_t b = 0; b < stage.buffers.size(); ++b)
    if (timelines.isStatic[b] && stage.buffers[b].type.byteSize() > 0)
      roots.push_back(b);
  std::sort(roots.begin(), roots.end(), [&](uint32_t a, uint32_t b) {
    return stage.buffers[a].offset < stage.buffers[b].offset;
  });
  for (size_t i = 0; i < roots.size(); ++i) {
    if (stage.buffers[roots[i]].slotted)
      return error(describeBuffer(stage, roots[i]),
                   " is live throughout and cannot be slotted");
    if (i && overlap(stage.buffers[roots[i - 1]], stage.buffers[roots[i]]))
      return error(describeBuffer(stage, roots[i - 1]), " and ",
                   describeBuffer(stage, roots[i]),
                   " share bytes while both are live (throughout)");
    ranges.push_back(byteRange(stage.buffers[roots[i]]));
  }
  auto check = [&](const Liveness &live) -> Status {
    for (uint32_t root : usedRoots(stage, live)) {
      auto range = byteRange(stage.buffers[root]);
      auto it = std::lower_bound(
          ranges.begin(), ranges.end(), range,
          [](const auto &a, const auto &b) { return a.second <= b.first; });
      if (it != ranges.end() && overlap(*it, range))
        return error(describeBuffer(stage, root),
                     " shares bytes with a buffer live throughout");
    }
    return Status::ok();
  };
  GALVATRON_RETURN_IF_ERROR(check(timelines.frameLive));
  for (const auto &[block, timeline] : timelines.unslotted)
    GALVATRON_RETURN_IF_ERROR(check(timeline.second));
  return Status::ok();
}

Status checkMemoryPlan(const StageProgram &stage, const ScheduleRuns &runs) {
  Expected<Timelines> built = buildTimelines(stage, runs);
  if (!built)
    return built.takeStatus();
  const Timelines &timelines = *built;
  GALVATRON_RETURN_IF_ERROR(checkStaticRoots(stage, timelines));
  const Schedule &schedule = stage.schedule;

  // The frame: a slot's copies never meet, so what a micro-batch keeps
  // between its blocks lies in its slot, and what it uses only inside a
  // block lies outside every slot.
  const Liveness &frame = timelines.frameLive;
  GALVATRON_RETURN_IF_ERROR(checkConflicts(stage, timelines.frame, frame)
                                .withContext("the frame of a micro-batch"));
  for (uint32_t root : usedRoots(stage, frame)) {
    const Buffer &buffer = stage.buffers[root];
    size_t block = std::upper_bound(timelines.frameEnds.begin(),
                                    timelines.frameEnds.end(),
                                    size_t(std::max<int64_t>(frame.start[root], 0))) -
                   timelines.frameEnds.begin();
    bool crosses = block < timelines.frameEnds.size() &&
                   frame.end[root] >= int64_t(timelines.frameEnds[block]);
    if (crosses && !buffer.slotted)
      return error(describeBuffer(stage, root),
                   " is kept from one block of a micro-batch to the next but "
                   "is not slotted");
    if (!buffer.slotted && overlap(byteRange(buffer), slotsRange(schedule)))
      return error(describeBuffer(stage, root),
                   " is not slotted but lies in the slots' bytes");
  }
  for (const auto &[block, timeline] : timelines.unslotted) {
    const auto &[steps, live] = timeline;
    std::string what = "block '" + stage.blocks[block].name + "'";
    GALVATRON_RETURN_IF_ERROR(
        checkConflicts(stage, steps, live).withContext(what));
    bool inSlots = false;
    for (uint32_t root : usedRoots(stage, live)) {
      if (stage.buffers[root].slotted)
        return error(what, " is not slotted but uses slotted ",
                     describeBuffer(stage, root));
      inSlots |= overlap(byteRange(stage.buffers[root]), slotsRange(schedule));
    }
    for (size_t e = 0; e < runs.events.size() && inSlots; ++e)
      if (runs.events[e].block == block && runs.inFlight[e])
        return error(what, " uses the slots' bytes while a micro-batch is in "
                           "flight");
  }
  return Status::ok();
}

} // namespace

MemoryUsage analyzeMemory(const StageProgram &stage) {
  MemoryUsage usage;
  usage.arenaBytes = stage.arenaSize;
  for (const Parameter &parameter : stage.parameters)
    (parameter.state ? usage.stateBytes : usage.parameterBytes) +=
        stage.buffers[parameter.buffer].type.byteSize();
  Expected<ScheduleRuns> runs = checkSchedule(stage);
  if (!runs)
    return usage;
  Expected<Timelines> timelines = buildTimelines(stage, *runs);
  if (!timelines)
    return usage;
  uint64_t staticBytes = 0;
  for (uint32_t b = 0; b < stage.buffers.size(); ++b)
    if (timelines->isStatic[b])
      staticBytes += stage.buffers[b].type.byteSize();
  // Per block of the frame: its peak, and what a micro-batch keeps after it.
  const std::vector<Step> &frame = timelines->frame;
  std::vector<uint64_t> frameBytes =
      liveBytes(stage, frame, timelines->frameLive);
  size_t blocks = timelines->frameEnds.size();
  std::vector<uint64_t> peak(blocks, 0), held(blocks, 0);
  for (size_t k = 0, t = 0; k < blocks; ++k) {
    size_t end = timelines->frameEnds[k];
    for (; t < end; ++t)
      peak[k] = std::max(peak[k], frameBytes[t]);
    for (uint32_t root : usedRoots(stage, timelines->frameLive))
      if (timelines->frameLive.start[root] < int64_t(end) &&
          timelines->frameLive.end[root] >= int64_t(end))
        held[k] += stage.buffers[root].type.byteSize();
  }
  std::map<uint32_t, uint64_t> blockPeak;
  for (const auto &[block, timeline] : timelines->unslotted)
    for (uint64_t bytes : liveBytes(stage, timeline.first, timeline.second))
      blockPeak[block] = std::max(blockPeak[block], bytes);
  // Walk the schedule: every other micro-batch in flight holds what it
  // kept after its last block.
  std::map<int64_t, size_t> position;
  uint64_t kept = 0;
  for (const Event &event : runs->events) {
    uint64_t live = staticBytes;
    if (!stage.blocks[event.block].slotted) {
      live += kept + blockPeak[event.block];
    } else {
      size_t &done = position[event.microBatch];
      uint64_t own = done ? held[done - 1] : 0;
      live += kept - own + peak[done];
      kept = kept - own + held[done];
      ++done;
    }
    usage.peakLiveBytes = std::max(usage.peakLiveBytes, live);
  }
  return usage;
}

//===----------------------------------------------------------------------===//
// Stages
//===----------------------------------------------------------------------===//

Status validateStageProgram(const Program &program, const StageProgram &stage) {
  for (size_t g = 0; g < program.groups.size(); ++g)
    GALVATRON_RETURN_IF_ERROR(checkGroup(program, program.groups[g])
                                  .withContext("group family " +
                                               std::to_string(g)));
  const Schedule &schedule = stage.schedule;
  if (schedule.slotOffset % program.alignment ||
      schedule.slotSize % program.alignment ||
      schedule.slotOffset > stage.arenaSize ||
      (schedule.slotSize &&
       schedule.slots > (stage.arenaSize - schedule.slotOffset) /
                            schedule.slotSize))
    return error(schedule.slots, " slots of ", schedule.slotSize,
                 " bytes from offset ", schedule.slotOffset,
                 " do not fit the arena of ", stage.arenaSize,
                 " bytes aligned");
  for (uint32_t b = 0; b < stage.buffers.size(); ++b)
    GALVATRON_RETURN_IF_ERROR(
        checkBuffer(program, stage, b).withContext(describeBuffer(stage, b)));
  GALVATRON_RETURN_IF_ERROR(checkRoles(program, stage));
  uint32_t next = 0;
  for (const Block &block : stage.blocks) {
    if (block.first != next ||
        block.count > stage.instructions.size() - block.first)
      return error("block '", block.name, "' does not start where the block "
                   "before it ends, or runs past the instructions");
    next = block.first + block.count;
  }
  if (next != stage.instructions.size())
    return error("instructions from ", next, " belong to no block");
  for (size_t i = 0; i < stage.instructions.size(); ++i)
    GALVATRON_RETURN_IF_ERROR(
        checkInstruction(program, stage, stage.instructions[i])
            .withContext(describeInstruction(stage, i)));
  Expected<ScheduleRuns> runs = checkSchedule(stage);
  if (!runs)
    return runs.takeStatus();
  GALVATRON_RETURN_IF_ERROR(checkEvents(stage, *runs));
  return checkMemoryPlan(stage, *runs);
}

//===----------------------------------------------------------------------===//
// Communication between stages
//===----------------------------------------------------------------------===//

namespace {

/// What must match between the members of a group.
struct CollectiveCall {
  InstructionKind kind;
  ReduceOp reduce;
  int32_t root;
  TensorType type;
  bool operator==(const CollectiveCall &other) const {
    return kind == other.kind && reduce == other.reduce &&
           root == other.root && type == other.type;
  }
  bool operator!=(const CollectiveCall &other) const {
    return !(*this == other);
  }
};

/// The communication of one stage over one run of its schedule: per group
/// family the collectives in order, per (peer stage, tag) the messages
/// sent and received in order.
struct Traffic {
  std::map<uint32_t, std::vector<CollectiveCall>> collectives;
  std::map<std::pair<uint32_t, int32_t>, std::vector<TensorType>> sent,
      received;
};

Traffic collectTraffic(const StageProgram &stage) {
  Traffic traffic;
  std::vector<std::vector<uint32_t>> communication(stage.blocks.size());
  for (size_t b = 0; b < stage.blocks.size(); ++b)
    for (uint32_t i = stage.blocks[b].first;
         i < stage.blocks[b].first + stage.blocks[b].count; ++i)
      if (isCommunication(stage.instructions[i].kind))
        communication[b].push_back(i);
  int64_t last = int64_t(stage.schedule.microBatches) - 1;
  for (const Phase &phase : stage.schedule.phases)
    for (uint32_t iteration = 0; iteration < phase.iterations; ++iteration)
      for (const ScheduleStep &step : phase.steps)
        for (uint32_t i : communication[step.block]) {
          const Instruction &instruction = stage.instructions[i];
          if (instruction.lastMicroBatch &&
              int64_t(step.microBatch) + iteration != last)
            continue;
          switch (instruction.kind) {
          case InstructionKind::send:
            traffic.sent[{uint32_t(instruction.peer), instruction.tag}]
                .push_back(stage.buffers[instruction.inputs[0]].type);
            break;
          case InstructionKind::recv:
            traffic.received[{uint32_t(instruction.peer), instruction.tag}]
                .push_back(stage.buffers[instruction.outputs[0]].type);
            break;
          default:
            traffic.collectives[instruction.group].push_back(
                CollectiveCall{instruction.kind, instruction.reduce,
                               instruction.peer,
                               stage.buffers[instruction.inputs[0]].type});
          }
        }
  return traffic;
}

} // namespace

/// Members of every group a stage runs collectives on exist and issue the
/// same collectives in the same order, on whatever stage they are; every
/// message sent is received alike.
Status validateCommunication(const Program &program) {
  std::vector<Traffic> traffic;
  for (const StageProgram &stage : program.stages)
    traffic.push_back(collectTraffic(stage));
  uint32_t perStage = program.ranksPerStage();
  std::vector<char> visited;
  for (uint32_t g = 0; g < program.groups.size(); ++g) {
    const Group &group = program.groups[g];
    visited.assign(program.worldSize, 0);
    std::set<std::pair<uint32_t, uint32_t>> compared;
    for (uint32_t s = 0; s < program.stages.size(); ++s) {
      auto own = traffic[s].collectives.find(g);
      if (own == traffic[s].collectives.end())
        continue;
      for (uint32_t rank = s * perStage; rank < (s + 1) * perStage; ++rank) {
        // Visit each group once, from its first member.
        uint64_t base = rank, last = 0;
        for (size_t a = 0; a < group.axes.size(); ++a) {
          base -= uint64_t(group.coordinate(rank, a)) * group.axes[a].stride;
          last += uint64_t(group.axes[a].size - 1) * group.axes[a].stride;
        }
        if (base + last >= program.worldSize)
          return error("stage ", s, ": rank ", rank, "'s group of family ", g,
                       " reaches rank ", base + last, " outside the ",
                       program.worldSize, "-rank world");
        if (visited[base])
          continue;
        visited[base] = 1;
        for (uint32_t member : group.members(rank)) {
          uint32_t other = member / perStage;
          if (other == s || !compared.insert({s, other}).second)
            continue;
          auto theirs = traffic[other].collectives.find(g);
          if (theirs == traffic[other].collectives.end() ||
              theirs->second != own->second)
            return error("ranks ", rank, " (stage ", s, ") and ", member,
                         " (stage ", other,
                         ") issue different collectives on group family ", g);
        }
      }
    }
  }
  for (uint32_t s = 0; s < program.stages.size(); ++s) {
    for (const auto &[key, messages] : traffic[s].sent) {
      auto [peer, tag] = key;
      auto found = traffic[peer].received.find({s, tag});
      if (found == traffic[peer].received.end() || found->second != messages)
        return error("stage ", s, " sends ", messages.size(),
                     " message(s) with tag ", tag, " to stage ", peer,
                     " that it does not receive alike");
    }
    for (const auto &[key, messages] : traffic[s].received) {
      auto [peer, tag] = key;
      if (!traffic[peer].sent.count({s, tag}))
        return error("stage ", s, " receives ", messages.size(),
                     " message(s) with tag ", tag, " from stage ", peer,
                     ", which sends none");
    }
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
  if (program.stages.empty())
    return error("the program has no stage programs");
  if (program.stages.size() > program.worldSize ||
      program.worldSize % program.stages.size())
    return error("a world of ", program.worldSize, " ranks does not split "
                 "into ", program.stages.size(), " pipeline stages");
  for (size_t g = 0; g < program.groups.size(); ++g)
    GALVATRON_RETURN_IF_ERROR(checkGroup(program, program.groups[g])
                                  .withContext("group family " +
                                               std::to_string(g)));
  if (program.training && (!(program.training->modelFlops >= 0 &&
                             std::isfinite(program.training->modelFlops)) ||
                           program.training->vocabSize < 1))
    return error("training information needs finite, non-negative model "
                 "FLOPs and a positive vocabulary size");
  for (size_t s = 0; s < program.stages.size(); ++s) {
    const StageProgram &stage = program.stages[s];
    if (stage.stage != s)
      return error("stage program ", s, " is numbered ", stage.stage);
    GALVATRON_RETURN_IF_ERROR(
        validateStageProgram(program, stage).withContext(describeStage(stage)));
  }
  return validateCommunication(program);
}

} // namespace galvatron::runtime
