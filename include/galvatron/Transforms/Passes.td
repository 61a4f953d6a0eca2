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
         "Sequences per iteration (0: the IR's batch)">
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
    sequence parallelism and checkpointing. Writes #galvatron.strategy on
    every layer and #galvatron.plan on the module. Memory is accounted in
    memory-bins quanta of the usable budget (see docs/architecture.md for
    what optimal means then). When no plan fits, fails naming the least
    memory per device any plan in the space needs.

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
               "Dimensions left out: tp, pp, sp, ckpt, ddp, zero1, zero2, "
               "zero3, tp-nonconsecutive">,
    Option<"memoryBins", "memory-bins", "int64_t", /*default=*/"4096",
           "Quanta the usable memory is divided into">
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
           "Sequence parallelism in the blocks">,
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
           "Sequence parallelism outside the blocks">,
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
  let summary = "Write the module's plan as Galvatron strategy JSON";
  let description = [{
    Writes the #galvatron.plan and #galvatron.strategy attributes in the
    format of Galvatron's strategy files (pp_deg, tp_sizes_enc,
    tp_consecutive_flags, dp_types_enc, use_sp, checkpoint, global_bsz,
    chunks, pp_division, pipeline_type, default_dp_type, vtp, vsp,
    embed_sdp), or fails naming what that format cannot express. The IR is
    left unchanged.
  }];
  let options = [
    Option<"file", "file", "std::string", /*default=*/"\"-\"",
           "Output file ('-' is stdout)">
  ];
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
    Megatron's f, gathers and scatters, the vocabulary-parallel loss) and
    the vocabulary-parallel outputs. The IR is left unchanged.
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "File to print to ('-' is stdout)">
  ];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
}

#endif // GALVATRON_TRANSFORMS_PASSES_TD
