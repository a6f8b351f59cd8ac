#!/usr/bin/env python3
"""Summarises a check.sh results folder: summary.json, summary.md (README-ready tables) and a verdict.

usage: summarize.py OUT_FOLDER     (exit 1 when any step failed or any check/scenario failed)
"""
import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(out):
    steps = []
    with open(os.path.join(out, "steps.tsv")) as f:
        for line in f:
            name, rc, seconds = line.rstrip("\n").split("\t")
            steps.append({"name": name, "exitCode": int(rc), "seconds": int(seconds)})
    patch = {os.path.basename(p)[6:-5]: load(p) for p in sorted(glob.glob(os.path.join(out, "patch-*.json")))}
    selfchecks = {os.path.basename(p)[10:-5]: load(p) for p in sorted(glob.glob(os.path.join(out, "selfcheck-*.json")))}
    benches = [b for b in (load(p) for p in sorted(glob.glob(os.path.join(out, "bench-*.json")))) if b]
    benches.sort(key=lambda b: (b["allowTf32"], b["batch"]))

    failed_steps = [s["name"] for s in steps if s["exitCode"] != 0]
    device_name = next((b["deviceName"] for b in benches), None) or next(
        (s["deviceName"] for s in selfchecks.values() if s), "unknown")
    summary = {
        "deviceName": device_name,
        "passed": not failed_steps,
        "failedSteps": failed_steps,
        "steps": steps,
        "scenarios": {m: {"passed": p["passed"], "worst": max((s["maxDifference"] or 0) for s in p["scenarios"]),
                          "count": len(p["scenarios"])} for m, p in patch.items() if p},
        "selfcheck": {m: [{k: c[k] for k in ("name", "outcome", "maxDifference")} for c in s["checks"]]
                      for m, s in selfchecks.items() if s},
        "bench": [{k: b[k] for k in ("device", "deviceName", "batch", "seq", "allowTf32", "patchedOverPlain",
                                     "tokenSpecificOverPlain", "setupSeconds")}
                  | {"plainMs": b["plain"]["medianMs"], "patchedMs": b["patched"]["medianMs"],
                     "tokenSpecificMs": b["patchedTokenSpecific"]["medianMs"]} for b in benches],
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)

    lines = [f"Device: {device_name}", ""]
    lines += ["| check | result |", "|---|---|"]
    for m, p in summary["scenarios"].items():
        lines.append(f"| `patch` scenarios, {m} | {'pass' if p['passed'] else 'FAIL'}: {p['count']} scenarios, "
                     f"max diff {p['worst']:.1e} (tol 1e-4) |")
    for m, checks in summary["selfcheck"].items():
        bad = [c["name"] for c in checks if c["outcome"] == "Fail"]
        worst = max(((c["maxDifference"] or 0) for c in checks if c["name"] != "float32-matmul"), default=0)
        lines.append(f"| `selfcheck` {m} | {'FAIL: ' + ', '.join(bad) if bad else 'pass'} "
                     f"({len(checks)} checks, max diff {worst:.1e}) |")
    for s in steps:
        if s["name"] in ("run-device-vs-cpu", "hooks-device"):
            lines.append(f"| `{s['name']}` | {'pass' if s['exitCode'] == 0 else 'FAIL'} |")
    lines += ["", "| card | batch x seq | TF32 | plain forward (ms) | patched forward (ms) | ratio | token-specific (ms) | ratio |",
              "|---|---|---|---|---|---|---|---|"]
    for b in summary["bench"]:
        lines.append(f"| {b['deviceName']} | {b['batch']} x {b['seq']} | {'on' if b['allowTf32'] else 'off'} | "
                     f"{b['plainMs']:.2f} | {b['patchedMs']:.2f} | {b['patchedOverPlain']:.2f} | "
                     f"{b['tokenSpecificMs']:.2f} | {b['tokenSpecificOverPlain']:.2f} |")
    lines += ["", "Steps: " + ", ".join(f"{s['name']} {'ok' if s['exitCode'] == 0 else 'FAILED (exit %d)' % s['exitCode']}"
                                      f" {s['seconds']}s" for s in steps)]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    print("ALL CHECKS PASSED" if summary["passed"] else f"FAILED: {', '.join(failed_steps)}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
