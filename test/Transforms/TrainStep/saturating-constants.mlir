// RUN: galvatron-opt %s --galvatron-build-train-step="precision=bf16" | FileCheck %s --check-prefix=BF16
// RUN: galvatron-opt %s --galvatron-build-train-step="precision=fp16" | FileCheck %s --check-prefix=FP16

// An f32 constant beyond the 16-bit range becomes the largest finite value,
// not infinity: exporters mask with torch.finfo(float32).min, and a mask of
// ones times -inf would be NaN.
// BF16-LABEL: func.func @forward
// BF16: galvatron.constant dense<-3.389530e+38> : tensor<bf16>
// FP16-LABEL: func.func @forward
// FP16: galvatron.constant dense<-6.550400e+04> : tensor<f16>

galvatron.parameter @wte : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @main(%ids: tensor<2x4xi64> {galvatron.name = "input_ids"}, %mask: tensor<2x4xf32> {galvatron.name = "attention_mask"}) -> (tensor<2x4x32xf32> {galvatron.name = "logits"}) {
  %0 = galvatron.layer head "head" (%i = %ids : tensor<2x4xi64>, %m = %mask : tensor<2x4xf32>) -> tensor<2x4x32xf32> {
    %t = galvatron.param @wte : tensor<32x8xf32>
    %e = galvatron.embedding %t, %i : (tensor<32x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %l = galvatron.linear %e, %t {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<32x8xf32>) -> tensor<2x4x32xf32>
    %min = galvatron.constant dense<-3.40282347e+38> : tensor<f32>
    %big = galvatron.mul %m, %min : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
    %r = galvatron.reshape %big : tensor<2x4xf32> -> tensor<2x4x1xf32>
    %s = galvatron.add %l, %r : (tensor<2x4x32xf32>, tensor<2x4x1xf32>) -> tensor<2x4x32xf32>
    galvatron.yield %s : tensor<2x4x32xf32>
  }
  return %0 : tensor<2x4x32xf32>
}
