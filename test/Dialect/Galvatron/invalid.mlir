// RUN: galvatron-opt %s -split-input-file -verify-diagnostics

func.func @tril_mask_rank() {
  // expected-error @+1 {{result must have rank >= 2 ([..., rows, cols]), got rank 1}}
  %0 = galvatron.tril_mask : tensor<8xi1>
  return
}

// -----

func.func @tril_mask_type() {
  // expected-error @+1 {{must be statically shaped tensor of 1-bit signless integer values}}
  %0 = galvatron.tril_mask : tensor<8x8xf32>
  return
}
