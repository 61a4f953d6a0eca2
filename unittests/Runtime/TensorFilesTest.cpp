//===- TensorFilesTest.cpp - .npy and safetensors files -------------------===//

#include "RuntimeTestUtils.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <tuple>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

class TensorFilesTest : public ::testing::Test {
protected:
  std::string path(const std::string &name) {
    return ::testing::TempDir() + "/tensor_files_" + name;
  }

  void writeBytes(const std::string &file, const std::string &bytes) {
    std::ofstream(file, std::ios::binary) << bytes;
  }

  std::string readBytes(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

TEST_F(TensorFilesTest, NpyRoundTripsEveryType) {
  std::vector<HostTensor> tensors = {
      randomFloats({2, 3}, 1),
      integers<int64_t>(ElementType::i64, {3}, {1, -2, 3}),
      integers<int32_t>(ElementType::i32, {1, 2, 1}, {7, 8}),
      integers<uint8_t>(ElementType::i1, {2}, {1, 0}),
      integers<uint16_t>(ElementType::f16, {2}, {0x3C00, 0xC000}),
      integers<uint16_t>(ElementType::bf16, {2}, {0x3F80, 0xC000}),
      floats({}, {2.5f}),
      floats({0, 4}, {}),
  };
  for (const HostTensor &tensor : tensors) {
    std::string file = path("round_trip.npy");
    ASSERT_TRUE(writeNpy(file, tensor.type, tensor.data.data()).isOk());
    // The data starts 64-byte aligned, as NumPy writes it.
    EXPECT_EQ((readBytes(file).size() - tensor.data.size()) % 64, 0u);
    Expected<HostTensor> loaded = readNpy(file);
    ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
    EXPECT_EQ(loaded->type, tensor.type);
    EXPECT_EQ(loaded->data, tensor.data);
  }
}

TEST_F(TensorFilesTest, MalformedNpyFilesAreRejected) {
  std::string file = path("bad.npy");
  auto npy = [](const std::string &header, size_t dataBytes) {
    std::string bytes = "\x93NUMPY\x01";
    bytes += '\0';
    bytes += char(header.size());
    bytes += '\0';
    return bytes + header + std::string(dataBytes, '\0');
  };
  auto error = [&](const std::string &bytes) {
    writeBytes(file, bytes);
    Expected<HostTensor> loaded = readNpy(file);
    return loaded ? std::string("ok") : loaded.status().message();
  };
  EXPECT_EQ(error("hello"), "'" + file + "' is not a .npy file");
  EXPECT_EQ(error(npy("{'descr': '<f8', 'fortran_order': False, "
                      "'shape': (2,), }\n", 16)),
            "'" + file + "': unsupported .npy dtype '<f8' (expected <f4, <f2, "
            "<u2 (bf16 bits), <i8, <i4 or |b1)");
  EXPECT_EQ(error(npy("{'descr': '<f4', 'fortran_order': True, "
                      "'shape': (2, 2), }\n", 16)),
            "'" + file + "': Fortran-ordered .npy arrays are not supported");
  EXPECT_EQ(error(npy("{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (3,), }\n", 8)),
            "'" + file + "' holds 8 data bytes, but f32[3] needs 12");
  EXPECT_EQ(error(npy("{'descr': '<f4', 'shape': (3,), }\n", 12)),
            "'" + file + "': malformed .npy header");
  EXPECT_EQ(readNpy(path("missing.npy")).status().message(),
            "cannot open '" + path("missing.npy") +
                "': No such file or directory");
}

TEST_F(TensorFilesTest, SafeTensorsRoundTrip) {
  HostTensor a = randomFloats({2, 3}, 2);
  HostTensor b = integers<int64_t>(ElementType::i64, {2}, {5, 6});
  std::string file = path("round_trip.safetensors");
  ASSERT_TRUE(writeSafeTensors(file, {{"layer.0.weight", a.type, a.data.data()},
                                      {"ids \"quoted\"", b.type, b.data.data()}})
                  .isOk());
  Expected<SafeTensorsReader> reader = SafeTensorsReader::open(file);
  ASSERT_TRUE(reader.isOk()) << reader.status().message();
  ASSERT_EQ(reader->entries().size(), 2u);
  std::vector<uint8_t> bytes;
  const SafeTensorsReader::Entry *entry = reader->find("layer.0.weight");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->type, a.type);
  ASSERT_TRUE(reader->read(*entry, bytes).isOk());
  EXPECT_EQ(bytes, a.data);
  entry = reader->find("ids \"quoted\"");
  ASSERT_NE(entry, nullptr);
  ASSERT_TRUE(reader->read(*entry, bytes).isOk());
  EXPECT_EQ(bytes, b.data);
  EXPECT_EQ(reader->find("absent"), nullptr);
  EXPECT_EQ(reader->metadata("format"), "pt");
}

/// A box of a tensor is read run by run: only the bytes it needs, also in
/// the coordinates of a refined shape.
TEST_F(TensorFilesTest, BoxesAreReadByContiguousRuns) {
  std::vector<std::tuple<int64_t, int64_t, int64_t>> runs;
  auto record = [&](int64_t inTensor, int64_t inBox, int64_t count) {
    runs.emplace_back(inTensor, inBox, count);
  };
  // Rows 1..2 of a [4, 3]: one run.
  forEachContiguousRun(TensorBox{{4, 3}, {1, 0}, {2, 3}}, record);
  EXPECT_EQ(runs, (decltype(runs){{3, 0, 6}}));
  // Columns 1..2 of a [2, 3]: a run per row.
  runs.clear();
  forEachContiguousRun(TensorBox{{2, 3}, {0, 1}, {2, 2}}, record);
  EXPECT_EQ(runs, (decltype(runs){{1, 0, 2}, {4, 2, 2}}));
  // The whole tensor and a scalar: one run; an empty box: none.
  runs.clear();
  forEachContiguousRun(TensorBox{{2, 3}, {0, 0}, {2, 3}}, record);
  forEachContiguousRun(TensorBox{{}, {}, {}}, record);
  forEachContiguousRun(TensorBox{{2, 3}, {0, 0}, {0, 3}}, record);
  EXPECT_EQ(runs, (decltype(runs){{0, 0, 6}, {0, 0, 1}}));

  HostTensor a = randomFloats({4, 6}, 3);
  std::string file = path("box.safetensors");
  ASSERT_TRUE(writeSafeTensors(file, {{"w", a.type, a.data.data()}},
                               {{"step", "7"}})
                  .isOk());
  Expected<SafeTensorsReader> reader = SafeTensorsReader::open(file);
  ASSERT_TRUE(reader.isOk()) << reader.status().message();
  EXPECT_EQ(reader->metadata("step"), "7");
  // The middle third of every row of [4, 3, 2]'s refinement of [4, 6].
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(reader->readBox(*reader->find("w"),
                              TensorBox{{4, 3, 2}, {0, 1, 0}, {4, 1, 2}},
                              bytes)
                  .isOk());
  const float *whole = reinterpret_cast<const float *>(a.data.data());
  const float *box = reinterpret_cast<const float *>(bytes.data());
  ASSERT_EQ(bytes.size(), 8u * sizeof(float));
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 2; ++c)
      EXPECT_EQ(box[r * 2 + c], whole[r * 6 + 2 + c]);
}

TEST_F(TensorFilesTest, MalformedSafeTensorsAreRejected) {
  std::string file = path("bad.safetensors");
  auto withHeader = [](const std::string &json, size_t dataBytes) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i)
      bytes[i] = char((uint64_t(json.size()) >> (8 * i)) & 0xFF);
    return bytes + json + std::string(dataBytes, '\0');
  };
  auto error = [&](const std::string &bytes) {
    writeBytes(file, bytes);
    Expected<SafeTensorsReader> reader = SafeTensorsReader::open(file);
    return reader ? std::string("ok") : reader.status().message();
  };
  std::string q = "'" + file + "'";
  EXPECT_EQ(error("abc"), q + " is not a safetensors file (too short)");
  EXPECT_EQ(error(std::string("\xff\xff\xff\xff\0\0\0\0{}", 10)),
            q + " is not a safetensors file (header length 4294967295 "
                "exceeds the file)");
  EXPECT_EQ(error(withHeader("{\"a\": [1,", 0)),
            q + " header: invalid JSON at byte 9: unexpected end");
  EXPECT_EQ(error(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                             "\"data_offsets\":[0,8]}}",
                             4)),
            q + ": tensor 'a': data_offsets lie outside the file");
  EXPECT_EQ(error(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
                             "\"data_offsets\":[0,8]}}",
                             8)),
            q + ": tensor 'a': holds 8 bytes, but f32[3] needs 12");
  EXPECT_EQ(error(withHeader("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],"
                             "\"data_offsets\":[0,8]}}",
                             8)),
            q + ": tensor 'a': unsupported dtype F64");
  EXPECT_EQ(error(withHeader("{\"__metadata__\":{\"format\":\"pt\"}}", 0)),
            "ok");
  // Deeply nested JSON is refused, not recursed into.
  EXPECT_EQ(
      error(withHeader(std::string(100, '[') + std::string(100, ']'), 0)),
      q + " header: invalid JSON at byte 33: nested deeper than 32 levels");
}

/// Damaged .npy and safetensors files are rejected with a message or read
/// as some tensor; never a crash.
TEST_F(TensorFilesTest, DamagedFilesNeverCrash) {
  HostTensor a = randomFloats({3, 5}, 3);
  std::string npy = path("fuzz.npy"), safetensors = path("fuzz.safetensors");
  ASSERT_TRUE(writeNpy(npy, a.type, a.data.data()).isOk());
  ASSERT_TRUE(
      writeSafeTensors(safetensors, {{"a", a.type, a.data.data()},
                                     {"b", a.type, a.data.data()}})
          .isOk());
  std::string npyBytes = readBytes(npy), stBytes = readBytes(safetensors);
  std::mt19937 engine(7);
  std::string damaged = path("damaged");
  for (int iteration = 0; iteration < 600; ++iteration) {
    bool isNpy = iteration % 2 == 0;
    std::string bytes = isNpy ? npyBytes : stBytes;
    // Damage the headers mostly: that is where the structure is.
    size_t span = std::min<size_t>(bytes.size(), isNpy ? 128 : 160);
    for (int f = 1 + engine() % 3; f > 0; --f)
      bytes[engine() % span] = char(engine());
    if (engine() % 4 == 0)
      bytes.resize(engine() % bytes.size());
    writeBytes(damaged, bytes);
    if (isNpy) {
      (void)readNpy(damaged);
      continue;
    }
    Expected<SafeTensorsReader> reader = SafeTensorsReader::open(damaged);
    if (!reader)
      continue;
    std::vector<uint8_t> data;
    for (const SafeTensorsReader::Entry &entry : reader->entries())
      (void)reader->read(entry, data);
  }
}

} // namespace
