//===- Passes.td - Galvatron cross-cutting passes ----------*- tablegen -*-===//

#ifndef GALVATRON_TRANSFORMS_PASSES_TD
#define GALVATRON_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

// The cluster a plan runs on.
defvar clusterOptions = [
  Option<"cluster", "cluster", "std::string", /*default=*/"\"a100-80gb\"",
         "Cluster preset (a100-80gb, h100-80gb, a100-40gb-pcie) or the path "
         "of a cluster JSON file">,
  Option<"nodes", "nodes", "int64_t", /*default=*/"0",
         "Nodes of the cluster (0: the preset's or the file's, or from "
         "devices)">,
  Option<"devices", "devices", "int64_t", /*default=*/"0",
         "Devices (0: every device of the cluster; fewer than a node makes "
         "a partial node)">,
  Option<"memory", "memory", "std::string", /*default=*/"\"\"",
         "Memory budget per device, e.g. 40GiB or 80 (GiB); default: the "
         "device memory">,
  ListOption<"profiles", "profile", "std::string",
             "Galvatron hardware profiles (allreduce_bandwidth_*, "
             "p2p_bandwidth_*, overlap_coefficient, sp_time_*) or cost "
             "profiles, applied in order">
];

// How the model trains.
defvar trainingOptions = [
  Option<"precision", "precision", "std::string", /*default=*/"\"bf16\"",
         "Training precision: bf16, fp16 or fp32">,
  Option<"globalBatch", "global-batch", "int64_t", /*default=*/"0",
         "Sequences per iteration (0: the IR's batch)">,
  Option<"vocabDivisor", "vocab-divisor", "int64_t", /*default=*/"128",
         "A vocabulary split among tp ranks is padded to a multiple of "
         "vocab-divisor x tp (Megatron-LM's make-vocab-size-divisible-by)">
];

defvar reportOptions = [
  Option<"report", "report", "std::string", /*default=*/"\"\"",
         "Print the plan report: text or json (empty: none)">,
  Option<"reportFile", "report-file", "std::string", /*default=*/"\"-\"",
         "File for the report ('-' is stdout)">
];

def PlanSearch : Pass<"galvatron-search", "::mlir::ModuleOp"> {
  let summary = "Find the fastest hybrid-parallel plan that fits memory";
  let description = [{
    Prices every layer under every strategy with the IR-derived cost model
    and searches, exactly under that model: the pipeline degree, the stage
    split, the micro-batch count, the schedule, and per layer the TP degree
    and consecutiveness, the data-parallel type (ddp, zero1, zero2, zero3),
    Megatron or DeepSpeed-Ulysses sequence parallelism and checkpointing. Writes #galvatron.strategy on
    every layer and #galvatron.plan on the module. Memory is accounted in
    memory-bins quanta of the usable budget (see docs/architecture.md for
    what optimal means then). With max-batch the global batch is searched
    too (multiples of batch-step in [min-batch, max-batch]): the plan with
    the most sequences per second wins. When no plan fits, fails naming
    the plan that needs the least memory and how much it lacks.

    ```
    galvatron-opt --galvatron-search="cluster=h100-80gb nodes=2 global-batch=512 report=text"
    ```
  }];
  let options = !listconcat(clusterOptions, trainingOptions, reportOptions, [
    Option<"maxTp", "max-tp", "int64_t", /*default=*/"0",
           "Largest TP degree (0: devices per node)">,
    Option<"minTp", "min-tp", "int64_t", /*default=*/"1",
           "Smallest TP degree">,
    Option<"maxPp", "max-pp", "int64_t", /*default=*/"0",
           "Largest pipeline degree (0: no limit)">,
    Option<"pp", "pp", "int64_t", /*default=*/"0",
           "Fixed pipeline degree (0: search)">,
    Option<"chunks", "chunks", "int64_t", /*default=*/"0",
           "Fixed micro-batch count (0: search)">,
    Option<"microBatch", "micro-batch", "int64_t", /*default=*/"0",
           "Fixed micro-batch size in sequences (0: search)">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"any\"",
           "Pipeline schedule: any, gpipe or 1f1b">,
    ListOption<"disable", "disable", "std::string",
               "Dimensions left out: tp, pp, sp (Megatron), ulysses, ckpt, "
               "ddp, zero1, zero2, zero3, tp-nonconsecutive">,
    Option<"memoryBins", "memory-bins", "int64_t", /*default=*/"4096",
           "Quanta the usable memory is divided into">,
    Option<"minBatch", "min-batch", "int64_t", /*default=*/"1",
           "Batch search: the smallest global batch (Galvatron's min_bsz)">,
    Option<"maxBatch", "max-batch", "int64_t", /*default=*/"0",
           "Batch search: the largest global batch (Galvatron's max_bsz; "
           "0: no batch search)">,
    Option<"batchStep", "batch-step", "int64_t", /*default=*/"1",
           "Batch search: global batches are multiples of this (Galvatron's "
           "bsz_scale)">,
    Option<"target", "target", "std::string", /*default=*/"\"any\"",
           "Plans the trainer runs: any (our runtime), galvatron (Galvatron's "
           "runtime: exportable to its strategy JSON) or megatron">
  ]);
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def ApplyStrategy : Pass<"galvatron-apply-strategy", "::mlir::ModuleOp"> {
  let summary = "Write a hand-written hybrid-parallel plan";
  let description = [{
    Writes the plan given by the Lightning GalvatronStrategy's knobs
    (pp_deg, global_tp_deg, fsdp, global_checkpoint, chunks, pipeline_type,
    default_dp_type, sequence parallelism) or by a Galvatron strategy JSON
    file (json=FILE), prices it with the same cost model as the search, and
    fails when it does not fit memory (unless check-memory=false). The
    stage split defaults to the blocks split evenly; pp-division gives the
    blocks per stage.

    ```
    galvatron-opt --galvatron-apply-strategy="pp=2 tp=2 fsdp=1 ckpt=1 chunks=8 schedule=1f1b dp-type=zero2"
    ```
  }];
  let options = !listconcat(clusterOptions, trainingOptions, reportOptions, [
    Option<"pp", "pp", "int64_t", /*default=*/"1", "Pipeline degree">,
    Option<"tp", "tp", "int64_t", /*default=*/"1",
           "TP degree of the transformer blocks">,
    Option<"fsdp", "fsdp", "bool", /*default=*/"false",
           "ZeRO-3 for every layer (Lightning's fsdp)">,
    Option<"dpType", "dp-type", "std::string", /*default=*/"\"ddp\"",
           "Data-parallel type: ddp, zero1, zero2 or zero3">,
    Option<"sp", "sp", "bool", /*default=*/"false",
           "Megatron sequence parallelism in the blocks (with json=FILE: in "
           "every TP layer, Galvatron's --sequence-parallel)">,
    Option<"ulysses", "ulysses", "bool", /*default=*/"false",
           "Every layer's tp ranks run DeepSpeed-Ulysses sequence "
           "parallelism instead of TP (Galvatron's --use-ulysses)">,
    Option<"ckpt", "ckpt", "bool", /*default=*/"false",
           "Checkpoint every transformer block">,
    Option<"chunks", "chunks", "int64_t", /*default=*/"1",
           "Micro-batches per iteration">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"1f1b\"",
           "Pipeline schedule: gpipe, 1f1b or pipedream_flush">,
    Option<"tpConsecutive", "tp-consecutive", "bool", /*default=*/"true",
           "TP ranks are adjacent devices">,
    Option<"vtp", "vtp", "int64_t", /*default=*/"0",
           "TP degree of the layers outside the blocks (0: tp)">,
    Option<"vsp", "vsp", "bool", /*default=*/"false",
           "Megatron sequence parallelism outside the blocks">,
    Option<"embedSdp", "embed-sdp", "bool", /*default=*/"false",
           "ZeRO-3 for the layers outside the blocks">,
    ListOption<"ppDivision", "pp-division", "int64_t",
               "Transformer blocks per stage">,
    Option<"json", "json", "std::string", /*default=*/"\"\"",
           "Galvatron strategy JSON file to apply instead of the knobs">,
    Option<"checkMemory", "check-memory", "bool", /*default=*/"true",
           "Fail when the plan does not fit the memory budget">
  ]);
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def ExportStrategy : Pass<"galvatron-export-strategy", "::mlir::ModuleOp"> {
  let summary = "Write the module's plan for Galvatron, Megatron-LM, torchtitan or DeepSpeed";
  let description = [{
    Writes the #galvatron.plan and #galvatron.strategy attributes in a
    trainer's terms (format=):

    - `galvatron`: Galvatron's strategy JSON (pp_deg, tp_sizes_enc,
      tp_consecutive_flags, dp_types_enc, use_sp, checkpoint, global_bsz,
      chunks, pp_division, pipeline_type, default_dp_type, vtp, vsp,
      embed_sdp), or fails naming what that format cannot express;
    - `megatron`: Megatron-LM arguments, one per line;
    - `torchtitan`: torchtitan's [training], [parallelism] and
      [activation_checkpoint] TOML sections;
    - `deepspeed`: a DeepSpeed JSON config.

    Megatron-LM, torchtitan and DeepSpeed give every layer one strategy; a
    plan they cannot express is exported as the closest one they can, and
    remarks list the layers that changed with the cost model's prediction
    of both plans on the cluster options' cluster (which should be the one
    the plan was made for), and what must be set in code. The IR is left
    unchanged.

    ```
    galvatron-opt --galvatron-export-strategy="format=megatron cluster=h100-80gb file=args.txt"
    ```
  }];
  let options = !listconcat(clusterOptions, [
    Option<"format", "format", "std::string", /*default=*/"\"galvatron\"",
           "galvatron, megatron, torchtitan or deepspeed">,
    Option<"file", "file", "std::string", /*default=*/"\"-\"",
           "Output file ('-' is stdout)">
  ]);
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def PlanReport : Pass<"galvatron-plan-report", "::mlir::ModuleOp"> {
  let summary = "Print the predicted cost of the module's plan";
  let description = [{
    Prices the module's plan on a cluster and prints, per layer, its stage,
    tp, dp, dp type, sp and checkpointing; per stage the memory split
    (parameters, gradients, optimizer states, activations, buffers) and the
    time split over an iteration (compute, TP/SP, DP, pipeline transfers,
    bubble); and the predicted iteration time, tokens/s, TFLOP/s per device
    and MFU. The IR is left unchanged.
  }];
  let options = !listconcat(clusterOptions, [
    Option<"format", "format", "std::string", /*default=*/"\"text\"",
           "text or json">,
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "Output file ('-' is stdout)">
  ]);
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def PrintTensorParallel : Pass<"galvatron-print-tensor-parallel",
                               "::mlir::ModuleOp"> {
  let summary = "Print how Megatron-style tensor parallelism shards each layer";
  let description = [{
    Runs the tensor-parallel analysis on every layer and prints, per layer:
    whether it can be sharded (and why not), the head counts that must
    divide among TP ranks, whether sequence parallelism applies, each
    linear's kind (column, row, replicated), each parameter's split, the
    communication points (reduce-partial = Megatron's g, replicated-input =
    Megatron's f, gathers and scatters, the vocabulary-parallel loss), the
    vocabulary-parallel outputs, and whether DeepSpeed-Ulysses applies
    (the sizes its degree must divide, its all-to-alls, gathers and
    slices). The IR is left unchanged.
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "File to print to ('-' is stdout)">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

def Partition : Pass<"galvatron-partition", "::mlir::ModuleOp"> {
  let summary = "Rewrite the forward model into an SPMD program per stage";
  let description = [{
    Rewrites the layered forward function by each layer's
    `#galvatron.strategy` and the module's `#galvatron.plan` into the
    program every rank of the layer's pipeline stage runs, with collectives
    on explicit device groups (see "Partitioning" in docs/architecture.md).
    Run it before `--galvatron-build-train-step`: the gradients then come
    from the collectives' own rules.

    - Ranks: stage s holds world ranks [s·D, (s+1)·D), D = devices / pp.
      Local rank l = dp_index·tp + tp_index when tp_consecutive, else
      tp_index·dp + dp_index.
    - Data parallelism: a batched layer input is sliced to the layer's
      rows (`galvatron.shard` along dimension 0 over the DP groups, after
      an all-gather when the producer split the batch otherwise); every
      parameter read is `galvatron.replicate`d over the DP groups (its
      gradient is summed: DDP; zero1 and zero2 lower the same way for
      now), or, for zero3, the parameter is stored split along its first
      divisible dimension and all-gathered before use (`reduce_grad`: its
      gradient is reduce-scattered).
    - Tensor parallelism, from `TensorParallelAnalysis`: column-parallel
      linears read their input through `galvatron.replicate` over the TP
      group (Megatron's f), their weights and biases are split; row-
      parallel linears give partial sums that `galvatron.all_reduce` makes
      whole (Megatron's g; the bias is added after); attention splits heads
      (grouped-query: both head counts); a fused QKV weight is split per
      segment; values needed whole are all-gathered. Layers with a
      vocabulary-parallel lookup, or whose split weights other layers also
      read (a tied LM head), run replicated on the TP group.
    - The function's inputs and results are whole on every rank.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"main\"",
           "The forward function to partition">
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

    On one stage of a pipeline (`--galvatron-pipeline="stage=k"`: every
    layer on stage k of a plan with pp > 1) only the last stage computes the
    loss; the others start their backward from the gradients their sends
    receive back. The schedule follows the plan: GPipe runs every forward,
    then every backward; 1F1B (pipedream_flush) runs pp - k - 1 warm-up
    forwards, then alternates forward and backward, then the remaining
    backwards.

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

def PipelineSplit : Pass<"galvatron-pipeline", "::mlir::ModuleOp"> {
  let summary = "Split a forward model into pipeline stages with send/recv";
  let description = [{
    Splits `@<function>`, a layered forward function whose layers carry
    `#galvatron.strategy` stages (any contiguous split the plan allows,
    uneven ones included), into one forward function per stage.

    A value computed on stage j and used on stage k > j crosses once per
    receiving stage: the producer layer sends it (`galvatron.send ... to
    stage k`) and the first layer of stage k using it receives it
    (`galvatron.recv ... from stage j`) and also yields it to the other
    layers of its stage, so values needed several stages later (T5's
    encoder output, BERT's mask) go straight to every stage that needs them.
    Each crossing value has one tag (its index in the order of first use);
    the receive is `differentiable` when the value is a float depending on a
    parameter, exactly when the sender's adjoint expects a gradient back.
    Function arguments go to the stages whose layers read them; each result
    of `@<function>` is returned by the stage computing it.

    Without `stage`, the stages become `@<function>_stage<k>` next to the
    original. With `stage=k`, stage k replaces `@<function>` under the same
    name and the parameters no longer read are dropped: the module then is
    the forward model of the ranks of stage k, ready for the training step
    and the runtime lowering.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"main\"",
           "Function to split">,
    Option<"stage", "stage", "int64_t", /*default=*/"-1",
           "Keep only this stage, as @<function> (default: all stages)">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

#endif // GALVATRON_TRANSFORMS_PASSES_TD
