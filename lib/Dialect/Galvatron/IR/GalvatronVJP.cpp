//===- GalvatronVJP.cpp - Reverse-mode rules of the galvatron ops ---------===//
//
// One vector-Jacobian rule per differentiable op. Each rule states the
// forward values it reads (`getVJPPrimals`) and builds the gradients of its
// wanted operands from the gradients of its results (`buildVJP`). The
// autodiff engine in lib/Transforms decides where these forward values come
// from (saved, recomputed or re-read) and how gradients accumulate.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "llvm/Support/ErrorHandling.h"

#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::galvatron;

//===----------------------------------------------------------------------===//
// VJPBuilder
//===----------------------------------------------------------------------===//

Value VJPBuilder::primal(Value forward) {
  Value value = lookup(forward);
  if (!value)
    llvm::report_fatal_error(
        llvm::Twine("VJP rule of '") + op->getName().getStringRef() +
        "' reads a forward value it did not declare in getVJPPrimals");
  return value;
}

void VJPBuilder::setGradient(unsigned index, Value gradient) {
  if (wanted[index])
    operandGradients[index] = gradient;
}

Value mlir::galvatron::buildScalar(OpBuilder &builder, Location loc,
                                   double value, Type elementType) {
  auto type = RankedTensorType::get({}, elementType);
  Attribute element = isa<FloatType>(elementType)
                          ? Attribute(FloatAttr::get(elementType, value))
                          : Attribute(IntegerAttr::get(
                                elementType, static_cast<int64_t>(value)));
  return ConstantOp::create(builder, loc, type,
                            DenseElementsAttr::get(type, element));
}

Value mlir::galvatron::buildZeros(OpBuilder &builder, Location loc,
                                  RankedTensorType type) {
  Value zero = buildScalar(builder, loc, 0.0, type.getElementType());
  if (type.getRank() == 0)
    return zero;
  return BroadcastOp::create(builder, loc, type, zero);
}

Value VJPBuilder::sumToShape(Value gradient, RankedTensorType type) {
  auto gradType = cast<RankedTensorType>(gradient.getType());
  if (gradType.getShape() == type.getShape())
    return gradient;
  int64_t offset = gradType.getRank() - type.getRank();
  SmallVector<int64_t> axes;
  for (int64_t dim = 0; dim < gradType.getRank(); ++dim)
    if (dim < offset ||
        (type.getDimSize(dim - offset) == 1 && gradType.getDimSize(dim) != 1))
      axes.push_back(dim);
  Value sum = axes.empty() ? gradient
                           : Value(ReduceSumOp::create(builder, getLoc(),
                                                       gradient, axes, false));
  auto target =
      RankedTensorType::get(type.getShape(), gradType.getElementType());
  if (sum.getType() == target)
    return sum;
  return ReshapeOp::create(builder, getLoc(), target, sum);
}

Value VJPBuilder::broadcastTo(Value value, RankedTensorType type) {
  auto valueType = cast<RankedTensorType>(value.getType());
  if (valueType.getShape() == type.getShape())
    return value;
  return BroadcastOp::create(
      builder, getLoc(),
      RankedTensorType::get(type.getShape(), valueType.getElementType()),
      value);
}

Value VJPBuilder::castTo(Value value, RankedTensorType type) {
  auto valueType = cast<RankedTensorType>(value.getType());
  if (valueType.getElementType() == type.getElementType())
    return value;
  return CastOp::create(
      builder, getLoc(),
      RankedTensorType::get(valueType.getShape(), type.getElementType()),
      value);
}

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

static RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

static Type elementType(Value value) {
  return tensorType(value).getElementType();
}

namespace {
/// Shorthands for building rule bodies.
struct RuleBuilder {
  VJPBuilder &vjp;
  OpBuilder &b;
  Location loc;

  explicit RuleBuilder(VJPBuilder &vjp)
      : vjp(vjp), b(vjp.getBuilder()), loc(vjp.getLoc()) {}

  Value add(Value x, Value y) { return AddOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return MulOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return DivOp::create(b, loc, x, y); }
  Value neg(Value x) { return NegOp::create(b, loc, x); }
  /// `x` times the constant `c` of x's element type.
  Value scale(Value x, double c) {
    Value factor = vjp.scalar(c, elementType(x));
    return mul(x, factor);
  }
  Value compare(ComparePredicate predicate, Value x, Value y) {
    return CompareOp::create(b, loc, predicate, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return SelectOp::create(b, loc, c, x, y);
  }
  Value zero(Value like) { return vjp.scalar(0.0, elementType(like)); }
  Value reshape(Value x, ArrayRef<int64_t> shape) {
    return ReshapeOp::create(b, loc,
                             RankedTensorType::get(shape, elementType(x)), x);
  }
  Value transpose(Value x, ArrayRef<int64_t> perm) {
    return TransposeOp::create(b, loc, x, perm);
  }
};
} // namespace

/// The shape `input` has after reducing `axes` with keep_dims.
static SmallVector<int64_t> keptDimsShape(RankedTensorType input,
                                          ArrayRef<int64_t> axes) {
  SmallVector<int64_t> shape(input.getShape());
  for (int64_t axis : axes)
    shape[axis < 0 ? axis + input.getRank() : axis] = 1;
  return shape;
}

static SmallVector<int64_t> invertPermutation(ArrayRef<int64_t> perm) {
  SmallVector<int64_t> inverse(perm.size());
  for (auto [index, dim] : llvm::enumerate(perm))
    inverse[dim] = index;
  return inverse;
}

/// Products: the gradient of each factor reads the other factor.
static void appendOtherFactors(ArrayRef<bool> wanted, Value first, Value second,
                               SmallVectorImpl<Value> &values) {
  if (wanted[0])
    values.push_back(second);
  if (wanted[1])
    values.push_back(first);
}

//===----------------------------------------------------------------------===//
// Parameters and casts
//===----------------------------------------------------------------------===//

void ParamOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult ParamOp::buildVJP(VJPBuilder &vjp) {
  vjp.addVariableGradient(getNameAttr(), vjp.resultGradient(0));
  return success();
}

//===----------------------------------------------------------------------===//
// Pipeline messages: the gradient travels back on the same channel
//===----------------------------------------------------------------------===//

void SendOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

bool SendOp::isGradientSource() { return true; }

LogicalResult SendOp::buildVJP(VJPBuilder &vjp) {
  Value gradient =
      RecvOp::create(vjp.getBuilder(), vjp.getLoc(), getValue().getType(),
                     getPeer(), getTag(), /*differentiable=*/false);
  vjp.setGradient(0, gradient);
  return success();
}

void RecvOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

// The peer's adjoint waits for this gradient even when the loss does not
// use the value, so the adjoint always runs.
bool RecvOp::isGradientSource() { return getDifferentiable(); }

bool RecvOp::isVariedSource() { return getDifferentiable(); }

LogicalResult RecvOp::buildVJP(VJPBuilder &vjp) {
  Value gradient = vjp.resultGradient(0);
  if (!gradient)
    gradient = vjp.zeros(cast<RankedTensorType>(getType()));
  SendOp::create(vjp.getBuilder(), vjp.getLoc(), gradient, getPeer(), getTag());
  return success();
}

void CastOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult CastOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0, vjp.castTo(vjp.resultGradient(0), getInput().getType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise unary ops: grad · f'(x), from x or from y = f(x)
//===----------------------------------------------------------------------===//

#define GALVATRON_PRIMALS(OP, ...)                                             \
  void OP::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &values) {     \
    values.append({__VA_ARGS__});                                              \
  }
#define GALVATRON_NO_PRIMALS(OP)                                               \
  void OP::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

GALVATRON_NO_PRIMALS(NegOp)
LogicalResult NegOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0, RuleBuilder(vjp).neg(vjp.resultGradient(0)));
  return success();
}

GALVATRON_PRIMALS(AbsOp, getInput())
LogicalResult AbsOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0), x = vjp.primal(getInput());
  // sign(x)·g with sign(0) = 0, as torch.
  Value zero = r.zero(x);
  Value isNegative = r.compare(ComparePredicate::lt, x, zero);
  Value negated = r.neg(g);
  Value negative = r.select(isNegative, negated, zero);
  Value isPositive = r.compare(ComparePredicate::gt, x, zero);
  vjp.setGradient(0, r.select(isPositive, g, negative));
  return success();
}

GALVATRON_PRIMALS(ExpOp, getResult())
LogicalResult ExpOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(
      0, RuleBuilder(vjp).mul(vjp.resultGradient(0), vjp.primal(getResult())));
  return success();
}

GALVATRON_PRIMALS(LogOp, getInput())
LogicalResult LogOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(
      0, RuleBuilder(vjp).div(vjp.resultGradient(0), vjp.primal(getInput())));
  return success();
}

GALVATRON_PRIMALS(SqrtOp, getResult())
LogicalResult SqrtOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value half = r.scale(vjp.resultGradient(0), 0.5);
  vjp.setGradient(0, r.div(half, vjp.primal(getResult())));
  return success();
}

GALVATRON_PRIMALS(RsqrtOp, getResult())
LogicalResult RsqrtOp::buildVJP(VJPBuilder &vjp) {
  // d(x^-1/2) = -1/2 · y³.
  RuleBuilder r(vjp);
  Value y = vjp.primal(getResult());
  Value scaled = r.scale(vjp.resultGradient(0), -0.5);
  Value square = r.mul(y, y);
  Value cube = r.mul(y, square);
  vjp.setGradient(0, r.mul(scaled, cube));
  return success();
}

GALVATRON_PRIMALS(ReciprocalOp, getResult())
LogicalResult ReciprocalOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value y = vjp.primal(getResult());
  Value negated = r.neg(vjp.resultGradient(0));
  Value square = r.mul(y, y);
  vjp.setGradient(0, r.mul(negated, square));
  return success();
}

GALVATRON_PRIMALS(TanhOp, getResult())
LogicalResult TanhOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value y = vjp.primal(getResult());
  Value one = vjp.scalar(1.0, elementType(y));
  Value square = r.mul(y, y);
  Value derivative = r.sub(one, square);
  vjp.setGradient(0, r.mul(vjp.resultGradient(0), derivative));
  return success();
}

GALVATRON_PRIMALS(ErfOp, getInput())
LogicalResult ErfOp::buildVJP(VJPBuilder &vjp) {
  // d erf(x) = 2/√π · e^(-x²).
  RuleBuilder r(vjp);
  Value x = vjp.primal(getInput());
  Value square = r.mul(x, x);
  Value exponent = r.neg(square);
  Value gaussian = ExpOp::create(r.b, r.loc, exponent);
  Value scaled = r.scale(vjp.resultGradient(0), 2.0 / std::sqrt(M_PI));
  vjp.setGradient(0, r.mul(scaled, gaussian));
  return success();
}

GALVATRON_PRIMALS(SigmoidOp, getResult())
LogicalResult SigmoidOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value y = vjp.primal(getResult());
  Value one = vjp.scalar(1.0, elementType(y));
  Value complement = r.sub(one, y);
  Value derivative = r.mul(y, complement);
  vjp.setGradient(0, r.mul(vjp.resultGradient(0), derivative));
  return success();
}

/// relu, silu and gelu use the fused activation gradient.
static LogicalResult buildActivationVJP(VJPBuilder &vjp, Activation activation,
                                        Value input) {
  vjp.setGradient(0, ActivationGradOp::create(vjp.getBuilder(), vjp.getLoc(),
                                              activation, vjp.resultGradient(0),
                                              vjp.primal(input)));
  return success();
}

GALVATRON_PRIMALS(ReluOp, getInput())
LogicalResult ReluOp::buildVJP(VJPBuilder &vjp) {
  return buildActivationVJP(vjp, Activation::relu, getInput());
}

GALVATRON_PRIMALS(SiluOp, getInput())
LogicalResult SiluOp::buildVJP(VJPBuilder &vjp) {
  return buildActivationVJP(vjp, Activation::silu, getInput());
}

// The kept elements' gradient, scaled as the forward scaled them.
GALVATRON_PRIMALS(DropoutOp, getMask())
LogicalResult DropoutOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0);
  if (!g)
    return success();
  Value scaled = r.scale(g, 1.0 / (1.0 - getProbability().convertToDouble()));
  vjp.setGradient(0, r.select(vjp.primal(getMask()), scaled, r.zero(g)));
  return success();
}

GALVATRON_PRIMALS(GeluOp, getInput())
LogicalResult GeluOp::buildVJP(VJPBuilder &vjp) {
  return buildActivationVJP(vjp,
                            getApproximate() == GeluApproximation::tanh
                                ? Activation::gelu_tanh
                                : Activation::gelu,
                            getInput());
}

//===----------------------------------------------------------------------===//
// Broadcasting binary ops: gradients summed back to each operand's shape
//===----------------------------------------------------------------------===//

/// Records the gradients of a binary op, reducing each to its operand shape.
static void setBinaryGradients(VJPBuilder &vjp, Value lhsGrad, Value rhsGrad) {
  Operation *op = vjp.getOp();
  if (vjp.wantsGradient(0))
    vjp.setGradient(0, vjp.sumToShape(lhsGrad, tensorType(op->getOperand(0))));
  if (vjp.wantsGradient(1))
    vjp.setGradient(1, vjp.sumToShape(rhsGrad, tensorType(op->getOperand(1))));
}

GALVATRON_NO_PRIMALS(AddOp)
LogicalResult AddOp::buildVJP(VJPBuilder &vjp) {
  Value g = vjp.resultGradient(0);
  setBinaryGradients(vjp, g, g);
  return success();
}

GALVATRON_NO_PRIMALS(SubOp)
LogicalResult SubOp::buildVJP(VJPBuilder &vjp) {
  Value g = vjp.resultGradient(0);
  setBinaryGradients(vjp, g,
                     vjp.wantsGradient(1) ? RuleBuilder(vjp).neg(g) : Value());
  return success();
}

void MulOp::getVJPPrimals(ArrayRef<bool> wanted,
                          SmallVectorImpl<Value> &values) {
  appendOtherFactors(wanted, getLhs(), getRhs(), values);
}
LogicalResult MulOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0);
  Value lhsGrad, rhsGrad;
  if (vjp.wantsGradient(0))
    lhsGrad = r.mul(g, vjp.primal(getRhs()));
  if (vjp.wantsGradient(1))
    rhsGrad = r.mul(g, vjp.primal(getLhs()));
  setBinaryGradients(vjp, lhsGrad, rhsGrad);
  return success();
}

void DivOp::getVJPPrimals(ArrayRef<bool> wanted,
                          SmallVectorImpl<Value> &values) {
  values.push_back(getRhs());
  if (wanted[1])
    values.push_back(getResult());
}
LogicalResult DivOp::buildVJP(VJPBuilder &vjp) {
  // a/b: ga = g/b, gb = -g·(a/b)/b.
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0), b = vjp.primal(getRhs());
  Value lhsGrad, rhsGrad;
  if (vjp.wantsGradient(0))
    lhsGrad = r.div(g, b);
  if (vjp.wantsGradient(1)) {
    Value product = r.mul(g, vjp.primal(getResult()));
    Value quotient = r.div(product, b);
    rhsGrad = r.neg(quotient);
  }
  setBinaryGradients(vjp, lhsGrad, rhsGrad);
  return success();
}

void PowOp::getVJPPrimals(ArrayRef<bool> wanted,
                          SmallVectorImpl<Value> &values) {
  values.append({getLhs(), getRhs()});
  if (wanted[1])
    values.push_back(getResult());
}
LogicalResult PowOp::buildVJP(VJPBuilder &vjp) {
  // a^b: ga = g·b·a^(b-1); gb = g·a^b·ln a, zero where a = 0 (as torch).
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0), a = vjp.primal(getLhs()),
        b = vjp.primal(getRhs());
  Value lhsGrad, rhsGrad;
  if (vjp.wantsGradient(0)) {
    Value one = vjp.scalar(1.0, elementType(b));
    Value bMinusOne = r.sub(b, one);
    Value power = PowOp::create(r.b, r.loc, a, bMinusOne);
    Value derivative = r.mul(b, power);
    lhsGrad = r.mul(g, derivative);
  }
  if (vjp.wantsGradient(1)) {
    Value zero = r.zero(a);
    Value logarithm = LogOp::create(r.b, r.loc, a);
    Value term = r.mul(vjp.primal(getResult()), logarithm);
    Value isZero = r.compare(ComparePredicate::eq, a, zero);
    Value derivative = r.select(isZero, zero, term);
    rhsGrad = r.mul(g, derivative);
  }
  setBinaryGradients(vjp, lhsGrad, rhsGrad);
  return success();
}

/// max / min: the gradient goes to the winning operand; ties split it evenly
/// (torch.maximum / torch.minimum).
static LogicalResult buildExtremumVJP(VJPBuilder &vjp, Value lhs, Value rhs,
                                      ComparePredicate lhsWins,
                                      ComparePredicate rhsWins) {
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0), a = vjp.primal(lhs), b = vjp.primal(rhs);
  Value zero = r.zero(g);
  Value half = r.scale(g, 0.5);
  Value isTie = r.compare(ComparePredicate::eq, a, b);
  Value tie = r.select(isTie, half, zero);
  Value lhsGrad, rhsGrad;
  if (vjp.wantsGradient(0)) {
    Value wins = r.compare(lhsWins, a, b);
    lhsGrad = r.select(wins, g, tie);
  }
  if (vjp.wantsGradient(1)) {
    Value wins = r.compare(rhsWins, a, b);
    rhsGrad = r.select(wins, g, tie);
  }
  setBinaryGradients(vjp, lhsGrad, rhsGrad);
  return success();
}

GALVATRON_PRIMALS(MaxOp, getLhs(), getRhs())
LogicalResult MaxOp::buildVJP(VJPBuilder &vjp) {
  return buildExtremumVJP(vjp, getLhs(), getRhs(), ComparePredicate::gt,
                          ComparePredicate::lt);
}

GALVATRON_PRIMALS(MinOp, getLhs(), getRhs())
LogicalResult MinOp::buildVJP(VJPBuilder &vjp) {
  return buildExtremumVJP(vjp, getLhs(), getRhs(), ComparePredicate::lt,
                          ComparePredicate::gt);
}

GALVATRON_PRIMALS(SelectOp, getCondition())
LogicalResult SelectOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0), c = vjp.primal(getCondition());
  Value zero = r.zero(g);
  if (vjp.wantsGradient(1))
    vjp.setGradient(1,
                    vjp.sumToShape(r.select(c, g, zero), getLhs().getType()));
  if (vjp.wantsGradient(2))
    vjp.setGradient(2,
                    vjp.sumToShape(r.select(c, zero, g), getRhs().getType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

void MatmulOp::getVJPPrimals(ArrayRef<bool> wanted,
                             SmallVectorImpl<Value> &values) {
  appendOtherFactors(wanted, getLhs(), getRhs(), values);
}
LogicalResult MatmulOp::buildVJP(VJPBuilder &vjp) {
  // C = op(A)·op(B): d op(A) = G·op(B)ᵀ and d op(B) = op(A)ᵀ·G, transposed
  // back where the operand is stored transposed; broadcast batch dimensions
  // sum back.
  OpBuilder &b = vjp.getBuilder();
  Value g = vjp.resultGradient(0);
  bool tA = getTransposeLhs(), tB = getTransposeRhs();
  if (vjp.wantsGradient(0)) {
    Value rhs = vjp.primal(getRhs());
    Value grad = tA ? MatmulOp::create(b, vjp.getLoc(), rhs, g, tB, true)
                    : MatmulOp::create(b, vjp.getLoc(), g, rhs, false, !tB);
    vjp.setGradient(0, vjp.sumToShape(grad, getLhs().getType()));
  }
  if (vjp.wantsGradient(1)) {
    Value lhs = vjp.primal(getLhs());
    Value grad = tB ? MatmulOp::create(b, vjp.getLoc(), g, lhs, true, tA)
                    : MatmulOp::create(b, vjp.getLoc(), lhs, g, !tA, false);
    vjp.setGradient(1, vjp.sumToShape(grad, getRhs().getType()));
  }
  return success();
}

void LinearOp::getVJPPrimals(ArrayRef<bool> wanted,
                             SmallVectorImpl<Value> &values) {
  appendOtherFactors(wanted, getInput(), getWeight(), values);
}
LogicalResult LinearOp::buildVJP(VJPBuilder &vjp) {
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0);
  bool transposed = getTransposeWeight();
  auto gradType = tensorType(g);
  // The input gradient is a linear layer with the weight the other way round.
  if (vjp.wantsGradient(0))
    vjp.setGradient(0, LinearOp::create(r.b, r.loc, g, vjp.primal(getWeight()),
                                        Value(), !transposed));
  // Weight gradient: rows of input and gradient flattened, one GEMM.
  if (vjp.wantsGradient(1)) {
    int64_t in = getInFeatures(), out = getOutFeatures();
    int64_t rows = gradType.getNumElements() / out;
    Value x = r.reshape(vjp.primal(getInput()), {rows, in});
    Value g2 = r.reshape(g, {rows, out});
    vjp.setGradient(1, transposed
                           ? MatmulOp::create(r.b, r.loc, g2, x, true, false)
                           : MatmulOp::create(r.b, r.loc, x, g2, true, false));
  }
  if (getBias() && vjp.wantsGradient(2)) {
    SmallVector<int64_t> leading(gradType.getRank() - 1);
    std::iota(leading.begin(), leading.end(), 0);
    vjp.setGradient(2, leading.empty() ? g
                                       : Value(ReduceSumOp::create(
                                             r.b, r.loc, g, leading, false)));
  }
  return success();
}

GALVATRON_PRIMALS(EmbeddingOp, getIndices())
LogicalResult EmbeddingOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0, EmbeddingGradOp::create(
                         vjp.getBuilder(), vjp.getLoc(), getTable().getType(),
                         vjp.resultGradient(0), vjp.primal(getIndices()),
                         getVocabGroupsAttr(), getVocabSizeAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Normalization and softmax
//===----------------------------------------------------------------------===//

GALVATRON_PRIMALS(LayerNormOp, getInput(), getWeight())
LogicalResult LayerNormOp::buildVJP(VJPBuilder &vjp) {
  Type weightType = getWeight().getType();
  auto grad = LayerNormGradOp::create(
      vjp.getBuilder(), vjp.getLoc(), getInput().getType(), weightType,
      weightType, vjp.resultGradient(0), vjp.primal(getInput()),
      vjp.primal(getWeight()), getEpsilonAttr());
  vjp.setGradient(0, grad.getInputGrad());
  vjp.setGradient(1, grad.getWeightGrad());
  if (getBias())
    vjp.setGradient(2, grad.getBiasGrad());
  return success();
}

GALVATRON_PRIMALS(RMSNormOp, getInput(), getWeight())
LogicalResult RMSNormOp::buildVJP(VJPBuilder &vjp) {
  auto grad = RMSNormGradOp::create(
      vjp.getBuilder(), vjp.getLoc(), getInput().getType(),
      getWeight().getType(), vjp.resultGradient(0), vjp.primal(getInput()),
      vjp.primal(getWeight()), getEpsilonAttr());
  vjp.setGradient(0, grad.getInputGrad());
  vjp.setGradient(1, grad.getWeightGrad());
  return success();
}

GALVATRON_PRIMALS(SoftmaxOp, getResult())
LogicalResult SoftmaxOp::buildVJP(VJPBuilder &vjp) {
  // y·(g − Σ g·y) along the axis.
  RuleBuilder r(vjp);
  Value g = vjp.resultGradient(0), y = vjp.primal(getResult());
  Value product = r.mul(g, y);
  Value dot = ReduceSumOp::create(
      r.b, r.loc, product, ArrayRef<int64_t>{static_cast<int64_t>(getAxis())},
      true);
  Value centered = r.sub(g, dot);
  vjp.setGradient(0, r.mul(y, centered));
  return success();
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

GALVATRON_NO_PRIMALS(ReshapeOp)
LogicalResult ReshapeOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0, ReshapeOp::create(vjp.getBuilder(), vjp.getLoc(),
                                       getInput().getType(),
                                       vjp.resultGradient(0)));
  return success();
}

GALVATRON_NO_PRIMALS(TransposeOp)
LogicalResult TransposeOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0, RuleBuilder(vjp).transpose(vjp.resultGradient(0),
                                                invertPermutation(getPerm())));
  return success();
}

GALVATRON_NO_PRIMALS(SliceOp)
LogicalResult SliceOp::buildVJP(VJPBuilder &vjp) {
  // Scatter the slice back: pad with the start before, stride − 1 between
  // elements and the rest after.
  ArrayRef<int64_t> input = getInput().getType().getShape();
  ArrayRef<int64_t> output = getType().getShape();
  SmallVector<int64_t> low, high, interior;
  for (auto [dim, size] : llvm::enumerate(input)) {
    int64_t start = getStarts()[dim], stride = getStrides()[dim];
    int64_t count = output[dim];
    int64_t end = count ? start + (count - 1) * stride + 1 : start;
    low.push_back(start);
    interior.push_back(count > 1 ? stride - 1 : 0);
    high.push_back(size - end);
  }
  vjp.setGradient(0, PadOp::create(vjp.getBuilder(), vjp.getLoc(),
                                   vjp.resultGradient(0), low, high, interior,
                                   llvm::APFloat(0.0)));
  return success();
}

GALVATRON_NO_PRIMALS(PadOp)
LogicalResult PadOp::buildVJP(VJPBuilder &vjp) {
  ArrayRef<int64_t> input = getInput().getType().getShape();
  SmallVector<int64_t> starts, limits, strides;
  for (auto [dim, size] : llvm::enumerate(input)) {
    int64_t stride = getInterior()[dim] + 1;
    starts.push_back(getLow()[dim]);
    limits.push_back(getLow()[dim] + (size ? (size - 1) * stride + 1 : 0));
    strides.push_back(stride);
  }
  vjp.setGradient(0, SliceOp::create(vjp.getBuilder(), vjp.getLoc(),
                                     vjp.resultGradient(0), starts, limits,
                                     strides));
  return success();
}

GALVATRON_NO_PRIMALS(ConcatOp)
LogicalResult ConcatOp::buildVJP(VJPBuilder &vjp) {
  Value g = vjp.resultGradient(0);
  ArrayRef<int64_t> shape = getType().getShape();
  int64_t axis = static_cast<int64_t>(getAxis());
  if (axis < 0)
    axis += getType().getRank();
  int64_t offset = 0;
  for (auto [index, input] : llvm::enumerate(getInputs())) {
    int64_t size = tensorType(input).getDimSize(axis);
    if (vjp.wantsGradient(index)) {
      SmallVector<int64_t> starts(shape.size(), 0), limits(shape),
          strides(shape.size(), 1);
      starts[axis] = offset;
      limits[axis] = offset + size;
      vjp.setGradient(index, SliceOp::create(vjp.getBuilder(), vjp.getLoc(), g,
                                             starts, limits, strides));
    }
    offset += size;
  }
  return success();
}

GALVATRON_NO_PRIMALS(SplitOp)
LogicalResult SplitOp::buildVJP(VJPBuilder &vjp) {
  SmallVector<Value> pieces;
  for (auto [index, result] : llvm::enumerate(getResults())) {
    Value g = vjp.resultGradient(index);
    pieces.push_back(g ? g : vjp.zeros(tensorType(result)));
  }
  vjp.setGradient(
      0, ConcatOp::create(vjp.getBuilder(), vjp.getLoc(), pieces, getAxis()));
  return success();
}

GALVATRON_NO_PRIMALS(BroadcastOp)
LogicalResult BroadcastOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0,
                  vjp.sumToShape(vjp.resultGradient(0), getInput().getType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// A reduction's result (or its gradient) in the keep-dims shape, ready to
/// broadcast back over the reduced axes.
static Value spreadReduction(VJPBuilder &vjp, Value gradient,
                             RankedTensorType input, ArrayRef<int64_t> axes,
                             bool keepDims) {
  SmallVector<int64_t> kept = keptDimsShape(input, axes);
  if (!keepDims)
    gradient = RuleBuilder(vjp).reshape(gradient, kept);
  return gradient;
}

GALVATRON_NO_PRIMALS(ReduceSumOp)
LogicalResult ReduceSumOp::buildVJP(VJPBuilder &vjp) {
  Value g = spreadReduction(vjp, vjp.resultGradient(0), getInput().getType(),
                            getAxes(), getKeepDims());
  vjp.setGradient(0, vjp.broadcastTo(g, getInput().getType()));
  return success();
}

GALVATRON_NO_PRIMALS(ReduceMeanOp)
LogicalResult ReduceMeanOp::buildVJP(VJPBuilder &vjp) {
  RankedTensorType input = getInput().getType();
  int64_t count =
      input.getNumElements() / std::max<int64_t>(getType().getNumElements(), 1);
  Value g = spreadReduction(vjp, vjp.resultGradient(0), input, getAxes(),
                            getKeepDims());
  g = RuleBuilder(vjp).scale(g, 1.0 / static_cast<double>(count));
  vjp.setGradient(0, vjp.broadcastTo(g, input));
  return success();
}

GALVATRON_PRIMALS(ReduceMaxOp, getInput(), getResult())
LogicalResult ReduceMaxOp::buildVJP(VJPBuilder &vjp) {
  // The gradient goes to the maxima, split evenly among ties (torch.amax).
  RuleBuilder r(vjp);
  RankedTensorType input = getInput().getType();
  Value g = spreadReduction(vjp, vjp.resultGradient(0), input, getAxes(),
                            getKeepDims());
  Value y = spreadReduction(vjp, vjp.primal(getResult()), input, getAxes(),
                            getKeepDims());
  Value isMax = r.compare(ComparePredicate::eq, vjp.primal(getInput()), y);
  Value counts = vjp.castTo(isMax, input);
  Value ties = ReduceSumOp::create(r.b, r.loc, counts, getAxes(), true);
  Value shared = r.div(g, ties);
  Value zero = r.zero(g);
  vjp.setGradient(0, r.select(isMax, shared, zero));
  return success();
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

GALVATRON_NO_PRIMALS(RotaryOp)
LogicalResult RotaryOp::buildVJP(VJPBuilder &vjp) {
  // RoPE rotates pairs (x1, x2) by an angle; the adjoint rotates by minus the
  // angle, which is the same rotation with x2 negated before and after.
  RuleBuilder r(vjp);
  RankedTensorType type = getType();
  int64_t features = type.getShape().back(), rotary = getEffectiveRotaryDim();
  SmallVector<Attribute> signs;
  for (int64_t i = 0; i < features; ++i) {
    bool second =
        i < rotary && (getInterleaved() ? i % 2 == 1 : i >= rotary / 2);
    signs.push_back(FloatAttr::get(type.getElementType(), second ? -1.0 : 1.0));
  }
  auto signType = RankedTensorType::get({features}, type.getElementType());
  Value sign = ConstantOp::create(r.b, r.loc, signType,
                                  DenseElementsAttr::get(signType, signs));
  Value rotated = RotaryOp::create(
      r.b, r.loc, type, r.mul(vjp.resultGradient(0), sign), getSeqAxisAttr(),
      getThetaAttr(), getRotaryDimAttr(), getInterleavedAttr());
  vjp.setGradient(0, r.mul(rotated, sign));
  return success();
}

// The dropout mask is drawn again in the backward (as flash-attention
// does), not saved: a saved mask would cost B·Hq·S·T bytes per layer, the
// quadratic term the fused kernel exists to avoid.
void AttentionOp::getVJPPrimals(ArrayRef<bool>,
                                SmallVectorImpl<Value> &values) {
  values.append({getQuery(), getKey(), getValue()});
  if (getMask())
    values.push_back(getMask());
}
LogicalResult AttentionOp::buildVJP(VJPBuilder &vjp) {
  Value mask = getMask() ? vjp.primal(getMask()) : Value();
  Type maskGradType =
      getMask() && vjp.wantsGradient(3) ? getMask().getType() : Type();
  auto grad = AttentionGradOp::create(
      vjp.getBuilder(), vjp.getLoc(), getQuery().getType(), getKey().getType(),
      getValue().getType(), maskGradType, vjp.resultGradient(0),
      vjp.primal(getQuery()), vjp.primal(getKey()), vjp.primal(getValue()),
      mask, getCausalAttr(), getScaleAttr(), getDropoutAttr(),
      getStreamAttr(), getShardAttr());
  vjp.setGradient(0, grad.getQueryGrad());
  vjp.setGradient(1, grad.getKeyGrad());
  vjp.setGradient(2, grad.getValueGrad());
  if (maskGradType)
    vjp.setGradient(3, grad.getMaskGrad());
  return success();
}

GALVATRON_PRIMALS(CrossEntropyOp, getLogits(), getLabels())
LogicalResult CrossEntropyOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(0, CrossEntropyGradOp::create(
                         vjp.getBuilder(), vjp.getLoc(), getLogits().getType(),
                         vjp.resultGradient(0), vjp.primal(getLogits()),
                         vjp.primal(getLabels()), getIgnoreIndexAttr(),
                         getReductionAttr()));
  return success();
}

GALVATRON_NO_PRIMALS(ExtractPatchesOp)
LogicalResult ExtractPatchesOp::buildVJP(VJPBuilder &vjp) {
  // Patches are a permutation of the pixels: [B, C, H/P, P, W/P, P] with
  // dimensions ordered (B, H/P, W/P, C, P, P) and flattened. Undo it.
  RuleBuilder r(vjp);
  ArrayRef<int64_t> image = getInput().getType().getShape();
  int64_t p = getPatchSize(), b = image[0], c = image[1], rows = image[2] / p,
          cols = image[3] / p;
  Value g = r.reshape(vjp.resultGradient(0), {b, rows, cols, c, p, p});
  g = r.transpose(g, {0, 3, 1, 4, 2, 5});
  vjp.setGradient(0, r.reshape(g, image));
  return success();
}

#undef GALVATRON_PRIMALS
#undef GALVATRON_NO_PRIMALS
