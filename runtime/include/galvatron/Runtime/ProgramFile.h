//===- ProgramFile.h - The program file format ------------------*- C++ -*-===//
//
// A program file (.gxp) is a 32-byte header (magic, format version, payload
// size, CRC-32 of the payload) followed by a FlatBuffer of the schema in
// runtime/schema/program.fbs. Reading checks, in order: the magic, the
// version, the size (a truncated file), the checksum (a corrupt file), the
// FlatBuffer's structure (the FlatBuffers verifier: every offset, vector and
// string inside the payload), enum values, and finally the program's
// semantics (ProgramValidator.h). Any failure is a message, never a crash.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_PROGRAMFILE_H
#define GALVATRON_RUNTIME_PROGRAMFILE_H

#include "galvatron/Runtime/Program.h"
#include "galvatron/Runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace galvatron::runtime {

constexpr size_t kProgramHeaderSize = 32;
constexpr char kProgramMagic[8] = {'G', 'A', 'L', 'V', 'P', 'R', 'O', 'G'};

/// Encodes `program` (which should validate) with the current version.
std::vector<uint8_t> serializeProgram(const Program &program);

/// Decodes and validates a program file's bytes.
Expected<Program> deserializeProgram(const uint8_t *data, size_t size);

/// Reads, decodes and validates the program file at `path`.
Expected<Program> readProgramFile(const std::string &path);

/// Writes `program` to `path` atomically (a temporary file, then rename).
Status writeProgramFile(const Program &program, const std::string &path);

/// CRC-32 with zlib's polynomial.
uint32_t crc32(const uint8_t *data, size_t size);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_PROGRAMFILE_H
