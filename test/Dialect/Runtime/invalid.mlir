// RUN: galvatron-opt %s -split-input-file -verify-diagnostics

grt.executable world_size 2 alignment 64 {
  // expected-error @+1 {{'grt.group' op has no ranks}}
  grt.group @none ranks []
}

// -----

grt.executable world_size 2 alignment 64 {
  // expected-error @+1 {{'grt.group' op names rank 2 outside the 2-rank world}}
  grt.group @g ranks [0, 2]
}

// -----

grt.executable world_size 2 alignment 64 {
  // expected-error @+1 {{'grt.group' op names rank 1 twice}}
  grt.group @g ranks [1, 1]
}

// -----

grt.executable world_size 1 alignment 64 {
  // expected-error @+1 {{'grt.program' op rank 1 is outside the 1-rank world}}
  grt.program rank 1 arena 0 {
  }
}

// -----

grt.executable world_size 2 alignment 64 {
  grt.program rank 0 arena 0 {
  }
  // expected-error @+1 {{'grt.program' op rank 0 has another program}}
  grt.program rank 0 arena 0 {
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 64 {
    // expected-error @+1 {{'grt.constant' op value of type 'tensor<3xf32>' does not fill 'memref<4xf32>'}}
    %c = grt.constant offset 0 dense<1.0> : tensor<3xf32> : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    // expected-error @+1 {{'grt.kernel' op calls unknown kernel 'frobnicate'}}
    grt.kernel "frobnicate" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {}
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    // expected-error @+1 {{'grt.kernel' op config entry 'axis' must be an integer, a float or an array<i64>}}
    grt.kernel "softmax" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {axis = "last"}
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<2x3xf32>
    %y = grt.buffer offset 64 : memref<2x3xf32>
    // expected-error @+1 {{'grt.kernel' op 'transpose' result #0 must be f32[3,2], got f32[2,3]}}
    grt.kernel "transpose" ins(%x : memref<2x3xf32>) outs(%y : memref<2x3xf32>) {perm = array<i64: 1, 0>}
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    // expected-error @+1 {{'grt.kernel' op 'neg' takes 1 operands, got 0}}
    grt.kernel "neg" ins() outs(%x : memref<4xf32>) {}
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    // expected-error @+1 {{'grt.all_reduce' op refers to @missing, which is not a grt.group}}
    grt.all_reduce sum ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) group @missing
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  // expected-error @+1 {{'grt.program' op buffer 1: bytes [64, 80) lie outside the arena of 64 bytes}}
  grt.program rank 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    grt.kernel "neg" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {}
    grt.output "y" %y : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  // expected-error @+1 {{'grt.program' op instruction 1 (kernel 'exp' in layer 'l'): reads buffer 2 before it is written}}
  grt.program rank 0 arena 192 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    %t = grt.buffer offset 128 : memref<4xf32>
    grt.kernel "neg" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {}
    grt.kernel "exp" ins(%t : memref<4xf32>) outs(%y : memref<4xf32>) {} layer "l"
    grt.output "y" %y : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  // expected-error @+1 {{'grt.program' op buffer 1 and buffer 2 share bytes while both are live (instructions 1 to 2)}}
  grt.program rank 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %a = grt.buffer offset 64 : memref<4xf32>
    %b = grt.buffer offset 64 : memref<4xf32>
    grt.kernel "neg" ins(%x : memref<4xf32>) outs(%a : memref<4xf32>) {}
    grt.kernel "exp" ins(%x : memref<4xf32>) outs(%b : memref<4xf32>) {}
    grt.output "a" %a : memref<4xf32>
    grt.output "b" %b : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  // expected-error @+1 {{'grt.program' op instruction 0 (kernel 'matmul'): result #0 overlaps operand #0 but may not be computed in place}}
  grt.program rank 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<2x2xf32>
    %y = grt.buffer offset 0 : memref<2x2xf32>
    grt.kernel "matmul" ins(%x, %x : memref<2x2xf32>, memref<2x2xf32>) outs(%y : memref<2x2xf32>) {}
    grt.output "y" %y : memref<2x2xf32>
  }
}

// -----

// expected-error @+1 {{'grt.executable' op rank 0 sends 1 message(s) with tag 0 to rank 1 that it does not receive alike}}
grt.executable world_size 2 alignment 64 {
  grt.program rank 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    grt.send %x to 1 tag 0 : memref<4xf32>
  }
  grt.program rank 1 arena 64 {
    %y = grt.input "y" offset 0 : memref<8xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 {
  grt.program rank 0 arena 64 {
    // expected-error @+1 {{'grt.buffer' op result #0 must be statically shaped memref of 32-bit float or 16-bit float or bfloat16 type or 64-bit signless integer or 32-bit signless integer or 1-bit signless integer values}}
    %x = grt.buffer offset 0 : memref<4xf64>
  }
}
