// galvatron IR lowers, serializes and runs: y = x·W + b and its row sums.
// RUN: galvatron-translate --emit-program %s -o %t.gxp
// RUN: %python -c "import numpy; numpy.save('%t.x.npy', numpy.array([[1, 2], [3, 4]], numpy.float32))"
// RUN: galvatron-run %t.gxp --input x=%t.x.npy --output-dir %t.out | FileCheck %s --check-prefix=EXEC
// RUN: %python -c "import numpy; print(numpy.load('%t.out/y.npy').tolist(), numpy.load('%t.out/sums.npy').tolist())" | FileCheck %s --check-prefix=VALUES
// The lowered IR emits the same program.
// RUN: galvatron-opt %s --galvatron-runtime-pipeline -o %t.grt.mlir
// RUN: galvatron-translate --emit-program %t.grt.mlir -o %t.again.gxp
// RUN: cmp %t.gxp %t.again.gxp
// Emitting needs an output file; IR that is not a model fails to lower.
// RUN: not galvatron-translate --emit-program %s 2>&1 | FileCheck %s --check-prefix=STDOUT
// RUN: echo 'func.func @f() { return }' | not galvatron-translate --emit-program -o %t.bad.gxp 2>&1 | FileCheck %s --check-prefix=NOMAIN

// EXEC-LABEL: galvatron-run: {{.*}}.gxp: model 'affine', 1 rank(s), format 2.4
// EXEC: galvatron-run: wrote {{.*}}y.npy (f32[2,2])
// EXEC: galvatron-run: wrote {{.*}}sums.npy (f32[2])
// VALUES: {{\[\[}}1.5, 3.0], [3.5, 7.0]] [4.5, 10.5]
// STDOUT: error: --emit-program writes a binary file: give -o FILE
// NOMAIN: error: <stdin>: no function or galvatron.schedule 'main' to lower

module attributes {galvatron.model = "affine"} {
  func.func @main(%x: tensor<2x2xf32> {galvatron.name = "x"}) -> (tensor<2x2xf32> {galvatron.name = "y"}, tensor<2xf32> {galvatron.name = "sums"}) {
    %y, %s = galvatron.layer head "affine" (%a = %x : tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2xf32>) {
      %w = galvatron.constant dense<[[1.0, 0.0], [0.0, 2.0]]> : tensor<2x2xf32>
      %b = galvatron.constant dense<[0.5, -1.0]> : tensor<2xf32>
      %y = galvatron.linear %a, %w, %b : (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<2x2xf32>
      %s = galvatron.reduce_sum %y, [1] : tensor<2x2xf32> -> tensor<2xf32>
      galvatron.yield %y, %s : tensor<2x2xf32>, tensor<2xf32>
    }
    return %y, %s : tensor<2x2xf32>, tensor<2xf32>
  }
}
