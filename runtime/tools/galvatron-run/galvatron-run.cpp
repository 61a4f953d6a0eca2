//===- galvatron-run.cpp - Runs a compiled Galvatron program --------------===//
//
//   galvatron-run m.gxp [--input NAME=FILE.npy]... [--output-dir DIR]
//                 [--params FILE.safetensors] [--seed N] [--threads N] ...
//   mpirun -np N galvatron-run m.gxp ...
//
// Loads and validates the program, takes this process's rank program, loads
// parameters and inputs, runs it on the CPU backend and writes the outputs.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Runtime/Executor.h"
#include "galvatron/Runtime/MPICommunicator.h"
#include "galvatron/Runtime/Parameters.h"
#include "galvatron/Runtime/ProgramFile.h"
#include "galvatron/Runtime/TensorFiles.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

using namespace galvatron::runtime;

namespace {

constexpr const char *kUsage = R"(usage: galvatron-run PROGRAM.gxp [options]
  --input NAME=FILE.npy   bind a program input (repeat for each input)
  --output-dir DIR        write each output to DIR/NAME.npy
                          (DIR/rank<r>/NAME.npy in a job of several ranks)
  --params FILE           load every parameter from a safetensors file
  --init-params           use initializers even where external data is recorded
  --model-dir DIR         where external parameter data lives
                          (default: the directory recorded in the program)
  --seed N                seed of the parameter initializers (default 0)
  --save-params FILE      write the parameters to a safetensors file
  --threads N             threads for kernels and BLAS (default: all cores)
  --repeat N              run N times and report the fastest (default 1)
  --profile               print the time per layer and per kernel
  --quiet                 print errors only
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
};

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
    } else if (flag == "--quiet") {
      GALVATRON_RETURN_IF_ERROR(noValue());
      options.quiet = true;
    } else if (flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      return error("unknown option '", flag, "'");
    }
  }
  if (options.program.empty())
    return error("no program file given");
  return options;
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
Expected<std::vector<std::pair<uint32_t, HostTensor>>>
readInputs(Executor &executor, const Options &options) {
  const RankProgram &rank = executor.rankProgram();
  // In a job of several ranks an input may belong to some ranks only.
  auto known = [&](const std::string &name) {
    for (const RankProgram &other : executor.program().ranks)
      if (findBinding(other.inputs, name))
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
  std::vector<std::pair<uint32_t, HostTensor>> inputs;
  for (const Binding &input : rank.inputs) {
    auto file = files.find(input.name);
    if (file == files.end())
      return error("missing input '", input.name, "' (give --input ",
                   input.name, "=FILE.npy)");
    Expected<HostTensor> tensor = readNpy(file->second);
    if (!tensor)
      return tensor.takeStatus();
    const TensorType &expected = rank.buffers[input.buffer].type;
    if (tensor->type != expected)
      return error("input '", input.name, "': '", file->second, "' holds ",
                   tensor->type.str(), " but the program expects ",
                   expected.str());
    inputs.emplace_back(input.buffer, std::move(*tensor));
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
    backend = createCPUBackend(options.threads);
    Expected<std::unique_ptr<Executor>> created =
        Executor::create(program, comm.rank(), *backend, comm);
    if (!created)
      return created.takeStatus();
    executor = std::move(*created);
    Expected<ParameterReport> report =
        loadParameters(*executor, options.parameters);
    if (!report)
      return report.takeStatus();
    parameterReport = *report;
    if (!options.saveParameters.empty())
      GALVATRON_RETURN_IF_ERROR(saveParameters(
          *executor, forRank(options.saveParameters, comm.rank())));
    Expected<std::vector<std::pair<uint32_t, HostTensor>>> read =
        readInputs(*executor, options);
    if (!read)
      return read.takeStatus();
    inputs = std::move(*read);
    return Status::ok();
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
      for (const auto &[buffer, tensor] : inputs)
        GALVATRON_RETURN_IF_ERROR(executor->writeBuffer(
            buffer, tensor.data.data(), tensor.data.size()));
      auto start = std::chrono::steady_clock::now();
      GALVATRON_RETURN_IF_ERROR(
          executor->run(options.profile ? &profile : nullptr));
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      best = iteration ? std::min(best, seconds) : seconds;
      total += seconds;
    }
    std::vector<std::string> written;
    if (!options.outputDirectory.empty())
      GALVATRON_RETURN_IF_ERROR(writeOutputs(*executor, options, written));
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

private:
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

  const Options &options;
  Communicator &comm;
  Program program;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Executor> executor;
  std::vector<std::pair<uint32_t, HostTensor>> inputs;
  ParameterReport parameterReport;
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
  Status setUp = runner.setUp();
  if (!setUp.isOk())
    printError(comm.get(), setUp);
  if (!comm->allSucceeded(setUp.isOk()))
    return 1;
  Status ran = runner.run();
  if (!ran.isOk()) {
    printError(comm.get(), ran);
    // Other ranks may wait on this one in a collective: end the job.
    if (comm->worldSize() > 1)
      comm->abort(1);
    return 1;
  }
  return 0;
}
