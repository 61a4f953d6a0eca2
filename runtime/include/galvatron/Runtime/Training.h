//===- Training.h - Data, batches and checkpoints of training runs -*- C++ -*-===//
//
// What a runtime needs around a compiled training step (a program with
// TrainingInfo, one step per run): token data, the batches the step's
// inputs take and the model's peak-FLOPs yardstick (checkpoints, which make
// a stopped run resume exactly under any plan, are in Checkpoint.h). The step loop itself stays with the tool,
// so that multi-rank drivers reuse these pieces with their own loop.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_TRAINING_H
#define GALVATRON_RUNTIME_TRAINING_H

#include "galvatron/Runtime/Checkpoint.h"
#include "galvatron/Runtime/Executor.h"

#include <map>
#include <string>
#include <vector>

namespace galvatron::runtime {

/// The tokens of a training corpus, or a synthetic stream.
class TokenData {
public:
  /// Reads a token file: llm.c's format (a header of 256 little-endian
  /// int32: magic 20240520, version 1 for uint16 or 2 for uint32 tokens,
  /// token count; then the tokens), detected by its magic, or else a raw
  /// little-endian array of `rawTokenBytes`-byte tokens (nanoGPT's
  /// train.bin is uint16).
  static Expected<TokenData> open(const std::string &path,
                                  unsigned rawTokenBytes);
  /// An endless stream of tokens uniform in [0, vocab), a function of the
  /// seed and the position only.
  static TokenData synthetic(int64_t vocab, uint64_t seed);

  int64_t size() const;
  int64_t at(int64_t position) const;
  const std::string &description() const { return text; }

private:
  std::vector<uint32_t> tokens;
  bool isSynthetic = false;
  int64_t vocab = 0;
  uint64_t seed = 0;
  std::string text;
};

/// One step's data: each program input by name, as int64 values in
/// row-major [batch, seq] order.
using Batch = std::map<std::string, std::vector<int64_t>>;

/// The data contract of docs/architecture.md ("The training step").
/// A step's global batch holds shards·batch sequences; this maker produces
/// the `batch` sequences of shard `shard` (a data-parallel rank's part; one
/// shard on a single rank). Global sequence g starts at position + g·seq.
/// `next_token` reads seq + 1 tokens (inputs the first seq, labels the last
/// seq); `masked_token` reads seq tokens and masks 15% of positions (at
/// least one per sequence) with a generator keyed by (seed, step, g), so
/// every sharding masks alike. `token_type_ids` are zeros and
/// `attention_mask` ones, for programs that take them. The position then
/// advances by shards·batch·seq, back to 0 when the next global batch would
/// pass the end.
struct BatchMaker {
  const TokenData &data;
  TrainingInfo info;
  int64_t batch = 1, seq = 1;
  int64_t maskToken = 0;
  uint64_t seed = 0;
  int64_t shard = 0, shards = 1;

  /// Tokens one global batch reads.
  int64_t span() const;
  /// The batch of 1-based step `step` at `position`; advances `position`.
  Expected<Batch> make(int64_t step, int64_t &position) const;
};

/// Best SGEMM rate of this machine with the backend's threads, in FLOP/s:
/// the default yardstick of MFU on the CPU.
double measureGemmFlops();

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_TRAINING_H
