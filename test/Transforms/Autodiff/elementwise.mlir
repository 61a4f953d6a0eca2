// RUN: galvatron-opt %s -split-input-file --galvatron-differentiate | FileCheck %s
// Reverse-mode rules of the elementwise ops: each function is one layer
// computing f(x) from an argument; the backward layer receives dy and the
// saved values, and yields dx.

// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: (%[[DY:.*]]: tensor<2x3xf32> {galvatron.name = "result0.grad"}, %[[Y:.*]]: tensor<2x3xf32>)
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %[[DY]] : {{.*}}, %[[SY:.*]] = %[[Y]] : {{.*}})
// exp: dy · y, from the saved result.
// CHECK: %[[R:.*]] = galvatron.mul %[[G]], %[[SY]]
// CHECK: galvatron.yield %[[R]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.exp %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// log: dy / x, from the saved input.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[X:.*]] = %{{.*}} : {{.*}})
// CHECK: galvatron.div %[[G]], %[[X]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.log %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// neg needs no forward value: the backward layer takes only dy.
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: (%{{.*}}: tensor<2x3xf32> {galvatron.name = "result0.grad"}) -> (tensor<2x3xf32> {galvatron.name = "arg0.grad"})
// CHECK: %[[R:.*]] = galvatron.neg
// CHECK: galvatron.yield %[[R]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.neg %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// sqrt: 0.5·dy / y.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[H:.*]] = galvatron.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[S:.*]] = galvatron.mul %[[G]], %[[H]]
// CHECK: galvatron.div %[[S]], %[[Y]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.sqrt %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// rsqrt: -0.5·dy·y³.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[H:.*]] = galvatron.constant dense<-5.000000e-01>
// CHECK: %[[S:.*]] = galvatron.mul %[[G]], %[[H]]
// CHECK: %[[Y2:.*]] = galvatron.mul %[[Y]], %[[Y]]
// CHECK: %[[Y3:.*]] = galvatron.mul %[[Y]], %[[Y2]]
// CHECK: galvatron.mul %[[S]], %[[Y3]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.rsqrt %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// reciprocal: -dy·y².
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[N:.*]] = galvatron.neg %[[G]]
// CHECK: %[[Y2:.*]] = galvatron.mul %[[Y]], %[[Y]]
// CHECK: galvatron.mul %[[N]], %[[Y2]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.reciprocal %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// tanh: dy·(1 - y²).
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[ONE:.*]] = galvatron.constant dense<1.000000e+00>
// CHECK: %[[Y2:.*]] = galvatron.mul %[[Y]], %[[Y]]
// CHECK: %[[D:.*]] = galvatron.sub %[[ONE]], %[[Y2]]
// CHECK: galvatron.mul %[[G]], %[[D]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.tanh %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// sigmoid: dy·y·(1 - y).
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[ONE:.*]] = galvatron.constant dense<1.000000e+00>
// CHECK: %[[D:.*]] = galvatron.sub %[[ONE]], %[[Y]]
// CHECK: %[[P:.*]] = galvatron.mul %[[Y]], %[[D]]
// CHECK: galvatron.mul %[[G]], %[[P]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.sigmoid %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// erf: dy·2/√π·exp(-x²).
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[X:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[X2:.*]] = galvatron.mul %[[X]], %[[X]]
// CHECK: %[[N:.*]] = galvatron.neg %[[X2]]
// CHECK: %[[E:.*]] = galvatron.exp %[[N]]
// CHECK: %[[C:.*]] = galvatron.constant dense<1.12837923> : tensor<f32>
// CHECK: %[[S:.*]] = galvatron.mul %[[G]], %[[C]]
// CHECK: galvatron.mul %[[S]], %[[E]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.erf %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// abs: sign(x)·dy with sign(0) = 0.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[X:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[Z:.*]] = galvatron.constant dense<0.000000e+00>
// CHECK: %[[LT:.*]] = galvatron.compare lt, %[[X]], %[[Z]]
// CHECK: %[[N:.*]] = galvatron.neg %[[G]]
// CHECK: %[[NEG:.*]] = galvatron.select %[[LT]], %[[N]], %[[Z]]
// CHECK: %[[GT:.*]] = galvatron.compare gt, %[[X]], %[[Z]]
// CHECK: galvatron.select %[[GT]], %[[G]], %[[NEG]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.abs %a : tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// relu, silu and gelu use the fused activation gradient on the saved input.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[X:.*]] = %{{.*}} : {{.*}}, %[[R:.*]] = %{{.*}} : {{.*}}, %[[S:.*]] = %{{.*}} : {{.*}}, %[[T:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[D3:.*]] = galvatron.activation_grad gelu_tanh, %[[G]], %[[T]]
// CHECK: %[[D2:.*]] = galvatron.activation_grad gelu, %[[D3]], %[[S]]
// CHECK: %[[D1:.*]] = galvatron.activation_grad silu, %[[D2]], %[[R]]
// CHECK: %[[D0:.*]] = galvatron.activation_grad relu, %[[D1]], %[[X]]
// CHECK: galvatron.yield %[[D0]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %r = galvatron.relu %a : tensor<2x3xf32>
    %s = galvatron.silu %r : tensor<2x3xf32>
    %g = galvatron.gelu %s : tensor<2x3xf32>
    %t = galvatron.gelu %g approximate = tanh : tensor<2x3xf32>
    galvatron.yield %t : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// Broadcasting: the gradient of the smaller operand sums over the
// broadcast dimensions and reshapes back.
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: -> (tensor<2x3xf32> {galvatron.name = "arg0.grad"}, tensor<1x3xf32> {galvatron.name = "arg1.grad"})
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[N:.*]] = galvatron.neg %[[G]]
// CHECK: %[[S:.*]] = galvatron.reduce_sum %[[N]], [0] : tensor<2x3xf32> -> tensor<3xf32>
// CHECK: %[[R:.*]] = galvatron.reshape %[[S]] : tensor<3xf32> -> tensor<1x3xf32>
// CHECK: galvatron.yield %[[G]], %[[R]]
func.func @main(%x: tensor<2x3xf32>, %b: tensor<1x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>, %c = %b : tensor<1x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.sub %a, %c : (tensor<2x3xf32>, tensor<1x3xf32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// mul reads the other factor; a rank-0 scale gets a full reduction.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[S:.*]] = %{{.*}} : tensor<f32>, %[[X:.*]] = %{{.*}} : tensor<2x3xf32>)
// CHECK: %[[DX:.*]] = galvatron.mul %[[G]], %[[S]]
// CHECK: %[[P:.*]] = galvatron.mul %[[G]], %[[X]]
// CHECK: %[[DS:.*]] = galvatron.reduce_sum %[[P]], [0, 1] : tensor<2x3xf32> -> tensor<f32>
// CHECK: galvatron.yield %[[DX]], %[[DS]]
func.func @main(%x: tensor<2x3xf32>, %s: tensor<f32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>, %c = %s : tensor<f32>) -> tensor<2x3xf32> {
    %y = galvatron.mul %a, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// div: da = dy / b, db = -(dy · y) / b.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[B:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[DA:.*]] = galvatron.div %[[G]], %[[B]]
// CHECK: %[[GY:.*]] = galvatron.mul %[[G]], %[[Y]]
// CHECK: %[[Q:.*]] = galvatron.div %[[GY]], %[[B]]
// CHECK: %[[DB:.*]] = galvatron.neg %[[Q]]
// CHECK: galvatron.yield %[[DA]], %[[DB]]
func.func @main(%x: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>, %c = %b : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.div %a, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// pow with a constant exponent: only the base gets b·a^(b-1)·dy; the
// constant is recomputed on the backward side, not saved.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[A:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[E:.*]] = galvatron.constant dense<3.000000e+00>
// CHECK: %[[ONE:.*]] = galvatron.constant dense<1.000000e+00>
// CHECK: %[[EM1:.*]] = galvatron.sub %[[E]], %[[ONE]]
// CHECK: %[[P:.*]] = galvatron.pow %[[A]], %[[EM1]]
// CHECK: %[[BP:.*]] = galvatron.mul %[[E]], %[[P]]
// CHECK: %[[R:.*]] = galvatron.mul %[[G]], %[[BP]]
// CHECK: galvatron.yield %[[R]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %e = galvatron.constant dense<3.0> : tensor<f32>
    %y = galvatron.pow %a, %e : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// pow's exponent gradient: y·ln(a)·dy, zero where a = 0.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[A:.*]] = %{{.*}} : {{.*}}, %[[B:.*]] = %{{.*}} : {{.*}}, %[[Y:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[Z:.*]] = galvatron.constant dense<0.000000e+00>
// CHECK: %[[L:.*]] = galvatron.log %[[A]]
// CHECK: %[[T:.*]] = galvatron.mul %[[Y]], %[[L]]
// CHECK: %[[EQ:.*]] = galvatron.compare eq, %[[A]], %[[Z]]
// CHECK: %[[S:.*]] = galvatron.select %[[EQ]], %[[Z]], %[[T]]
// CHECK: galvatron.mul %[[G]], %[[S]]
func.func @main(%x: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>, %c = %b : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.pow %a, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// max: the gradient goes to the larger operand, split evenly on ties.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[A:.*]] = %{{.*}} : {{.*}}, %[[B:.*]] = %{{.*}} : {{.*}})
// CHECK: %[[EQ:.*]] = galvatron.compare eq, %[[A]], %[[B]]
// CHECK: %[[TIE:.*]] = galvatron.select %[[EQ]]
// CHECK: %[[GT:.*]] = galvatron.compare gt, %[[A]], %[[B]]
// CHECK: %[[DA:.*]] = galvatron.select %[[GT]], %[[G]], %[[TIE]]
// CHECK: %[[LT:.*]] = galvatron.compare lt, %[[A]], %[[B]]
// CHECK: %[[DB:.*]] = galvatron.select %[[LT]], %[[G]], %[[TIE]]
// CHECK: galvatron.yield %[[DA]], %[[DB]]
func.func @main(%x: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>, %c = %b : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.max %a, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// min mirrors max.
// CHECK-LABEL: func.func @main_backward
// CHECK: %[[LT:.*]] = galvatron.compare lt
// CHECK: %[[DA:.*]] = galvatron.select %[[LT]]
// CHECK: %[[GT:.*]] = galvatron.compare gt
// CHECK: %[[DB:.*]] = galvatron.select %[[GT]]
func.func @main(%x: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>, %c = %b : tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.min %a, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// select routes the gradient by the saved condition; the condition and the
// integer mask it comes from get none.
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: -> (tensor<2x3xf32> {galvatron.name = "arg1.grad"}, tensor<3xf32> {galvatron.name = "arg2.grad"})
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : {{.*}}, %[[C:.*]] = %{{.*}} : tensor<2x3xi1>)
// CHECK: %[[Z:.*]] = galvatron.constant dense<0.000000e+00>
// CHECK: %[[DA:.*]] = galvatron.select %[[C]], %[[G]], %[[Z]]
// CHECK: %[[SB:.*]] = galvatron.select %[[C]], %[[Z]], %[[G]]
// CHECK: %[[DB:.*]] = galvatron.reduce_sum %[[SB]], [0] : tensor<2x3xf32> -> tensor<3xf32>
// CHECK: galvatron.yield %[[DA]], %[[DB]]
func.func @main(%c: tensor<2x3xi1>, %x: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.layer other "f" (%cc = %c : tensor<2x3xi1>, %a = %x : tensor<2x3xf32>, %bb = %b : tensor<3xf32>) -> tensor<2x3xf32> {
    %y = galvatron.select %cc, %a, %bb : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    galvatron.yield %y : tensor<2x3xf32>
  }
  return %0 : tensor<2x3xf32>
}

// -----

// cast: the gradient converts back to the input's element type.
// CHECK-LABEL: func.func @main_backward
// CHECK: %[[R:.*]] = galvatron.cast %{{.*}} : tensor<2x3xbf16> to tensor<2x3xf32>
// CHECK: galvatron.yield %[[R]]
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xbf16> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x3xf32>) -> tensor<2x3xbf16> {
    %y = galvatron.cast %a : tensor<2x3xf32> to tensor<2x3xbf16>
    galvatron.yield %y : tensor<2x3xbf16>
  }
  return %0 : tensor<2x3xbf16>
}
