// RUN: galvatron-opt %s --galvatron-differentiate | FileCheck %s
// How the engine wires backward layers: layers in reverse, a running sum
// for a value used by several layers (each consumer's backward layer adds
// its share to the sum it receives), pass-through layers, weights re-read
// instead of saved, and results that depend on no parameter or float input
// getting no gradient argument.

// Saved: the input of "a" (for its weight gradient), the input of "b" and
// the tanh inside "c", which "c" now also yields.
// CHECK-LABEL: func.func @main(
// CHECK: %[[H:.*]] = galvatron.layer embedding "a"
// CHECK: %[[P:.*]] = galvatron.layer other "pass"
// CHECK: %[[B:.*]] = galvatron.layer decoder "b"
// CHECK: %[[C:.*]]:3 = galvatron.layer decoder "c"
// CHECK: %[[T:.*]] = galvatron.tanh
// CHECK: galvatron.yield %{{.*}}, %{{.*}}, %[[T]]
// CHECK: return %[[B]], %[[C]]#0, %[[C]]#1, %arg0, %[[P]], %[[C]]#2

// The constant third result gets no gradient argument.
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: (%[[DB:.*]]: tensor<2x4xf32> {galvatron.name = "result0.grad"}, %[[DC:.*]]: tensor<2x4xf32> {galvatron.name = "result1.grad"}, %[[SX:.*]]: tensor<2x4xf32>, %[[SP:.*]]: tensor<2x4xf32>, %[[ST:.*]]: tensor<2x4xf32>) -> (tensor<2x4xf32> {galvatron.name = "arg0.grad"})
// "c" yields the gradient of h and the running sum of b's gradient (its
// own share plus the seed of b, which is also a function result).
// CHECK: %[[GC:.*]]:2 = galvatron.layer decoder backward "c" (%[[U:.*]] = %[[DC]] : {{.*}}, %{{.*}} = %[[ST]] : {{.*}}, %[[RB:.*]] = %[[DB]] : {{.*}})
// CHECK: %[[DH:.*]] = galvatron.mul %[[U]]
// CHECK: %[[SUM:.*]] = galvatron.add %[[U]], %[[RB]]
// CHECK: galvatron.yield %[[DH]], %[[SUM]]
// "b" re-reads and reshapes its weight instead of receiving it.
// CHECK: %[[GB:.*]] = galvatron.layer decoder backward "b" (%{{.*}} = %[[GC]]#1 : {{.*}}, %{{.*}} = %[[SP]] : {{.*}})
// CHECK: galvatron.param @v
// CHECK: galvatron.reshape
// CHECK: galvatron.assign @v.grad
// The pass-through layer adds its gradient to the running sum of h.
// CHECK: %[[GP:.*]] = galvatron.layer other backward "pass" (%[[X:.*]] = %[[GB]] : {{.*}}, %[[Y:.*]] = %[[GC]]#0 : {{.*}})
// CHECK: %[[TOTAL:.*]] = galvatron.add %[[X]], %[[Y]]
// CHECK: galvatron.yield %[[TOTAL]]
// CHECK: %[[GA:.*]] = galvatron.layer embedding backward "a" (%{{.*}} = %[[GP]] : {{.*}}, %{{.*}} = %[[SX]] : {{.*}})
// CHECK: galvatron.assign @w.grad
// CHECK: return %[[GA]]
galvatron.parameter @w : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
galvatron.parameter @v : tensor<16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %h = galvatron.layer embedding "a" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = galvatron.param @w : tensor<4x4xf32>
    %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    galvatron.yield %y : tensor<2x4xf32>
  }
  %p = galvatron.layer other "pass" (%a = %h : tensor<2x4xf32>) -> tensor<2x4xf32> {
    galvatron.yield %a : tensor<2x4xf32>
  }
  %b = galvatron.layer decoder "b" (%a = %p : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %v = galvatron.param @v : tensor<16xf32>
    %m = galvatron.reshape %v : tensor<16xf32> -> tensor<4x4xf32>
    %y = galvatron.matmul %a, %m : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    galvatron.yield %y : tensor<2x4xf32>
  }
  %c:2 = galvatron.layer decoder "c" (%a = %h : tensor<2x4xf32>, %s = %b : tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %t = galvatron.tanh %a : tensor<2x4xf32>
    %u = galvatron.add %t, %s : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %z = galvatron.constant dense<1.0> : tensor<2x4xf32>
    galvatron.yield %u, %z : tensor<2x4xf32>, tensor<2x4xf32>
  }
  return %b, %c#0, %c#1 : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}
