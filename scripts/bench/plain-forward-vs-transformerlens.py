#!/usr/bin/env python3
"""Plain forward, side by side: TransformerLens (in this process) against the workbook (`workbook bench patching`).

GPT-2-small shape with random weights (no download), batch 50 x 16 tokens, full logits, the same thread count for
both, alternating rounds so that drift in the machine's load hits both alike. Needs `torch` and `transformer_lens`
importable, and a Release build of the CLI:

    dotnet build lib/Workbook.Cli -c Release -o /tmp/wb
    python3 scripts/bench/plain-forward-vs-transformerlens.py --wb /tmp/wb/Workbook.Cli --rounds 3 --repeat 5

TransformerLens runs with its default hook flags (what a plain `model(tokens)` does); `--ac-flags` adds the flags
AutoCircuit turns on (use_attn_result, use_split_qkv_input, use_attn_in, use_hook_mlp_in) as a second figure.
Prints one JSON line per round and the medians over rounds; the ratio is TransformerLens over the workbook.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

AC_FLAGS = ("use_attn_result", "use_split_qkv_input", "use_attn_in", "use_hook_mlp_in")


def gpt2_small(flags: bool) -> HookedTransformer:
    cfg = HookedTransformerConfig(n_layers=12, d_model=768, n_ctx=1024, d_head=64, n_heads=12, d_mlp=3072,
                                  d_vocab=50257, act_fn="gelu_new", normalization_type="LN", seed=0)
    model = HookedTransformer(cfg)
    for f in AC_FLAGS:
        setattr(model.cfg, f, flags)
    return model.eval()


def median_ms(fn, repeat: int, warmup: int = 2) -> float:
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wb", required=True, help="path of a Release build of Workbook.Cli")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ac-flags", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {"tl_default": gpt2_small(False)}
    if args.ac_flags:
        models["tl_ac_flags"] = gpt2_small(True)
    tokens = torch.randint(0, 50257, (50, 16), generator=torch.Generator().manual_seed(0))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rounds = []
    for _ in range(args.rounds):
        row = {"load": round(os.getloadavg()[0], 1)}
        for name, model in models.items():
            row[name + "_ms"] = round(median_ms(lambda: model(tokens), args.repeat), 1)
        run = subprocess.run([args.wb, "bench", "patching", "--batch", "50", "--seq", "16", "--repeat", str(args.repeat),
                              "--warmup", "2", "--circuit", "ioi", "--json"], capture_output=True, text=True, env=env)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        bench = json.loads(run.stdout)
        row["workbook_plain_ms"] = round(bench["plain"]["medianMs"], 1)
        row["workbook_patched_ms"] = round(bench["patched"]["medianMs"], 1)
        row["tl_over_workbook"] = round(row["tl_default_ms"] / row["workbook_plain_ms"], 3)
        print(json.dumps(row), flush=True)
        rounds.append(row)
    print("medians over rounds:", json.dumps({k: statistics.median(r[k] for r in rounds) for k in rounds[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
