// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step | FileCheck %s
// The result verifies, round-trips and survives canonicalization and CSE.
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="precision=fp16 micro-batches=2" --canonicalize --cse | galvatron-opt --verify-roundtrip > /dev/null
// The training step of a small causal LM with a tied head, default options
// (AdamW, clipping to 1, one micro-batch, fp32).

// Control state, then one accumulator per parameter in the order the
// backward pass reaches them, then the AdamW moments.
// CHECK: galvatron.state control @train.loss : tensor<f32> {init = #galvatron.init<zeros>}
// CHECK: galvatron.state control @train.step : tensor<i64> {init = #galvatron.init<zeros>}
// CHECK: galvatron.state gradient @wte.grad of @wte : tensor<32x8xf32>
// CHECK: galvatron.state gradient @ln.bias.grad of @ln.bias
// CHECK: galvatron.state gradient @ln.weight.grad of @ln.weight
// CHECK: galvatron.state gradient @fc.weight.grad of @fc.weight
// CHECK: galvatron.state optimizer @wte.exp_avg of @wte : tensor<32x8xf32>
// CHECK: galvatron.state optimizer @wte.exp_avg_sq of @wte : tensor<32x8xf32>

// The forward takes the labels next to the inputs and returns what the
// backward needs: the token ids (embedding gradient), the block's input and
// gelu input, the head's input, norm output and logits, and the labels.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x4xi64> {galvatron.name = "input_ids"}, %[[LABELS:.*]]: tensor<2x4xi64> {galvatron.name = "labels"})
// CHECK-SAME: -> (tensor<2x4xi64>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x32xf32>, tensor<2x4xi64>)
// CHECK: %[[E:.*]] = galvatron.layer embedding "embed"
// CHECK: %[[B:.*]]:2 = galvatron.layer decoder "block" (%{{.*}} = %[[E]] : {{.*}}) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>)
// CHECK: %[[PRE:.*]] = galvatron.linear
// CHECK: galvatron.yield %{{.*}}, %[[PRE]]
// The loss lives in the head: f32 cross-entropy over the logits, added to
// the step's loss sum with weight 1 / micro-batches.
// CHECK: %[[H:.*]]:2 = galvatron.layer head "head" (%{{.*}} = %[[B]]#0 : {{.*}}, %[[HL:.*]] = %[[LABELS]] : tensor<2x4xi64>)
// CHECK: %[[N:.*]] = galvatron.layer_norm
// CHECK: %[[LOGITS:.*]] = galvatron.linear %[[N]]
// CHECK: %[[LOSS:.*]] = galvatron.cross_entropy %[[LOGITS]], %[[HL]] : (tensor<2x4x32xf32>, tensor<2x4xi64>) -> tensor<f32>
// CHECK: %[[W:.*]] = galvatron.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[SHARE:.*]] = galvatron.mul %[[LOSS]], %[[W]]
// CHECK: %[[SUM:.*]] = galvatron.read_state @train.loss
// CHECK: %[[NEW:.*]] = galvatron.add %[[SUM]], %[[SHARE]]
// CHECK: galvatron.assign @train.loss, %[[NEW]]
// CHECK: galvatron.yield %[[N]], %[[LOGITS]]
// CHECK: return %[[IDS]], %[[E]], %[[B]]#1, %[[B]]#0, %[[H]]#0, %[[H]]#1, %[[LABELS]]

// The backward takes exactly those and runs the layers in reverse; the seed
// d(loss) = 1 / micro-batches starts the head's backward.
// CHECK-LABEL: func.func @backward
// CHECK-SAME: (%{{.*}}: tensor<2x4xi64>, %{{.*}}: tensor<2x4x8xf32>, %{{.*}}: tensor<2x4x8xf32>, %{{.*}}: tensor<2x4x8xf32>, %{{.*}}: tensor<2x4x8xf32>, %{{.*}}: tensor<2x4x32xf32>, %{{.*}}: tensor<2x4xi64>) {
// CHECK: %[[GH:.*]] = galvatron.layer head backward "head"
// CHECK: %[[SEED:.*]] = galvatron.constant dense<1.000000e+00> : tensor<f32>
// CHECK: galvatron.cross_entropy_grad %[[SEED]]
// CHECK: galvatron.assign @wte.grad
// CHECK: galvatron.layer_norm_grad
// CHECK: galvatron.assign @ln.bias.grad
// CHECK: galvatron.assign @ln.weight.grad
// CHECK: %[[GB:.*]] = galvatron.layer decoder backward "block" (%{{.*}} = %[[GH]] :
// CHECK: galvatron.activation_grad gelu_tanh
// CHECK: galvatron.assign @fc.weight.grad
// CHECK: galvatron.layer embedding backward "embed" (%{{.*}} = %[[GB]] :
// CHECK: galvatron.embedding_grad
// CHECK: galvatron.assign @wte.grad
// CHECK: return

// The optimizer step: the step's mean loss (then a fresh sum), the global
// gradient norm, clipping, the 1-based step, the learning rate, one AdamW
// update per parameter (of the accumulated gradient the norm read) with its
// accumulator zeroed after.
// CHECK-LABEL: func.func @optimizer_step
// CHECK-SAME: -> (tensor<f32> {galvatron.name = "loss"}, tensor<f32> {galvatron.name = "grad_norm"}, tensor<f32> {galvatron.name = "lr"})
// CHECK: %[[MEAN:.*]] = galvatron.read_state @train.loss
// CHECK: galvatron.assign @train.loss, %{{.*}}
// CHECK: %[[G0:.*]] = galvatron.read_state @wte.grad
// CHECK: %[[SQ:.*]] = galvatron.mul %[[G0]], %[[G0]]
// CHECK: galvatron.reduce_sum %[[SQ]], [0, 1] : tensor<32x8xf32> -> tensor<f32>
// CHECK: %[[TOTAL:.*]] = galvatron.add
// CHECK: %[[NORM:.*]] = galvatron.sqrt
// CHECK: %[[ONE:.*]] = galvatron.constant dense<1.000000e+00>
// CHECK: %[[EPS:.*]] = galvatron.constant dense<9.99999997E-7>
// CHECK: %[[DEN:.*]] = galvatron.add %[[NORM]], %[[EPS]]
// CHECK: %[[MAX:.*]] = galvatron.constant dense<1.000000e+00>
// CHECK: %[[RATIO:.*]] = galvatron.div %[[MAX]], %[[DEN]]
// CHECK: %[[CLIP:.*]] = galvatron.min %[[ONE]], %[[RATIO]]
// CHECK: %[[INC:.*]] = galvatron.constant dense<1> : tensor<i64>
// CHECK: %[[T0:.*]] = galvatron.read_state @train.step
// CHECK: %[[T:.*]] = galvatron.add %[[T0]], %[[INC]]
// CHECK: galvatron.assign @train.step, %[[T]]
// CHECK: %[[LR:.*]] = galvatron.lr_schedule %[[T]] {lr = 1.000000e-03 : f64} : tensor<i64> -> tensor<f32>
// CHECK: %[[P:.*]] = galvatron.param @wte
// CHECK: %[[M:.*]] = galvatron.read_state @wte.exp_avg
// CHECK: %[[V:.*]] = galvatron.read_state @wte.exp_avg_sq
// CHECK: %[[NP:.*]], %[[NM:.*]], %[[NV:.*]] = galvatron.adamw_update %[[P]], %[[G0]], %[[M]], %[[V]], %[[LR]], %[[T]], %[[CLIP]] :
// CHECK: galvatron.assign @wte, %[[NP]]
// CHECK: galvatron.assign @wte.exp_avg, %[[NM]]
// CHECK: galvatron.assign @wte.exp_avg_sq, %[[NV]]
// CHECK: %[[Z:.*]] = galvatron.constant dense<0.000000e+00>
// CHECK: %[[ZEROS:.*]] = galvatron.broadcast %[[Z]] : tensor<f32> -> tensor<32x8xf32>
// CHECK: galvatron.assign @wte.grad, %[[ZEROS]]
// CHECK-COUNT-3: galvatron.adamw_update
// CHECK: return %[[MEAN]], %[[NORM]], %[[LR]]

// One micro-batch: forward, backward, update.
// CHECK: galvatron.schedule @train_step loss next_token micro_batches 1 forward @forward backward @backward optimizer @optimizer_step [1 x [forward 0, backward 0], 1 x [optimizer]]
