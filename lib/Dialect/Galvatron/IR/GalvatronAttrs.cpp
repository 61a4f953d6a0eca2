//===- GalvatronAttrs.cpp - Galvatron attributes --------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::galvatron;

#include "galvatron/Dialect/Galvatron/IR/GalvatronEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "galvatron/Dialect/Galvatron/IR/GalvatronAttrs.cpp.inc"

void GalvatronDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "galvatron/Dialect/Galvatron/IR/GalvatronAttrs.cpp.inc"
      >();
}

/// Shortest readable form of a double for diagnostics ("0.02", "-1").
static std::string formatNumber(double value) {
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%g", value);
  return text;
}

//===----------------------------------------------------------------------===//
// InitAttr
//===----------------------------------------------------------------------===//

/// Number of numeric arguments each initializer kind takes.
static unsigned getInitArity(InitKind kind) {
  switch (kind) {
  case InitKind::zeros:
  case InitKind::ones:
    return 0;
  case InitKind::constant:
    return 1;
  case InitKind::normal:
  case InitKind::uniform:
    return 2;
  }
  llvm_unreachable("unknown init kind");
}

Attribute InitAttr::parse(AsmParser &parser, Type) {
  StringRef keyword;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeyword(&keyword))
    return {};
  std::optional<InitKind> kind = symbolizeInitKind(keyword);
  if (!kind) {
    parser.emitError(loc) << "unknown initializer '" << keyword
                          << "' (expected zeros, ones, constant, normal or "
                             "uniform)";
    return {};
  }
  double args[2] = {0.0, 0.0};
  unsigned arity = getInitArity(*kind);
  if (arity > 0) {
    if (parser.parseLParen())
      return {};
    for (unsigned i = 0; i < arity; ++i)
      if ((i > 0 && parser.parseComma()) || parser.parseFloat(args[i]))
        return {};
    if (parser.parseRParen())
      return {};
  }
  if (parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(),
                    *kind, llvm::APFloat(args[0]), llvm::APFloat(args[1]));
}

void InitAttr::print(AsmPrinter &printer) const {
  printer << "<" << stringifyInitKind(getKind());
  unsigned arity = getInitArity(getKind());
  if (arity >= 1)
    printer << "(" << getA();
  if (arity == 2)
    printer << ", " << getB();
  if (arity >= 1)
    printer << ")";
  printer << ">";
}

LogicalResult InitAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               InitKind kind, llvm::APFloat first,
                               llvm::APFloat second) {
  double a = first.convertToDouble(), b = second.convertToDouble();
  if (kind == InitKind::normal && !(b >= 0.0))
    return emitError() << "normal initializer needs a non-negative standard "
                          "deviation, got "
                       << formatNumber(b);
  if (kind == InitKind::uniform && !(a <= b))
    return emitError() << "uniform initializer needs low <= high, got ["
                       << formatNumber(a) << ", " << formatNumber(b) << "]";
  return success();
}

//===----------------------------------------------------------------------===//
// ExternalDataAttr
//===----------------------------------------------------------------------===//

LogicalResult
ExternalDataAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                         StringRef location, int64_t offset, int64_t length,
                         StringAttr key) {
  if (location.empty())
    return emitError() << "external data needs a non-empty location";
  if (offset < 0)
    return emitError() << "external data offset must be non-negative, got "
                       << offset;
  if (length < -1)
    return emitError() << "external data length must be -1 (to the end) or "
                          "non-negative, got "
                       << length;
  return success();
}

//===----------------------------------------------------------------------===//
// StrategyAttr and PlanAttr
//===----------------------------------------------------------------------===//

LogicalResult StrategyAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   int64_t stage, int64_t tp, int64_t dp,
                                   bool tpConsecutive, DataParallelType dpType,
                                   bool sp, bool ckpt, bool ulysses) {
  if (stage < 0)
    return emitError() << "pipeline stage must be non-negative, got " << stage;
  if (tp < 1)
    return emitError() << "tensor-parallel degree must be positive, got " << tp;
  if (dp < 1)
    return emitError() << "data-parallel degree must be positive, got " << dp;
  if (ulysses && sp)
    return emitError() << "a layer runs Megatron (sp) or Ulysses sequence "
                          "parallelism, not both";
  if (ulysses && tp == 1)
    return emitError() << "Ulysses needs a group of tp > 1 ranks";
  return success();
}

LogicalResult PlanAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               int64_t devices, int64_t devicesPerNode,
                               int64_t pp, int64_t microBatches,
                               int64_t globalBatch, PipelineSchedule schedule,
                               Precision precision, int64_t vocabDivisor) {
  if (devices < 1)
    return emitError() << "device count must be positive, got " << devices;
  if (devicesPerNode < 1)
    return emitError() << "devices per node must be positive, got "
                       << devicesPerNode;
  if (devices > devicesPerNode && devices % devicesPerNode != 0)
    return emitError() << devices << " devices do not fill whole nodes of "
                       << devicesPerNode;
  if (pp < 1)
    return emitError() << "pipeline degree must be positive, got " << pp;
  if (devices % pp != 0)
    return emitError() << "pipeline degree " << pp << " does not divide "
                       << devices << " devices";
  if (microBatches < 1)
    return emitError() << "micro-batch count must be positive, got "
                       << microBatches;
  if (globalBatch < 1)
    return emitError() << "global batch must be positive, got " << globalBatch;
  if (globalBatch % microBatches != 0)
    return emitError() << "global batch " << globalBatch
                       << " does not split into " << microBatches
                       << " equal micro-batches";
  if (vocabDivisor < 1)
    return emitError() << "vocabulary divisor must be positive, got "
                       << vocabDivisor;
  return success();
}
