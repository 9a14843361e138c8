#!/usr/bin/env bash
# The window's warm pair against `bench`: model A and model B side by side in the window (--compare), the ratio moved
# as a slow drag does (--ratio-steps), against `bench`'s median for A (attentions kept, as the Attention panel needs)
# and for B (attentions off, as nothing of B's asks for them), alternated over ROUNDS rounds on one machine.
#
#   tools/bench_pair.sh [BINARY] [MODEL_A] [MODEL_B] [ROUNDS]
#
# Defaults: target/release/mae-explorer, /tmp/base, /tmp/base-b, 3. A vit-mae-base-shaped pair:
#   tools/.venv/bin/python tools/bench_torch.py --make-base /tmp/base
#   tools/.venv/bin/python tools/perturb_model.py --model /tmp/base --out /tmp/base-b
# Needs xvfb-run (the window runs under Xvfb's software renderer, as on a headless machine).
set -euo pipefail
app=${1:-target/release/mae-explorer}
a=${2:-/tmp/base}
b=${3:-/tmp/base-b}
rounds=${4:-3}
value() { grep -oE "^$1=[0-9.]+" | head -1 | cut -d= -f2; }
for round in $(seq 1 "$rounds"); do
  home=$(mktemp -d)
  window=$(HOME=$home xvfb-run -a -s "-screen 0 1600x1000x24" "$app" --model "$a" --compare "$b" --device cpu \
    --mask-ratio 0.75 --ratio-steps 10 --window-size 1280x800 --screenshot "$home/pair.png")
  bench_a=$("$app" bench --model "$a" --device cpu --mask-ratio 0.8 --runs 10 --warmup 2 | grep -oE "median_ms=[0-9.]+" | cut -d= -f2)
  bench_b=$("$app" bench --model "$b" --device cpu --mask-ratio 0.8 --runs 10 --warmup 2 --no-attentions \
    | grep -oE "median_ms=[0-9.]+" | cut -d= -f2)
  warm=$(echo "$window" | value warm_forward_ms)
  latency=$(echo "$window" | value latency_ms)
  python3 -c "import sys; w, l, a, b = map(float, sys.argv[1:]); print(f'round $round: window warm pair {w:.1f} ms (latency {l:.1f} ms), bench A {a:.1f} + B {b:.1f} = {a + b:.1f} ms, ratio {w / (a + b):.3f}')" \
    "$warm" "$latency" "$bench_a" "$bench_b"
  rm -rf "$home"
done
