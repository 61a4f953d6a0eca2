//===- Trace.h - A timeline of one rank's run -------------------*- C++ -*-===//
//
// What ran when on a rank, for `galvatron-run --trace`: kernels on the
// compute queue, collectives and messages on the communication queue (when
// the communicator worked on them), and each started transfer's time in
// flight (from its start instruction to the return of its wait: the
// interval the program overlaps with computation). Written in the Chrome
// trace event format (Perfetto, chrome://tracing): one process per rank,
// one track per queue.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_TRACE_H
#define GALVATRON_RUNTIME_TRACE_H

#include "galvatron/Runtime/Status.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace galvatron::runtime {

enum class TraceTrack : uint8_t { compute, communication, inFlight };

struct TraceEvent {
  std::string name;
  /// "kernel", "collective", "send" or "recv".
  std::string category;
  TraceTrack track = TraceTrack::compute;
  /// Microseconds of the steady clock (shared by the processes of a node).
  double begin = 0, end = 0;
  std::string layer, block;
  /// -1 outside a micro-batch (the optimizer step).
  int64_t microBatch = -1;
  uint64_t bytes = 0;
  /// The communication event of a started transfer, or -1.
  int32_t event = -1;
  /// The step of the run (galvatron-run's step number, or the repeat).
  int64_t step = 0;
};

struct Trace {
  std::vector<TraceEvent> events;
  /// Set by the caller before each run; copied into the events.
  int64_t step = 0;
};

/// Microseconds since the steady clock's epoch: of `at`, and now.
double traceTime(std::chrono::steady_clock::time_point at);
double traceClock();

/// Writes `trace` of world rank `rank` to `path` as a Chrome trace JSON
/// object (atomically).
Status writeTrace(const std::string &path, const Trace &trace, uint32_t rank);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_TRACE_H
