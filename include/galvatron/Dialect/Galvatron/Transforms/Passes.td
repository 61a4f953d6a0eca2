//===- Passes.td - Galvatron dialect passes ----------------*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD
#define GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ModelStats : Pass<"galvatron-model-stats", "::mlir::ModuleOp"> {
  let summary = "Print per-layer and total parameter counts and forward FLOPs";
  let description = [{
    For every function that contains layers, prints one row per layer with
    the parameters it owns (a parameter belongs to the first layer reading
    it; later readers list it as shared), and its forward FLOPs counted from
    matrix work (multiply-add = 2; a GPT layer is 24·b·s·h² + 4·b·s²·h).
    Totals count every parameter once. The IR is left unchanged.
  }];
  let options = [
    Option<"json", "json", "bool", /*default=*/"false",
           "Print the statistics as JSON">,
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "File to print to ('-' is stdout)">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def RaiseFusedOps : Pass<"galvatron-raise-fused-ops", "::mlir::func::FuncOp"> {
  let summary = "Raise decomposed patterns to the dialect's fused ops";
  let description = [{
    Rewrites the elementary-op patterns that exporters emit into the fused
    ops the cost model, partitioner and runtime reason about:

    - `attention`: matmul(Q, Kᵀ) → scale (mul/div by a constant) → masks
      (additive `add`, `select` with a `tril_mask`) → `softmax` over the
      last axis → matmul with V. A lower-triangular mask with a large
      negative fill (≤ -1e4) becomes `causal`, other additive terms the
      `mask` operand (zero terms are dropped); grouped-query K/V expanded by
      reshape → broadcast → reshape (`repeat_kv`) are used unexpanded.
    - `layer_norm`: (x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) · w + b
      over the last axis (division or multiplication by the reciprocal or
      rsqrt; weight and bias optional).
    - `rms_norm`: x / sqrt(mean(x²) + ε) · w, in the same spellings.
    - `gelu`: 0.5·x·(1 + erf(x/√2)) and, as `approximate = tanh`,
      0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in any grouping of the
      products.
    - `silu`: x·sigmoid(x).
    - `rotary`: x·cos + rotate_half(x)·sin (rotate_half = concat of the
      negated second half and the first half) where cos and sin are the
      rotary tables the ONNX importer builds with `rotary` itself (Hugging
      Face's rotate-half layout, positions from 0).
    - `linear`: matmul(x, W) (+ b) with a 2-D W computed from parameters
      only (a transposed W becomes `transpose_weight`); a linear on
      flattened rows whose result is reshaped back ([Πd, K] → [d..., N],
      Hugging Face's Conv1D) becomes a linear on [d..., K].

    Intermediate values must have no other users. The function may be flat
    or already split into layers; patterns match within one region.
  }];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def DiscoverLayers : Pass<"galvatron-discover-layers", "::mlir::func::FuncOp"> {
  let summary = "Group the ops of a flat model function into layers";
  let description = [{
    Turns a function without `galvatron.layer` ops (an imported model) into
    the form the presets have: every op in exactly one layer, layers in
    program order, values crossing layers as layer operands and results.

    Transformer blocks come from scope names in op locations, as exporters
    write them (`/transformer/h.3/attn/MatMul`, `/model/layers.3/...`,
    `/encoder/layer.3/...`, `/blocks.3/...`): the first path component of
    the form `name.N` names the block. When no op carries such a name, or
    the named blocks do not form a sequence that data flows through, blocks
    are found from structure: the chain of values every path from an input
    to the outputs passes through (the residual stream) is cut into
    segments, and the longest run of isomorphic segment groups forms the
    blocks (by period; ties go to the run that starts last, which aligns
    post-norm blocks).

    Ops outside blocks are placed as late as their users allow: before the
    first block they form the `embedding` layer, after the last the `head`,
    between two stacks an `other` layer (ops depending on the previous
    stack) and an `embedding` layer (ops that do not). Blocks are `decoder`
    layers when they contain causal or cross-attention, else `encoder`.
    Parameter reads, constants and ops computed from them alone are cloned
    into every layer that uses them, so weights never cross layers.
    Functions that already have layers are left alone.
  }];
  let options = [
    Option<"useNames", "use-names", "bool", /*default=*/"true",
           "Use scope names from op locations before falling back to "
           "structure">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

#endif // GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD
