// RUN: galvatron-opt %s -split-input-file -verify-diagnostics --galvatron-build-train-step
// Options that cannot make a training step: a clear error each.
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=loss=contrastive 2>&1 | FileCheck %s --check-prefix=LOSS
// LOSS: error: --galvatron-build-train-step: unknown loss 'contrastive' (expected next-token or masked)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=optimizer=lamb 2>&1 | FileCheck %s --check-prefix=OPT
// OPT: error: --galvatron-build-train-step: unknown optimizer 'lamb' (expected adamw, sgd or none)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=precision=fp8 2>&1 | FileCheck %s --check-prefix=PREC
// PREC: error: --galvatron-build-train-step: unknown precision 'fp8' (expected fp32, bf16 or fp16)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=checkpoint=half 2>&1 | FileCheck %s --check-prefix=CKPT
// CKPT: error: --galvatron-build-train-step: unknown checkpoint policy 'half' (expected plan, none, blocks or all)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=lr=-1 2>&1 | FileCheck %s --check-prefix=LR
// LR: error: --galvatron-build-train-step: learning rates must be non-negative
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=warmup-steps=-5 2>&1 | FileCheck %s --check-prefix=WARMUP
// WARMUP: error: --galvatron-build-train-step: warm-up and decay steps must be non-negative
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=beta2=1 2>&1 | FileCheck %s --check-prefix=BETA
// BETA: error: --galvatron-build-train-step: beta1 and beta2 must lie in [0, 1)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=weight-decay=-0.1 2>&1 | FileCheck %s --check-prefix=WD
// WD: error: --galvatron-build-train-step: eps and weight-decay must be non-negative
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="optimizer=sgd momentum=1" 2>&1 | FileCheck %s --check-prefix=MOM
// MOM: error: --galvatron-build-train-step: momentum must lie in [0, 1)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=max-grad-norm=-1 2>&1 | FileCheck %s --check-prefix=CLIP
// CLIP: error: --galvatron-build-train-step: max-grad-norm must be non-negative (0: no clipping)
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="precision=fp16 initial-loss-scale=0" 2>&1 | FileCheck %s --check-prefix=SCALE
// SCALE: error: --galvatron-build-train-step: the loss scale and its window must be positive
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=micro-batches=-2 2>&1 | FileCheck %s --check-prefix=MICRO
// MICRO: error: --galvatron-build-train-step: micro-batches must be positive, got -2
// RUN: not galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=function=model 2>&1 | FileCheck %s --check-prefix=FUNC
// FUNC: error: --galvatron-build-train-step: no function @model with a body
// RUN: not galvatron-opt %S/Inputs/planned-lm.mlir --galvatron-build-train-step=micro-batches=4 2>&1 | FileCheck %s --check-prefix=PLANMICRO
// PLANMICRO: error: --galvatron-build-train-step: micro-batches=4 conflicts with the plan's 2
// RUN: not galvatron-opt %S/Inputs/planned-lm.mlir --galvatron-build-train-step=precision=fp16 2>&1 | FileCheck %s --check-prefix=PLANPREC
// PLANPREC: error: --galvatron-build-train-step: precision=fp16 conflicts with the plan's bf16

module {
  // expected-error @+1 {{--galvatron-build-train-step: @forward already exists}}
  func.func @forward() {
    return
  }
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4xf32> {
    %0 = galvatron.constant dense<0.0> : tensor<2x4xf32>
    return %0 : tensor<2x4xf32>
  }
}

// -----

module {
  // expected-error @+1 {{--galvatron-build-train-step: cannot tell which result of @main holds the logits: name it "logits" with galvatron.name}}
  func.func @main(%x: tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>) {
    return %x, %x : tensor<2x4x8xf32>, tensor<2x4x8xf32>
  }
}

// -----

module {
  // expected-error @+1 {{--galvatron-build-train-step: the logits must be a float tensor computed by a layer}}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    return %x : tensor<2x4x8xf32>
  }
}

// -----

module {
  // expected-error @+1 {{--galvatron-build-train-step: the loss of @main does not depend on any parameter}}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer head "head" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
      %t = galvatron.tanh %a : tensor<2x4x8xf32>
      galvatron.yield %t : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}

// -----

// A data-parallel weight (galvatron.data_parallel, as the partitioner
// marks one) whose read is not replicated over its groups: its gradient
// would never be synced.
module {
  // expected-error @+1 {{'galvatron.parameter' op is data-parallel but a read of it is not replicated over its data-parallel groups}}
  galvatron.parameter @w : tensor<8x8xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1>], zero = 1, dim = 0}}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer head "head" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
      %w = galvatron.param @w : tensor<8x8xf32>
      %y = galvatron.linear %a, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
      galvatron.yield %y : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}
