// RUN: galvatron-opt %s --galvatron-lower-to-runtime -split-input-file | FileCheck %s

// Parameters and state each get one persistent buffer. A read is that
// buffer; an assigned value is computed in it: the accumulation adds in
// place over the gradient it reads, and the update writes the parameter and
// its moments over their old values.
module {
  galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<ones>}
  galvatron.state gradient @w.grad of @w : tensor<4xf32> {init = #galvatron.init<zeros>}
  galvatron.state optimizer @w.m of @w : tensor<4xf32> {init = #galvatron.init<zeros>}
  galvatron.state optimizer @w.v of @w : tensor<4xf32> {init = #galvatron.init<zeros>}
  galvatron.state control @step : tensor<i64> {init = #galvatron.init<zeros>}
  func.func @main(%g: tensor<4xf32> {galvatron.name = "g"}) -> (tensor<f32> {galvatron.name = "lr"}) {
    %acc = galvatron.read_state @w.grad : tensor<4xf32>
    %sum = galvatron.add %acc, %g : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    galvatron.assign @w.grad, %sum : tensor<4xf32>
    %s = galvatron.read_state @step : tensor<i64>
    %one = galvatron.constant dense<1> : tensor<i64>
    %next = galvatron.add %s, %one : (tensor<i64>, tensor<i64>) -> tensor<i64>
    galvatron.assign @step, %next : tensor<i64>
    %lr = galvatron.lr_schedule %next {lr = 1.0e-3 : f64} : tensor<i64> -> tensor<f32>
    %scale = galvatron.constant dense<1.0> : tensor<f32>
    %w = galvatron.param @w : tensor<4xf32>
    %grad = galvatron.read_state @w.grad : tensor<4xf32>
    %m = galvatron.read_state @w.m : tensor<4xf32>
    %v = galvatron.read_state @w.v : tensor<4xf32>
    %nw, %nm, %nv = galvatron.adamw_update %w, %grad, %m, %v, %lr, %next, %scale : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
    galvatron.assign @w, %nw : tensor<4xf32>
    galvatron.assign @w.m, %nm : tensor<4xf32>
    galvatron.assign @w.v, %nv : tensor<4xf32>
    return %lr : tensor<f32>
  }
}

// CHECK-LABEL: grt.executable world_size 1 alignment 64 stages 1 {
// CHECK: %[[W:.*]] = grt.parameter "w" offset {{[0-9]+}} {init = #galvatron.init<ones>} : memref<4xf32>
// CHECK: %[[GRAD:.*]] = grt.parameter "w.grad" offset {{[0-9]+}} {init = #galvatron.init<zeros>, state} : memref<4xf32>
// CHECK: %[[STEP:.*]] = grt.parameter "step" offset {{[0-9]+}} {init = #galvatron.init<zeros>, state} : memref<i64>
// CHECK: %[[M:.*]] = grt.parameter "w.m" offset {{[0-9]+}} {init = #galvatron.init<zeros>, state} : memref<4xf32>
// CHECK: %[[V:.*]] = grt.parameter "w.v" offset {{[0-9]+}} {init = #galvatron.init<zeros>, state} : memref<4xf32>
// CHECK: grt.kernel "add" ins(%[[GRAD]], %{{.*}} : {{.*}}) outs(%[[GRAD]] : memref<4xf32>)
// CHECK: grt.kernel "add" ins(%[[STEP]], %{{.*}} : {{.*}}) outs(%[[STEP]] : memref<i64>)
// CHECK: grt.kernel "lr_schedule" ins(%[[STEP]] : memref<i64>)
// CHECK: grt.kernel "adamw_update" ins(%[[W]], %[[GRAD]], %[[M]], %[[V]], %{{.*}}, %[[STEP]], %{{.*}} : {{.*}}) outs(%[[W]], %[[M]], %[[V]] : {{.*}})
// CHECK-NOT: "copy"

// -----

// Value semantics: a read still used after the variable is assigned is a
// copy taken at the read, and a value that is not a kernel's result (a
// constant) is copied in at the assignment.
module {
  galvatron.state control @loss : tensor<f32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<f32> {galvatron.name = "x"}) -> (tensor<f32> {galvatron.name = "loss"}) {
    %old = galvatron.read_state @loss : tensor<f32>
    %zero = galvatron.constant dense<0.0> : tensor<f32>
    galvatron.assign @loss, %zero : tensor<f32>
    %sum = galvatron.add %old, %x : (tensor<f32>, tensor<f32>) -> tensor<f32>
    return %sum : tensor<f32>
  }
}

// CHECK-LABEL: grt.executable
// CHECK: %[[LOSS:.*]] = grt.parameter "loss" offset {{[0-9]+}} {init = #galvatron.init<zeros>, state} : memref<f32>
// CHECK: %[[ZERO:.*]] = grt.constant
// CHECK: %[[SNAPSHOT:.*]] = grt.buffer
// CHECK: grt.kernel "copy" ins(%[[LOSS]] : memref<f32>) outs(%[[SNAPSHOT]] : memref<f32>)
// CHECK-NEXT: grt.kernel "copy" ins(%[[ZERO]] : memref<f32>) outs(%[[LOSS]] : memref<f32>)
// CHECK-NEXT: grt.kernel "add" ins(%[[SNAPSHOT]], %{{.*}} : {{.*}})

// -----

// A splat of several elements is filled where it is used rather than stored:
// each use gets its own fill, so zeroing gradients writes zeros straight into
// each accumulator and holds no bytes for the rest of the step.
module {
  galvatron.state gradient @a.grad : tensor<2x3xf32> {init = #galvatron.init<zeros>}
  galvatron.state gradient @b.grad : tensor<2x3xf32> {init = #galvatron.init<zeros>}
  func.func @main(%g: tensor<2x3xf32> {galvatron.name = "g"}) -> (tensor<2x3xf32> {galvatron.name = "y"}) {
    %zeros = galvatron.constant dense<0.0> : tensor<2x3xf32>
    %a = galvatron.read_state @a.grad : tensor<2x3xf32>
    %y = galvatron.add %a, %g : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    galvatron.assign @a.grad, %zeros : tensor<2x3xf32>
    galvatron.assign @b.grad, %zeros : tensor<2x3xf32>
    return %y : tensor<2x3xf32>
  }
}

// CHECK-LABEL: grt.executable
// CHECK: %[[A:.*]] = grt.parameter "a.grad" {{.*}} : memref<2x3xf32>
// CHECK: %[[B:.*]] = grt.parameter "b.grad" {{.*}} : memref<2x3xf32>
// CHECK-NOT: grt.constant
// CHECK: grt.kernel "add" ins(%[[A]], %{{.*}} : {{.*}})
// CHECK-NEXT: grt.kernel "fill" ins() outs(%[[A]] : memref<2x3xf32>) {value = 0.000000e+00 : f64}
// CHECK-NEXT: grt.kernel "fill" ins() outs(%[[B]] : memref<2x3xf32>) {value = 0.000000e+00 : f64}
