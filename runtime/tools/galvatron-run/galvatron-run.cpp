//===- galvatron-run.cpp - Runs a compiled Galvatron program --------------===//
//
//   galvatron-run m.gxp [--input NAME=FILE.npy]... [--output-dir DIR]
//                 [--params FILE.safetensors] [--seed N] [--threads N] ...
//   galvatron-run train.gxp --steps N [--data FILE.bin | --synthetic] ...
//   mpirun -np N galvatron-run m.gxp ...
//
// Loads and validates the program, takes this process's rank program, loads
// parameters and inputs, runs it on the CPU backend and writes the outputs.
// A training program (galvatron-compile --train) runs --steps steps on
// batches from a token file or synthetic data, logging each step and
// writing resumable checkpoints.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Runtime/Executor.h"
#include "galvatron/Runtime/MPICommunicator.h"
#include "galvatron/Runtime/Parameters.h"
#include "galvatron/Runtime/ProgramFile.h"
#include "galvatron/Runtime/TensorFiles.h"
#include "galvatron/Runtime/Training.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

using namespace galvatron::runtime;

namespace {

constexpr const char *kUsage = R"(usage: galvatron-run PROGRAM.gxp [options]
  --input NAME=FILE.npy   bind a program input (repeat for each input)
  --output-dir DIR        write each output to DIR/NAME.npy
                          (DIR/rank<r>/NAME.npy in a job of several ranks)
  --params PATH           load every parameter from safetensors files, by
                          name, each rank its slice: a file, a Hugging Face
                          index (*.safetensors.index.json) or a directory
                          holding model.safetensors, an index or a checkpoint
  --init-params           use initializers even where external data is recorded
  --model-dir DIR         where external parameter data lives
                          (default: the directory recorded in the program)
  --seed N                seed of the parameter initializers (default 0)
  --save-params FILE      write the parameters, whole, to a safetensors file
  --threads N             threads for kernels and BLAS (default: all cores)
  --repeat N              run N times and report the fastest (default 1)
  --profile               print the time per layer and per kernel (of the
                          last step when training)
  --quiet                 print errors only
  --trace FILE.json       write a timeline of the run in the Chrome trace
                          event format (Perfetto, chrome://tracing): kernels,
                          collectives, messages and their time in flight,
                          per rank (a job of several ranks needs "{rank}")
  --no-overlap            run started communication on the main thread, each
                          group before the next kernel (the same results
                          without overlap; for comparisons)
Training (programs compiled with galvatron-compile --train):
  --steps N               train until step N (inputs come from the data)
  --data FILE             token file: nanoGPT's raw uint16 train.bin, or
                          llm.c's .bin (its header is detected)
  --token-bytes 2|4       token width of a raw token file (default 2)
  --synthetic             uniform random tokens instead of a file
  --mask-token N          masked-token objective: the mask token id
                          (default 103, BERT's [MASK], or vocab - 1 if smaller)
  --checkpoint DIR        write checkpoints (the model's weights and
                          training state by name, step, data position, seed)
                          to DIR: DIR/checkpoint-<step>/ and DIR/manifest.json
  --save-every K          checkpoint every K steps (and after the last)
  --max-shard-size SIZE   split a checkpoint's weights (and state) into files
                          of at most SIZE bytes (suffixes KB MB GB, KiB MiB
                          GiB; default 5GB), with a Hugging Face index
  --resume DIR            continue from the checkpoint in DIR (written under
                          any plan of the same model)
  --log FILE              also write one JSON line per step to FILE
  --print-every K         print every K-th step's line (default 1)
  --peak-tflops X         peak of the machine for MFU (default: measured
                          single-precision GEMM rate)
In a job of several ranks, "{rank}" in a file name is replaced by the rank.
)";

struct Options {
  std::string program;
  std::vector<std::pair<std::string, std::string>> inputs;
  std::string outputDirectory;
  ParameterOptions parameters;
  std::string saveParameters;
  int threads = 0;
  int repeat = 1;
  bool profile = false;
  bool quiet = false;
  std::string trace;
  bool overlap = true;
  // Training.
  int64_t steps = 0;
  std::string data;
  int64_t tokenBytes = 2;
  bool synthetic = false;
  int64_t maskToken = -1;
  std::string checkpoint;
  int64_t saveEvery = 0;
  uint64_t maxShardBytes = CheckpointOptions().maxShardBytes;
  std::string resume;
  std::string log;
  int64_t printEvery = 1;
  double peakTflops = 0.0;
};

Status parseReal(const std::string &flag, const std::string &text,
                 double &value) {
  char *end = nullptr;
  double parsed = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(parsed > 0.0))
    return error(flag, " needs a positive number, got '", text, "'");
  value = parsed;
  return Status::ok();
}

Status parseInteger(const std::string &flag, const std::string &text,
                    int64_t minimum, int64_t &value) {
  char *end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || parsed < minimum)
    return error(flag, " needs an integer >= ", minimum, ", got '", text, "'");
  value = parsed;
  return Status::ok();
}

/// A size in bytes with an optional unit (KB, MB, GB decimal; KiB, MiB,
/// GiB binary), as Hugging Face's max_shard_size takes it.
Status parseSize(const std::string &flag, const std::string &text,
                 uint64_t &bytes) {
  char *end = nullptr;
  errno = 0;
  unsigned long long number = std::strtoull(text.c_str(), &end, 10);
  std::string unit = end ? end : "";
  static const std::pair<const char *, uint64_t> kUnits[] = {
      {"", 1},           {"B", 1},          {"KB", 1000},
      {"MB", 1000000},   {"GB", 1000000000}, {"KiB", 1024},
      {"MiB", 1 << 20},  {"GiB", 1 << 30}};
  for (const auto &[name, scale] : kUnits)
    if (unit == name && !text.empty() && std::isdigit((unsigned char)text[0]) &&
        errno == 0 && number > 0 && number <= UINT64_MAX / scale) {
      bytes = number * scale;
      return Status::ok();
    }
  return error(flag, " needs a positive size in bytes (e.g. 5GB, 200MiB), "
               "got '", text, "'");
}

Expected<Options> parseOptions(int argc, char **argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument.size() < 2 || argument.compare(0, 2, "--") != 0) {
      if (!options.program.empty())
        return error("unexpected argument '", argument, "'");
      options.program = argument;
      continue;
    }
    std::string flag = argument, value;
    bool hasValue = false;
    if (size_t equals = argument.find('='); equals != std::string::npos) {
      flag = argument.substr(0, equals);
      value = argument.substr(equals + 1);
      hasValue = true;
    }
    auto takeValue = [&]() -> Status {
      if (hasValue)
        return Status::ok();
      if (i + 1 >= argc)
        return error(flag, " needs a value");
      value = argv[++i];
      return Status::ok();
    };
    auto noValue = [&]() -> Status {
      return hasValue ? error(flag, " takes no value") : Status::ok();
    };
    int64_t number = 0;
    if (flag == "--input") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      size_t equals = value.find('=');
      if (equals == std::string::npos || equals == 0)
        return error("--input needs NAME=FILE.npy, got '", value, "'");
      options.inputs.emplace_back(value.substr(0, equals),
                                  value.substr(equals + 1));
    } else if (flag == "--output-dir") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.outputDirectory = value;
    } else if (flag == "--params") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.parameters.checkpoint = value;
    } else if (flag == "--init-params") {
      GALVATRON_RETURN_IF_ERROR(noValue());
      options.parameters.initializersOnly = true;
    } else if (flag == "--model-dir") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.parameters.modelDirectory = value;
    } else if (flag == "--seed") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 0, number));
      options.parameters.seed = uint64_t(number);
    } else if (flag == "--save-params") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.saveParameters = value;
    } else if (flag == "--threads") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 1, number));
      options.threads = int(std::min<int64_t>(number, 1024));
    } else if (flag == "--repeat") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 1, number));
      options.repeat = int(std::min<int64_t>(number, 1000000));
    } else if (flag == "--profile") {
      GALVATRON_RETURN_IF_ERROR(noValue());
      options.profile = true;
    } else if (flag == "--trace") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.trace = value;
    } else if (flag == "--no-overlap") {
      GALVATRON_RETURN_IF_ERROR(noValue());
      options.overlap = false;
    } else if (flag == "--quiet") {
      GALVATRON_RETURN_IF_ERROR(noValue());
      options.quiet = true;
    } else if (flag == "--steps") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 1, options.steps));
    } else if (flag == "--data") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.data = value;
    } else if (flag == "--token-bytes") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 2, options.tokenBytes));
      if (options.tokenBytes != 2 && options.tokenBytes != 4)
        return error("--token-bytes must be 2 or 4, got ", options.tokenBytes);
    } else if (flag == "--synthetic") {
      GALVATRON_RETURN_IF_ERROR(noValue());
      options.synthetic = true;
    } else if (flag == "--mask-token") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 0, options.maskToken));
    } else if (flag == "--checkpoint") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.checkpoint = value;
    } else if (flag == "--save-every") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 1, options.saveEvery));
    } else if (flag == "--max-shard-size") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseSize(flag, value, options.maxShardBytes));
    } else if (flag == "--resume") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.resume = value;
    } else if (flag == "--log") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      options.log = value;
    } else if (flag == "--print-every") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseInteger(flag, value, 1, options.printEvery));
    } else if (flag == "--peak-tflops") {
      GALVATRON_RETURN_IF_ERROR(takeValue());
      GALVATRON_RETURN_IF_ERROR(parseReal(flag, value, options.peakTflops));
    } else if (flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      return error("unknown option '", flag, "'");
    }
  }
  if (options.program.empty())
    return error("no program file given");
  bool training = options.steps > 0;
  if (!training && (!options.data.empty() || options.synthetic ||
                    !options.checkpoint.empty() || !options.resume.empty() ||
                    options.saveEvery || !options.log.empty() ||
                    options.printEvery != 1))
    return error("training options need --steps");
  if (training && options.data.empty() == !options.synthetic)
    return error("training needs exactly one of --data FILE and --synthetic");
  if (training && !options.inputs.empty())
    return error("a training run takes its inputs from the data, not --input");
  if (options.saveEvery && options.checkpoint.empty())
    return error("--save-every needs --checkpoint DIR");
  if (options.maxShardBytes != CheckpointOptions().maxShardBytes &&
      options.checkpoint.empty())
    return error("--max-shard-size needs --checkpoint DIR");
  return options;
}

/// `value` in a JSON line: full precision, null when not finite.
std::string jsonNumber(float value) {
  if (!std::isfinite(value))
    return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

/// `value` in a message: "nan" and "inf" without a sign for NaN.
std::string describe(float value) {
  if (std::isnan(value))
    return "nan";
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

/// `path` with "{rank}" replaced by `rank`.
std::string forRank(std::string path, uint32_t rank) {
  for (size_t at; (at = path.find("{rank}")) != std::string::npos;)
    path.replace(at, 6, std::to_string(rank));
  return path;
}

Status makeDirectories(const std::string &path) {
  for (size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/')
      continue;
    std::string prefix = path.substr(0, at);
    if (::mkdir(prefix.c_str(), 0777) != 0 && errno != EEXIST)
      return error("cannot create directory '", prefix,
                   "': ", std::strerror(errno));
  }
  return Status::ok();
}

const Binding *findBinding(const std::vector<Binding> &bindings,
                           const std::string &name) {
  for (const Binding &binding : bindings)
    if (binding.name == name)
      return &binding;
  return nullptr;
}

std::string bindingNames(const std::vector<Binding> &bindings) {
  std::string names;
  for (const Binding &binding : bindings)
    names += (names.empty() ? "" : ", ") + binding.name;
  return names.empty() ? "none" : names;
}

/// Reads every input of the rank's program from its .npy file.
Expected<std::vector<std::pair<const Binding *, HostTensor>>>
readInputs(Executor &executor, const Options &options) {
  const RankProgram &rank = executor.rankProgram();
  // In a pipeline an input may belong to some stages only.
  auto known = [&](const std::string &name) {
    for (const StageProgram &stage : executor.program().stages)
      if (findBinding(stage.inputs, name))
        return true;
    return false;
  };
  std::map<std::string, std::string> files;
  for (const auto &[name, file] : options.inputs) {
    if (!known(name))
      return error("the program has no input '", name,
                   "' (its inputs: ", bindingNames(rank.inputs), ")");
    if (!files.emplace(name, forRank(file, rank.rank)).second)
      return error("input '", name, "' is given twice");
  }
  std::vector<std::pair<const Binding *, HostTensor>> inputs;
  for (const Binding &input : rank.inputs) {
    auto file = files.find(input.name);
    if (file == files.end())
      return error("missing input '", input.name, "' (give --input ",
                   input.name, "=FILE.npy)");
    Expected<HostTensor> tensor = readNpy(file->second);
    if (!tensor)
      return tensor.takeStatus();
    TensorType expected = executor.inputType(input);
    if (tensor->type != expected)
      return error("input '", input.name, "': '", file->second, "' holds ",
                   tensor->type.str(), " but the program expects ",
                   expected.str());
    inputs.emplace_back(&input, std::move(*tensor));
  }
  return inputs;
}

Status writeOutputs(Executor &executor, const Options &options,
                    std::vector<std::string> &written) {
  const RankProgram &rank = executor.rankProgram();
  std::string directory = forRank(options.outputDirectory, rank.rank);
  if (executor.program().worldSize > 1 &&
      options.outputDirectory.find("{rank}") == std::string::npos)
    directory += "/rank" + std::to_string(rank.rank);
  GALVATRON_RETURN_IF_ERROR(makeDirectories(directory));
  for (const Binding &output : rank.outputs) {
    const TensorType &type = rank.buffers[output.buffer].type;
    std::vector<uint8_t> bytes(type.byteSize());
    GALVATRON_RETURN_IF_ERROR(
        executor.readBuffer(output.buffer, bytes.data(), bytes.size()));
    std::string path = directory + "/" + output.name + ".npy";
    GALVATRON_RETURN_IF_ERROR(writeNpy(path, type, bytes.data()));
    written.push_back(path + " (" + type.str() + ")");
  }
  return Status::ok();
}

std::string describeParameters(const ParameterReport &report,
                               const ParameterOptions &options) {
  std::string text;
  auto add = [&](int64_t count, const std::string &what) {
    if (count)
      text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + what;
  };
  add(report.fromCheckpoint, "from " + options.checkpoint);
  add(report.fromExternalData, "from external data");
  add(report.initialized,
      "initialized (seed " + std::to_string(options.seed) + ")");
  return text.empty() ? "no parameters" : text;
}

class Runner {
public:
  Runner(const Options &options, Communicator &communicator)
      : options(options), comm(communicator) {}

  /// Ok when every rank's `local` is; otherwise this rank's error, or an
  /// error it need not print when another rank failed. All ranks call it
  /// together and learn the outcome together, so no rank is left waiting.
  /// With `sameOnEveryRank` only the first failing rank prints.
  Status agree(Status local, bool sameOnEveryRank = false) {
    std::vector<int64_t> failed = comm.allGatherValue(local.isOk() ? 0 : 1);
    auto first = std::find(failed.begin(), failed.end(), 1);
    if (first == failed.end())
      return Status::ok();
    together = true;
    quiet |= local.isOk() || (sameOnEveryRank &&
                              uint32_t(first - failed.begin()) != comm.rank());
    return local.isOk() ? error("another rank failed") : local;
  }

  /// Whether the error this rank returns is one that another rank prints.
  bool quietError() const { return quiet; }
  /// Whether every rank stopped together (no rank waits for another).
  bool failedTogether() const { return together; }

  /// Everything up to the first instruction; each rank reports its own
  /// failure and every rank learns whether all succeeded.
  Status setUp() {
    Expected<Program> loaded = readProgramFile(options.program);
    if (!loaded)
      return loaded.takeStatus();
    program = std::move(*loaded);
    if (program.worldSize != comm.worldSize())
      return error("the program was compiled for ", program.worldSize,
                   " rank(s) but the job has ", comm.worldSize(),
                   " (launch it with mpirun -np ", program.worldSize, ")");
    if (!options.trace.empty() && comm.worldSize() > 1 &&
        options.trace.find("{rank}") == std::string::npos)
      return error("--trace '", options.trace, "' needs \"{rank}\" in a job of ",
                   comm.worldSize(), " ranks: each rank writes its own file");
    backend = createCPUBackend(options.threads);
    Expected<std::unique_ptr<Executor>> created = Executor::create(
        program, comm.rank(), *backend, comm, options.overlap);
    if (!created)
      return created.takeStatus();
    executor = std::move(*created);
    Expected<ParameterReport> report =
        loadParameters(*executor, options.parameters);
    if (!report)
      return report.takeStatus();
    parameterReport = *report;
    if (options.steps > 0)
      return setUpTraining();
    Expected<std::vector<std::pair<const Binding *, HostTensor>>> read =
        readInputs(*executor, options);
    if (!read)
      return read.takeStatus();
    inputs = std::move(*read);
    return Status::ok();
  }

  /// --save-params: the weights, whole, into one file; each rank writes the
  /// parts it owns.
  Status saveParameters() {
    Expected<std::vector<LogicalTensor>> weights =
        collectLogicalTensors(program, /*withState=*/false);
    if (!weights)
      return failTogether(weights.takeStatus());
    return saveWeights(*executor, comm, *weights, options.saveParameters,
                       [&](Status status) { return agree(std::move(status)); });
  }

  Status run() {
    const RankProgram &rank = executor->rankProgram();
    if (!options.quiet && comm.rank() == 0) {
      std::printf("galvatron-run: %s: model '%s', %u rank(s), format %u.%u\n",
                  options.program.c_str(), program.model.c_str(),
                  program.worldSize, kFormatMajorVersion, kFormatMinorVersion);
      std::printf("galvatron-run: rank 0: arena %llu bytes allocated "
                  "(compile-time plan %llu bytes), %zu instructions, %zu "
                  "buffers\n",
                  (unsigned long long)backend->arenaBytes(),
                  (unsigned long long)rank.arenaSize, rank.instructions.size(),
                  rank.buffers.size());
      std::printf("galvatron-run: parameters: %zu (%lld values): %s\n",
                  rank.parameters.size(), (long long)parameterReport.values,
                  describeParameters(parameterReport, options.parameters)
                      .c_str());
    }
    Profile profile;
    double best = 0.0, total = 0.0;
    for (int iteration = 0; iteration < options.repeat; ++iteration) {
      // Inputs are written before every run: the plan reuses their bytes
      // once they are read for the last time.
      for (const auto &[input, tensor] : inputs)
        GALVATRON_RETURN_IF_ERROR(executor->writeInput(
            *input, tensor.data.data(), tensor.data.size()));
      auto start = std::chrono::steady_clock::now();
      trace.step = iteration + 1;
      GALVATRON_RETURN_IF_ERROR(executor->run(
          options.profile ? &profile : nullptr, tracing()));
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      best = iteration ? std::min(best, seconds) : seconds;
      total += seconds;
    }
    std::vector<std::string> written;
    if (!options.outputDirectory.empty())
      GALVATRON_RETURN_IF_ERROR(writeOutputs(*executor, options, written));
    GALVATRON_RETURN_IF_ERROR(saveTrace());
    if (options.quiet || comm.rank() != 0)
      return Status::ok();
    std::printf("galvatron-run: time: %.3f ms (fastest of %d run(s), mean "
                "%.3f ms)\n",
                best * 1e3, options.repeat, total / options.repeat * 1e3);
    if (options.profile)
      printProfile(profile);
    for (const std::string &path : written)
      std::printf("galvatron-run: wrote %s\n", path.c_str());
    return Status::ok();
  }

  /// Runs the training steps up to --steps.
  Status train() {
    const TrainingInfo &info = *program.training;
    const RankProgram &rank = executor->rankProgram();
    bool lead = comm.rank() == 0 && !options.quiet;
    // Every rank resumes after the same step, or none trains: a rank
    // running more steps than the others would wait for them forever.
    std::vector<int64_t> resumed = comm.allGatherValue(progress.step);
    if (std::count(resumed.begin(), resumed.end(), progress.step) !=
        int64_t(resumed.size())) {
      std::string steps;
      for (size_t r = 0; r < resumed.size(); ++r)
        steps += (r ? ", " : "") + std::string("rank ") + std::to_string(r) +
                 " at step " + std::to_string(resumed[r]);
      return failTogether(error("the checkpoint parts in '", options.resume,
                                "' are of different steps (", steps,
                                "); refusing to resume a mixed set"));
    }
    if (progress.step > options.steps)
      return failTogether(
          error("the checkpoint in '", options.resume, "' is at step ",
                progress.step, ", past --steps ", options.steps,
                "; give --steps above ", progress.step, " to train on"));
    if (progress.step == options.steps) {
      if (lead)
        std::printf("galvatron-run: nothing to train: the checkpoint in '%s' "
                    "is already at step %lld (--steps %lld)\n",
                    options.resume.c_str(), (long long)progress.step,
                    (long long)options.steps);
      return Status::ok();
    }
    const Binding *ids = findDataInput(rank);
    // The shape of a step's batch; a pipeline stage without data inputs
    // makes no batches.
    TensorType idsType;
    idsType.shape = {1, 1};
    if (ids)
      idsType = executor->inputType(*ids);
    int64_t maskToken = options.maskToken >= 0 ? options.maskToken
                        : info.vocabSize > 103 ? 103
                                               : info.vocabSize - 1;
    if (maskToken >= info.vocabSize)
      return error("mask token ", maskToken, " is outside the vocabulary of ",
                   info.vocabSize);
    BatchMaker batches{*data, info, idsType.shape[0], idsType.shape[1],
                       maskToken, uint64_t(progress.seed)};
    // The program's model FLOPs are every rank's together, so MFU divides
    // by the peak of all ranks.
    double peak = options.peakTflops > 0.0 ? options.peakTflops * 1e12
                                           : measureGemmFlops();
    double jobPeak = peak * comm.worldSize();
    std::unique_ptr<FILE, int (*)(FILE *)> log(nullptr, std::fclose);
    Status opened = Status::ok();
    if (!options.log.empty() && comm.rank() == 0) {
      log.reset(std::fopen(options.log.c_str(), progress.step ? "a" : "w"));
      if (!log)
        opened =
            error("cannot write '", options.log, "': ", std::strerror(errno));
    }
    GALVATRON_RETURN_IF_ERROR(agree(std::move(opened)));
    // The progress bar needs a terminal. Under an MPI launcher a rank's
    // stdout is a pseudo-terminal whatever the job's output really is (a
    // file, a pipe), so a job of ranks never draws it.
    bool terminal = !launchedByMPI() && ::isatty(::fileno(stdout));
    if (lead) {
      std::printf("galvatron-run: training %s, batch %lld x %lld tokens, data %s\n",
             info.loss == LossKind::nextToken ? "next-token" : "masked-token",
             (long long)idsType.shape[0], (long long)idsType.shape[1],
             data->description().c_str());
      std::printf("galvatron-run: MFU against %.3g TFLOP/s per rank (%s) x "
             "%u rank(s), %.4g model GFLOP per step\n",
             peak / 1e12,
             options.peakTflops > 0.0 ? "--peak-tflops"
                                      : "measured SGEMM rate of this machine",
             comm.worldSize(), double(info.modelFlops) / 1e9);
      if (progress.step)
        std::printf("galvatron-run: resuming after step %lld from %s\n",
               (long long)progress.step, options.resume.c_str());
    }
    int64_t tokensPerStep = idsType.shape[0] * idsType.shape[1];
    // fp16 programs scale the loss dynamically and report the scale.
    bool lossScaled = findBinding(rank.outputs, "loss_scale") != nullptr;
    int64_t overflowAt = forcedOverflowStep();
    Profile profile;
    for (int64_t step = progress.step + 1; step <= options.steps; ++step) {
      if (ids) {
        Expected<Batch> batch = batches.make(step, progress.dataPosition);
        if (!batch)
          return batch.takeStatus();
        for (const Binding &input : rank.inputs)
          GALVATRON_RETURN_IF_ERROR(writeInput(input, *batch));
      }
      if (step == overflowAt)
        GALVATRON_RETURN_IF_ERROR(forceOverflow());
      auto start = std::chrono::steady_clock::now();
      trace.step = step;
      GALVATRON_RETURN_IF_ERROR(executor->run(
          options.profile ? &profile : nullptr, tracing()));
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      progress.step = step;
      float loss = 0.0f, norm = 0.0f, lr = 0.0f, scale = 1.0f;
      GALVATRON_RETURN_IF_ERROR(readScalar("loss", loss));
      GALVATRON_RETURN_IF_ERROR(readScalar("grad_norm", norm));
      GALVATRON_RETURN_IF_ERROR(readScalar("lr", lr));
      // A non-finite norm under loss scaling is an overflow: the program
      // skipped the update and halved the scale for the next step.
      bool skipped = lossScaled && !std::isfinite(norm);
      if (lossScaled)
        GALVATRON_RETURN_IF_ERROR(readLossScale(scale));
      double tokensPerSecond = double(tokensPerStep) / seconds;
      double mfu = double(info.modelFlops) / seconds / jobPeak;
      bool last = step == options.steps;
      bool print = step % options.printEvery == 0 || step == 1 || last;
      if (lead && (print || terminal || skipped)) {
        if (terminal)
          std::printf("\r\033[K");
        if (print)
          std::printf("step %5lld/%lld | loss %.6f | lr %.4e | grad norm "
                      "%.4f | %.0f tok/s | MFU %.2f%%\n",
                      (long long)step, (long long)options.steps, loss, lr,
                      norm, tokensPerSecond, 100.0 * mfu);
        if (skipped)
          std::printf("step %5lld: gradients overflowed in fp16: update "
                      "skipped, loss scale now %g\n",
                      (long long)step, scale);
        if (terminal) {
          int width = 30, done = int(width * step / options.steps);
          std::printf("[%s%s] %lld/%lld", std::string(done, '#').c_str(),
                 std::string(width - done, '.').c_str(), (long long)step,
                 (long long)options.steps);
        }
        std::fflush(stdout);
      }
      Status stepStatus = Status::ok();
      if (log) {
        int written = std::fprintf(
            log.get(),
            "{\"step\": %lld, \"loss\": %s, \"lr\": %s, "
            "\"grad_norm\": %s, \"seconds\": %.6f",
            (long long)step, jsonNumber(loss).c_str(), jsonNumber(lr).c_str(),
            jsonNumber(norm).c_str(), seconds);
        if (written >= 0 && lossScaled)
          written = std::fprintf(log.get(),
                                 ", \"loss_scale\": %.9g, \"skipped\": %s",
                                 scale, skipped ? "true" : "false");
        if (written < 0 || std::fprintf(log.get(), "}\n") < 0 ||
            std::fflush(log.get()) != 0)
          stepStatus = error("cannot write '", options.log, "' at step ",
                             step, ": ", std::strerror(errno));
      }
      // fp16 loss scaling skips a step whose gradients overflowed (its norm
      // is not finite) by design; anything else non-finite is divergence,
      // which every rank sees (the loss and the norm are all-reduced).
      bool diverged =
          !std::isfinite(loss) || (!std::isfinite(norm) && !lossScaled);
      if (diverged && stepStatus.isOk())
        stepStatus = error("step ", step, ": the loss is ", describe(loss),
                           " and the gradient norm ", describe(norm),
                           ": training diverged (lower the learning rate?); ",
                           keptCheckpoint());
      GALVATRON_RETURN_IF_ERROR(agree(std::move(stepStatus), diverged));
      if (!options.checkpoint.empty() &&
          (last || (options.saveEvery && step % options.saveEvery == 0)))
        GALVATRON_RETURN_IF_ERROR(writeCheckpoint());
    }
    if (lead && terminal)
      std::printf("\n");
    if (lead && options.profile)
      printProfile(profile);
    return saveTrace();
  }

private:
  /// The input whose shape is the batch: the token ids, or on a later
  /// pipeline stage the labels.
  static const Binding *findDataInput(const RankProgram &rank) {
    if (const Binding *ids = findBinding(rank.inputs, "input_ids"))
      return ids;
    return findBinding(rank.inputs, "labels");
  }

  Status setUpTraining() {
    if (!program.training)
      return error("'", options.program,
                   "' is not a training program (compile it with "
                   "galvatron-compile --train)");
    const RankProgram &rank = executor->rankProgram();
    // A later pipeline stage reads only the labels, a middle one no data.
    const Binding *ids = findDataInput(rank);
    if (!rank.inputs.empty() &&
        (!ids || executor->inputType(*ids).rank() != 2))
      return error("a training program needs an input 'input_ids' of shape "
                   "[batch, seq]");
    for (const char *output : {"loss", "grad_norm", "lr"})
      if (!findBinding(rank.outputs, output))
        return error("a training program needs an output '", output, "'");
    progress.seed = int64_t(options.parameters.seed);
    if (!options.checkpoint.empty() || !options.resume.empty()) {
      // The tensors of every rank: which rank writes which part, and which
      // weights a checkpoint of this model holds. Every rank finds the
      // same; rank 0 says what is wrong.
      Expected<std::vector<LogicalTensor>> collected =
          collectLogicalTensors(program, /*withState=*/true);
      if (!collected) {
        quiet = comm.rank() != 0;
        return collected.takeStatus();
      }
      tensors = std::move(*collected);
    }
    if (!options.checkpoint.empty())
      GALVATRON_RETURN_IF_ERROR(checkWritableDirectory(options.checkpoint));
    if (!options.resume.empty()) {
      Expected<CheckpointInfo> complete = findCheckpoint(options.resume);
      if (!complete) {
        quiet = comm.rank() != 0;
        return complete.takeStatus();
      }
      Expected<TrainingProgress> loaded =
          loadCheckpoint(*executor, *complete, tensors);
      if (!loaded)
        return loaded.takeStatus();
      progress = *loaded;
      if (options.resume == options.checkpoint)
        savedStep = progress.step;
    }
    if (options.synthetic) {
      data = std::make_unique<TokenData>(TokenData::synthetic(
          program.training->vocabSize, uint64_t(progress.seed)));
      return Status::ok();
    }
    Expected<TokenData> opened =
        TokenData::open(options.data, unsigned(options.tokenBytes));
    if (!opened)
      return opened.takeStatus();
    data = std::make_unique<TokenData>(std::move(*opened));
    return Status::ok();
  }

  /// Writes the batch's values for `input`, converted to its element type.
  Status writeInput(const Binding &input, const Batch &batch) {
    auto values = batch.find(input.name);
    TensorType type = executor->inputType(input);
    if (values == batch.end())
      return error("the training data has no input '", input.name,
                   "' (the data pipeline makes ", batchNames(batch), ")");
    if (int64_t(values->second.size()) != type.numElements())
      return error("input '", input.name, "' is ", type.str(),
                   " but the batch holds ", values->second.size(), " values");
    std::vector<uint8_t> bytes(type.byteSize());
    for (size_t i = 0; i < values->second.size(); ++i)
      storeValue(bytes.data(), type.elementType, i, values->second[i]);
    return executor->writeInput(input, bytes.data(), bytes.size());
  }

  static void storeValue(uint8_t *bytes, ElementType type, size_t i,
                         int64_t value) {
    switch (type) {
    case ElementType::i64:
      reinterpret_cast<int64_t *>(bytes)[i] = value;
      break;
    case ElementType::i32:
      reinterpret_cast<int32_t *>(bytes)[i] = int32_t(value);
      break;
    case ElementType::i1:
      bytes[i] = value != 0;
      break;
    default: // f32 (masks)
      reinterpret_cast<float *>(bytes)[i] = float(value);
      break;
    }
  }

  static std::string batchNames(const Batch &batch) {
    std::string names;
    for (const auto &[name, values] : batch)
      names += (names.empty() ? "" : ", ") + name;
    return names;
  }

  Status readScalar(const char *name, float &value) {
    const Binding *output = findBinding(executor->rankProgram().outputs, name);
    return executor->readBuffer(output->buffer, &value, sizeof(float));
  }

  /// The loss scale the next step uses (the state the step updated).
  Status readLossScale(float &value) {
    for (const Parameter &parameter : executor->rankProgram().parameters)
      if (parameter.state && parameter.name == "train.loss_scale")
        return executor->readBuffer(parameter.buffer, &value, sizeof(float));
    return error("the program reports a loss scale but has no state "
                 "'train.loss_scale'");
  }

  /// Fault injection for the loss-scaling tests: GALVATRON_TEST_OVERFLOW=N
  /// makes step N's gradients overflow, as an fp16 backward overflowing
  /// would: the first gradient accumulator starts the step at +inf.
  static int64_t forcedOverflowStep() {
    const char *value = std::getenv("GALVATRON_TEST_OVERFLOW");
    return value ? std::atoll(value) : -1;
  }

  Status forceOverflow() {
    const RankProgram &rank = executor->rankProgram();
    for (const Parameter &parameter : rank.parameters) {
      const TensorType &type = rank.buffers[parameter.buffer].type;
      std::string_view name = parameter.name;
      if (!parameter.state || type.elementType != ElementType::f32 ||
          name.size() < 5 || name.substr(name.size() - 5) != ".grad")
        continue;
      std::vector<float> values(size_t(type.numElements()), 0.0f);
      GALVATRON_RETURN_IF_ERROR(executor->readBuffer(
          parameter.buffer, values.data(), type.byteSize()));
      values[0] = std::numeric_limits<float>::infinity();
      return executor->writeBuffer(parameter.buffer, values.data(),
                                   type.byteSize());
    }
    return error("GALVATRON_TEST_OVERFLOW: the program has no f32 gradient "
                 "accumulator");
  }

  /// Writes the checkpoint of the current step: every rank its parts, then
  /// rank 0 the manifest that makes them a checkpoint; older ones go.
  Status writeCheckpoint() {
    CheckpointOptions where{options.checkpoint, options.maxShardBytes};
    GALVATRON_RETURN_IF_ERROR(saveCheckpoint(
        *executor, comm, tensors, where, progress, [&](Status status) {
          if (!status.isOk())
            status = error("step ", progress.step, ": ", status.message(),
                           "; ", keptCheckpoint());
          return agree(std::move(status));
        }));
    savedStep = progress.step;
    return Status::ok();
  }

  /// What an interrupted run leaves for --resume.
  std::string keptCheckpoint() const {
    if (options.checkpoint.empty())
      return "no checkpoint was asked for";
    if (!savedStep)
      return "no checkpoint was written";
    return "the checkpoint of step " + std::to_string(savedStep) + " in '" +
           options.checkpoint + "' is kept";
  }

  /// Creates `directory` and checks that files can be created in it, so
  /// that a bad --checkpoint stops the run before its first step.
  static Status checkWritableDirectory(const std::string &directory) {
    GALVATRON_RETURN_IF_ERROR(makeDirectories(directory));
    std::string probe =
        directory + "/.galvatron-run-probe." + std::to_string(::getpid());
    int descriptor = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (descriptor < 0)
      return error("cannot write checkpoints into '", directory,
                   "': ", std::strerror(errno));
    ::close(descriptor);
    ::unlink(probe.c_str());
    return Status::ok();
  }

  Trace *tracing() { return options.trace.empty() ? nullptr : &trace; }

  /// Each rank writes its own timeline.
  Status saveTrace() {
    if (options.trace.empty())
      return Status::ok();
    std::string path = forRank(options.trace, comm.rank());
    GALVATRON_RETURN_IF_ERROR(writeTrace(path, trace, comm.rank()));
    if (!options.quiet)
      std::printf("galvatron-run: rank %u: wrote the trace %s (%zu events, "
                  "communication %s)\n",
                  comm.rank(), path.c_str(), trace.events.size(),
                  executor->overlaps() ? "overlapped" : "synchronous");
    return Status::ok();
  }

  static void printProfile(Profile &profile) {
    std::printf("galvatron-run: profile of the last run (%.3f ms):\n",
                profile.total * 1e3);
    for (const auto &[layer, seconds] : profile.layers)
      std::printf("  layer  %-40s %10.3f ms\n", layer.c_str(), seconds * 1e3);
    std::sort(profile.kernels.begin(), profile.kernels.end(),
              [](const auto &a, const auto &b) { return a.second > b.second; });
    for (const auto &[kernel, seconds] : profile.kernels)
      std::printf("  kernel %-40s %10.3f ms\n", kernel.c_str(), seconds * 1e3);
  }

  /// An error every rank reaches at the same point.
  Status failTogether(Status status) {
    return agree(std::move(status), /*sameOnEveryRank=*/true);
  }

  const Options &options;
  Communicator &comm;
  bool quiet = false, together = false;
  Trace trace;
  /// The step of the last checkpoint this run wrote (or resumed from, in
  /// the same directory).
  int64_t savedStep = 0;
  Program program;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Executor> executor;
  std::vector<std::pair<const Binding *, HostTensor>> inputs;
  ParameterReport parameterReport;
  std::unique_ptr<TokenData> data;
  TrainingProgress progress;
  /// The model's tensors as the ranks hold them (for checkpoints).
  std::vector<LogicalTensor> tensors;
};

void printError(const Communicator *comm, const Status &status) {
  std::fflush(stdout);
  std::string prefix = "galvatron-run: error: ";
  if (comm && comm->worldSize() > 1)
    prefix += "rank " + std::to_string(comm->rank()) + ": ";
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), status.message().c_str());
}

} // namespace

int main(int argc, char **argv) {
  Expected<Options> options = parseOptions(argc, argv);
  if (!options) {
    printError(nullptr, options.status());
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::unique_ptr<Communicator> comm;
  if (launchedByMPI()) {
    Expected<std::unique_ptr<Communicator>> mpi =
        createMPICommunicator(&argc, &argv);
    if (!mpi) {
      printError(nullptr, mpi.status());
      return 1;
    }
    comm = std::move(*mpi);
  } else {
    comm = createSingleProcessCommunicator();
  }

  Runner runner(*options, *comm);
  Status ran = runner.agree(runner.setUp());
  if (ran.isOk() && !options->saveParameters.empty())
    ran = runner.saveParameters();
  if (ran.isOk())
    ran = options->steps > 0 ? runner.train() : runner.run();
  if (!ran.isOk()) {
    if (!runner.quietError())
      printError(comm.get(), ran);
    // A rank that failed alone may leave others waiting for it in a
    // collective: end the job.
    if (comm->worldSize() > 1 && !runner.failedTogether())
      comm->abort(1);
    return 1;
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    printError(comm.get(), error("cannot write to the standard output: ",
                                 std::strerror(errno)));
    return 1;
  }
  return 0;
}
