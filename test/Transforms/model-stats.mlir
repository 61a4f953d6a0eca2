// RUN: galvatron-opt %s --galvatron-model-stats -o /dev/null | FileCheck %s
// RUN: galvatron-opt %s --galvatron-model-stats=json=true -o /dev/null | FileCheck %s --check-prefix=JSON
// The pass leaves the IR unchanged; output= sends the table to a file.
// RUN: galvatron-opt %s --galvatron-model-stats=output=%t.stats | galvatron-opt | FileCheck %s --check-prefix=IR
// RUN: FileCheck %s < %t.stats
// RUN: not galvatron-opt %s --galvatron-model-stats=output=%t.nodir/x -o /dev/null 2>&1 | FileCheck %s --check-prefix=ERR
// ERR: error: --galvatron-model-stats: cannot open output file '{{.*}}x'


galvatron.parameter @table : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
galvatron.parameter @w : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}

// IR-LABEL: func.func @model
func.func @model(%ids: tensor<2x4xi64>) -> tensor<2x4x32xf32> {
  %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> {
    %t = galvatron.param @table : tensor<32x8xf32>
    %e = galvatron.embedding %t, %i : (tensor<32x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    galvatron.yield %e : tensor<2x4x8xf32>
  }
  // Reading @w twice in one layer counts it once: 2 x (2·8·8·8) FLOPs.
  %1 = galvatron.layer decoder "block" (%x = %0 : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %w = galvatron.param @w : tensor<8x8xf32>
    %a = galvatron.linear %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %w2 = galvatron.param @w : tensor<8x8xf32>
    %b = galvatron.linear %a, %w2 : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    galvatron.yield %b : tensor<2x4x8xf32>
  }
  // The tied head shares @table: 2·8·8·32 FLOPs, no new parameters.
  %2 = galvatron.layer head "head" (%x = %1 : tensor<2x4x8xf32>) -> tensor<2x4x32xf32> {
    %t = galvatron.param @table : tensor<32x8xf32>
    %l = galvatron.linear %x, %t {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<32x8xf32>) -> tensor<2x4x32xf32>
    galvatron.yield %l : tensor<2x4x32xf32>
  }
  // An op outside every layer is reported on its own row.
  %3 = galvatron.matmul %2, %2 {transpose_rhs = true} : (tensor<2x4x32xf32>, tensor<2x4x32xf32>) -> tensor<2x4x4xf32>
  return %2 : tensor<2x4x32xf32>
}

// A function without layers is not a model.
func.func @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// CHECK: model statistics for @model
// CHECK-NEXT: layer kind parameters shared forward FLOPs
// CHECK-NEXT: embed embedding 256 0 0
// CHECK-NEXT: block decoder 64 0 2048
// CHECK-NEXT: head head 0 256 4096
// CHECK-NEXT: (outside layers) other 0 0 2048
// CHECK-NEXT: layers: 3
// CHECK-NEXT: total parameters: 320 (320.00)
// CHECK-NEXT: total forward FLOPs: 8192 (8.19 KFLOP)
// CHECK-NOT: @helper

// JSON:      "function": "model",
// JSON:          "flops": 2048,
// JSON-NEXT:     "kind": "decoder",
// JSON-NEXT:     "name": "block",
// JSON-NEXT:     "parameters": 64,
// JSON-NEXT:     "shared_parameters": 0
// JSON:          "flops": 4096,
// JSON-NEXT:     "kind": "head",
// JSON-NEXT:     "name": "head",
// JSON-NEXT:     "parameters": 0,
// JSON-NEXT:     "shared_parameters": 256
// JSON:        "outside_layers": {
// JSON-NEXT:     "flops": 2048,
// JSON:        "total_flops": 8192,
// JSON-NEXT:   "total_parameters": 320
