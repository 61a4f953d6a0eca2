//===- ProgramFile.cpp - The program file format --------------------------===//

#include "galvatron/Runtime/ProgramFile.h"

#include "galvatron/Runtime/AtomicFile.h"
#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/ProgramValidator.h"
#include "program_generated.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace galvatron::runtime {

namespace {

//===----------------------------------------------------------------------===//
// Header
//===----------------------------------------------------------------------===//

void putU32(uint8_t *at, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    at[i] = uint8_t(value >> (8 * i));
}
void putU64(uint8_t *at, uint64_t value) {
  for (int i = 0; i < 8; ++i)
    at[i] = uint8_t(value >> (8 * i));
}
uint32_t getU32(const uint8_t *at) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value |= uint32_t(at[i]) << (8 * i);
  return value;
}
uint64_t getU64(const uint8_t *at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= uint64_t(at[i]) << (8 * i);
  return value;
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

std::vector<fb::RankTerm> encode(const std::vector<RankTerm> &terms) {
  std::vector<fb::RankTerm> encoded;
  for (const RankTerm &term : terms)
    encoded.emplace_back(term.coefficient, term.index, term.group);
  return encoded;
}

Offset<fb::Attribute> encode(FlatBufferBuilder &fbb, const Attribute &attr) {
  std::vector<fb::RankTerm> terms = encode(attr.terms);
  return fb::CreateAttributeDirect(
      fbb, attr.name.c_str(), fb::AttributeKind(attr.kind), attr.integer,
      attr.real, attr.kind == AttributeKind::integers ? &attr.integers : nullptr,
      terms.empty() ? nullptr : &terms);
}

Offset<fb::Instruction> encode(FlatBufferBuilder &fbb,
                               const Instruction &instruction) {
  std::vector<Offset<fb::Attribute>> attributes;
  for (const Attribute &attribute : instruction.attributes)
    attributes.push_back(encode(fbb, attribute));
  return fb::CreateInstructionDirect(
      fbb, fb::InstructionKind(instruction.kind),
      instruction.kind == InstructionKind::kernel ? instruction.kernel.c_str()
                                                  : nullptr,
      &instruction.inputs, &instruction.outputs,
      attributes.empty() ? nullptr : &attributes, instruction.group,
      fb::ReduceOp(instruction.reduce), instruction.peer, instruction.tag,
      instruction.layer, instruction.event, instruction.lastMicroBatch);
}

Offset<fb::Parameter> encode(FlatBufferBuilder &fbb,
                             const Parameter &parameter) {
  Offset<fb::Initializer> init;
  if (parameter.init)
    init = fb::CreateInitializer(fbb, fb::InitKind(parameter.init->kind),
                                 parameter.init->a, parameter.init->b);
  Offset<fb::ExternalData> external;
  if (parameter.external) {
    const ExternalData &data = *parameter.external;
    external = fb::CreateExternalDataDirect(
        fbb, data.location.c_str(), data.offset, data.length,
        data.key.empty() ? nullptr : data.key.c_str());
  }
  std::vector<fb::RankTerm> terms = encode(parameter.sliceTerms);
  return fb::CreateParameterDirect(
      fbb, parameter.buffer, parameter.name.c_str(),
      parameter.isSlice() ? &parameter.fullShape : nullptr,
      parameter.isSlice() ? &parameter.sliceStart : nullptr,
      terms.empty() ? nullptr : &terms, init, external, parameter.state,
      parameter.sourceShape.empty() ? nullptr : &parameter.sourceShape);
}

Offset<fb::StageProgram> encode(FlatBufferBuilder &fbb,
                                const StageProgram &stage) {
  std::vector<Offset<fb::Buffer>> buffers;
  for (const Buffer &buffer : stage.buffers)
    buffers.push_back(fb::CreateBufferDirect(
        fbb, fb::ElementType(buffer.type.elementType), &buffer.type.shape,
        buffer.offset, buffer.viewOf ? int64_t(*buffer.viewOf) : -1,
        buffer.name.empty() ? nullptr : buffer.name.c_str(), buffer.slotted));
  std::vector<Offset<fb::Parameter>> parameters;
  for (const Parameter &parameter : stage.parameters)
    parameters.push_back(encode(fbb, parameter));
  std::vector<Offset<fb::Constant>> constants;
  for (const Constant &constant : stage.constants)
    constants.push_back(
        fb::CreateConstantDirect(fbb, constant.buffer, &constant.data));
  auto bindings = [&](const std::vector<Binding> &list) {
    std::vector<Offset<fb::Binding>> encoded;
    for (const Binding &binding : list)
      encoded.push_back(fb::CreateBindingDirect(fbb, binding.name.c_str(),
                                                binding.buffer, binding.block));
    return encoded;
  };
  std::vector<Offset<fb::Binding>> inputs = bindings(stage.inputs);
  std::vector<Offset<fb::Binding>> outputs = bindings(stage.outputs);
  std::vector<Offset<fb::Instruction>> instructions;
  for (const Instruction &instruction : stage.instructions)
    instructions.push_back(encode(fbb, instruction));
  std::vector<Offset<flatbuffers::String>> layers;
  for (const std::string &layer : stage.layers)
    layers.push_back(fbb.CreateString(layer));
  std::vector<Offset<fb::Block>> blocks;
  for (const Block &block : stage.blocks)
    blocks.push_back(fb::CreateBlockDirect(fbb, block.name.c_str(), block.first,
                                           block.count, block.slotted));
  std::vector<Offset<fb::Phase>> phases;
  for (const Phase &phase : stage.schedule.phases) {
    std::vector<fb::ScheduleStep> steps;
    for (const ScheduleStep &step : phase.steps)
      steps.emplace_back(step.block, step.microBatch);
    phases.push_back(fb::CreatePhaseDirect(fbb, phase.iterations, &steps));
  }
  const Schedule &schedule = stage.schedule;
  return fb::CreateStageProgramDirect(
      fbb, stage.stage, stage.arenaSize, &buffers, &parameters, &constants,
      &inputs, &outputs, &instructions, &layers, &blocks, &phases,
      schedule.microBatches, schedule.slots, schedule.slotOffset,
      schedule.slotSize);
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

std::string text(const flatbuffers::String *string) {
  return string ? string->str() : std::string();
}

/// The elements of a scalar vector. The verifier checks where a vector
/// starts but not that 8-byte elements are 8-byte aligned: copy bytes.
template <typename T> std::vector<T> list(const flatbuffers::Vector<T> *vector) {
  static_assert(FLATBUFFERS_LITTLEENDIAN, "the format is little-endian");
  std::vector<T> values(vector ? vector->size() : 0);
  if (!values.empty())
    std::memcpy(values.data(), vector->Data(), values.size() * sizeof(T));
  return values;
}

/// Iterates a possibly absent vector of tables.
template <typename T, typename F>
Status forEach(const flatbuffers::Vector<Offset<T>> *vector, F &&f) {
  if (!vector)
    return Status::ok();
  for (flatbuffers::uoffset_t i = 0; i < vector->size(); ++i)
    GALVATRON_RETURN_IF_ERROR(f(*vector->Get(i), size_t(i)));
  return Status::ok();
}

/// Iterates a possibly absent vector of structs.
template <typename T, typename F>
void forEachStruct(const flatbuffers::Vector<const T *> *vector, F &&f) {
  if (vector)
    for (flatbuffers::uoffset_t i = 0; i < vector->size(); ++i)
      f(*vector->Get(i));
}

template <typename Raw, typename Decoded>
Status decodeEnum(Raw raw, unsigned count, std::string_view what,
                  Decoded &out) {
  if (unsigned(raw) >= count)
    return error("unknown ", what, " ", unsigned(raw));
  out = Decoded(unsigned(raw));
  return Status::ok();
}

std::vector<RankTerm>
decode(const flatbuffers::Vector<const fb::RankTerm *> *terms) {
  std::vector<RankTerm> decoded;
  forEachStruct(terms, [&](const fb::RankTerm &term) {
    decoded.push_back(RankTerm{term.index(), term.group(), term.coefficient()});
  });
  return decoded;
}

Status decode(const fb::Instruction &in, Instruction &out) {
  GALVATRON_RETURN_IF_ERROR(
      decodeEnum(in.kind(), kNumInstructionKinds, "instruction kind", out.kind));
  GALVATRON_RETURN_IF_ERROR(
      decodeEnum(in.reduce(), kNumReduceOps, "reduction", out.reduce));
  out.kernel = text(in.kernel());
  out.inputs = list<uint32_t>(in.inputs());
  out.outputs = list<uint32_t>(in.outputs());
  out.group = in.group();
  out.peer = in.peer();
  out.tag = in.tag();
  out.layer = in.layer();
  out.event = in.event();
  out.lastMicroBatch = in.last_micro_batch();
  return forEach(in.attributes(), [&](const fb::Attribute &attr, size_t) {
    Attribute &decoded = out.attributes.emplace_back();
    decoded.name = attr.name()->str();
    decoded.integer = attr.integer();
    decoded.real = attr.real();
    decoded.integers = list<int64_t>(attr.integers());
    decoded.terms = decode(attr.terms());
    return decodeEnum(attr.kind(), kNumAttributeKinds, "attribute kind",
                      decoded.kind);
  });
}

Status decode(const fb::Parameter &in, Parameter &out) {
  out.buffer = in.buffer();
  out.name = in.name()->str();
  out.fullShape = list<int64_t>(in.full_shape());
  out.sliceStart = list<int64_t>(in.slice_start());
  out.sliceTerms = decode(in.slice_terms());
  out.sourceShape = list<int64_t>(in.source_shape());
  out.state = in.state();
  if (const fb::ExternalData *external = in.external())
    out.external = ExternalData{external->location()->str(), external->offset(),
                                external->length(), text(external->key())};
  if (const fb::Initializer *init = in.init()) {
    out.init = Initializer{InitKind::zeros, init->a(), init->b()};
    return decodeEnum(init->kind(), kNumInitKinds, "initializer kind",
                      out.init->kind);
  }
  return Status::ok();
}

Status decode(const fb::StageProgram &in, StageProgram &out) {
  out.stage = in.stage();
  out.arenaSize = in.arena_size();
  out.layers.clear();
  if (in.layers())
    for (const flatbuffers::String *layer : *in.layers())
      out.layers.push_back(layer->str());
  GALVATRON_RETURN_IF_ERROR(
      forEach(in.buffers(), [&](const fb::Buffer &buffer, size_t index) {
        Buffer &decoded = out.buffers.emplace_back();
        decoded.type.shape = list<int64_t>(buffer.shape());
        decoded.offset = buffer.offset();
        decoded.name = text(buffer.name());
        decoded.slotted = buffer.slotted();
        if (buffer.view_of() != -1) {
          if (buffer.view_of() < 0 || buffer.view_of() > int64_t(UINT32_MAX))
            return error("buffer ", index, " is a view of buffer ",
                         buffer.view_of(), ", which does not exist");
          decoded.viewOf = uint32_t(buffer.view_of());
        }
        return decodeEnum(buffer.element_type(), kNumElementTypes,
                          "element type", decoded.type.elementType)
            .withContext("buffer " + std::to_string(index));
      }));
  GALVATRON_RETURN_IF_ERROR(
      forEach(in.parameters(), [&](const fb::Parameter &parameter, size_t) {
        return decode(parameter, out.parameters.emplace_back());
      }));
  GALVATRON_RETURN_IF_ERROR(
      forEach(in.constants(), [&](const fb::Constant &constant, size_t) {
        out.constants.push_back(
            Constant{constant.buffer(), list<uint8_t>(constant.data())});
        return Status::ok();
      }));
  auto bindings = [](std::vector<Binding> &into) {
    return [&into](const fb::Binding &binding, size_t) {
      into.push_back(
          Binding{binding.name()->str(), binding.buffer(), binding.block()});
      return Status::ok();
    };
  };
  GALVATRON_RETURN_IF_ERROR(forEach(in.inputs(), bindings(out.inputs)));
  GALVATRON_RETURN_IF_ERROR(forEach(in.outputs(), bindings(out.outputs)));
  GALVATRON_RETURN_IF_ERROR(
      forEach(in.blocks(), [&](const fb::Block &block, size_t) {
        out.blocks.push_back(Block{text(block.name()), block.first(),
                                   block.count(), block.slotted()});
        return Status::ok();
      }));
  Schedule &schedule = out.schedule;
  schedule.microBatches = in.micro_batches();
  schedule.slots = in.slots();
  schedule.slotOffset = in.slot_offset();
  schedule.slotSize = in.slot_size();
  GALVATRON_RETURN_IF_ERROR(
      forEach(in.phases(), [&](const fb::Phase &phase, size_t) {
        Phase &decoded = schedule.phases.emplace_back();
        decoded.iterations = phase.iterations();
        forEachStruct(phase.steps(), [&](const fb::ScheduleStep &step) {
          decoded.steps.push_back(ScheduleStep{step.block(), step.micro_batch()});
        });
        return Status::ok();
      }));
  return forEach(in.instructions(),
                 [&](const fb::Instruction &instruction, size_t index) {
                   return decode(instruction, out.instructions.emplace_back())
                       .withContext("instruction " + std::to_string(index));
                 });
}

Status decode(const fb::Program &in, Program &out) {
  out.worldSize = in.world_size();
  out.alignment = in.alignment();
  out.model = text(in.model());
  out.modelDirectory = text(in.model_directory());
  if (const fb::Training *training = in.training()) {
    TrainingInfo &info = out.training.emplace();
    // Files before 2.4 have the FLOPs as a long. Presence, not the value,
    // tells them apart: a bad double (negative, NaN) reaches the validator.
    flatbuffers::Optional<double> flops = training->model_flops_f64();
    info.modelFlops = flops ? *flops
                            : static_cast<double>(training->model_flops());
    info.vocabSize = training->vocab_size();
    GALVATRON_RETURN_IF_ERROR(decodeEnum(training->loss(), kNumLossKinds,
                                         "loss kind", info.loss));
  }
  GALVATRON_RETURN_IF_ERROR(
      forEach(in.groups(), [&](const fb::Group &group, size_t) {
        Group &decoded = out.groups.emplace_back();
        forEachStruct(group.axes(), [&](const fb::GroupAxis &axis) {
          decoded.axes.push_back(GroupAxis{axis.size(), axis.stride()});
        });
        return Status::ok();
      }));
  return forEach(in.stages(), [&](const fb::StageProgram &stage, size_t index) {
    return decode(stage, out.stages.emplace_back())
        .withContext("stage program " + std::to_string(index));
  });
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

uint32_t crc32(const uint8_t *data, size_t size) {
  static const auto table = [] {
    std::vector<uint32_t> entries(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[i] = c;
    }
    return entries;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i)
    crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> serializeProgram(const Program &program) {
  FlatBufferBuilder fbb;
  std::vector<Offset<fb::Group>> groups;
  for (const Group &group : program.groups) {
    std::vector<fb::GroupAxis> axes;
    for (const GroupAxis &axis : group.axes)
      axes.emplace_back(axis.size, axis.stride);
    groups.push_back(fb::CreateGroupDirect(fbb, &axes));
  }
  std::vector<Offset<fb::StageProgram>> stages;
  for (const StageProgram &stage : program.stages)
    stages.push_back(encode(fbb, stage));
  Offset<fb::Training> training;
  if (program.training)
    training = fb::CreateTraining(fbb, fb::LossKind(program.training->loss),
                                  /*model_flops=*/0,
                                  program.training->vocabSize,
                                  program.training->modelFlops);
  fb::FinishProgramBuffer(
      fbb, fb::CreateProgramDirect(fbb, program.worldSize, program.alignment,
                                   &groups, &stages, program.model.c_str(),
                                   program.modelDirectory.c_str(), training));

  std::vector<uint8_t> bytes(kProgramHeaderSize + fbb.GetSize());
  std::memcpy(bytes.data(), kProgramMagic, sizeof(kProgramMagic));
  putU32(&bytes[8], kFormatMajorVersion);
  putU32(&bytes[12], kFormatMinorVersion);
  putU64(&bytes[16], fbb.GetSize());
  putU32(&bytes[24], crc32(fbb.GetBufferPointer(), fbb.GetSize()));
  std::memcpy(&bytes[kProgramHeaderSize], fbb.GetBufferPointer(),
              fbb.GetSize());
  return bytes;
}

Expected<Program> deserializeProgram(const uint8_t *data, size_t size) {
  if (size < kProgramHeaderSize ||
      std::memcmp(data, kProgramMagic, sizeof(kProgramMagic)) != 0)
    return error("not a Galvatron program file (bad magic)");
  uint32_t major = getU32(data + 8), minor = getU32(data + 12);
  if (major == 1)
    return error("program format ", major, ".", minor,
                 " (one program per rank) is no longer supported: this "
                 "runtime reads format ", kFormatMajorVersion, ".",
                 kFormatMinorVersion,
                 " (one program per pipeline stage); recompile the model "
                 "with galvatron-compile");
  if (major != kFormatMajorVersion || minor > kFormatMinorVersion)
    return error("program format version ", major, ".", minor,
                 " is not supported by this runtime (format ",
                 kFormatMajorVersion, ".", kFormatMinorVersion, ")");
  uint64_t payloadSize = getU64(data + 16);
  if (payloadSize != size - kProgramHeaderSize)
    return error("truncated or padded file: the header announces ",
                 payloadSize, " payload bytes, the file holds ",
                 size - kProgramHeaderSize);
  const uint8_t *payload = data + kProgramHeaderSize;
  if (crc32(payload, payloadSize) != getU32(data + 24))
    return error("checksum mismatch: the file is corrupt");
  if (payloadSize >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return error("payload of ", payloadSize, " bytes is too large");

  flatbuffers::Verifier::Options options;
  options.max_tables = 1u << 26;
  flatbuffers::Verifier verifier(payload, payloadSize, options);
  if (!fb::VerifyProgramBuffer(verifier))
    return error("malformed program payload (FlatBuffers verification failed)");

  Program program;
  GALVATRON_RETURN_IF_ERROR(decode(*fb::GetProgram(payload), program));
  GALVATRON_RETURN_IF_ERROR(validateProgram(program));
  return program;
}

Expected<Program> readProgramFile(const std::string &path) {
  Expected<InputFile> input = openRegularFile(path);
  if (!input)
    return input.takeStatus();
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), input->file.get())) > 0)
    bytes.insert(bytes.end(), chunk, chunk + got);
  if (std::ferror(input->file.get()))
    return error("cannot read '", path, "'");
  Expected<Program> program = deserializeProgram(bytes.data(), bytes.size());
  if (!program)
    return program.takeStatus().withContext(path);
  return program;
}

Status writeProgramFile(const Program &program, const std::string &path) {
  std::vector<uint8_t> bytes = serializeProgram(program);
  return writeFileAtomically(path, {{bytes.data(), bytes.size()}});
}

} // namespace galvatron::runtime
