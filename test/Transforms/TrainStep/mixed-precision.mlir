// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="precision=bf16" | FileCheck %s --check-prefix=BF16
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step="precision=fp16 initial-loss-scale=1024 loss-scale-window=100" | FileCheck %s --check-prefix=FP16

// bf16: activations in 16 bits, f32 master weights cast after each read,
// an f32 loss, parameter gradients cast back to f32 before they
// accumulate; optimizer state stays f32.
// BF16: galvatron.state gradient @wte.grad of @wte : tensor<32x8xf32>
// BF16-LABEL: func.func @forward
// BF16-SAME: -> (tensor<2x4xi64>, tensor<2x4x8xbf16>
// BF16: %[[T:.*]] = galvatron.param @wte : tensor<32x8xf32>
// BF16-NEXT: %[[TB:.*]] = galvatron.cast %[[T]] : tensor<32x8xf32> to tensor<32x8xbf16>
// BF16-NEXT: galvatron.embedding %[[TB]], %{{.*}} : (tensor<32x8xbf16>, tensor<2x4xi64>) -> tensor<2x4x8xbf16>
// BF16: galvatron.gelu %{{.*}} approximate = tanh : tensor<2x4x8xbf16>
// BF16: galvatron.cross_entropy %{{.*}}, %{{.*}} : (tensor<2x4x32xbf16>, tensor<2x4xi64>) -> tensor<f32>
// BF16-LABEL: func.func @backward
// BF16: galvatron.cross_entropy_grad %{{.*}} : (tensor<f32>, tensor<2x4x32xbf16>, tensor<2x4xi64>) -> tensor<2x4x32xbf16>
// BF16: %[[DW:.*]] = galvatron.matmul {{.*}} -> tensor<32x8xbf16>
// BF16-NEXT: %[[DW32:.*]] = galvatron.cast %[[DW]] : tensor<32x8xbf16> to tensor<32x8xf32>
// BF16-NEXT: %[[OLD:.*]] = galvatron.read_state @wte.grad : tensor<32x8xf32>
// BF16-NEXT: galvatron.add %[[OLD]], %[[DW32]]
// BF16-LABEL: func.func @optimizer_step
// BF16-NOT: loss_scale
// BF16: galvatron.adamw_update {{.*}} : (tensor<32x8xf32>

// fp16: dynamic loss scaling. The seed carries the scale; the optimizer
// unscales the norm, checks it is finite, skips the update (and the step
// count) when it is not, halves the scale on overflow and doubles it after
// `loss-scale-window` finite steps.
// FP16: galvatron.state control @train.loss_scale : tensor<f32> {init = #galvatron.init<constant(1.024000e+03)>}
// FP16: galvatron.state control @train.good_steps : tensor<i64> {init = #galvatron.init<zeros>}
// FP16-LABEL: func.func @forward
// FP16: galvatron.cross_entropy %{{.*}}, %{{.*}} : (tensor<2x4x32xf16>, tensor<2x4xi64>) -> tensor<f32>
// FP16-LABEL: func.func @backward
// FP16: %[[INV:.*]] = galvatron.constant dense<1.000000e+00> : tensor<f32>
// FP16-NEXT: %[[SCALE:.*]] = galvatron.read_state @train.loss_scale
// FP16-NEXT: %[[SEED:.*]] = galvatron.mul %[[SCALE]], %[[INV]]
// FP16-NEXT: galvatron.cross_entropy_grad %[[SEED]]
// FP16-LABEL: func.func @optimizer_step
// FP16-SAME: tensor<f32> {galvatron.name = "loss_scale"})
// FP16: %[[RAW:.*]] = galvatron.sqrt
// FP16-NEXT: %[[S:.*]] = galvatron.read_state @train.loss_scale
// FP16-NEXT: %[[NORM:.*]] = galvatron.div %[[RAW]], %[[S]]
// FP16-NEXT: %[[D:.*]] = galvatron.sub %[[NORM]], %[[NORM]]
// FP16-NEXT: %[[Z:.*]] = galvatron.constant dense<0.000000e+00>
// FP16-NEXT: %[[OK:.*]] = galvatron.compare eq, %[[D]], %[[Z]] : (tensor<f32>, tensor<f32>) -> tensor<i1>
// FP16: %[[CLIP:.*]] = galvatron.min
// FP16-NEXT: %[[GS:.*]] = galvatron.div %[[CLIP]], %[[S]]
// FP16-NEXT: %[[INC:.*]] = galvatron.cast %[[OK]] : tensor<i1> to tensor<i64>
// FP16: galvatron.adamw_update {{.*}}, %[[GS]], %[[OK]] :
// FP16: %[[GOOD:.*]] = galvatron.add
// FP16: %[[WINDOW:.*]] = galvatron.constant dense<100> : tensor<i64>
// FP16-NEXT: %[[GROW:.*]] = galvatron.compare ge, %[[GOOD]], %[[WINDOW]]
// FP16: %[[UP:.*]] = galvatron.select %[[GROW]]
// FP16-NEXT: %[[NEW:.*]] = galvatron.select %[[OK]], %[[UP]]
// FP16-NEXT: galvatron.assign @train.loss_scale, %[[NEW]]
// FP16: galvatron.assign @train.good_steps
// FP16: return %{{.*}}, %[[NORM]], %{{.*}}, %[[S]]
