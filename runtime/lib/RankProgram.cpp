//===- RankProgram.cpp - The concrete program of one rank -----------------===//

#include "galvatron/Runtime/RankProgram.h"

namespace galvatron::runtime {

int64_t resolveTerms(const Program &program, int64_t base,
                     const std::vector<RankTerm> &terms, uint32_t index,
                     uint32_t rank) {
  for (const RankTerm &term : terms)
    if (term.index == index)
      base += term.coefficient * program.groups[term.group].position(rank);
  return base;
}

std::vector<int64_t> sliceStartOf(const Program &program,
                                  const Parameter &parameter, uint32_t rank) {
  std::vector<int64_t> start = parameter.sliceStart;
  for (size_t d = 0; d < start.size(); ++d)
    start[d] = resolveTerms(program, start[d], parameter.sliceTerms, d, rank);
  return start;
}

namespace {

/// Resolves a stage's program for one rank.
class Instantiation {
public:
  Instantiation(const Program &program, uint32_t rank)
      : program(program), rank(rank) {}

  RankProgram run(const StageProgram &stage) {
    RankProgram &out = result;
    static_cast<ProgramBody &>(out) = stage;
    out.rank = rank;
    out.stage = stage.stage;
    for (Parameter &parameter : out.parameters) {
      parameter.sliceStart = sliceStartOf(program, parameter, rank);
      parameter.sliceTerms.clear();
    }
    out.groups.assign(program.groups.size(), {});
    for (Instruction &instruction : out.instructions)
      resolve(instruction);
    copySlots(stage);
    return std::move(out);
  }

private:
  void resolve(Instruction &instruction) {
    for (Attribute &attribute : instruction.attributes) {
      if (attribute.kind == AttributeKind::integer)
        attribute.integer = resolveTerms(program, attribute.integer,
                                         attribute.terms, 0, rank);
      for (size_t i = 0; i < attribute.integers.size(); ++i)
        attribute.integers[i] = resolveTerms(
            program, attribute.integers[i], attribute.terms, uint32_t(i), rank);
      attribute.terms.clear();
    }
    if (instruction.kind == InstructionKind::send ||
        instruction.kind == InstructionKind::recv) {
      // The same local index on the peer stage.
      uint32_t perStage = program.ranksPerStage();
      instruction.peer =
          int32_t(uint32_t(instruction.peer) * perStage + rank % perStage);
      return;
    }
    if (!isCollective(instruction.kind))
      return;
    std::vector<uint32_t> &members = result.groups[instruction.group];
    if (members.empty())
      members = program.groups[instruction.group].members(rank);
    if (instruction.kind == InstructionKind::broadcast)
      instruction.peer = int32_t(members[uint32_t(instruction.peer)]);
  }

  /// Copies slotted buffers and blocks for slots 1 and up.
  void copySlots(const StageProgram &stage) {
    uint32_t slots = stage.schedule.slots;
    size_t buffers = stage.buffers.size();
    result.slotBuffers.assign(slots, {});
    for (uint32_t slot = 0; slot < slots; ++slot) {
      std::vector<uint32_t> &map = result.slotBuffers[slot];
      map.resize(buffers);
      for (uint32_t b = 0; b < buffers; ++b) {
        const Buffer &buffer = stage.buffers[b];
        bool slotted = stage.buffers[stage.rootOf(b)].slotted;
        if (slot == 0 || !slotted) {
          map[b] = b;
          continue;
        }
        // Views follow their root, which precedes them.
        Buffer copy = buffer;
        copy.offset += slot * stage.schedule.slotSize;
        if (copy.viewOf)
          copy.viewOf = map[*copy.viewOf];
        map[b] = uint32_t(result.buffers.size());
        result.buffers.push_back(std::move(copy));
      }
    }
    result.blockStarts.assign(stage.blocks.size(), {});
    for (size_t b = 0; b < stage.blocks.size(); ++b) {
      const Block &block = stage.blocks[b];
      result.blockStarts[b].push_back(block.first);
      if (!block.slotted)
        continue;
      for (uint32_t slot = 1; slot < slots; ++slot) {
        result.blockStarts[b].push_back(uint32_t(result.instructions.size()));
        const std::vector<uint32_t> &map = result.slotBuffers[slot];
        for (uint32_t i = block.first; i < block.first + block.count; ++i) {
          Instruction copy = result.instructions[i];
          for (uint32_t &input : copy.inputs)
            input = map[input];
          for (uint32_t &output : copy.outputs)
            output = map[output];
          result.instructions.push_back(std::move(copy));
        }
      }
    }
  }

  const Program &program;
  uint32_t rank;
  RankProgram result;
};

} // namespace

Expected<RankProgram> instantiateRank(const Program &program, uint32_t rank) {
  if (rank >= program.worldSize)
    return error("rank ", rank, " is outside the ", program.worldSize,
                 "-rank world");
  return Instantiation(program, rank).run(program.stages[program.stageOf(rank)]);
}

} // namespace galvatron::runtime
