// RUN: galvatron-opt %s -split-input-file -verify-diagnostics

grt.executable world_size 2 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.group' op needs one stride per size}}
  grt.group @g sizes [2] strides []
}

// -----

grt.executable world_size 2 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.group' op needs positive sizes and strides}}
  grt.group @g sizes [2] strides [0]
}

// -----

// expected-error @+1 {{'grt.executable' op a world of 3 ranks does not split into 2 stages}}
grt.executable world_size 3 alignment 64 stages 2 {
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op stage 1 is outside the 1-stage pipeline}}
  grt.program stage 1 arena 0 {
  }
}

// -----

grt.executable world_size 2 alignment 64 stages 2 {
  grt.program stage 0 arena 0 {
  }
  // expected-error @+1 {{'grt.program' op stage 0 has another program}}
  grt.program stage 0 arena 0 {
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 64 {
    // expected-error @+1 {{'grt.constant' op value of type 'tensor<3xf32>' does not fill 'memref<4xf32>'}}
    %c = grt.constant offset 0 dense<1.0> : tensor<3xf32> : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    // expected-error @+1 {{'grt.kernel' op calls unknown kernel 'frobnicate'}}
    grt.kernel "frobnicate" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {}
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    // expected-error @+1 {{'grt.kernel' op config entry 'axis' must be an integer, a float or an array<i64>}}
    grt.kernel "softmax" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {axis = "last"}
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<2x3xf32>
    %y = grt.buffer offset 64 : memref<2x3xf32>
    // expected-error @+1 {{'grt.kernel' op 'transpose' result #0 must be f32[3,2], got f32[2,3]}}
    grt.kernel "transpose" ins(%x : memref<2x3xf32>) outs(%y : memref<2x3xf32>) {perm = array<i64: 1, 0>}
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    // expected-error @+1 {{'grt.kernel' op 'neg' takes 1 operands, got 0}}
    grt.kernel "neg" ins() outs(%x : memref<4xf32>) {}
  }
}

// -----

grt.executable world_size 2 alignment 64 stages 1 {
  grt.group @g_2x1 sizes [2] strides [1]
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<2x4xf32>
    %y = grt.buffer offset 64 : memref<1x4xf32>
    // expected-error @+1 {{'grt.kernel' op has a rank term for 'begin', which it does not hold}}
    grt.kernel "slice" ins(%x : memref<2x4xf32>) outs(%y : memref<1x4xf32>) {starts = array<i64: 0, 0>, limits = array<i64: 1, 4>, strides = array<i64: 1, 1>} terms [#grt.term<"begin"[0], 1 * @g_2x1>]
  }
}

// -----

grt.executable world_size 2 alignment 64 stages 1 {
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<2x4xf32>
    %y = grt.buffer offset 64 : memref<1x4xf32>
    // expected-error @+1 {{'grt.kernel' op names @missing, which is not a grt.group}}
    grt.kernel "slice" ins(%x : memref<2x4xf32>) outs(%y : memref<1x4xf32>) {starts = array<i64: 0, 0>, limits = array<i64: 1, 4>, strides = array<i64: 1, 1>} terms [#grt.term<"starts"[0], 1 * @missing>]
  }
}

// -----

// Rank-dependent values are checked for the highest rank as well.
grt.executable world_size 2 alignment 64 stages 1 {
  grt.group @g_2x1 sizes [2] strides [1]
  // expected-error @+1 {{'grt.program' op instruction 0 (kernel 'slice'): on the rank with the highest positions: [2, 3) is out of bounds for dimension 0 of f32[2,4]}}
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<2x4xf32>
    %y = grt.buffer offset 64 : memref<1x4xf32>
    grt.kernel "slice" ins(%x : memref<2x4xf32>) outs(%y : memref<1x4xf32>) {starts = array<i64: 0, 0>, limits = array<i64: 1, 4>, strides = array<i64: 1, 1>} terms [#grt.term<"starts"[0], 2 * @g_2x1>, #grt.term<"limits"[0], 2 * @g_2x1>]
    grt.output "y" %y : memref<1x4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    // expected-error @+1 {{'grt.all_reduce' op refers to @missing, which is not a grt.group}}
    grt.all_reduce sum ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) group @missing
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op buffer 1: bytes [64, 80) lie outside the arena of 64 bytes}}
  grt.program stage 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    grt.kernel "neg" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {}
    grt.output "y" %y : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op block 'main': instruction 1 (kernel 'exp' in layer 'l'): reads buffer 2 before it is written}}
  grt.program stage 0 arena 192 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %y = grt.buffer offset 64 : memref<4xf32>
    %t = grt.buffer offset 128 : memref<4xf32>
    grt.kernel "neg" ins(%x : memref<4xf32>) outs(%y : memref<4xf32>) {}
    grt.kernel "exp" ins(%t : memref<4xf32>) outs(%y : memref<4xf32>) {} layer "l"
    grt.output "y" %y : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op block 'main': buffer 1 and buffer 2 share bytes while both are live (from instruction 1 (kernel 'exp'))}}
  grt.program stage 0 arena 128 {
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

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op instruction 0 (kernel 'matmul'): result #0 overlaps operand #0 but may not be computed in place}}
  grt.program stage 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<2x2xf32>
    %y = grt.buffer offset 0 : memref<2x2xf32>
    grt.kernel "matmul" ins(%x, %x : memref<2x2xf32>, memref<2x2xf32>) outs(%y : memref<2x2xf32>) {}
    grt.output "y" %y : memref<2x2xf32>
  }
}

// -----

// expected-error @+1 {{'grt.executable' op stage 0 sends 1 message(s) with tag 0 to stage 1 that it does not receive alike}}
grt.executable world_size 2 alignment 64 stages 2 {
  grt.program stage 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    grt.send %x to stage 1 tag 0 : memref<4xf32>
  }
  grt.program stage 1 arena 64 {
    %y = grt.input "y" offset 0 : memref<8xf32>
  }
}

// -----

grt.executable world_size 2 alignment 64 stages 2 {
  // expected-error @+1 {{'grt.program' op instruction 0 (send): peer stage 0 is this stage itself}}
  grt.program stage 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    grt.send %x to stage 0 tag 0 : memref<4xf32>
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 64 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    grt.block "main" {
    }
    // expected-error @+1 {{'grt.kernel' op lies outside the grt.block ops of its program}}
    grt.kernel "neg" ins(%x : memref<4xf32>) outs(%x : memref<4xf32>) {}
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op has grt.block ops but no grt.schedule}}
  grt.program stage 0 arena 64 {
    grt.block "main" {
    }
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 64 {
    grt.block "main" {
    }
    // expected-error @+1 {{'grt.schedule' op runs block 'other', which does not exist}}
    grt.schedule micro_batches 1 slots 1 at 0 size 0 [1 x [other 0]]
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 64 {
    grt.block "main" {
    }
    // expected-error @+1 {{'grt.schedule' op needs phases of a positive iteration count and at least one step}}
    grt.schedule micro_batches 1 slots 1 at 0 size 0 [0 x [main 0]]
  }
}

// -----

// What a micro-batch keeps from its forward to its backward lies in its
// slot.
grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op buffer 2 is kept from one block of a micro-batch to the next but is not slotted}}
  grt.program stage 0 arena 384 {
    %acc = grt.parameter "acc" offset 0 {init = #galvatron.init<zeros>, state} : memref<2xf32>
    %in = grt.input "in" offset 256 per_micro_batch "forward" : memref<2xf32>
    %doubled = grt.buffer offset 192 : memref<2xf32>
    grt.block "forward" slotted {
      grt.kernel "add" ins(%in, %in : memref<2xf32>, memref<2xf32>) outs(%doubled : memref<2xf32>) {}
    }
    grt.block "backward" slotted {
      grt.kernel "add" ins(%acc, %doubled : memref<2xf32>, memref<2xf32>) outs(%acc : memref<2xf32>) {}
    }
    grt.schedule micro_batches 3 slots 2 at 64 size 64 [1 x [forward 0], 2 x [forward 1, backward 0], 1 x [backward 2]]
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  // expected-error @+1 {{'grt.program' op micro-batch 2 starts in slot 0 while micro-batch 0 still holds it}}
  grt.program stage 0 arena 384 {
    %acc = grt.parameter "acc" offset 0 {init = #galvatron.init<zeros>, state} : memref<2xf32>
    %in = grt.input "in" offset 256 per_micro_batch "forward" : memref<2xf32>
    %doubled = grt.buffer offset 64 slotted : memref<2xf32>
    grt.block "forward" slotted {
      grt.kernel "add" ins(%in, %in : memref<2xf32>, memref<2xf32>) outs(%doubled : memref<2xf32>) {}
    }
    grt.block "backward" slotted {
      grt.kernel "add" ins(%acc, %doubled : memref<2xf32>, memref<2xf32>) outs(%acc : memref<2xf32>) {}
    }
    grt.schedule micro_batches 3 slots 2 at 64 size 64 [3 x [forward 0], 3 x [backward 0]]
  }
}

// -----

grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 64 {
    // expected-error @+1 {{'grt.buffer' op result #0 must be statically shaped memref of 32-bit float or 16-bit float or bfloat16 type or 64-bit signless integer or 32-bit signless integer or 1-bit signless integer values}}
    %x = grt.buffer offset 0 : memref<4xf64>
  }
}
