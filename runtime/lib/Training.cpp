//===- Training.cpp - Data and batches of training runs -------------------===//

#include "galvatron/Runtime/Training.h"

#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/Parameters.h"
#include "galvatron/Runtime/TensorFiles.h"

#include "CPU/CPUKernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace galvatron::runtime {

//===----------------------------------------------------------------------===//
// Token data
//===----------------------------------------------------------------------===//

namespace {
constexpr int32_t kLlmcMagic = 20240520;
constexpr int64_t kLlmcHeaderBytes = 256 * 4;
/// Positions of the synthetic stream (practically endless).
constexpr int64_t kSyntheticTokens = int64_t(1) << 40;

uint32_t readLittleEndian(const uint8_t *bytes, unsigned width) {
  uint32_t value = 0;
  for (unsigned i = 0; i < width; ++i)
    value |= uint32_t(bytes[i]) << (8 * i);
  return value;
}
} // namespace

Expected<TokenData> TokenData::open(const std::string &path,
                                    unsigned rawTokenBytes) {
  std::vector<uint8_t> header;
  Expected<InputFile> file = openRegularFile(path, "token file");
  if (!file)
    return file.takeStatus();
  int64_t size = int64_t(file->size);
  TokenData data;
  int64_t offset = 0;
  unsigned width = rawTokenBytes;
  int64_t count = 0;
  std::string format = "raw uint" + std::to_string(8 * rawTokenBytes);
  if (size >= kLlmcHeaderBytes) {
    GALVATRON_RETURN_IF_ERROR(readFileRange(path, 0, kLlmcHeaderBytes, header));
    if (int32_t(readLittleEndian(header.data(), 4)) == kLlmcMagic) {
      uint32_t version = readLittleEndian(header.data() + 4, 4);
      if (version != 1 && version != 2)
        return error("token file '", path, "': llm.c header version ",
                     version, " is not 1 (uint16) or 2 (uint32)");
      width = version == 1 ? 2 : 4;
      count = int64_t(readLittleEndian(header.data() + 8, 4));
      offset = kLlmcHeaderBytes;
      if (offset + count * width > size)
        return error("token file '", path, "': the header promises ", count,
                     " tokens but the file holds ",
                     (size - offset) / int64_t(width));
      format = "llm.c uint" + std::to_string(8 * width);
    }
  }
  if (offset == 0) {
    if (size % width)
      return error("token file '", path, "' of ", size,
                   " bytes is not a whole number of ", width, "-byte tokens");
    count = size / width;
  }
  std::vector<uint8_t> bytes;
  GALVATRON_RETURN_IF_ERROR(
      readFileRange(path, uint64_t(offset), uint64_t(count * width), bytes));
  data.tokens.resize(count);
  for (int64_t i = 0; i < count; ++i)
    data.tokens[i] = readLittleEndian(&bytes[i * width], width);
  data.text = "'" + path + "' (" + format + ", " + std::to_string(count) +
              " tokens)";
  return data;
}

TokenData TokenData::synthetic(int64_t vocab, uint64_t seed) {
  TokenData data;
  data.isSynthetic = true;
  data.vocab = vocab;
  data.seed = mixBits(seed ^ 0x5EED5EED5EEDull);
  data.text = "synthetic (uniform over " + std::to_string(vocab) + " tokens)";
  return data;
}

int64_t TokenData::size() const {
  return isSynthetic ? kSyntheticTokens : int64_t(tokens.size());
}

int64_t TokenData::at(int64_t position) const {
  if (!isSynthetic)
    return tokens[position];
  return std::min<int64_t>(
      vocab - 1, int64_t(counterUniform(seed, uint64_t(position)) * double(vocab)));
}

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

int64_t BatchMaker::span() const {
  return shards * batch * seq + (info.loss == LossKind::nextToken ? 1 : 0);
}

Expected<Batch> BatchMaker::make(int64_t step, int64_t &position) const {
  if (data.size() < span())
    return error("the token data ", data.description(), " is shorter than ",
                 "one batch of ", batch, " x ", seq,
                 info.loss == LossKind::nextToken ? " (+1)" : "", " tokens");
  if (position + span() > data.size())
    position = 0;
  // This shard's sequences, contiguous from here.
  int64_t first = position + shard * batch * seq;
  Batch result;
  std::vector<int64_t> &inputs = result["input_ids"];
  std::vector<int64_t> &labels = result["labels"];
  inputs.resize(batch * seq);
  labels.resize(batch * seq);
  for (int64_t i = 0; i < batch * seq; ++i) {
    int64_t token = data.at(first + i);
    if (token < 0 || token >= info.vocabSize)
      return error("token ", token, " at position ", first + i, " of ",
                   data.description(), " is outside the model's vocabulary of ",
                   info.vocabSize);
    inputs[i] = token;
  }
  if (info.loss == LossKind::nextToken) {
    for (int64_t i = 0; i < batch * seq; ++i)
      labels[i] = data.at(first + i + 1);
    if (labels.back() < 0 || labels.back() >= info.vocabSize)
      return error("token ", labels.back(), " at position ",
                   first + batch * seq, " is outside the vocabulary");
  } else {
    // 15% of positions (at least one) per sequence; of those 80% become the
    // mask token, 10% a random token, 10% stay.
    uint64_t stepKey = mixBits(seed ^ mixBits(uint64_t(step)));
    for (int64_t b = 0; b < batch; ++b) {
      uint64_t key = mixBits(stepKey ^ uint64_t(shard * batch + b));
      uint64_t counter = 0;
      int64_t chosen = 0;
      for (int64_t s = 0; s < seq; ++s) {
        int64_t i = b * seq + s;
        bool masked = counterUniform(key, counter++) <= 0.15;
        // The last position is taken when no other was.
        if (!masked && s == seq - 1 && chosen == 0)
          masked = true;
        labels[i] = masked ? inputs[i] : -100;
        if (!masked)
          continue;
        ++chosen;
        double kind = counterUniform(key, counter++);
        if (kind <= 0.8)
          inputs[i] = maskToken;
        else if (kind <= 0.9)
          inputs[i] = std::min<int64_t>(
              info.vocabSize - 1,
              int64_t(counterUniform(key, counter++) * double(info.vocabSize)));
      }
    }
  }
  // For models that take them (BERT; exported GPT-2): no padding, one
  // segment.
  result["token_type_ids"].assign(batch * seq, 0);
  result["attention_mask"].assign(batch * seq, 1);
  // An encoder-decoder (T5) decodes the labels shifted right behind its
  // start token 0 (teacher forcing, T5's _shift_right).
  if (info.loss == LossKind::nextToken) {
    std::vector<int64_t> &decoder = result["decoder_input_ids"];
    decoder.resize(batch * seq);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < seq; ++s)
        decoder[b * seq + s] = s == 0 ? 0 : labels[b * seq + s - 1];
  }
  position += shards * batch * seq;
  return result;
}

//===----------------------------------------------------------------------===//
// Peak FLOPs
//===----------------------------------------------------------------------===//

double measureGemmFlops() {
  constexpr int64_t n = 1024;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  double best = 0.0;
  for (int repeat = 0; repeat < 3; ++repeat) {
    auto start = std::chrono::steady_clock::now();
    if (!cpu::gemm(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f,
                   c.data())
             .isOk())
      return 0.0;
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    best = std::max(best, 2.0 * double(n * n * n) / seconds);
  }
  return best;
}

} // namespace galvatron::runtime
