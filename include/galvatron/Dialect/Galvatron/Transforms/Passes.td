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

def Differentiate : Pass<"galvatron-differentiate", "::mlir::ModuleOp"> {
  let summary = "Build the backward function of a layered forward function";
  let description = [{
    Differentiates `@<function>`, a function whose ops all live in
    `galvatron.layer`s, with the reverse-mode rules of `VJPOpInterface`, the
    shape of a pipeline stage: the gradients of its results arrive from
    outside.

    `@<function>` keeps its results and also returns, after them, the
    activations the backward needs. `@<function>_backward` takes the
    gradients of the float results that depend on a parameter or a float
    argument, then those activations, and returns the gradients of the float
    arguments that reach a result. Each backward layer adds the gradients of
    the parameters it reads into `galvatron.state gradient @<name>.grad`.
    Layers recompute their forward in the backward as `checkpoint` says:
    `plan` (the layer strategy's ckpt), `none`, `blocks` (encoder and
    decoder layers) or `all`.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"main\"",
           "Function to differentiate">,
    Option<"checkpoint", "checkpoint", "std::string", /*default=*/"\"plan\"",
           "Layers that recompute: plan, none, blocks or all">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def BuildTrainStep : Pass<"galvatron-build-train-step", "::mlir::ModuleOp"> {
  let summary = "Turn a forward model into a training step";
  let description = [{
    Rewrites the forward model `@<function>` (returning logits) into a
    training step for one device:

    - `@forward(inputs..., labels)`: one micro-batch. The layer producing the
      logits also computes the f32 cross-entropy against `labels` (same
      leading shape, -100 = ignored, mean over counted tokens) and adds
      loss / micro-batches to `@train.loss`. It returns the activations the
      backward needs: for a recomputed layer only its inputs.
    - `@backward(activations...)`: the backward layers in reverse, seeded
      with 1 / micro-batches (times the loss scale under fp16); each adds
      its parameter gradients into `<parameter>.grad`.
    - `@optimizer_step()`: global gradient norm, clipping to
      `max-grad-norm` (0: off), the step counter, the learning rate
      (`lr_schedule`), AdamW or SGD with momentum, zeroed accumulators, the
      fp16 loss-scale update; returns loss, grad_norm, lr (and loss_scale).
    - `galvatron.schedule @train_step`: F0 B0 F1 B1 ... optimizer.

    Labels for `loss=next-token` are the inputs shifted by one (the data
    pipeline reads S+1 tokens per sequence); for `loss=masked` they hold the
    original tokens at masked positions and -100 elsewhere. Micro-batches
    and precision come from the module's `#galvatron.plan` when it has one
    (the batch of the model must then be global_batch / micro_batches),
    else from the options. bf16 and fp16 compute in 16 bits from f32 master
    weights with an f32 loss; fp16 adds dynamic loss scaling (skipping steps
    whose gradients are not finite). `checkpoint` picks the recomputed
    layers as in `--galvatron-differentiate`.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"main\"",
           "Forward function returning the logits">,
    Option<"loss", "loss", "std::string", /*default=*/"\"next-token\"",
           "Objective: next-token (causal LM) or masked (masked LM)">,
    Option<"optimizer", "optimizer", "std::string", /*default=*/"\"adamw\"",
           "adamw, sgd (with momentum) or none (report, leave gradients)">,
    Option<"lr", "lr", "double", /*default=*/"1e-3", "Peak learning rate">,
    Option<"minLr", "min-lr", "double", /*default=*/"0.0",
           "Learning rate at the end of the cosine decay">,
    Option<"warmupSteps", "warmup-steps", "int64_t", /*default=*/"0",
           "Linear warm-up steps">,
    Option<"decaySteps", "decay-steps", "int64_t", /*default=*/"0",
           "Step at which the cosine decay reaches min-lr (<= warm-up: no decay)">,
    Option<"beta1", "beta1", "double", /*default=*/"0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", /*default=*/"0.999", "AdamW beta2">,
    Option<"epsilon", "eps", "double", /*default=*/"1e-8", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"0.01",
           "Decoupled (AdamW) or L2 (SGD) weight decay">,
    Option<"momentum", "momentum", "double", /*default=*/"0.9",
           "SGD momentum">,
    Option<"nesterov", "nesterov", "bool", /*default=*/"false",
           "SGD with Nesterov momentum">,
    Option<"maxGradNorm", "max-grad-norm", "double", /*default=*/"1.0",
           "Clip gradients to this global norm (0: no clipping)">,
    Option<"microBatches", "micro-batches", "int64_t", /*default=*/"0",
           "Micro-batches per step (0: the plan's, else 1)">,
    Option<"precision", "precision", "std::string", /*default=*/"\"\"",
           "fp32, bf16 or fp16 (empty: the plan's, else fp32)">,
    Option<"checkpoint", "checkpoint", "std::string", /*default=*/"\"plan\"",
           "Layers that recompute: plan, none, blocks or all">,
    Option<"initialLossScale", "initial-loss-scale", "double",
           /*default=*/"65536.0", "fp16: starting loss scale">,
    Option<"lossScaleWindow", "loss-scale-window", "int64_t",
           /*default=*/"2000",
           "fp16: finite steps after which the loss scale doubles">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def UnrollSchedule : Pass<"galvatron-unroll-schedule", "::mlir::ModuleOp"> {
  let summary = "Expand a training schedule into one function of all its calls";
  let description = [{
    Replaces the `galvatron.schedule` and the functions it calls by one
    function of the same name that makes the calls in the schedule's order:
    it takes the data of the whole step (each forward argument with its
    leading dimension multiplied by the micro-batch count, under the same
    name), gives micro-batch m rows [m·b, (m+1)·b), passes each forward's
    saved activations to its backward, and returns the optimizer step's
    results. The saved activations of micro-batches in flight thus become
    ordinary values whose lifetimes a memory planner sees. The function
    carries `#galvatron.training` (the objective and the model FLOPs of the
    step) for the runtime.
  }];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

#endif // GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_TD
