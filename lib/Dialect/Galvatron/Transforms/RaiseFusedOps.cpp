//===- RaiseFusedOps.cpp - Raise decomposed patterns to fused ops ---------===//
//
// Exporters spell attention, normalizations and activations out in
// elementary ops; the rest of the compiler reasons about the fused ops. Each
// pattern anchors on the op that identifies the idiom (softmax, erf, tanh,
// sigmoid, the variance's mean, matmul) and checks the surroundings, so the
// result does not depend on the order the driver visits ops in.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/Support/Debug.h"

#include "mlir/Dialect/Traits.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

#define DEBUG_TYPE "raise-fused-ops"

namespace mlir::galvatron {
#define GEN_PASS_DEF_RAISEFUSEDOPS
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"
} // namespace mlir::galvatron

using namespace mlir;
using namespace mlir::galvatron;

namespace {

/// Traces a match: the fused op raised and the op that ended the idiom.
void traceRaise(StringRef raised, Operation *root) {
  LLVM_DEBUG(llvm::dbgs() << "raised " << raised << " at " << root->getLoc()
                          << " (the idiom ending in " << root->getName()
                          << ")\n");
}

//===----------------------------------------------------------------------===//
// Matching helpers
//===----------------------------------------------------------------------===//

RankedTensorType typeOf(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// The value of a splat constant, looking through broadcasts.
std::optional<double> getSplat(Value value) {
  if (auto broadcast = value.getDefiningOp<BroadcastOp>())
    return getSplat(broadcast.getInput());
  Attribute attr;
  if (!matchPattern(value, m_Constant(&attr)))
    return std::nullopt;
  auto elements = dyn_cast<DenseElementsAttr>(attr);
  if (!elements || !elements.isSplat())
    return std::nullopt;
  Type element = elements.getElementType();
  if (isa<FloatType>(element))
    return elements.getSplatValue<APFloat>().convertToDouble();
  if (element.isInteger(1))
    return elements.getSplatValue<bool>() ? 1.0 : 0.0;
  return static_cast<double>(elements.getSplatValue<APInt>().getSExtValue());
}

bool near(double value, double expected, double tolerance) {
  return std::fabs(value - expected) <= tolerance * std::fabs(expected);
}

/// How far constants of `value`'s element type may be from the exact
/// coefficients of an idiom (0.044715 is 0.04471 in float16).
double toleranceOf(Value value) {
  Type element = typeOf(value).getElementType();
  if (element.isF16())
    return 4e-3;
  if (element.isBF16())
    return 3e-2;
  return 1e-4;
}

bool isSplat(Value value, double expected) {
  std::optional<double> splat = getSplat(value);
  return splat && near(*splat, expected, toleranceOf(value));
}

/// The single user of `value`, when it has exactly one use.
Operation *singleUser(Value value) {
  return value.hasOneUse() ? *value.getUsers().begin() : nullptr;
}

template <typename OpTy> OpTy singleUserOf(Value value) {
  return dyn_cast_or_null<OpTy>(singleUser(value));
}

/// For a binary op with `known` as one operand, the other operand.
Value otherOperand(Operation *op, Value known) {
  if (op->getOperand(0) == known)
    return op->getOperand(1);
  if (op->getOperand(1) == known)
    return op->getOperand(0);
  return {};
}

/// A product of factors: `scale` collects constant factors (and divisions by
/// constants); intermediate products must have a single use.
struct Product {
  SmallVector<Value> factors;
  double scale = 1.0;
};

void flattenProduct(Value value, Product &product, bool isRoot = true) {
  if (std::optional<double> constant = getSplat(value)) {
    product.scale *= *constant;
    return;
  }
  if (isRoot || value.hasOneUse()) {
    if (auto mul = value.getDefiningOp<MulOp>()) {
      flattenProduct(mul.getLhs(), product, false);
      flattenProduct(mul.getRhs(), product, false);
      return;
    }
    if (auto div = value.getDefiningOp<DivOp>())
      if (std::optional<double> divisor = getSplat(div.getRhs())) {
        product.scale /= *divisor;
        flattenProduct(div.getLhs(), product, false);
        return;
      }
  }
  product.factors.push_back(value);
}

/// Whether `product` is exactly `scale` times the multiset `factors`.
bool productIs(const Product &product, ArrayRef<Value> factors, double scale,
               double tolerance) {
  if (!near(product.scale, scale, tolerance) ||
      product.factors.size() != factors.size())
    return false;
  SmallVector<Value> remaining(factors);
  for (Value factor : product.factors) {
    auto it = llvm::find(remaining, factor);
    if (it == remaining.end())
      return false;
    remaining.erase(it);
  }
  return true;
}

/// Starting at `anchor`, follows single-use mul users and returns the first
/// whose product is `scale` · `factors`, or null.
MulOp findProductRoot(Value anchor, ArrayRef<Value> factors, double scale) {
  Value current = anchor;
  while (auto mul = singleUserOf<MulOp>(current)) {
    Product product;
    flattenProduct(mul.getResult(), product);
    if (productIs(product, factors, scale, toleranceOf(anchor)))
      return mul;
    current = mul.getResult();
  }
  return {};
}

/// Whether `value` is computed from parameters and constants only.
bool isWeightDerived(Value value, int depth = 0) {
  Operation *op = value.getDefiningOp();
  if (!op || depth > 8)
    return false;
  if (isa<ParamOp>(op) || op->hasTrait<OpTrait::ConstantLike>())
    return true;
  if (!isPure(op) || op->getNumRegions())
    return false;
  return llvm::all_of(op->getOperands(), [&](Value operand) {
    return isWeightDerived(operand, depth + 1);
  });
}

/// Whether `value` is a weight holding one value per feature ([D] or
/// [1, ..., 1, D]), as the weight or bias of a norm or linear layer.
bool isFeatureVector(Value value, int64_t features) {
  auto type = typeOf(value);
  return isWeightDerived(value) && type.getNumElements() == features &&
         type.getRank() >= 1 && type.getShape().back() == features;
}

/// A feature vector as [D] (reshaping [1, ..., 1, D]).
Value asVector(PatternRewriter &rewriter, Value vector) {
  auto type = typeOf(vector);
  if (type.getRank() == 1)
    return vector;
  return ReshapeOp::create(
      rewriter, vector.getLoc(),
      RankedTensorType::get({type.getNumElements()}, type.getElementType()),
      vector);
}

/// Whether `value` reduces over the last axis keeping dimensions.
template <typename OpTy> OpTy lastAxisReduction(Value value) {
  auto reduce = value.getDefiningOp<OpTy>();
  if (!reduce || !reduce.getKeepDims() || reduce.getAxes().size() != 1)
    return {};
  int64_t rank = typeOf(reduce.getInput()).getRank();
  int64_t axis = reduce.getAxes()[0];
  return axis == rank - 1 || axis == -1 ? reduce : OpTy();
}

//===----------------------------------------------------------------------===//
// Activations
//===----------------------------------------------------------------------===//

/// Completes a GELU match: `activation` (erf or tanh of the scaled x) is
/// used as 1 + activation in the product 0.5 · x · (1 + activation).
LogicalResult replaceGelu(PatternRewriter &rewriter, Value activation, Value x,
                          GeluApproximation approximation) {
  auto onePlus = singleUserOf<AddOp>(activation);
  if (!onePlus || !isSplat(otherOperand(onePlus, activation), 1.0))
    return rewriter.notifyMatchFailure(
        activation.getLoc(), "the activation is not used as 1 + activation");
  MulOp root =
      findProductRoot(onePlus.getResult(), {x, onePlus.getResult()}, 0.5);
  if (!root || root.getType() != x.getType())
    return rewriter.notifyMatchFailure(
        activation.getLoc(), "no product 0.5 · x · (1 + activation) of x's "
        "type");
  traceRaise(approximation == GeluApproximation::tanh ? "gelu (tanh)" : "gelu",
             root);
  rewriter.replaceOpWithNewOp<GeluOp>(root, x, approximation);
  return success();
}

/// 0.5·x·(1 + erf(x/√2)) → gelu(x).
struct RaiseGeluErf : OpRewritePattern<ErfOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ErfOp erf,
                                PatternRewriter &rewriter) const override {
    Product argument;
    flattenProduct(erf.getInput(), argument);
    if (argument.factors.size() != 1 ||
        !near(argument.scale, M_SQRT1_2, toleranceOf(erf.getInput())))
      return rewriter.notifyMatchFailure(erf, "the argument is not x/√2");
    return replaceGelu(rewriter, erf.getResult(), argument.factors[0],
                       GeluApproximation::none);
  }
};

/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) → gelu(x, tanh).
struct RaiseGeluTanh : OpRewritePattern<TanhOp> {
  using OpRewritePattern::OpRewritePattern;

  /// Whether `value` is 0.044715·x³ (x·x·x or pow(x, 3)).
  static bool isCubicTerm(Value value, Value x) {
    Product product;
    flattenProduct(value, product);
    if (!near(product.scale, 0.044715, toleranceOf(value)))
      return false;
    if (product.factors.size() == 3)
      return llvm::all_of(product.factors, [&](Value f) { return f == x; });
    if (product.factors.size() != 1)
      return false;
    auto pow = product.factors[0].getDefiningOp<PowOp>();
    return pow && pow.getLhs() == x && isSplat(pow.getRhs(), 3.0) &&
           pow->hasOneUse();
  }

  LogicalResult matchAndRewrite(TanhOp tanh,
                                PatternRewriter &rewriter) const override {
    Product argument;
    flattenProduct(tanh.getInput(), argument);
    if (argument.factors.size() != 1 ||
        !near(argument.scale, std::sqrt(2.0 / M_PI),
              toleranceOf(tanh.getInput())))
      return rewriter.notifyMatchFailure(
          tanh, "the argument is not √(2/π) times one term");
    auto sum = argument.factors[0].getDefiningOp<AddOp>();
    if (!sum || !sum->hasOneUse())
      return rewriter.notifyMatchFailure(
          tanh, "the scaled term is not a sum used once");
    Value x;
    for (auto [candidate, other] : {std::pair(sum.getLhs(), sum.getRhs()),
                                    std::pair(sum.getRhs(), sum.getLhs())})
      if (isCubicTerm(other, candidate))
        x = candidate;
    if (!x)
      return rewriter.notifyMatchFailure(
          tanh, "the sum has no 0.044715·x³ term");
    return replaceGelu(rewriter, tanh.getResult(), x, GeluApproximation::tanh);
  }
};

/// x·sigmoid(x) → silu(x).
struct RaiseSilu : OpRewritePattern<SigmoidOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SigmoidOp sigmoid,
                                PatternRewriter &rewriter) const override {
    auto mul = singleUserOf<MulOp>(sigmoid.getResult());
    Value x = sigmoid.getInput();
    if (!mul || otherOperand(mul, sigmoid.getResult()) != x ||
        mul.getType() != x.getType())
      return rewriter.notifyMatchFailure(
          sigmoid, "not multiplied by its own input");
    traceRaise("silu", mul);
    rewriter.replaceOpWithNewOp<SiluOp>(mul, x);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Normalizations
//===----------------------------------------------------------------------===//

/// Anchored on the mean of squares: mean(y²) + ε → sqrt → y / sqrt(...)
/// (or y·rsqrt, y·(1/sqrt)) → ·w → +b, where y is x (RMS norm) or
/// x − mean(x) (layer norm).
struct RaiseNorm : OpRewritePattern<ReduceMeanOp> {
  using OpRewritePattern::OpRewritePattern;

  /// The y of y² (pow(y, 2) or y·y).
  static Value squaredValue(Value square) {
    if (auto pow = square.getDefiningOp<PowOp>())
      return isSplat(pow.getRhs(), 2.0) ? pow.getLhs() : Value();
    if (auto mul = square.getDefiningOp<MulOp>())
      return mul.getLhs() == mul.getRhs() ? mul.getLhs() : Value();
    return {};
  }

  /// From sqrt(variance + ε) (or its rsqrt), the op computing
  /// y / sqrt(...) and the single-use ops in between; null if absent.
  static Operation *findNormalized(Value varianceEps, Value y) {
    Operation *user = singleUser(varianceEps);
    if (auto rsqrt = dyn_cast_or_null<RsqrtOp>(user)) {
      auto mul = singleUserOf<MulOp>(rsqrt.getResult());
      return mul && otherOperand(mul, rsqrt.getResult()) == y ? mul : nullptr;
    }
    auto sqrt = dyn_cast_or_null<SqrtOp>(user);
    if (!sqrt)
      return nullptr;
    Operation *next = singleUser(sqrt.getResult());
    if (auto div = dyn_cast_or_null<DivOp>(next)) {
      if (div.getLhs() == y && div.getRhs() == sqrt.getResult())
        return div;
      // 1 / sqrt(...) multiplied into y.
      if (div.getRhs() == sqrt.getResult() && isSplat(div.getLhs(), 1.0)) {
        auto mul = singleUserOf<MulOp>(div.getResult());
        return mul && otherOperand(mul, div.getResult()) == y ? mul : nullptr;
      }
      return nullptr;
    }
    if (auto reciprocal = dyn_cast_or_null<ReciprocalOp>(next)) {
      auto mul = singleUserOf<MulOp>(reciprocal.getResult());
      return mul && otherOperand(mul, reciprocal.getResult()) == y ? mul
                                                                   : nullptr;
    }
    return nullptr;
  }

  LogicalResult matchAndRewrite(ReduceMeanOp variance,
                                PatternRewriter &rewriter) const override {
    if (variance != lastAxisReduction<ReduceMeanOp>(variance.getResult()))
      return rewriter.notifyMatchFailure(
          variance, "not a mean over the last axis");
    Value y = squaredValue(variance.getInput());
    if (!y || !variance.getInput().hasOneUse())
      return rewriter.notifyMatchFailure(
          variance, "not the mean of a square used once");
    auto plusEps = singleUserOf<AddOp>(variance.getResult());
    if (!plusEps)
      return rewriter.notifyMatchFailure(
          variance, "the variance is not used once, in a sum with epsilon");
    std::optional<double> epsilon =
        getSplat(otherOperand(plusEps, variance.getResult()));
    if (!epsilon || *epsilon <= 0.0)
      return rewriter.notifyMatchFailure(
          variance, "no positive constant epsilon is added to the variance");
    Operation *normalized = findNormalized(plusEps.getResult(), y);
    if (!normalized)
      return rewriter.notifyMatchFailure(
          variance, "nothing is normalized by the root of variance + epsilon");

    // Layer norm centers: y = x − mean(x).
    Value x = y;
    bool layerNorm = false;
    if (auto centered = y.getDefiningOp<SubOp>()) {
      auto mean = lastAxisReduction<ReduceMeanOp>(centered.getRhs());
      if (mean && mean.getInput() == centered.getLhs()) {
        x = centered.getLhs();
        layerNorm = true;
        // The centered value feeds only the square and the division.
        if (!llvm::all_of(y.getUsers(), [&](Operation *user) {
              return user == variance.getInput().getDefiningOp() ||
                     user == normalized;
            }))
          return rewriter.notifyMatchFailure(
              variance, "the centered value has other users");
      }
    }
    auto type = typeOf(x);
    if (type.getRank() < 1 || normalized->getResult(0).getType() != type ||
        !isa<FloatType>(type.getElementType()))
      return rewriter.notifyMatchFailure(
          variance, "the normalized value is not a float tensor of the "
          "input's type");
    int64_t features = type.getShape().back();

    // Optional affine part: · w, then (layer norm) + b.
    Operation *root = normalized;
    Value weight, bias;
    if (auto scale = singleUserOf<MulOp>(normalized->getResult(0))) {
      Value candidate = otherOperand(scale, normalized->getResult(0));
      if (isFeatureVector(candidate, features) && scale.getType() == type) {
        weight = candidate;
        root = scale;
      }
    }
    if (weight && layerNorm)
      if (auto shift = singleUserOf<AddOp>(root->getResult(0))) {
        Value candidate = otherOperand(shift, root->getResult(0));
        if (isFeatureVector(candidate, features) && shift.getType() == type) {
          bias = candidate;
          root = shift;
        }
      }
    if (!weight && features > ConstantOp::kMaxElements)
      return rewriter.notifyMatchFailure(
          variance, "no affine weight, and too many features for a constant "
          "one");

    // Rewrite at the last op, which every operand dominates, with the affine
    // parameters as [D] vectors.
    rewriter.setInsertionPoint(root);
    auto vectorType = RankedTensorType::get({features}, type.getElementType());
    weight = weight ? asVector(rewriter, weight) : weight;
    bias = bias ? asVector(rewriter, bias) : bias;
    if (!weight)
      weight = ConstantOp::create(
          rewriter, root->getLoc(), vectorType,
          DenseElementsAttr::get(
              vectorType, rewriter.getFloatAttr(type.getElementType(), 1.0)));
    FloatAttr eps = rewriter.getF64FloatAttr(*epsilon);
    Location loc = rewriter.getFusedLoc({variance.getLoc(), root->getLoc()});
    traceRaise(layerNorm ? "layer_norm" : "rms_norm", root);
    if (layerNorm)
      rewriter.replaceOp(
          root, LayerNormOp::create(rewriter, loc, type, x, weight, bias, eps));
    else
      rewriter.replaceOp(
          root, RMSNormOp::create(rewriter, loc, type, x, weight, eps));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Linear layers
//===----------------------------------------------------------------------===//

/// matmul(x, W) with a 2-D weight → linear(x, W).
struct RaiseLinear : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatmulOp matmul,
                                PatternRewriter &rewriter) const override {
    Value weight = matmul.getRhs();
    if (matmul.getTransposeLhs() || typeOf(weight).getRank() != 2 ||
        !isWeightDerived(weight))
      return rewriter.notifyMatchFailure(
          matmul, "not x·W with a 2-D weight derived from parameters");
    // A 2-D right operand has no batch dimensions: x·W is a linear layer.
    traceRaise("linear", matmul);
    rewriter.replaceOpWithNewOp<LinearOp>(matmul, matmul.getLhs(), weight,
                                          Value(), matmul.getTransposeRhs());
    return success();
  }
};

/// linear(x, transpose(W)) → linear(x, W) with the other weight layout.
struct FoldLinearWeightTranspose : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp linear,
                                PatternRewriter &rewriter) const override {
    auto transpose = linear.getWeight().getDefiningOp<TransposeOp>();
    if (!transpose || transpose.getPerm() != ArrayRef<int64_t>{1, 0})
      return rewriter.notifyMatchFailure(
          linear, "the weight is not a 2-D transpose");
    traceRaise("linear with the transpose folded into its weight layout",
               linear);
    rewriter.modifyOpInPlace(linear, [&]() {
      linear.getWeightMutable().assign(transpose.getInput());
      linear.setTransposeWeight(!linear.getTransposeWeight());
    });
    return success();
  }
};

/// linear(x, W) + b → linear(x, W, b) for a [N] bias.
struct FoldLinearBias : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    for (Value operand : {add.getLhs(), add.getRhs()}) {
      auto linear = operand.getDefiningOp<LinearOp>();
      if (!linear || linear.getBias() || !linear->hasOneUse() ||
          linear.getType() != add.getType())
        continue;
      Value bias = otherOperand(add, operand);
      if (!isFeatureVector(bias, linear.getOutFeatures()))
        continue;
      traceRaise("linear with its bias", add);
      rewriter.replaceOpWithNewOp<LinearOp>(
          add, linear.getInput(), linear.getWeight(), asVector(rewriter, bias),
          linear.getTransposeWeight());
      return success();
    }
    return rewriter.notifyMatchFailure(
        add, "no single-use linear with a [N] bias addend");
  }
};

/// reshape(linear(y), [d..., N]) with y: [Πd, K] → linear(reshape(y,
/// [d..., K])): the flattening around Hugging Face's Conv1D (addmm) and Gemm
/// moves to the input, where it usually cancels with the reshape making y.
struct CollapseLinearReshape : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp outer,
                                PatternRewriter &rewriter) const override {
    auto linear = outer.getInput().getDefiningOp<LinearOp>();
    if (!linear || !linear->hasOneUse())
      return rewriter.notifyMatchFailure(
          outer, "not a reshape of a linear used once");
    ArrayRef<int64_t> input = linear.getInput().getType().getShape();
    ArrayRef<int64_t> result = outer.getType().getShape();
    if (input.size() != 2 || result.size() < 2 ||
        result.back() != linear.getOutFeatures())
      return rewriter.notifyMatchFailure(
          outer, "not a 2-D linear reshaped to [..., N]");
    int64_t rows = 1;
    for (int64_t dim : result.drop_back())
      rows *= dim;
    if (rows != input[0])
      return rewriter.notifyMatchFailure(
          outer, "the rows do not match the leading dimensions");
    SmallVector<int64_t> shape(result.drop_back());
    shape.push_back(input[1]);
    traceRaise("linear with the reshape moved to its input", outer);
    Value reshaped = ReshapeOp::create(
        rewriter, outer.getLoc(),
        RankedTensorType::get(shape,
                              linear.getInput().getType().getElementType()),
        linear.getInput());
    rewriter.replaceOpWithNewOp<LinearOp>(outer, reshaped, linear.getWeight(),
                                          linear.getBias(),
                                          linear.getTransposeWeight());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Rotary embeddings
//===----------------------------------------------------------------------===//

/// A rotary position table in the form the ONNX importer builds it:
/// concat(h, h) of one half h of rotary(basis) at positions 0..S-1, with
/// basis rows [1 ... 1, 0 ... 0] (giving [cos | sin]), reshaped or
/// broadcast to [..., S, D].
struct RotaryTable {
  double theta;
  bool sine;
  int64_t rows, dim;
};

std::optional<RotaryTable> matchRotaryTable(Value value) {
  ArrayRef<int64_t> shape = typeOf(value).getShape();
  while (isa_and_nonnull<ReshapeOp, BroadcastOp>(value.getDefiningOp()))
    value = value.getDefiningOp()->getOperand(0);
  auto concat = value.getDefiningOp<ConcatOp>();
  if (!concat || concat.getInputs().size() != 2 || concat.getAxis() != 1 ||
      concat.getInputs()[0] != concat.getInputs()[1])
    return std::nullopt;
  auto half = concat.getInputs()[0].getDefiningOp<SliceOp>();
  if (!half)
    return std::nullopt;
  auto rotary = half.getInput().getDefiningOp<RotaryOp>();
  if (!rotary || rotary.getSeqAxis() != 0 || rotary.getInterleaved())
    return std::nullopt;
  ArrayRef<int64_t> full = rotary.getType().getShape();
  if (full.size() != 2 || shape.size() < 2 || shape.take_back(2) != full ||
      rotary.getEffectiveRotaryDim() != full[1])
    return std::nullopt;
  int64_t rows = full[0], dim = full[1], width = dim / 2;
  bool sine = half.getStarts() == ArrayRef<int64_t>{0, width};
  if ((!sine && half.getStarts() != ArrayRef<int64_t>{0, 0}) ||
      half.getLimits() != ArrayRef<int64_t>{rows, sine ? dim : width} ||
      half.getStrides() != ArrayRef<int64_t>{1, 1})
    return std::nullopt;
  // The basis: every row is width ones then width zeros.
  Value basis = rotary.getInput();
  if (auto broadcast = basis.getDefiningOp<BroadcastOp>())
    basis = broadcast.getInput();
  DenseElementsAttr elements;
  if (!matchPattern(basis, m_Constant(&elements)) ||
      !isa<FloatType>(elements.getElementType()))
    return std::nullopt;
  for (auto [index, element] : llvm::enumerate(elements.getValues<APFloat>()))
    if (element.convertToDouble() != (int64_t(index) % dim < width ? 1.0 : 0.0))
      return std::nullopt;
  return RotaryTable{rotary.getTheta().convertToDouble(), sine, rows, dim};
}

/// Whether `value` is rotate_half(x) = concat(-x[..., D/2:], x[..., :D/2]).
bool isRotateHalf(Value value, Value x) {
  auto concat = value.getDefiningOp<ConcatOp>();
  auto type = typeOf(x);
  int64_t rank = type.getRank(), dim = type.getShape().back();
  if (!concat || concat.getInputs().size() != 2 || dim % 2)
    return false;
  int64_t axis = concat.getAxis();
  if (axis != rank - 1 && axis != -1)
    return false;
  auto isHalf = [&](Value candidate, int64_t start) {
    auto slice = candidate.getDefiningOp<SliceOp>();
    if (!slice || slice.getInput() != x)
      return false;
    SmallVector<int64_t> starts(rank, 0), limits(type.getShape());
    starts.back() = start;
    limits.back() = start + dim / 2;
    return slice.getStarts() == ArrayRef<int64_t>(starts) &&
           slice.getLimits() == ArrayRef<int64_t>(limits) &&
           llvm::all_of(slice.getStrides(), [](int64_t s) { return s == 1; });
  };
  auto negated = concat.getInputs()[0].getDefiningOp<NegOp>();
  return negated && isHalf(negated.getInput(), dim / 2) &&
         isHalf(concat.getInputs()[1], 0);
}

/// x·cos + rotate_half(x)·sin with rotary tables → rotary(x).
struct RaiseRotary : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    for (auto [cosTerm, sinTerm] : {std::pair(add.getLhs(), add.getRhs()),
                                    std::pair(add.getRhs(), add.getLhs())}) {
      auto cosMul = cosTerm.getDefiningOp<MulOp>();
      auto sinMul = sinTerm.getDefiningOp<MulOp>();
      if (!cosMul || !sinMul)
        continue;
      for (auto [x, cosTable] : {std::pair(cosMul.getLhs(), cosMul.getRhs()),
                                 std::pair(cosMul.getRhs(), cosMul.getLhs())}) {
        std::optional<RotaryTable> cos = matchRotaryTable(cosTable);
        auto type = typeOf(x);
        if (!cos || cos->sine || add.getType() != type || type.getRank() < 2 ||
            type.getShape().take_back(2) !=
                ArrayRef<int64_t>{cos->rows, cos->dim})
          continue;
        for (auto [rotated, sinTable] :
             {std::pair(sinMul.getLhs(), sinMul.getRhs()),
              std::pair(sinMul.getRhs(), sinMul.getLhs())}) {
          std::optional<RotaryTable> sin = matchRotaryTable(sinTable);
          if (!sin || !sin->sine || sin->theta != cos->theta ||
              sin->rows != cos->rows || sin->dim != cos->dim ||
              !isRotateHalf(rotated, x))
            continue;
          traceRaise("rotary", add);
          rewriter.replaceOpWithNewOp<RotaryOp>(
              add, type, x, rewriter.getI64IntegerAttr(type.getRank() - 2),
              rewriter.getF64FloatAttr(cos->theta), IntegerAttr(),
              rewriter.getBoolAttr(false));
          return success();
        }
      }
    }
    return rewriter.notifyMatchFailure(
        add, "not x·cos + rotate_half(x)·sin with matching rotary tables");
  }
};

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Whether `mask` is a causal mask: select(tril_mask(0), 0-or-true,
/// fill) with a large negative fill, possibly broadcast.
bool isCausalMaskTerm(Value term) {
  if (auto broadcast = term.getDefiningOp<BroadcastOp>())
    return isCausalMaskTerm(broadcast.getInput());
  auto select = term.getDefiningOp<SelectOp>();
  if (!select)
    return false;
  auto tril = select.getCondition().getDefiningOp<TrilMaskOp>();
  std::optional<double> fill = getSplat(select.getRhs());
  return tril && tril.getDiagonal() == 0 && isSplat(select.getLhs(), 0.0) &&
         fill && *fill <= -1e4;
}

bool isCausalCondition(Value condition) {
  if (auto broadcast = condition.getDefiningOp<BroadcastOp>())
    return isCausalCondition(broadcast.getInput());
  auto tril = condition.getDefiningOp<TrilMaskOp>();
  return tril && tril.getDiagonal() == 0;
}

/// The terms of a sum (through add ops of any use count; the terms
/// broadcast to the sum's shape, so re-adding them gives the same sum).
void flattenSum(Value value, SmallVectorImpl<Value> &terms) {
  if (auto add = value.getDefiningOp<AddOp>()) {
    flattenSum(add.getLhs(), terms);
    flattenSum(add.getRhs(), terms);
    return;
  }
  terms.push_back(value);
}

/// softmax(scale · Q·Kᵀ + masks) · V → attention(Q, K, V, mask).
struct RaiseAttention : OpRewritePattern<SoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;

  /// Whether `value` leads to the scores matmul through the ops the chain
  /// may contain.
  static bool leadsToScores(Value value, int depth = 0) {
    Operation *op = value.getDefiningOp();
    if (!op || depth > 8 || !value.hasOneUse())
      return false;
    if (auto matmul = dyn_cast<MatmulOp>(op))
      return typeOf(matmul.getLhs()).getRank() == 4 &&
             typeOf(matmul.getRhs()).getRank() == 4;
    if (auto add = dyn_cast<AddOp>(op))
      return leadsToScores(add.getLhs(), depth + 1) ||
             leadsToScores(add.getRhs(), depth + 1);
    if (auto select = dyn_cast<SelectOp>(op))
      return leadsToScores(select.getLhs(), depth + 1) ||
             leadsToScores(select.getRhs(), depth + 1);
    if (isa<MulOp, DivOp>(op))
      for (unsigned i = 0; i < 2; ++i)
        if (getSplat(op->getOperand(1 - i)) &&
            leadsToScores(op->getOperand(i), depth + 1))
          return true;
    return false;
  }

  /// How to get K ([B, H, T, D]) from the scores' right operand: `source`
  /// permuted by `perm` (none when empty).
  struct KeyPlan {
    Value source;
    SmallVector<int64_t> perm;
  };

  static KeyPlan planKey(MatmulOp scores) {
    Value rhs = scores.getRhs();
    if (scores.getTransposeRhs())
      return {rhs, {}};
    SmallVector<int64_t> swap = {0, 1, 3, 2};
    if (auto transpose = rhs.getDefiningOp<TransposeOp>()) {
      SmallVector<int64_t> composed;
      for (int64_t dim : swap)
        composed.push_back(transpose.getPerm()[dim]);
      if (composed == SmallVector<int64_t>{0, 1, 2, 3})
        return {transpose.getInput(), {}};
      return {transpose.getInput(), composed};
    }
    return {rhs, swap};
  }

  static SmallVector<int64_t> plannedShape(const KeyPlan &plan) {
    ArrayRef<int64_t> shape = typeOf(plan.source).getShape();
    if (plan.perm.empty())
      return SmallVector<int64_t>(shape);
    SmallVector<int64_t> result;
    for (int64_t dim : plan.perm)
      result.push_back(shape[dim]);
    return result;
  }

  /// For K/V expanded by repeat_kv (reshape to [B, Hkv, 1, T, D],
  /// broadcast to [B, Hkv, r, T, D], reshape to [B, Hkv·r, T, D]), the
  /// unexpanded [B, Hkv, T, D] tensor.
  static Value unexpandHeads(Value value) {
    auto merge = value.getDefiningOp<ReshapeOp>();
    if (!merge)
      return {};
    auto broadcast = merge.getInput().getDefiningOp<BroadcastOp>();
    if (!broadcast)
      return {};
    auto split = broadcast.getInput().getDefiningOp<ReshapeOp>();
    if (!split)
      return {};
    ArrayRef<int64_t> full = broadcast.getType().getShape();
    ArrayRef<int64_t> single = split.getType().getShape();
    ArrayRef<int64_t> source = split.getInput().getType().getShape();
    if (full.size() != 5 || source.size() != 4 ||
        single != ArrayRef<int64_t>{full[0], full[1], 1, full[3], full[4]} ||
        source != ArrayRef<int64_t>{full[0], full[1], full[3], full[4]})
      return {};
    return split.getInput();
  }

  /// A mask the scores pass through `select(condition, ...)`: the fill goes
  /// where the scores are dropped.
  struct SelectMask {
    Value condition, fill;
    bool keepTrue;
  };

  LogicalResult matchAndRewrite(SoftmaxOp softmax,
                                PatternRewriter &rewriter) const override {
    auto type = softmax.getType();
    int64_t axis = softmax.getAxis();
    if (type.getRank() != 4 || (axis != 3 && axis != -1) ||
        !isa<FloatType>(type.getElementType()))
      return rewriter.notifyMatchFailure(
          softmax, "not a float softmax over the last axis of a 4-D tensor");
    auto output = singleUserOf<MatmulOp>(softmax.getResult());
    if (!output || output.getLhs() != softmax.getResult() ||
        output.getTransposeLhs() || output.getTransposeRhs())
      return rewriter.notifyMatchFailure(
          softmax, "not followed by a product with the values");

    // Walk from the softmax input back to Q·Kᵀ.
    double scale = 1.0;
    bool causal = false;
    SmallVector<Value> maskTerms;
    SmallVector<SelectMask> selectMasks;
    Value current = softmax.getInput();
    MatmulOp scores;
    while (!scores) {
      Operation *op = current.getDefiningOp();
      if (!op || !current.hasOneUse())
        return rewriter.notifyMatchFailure(
            softmax, "a value between the scores and the softmax has several "
            "uses");
      if (auto matmul = dyn_cast<MatmulOp>(op)) {
        scores = matmul;
      } else if (auto add = dyn_cast<AddOp>(op)) {
        bool left = leadsToScores(add.getLhs());
        Value path = left ? add.getLhs() : add.getRhs();
        if ((!left && !leadsToScores(path)) ||
            path.getType() != current.getType())
          return rewriter.notifyMatchFailure(
              softmax, "an added term is not a mask");
        maskTerms.push_back(otherOperand(add, path));
        current = path;
      } else if (auto select = dyn_cast<SelectOp>(op)) {
        // select(c, scores, fill) keeps scores where c holds;
        // select(c, fill, scores) where it does not.
        bool keepTrue = leadsToScores(select.getLhs());
        Value path = keepTrue ? select.getLhs() : select.getRhs();
        Value fill = keepTrue ? select.getRhs() : select.getLhs();
        std::optional<double> fillValue = getSplat(fill);
        if (!fillValue || *fillValue > -1e4 ||
            path.getType() != current.getType() ||
            (!keepTrue && !leadsToScores(path)) ||
            typeOf(fill).getElementType() != type.getElementType())
          return rewriter.notifyMatchFailure(
              softmax, "a select does not fill with a large negative constant");
        if (keepTrue && isCausalCondition(select.getCondition()))
          causal = true;
        else
          selectMasks.push_back({select.getCondition(), fill, keepTrue});
        current = path;
      } else if (isa<MulOp, DivOp>(op)) {
        std::optional<double> factor = getSplat(op->getOperand(1));
        Value path = op->getOperand(0);
        if (!factor && isa<MulOp>(op)) {
          factor = getSplat(op->getOperand(0));
          path = op->getOperand(1);
        }
        if (!factor || *factor == 0.0 || path.getType() != current.getType())
          return rewriter.notifyMatchFailure(
              softmax, "a scaling factor is not a non-zero constant");
        scale = isa<MulOp>(op) ? scale * *factor : scale / *factor;
        current = path;
      } else {
        return rewriter.notifyMatchFailure(
            softmax, "an op between the scores and the softmax is not a mask, "
            "scale or select");
      }
    }
    if (scores.getTransposeLhs())
      return rewriter.notifyMatchFailure(
          softmax, "the scores' query is transposed");
    Value query = scores.getLhs();
    if (auto scaled = query.getDefiningOp<MulOp>())
      if (scaled->hasOneUse())
        if (std::optional<double> factor = getSplat(scaled.getRhs())) {
          scale *= *factor;
          query = scaled.getLhs();
        }
    KeyPlan keyPlan = planKey(scores);
    Value value = output.getRhs();
    auto queryType = typeOf(query), valueType = typeOf(value);
    SmallVector<int64_t> keyShape = plannedShape(keyPlan);
    // Grouped-query attention: K and V before repeat_kv.
    if (keyPlan.perm.empty()) {
      Value keyHeads = unexpandHeads(keyPlan.source);
      Value valueHeads = unexpandHeads(value);
      if (keyHeads && valueHeads &&
          typeOf(keyHeads).getShape()[1] == typeOf(valueHeads).getShape()[1]) {
        keyPlan.source = keyHeads;
        value = valueHeads;
        keyShape.assign(typeOf(keyHeads).getShape().begin(),
                        typeOf(keyHeads).getShape().end());
        valueType = typeOf(value);
      }
    }
    // The checks of attention's shape inference, so creating it cannot fail.
    Type element = type.getElementType();
    if (queryType.getRank() != 4 || keyShape.size() != 4 ||
        valueType.getRank() != 4 || queryType.getElementType() != element ||
        typeOf(keyPlan.source).getElementType() != element ||
        valueType.getElementType() != element)
      return rewriter.notifyMatchFailure(
          softmax, "query, key and value are not 4-D tensors of the softmax's "
          "type");
    int64_t batch = queryType.getShape()[0], heads = queryType.getShape()[1];
    int64_t seq = queryType.getShape()[2], keyLen = keyShape[2];
    int64_t kvHeads = keyShape[1];
    if (keyShape[0] != batch || valueType.getShape()[0] != batch ||
        valueType.getShape()[1] != kvHeads || kvHeads == 0 ||
        heads % kvHeads != 0 || keyShape[3] != queryType.getShape()[3] ||
        valueType.getShape()[2] != keyLen || (causal && seq != keyLen))
      return rewriter.notifyMatchFailure(
          softmax, "query, key and value shapes do not form attention");

    // Masks: causal terms become the flag, zeros vanish, the rest add up.
    SmallVector<Value> terms, additive;
    for (Value term : maskTerms)
      flattenSum(term, terms);
    SmallVector<int64_t> full = {batch, heads, seq, keyLen};
    auto broadcastsToScores = [&](ArrayRef<int64_t> shape) {
      SmallVector<int64_t> result;
      return shape.size() <= 4 &&
             OpTrait::util::getBroadcastedShape(shape, full, result) &&
             ArrayRef<int64_t>(result) == ArrayRef<int64_t>(full);
    };
    for (Value term : terms) {
      if (isSplat(term, 0.0))
        continue;
      if (seq == keyLen && isCausalMaskTerm(term)) {
        causal = true;
        continue;
      }
      if (typeOf(term).getElementType() != element ||
          !broadcastsToScores(typeOf(term).getShape()))
        return rewriter.notifyMatchFailure(
            softmax, "a mask term does not broadcast to the scores");
      additive.push_back(term);
    }
    for (const SelectMask &select : selectMasks)
      if (!broadcastsToScores(typeOf(select.condition).getShape()) ||
          !broadcastsToScores(typeOf(select.fill).getShape()))
        return rewriter.notifyMatchFailure(
            softmax, "a select mask does not broadcast to the scores");
    auto outputType = RankedTensorType::get(
        {batch, heads, seq, valueType.getShape()[3]}, element);
    if (outputType != output.getType())
      return rewriter.notifyMatchFailure(
          softmax, "the product with the values is not [batch, heads, seq, "
          "dv]");

    // Rewrite at the product with V, which every operand dominates.
    rewriter.setInsertionPoint(output);
    Location loc = rewriter.getFusedLoc({softmax.getLoc(), output.getLoc()});
    Value key =
        keyPlan.perm.empty()
            ? keyPlan.source
            : TransposeOp::create(rewriter, loc, keyPlan.source, keyPlan.perm)
                  .getResult();
    Value mask;
    auto accumulate = [&](Value term) {
      mask = mask ? AddOp::create(rewriter, loc, mask, term).getResult() : term;
    };
    for (Value term : additive)
      accumulate(term);
    for (const SelectMask &select : selectMasks) {
      auto scalarType = RankedTensorType::get({}, element);
      Value zero = ConstantOp::create(
          rewriter, loc, scalarType,
          DenseElementsAttr::get(scalarType,
                                 rewriter.getFloatAttr(element, 0.0)));
      accumulate(select.keepTrue
                     ? SelectOp::create(rewriter, loc, select.condition, zero,
                                        select.fill)
                     : SelectOp::create(rewriter, loc, select.condition,
                                        select.fill, zero));
    }
    double headDim = static_cast<double>(queryType.getShape()[3]);
    FloatAttr scaleAttr;
    if (!near(scale, 1.0 / std::sqrt(headDim), 1e-6))
      scaleAttr = rewriter.getF64FloatAttr(scale);
    traceRaise(causal ? "attention (causal)" : "attention", output);
    rewriter.replaceOpWithNewOp<AttentionOp>(output, query, key, value, mask,
                                             causal, scaleAttr);
    return success();
  }
};

} // namespace

namespace mlir::galvatron {
namespace {
struct RaiseFusedOpsPass : impl::RaiseFusedOpsBase<RaiseFusedOpsPass> {
  using RaiseFusedOpsBase::RaiseFusedOpsBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseGeluErf, RaiseGeluTanh, RaiseSilu, RaiseNorm, RaiseLinear,
                 FoldLinearWeightTranspose, FoldLinearBias,
                 CollapseLinearReshape, RaiseRotary, RaiseAttention>(
        &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
} // namespace mlir::galvatron
