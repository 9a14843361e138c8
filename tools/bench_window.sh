#!/usr/bin/env bash
# The window as a user meets it, against `bench` on the same model, alternated over ROUNDS rounds on one machine:
# launch to first picture (first_picture_ms, next to that forward's forward_ms), then the mask ratio moved ten times
# as a slow drag does (--ratio-steps 10: warm_forward_ms, the median forward, and latency_ms, the median from a move
# to its picture on screen), set against `bench`'s median at ratio 0.8 with attentions kept (the default panels
# need them).
#
#   tools/bench_window.sh [BINARY] [MODEL] [ROUNDS]
#
# Defaults: target/release/mae-explorer, /tmp/base, 3. A vit-mae-base-shaped model:
#   tools/.venv/bin/python tools/bench_torch.py --make-base /tmp/base
# Needs xvfb-run (the window runs under Xvfb's software renderer, as on a headless machine).
set -euo pipefail
app=${1:-target/release/mae-explorer}
model=${2:-/tmp/base}
rounds=${3:-3}
value() { grep -oE "(^| )$1=[0-9.]+" | head -1 | cut -d= -f2; }
for round in $(seq 1 "$rounds"); do
  home=$(mktemp -d)
  window=$(HOME=$home xvfb-run -a -s "-screen 0 1600x1000x24" "$app" --model "$model" --device cpu \
    --mask-ratio 0.75 --ratio-steps 10 --window-size 1280x800 --screenshot "$home/window.png")
  bench=$("$app" bench --model "$model" --device cpu --mask-ratio 0.8 --runs 10 --warmup 2 | value median_ms)
  first=$(echo "$window" | value first_picture_ms)
  warm=$(echo "$window" | value warm_forward_ms)
  latency=$(echo "$window" | value latency_ms)
  python3 -c "import sys; f, w, l, b = map(float, sys.argv[1:]); print(f'round $round: first picture {f:.0f} ms; warm forward {w:.1f} ms = {w / b:.3f}x bench {b:.1f} ms; latency {l:.1f} ms = warm + {l - w:.1f} ms')" \
    "$first" "$warm" "$latency" "$bench"
  rm -rf "$home"
done
