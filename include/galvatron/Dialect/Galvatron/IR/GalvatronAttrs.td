//===- GalvatronAttrs.td - Galvatron attributes ------------*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONATTRS_TD
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONATTRS_TD

include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Galvatron_DataParallelType : I32EnumAttr<"DataParallelType",
    "data-parallel flavour of a layer", [
      I32EnumAttrCase<"ddp", 0>,
      I32EnumAttrCase<"zero1", 1>,
      I32EnumAttrCase<"zero2", 2>,
      I32EnumAttrCase<"zero3", 3>
    ]> {
  let cppNamespace = "::mlir::galvatron";
  let genSpecializedAttr = 0;
}

def Galvatron_PipelineSchedule : I32EnumAttr<"PipelineSchedule",
    "micro-batch schedule of a pipeline", [
      I32EnumAttrCase<"gpipe", 0>,
      // Galvatron's name for 1F1B (one forward, one backward, flush).
      I32EnumAttrCase<"pipedream_flush", 1>
    ]> {
  let cppNamespace = "::mlir::galvatron";
  let genSpecializedAttr = 0;
}

def Galvatron_Precision : I32EnumAttr<"Precision",
    "training precision", [
      I32EnumAttrCase<"fp32", 0>,
      I32EnumAttrCase<"fp16", 1>,
      I32EnumAttrCase<"bf16", 2>
    ]> {
  let cppNamespace = "::mlir::galvatron";
  let genSpecializedAttr = 0;
}

def Galvatron_LayerKind : I32EnumAttr<"LayerKind",
    "role of a layer in the model", [
      I32EnumAttrCase<"embedding", 0>,
      I32EnumAttrCase<"encoder", 1>,
      I32EnumAttrCase<"decoder", 2>,
      I32EnumAttrCase<"head", 3>,
      I32EnumAttrCase<"other", 4>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "GELU formula", [
      I32EnumAttrCase<"none", 0>,
      I32EnumAttrCase<"tanh", 1>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_LossReduction : I32EnumAttr<"LossReduction",
    "how a loss reduces over tokens", [
      I32EnumAttrCase<"mean", 0>,
      I32EnumAttrCase<"sum", 1>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_CollectiveReduction : I32EnumAttr<"CollectiveReduction",
    "how a collective combines the members' values", [
      I32EnumAttrCase<"sum", 0>,
      I32EnumAttrCase<"avg", 1>,
      I32EnumAttrCase<"max", 2>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_InitKind : I32EnumAttr<"InitKind",
    "parameter initializer", [
      I32EnumAttrCase<"zeros", 0>,
      I32EnumAttrCase<"ones", 1>,
      I32EnumAttrCase<"constant", 2>,
      I32EnumAttrCase<"normal", 3>,
      I32EnumAttrCase<"uniform", 4>
    ]> {
  let cppNamespace = "::mlir::galvatron";
  let genSpecializedAttr = 0;
}

def Galvatron_ComparePredicate : I32EnumAttr<"ComparePredicate",
    "elementwise comparison", [
      I32EnumAttrCase<"eq", 0>,
      I32EnumAttrCase<"ne", 1>,
      I32EnumAttrCase<"lt", 2>,
      I32EnumAttrCase<"le", 3>,
      I32EnumAttrCase<"gt", 4>,
      I32EnumAttrCase<"ge", 5>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_Activation : I32EnumAttr<"Activation",
    "activation function whose derivative activation_grad applies", [
      I32EnumAttrCase<"relu", 0>,
      I32EnumAttrCase<"silu", 1>,
      I32EnumAttrCase<"gelu", 2>,
      I32EnumAttrCase<"gelu_tanh", 3>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_StateKind : I32EnumAttr<"StateKind",
    "what a training state variable holds", [
      // Gradient accumulators, one per trained parameter.
      I32EnumAttrCase<"gradient", 0>,
      // Optimizer moments and buffers, one set per trained parameter.
      I32EnumAttrCase<"optimizer", 1>,
      // Scalars that steer training: step counter, loss scale, loss sum.
      I32EnumAttrCase<"control", 2>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

def Galvatron_ScheduleStepKind : I32EnumAttr<"ScheduleStepKind",
    "one call of a training schedule", [
      I32EnumAttrCase<"forward", 0>,
      I32EnumAttrCase<"backward", 1>,
      I32EnumAttrCase<"optimizer", 2>
    ]> {
  let cppNamespace = "::mlir::galvatron";
  let genSpecializedAttr = 0;
}

def Galvatron_LossKind : I32EnumAttr<"LossKind",
    "training objective: how the data pipeline derives labels", [
      // Labels are the inputs shifted by one token (causal language models).
      I32EnumAttrCase<"next_token", 0>,
      // Labels are the original tokens at masked positions (BERT).
      I32EnumAttrCase<"masked_token", 1>
    ]> {
  let cppNamespace = "::mlir::galvatron";
}

//===----------------------------------------------------------------------===//
// Attribute definitions
//===----------------------------------------------------------------------===//

class Galvatron_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Galvatron_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def Galvatron_InitAttr : Galvatron_Attr<"Init", "init"> {
  let summary = "How a parameter is initialized";
  let description = [{
    `#galvatron.init<zeros>`, `#galvatron.init<ones>`,
    `#galvatron.init<constant(v)>`, `#galvatron.init<normal(mean, std)>` or
    `#galvatron.init<uniform(low, high)>`. Initialization is deterministic
    given the runtime's seed and the parameter's name.
  }];
  let parameters = (ins "InitKind":$kind,
                        APFloatParameter<"first argument (value, mean, low)">:$a,
                        APFloatParameter<"second argument (std, high)">:$b);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "InitKind":$kind, CArg<"double", "0.0">:$a,
                     CArg<"double", "0.0">:$b), [{
      return $_get($_ctxt, kind, ::llvm::APFloat(a), ::llvm::APFloat(b));
    }]>
  ];
}

def Galvatron_ExternalDataAttr : Galvatron_Attr<"ExternalData", "external"> {
  let summary = "Where a parameter's values live outside the IR";
  let description = [{
    A reference to weight bytes that stay in their file: `location` is a path
    relative to the IR's source model folder, `offset` and `length` select a
    byte range (`length = -1` means to the end of the file), and `key`, when
    present, names the tensor inside a container file (an ONNX model's
    initializer or a safetensors entry).
  }];
  let parameters = (ins
    StringRefParameter<"file holding the data">:$location,
    DefaultValuedParameter<"int64_t", "0">:$offset,
    DefaultValuedParameter<"int64_t", "-1">:$length,
    OptionalParameter<"::mlir::StringAttr">:$key);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Galvatron_StrategyAttr : Galvatron_Attr<"Strategy", "strategy"> {
  let summary = "Hybrid-parallel strategy of one layer";
  let description = [{
    Pipeline `stage` (0-based), tensor-parallel degree `tp` (its ranks
    consecutive device ids when `tp_consecutive`), data-parallel degree `dp`
    and flavour `dp_type` (ddp, or ZeRO stage 1 / 2 / 3), Megatron sequence
    parallelism `sp`, and activation checkpointing `ckpt`. With `ulysses`
    the group of `tp` ranks runs DeepSpeed-Ulysses sequence parallelism
    instead of tensor parallelism (Galvatron's `tp_sizes_enc` with
    `use_sp`): the sequence split among them, heads around attention,
    weights whole, and data parallelism (ZeRO included) over the tp x dp
    ranks. The degrees of every layer must multiply with the module plan's
    pp to its device count.
  }];
  let parameters = (ins
    "int64_t":$stage,
    "int64_t":$tp,
    "int64_t":$dp,
    DefaultValuedParameter<"bool", "true">:$tp_consecutive,
    DefaultValuedParameter<"DataParallelType", "DataParallelType::ddp">:$dp_type,
    DefaultValuedParameter<"bool", "false">:$sp,
    DefaultValuedParameter<"bool", "false">:$ckpt,
    DefaultValuedParameter<"bool", "false">:$ulysses);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Galvatron_PlanAttr : Galvatron_Attr<"Plan", "plan"> {
  let summary = "Module-level hybrid-parallel plan";
  let description = [{
    `devices` in nodes of `devices_per_node`, pipeline degree `pp`,
    `micro_batches` per iteration, pipeline `schedule`, `global_batch`
    (sequences per iteration), training `precision`, and
    `vocab_divisor`: a vocabulary split among tp ranks is padded to a
    multiple of vocab_divisor x tp (Megatron-LM's
    `--make-vocab-size-divisible-by`).
  }];
  let parameters = (ins
    "int64_t":$devices,
    "int64_t":$devices_per_node,
    "int64_t":$pp,
    "int64_t":$micro_batches,
    "int64_t":$global_batch,
    DefaultValuedParameter<"PipelineSchedule", "PipelineSchedule::gpipe">:$schedule,
    DefaultValuedParameter<"Precision", "Precision::fp32">:$precision,
    DefaultValuedParameter<"int64_t", "128">:$vocab_divisor);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getNodes() const { return getDevices() / getDevicesPerNode(); }
  }];
}

def Galvatron_ScheduleStepAttr : Galvatron_Attr<"ScheduleStep", "step"> {
  let summary = "One call of a training schedule";
  let description = [{
    `#galvatron.step<forward, 3>` runs the forward function on micro-batch
    3, `#galvatron.step<backward, 3>` its backward function on the saved
    activations of micro-batch 3, `#galvatron.step<optimizer>` the optimizer
    step (no micro-batch).
  }];
  let parameters = (ins "ScheduleStepKind":$kind,
                        DefaultValuedParameter<"int64_t", "-1">:$micro_batch);
  let assemblyFormat = "`<` $kind (`,` $micro_batch^)? `>`";
}

def Galvatron_SchedulePhaseAttr : Galvatron_Attr<"SchedulePhase", "phase"> {
  let summary = "Calls of a training schedule repeated over micro-batches";
  let description = [{
    Runs `steps` (`#galvatron.step`s) `iterations` times; in iteration i a
    step of micro-batch m calls micro-batch m + i. 1F1B's steady state over
    micro-batches 1.. and 0.. three times:
    `#galvatron.phase<3, [#galvatron.step<forward, 1>,
    #galvatron.step<backward, 0>]>`.
  }];
  let parameters = (ins "int64_t":$iterations, "ArrayAttr":$steps);
  let assemblyFormat = "`<` $iterations `,` $steps `>`";
}

// A float written in scientific notation with the fewest digits that read
// back exactly (AsmPrinter would print an integral value's bits in hex).
class Galvatron_FloatParameter<string desc> : APFloatParameter<desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if (::mlir::failed($_parser.parseFloat(value)))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = [{ [&] {
    ::llvm::SmallString<32> text;
    $_self.toString(text, /*FormatPrecision=*/0, /*FormatMaxPadding=*/0);
    $_printer << text;
  }() }];
}

def Galvatron_TrainingAttr : Galvatron_Attr<"Training", "training"> {
  let summary = "What a runtime needs to drive a training step";
  let description = [{
    On the `grt.executable` of a training step: the objective `loss` (how
    the data pipeline derives labels) and `model_flops`, the model FLOPs of
    one step on every rank together (3 x the forward FLOPs of every
    micro-batch, recomputation not counted, causal attention not halved),
    from which the runtime reports MFU (a double: a large job's exceed an
    int64), and `vocab_size`, the classes of
    the loss (synthetic data and masked tokens draw from them; 0 in the
    program of a stage without the loss, which linking fills in).
  }];
  let parameters = (ins "LossKind":$loss,
                        Galvatron_FloatParameter<"model FLOPs">:$model_flops,
                        "int64_t":$vocab_size);
  let assemblyFormat = "`<` struct(params) `>`";
  let builders = [
    AttrBuilder<(ins "LossKind":$loss, "double":$modelFlops,
                     "int64_t":$vocabSize), [{
      return $_get($_ctxt, loss, ::llvm::APFloat(modelFlops), vocabSize);
    }]>
  ];
  let extraClassDeclaration = [{
    double getModelFlopsValue() const {
      return getModelFlops().convertToDouble();
    }
  }];
}

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONATTRS_TD
