// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="micro-batches=2" | FileCheck %s --check-prefix=MICRO
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="optimizer=sgd momentum=0.5 nesterov=true weight-decay=0.1 max-grad-norm=0 lr=0.1 min-lr=0.01 warmup-steps=10 decay-steps=100 loss=masked" | FileCheck %s --check-prefix=SGD
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="beta1=0.8 beta2=0.95 eps=1e-6 weight-decay=0 max-grad-norm=0.5" | FileCheck %s --check-prefix=ADAMW
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="checkpoint=all" | FileCheck %s --check-prefix=CKPT
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="optimizer=none" | FileCheck %s --check-prefix=NONE

// Gradient accumulation over two micro-batches: each adds half its loss to
// the sum and seeds its backward with 1/2, so the accumulated gradient is
// the mean; the schedule runs each micro-batch's backward right after its
// forward.
// MICRO-LABEL: func.func @forward
// MICRO: galvatron.cross_entropy
// MICRO-NEXT: galvatron.constant dense<5.000000e-01> : tensor<f32>
// MICRO-LABEL: func.func @backward
// MICRO: %[[SEED:.*]] = galvatron.constant dense<5.000000e-01> : tensor<f32>
// MICRO-NEXT: galvatron.cross_entropy_grad %[[SEED]]
// MICRO: galvatron.schedule @train_step loss next_token micro_batches 2 forward @forward backward @backward optimizer @optimizer_step [2 x [forward 0, backward 0], 1 x [optimizer]]

// SGD with Nesterov momentum, one buffer per parameter; no clipping (the
// gradient scale stays 1); warm-up then cosine decay; the masked-token
// objective only changes how the data pipeline makes labels.
// SGD: galvatron.state optimizer @wte.momentum_buffer of @wte : tensor<32x8xf32>
// SGD-NOT: exp_avg
// SGD-LABEL: func.func @optimizer_step
// SGD-NOT: galvatron.min
// SGD: %[[ONE:.*]] = galvatron.constant dense<1.000000e+00> : tensor<f32>
// SGD: %[[LR:.*]] = galvatron.lr_schedule %{{.*}} {decay_steps = 100 : i64, lr = 1.000000e-01 : f64, min_lr = 1.000000e-02 : f64, warmup_steps = 10 : i64}
// SGD: %[[BUF:.*]] = galvatron.read_state @wte.momentum_buffer
// SGD: %[[NP:.*]], %[[NB:.*]] = galvatron.sgd_update %{{.*}}, %{{.*}}, %[[BUF]], %[[LR]], %[[ONE]] {momentum = 5.000000e-01 : f64, nesterov = true, weight_decay = 1.000000e-01 : f64}
// SGD: galvatron.assign @wte, %[[NP]]
// SGD: galvatron.assign @wte.momentum_buffer, %[[NB]]
// SGD: galvatron.schedule @train_step loss masked_token micro_batches 1

// AdamW hyperparameters reach every update; clipping to 0.5.
// ADAMW-LABEL: func.func @optimizer_step
// ADAMW: galvatron.constant dense<5.000000e-01>
// ADAMW: galvatron.min
// ADAMW-COUNT-4: galvatron.adamw_update {{.*}} {beta1 = 8.000000e-01 : f64, beta2 = 0.94999999999999996 : f64, epsilon = 9.9999999999999995E-7 : f64, weight_decay = 0.000000e+00 : f64}

// Every layer recomputed: the forward returns only layer inputs (and the
// data), the backward layers rebuild their forward.
// CKPT-LABEL: func.func @forward
// CKPT: %[[E:.*]] = galvatron.layer embedding "embed"
// CKPT: %[[B:.*]] = galvatron.layer decoder "block" (%{{.*}} = %[[E]] : tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
// CKPT: galvatron.layer head "head"
// CKPT: return %arg0, %[[E]], %[[B]], %arg1 : tensor<2x4xi64>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4xi64>
// CKPT-LABEL: func.func @backward
// CKPT: galvatron.layer head backward "head"
// CKPT: galvatron.layer_norm
// CKPT: galvatron.linear
// CKPT-NOT: galvatron.assign @train.loss
// CKPT: galvatron.cross_entropy_grad
// CKPT: galvatron.layer decoder backward "block"
// CKPT: galvatron.linear
// CKPT: galvatron.activation_grad

// Without an optimizer the step reports loss, norm and learning rate and
// leaves parameters and accumulated gradients alone (gradient checks).
// NONE-NOT: galvatron.state optimizer
// NONE-LABEL: func.func @optimizer_step
// NONE: galvatron.sqrt
// NONE: galvatron.lr_schedule
// NONE-NOT: galvatron.assign @wte
// NONE-NOT: galvatron.assign @{{.*}}.grad
// NONE: return
