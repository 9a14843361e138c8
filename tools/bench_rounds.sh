#!/usr/bin/env bash
# Our CPU forward pass and matrix products against PyTorch's, sides alternated round by round in one run, with
# every figure as a ratio (the measurement of issue #30; README's "On an Intel Xeon" table comes from it).
#
#   tools/bench_rounds.sh [--model DIR] [--rounds N] [--threads T] [--gflop-per-image 19.4]
#
#   DIR defaults to /tmp/mae-base-random (created with `bench_torch.py --make-base` when absent); N to 3; T to 2.
#   --gflop-per-image: one forward's work at ratio 0.75, for the fraction of the peak (19.4: vit-mae-base).
#   Environment: BIN our binary (default target/release/mae-explorer); PYTHON as for bench_compare.sh.
#
# Each round: torch's 2048³ matmul (the practical peak), then batch 1 (ratio 0.75, attentions kept) ours / HF eager /
# ours with MAE_CPU_KERNEL=avx2, batch 16 without attentions ours / HF eager, and `--shapes` at batch 1 and 16 ours /
# torch's F.linear. Other VMs share these cores (one figure can move 40 % between rounds), so the summary gives
# every round's ratio, and per shape the ratio of the medians over the rounds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL=/tmp/mae-base-random
ROUNDS=3
THREADS=2
GFLOP=19.4

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --gflop-per-image) GFLOP="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_rounds: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

NAME=bench_rounds
# shellcheck source=tools/bench_setup.sh
source "$ROOT/tools/bench_setup.sh"

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
ours() { "$BIN" bench --model "$MODEL" --device cpu --threads "$THREADS" "$@" 2>/dev/null; }
torch() { "$PYTHON" "$ROOT/tools/bench_torch.py" --model "$MODEL" --threads "$THREADS" "$@" 2>/dev/null; }
median_of() { grep -o 'median_ms=[0-9.]*' | head -n1 | cut -d= -f2; }

grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /' || true
echo "flags: $(grep -m1 -o -w 'avx2\|fma\|avx512f\|avx512bw\|avx512dq\|avx512vl\|avx512_vnni\|avx512_bf16\|avx512_fp16\|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  {
    torch --runs 3 --modes eager --matmul | grep -o 'matmul_2048_gflops=[0-9.]*' | sed 's/^/peak /'
    echo "ours b1 $(ours --runs 20 | median_of)"
    echo "hf b1 $(torch --runs 20 --modes eager | median_of)"
    echo "avx2 b1 $(MAE_CPU_KERNEL=avx2 ours --runs 20 | median_of)"
    echo "ours b16 $(ours --runs 5 --batch 16 --no-attentions | median_of)"
    echo "hf b16 $(torch --runs 5 --batch 16 --modes eager-noatt | median_of)"
    ours --shapes | sed 's/^/ours shapes b1 /'
    torch --shapes | sed 's/^/torch shapes b1 /'
    ours --shapes --batch 16 | sed 's/^/ours shapes b16 /'
    torch --shapes --batch 16 | sed 's/^/torch shapes b16 /'
  } | tee -a "$LOG"
done

"$PYTHON" - "$LOG" "$GFLOP" <<'EOF'
import collections, math, re, statistics, sys

values = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if m := re.match(r"peak matmul_2048_gflops=([\d.]+)", line):
        values["peak"].append(float(m[1]))
    elif m := re.match(r"(ours|hf|avx2) (b1|b16) ([\d.]+)", line):
        values[(m[1], m[2])].append(float(m[3]))
    elif m := re.match(r"(ours|torch) shapes (b1|b16) shape=(\S+) gflops=([\d.]+)", line):
        values[(m[1], m[2], m[3])].append(float(m[4]))

def rounds(xs):
    return " ".join(f"{x:.2f}" for x in xs)

peak = values["peak"]
print(f"\n== summary over {len(peak)} rounds; torch 2048³ matmul peak (GFLOP/s): {rounds(peak)}")
per_image = float(sys.argv[2])  # one forward's GFLOP at ratio 0.75 (--gflop-per-image)
gflop = {"b1": per_image, "b16": 16 * per_image}
for batch in ("b1", "b16"):
    ours, hf = values[("ours", batch)], values[("hf", batch)]
    print(f"{batch}: ours / HF eager per round: {rounds([o / h for o, h in zip(ours, hf)])}; "
          f"ours / peak: {rounds([gflop[batch] / (o / 1000) / p for o, p in zip(ours, peak)])}")
print(f"b1 with MAE_CPU_KERNEL=avx2 / HF eager per round: "
      f"{rounds([a / h for a, h in zip(values[('avx2', 'b1')], values[('hf', 'b1')])])}")
for batch in ("b1", "b16"):
    ratios = []
    for key in sorted(k for k in values if isinstance(k, tuple) and len(k) == 3 and k[0] == "ours" and k[1] == batch):
        shape = key[2]
        ours, theirs = values[key], values[("torch", batch, shape)]
        ratio = statistics.median(ours) / statistics.median(theirs)
        ratios.append(ratio)
        print(f"{batch} shape={shape} ours/torch F.linear {ratio:.2f} (per round {rounds([o / t for o, t in zip(ours, theirs)])})")
    print(f"{batch} shapes: geometric mean {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}, lowest {min(ratios):.2f}")
EOF
