"""Multi-rank programs exercising every collective and send/recv, and their
serial references.

  collectives.py program N OUT.mlir   grt IR of an N-rank program (N = 2 or 4)
  collectives.py serial OUT.mlir      the tensor-parallel part on one rank
  collectives.py inputs N DIR         per-rank inputs DIR/{x,y,ids}.<rank>.npy
  collectives.py check N IN OUT SERIAL
      compares each rank's outputs (OUT/rank<r>/*.npy) with results computed
      serially with NumPy from all ranks' inputs, and the tensor-parallel
      outputs with the one-rank run (SERIAL/*.npy)

Every rank is a pipeline stage of its own (its program differs) and:
  - all-reduces x (f32[4,3]) with sum, max and avg, and ids (i64[4]) with min,
    over the whole world;
  - casts x to bf16 and f16, all-reduces it with sum, max, min and avg and
    reduce-scatters y so (f32 arithmetic, 16-bit partial results), and casts
    the results back to f32 for the comparison;
  - all-gathers x over the world;
  - reduce-scatters and all-to-alls y (f32[2N,3]);
  - broadcasts x from the last rank;
  - with 4 ranks, all-reduces x within pairs {0,1}, {2,3} and all-gathers it
    within {0,2}, {1,3};
  - passes x around a ring with send/recv;
  - computes Z = W·bᵀ and W2·Z tensor-parallel, b being the broadcast x: rank r
    holds rows of parameter W and columns of W2 (slices initialized from the
    seed, placed by a rank term: its position in the world), all-gathers its
    rows of Z and all-reduces its partial W2·Z.
Groups are families over mesh axes: the world {n, 1}, with 4 ranks the
pairs {2, 1} ({0, 1}, {2, 3}) and the parities {2, 2} ({0, 2}, {1, 3}).
"""

import os
import sys

import numpy as np

TOLERANCE = 1e-5
OUT_FEATURES, HIDDEN, IN_FEATURES, TOKENS = 8, 8, 3, 4
W2_ROWS = 5


class Program:
    """Emits one rank's grt.program (the rank is a stage of its own) with
    buffers laid out one after another."""

    def __init__(self, rank):
        self.rank = rank
        self.buffers = []
        self.body = []
        self.outputs = []
        self.offset = 0
        self.count = 0

    def buffer(self, kind, shape, element="f32", label=None, attributes=""):
        name = f"%b{self.count}"
        self.count += 1
        type_ = memref(shape, element)
        label = f' "{label}"' if label else ""
        attributes = f" {{{attributes}}}" if attributes else ""
        self.buffers.append(f"{name} = grt.{kind}{label} offset {self.offset}"
                            f"{attributes} : {type_}")
        size = int(np.prod(shape)) * {"i64": 8, "bf16": 2, "f16": 2}.get(element, 4)
        self.offset += (size + 63) // 64 * 64
        return name, type_

    def temp(self, shape, element="f32"):
        return self.buffer("buffer", shape, element)

    def emit(self, line):
        self.body.append(line)

    def output(self, name, value):
        self.outputs.append(f'grt.output "{name}" {value[0]} : {value[1]}')

    def text(self):
        lines = self.buffers + self.body + self.outputs
        inner = "\n".join("    " + line for line in lines)
        return f"  grt.program stage {self.rank} arena {self.offset} {{\n{inner}\n  }}"


def memref(shape, element="f32"):
    return "memref<" + "x".join(str(d) for d in shape) + f"x{element}>"


def collective(program, op, source, shape, group, element="f32", prefix=""):
    result = program.temp(shape, element)
    program.emit(f"grt.{op} {prefix}ins({source[0]} : {source[1]}) "
                 f"outs({result[0]} : {result[1]}) group @{group}")
    return result


HALVES = ("bf16", "f16")


def cast(program, source, shape, element="f32"):
    result = program.temp(shape, element)
    program.emit(f'grt.kernel "cast" ins({source[0]} : {source[1]}) '
                 f'outs({result[0]} : {result[1]}) {{}}')
    return result


def rounded(values, element):
    """`values` (float32) rounded to nearest even in `element`, as float64."""
    if element == "f16":
        return values.astype(np.float16).astype(np.float64)
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


# Unit roundoff: a sum over n ranks rounds each of its n - 1 partial sums.
ROUNDOFF = {"bf16": 2.0 ** -8, "f16": 2.0 ** -11}


def rank_program(n, r):
    p = Program(r)
    x = p.buffer("input", [4, IN_FEATURES], label="x")
    y = p.buffer("input", [2 * n, IN_FEATURES], label="y")
    ids = p.buffer("input", [4], "i64", label="ids")
    rows = OUT_FEATURES // n
    w = p.buffer("parameter", [rows, IN_FEATURES], label="w",
                 attributes=f"full_shape = array<i64: {OUT_FEATURES}, "
                 f"{IN_FEATURES}>, init = #galvatron.init<normal(0.0, 1.0)>, "
                 f"slice_start = array<i64: 0, 0>, slice_terms = "
                 f'[#grt.term<"slice_start"[0], {rows} * @world>]')
    w2 = p.buffer("parameter", [W2_ROWS, rows], label="w2",
                  attributes=f"full_shape = array<i64: {W2_ROWS}, {HIDDEN}>, "
                  f"init = #galvatron.init<uniform(-1.0, 1.0)>, "
                  f"slice_start = array<i64: 0, 0>, slice_terms = "
                  f'[#grt.term<"slice_start"[1], {rows} * @world>]')

    for op in ("sum", "max", "avg"):
        p.output(op, collective(p, "all_reduce", x, [4, IN_FEATURES], "world",
                                prefix=op + " "))
    p.output("ids_min", collective(p, "all_reduce", ids, [4], "world", "i64",
                                   prefix="min "))
    for element in HALVES:
        low_x = cast(p, x, [4, IN_FEATURES], element)
        for op in ("sum", "max", "min", "avg"):
            reduced = collective(p, "all_reduce", low_x, [4, IN_FEATURES],
                                 "world", element, prefix=op + " ")
            p.output(f"{element}_{op}", cast(p, reduced, [4, IN_FEATURES]))
        low_y = cast(p, y, [2 * n, IN_FEATURES], element)
        scattered = collective(p, "reduce_scatter", low_y, [2, IN_FEATURES],
                               "world", element, prefix="sum ")
        p.output(f"{element}_scattered", cast(p, scattered, [2, IN_FEATURES]))
    p.output("gathered", collective(p, "all_gather", x, [4 * n, IN_FEATURES],
                                    "world"))
    p.output("scattered", collective(p, "reduce_scatter", y, [2, IN_FEATURES],
                                     "world", prefix="sum "))
    p.output("exchanged", collective(p, "all_to_all", y, [2 * n, IN_FEATURES],
                                     "world"))
    b = collective(p, "broadcast", x, [4, IN_FEATURES], "world",
                   prefix=f"root {n - 1} ")
    p.output("broadcast", b)
    if n == 4:
        p.output("pair_sum", collective(p, "all_reduce", x, [4, IN_FEATURES],
                                        "pairs", prefix="sum "))
        p.output("parity_gathered", collective(p, "all_gather", x,
                                               [8, IN_FEATURES], "parities"))

    # A ring of stages: even ranks send first, odd ranks receive first.
    ring = p.temp([4, IN_FEATURES])
    send = f"grt.send {x[0]} to stage {(r + 1) % n} tag 5 : {x[1]}"
    recv = f"grt.recv {ring[0]} from stage {(r - 1) % n} tag 5 : {ring[1]}"
    p.body.extend([send, recv] if r % 2 == 0 else [recv, send])
    p.output("ring", ring)

    # Tensor parallelism: column-parallel W, row-parallel W2.
    z = p.temp([rows, TOKENS])
    p.emit(f'grt.kernel "matmul" ins({w[0]}, {b[0]} : {w[1]}, {b[1]}) '
           f'outs({z[0]} : {z[1]}) {{transpose_rhs = true}} layer "tp"')
    p.output("z", collective(p, "all_gather", z, [OUT_FEATURES, TOKENS],
                             "world"))
    partial = p.temp([W2_ROWS, TOKENS])
    p.emit(f'grt.kernel "matmul" ins({w2[0]}, {z[0]} : {w2[1]}, {z[1]}) '
           f'outs({partial[0]} : {partial[1]}) {{}} layer "tp"')
    p.output("out", collective(p, "all_reduce", partial, [W2_ROWS, TOKENS],
                               "world", prefix="sum "))
    return p.text()


def program_text(n):
    groups = [("world", n, 1)]
    if n == 4:
        groups += [("pairs", 2, 1), ("parities", 2, 2)]
    lines = [f"grt.executable world_size {n} alignment 64 stages {n} "
             f'attributes {{model = "collectives"}} {{']
    lines += [f"  grt.group @{name} sizes [{size}] strides [{stride}]"
              for name, size, stride in groups]
    lines += [rank_program(n, r) for r in range(n)]
    return "\n".join(lines) + "\n}\n"


def serial_text():
    p = Program(0)
    b = p.buffer("input", [4, IN_FEATURES], label="b")
    w = p.buffer("parameter", [OUT_FEATURES, IN_FEATURES], label="w",
                 attributes="init = #galvatron.init<normal(0.0, 1.0)>")
    w2 = p.buffer("parameter", [W2_ROWS, HIDDEN], label="w2",
                  attributes="init = #galvatron.init<uniform(-1.0, 1.0)>")
    z = p.temp([OUT_FEATURES, TOKENS])
    out = p.temp([W2_ROWS, TOKENS])
    p.emit(f'grt.kernel "matmul" ins({w[0]}, {b[0]} : {w[1]}, {b[1]}) '
           f'outs({z[0]} : {z[1]}) {{transpose_rhs = true}}')
    p.emit(f'grt.kernel "matmul" ins({w2[0]}, {z[0]} : {w2[1]}, {z[1]}) '
           f'outs({out[0]} : {out[1]}) {{}}')
    p.output("z", z)
    p.output("out", out)
    return ("grt.executable world_size 1 alignment 64 stages 1 {\n" + p.text() +
            "\n}\n")


def inputs(n, rank):
    rng = np.random.RandomState(100 + rank)
    return {"x": rng.standard_normal((4, IN_FEATURES)).astype(np.float32),
            "y": rng.standard_normal((2 * n, IN_FEATURES)).astype(np.float32),
            "ids": rng.randint(-50, 50, size=4).astype(np.int64)}


def expected(n, r, all_inputs):
    x = [i["x"] for i in all_inputs]
    y = [i["y"] for i in all_inputs]
    ids = [i["ids"] for i in all_inputs]
    result = {
        "sum": np.sum(x, axis=0), "max": np.max(x, axis=0),
        "avg": np.mean(x, axis=0), "ids_min": np.min(ids, axis=0),
        "gathered": np.concatenate(x),
        "scattered": np.sum(y, axis=0)[2 * r:2 * r + 2],
        "exchanged": np.concatenate([y[j][2 * r:2 * r + 2] for j in range(n)]),
        "broadcast": x[n - 1],
        "ring": x[(r - 1) % n],
    }
    if n == 4:
        result["pair_sum"] = x[r] + x[r ^ 1]
        result["parity_gathered"] = np.concatenate([x[r % 2], x[r % 2 + 2]])
    return result


def check_halves(n, r, outputs, all_inputs):
    """The 16-bit reductions of rank r against float64 ones of the rounded
    inputs: sums within n - 1 roundings of their partial sums (avg: one
    more for the division), max and min exact."""
    ok, compared = True, 0
    for element in HALVES:
        x = [rounded(i["x"], element) for i in all_inputs]
        y = [rounded(i["y"], element) for i in all_inputs]
        bound_x = (n - 1) * ROUNDOFF[element] * np.sum(np.abs(x), axis=0)
        references = {
            "sum": (np.sum(x, axis=0), bound_x),
            "avg": (np.mean(x, axis=0),
                    bound_x / n + ROUNDOFF[element] *
                    (np.abs(np.mean(x, axis=0)) + bound_x / n)),
            "max": (np.max(x, axis=0), 0.0), "min": (np.min(x, axis=0), 0.0),
            "scattered": (np.sum(y, axis=0)[2 * r:2 * r + 2],
                          (n - 1) * ROUNDOFF[element] *
                          np.sum(np.abs(y), axis=0)[2 * r:2 * r + 2])}
        for op, (reference, bound) in references.items():
            ours = np.load(os.path.join(outputs, f"{element}_{op}.npy"))
            error = np.abs(ours.astype(np.float64) - reference)
            if ours.dtype != np.float32 or np.any(error > bound):
                print(f"rank {r}: {element} {op} differs by {error.max()} "
                      f"(bound {np.max(bound)})")
                ok = False
            compared += 1
    return ok, compared


def compare(label, ours, reference):
    if ours.shape != reference.shape or ours.dtype != reference.dtype:
        print(f"{label}: {ours.dtype}{list(ours.shape)} differs from "
              f"{reference.dtype}{list(reference.shape)}")
        return False
    error = np.abs(ours.astype(np.float64) - reference).max()
    if error > TOLERANCE * max(1.0, np.abs(reference).max()):
        print(f"{label}: differs by {error}")
        return False
    return True


def check(n, input_dir, output_dir, serial_dir):
    all_inputs = [{name: np.load(os.path.join(input_dir, f"{name}.{r}.npy"))
                   for name in ("x", "y", "ids")} for r in range(n)]
    serial = {name: np.load(os.path.join(serial_dir, name + ".npy"))
              for name in ("z", "out")}
    ok, compared = True, 0
    for r in range(n):
        outputs = os.path.join(output_dir, f"rank{r}")
        references = expected(n, r, all_inputs)
        references.update(serial)
        for name, reference in references.items():
            ours = np.load(os.path.join(outputs, name + ".npy"))
            ok &= compare(f"rank {r}: {name}", ours, reference.astype(ours.dtype))
            compared += 1
        halves_ok, halves = check_halves(n, r, outputs, all_inputs)
        ok &= halves_ok
        compared += halves
    print(f"{n} ranks: {compared} outputs "
          f"{'match' if ok else 'DO NOT match'} the serial results")
    return 0 if ok else 1


def main(argv):
    if argv[1] == "program" and len(argv) == 4:
        with open(argv[3], "w") as f:
            f.write(program_text(int(argv[2])))
    elif argv[1] == "serial" and len(argv) == 3:
        with open(argv[2], "w") as f:
            f.write(serial_text())
    elif argv[1] == "inputs" and len(argv) == 4:
        n = int(argv[2])
        os.makedirs(argv[3], exist_ok=True)
        for r in range(n):
            for name, array in inputs(n, r).items():
                np.save(os.path.join(argv[3], f"{name}.{r}.npy"), array)
    elif argv[1] == "check" and len(argv) == 6:
        return check(int(argv[2]), argv[3], argv[4], argv[5])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
