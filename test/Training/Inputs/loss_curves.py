"""Compares two galvatron-run training logs (one JSON line per step).

  loss_curves.py REFERENCE.jsonl OTHER.jsonl WINDOW TOLERANCE

Averages the loss over consecutive windows of WINDOW steps (single steps are
noisy) and checks every window of OTHER is within TOLERANCE (relative) of
REFERENCE's, and that REFERENCE learned (its last window below 60% of its
first), so that two flat curves cannot pass.
"""

import json
import sys


def windows(path, size):
    with open(path) as f:
        losses = [json.loads(line)["loss"] for line in f if line.strip()]
    return [sum(losses[i:i + size]) / size
            for i in range(0, len(losses) - size + 1, size)], len(losses)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    size, tolerance = int(argv[3]), float(argv[4])
    reference, steps = windows(argv[1], size)
    other, other_steps = windows(argv[2], size)
    if steps != other_steps or not reference:
        print(f"FAIL: {steps} and {other_steps} steps")
        return 1
    errors = [abs(b - a) / a for a, b in zip(reference, other)]
    worst = max(range(len(errors)), key=errors.__getitem__)
    learned = reference[-1] < 0.6 * reference[0]
    ok = errors[worst] <= tolerance and learned
    print(f"{'match' if ok else 'DIFFER'}: {len(errors)} windows of {size} "
          f"steps, loss {reference[0]:.3f} -> {reference[-1]:.3f} (reference) "
          f"and {other[0]:.3f} -> {other[-1]:.3f}; largest difference "
          f"{100 * errors[worst]:.2f}% at steps {worst * size + 1}-"
          f"{(worst + 1) * size} (tolerance {100 * tolerance:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
