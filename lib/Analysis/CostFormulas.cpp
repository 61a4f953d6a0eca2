//===- CostFormulas.cpp - Closed-form reference formulas ------------------===//

#include "galvatron/Analysis/CostFormulas.h"

using namespace mlir::galvatron;

double formulas::megatronActivationBytes(double s, double b, double h,
                                         double a, double t,
                                         bool sequenceParallel) {
  double perToken = 10.0 + 24.0 / t + 5.0 * a * s / (h * t);
  if (sequenceParallel)
    perToken = (34.0 + 5.0 * a * s / h) / t;
  return s * b * h * perToken;
}

double formulas::megatronRecomputeActivationBytes(double s, double b,
                                                  double h) {
  return 2.0 * s * b * h;
}

double formulas::zeroModelStateBytes(double psi, double d, int stage) {
  switch (stage) {
  case 0:
    return 16.0 * psi;
  case 1:
    return 4.0 * psi + 12.0 * psi / d;
  case 2:
    return 2.0 * psi + 14.0 * psi / d;
  default:
    return 16.0 * psi / d;
  }
}

double formulas::pipelineBubbleFraction(double p, double m, double v) {
  return (p - 1.0) / (v * m);
}

double formulas::gptParameters(double l, double h, double V, double s) {
  return 12.0 * l * h * h *
         (1.0 + 13.0 / (12.0 * h) + (V + s) / (12.0 * l * h));
}

double formulas::gptTrainingFlops(double B, double s, double l, double h,
                                  double V) {
  return 72.0 * B * s * l * h * h *
         (1.0 + s / (6.0 * h) + V / (12.0 * l * h));
}

double formulas::gptTrainingFlopsWithRecompute(double B, double s, double l,
                                               double h, double V) {
  return 96.0 * B * s * l * h * h *
         (1.0 + s / (6.0 * h) + V / (16.0 * l * h));
}
