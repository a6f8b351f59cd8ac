#!/usr/bin/env python3
"""Compares `workbook patch` output with a scenario file's expected logits (reference fixture format).

usage: compare_logits.py EXPECTED_SCENARIOS.json ACTUAL.json [--tol 1e-4] [--json SUMMARY.json]
Prints one line per scenario with its largest absolute difference; exit 1 when any scenario is missing, has another
shape, or differs by more than the tolerance. Independent of the workbook's own code: plain json and floats.
"""
import argparse
import json
import math
import sys


def flatten(logits):
    shape = [len(logits), len(logits[0]), len(logits[0][0])]
    flat = [x for row in logits for position in row for x in position]
    return shape, flat


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("expected")
    parser.add_argument("actual")
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--json", dest="summary")
    args = parser.parse_args()
    with open(args.expected) as f:
        expected = {s["name"]: s for s in json.load(f)["scenarios"]}
    with open(args.actual) as f:
        actual = {s["name"]: s for s in json.load(f)["scenarios"]}
    results = []
    for name, scenario in expected.items():
        if name not in actual:
            results.append({"name": name, "passed": False, "maxDifference": None, "detail": "missing from the output"})
            continue
        want_shape, want = flatten(scenario["logits"])
        got_shape, got = flatten(actual[name]["logits"])
        if want_shape != got_shape:
            results.append({"name": name, "passed": False, "maxDifference": None,
                            "detail": f"shape {got_shape}, expected {want_shape}"})
            continue
        diff = max(abs(a - b) if math.isfinite(b) else math.inf for a, b in zip(want, got))
        results.append({"name": name, "passed": diff <= args.tol, "maxDifference": diff,
                        "detail": f"{len(want)} logits {want_shape}"})
    passed = all(r["passed"] for r in results)
    for r in results:
        diff = "      n/a" if r["maxDifference"] is None else f"{r['maxDifference']:.2e}"
        print(f"{'PASS' if r['passed'] else 'FAIL'}  {r['name']:<40} max diff {diff} (tol {args.tol:.0e})  {r['detail']}")
    print(f"{sum(r['passed'] for r in results)} of {len(results)} scenarios within {args.tol:g} ({args.expected})")
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump({"expected": args.expected, "tolerance": args.tol, "passed": passed, "scenarios": results}, f, indent=1)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
