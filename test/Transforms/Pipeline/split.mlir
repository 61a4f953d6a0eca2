// RUN: galvatron-opt %s -split-input-file --galvatron-pipeline | FileCheck %s
// RUN: galvatron-opt %s -split-input-file --galvatron-pipeline="stage=1" | FileCheck %s --check-prefix=STAGE1

// Three stages, uneven (2 + 1 + 1 layers). The mask computed on stage 0 is
// used on stages 1 and 2: it goes to each directly. It depends on no
// parameter, so its receives are not differentiable; the hidden states are.
module attributes {galvatron.plan = #galvatron.plan<devices = 3, devices_per_node = 8, pp = 3, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @w0 : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @w1 : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @w2 : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4xf32> {galvatron.name = "x"}, %m: tensor<2x4xf32> {galvatron.name = "mask"}) -> (tensor<2x4xf32> {galvatron.name = "logits"}) {
    %0, %mask = galvatron.layer embedding "embed" (%a = %x : tensor<2x4xf32>, %b = %m : tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      %w = galvatron.param @w0 : tensor<4x4xf32>
      %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %n = galvatron.neg %b : tensor<2x4xf32>
      galvatron.yield %y, %n : tensor<2x4xf32>, tensor<2x4xf32>
    }
    %1 = galvatron.layer decoder "h.0" (%a = %0 : tensor<2x4xf32>, %k = %mask : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      %s = galvatron.add %a, %k : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      galvatron.yield %s : tensor<2x4xf32>
    }
    %2 = galvatron.layer decoder "h.1" (%a = %1 : tensor<2x4xf32>, %k = %mask : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 1>} {
      %w = galvatron.param @w1 : tensor<4x4xf32>
      %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %s = galvatron.add %y, %k : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      galvatron.yield %s : tensor<2x4xf32>
    }
    %3 = galvatron.layer decoder "h.2" (%a = %2 : tensor<2x4xf32>, %k = %mask : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 1>} {
      %s = galvatron.mul %a, %k : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      galvatron.yield %s : tensor<2x4xf32>
    }
    %4 = galvatron.layer head "head" (%a = %3 : tensor<2x4xf32>, %k = %mask : tensor<2x4xf32>, %b = %x : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 2, tp = 1, dp = 1>} {
      %w = galvatron.param @w2 : tensor<4x4xf32>
      %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %s = galvatron.add %y, %k : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      %t = galvatron.add %s, %b : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      galvatron.yield %t : tensor<2x4xf32>
    }
    return %4 : tensor<2x4xf32>
  }
}

// CHECK-LABEL: func.func @main_stage0
// CHECK-SAME: (%{{.*}}: tensor<2x4xf32> {galvatron.name = "x"}, %{{.*}}: tensor<2x4xf32> {galvatron.name = "mask"})
// CHECK-NOT: -> 
// CHECK: galvatron.layer embedding "embed"
// CHECK: %[[N:.*]] = galvatron.neg
// CHECK: galvatron.send %[[N]] to stage 1 tag 1
// CHECK: galvatron.send %[[N]] to stage 2 tag 1
// CHECK: galvatron.layer decoder "h.0"
// CHECK: %[[S:.*]] = galvatron.add
// CHECK: galvatron.send %[[S]] to stage 1 tag 0
// CHECK: return{{$}}

// CHECK-LABEL: func.func @main_stage1()
// CHECK: galvatron.layer decoder "h.1" () -> (tensor<2x4xf32>, tensor<2x4xf32>)
// CHECK: galvatron.recv from stage 0 tag 0 differentiable
// CHECK: galvatron.recv from stage 0 tag 1 :
// CHECK: galvatron.layer decoder "h.2"
// CHECK: galvatron.send %{{.*}} to stage 2 tag 2 :
// CHECK: return{{$}}

// CHECK-LABEL: func.func @main_stage2
// CHECK-SAME: (%{{.*}}: tensor<2x4xf32> {galvatron.name = "x"}) -> (tensor<2x4xf32> {galvatron.name = "logits"})
// CHECK: galvatron.layer head "head"
// CHECK: galvatron.recv from stage 1 tag 2 differentiable
// CHECK: galvatron.recv from stage 0 tag 1 :
// CHECK: return

// The original stays next to the stages.
// CHECK-LABEL: func.func @main(

// STAGE1-NOT: @w0
// STAGE1: galvatron.parameter @w1
// STAGE1-NOT: @w2
// STAGE1-LABEL: func.func @main()
// STAGE1-NOT: func.func
