#!/usr/bin/env bash
# Compare our forward pass with Hugging Face's, on the same machine, same thread count, in one go.
#
#   tools/bench_compare.sh [--model DIR] [--runs N] [--threads T] [--warmup W] [--mask-ratio R]
#
#   DIR defaults to /tmp/mae-base-random (created with `bench_torch.py --make-base` when absent).
#   Environment: BIN    our binary (default target/release/mae-explorer)
#                PYTHON python with torch + transformers (default tools/.venv/bin/python, then
#                       /work/venv/bin/python, then python3)
#                OURS_EXTRA extra arguments appended to `mae-explorer bench` (word-split)
#
# Our binary must print a line containing `median_ms=<number>`; the first such line is used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL=/tmp/mae-base-random
RUNS=20
THREADS=2
WARMUP=3
RATIO=0.75

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --mask-ratio) RATIO="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_compare: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

NAME=bench_compare
# shellcheck source=tools/bench_setup.sh
source "$ROOT/tools/bench_setup.sh"

# PyTorch runs on the CPU, so ours must too (bench's own default, auto, would take a GPU where the build has one).
echo "== ours: $BIN bench --model $MODEL --device cpu --runs $RUNS --threads $THREADS ${OURS_EXTRA:-}"
# shellcheck disable=SC2086
OURS_OUT="$("$BIN" bench --model "$MODEL" --device cpu --runs "$RUNS" --threads "$THREADS" ${OURS_EXTRA:-} 2>&1)" \
  || { echo "$OURS_OUT" >&2; die "'$BIN bench' failed"; }
echo "$OURS_OUT"
OURS_MS="$(grep -o 'median_ms=[0-9.eE+-]*' <<<"$OURS_OUT" | head -n1 | cut -d= -f2 || true)"
[[ -n "$OURS_MS" ]] || die "no 'median_ms=<x>' in the output of '$BIN bench'"

echo "== HF: bench_torch.py --model $MODEL --runs $RUNS --warmup $WARMUP --threads $THREADS --mask-ratio $RATIO"
TORCH_OUT="$("$PYTHON" "$ROOT/tools/bench_torch.py" --model "$MODEL" --runs "$RUNS" --warmup "$WARMUP" \
  --threads "$THREADS" --mask-ratio "$RATIO" 2>&1)" || { echo "$TORCH_OUT" >&2; die "bench_torch.py failed"; }
echo "$TORCH_OUT"
EAGER_MS="$(grep '^torch eager ' <<<"$TORCH_OUT" | grep -o 'median_ms=[0-9.]*' | cut -d= -f2 || true)"
SDPA_MS="$(grep '^torch sdpa ' <<<"$TORCH_OUT" | grep -o 'median_ms=[0-9.]*' | cut -d= -f2 || true)"
[[ -n "$EAGER_MS" && -n "$SDPA_MS" ]] || die "could not parse bench_torch.py output"

echo
echo "== median forward, batch 1, f32, threads=$THREADS, runs=$RUNS, model=$MODEL"
awk -v o="$OURS_MS" -v e="$EAGER_MS" -v s="$SDPA_MS" 'BEGIN {
  printf "%-28s %10s\n", "", "median_ms"
  printf "%-28s %10.1f\n", "ours (mae-explorer)", o
  printf "%-28s %10.1f\n", "HF eager (+attentions)", e
  printf "%-28s %10.1f\n", "HF sdpa (no attentions)", s
  printf "%-28s %10.2f\n", "ratio ours/eager", o / e
  printf "%-28s %10.2f\n", "ratio ours/sdpa", o / s
}'
