//===- galvatron-plan.cpp - Which plan, and will it fit? ------------------===//
//
// One command from a model, a cluster and a global batch to the plan:
//
//   galvatron-plan --config config.json --gpu h100-80gb --nodes 2 \
//       --global-batch 512 [--top 3] [--format megatron] [-o args.txt]
//
// Models: a preset or family with dimensions (--model), a Hugging Face
// config (--config), or a file (model.onnx, or galvatron IR). Clusters: a
// preset or cluster file (--cluster, or --gpu for a preset), resized with
// --nodes and --gpus-per-node. Prints the best plan's report, memory per
// stage and rank with its headroom, and with --top K the K best plans (of
// distinct pipeline degrees and micro-batch counts) with the time split
// that makes the best one win; with --format, the plan for that trainer.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/PlanExport.h"
#include "galvatron/Analysis/PlanReport.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/InitAll.h"
#include "galvatron/Models/ModelOptions.h"
#include "galvatron/Support/Error.h"
#include "galvatron/Support/OutputFile.h"
#include "galvatron/Support/Debug.h"
#include "galvatron/Support/ToolSupport.h"
#include "galvatron/Target/ONNX/ImportONNX.h"
#include "galvatron/Transforms/PlanUtils.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

#include <set>

using namespace mlir;
using namespace mlir::galvatron;
namespace cl = llvm::cl;

static cl::OptionCategory modelCategory("Model");
static cl::OptionCategory clusterCategory("Cluster");
static cl::OptionCategory planCategory("Plan");

static ModelOptions modelOptions(modelCategory);
static cl::opt<std::string>
    inputFilename(cl::Positional,
                  cl::desc("[model.onnx | model.mlir] (instead of --model or "
                           "--config)"),
                  cl::init(""), cl::cat(modelCategory));
static cl::opt<int64_t>
    seqLen("seq-len", cl::desc("Sequence length (default: the model's)"),
           cl::value_desc("N"), cl::init(0), cl::cat(modelCategory));

static cl::opt<std::string>
    clusterName("cluster",
                cl::desc("Cluster preset (a100-80gb, h100-80gb, "
                         "a100-40gb-pcie) or cluster JSON file (default: "
                         "a100-80gb)"),
                cl::value_desc("name|file"), cl::cat(clusterCategory));
static cl::opt<std::string>
    gpu("gpu", cl::desc("The GPU of the cluster, as a preset name"),
        cl::value_desc("preset"), cl::cat(clusterCategory));
static cl::opt<int64_t> nodes("nodes",
                              cl::desc("Nodes (default: the cluster's)"),
                              cl::value_desc("N"), cl::init(0),
                              cl::cat(clusterCategory));
static cl::opt<int64_t>
    gpusPerNode("gpus-per-node",
                cl::desc("GPUs per node (default: the cluster's)"),
                cl::value_desc("N"), cl::init(0), cl::cat(clusterCategory));
static cl::opt<std::string>
    memory("memory",
           cl::desc("Memory budget per GPU, e.g. 40GiB (default: the GPU's)"),
           cl::init(""), cl::cat(clusterCategory));
static cl::list<std::string>
    profiles("profile",
             cl::desc("Galvatron hardware profile or cost profile (repeat)"),
             cl::value_desc("file"), cl::cat(clusterCategory));

static cl::opt<int64_t> globalBatch("global-batch",
                                    cl::desc("Sequences per iteration"),
                                    cl::value_desc("N"), cl::init(0),
                                    cl::cat(planCategory));
static cl::opt<std::string> precision("precision",
                                      cl::desc("bf16, fp16 or fp32"),
                                      cl::init("bf16"), cl::cat(planCategory));
static cl::opt<unsigned>
    top("top",
        cl::desc("Show the K best plans (of distinct pipeline degrees and "
                 "micro-batch counts) and why the best wins"),
        cl::value_desc("K"), cl::init(1), cl::cat(planCategory));
static cl::opt<std::string>
    format("format",
           cl::desc("Write the plan for a trainer: galvatron, megatron, "
                    "torchtitan or deepspeed"),
           cl::value_desc("name"), cl::init(""), cl::cat(planCategory));
static cl::opt<std::string>
    outputFilename("o", cl::desc("Write the --format output to this file"),
                   cl::value_desc("file"), cl::init("-"),
                   cl::cat(planCategory));
static cl::opt<int64_t> maxTp("max-tp",
                              cl::desc("Largest TP degree (default: GPUs per "
                                       "node)"),
                              cl::value_desc("N"), cl::init(0),
                              cl::cat(planCategory));
static cl::opt<int64_t> maxPp("max-pp", cl::desc("Largest pipeline degree"),
                              cl::value_desc("N"), cl::init(0),
                              cl::cat(planCategory));
static cl::opt<int64_t> fixedPp("pp", cl::desc("Fixed pipeline degree"),
                                cl::value_desc("N"), cl::init(0),
                                cl::cat(planCategory));

static constexpr double kGiB = double(1ull << 30);

static int error(const llvm::Twine &message) {
  return mlir::galvatron::printToolError("galvatron-plan", message);
}

/// The model as galvatron IR, from whichever option names it.
static FailureOr<OwningOpRef<ModuleOp>> loadModel(MLIRContext &context,
                                                  llvm::SourceMgr &sourceMgr) {
  if (modelOptions.hasModel() == !inputFilename.empty()) {
    error("give one model: --model, --config or a model file");
    return failure();
  }
  if (seqLen < 0) {
    error("--seq-len must be positive, got " + llvm::Twine(seqLen));
    return failure();
  }
  if (modelOptions.hasModel()) {
    auto model = modelOptions.getModel(seqLen);
    if (!model) {
      error(llvm::toString(model.takeError()));
      return failure();
    }
    auto module = buildModel(&context, model->config, ModelShape{1, seqLen});
    if (!module) {
      error(llvm::toString(module.takeError()));
      return failure();
    }
    return std::move(*module);
  }
  if (StringRef(inputFilename).ends_with(".onnx")) {
    ONNXImportOptions options;
    if (seqLen > 0)
      options.seqLen = seqLen;
    auto module = importONNXFile(&context, inputFilename, options);
    if (!module) {
      error(llvm::toString(module.takeError()));
      return failure();
    }
    PassManager pm(&context);
    buildONNXCleanupPipeline(pm);
    if (failed(pm.run(**module))) {
      error(inputFilename + ": the clean-up after import failed");
      return failure();
    }
    return std::move(*module);
  }
  std::string message;
  auto file = openInputFile(inputFilename, &message);
  if (!file) {
    error(message);
    return failure();
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return failure();
  return std::move(module);
}

/// The cluster the options describe.
static llvm::Expected<CostModelSetup> loadClusterSetup() {
  if (!clusterName.empty() && !gpu.empty())
    return makeError("give --cluster or --gpu, not both");
  if (nodes < 0 || gpusPerNode < 0)
    return makeError("--nodes and --gpus-per-node must be positive");
  std::string name = !gpu.empty()           ? gpu.getValue()
                     : !clusterName.empty() ? clusterName.getValue()
                                            : std::string("a100-80gb");
  auto presets =
      llvm::map_range(getClusterPresets(), [](const ClusterPresetInfo &preset) {
        return StringRef(preset.name);
      });
  if (!gpu.empty() && !llvm::is_contained(presets, gpu.getValue()))
    return makeError("--gpu must name a preset (" + llvm::join(presets, ", ") +
                     "), got '" + gpu + "'");
  auto setup = makeCostModelSetup({name, nodes, 0, memory, profiles});
  if (!setup)
    return setup.takeError();
  if (gpusPerNode > 0)
    setup->cluster.devicesPerNode = gpusPerNode;
  return setup;
}

/// "2" when every transformer block agrees, else "1-4" or a list.
static std::string describeBlocks(const ModelProfile &model,
                                  const ParallelPlan &plan,
                                  function_ref<std::string(
                                      const LayerStrategy &)> value) {
  std::set<std::string> values;
  for (auto [index, layer] : llvm::enumerate(model.layers))
    if (layer.isTransformerBlock())
      values.insert(value(plan.layers[index]));
  return llvm::join(values, "/");
}

/// An iteration's seconds by category, averaged over the stages (each
/// stage's categories sum to the iteration time).
struct TimeSplit {
  double compute = 0, tensorParallel = 0, dataParallel = 0, pipeline = 0,
         bubble = 0;
  explicit TimeSplit(const PlanEvaluation &evaluation) {
    double stages = static_cast<double>(evaluation.stages.size());
    for (const StageEvaluation &stage : evaluation.stages) {
      compute += stage.compute / stages;
      tensorParallel += stage.tensorParallel / stages;
      dataParallel += stage.dataParallel / stages;
      pipeline += stage.pipeline / stages;
      bubble += stage.bubble / stages;
    }
  }
};

static void printMemory(llvm::raw_ostream &os, const ParallelPlan &plan,
                        const PlanEvaluation &evaluation) {
  os << "memory per rank (GiB; every rank of a stage holds the same)\n";
  os << llvm::format("  %5s %-11s %7s %9s %9s\n", "stage", "ranks", "total",
                     "usable", "headroom");
  int64_t perStage = plan.getDevicesPerStage();
  double usable = evaluation.usableMemory;
  for (auto [k, stage] : llvm::enumerate(evaluation.stages)) {
    int64_t first = k * perStage, last = first + perStage - 1;
    std::string ranks = first == last ? std::to_string(first)
                                      : std::to_string(first) + "-" +
                                            std::to_string(last);
    double total = stage.getMemory();
    os << llvm::format("  %5zu %-11s %7.2f %9.2f %9.2f (%.1f%%)\n", k,
                       ranks.c_str(), total / kGiB, usable / kGiB,
                       (usable - total) / kGiB,
                       100.0 * (usable - total) / usable);
  }
  double headroom = usable - evaluation.peakMemory;
  os << llvm::format("fits: the fullest rank needs %.2f GiB of %.2f usable "
                     "(%.2f GiB budget less the runtime's reserve and "
                     "fragmentation), %.2f GiB to spare\n",
                     evaluation.peakMemory / kGiB, usable / kGiB,
                     evaluation.memoryBudget / kGiB, headroom / kGiB);
}

static void printTop(llvm::raw_ostream &os, const ModelProfile &model,
                     ArrayRef<SearchResult> results) {
  os << "the " << results.size()
     << " best plans (of distinct pipeline degrees and micro-batch counts; "
        "block strategies; seconds per iteration, averaged over stages)\n";
  os << llvm::format("  %2s %3s %4s %5s %-5s %-5s %-11s %-3s %-6s %9s %10s "
                     "%5s %7s | %8s %8s %8s %8s %8s\n",
                     "#", "pp", "m", "micro", "tp", "dp", "dp-type", "sp",
                     "ckpt", "time", "tokens/s", "MFU", "GiB", "compute",
                     "tp/sp", "dp", "p2p", "bubble");
  for (auto [index, result] : llvm::enumerate(results)) {
    const ParallelPlan &plan = result.plan;
    const PlanEvaluation &evaluation = result.evaluation;
    int64_t blocks = 0, checkpointed = 0;
    for (auto [layer, profile] : llvm::enumerate(model.layers))
      if (profile.isTransformerBlock()) {
        ++blocks;
        checkpointed += plan.layers[layer].ckpt;
      }
    TimeSplit split(evaluation);
    std::string tp = describeBlocks(model, plan, [](const LayerStrategy &s) {
      return std::to_string(s.tp);
    });
    std::string dp = describeBlocks(model, plan, [&](const LayerStrategy &s) {
      return std::to_string(plan.getDp(s));
    });
    std::string type =
        describeBlocks(model, plan, [&](const LayerStrategy &s) {
          return plan.getDp(s) > 1
                     ? stringifyDataParallelType(s.dpType).str()
                     : std::string("-");
        });
    std::string sp = describeBlocks(model, plan, [](const LayerStrategy &s) {
      return std::string(s.sp && s.tp > 1 ? "yes" : "no");
    });
    std::string ckpt = std::to_string(checkpointed) + "/" +
                       std::to_string(blocks);
    os << llvm::format("  %2zu %3lld %4lld %5lld %-5s %-5s %-11s %-3s %-6s "
                       "%9.4f %10.0f %4.1f%% %7.2f | %8.4f %8.4f %8.4f %8.4f "
                       "%8.4f\n",
                       index + 1, (long long)plan.pp,
                       (long long)plan.microBatches,
                       (long long)plan.getMicroBatchSize(), tp.c_str(),
                       dp.c_str(), type.c_str(), sp.c_str(), ckpt.c_str(),
                       evaluation.iterationTime, evaluation.tokensPerSecond,
                       100.0 * evaluation.mfu, evaluation.peakMemory / kGiB,
                       split.compute, split.tensorParallel, split.dataParallel,
                       split.pipeline, split.bubble);
  }
  if (results.size() < 2)
    return;
  os << "why #1 wins (seconds per iteration against #1)\n";
  TimeSplit best(results.front().evaluation);
  double bestTime = results.front().evaluation.iterationTime;
  for (auto [index, result] : llvm::drop_begin(llvm::enumerate(results))) {
    TimeSplit other(result.evaluation);
    struct Part {
      const char *name;
      double delta;
    } parts[] = {{"compute", other.compute - best.compute},
                 {"tp/sp", other.tensorParallel - best.tensorParallel},
                 {"dp", other.dataParallel - best.dataParallel},
                 {"p2p", other.pipeline - best.pipeline},
                 {"bubble", other.bubble - best.bubble}};
    llvm::sort(parts, [](const Part &a, const Part &b) {
      return std::fabs(a.delta) > std::fabs(b.delta);
    });
    SmallVector<std::string> text;
    for (const Part &part : parts)
      if (std::fabs(part.delta) >= 5e-5 * bestTime)
        text.push_back(llvm::formatv("{0} {1}", llvm::format("%+.3g", part.delta),
                                     part.name));
    double slower = result.evaluation.iterationTime / bestTime - 1.0;
    os << llvm::formatv("  #{0} (pp {1}, m {2}) is {3:F1}% slower: {4}\n",
                        index + 1, result.plan.pp, result.plan.microBatches,
                        100.0 * slower,
                        text.empty() ? std::string("no difference")
                                     : llvm::join(text, ", "));
  }
}

static int run() {
  if (globalBatch < 1)
    return error("give the global batch: --global-batch N (sequences per "
                 "iteration)");
  if (top < 1)
    return error("--top must be at least 1");
  const PlanExporter *exporter = nullptr;
  if (!format.empty() && !(exporter = findPlanExporter(format)))
    return error("unknown format '" + format + "' (expected " +
                 getPlanExportFormatList() + ")");
  auto trainingPrecision = parsePrecision(precision);
  if (!trainingPrecision)
    return error(llvm::toString(trainingPrecision.takeError()));
  auto setup = loadClusterSetup();
  if (!setup)
    return error(llvm::toString(setup.takeError()));

  DialectRegistry registry;
  registerAllDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // Diagnostics of the model's ops and layers: at their file:line:col, or
  // named (an ONNX node, a preset's layer).
  llvm::SourceMgr sourceMgr;
  ToolDiagnosticHandler handler(&context, sourceMgr, "galvatron-plan");
  handler.setSubject(inputFilename);
  auto module = loadModel(context, sourceMgr);
  if (failed(module))
    return 1;
  auto model = ModelProfile::build(**module);
  if (!model) {
    (void)emitError(model.takeError(), (*module)->getLoc());
    return 1;
  }
  const ClusterSpec &cluster = setup->cluster;

  SearchOptions options;
  options.globalBatch = globalBatch;
  options.precision = *trainingPrecision;
  options.memoryBudget = setup->memoryBudget;
  options.space.maxTp = maxTp;
  options.space.maxPp = maxPp;
  options.space.fixedPp = fixedPp;
  if (maxTp < 0 || maxPp < 0 || fixedPp < 0)
    return error("--max-tp, --max-pp and --pp must not be negative");
  // A trainer's closest plan may not fit where ours does: candidates from
  // more configurations let the export fall back to one that fits.
  constexpr unsigned kExportCandidates = 8;
  unsigned count = exporter ? std::max<unsigned>(top, kExportCandidates) : top;
  auto results = searchPlans(*model, cluster, options, count);
  if (!results)
    return error(llvm::formatv("{0} does not fit on {1} x {2} GPUs ({3}) "
                               "with a global batch of {4}: {5}",
                               model->model, cluster.nodes,
                               cluster.devicesPerNode, cluster.name,
                               globalBatch.getValue(),
                               llvm::toString(results.takeError())));
  const SearchResult &best = results->front();

  llvm::raw_ostream &os = llvm::outs();
  double parameters = static_cast<double>(model->getParameterCount());
  std::string parameterCount =
      parameters >= 1e9   ? llvm::formatv("{0:F2} G", parameters / 1e9).str()
      : parameters >= 1e6 ? llvm::formatv("{0:F2} M", parameters / 1e6).str()
                          : std::to_string(model->getParameterCount());
  os << llvm::formatv("model {0}: {1} parameters, sequence {2}; global batch "
                      "{3}, {4}\n",
                      model->model, parameterCount, model->sequenceLength,
                      globalBatch.getValue(),
                      stringifyPrecision(*trainingPrecision));
  printPlanReport(os, {&*model, &best.plan, &best.evaluation, &cluster,
                       &best.statistics});
  printMemory(os, best.plan, best.evaluation);
  ArrayRef<SearchResult> shown =
      ArrayRef<SearchResult>(*results).take_front(top);
  if (shown.size() > 1)
    printTop(os, *model, shown);
  if (!exporter) {
    os << "(--format=" << getPlanExportFormatList()
       << " writes the plan for that trainer)\n";
    return 0;
  }

  // The best plan's export, or the first of the next plans' that fits.
  std::optional<PlanExport> exported;
  PlanEvaluation evaluation;
  unsigned chosen = 0;
  for (auto [index, result] : llvm::enumerate(*results)) {
    auto candidate = exporter->exportPlan(result.plan, *model);
    if (!candidate) {
      if (index == 0)
        return error("format=" + format + ": " +
                     llvm::toString(candidate.takeError()));
      llvm::consumeError(candidate.takeError());
      continue;
    }
    PlanEvaluation candidateEvaluation = evaluatePlan(
        *model, candidate->plan, cluster, setup->memoryBudget);
    if (index == 0 || candidateEvaluation.fits()) {
      exported = std::move(*candidate);
      evaluation = candidateEvaluation;
      chosen = index;
    }
    if (evaluation.fits())
      break;
  }
  const SearchResult &source = (*results)[chosen];
  os << "plan for " << exporter->trainer << " (format=" << format << ")\n";
  if (chosen > 0)
    os << llvm::formatv("  the {0} plan closest to the best plan does not "
                        "fit; this one is closest to plan #{1} (pp {2}, m "
                        "{3}), the best whose closest plan fits\n",
                        exporter->trainer, chosen + 1, source.plan.pp,
                        source.plan.microBatches);
  for (const std::string &line : describePlanExport(
           *exporter, *exported, source.evaluation, evaluation))
    os << "  " << line << "\n";
  if (outputFilename == "-") {
    os << exported->text;
    return 0;
  }
  std::string message;
  auto output = openOutputFile(outputFilename, &message);
  if (!output)
    return error(message);
  output->os() << exported->text;
  if (llvm::Error failed = keepOutputFile(*output))
    return error(llvm::toString(std::move(failed)));
  os << "  written to " << outputFilename << "\n";
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  hideLibraryOptions({&modelCategory, &clusterCategory, &planCategory});
  registerDebugOptions();
  cl::ParseCommandLineOptions(
      argc, argv,
      "Galvatron plan: the fastest hybrid-parallel plan of a model on a "
      "cluster, whether and how it fits, and the plan for your trainer\n");
  int status = run();
  if (llvm::Error failed = flushStandardOutput())
    return error(llvm::toString(std::move(failed)));
  return status;
}
