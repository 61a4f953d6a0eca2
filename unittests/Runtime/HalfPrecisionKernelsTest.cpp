//===- HalfPrecisionKernelsTest.cpp - bf16 and f16 kernels ----------------===//
//
// Every float kernel in bf16 and f16 against its f32 kernel (itself checked
// against loop-by-loop references in KernelsTest.cpp): run on the same
// values (16-bit inputs, exactly widened for the f32 run), the 16-bit
// results must be the f32 results rounded to nearest even, up to one unit
// in the last place where the f32 arithmetic differs in its last bits (a
// GEMM converted in tiles sums in another order: 2^-20 of the result's
// largest magnitude covers that). f32 results of 16-bit kernels (a loss,
// the vocabulary-parallel statistics) must equal the f32 kernel's.
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestUtils.h"

#include "../../runtime/lib/CPU/CPUKernels.h"

#include "galvatron/Runtime/HalfFloat.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include "gtest/gtest.h"

#include <cmath>
#include <set>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

using Shape = std::vector<int64_t>;

TensorType f32(Shape shape) { return TensorType{ElementType::f32, shape}; }

HostTensor ids(Shape shape, const std::vector<int64_t> &values) {
  return integers<int64_t>(ElementType::i64, std::move(shape), values);
}

/// A call of `kernel` in f32; every f32 operand not listed as fixed takes
/// the 16-bit type in the 16-bit run.
struct Case {
  std::string kernel;
  std::vector<HostTensor> inputs;
  std::vector<TensorType> outputs;
  std::vector<Attribute> attributes = {};
  std::set<size_t> fixedInputs = {}, fixedOutputs = {};
};

uint16_t toBits(float value, ElementType type) {
  return type == ElementType::bf16 ? floatToBfloat16(value)
                                   : floatToHalf(value);
}

float fromBits(uint16_t bits, ElementType type) {
  return type == ElementType::bf16 ? bfloat16ToFloat(bits) : halfToFloat(bits);
}

HostTensor narrowed(const HostTensor &tensor, ElementType type) {
  std::vector<uint16_t> bits;
  for (float value : valuesOf<float>(tensor))
    bits.push_back(toBits(value, type));
  return integers<uint16_t>(type, tensor.type.shape, bits);
}

HostTensor widened(const HostTensor &tensor, ElementType type) {
  std::vector<float> values;
  for (uint16_t bits : valuesOf<uint16_t>(tensor))
    values.push_back(fromBits(bits, type));
  return floats(tensor.type.shape, values);
}

/// The distance from `bits` to the next 16-bit value away from zero.
double ulp(uint16_t bits, ElementType type) {
  uint16_t magnitude = bits & 0x7FFF;
  return std::fabs(double(fromBits(uint16_t(magnitude + 1), type)) -
                   double(fromBits(magnitude, type)));
}

void checkCase(const Case &c) {
  for (ElementType type : {ElementType::bf16, ElementType::f16}) {
    SCOPED_TRACE(c.kernel + " in " + std::string(elementTypeName(type)));
    std::vector<HostTensor> low, reference;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const HostTensor &input = c.inputs[i];
      if (input.type.elementType != ElementType::f32 || c.fixedInputs.count(i)) {
        low.push_back(input);
        reference.push_back(input);
        continue;
      }
      low.push_back(narrowed(input, type));
      reference.push_back(widened(low.back(), type));
    }
    std::vector<TensorType> lowOutputs = c.outputs;
    for (size_t o = 0; o < lowOutputs.size(); ++o)
      if (lowOutputs[o].elementType == ElementType::f32 &&
          !c.fixedOutputs.count(o))
        lowOutputs[o].elementType = type;
    auto expected = runKernel(c.kernel, reference, c.outputs, c.attributes);
    auto actual = runKernel(c.kernel, low, lowOutputs, c.attributes);
    ASSERT_TRUE(expected.isOk()) << expected.status().message();
    ASSERT_TRUE(actual.isOk()) << actual.status().message();
    for (size_t o = 0; o < c.outputs.size(); ++o) {
      SCOPED_TRACE("result #" + std::to_string(o));
      if (lowOutputs[o].elementType != type) {
        // Bytes of a fixed-type result (f32, or integers) are equal.
        EXPECT_EQ((*actual)[o].data, (*expected)[o].data);
        continue;
      }
      std::vector<uint16_t> got = valuesOf<uint16_t>((*actual)[o]);
      std::vector<float> want = valuesOf<float>((*expected)[o]);
      ASSERT_EQ(got.size(), want.size());
      double largest = 0.0;
      for (float value : want)
        largest = std::max(largest, double(std::fabs(value)));
      int64_t differing = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        uint16_t rounded = toBits(want[i], type);
        double error = std::fabs(double(fromBits(got[i], type)) -
                                 double(fromBits(rounded, type)));
        ASSERT_LE(error, ulp(rounded, type) + std::ldexp(largest, -20))
            << "element " << i << ": " << fromBits(got[i], type)
            << ", f32 kernel " << want[i];
        differing += got[i] != rounded;
      }
      // One-ulp differences come from f32 results differing in their last
      // bits across a rounding boundary: rare.
      EXPECT_LE(differing, int64_t(got.size()) / 50 + 1);
    }
  }
}

std::vector<Attribute> flag(const char *name, bool value) {
  return {Attribute::makeInteger(name, value)};
}

HostTensor positive(Shape shape, unsigned seed) {
  std::vector<float> values = valuesOf<float>(randomFloats(shape, seed));
  for (float &value : values)
    value = std::fabs(value) + 0.125f;
  return floats(std::move(shape), values);
}

//===----------------------------------------------------------------------===//
// Elementwise, linear algebra, normalization, data movement
//===----------------------------------------------------------------------===//

TEST(HalfPrecisionKernelsTest, Elementwise) {
  HostTensor x = randomFloats({3, 37}, 1), y = randomFloats({37}, 2);
  for (const char *name : {"neg", "abs", "exp", "tanh", "erf", "sigmoid",
                           "relu", "silu", "reciprocal"})
    checkCase({name, {x}, {x.type}});
  HostTensor p = positive({3, 37}, 3);
  for (const char *name : {"log", "sqrt", "rsqrt"})
    checkCase({name, {p}, {p.type}});
  checkCase({"gelu", {x}, {x.type}});
  checkCase({"gelu", {x}, {x.type}, flag("approximate", true)});
  for (const char *name : {"add", "sub", "mul", "div", "max", "min"})
    checkCase({name, {x, y}, {x.type}});
  checkCase({"pow", {p, y}, {x.type}});
  HostTensor condition =
      integers<uint8_t>(ElementType::i1, {3, 1}, {1, 0, 1});
  checkCase({"select", {condition, x, y}, {x.type}});
  checkCase({"compare", {x, y}, {TensorType{ElementType::i1, {3, 37}}},
             {Attribute::makeInteger("predicate", 2)}});
  checkCase({"copy", {x}, {x.type}});
  checkCase({"fill", {}, {f32({4, 5})}, {Attribute::makeReal("value", 0.3)}});
}

TEST(HalfPrecisionKernelsTest, MatmulAndLinear) {
  for (auto [tl, tr] : {std::pair(false, false), std::pair(true, false),
                        std::pair(false, true), std::pair(true, true)}) {
    HostTensor l = randomFloats(tl ? Shape{2, 1, 9, 7} : Shape{2, 1, 7, 9}, 4);
    HostTensor r = randomFloats(tr ? Shape{5, 6, 9} : Shape{5, 9, 6}, 5);
    std::vector<Attribute> attributes = {
        Attribute::makeInteger("transpose_lhs", tl),
        Attribute::makeInteger("transpose_rhs", tr)};
    checkCase({"matmul", {l, r}, {f32({2, 5, 7, 6})}, attributes});
  }
  HostTensor x = randomFloats({2, 3, 40}, 6), bias = randomFloats({24}, 7);
  for (bool transposed : {false, true}) {
    HostTensor w = randomFloats(transposed ? Shape{24, 40} : Shape{40, 24}, 8);
    checkCase({"linear", {x, w, bias}, {f32({2, 3, 24})},
               flag("transpose_weight", transposed)});
    checkCase({"linear", {x, w}, {f32({2, 3, 24})},
               flag("transpose_weight", transposed)});
  }
}

// Large enough that op(A) and op(B) are converted in several tiles (blocks
// of at least 256 rows or columns, about 4 MiB of floats each).
TEST(HalfPrecisionKernelsTest, GemmTilesCoverTheWholeProduct) {
  // Many rows of C against a wide op(B): several row blocks.
  HostTensor a = randomFloats({600, 16}, 9), b = randomFloats({16, 2500}, 10);
  checkCase({"matmul", {a, b}, {f32({600, 2500})}});
  HostTensor at = randomFloats({16, 600}, 11), bt = randomFloats({2500, 16}, 12);
  checkCase({"matmul", {at, bt}, {f32({600, 2500})},
             {Attribute::makeInteger("transpose_lhs", 1),
              Attribute::makeInteger("transpose_rhs", 1)}});
  // A long contraction: several column blocks.
  HostTensor x = randomFloats({3, 5000}, 13), w = randomFloats({600, 5000}, 14),
             bias = randomFloats({600}, 15);
  checkCase({"linear", {x, w, bias}, {f32({3, 600})},
             flag("transpose_weight", true)});
}

TEST(HalfPrecisionKernelsTest, EmbeddingNormsSoftmax) {
  HostTensor table = randomFloats({11, 6}, 16);
  HostTensor rows = ids({2, 3}, {4, 0, 10, 4, 7, 2});
  checkCase({"embedding", {table, rows}, {f32({2, 3, 6})}});
  checkCase({"embedding", {table, rows}, {f32({2, 3, 6})},
             {Attribute::makeInteger("vocab_start", 3),
              Attribute::makeInteger("vocab_size", 14)}});
  HostTensor x = randomFloats({5, 48}, 17), w = randomFloats({48}, 18),
             b = randomFloats({48}, 19);
  std::vector<Attribute> epsilon = {Attribute::makeReal("epsilon", 1e-5)};
  checkCase({"layer_norm", {x, w, b}, {x.type}, epsilon});
  checkCase({"layer_norm", {x, w}, {x.type}, epsilon});
  checkCase({"rms_norm", {x, w}, {x.type}, epsilon});
  HostTensor s = randomFloats({3, 4, 5}, 20);
  for (int64_t axis : {0, 1, 2})
    checkCase({"softmax", {s}, {s.type}, {Attribute::makeInteger("axis", axis)}});
}

TEST(HalfPrecisionKernelsTest, ReductionsAndDataMovement) {
  HostTensor x = randomFloats({3, 4, 5}, 21);
  for (const char *name : {"reduce_sum", "reduce_mean", "reduce_max"})
    for (const std::vector<int64_t> &axes :
         {std::vector<int64_t>{2}, {0}, {1}, {0, 2}})
      checkCase({name,
                 {x},
                 {f32(axes == std::vector<int64_t>{2}   ? Shape{3, 4}
                      : axes == std::vector<int64_t>{0} ? Shape{4, 5}
                      : axes == std::vector<int64_t>{1} ? Shape{3, 5}
                                                        : Shape{4})},
                 {Attribute::makeIntegers("axes", axes)}});
  checkCase({"transpose", {x}, {f32({5, 3, 4})},
             {Attribute::makeIntegers("perm", {2, 0, 1})}});
  checkCase({"slice", {x}, {f32({3, 2, 2})},
             {Attribute::makeIntegers("starts", {0, 1, 0}),
              Attribute::makeIntegers("limits", {3, 4, 4}),
              Attribute::makeIntegers("strides", {1, 2, 3})}});
  checkCase({"broadcast", {randomFloats({4, 1}, 22)}, {f32({2, 4, 3})}});
  checkCase({"concat", {x, randomFloats({3, 2, 5}, 23)}, {f32({3, 6, 5})},
             {Attribute::makeInteger("axis", 1)}});
  checkCase({"split", {x}, {f32({3, 1, 5}), f32({3, 3, 5})},
             {Attribute::makeInteger("axis", 1)}});
  checkCase({"pad", {x}, {f32({3, 6, 10})},
             {Attribute::makeIntegers("low", {0, 1, 0}),
              Attribute::makeIntegers("high", {0, 1, 1}),
              Attribute::makeIntegers("interior", {0, 0, 1}),
              Attribute::makeReal("value", 0.5)}});
  checkCase({"extract_patches", {randomFloats({2, 3, 8, 8}, 24)},
             {f32({2, 4, 48})}, {Attribute::makeInteger("patch_size", 4)}});
}

//===----------------------------------------------------------------------===//
// Transformer ops and their gradients
//===----------------------------------------------------------------------===//

TEST(HalfPrecisionKernelsTest, RotaryAndAttention) {
  HostTensor x = randomFloats({2, 3, 70, 8}, 25);
  checkCase({"rotary", {x}, {x.type},
             {Attribute::makeInteger("seq_axis", 2),
              Attribute::makeReal("theta", 10000.0),
              Attribute::makeInteger("rotary_dim", 6)}});
  // Two query blocks, grouped-query heads, causal and masked.
  HostTensor q = randomFloats({2, 4, 70, 8}, 26), k = randomFloats({2, 2, 70, 8}, 27),
             v = randomFloats({2, 2, 70, 8}, 28), dO = randomFloats({2, 4, 70, 8}, 29),
             mask = randomFloats({2, 1, 1, 70}, 30);
  std::vector<Attribute> causal = {Attribute::makeInteger("causal", 1),
                                   Attribute::makeReal("scale", 0.35)};
  std::vector<Attribute> plain = {Attribute::makeReal("scale", 0.35)};
  checkCase({"attention", {q, k, v}, {q.type}, causal});
  checkCase({"attention", {q, k, v, mask}, {q.type}, plain});
  checkCase({"attention_grad", {dO, q, k, v}, {q.type, k.type, v.type}, causal});
  checkCase({"attention_grad", {dO, q, k, v, mask},
             {q.type, k.type, v.type, mask.type}, plain});
  // Dropout of the probabilities: the 16-bit kernels draw the f32 mask.
  std::vector<Attribute> dropped = causal;
  dropped.push_back(Attribute::makeReal("dropout", 0.2));
  dropped.push_back(Attribute::makeInteger("stream", 3));
  checkCase({"attention", {q, k, v}, {q.type}, dropped});
  checkCase({"attention_grad", {dO, q, k, v}, {q.type, k.type, v.type},
             dropped});
}

TEST(HalfPrecisionKernelsTest, CrossEntropyAndItsGradient) {
  HostTensor logits = randomFloats({2, 5, 33}, 31);
  HostTensor labels = ids({2, 5}, {3, -100, 32, 0, 7, 7, 1, -100, 20, 5});
  HostTensor seed = floats({}, {0.75f});
  checkCase({"cross_entropy", {logits, labels}, {f32({})}, {}, {}, {0}});
  checkCase({"cross_entropy_grad", {seed, logits, labels}, {logits.type}, {},
             {0}});
  // A block of 33 of a 50-id vocabulary, starting at id 10.
  std::vector<Attribute> block = {Attribute::makeInteger("vocab_start", 10),
                                  Attribute::makeInteger("vocab_size", 50)};
  HostTensor blockLabels = ids({2, 5}, {12, -100, 49, 0, 42, 7, 11, -100, 20, 5});
  HostTensor maximum = randomFloats({2, 5}, 32);
  HostTensor stats = positive({2, 5, 2}, 33);
  checkCase({"vocab_cross_entropy_stats", {logits, maximum, blockLabels},
             {f32({2, 5, 2})}, block, {}, {0}});
  checkCase({"vocab_cross_entropy", {stats, logits, maximum, blockLabels},
             {f32({})}, block, {0}, {0}});
  checkCase({"vocab_cross_entropy_grad",
             {seed, stats, logits, maximum, blockLabels}, {logits.type}, block,
             {0, 1}});
}

TEST(HalfPrecisionKernelsTest, FusedGradients) {
  HostTensor g = randomFloats({4, 40}, 34), x = randomFloats({4, 40}, 35),
             w = randomFloats({40}, 36);
  for (int64_t activation : {0, 1, 2, 3})
    checkCase({"activation_grad", {g, x}, {g.type},
               {Attribute::makeInteger("activation", activation)}});
  std::vector<Attribute> epsilon = {Attribute::makeReal("epsilon", 1e-5)};
  checkCase({"layer_norm_grad", {g, x, w}, {g.type, w.type, w.type}, epsilon});
  checkCase({"rms_norm_grad", {g, x, w}, {g.type, w.type}, epsilon});
  // Repeated ids add up; ids another rank's block holds add nothing.
  HostTensor rows = ids({2, 3}, {4, 0, 4, 9, 4, 2});
  HostTensor rowGrads = randomFloats({2, 3, 6}, 37);
  checkCase({"embedding_grad", {rowGrads, rows}, {f32({10, 6})}});
  checkCase({"embedding_grad", {rowGrads, rows}, {f32({5, 6})},
             {Attribute::makeInteger("vocab_start", 2),
              Attribute::makeInteger("vocab_size", 10)}});
}

// A 16-bit gradient added to its f32 accumulator: exactly the f32 sum of
// the widened values; and a sum of squares without the squares stored.
TEST(HalfPrecisionKernelsTest, AccumulatingAndSquaring) {
  HostTensor acc = randomFloats({3, 40}, 38), g = randomFloats({3, 40}, 39);
  for (ElementType type : {ElementType::bf16, ElementType::f16}) {
    auto mixed = runKernel("add", {acc, narrowed(g, type)}, {acc.type});
    auto wide = runKernel("add", {acc, widened(narrowed(g, type), type)},
                          {acc.type});
    ASSERT_TRUE(mixed.isOk()) << mixed.status().message();
    ASSERT_TRUE(wide.isOk());
    EXPECT_EQ((*mixed)[0].data, (*wide)[0].data);
  }
  std::vector<float> values = valuesOf<float>(g);
  double squares = 0;
  for (float value : values)
    squares += double(value) * value;
  auto sum = runKernel("reduce_sum", {g}, {f32({})},
                       {Attribute::makeIntegers("axes", {0, 1}),
                        Attribute::makeInteger("square", 1)});
  ASSERT_TRUE(sum.isOk()) << sum.status().message();
  EXPECT_NEAR(valuesOf<float>((*sum)[0])[0], squares, 1e-6 * squares);
}

// The CPU backend implements every kernel for every element type its
// dispatch operand may have, so no valid program is refused at load.
TEST(HalfPrecisionKernelsTest, EveryKernelHasEveryTypeTheCatalogAllows) {
  for (unsigned op = 0; op < kNumOpcodes; ++op) {
    const KernelSpec &spec = getKernel(Opcode(op));
    for (unsigned type = 0; type < kNumElementTypes; ++type)
      EXPECT_EQ(cpu::kernelTable().find(spec.opcode, ElementType(type)) !=
                    nullptr,
                bool(spec.types & typeSet(ElementType(type))))
          << spec.name << " in " << elementTypeName(ElementType(type));
  }
}

//===----------------------------------------------------------------------===//
// What 16-bit programs may not do
//===----------------------------------------------------------------------===//

TEST(HalfPrecisionKernelsTest, MixedAndUnsupportedTypesAreRefused) {
  auto check = [](const std::string &kernel, std::vector<TensorType> inputs,
                  std::vector<TensorType> outputs,
                  const std::vector<Attribute> &attributes = {}) {
    Status status = verifyKernelCall(
        KernelCall(*findKernel(kernel), std::move(inputs), std::move(outputs),
                   attributes));
    return status.isOk() ? std::string("ok") : status.message();
  };
  TensorType bf16{ElementType::bf16, {2, 3}}, half{ElementType::f16, {3, 4}};
  EXPECT_EQ(check("matmul", {bf16, TensorType{ElementType::bf16, {3, 4}}},
                  {TensorType{ElementType::bf16, {2, 4}}}),
            "ok");
  EXPECT_EQ(check("matmul", {bf16, half}, {TensorType{ElementType::bf16, {2, 4}}}),
            "rhs must be bf16, got f16[3,4]");
  EXPECT_EQ(check("matmul", {TensorType{ElementType::i64, {2, 3}}, bf16},
                  {bf16}),
            "operand #0 must be f32, f16 or bf16, got i64[2,3]");
  // Master weights and optimizer state are f32.
  TensorType scalarF32{ElementType::f32, {}}, step{ElementType::i64, {}};
  EXPECT_EQ(check("adamw_update",
                  {bf16, bf16, bf16, bf16, scalarF32, step, scalarF32},
                  {bf16, bf16, bf16},
                  {Attribute::makeReal("beta1", 0.9),
                   Attribute::makeReal("beta2", 0.999),
                   Attribute::makeReal("epsilon", 1e-8),
                   Attribute::makeReal("weight_decay", 0.0)}),
            "operand #0 must be f32, got bf16[2,3]");
}

} // namespace
