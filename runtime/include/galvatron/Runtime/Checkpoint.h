//===- Checkpoint.h - Checkpoints of the source model's tensors -*- C++ -*-===//
//
// A checkpoint holds the source model's tensors whole, under the model's
// names, whatever plan wrote it, so that any plan of the same model resumes
// it and PyTorch or Hugging Face load its weights by name:
//
//   DIR/manifest.json                     written last: names the complete
//                                         checkpoint, its files and where
//                                         the run stands
//   DIR/checkpoint-<S>/model.safetensors  the weights (Hugging Face layout:
//                                         model-0000i-of-0000n.safetensors
//                                         and model.safetensors.index.json
//                                         when larger than a shard)
//   DIR/checkpoint-<S>/optimizer.safetensors   training state by the
//                                         model's names: <w>.exp_avg,
//                                         <w>.exp_avg_sq, <w>.momentum_buffer,
//                                         <w>.grad, train.step, ... (sharded
//                                         alike)
//
// Every rank plans the same layout from the program (each tensor's file
// and offset), rank 0 creates the files at their full size, and each rank
// writes the parts of tensors it owns (the lowest rank holding a part:
// replicas write nothing twice, no tensor is gathered anywhere) straight
// into place. Once all ranks have written, rank 0 renames the directory
// into place and writes the manifest. A rank resuming reads only its slice
// of each tensor, whatever plan it runs.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_CHECKPOINT_H
#define GALVATRON_RUNTIME_CHECKPOINT_H

#include "galvatron/Runtime/Executor.h"
#include "galvatron/Runtime/TensorFiles.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace galvatron::runtime {

/// Where a run stands: saved with every checkpoint.
struct TrainingProgress {
  /// Steps completed.
  int64_t step = 0;
  /// Token position of the next batch.
  int64_t dataPosition = 0;
  /// Seed of the data generator (masking, synthetic tokens).
  int64_t seed = 0;
};

/// A tensor of the source model as the ranks of a program hold it: a
/// weight, or training state, whole on some ranks and in slices on others.
struct LogicalTensor {
  std::string name;
  /// The element type and the source model's shape.
  TensorType type;
  bool state = false;
  /// The shape the parts' boxes index: the source shape or a refinement.
  std::vector<int64_t> fullShape;
  /// A box of the tensor, held by `rank` as its parameter `parameter`.
  struct Part {
    uint32_t rank = 0;
    uint32_t parameter = 0;
    std::vector<int64_t> start, shape;
  };
  /// The distinct boxes the ranks hold, each with the lowest rank holding
  /// it (the one that writes it): together they cover the tensor once.
  std::vector<Part> parts;
};

/// Every weight (with `withState`, also every training state variable) of
/// every rank of `program`, ordered by name (numbers in names compare as
/// numbers: h.2 before h.10). Fails when ranks disagree on a tensor's type
/// or shape, or when the ranks' parts do not cover a tensor exactly once.
Expected<std::vector<LogicalTensor>>
collectLogicalTensors(const Program &program, bool withState);

/// Combines every rank's status of one phase of a write: ok on every rank,
/// or an error on every rank (each rank's own, or one saying another
/// failed). All ranks call it at the same points.
using Agreement = std::function<Status(Status)>;

struct CheckpointOptions {
  std::string directory;
  /// A group of tensors (weights, training state) larger than this is
  /// split into several files (Hugging Face's max_shard_size).
  uint64_t maxShardBytes = 5'000'000'000;
};

/// Writes the checkpoint of step `progress.step` of the tensors `tensors`
/// (collectLogicalTensors with state) into `options.directory`; every rank
/// calls it (`agree` after each phase, `comm` to name the files it writes). Non-finite values are refused, so a diverged run never
/// replaces the last good checkpoint. After the manifest is written, rank
/// 0 removes the other checkpoints of the directory.
Status saveCheckpoint(Executor &executor, Communicator &comm,
                      const std::vector<LogicalTensor> &tensors,
                      const CheckpointOptions &options,
                      const TrainingProgress &progress,
                      const Agreement &agree);

/// Writes the weights among `tensors` into one safetensors file `path`,
/// whole, under the model's names; every rank calls it and writes the
/// parts it owns.
Status saveWeights(Executor &executor, Communicator &comm,
                   const std::vector<LogicalTensor> &tensors,
                   const std::string &path, const Agreement &agree);

/// The complete checkpoint in a directory, as its manifest describes it.
struct CheckpointInfo {
  TrainingProgress progress;
  /// The directory of the checkpoint's files (DIR/checkpoint-<S>).
  std::string directory;
  /// Its files, relative to `directory`, and their sizes.
  std::map<std::string, uint64_t> files;
};

/// Reads and checks the manifest of `directory`: the checkpoint it names
/// must be complete (every file present with its size). A directory with
/// no manifest is incomplete; the message names the checkpoints found.
Expected<CheckpointInfo> findCheckpoint(const std::string &directory);

/// Tensors by name across safetensors files: one file, the shards of a
/// Hugging Face index (`*.safetensors.index.json`), or a directory holding
/// `model.safetensors` or its index, or a checkpoint (its weights).
class TensorStore {
public:
  static Expected<TensorStore> open(const std::string &path);
  /// The weights (or, with `state`, the training state) of `checkpoint`.
  static Expected<TensorStore> open(const CheckpointInfo &checkpoint,
                                    bool state);

  const std::string &path() const { return where; }
  /// The file and entry of `name`, or nulls.
  std::pair<const SafeTensorsReader *, const SafeTensorsReader::Entry *>
  find(const std::string &name) const;
  /// Every tensor's name, sorted.
  std::vector<std::string> names() const;
  /// Loads `parameter` of the executor's rank from the tensor of its name:
  /// the rank's slice only, converted to the buffer's element type.
  Status load(Executor &executor, const Parameter &parameter) const;

private:
  std::string where;
  std::vector<SafeTensorsReader> files;
  std::map<std::string, std::pair<size_t, size_t>> index;
};

/// Loads every parameter and state variable of the executor's rank from
/// the checkpoint, its slice of each tensor, and returns the progress.
/// `tensors` (collectLogicalTensors) are the program's: a checkpoint
/// holding weights the program does not have is of another model.
Expected<TrainingProgress>
loadCheckpoint(Executor &executor, const CheckpointInfo &checkpoint,
               const std::vector<LogicalTensor> &tensors);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_CHECKPOINT_H
