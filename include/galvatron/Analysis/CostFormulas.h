//===- CostFormulas.h - Closed-form reference formulas ----------*- C++ -*-===//
//
// The standard formulas of the literature (see docs/architecture.md), kept
// independent of the IR-derived cost model so tests can check one against
// the other and benchmarks can count FLOPs the way papers do.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_COSTFORMULAS_H
#define GALVATRON_ANALYSIS_COSTFORMULAS_H

#include <cstdint>

namespace mlir::galvatron::formulas {

/// Megatron's activation bytes of one GPT layer in 16-bit training
/// (Korthikanti et al. 2022): s·b·h·(34 + 5·a·s/h) without parallelism,
/// s·b·h·(10 + 24/t + 5·a·s/(h·t)) with tensor parallelism t, all of it
/// divided by t with sequence parallelism, and 2·s·b·h (the layer input)
/// with full recomputation.
double megatronActivationBytes(double s, double b, double h, double a,
                               double t = 1, bool sequenceParallel = false);
double megatronRecomputeActivationBytes(double s, double b, double h);

/// ZeRO model-state bytes per device for psi parameters, mixed precision
/// with Adam (K = 12), data-parallel degree d (Rajbhandari et al. 2020):
/// stage 0 16psi, stage 1 4psi + 12psi/d, stage 2 2psi + 14psi/d, stage 3
/// 16psi/d.
double zeroModelStateBytes(double psi, double d, int stage);

/// Pipeline bubble as a fraction of ideal time: (p - 1)/m for GPipe and
/// 1F1B, (p - 1)/(v·m) interleaved with v chunks.
double pipelineBubbleFraction(double p, double m, double v = 1);

/// GPT parameters: 12·l·h²·(1 + 13/(12h) + (V + s)/(12·l·h)).
double gptParameters(double l, double h, double V, double s);

/// GPT training FLOPs per iteration without recomputation:
/// 72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)), and with full recomputation as
/// Megatron counts it: 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)).
double gptTrainingFlops(double B, double s, double l, double h, double V);
double gptTrainingFlopsWithRecompute(double B, double s, double l, double h,
                                     double V);

} // namespace mlir::galvatron::formulas

#endif // GALVATRON_ANALYSIS_COSTFORMULAS_H
