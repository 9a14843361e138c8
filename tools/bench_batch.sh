#!/usr/bin/env bash
# Batched throughput, ours against Hugging Face eager, side by side on the same threads (issue 18):
#
#   tools/bench_batch.sh [--model DIR] [--batch 16] [--rounds 3] [--runs 3] [--threads 2] [--mask-ratio 0.75]
#                        [--gflop-per-image 19.4]
#
#   Each round runs ours (`mae-explorer bench --batch N --no-attentions`, then with attentions), then torch
#   (`bench_torch.py --batch N --modes eager-noatt,eager --matmul`), so the two sides alternate and a neighbour's
#   load hits both. Per round it prints images/s of each side, ours/HF with attentions off and on, and
#   images/s × GFLOP per image against torch's own 2048³ matmul GFLOP/s in that round (the practical peak).
#   --gflop-per-image: the forward's work, 19.4 for vit-mae-base at ratio 0.75 (encoder on 49+1 tokens,
#   decoder on 197).
#   DIR defaults to /tmp/mae-base-random (written with `bench_torch.py --make-base` when absent).
#   Environment: BIN (default target/release/mae-explorer), PYTHON (default tools/.venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL=/tmp/mae-base-random
BATCH=16
ROUNDS=3
RUNS=3
THREADS=2
RATIO=0.75
GFLOP=19.4

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --mask-ratio) RATIO="$2"; shift 2 ;;
    --gflop-per-image) GFLOP="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_batch: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

NAME=bench_batch
# shellcheck source=tools/bench_setup.sh
source "$ROOT/tools/bench_setup.sh"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_tile)$' | tr '\n' ' ')"
field() { grep -o "$1=[0-9.eE+-]*" | head -n1 | cut -d= -f2; }

printf '%-6s %10s %10s %10s %10s %8s %8s %9s %9s\n' round ours_off ours_on hf_off hf_on off_x on_x peak_gf ours/peak
for round in $(seq 1 "$ROUNDS"); do
  common=(bench --model "$MODEL" --device cpu --batch "$BATCH" --runs "$RUNS" --warmup 1 --threads "$THREADS"
          --mask-ratio "$RATIO")
  ours_off="$("$BIN" "${common[@]}" --no-attentions | field images_per_s)"
  ours_on="$("$BIN" "${common[@]}" | field images_per_s)"
  torch_out="$("$PYTHON" "$ROOT/tools/bench_torch.py" --model "$MODEL" --batch "$BATCH" --runs "$RUNS" --warmup 1 \
    --threads "$THREADS" --mask-ratio "$RATIO" --modes eager-noatt,eager --matmul)"
  hf_off="$(grep '^torch eager-noatt ' <<<"$torch_out" | field images_per_s)"
  hf_on="$(grep '^torch eager ' <<<"$torch_out" | field images_per_s)"
  peak="$(field matmul_2048_gflops <<<"$torch_out")"
  [[ -n "$ours_off" && -n "$ours_on" && -n "$hf_off" && -n "$hf_on" && -n "$peak" ]] || die "could not parse a figure"
  awk -v r="$round" -v oo="$ours_off" -v on="$ours_on" -v ho="$hf_off" -v hn="$hf_on" -v p="$peak" -v g="$GFLOP" \
    'BEGIN { printf "%-6s %10.2f %10.2f %10.2f %10.2f %8.2f %8.2f %9.1f %9.2f\n", r, oo, on, ho, hn, oo/ho, on/hn, p, oo*g/p }'
done
echo "(images/s at batch $BATCH, ratio $RATIO, $THREADS threads; off/on = attentions; x = ours/HF eager;"
echo " ours/peak = ours_off images/s x $GFLOP GFLOP / torch 2048^3 matmul GFLOP/s)"
