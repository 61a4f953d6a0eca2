"""Checks the Chrome trace files galvatron-run --trace wrote, one per rank.

Every file must parse as JSON in the trace event format (metadata naming
the rank's process and its three tracks, complete events with a name, a
category, a time stamp, a duration, the rank as process and the track as
thread, and the layer, block, micro-batch and bytes as arguments). With
--expect-overlap CATEGORY it also finds, on every rank, a transfer of that
category started in the backward whose time in flight (from its start
instruction to the return of its wait, both on the rank's compute thread)
contains a backward kernel: the program order puts kernels between the
start and the wait, so this holds on any machine, however fast the
transfer.
"""
import argparse
import json
import sys

TRACKS = {0: "compute", 1: "communication", 2: "in flight"}


def fail(message):
    print("check_trace: error: " + message)
    sys.exit(1)


def check_file(path, rank):
    with open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    names = {(e["name"], e.get("tid")): e["args"]["name"]
             for e in events if e["ph"] == "M" and "name" in e.get("args", {})}
    if names.get(("process_name", None)) != "rank %d" % rank:
        fail("%s: the process is not named 'rank %d'" % (path, rank))
    for tid, name in TRACKS.items():
        if names.get(("thread_name", tid)) != name:
            fail("%s: track %d is not named '%s'" % (path, tid, name))
    complete = [e for e in events if e["ph"] == "X"]
    for e in complete:
        for key in ("name", "cat", "ts", "dur", "pid", "tid", "args"):
            if key not in e:
                fail("%s: an event lacks '%s': %s" % (path, key, e))
        if e["pid"] != rank or e["tid"] not in TRACKS or e["dur"] < 0:
            fail("%s: bad process, track or duration: %s" % (path, e))
        for key in ("layer", "block", "micro_batch", "bytes"):
            if key not in e["args"]:
                fail("%s: an event lacks the argument '%s'" % (path, key))
    return complete


def find_overlap(complete, category):
    kernels = sorted((e for e in complete
                      if e["cat"] == "kernel" and e["args"]["block"] == "backward"),
                     key=lambda e: e["ts"])
    for transfer in complete:
        if (transfer["tid"] != 2 or transfer["cat"] != category or
                transfer["args"]["block"] != "backward"):
            continue
        begin, end = transfer["ts"], transfer["ts"] + transfer["dur"]
        for kernel in kernels:
            if (kernel["ts"] >= begin and
                    kernel["ts"] + kernel["dur"] <= end and
                    kernel["args"]["step"] == transfer["args"]["step"]):
                return transfer, kernel
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("traces", nargs="+", help="trace of rank 0, 1, ...")
    parser.add_argument("--expect-overlap", metavar="CATEGORY")
    args = parser.parse_args()
    for rank, path in enumerate(args.traces):
        complete = check_file(path, rank)
        counts = {}
        for e in complete:
            key = (TRACKS[e["tid"]], e["cat"])
            counts[key] = counts.get(key, 0) + 1
        print("rank %d: %s" % (rank, ", ".join(
            "%s %s %d" % (track, cat, n)
            for (track, cat), n in sorted(counts.items()))))
        if not args.expect_overlap:
            continue
        found = find_overlap(complete, args.expect_overlap)
        if not found:
            fail("rank %d: no %s of the backward is in flight over a backward "
                 "kernel" % (rank, args.expect_overlap))
        transfer, kernel = found
        print("rank %d: %s of %d bytes (event %d, micro-batch %d) in flight "
              "over kernel %s of layer %s" % (
                  rank, transfer["name"], transfer["args"]["bytes"],
                  transfer["args"]["event"], transfer["args"]["micro_batch"],
                  kernel["name"], kernel["args"]["layer"]))


if __name__ == "__main__":
    main()
