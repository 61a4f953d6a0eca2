//===- Trace.cpp - A timeline of one rank's run ---------------------------===//

#include "galvatron/Runtime/Trace.h"

#include "Json.h"
#include "galvatron/Runtime/AtomicFile.h"

#include <chrono>
#include <cstdio>

namespace galvatron::runtime {

double traceTime(std::chrono::steady_clock::time_point at) {
  return std::chrono::duration<double, std::micro>(at.time_since_epoch())
      .count();
}

double traceClock() { return traceTime(std::chrono::steady_clock::now()); }

static std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", value);
  return text;
}

Status writeTrace(const std::string &path, const Trace &trace, uint32_t rank) {
  static const char *const trackNames[] = {"compute", "communication",
                                           "in flight"};
  std::string pid = std::to_string(rank);
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  out += "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": " + pid +
         ", \"args\": {\"name\": \"rank " + pid + "\"}}";
  out += ",\n{\"ph\": \"M\", \"name\": \"process_sort_index\", \"pid\": " +
         pid + ", \"args\": {\"sort_index\": " + pid + "}}";
  for (int track = 0; track < 3; ++track)
    out += ",\n{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": " + pid +
           ", \"tid\": " + std::to_string(track) +
           ", \"args\": {\"name\": \"" + trackNames[track] + "\"}}";
  for (const TraceEvent &event : trace.events) {
    out += ",\n{\"ph\": \"X\", \"name\": " + quoteJson(event.name) +
           ", \"cat\": " + quoteJson(event.category) + ", \"pid\": " + pid +
           ", \"tid\": " + std::to_string(int(event.track)) +
           ", \"ts\": " + number(event.begin) +
           ", \"dur\": " + number(event.end - event.begin) +
           ", \"args\": {\"layer\": " + quoteJson(event.layer) +
           ", \"block\": " + quoteJson(event.block) +
           ", \"micro_batch\": " + std::to_string(event.microBatch) +
           ", \"bytes\": " + std::to_string(event.bytes) +
           ", \"event\": " + std::to_string(event.event) +
           ", \"step\": " + std::to_string(event.step) + "}}";
  }
  out += "\n]}\n";
  return writeFileAtomically(path, {{out.data(), out.size()}});
}

} // namespace galvatron::runtime
