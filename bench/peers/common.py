"""Shared helpers of the Python benchmark peers: the timing loop and the output line."""
import json
import sys
import time


def measure(ms, batch):
    """Runs batch() -> (ops, seconds) until ms milliseconds are spent; returns ops/s."""
    budget = ms / 1000.0
    ops, spent = 0, 0.0
    while spent < budget:
        n, d = batch()
        ops += n
        spent += d
    return ops / spent


def emit(workload, impl, reps, **extra):
    line = {"workload": workload, "impl": impl, "unit": "ops/s", "reps": reps}
    line.update(extra)
    print(json.dumps(line), flush=True)


def load(dirname):
    with open(f"{dirname}/fixture.json") as f:
        return json.load(f)


def args():
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} FIXTURE_DIR REPS MILLIS")
    return sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
