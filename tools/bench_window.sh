#!/usr/bin/env bash
# The window as a user meets it, against `bench` on the same model(s), alternated over ROUNDS rounds on one machine:
# launch to first picture (first_picture_ms), then the mask ratio moved ten times as a slow drag does
# (--ratio-steps 10: warm_forward_ms, the median forward, and latency_ms, the median from a move to its picture on
# screen), set against `bench`'s median at ratio 0.8 for A with attentions kept (the default panels need them).
# With MODEL_B, A and B run side by side (--compare) and the warm pair is set against A's median plus B's
# (attentions off, as nothing of B's asks for them).
#
#   tools/bench_window.sh [BINARY] [MODEL_A] [ROUNDS] [MODEL_B]
#
# Defaults: target/release/mae-explorer, /tmp/base, 3, none. A vit-mae-base-shaped pair:
#   tools/.venv/bin/python tools/bench_torch.py --make-base /tmp/base
#   tools/.venv/bin/python tools/perturb_model.py --model /tmp/base --out /tmp/base-b
# Needs xvfb-run (the window runs under Xvfb's software renderer, as on a headless machine).
set -euo pipefail
app=${1:-target/release/mae-explorer}
a=${2:-/tmp/base}
rounds=${3:-3}
b=${4:-}
value() { grep -oE "(^| )$1=[0-9.]+" | head -1 | cut -d= -f2; }
median() { "$app" bench --device cpu --mask-ratio 0.8 --runs 10 --warmup 2 "$@" | value median_ms; }
for round in $(seq 1 "$rounds"); do
  home=$(mktemp -d)
  window=$(HOME=$home xvfb-run -a -s "-screen 0 1600x1000x24" "$app" --model "$a" ${b:+--compare "$b"} --device cpu \
    --mask-ratio 0.75 --ratio-steps 10 --window-size 1280x800 --screenshot "$home/window.png")
  bench=$(median --model "$a")
  if [ -n "$b" ]; then bench=$(python3 -c "import sys; print(sum(map(float, sys.argv[1:])))" "$bench" "$(median --model "$b" --no-attentions)"); fi
  python3 -c "import sys; f, w, l, b = map(float, sys.argv[1:5]); print(f'round $round: first picture {f:.0f} ms; warm forward{sys.argv[5]} {w:.1f} ms = {w / b:.3f}x bench {b:.1f} ms; latency {l:.1f} ms = warm + {l - w:.1f} ms')" \
    "$(echo "$window" | value first_picture_ms)" "$(echo "$window" | value warm_forward_ms)" \
    "$(echo "$window" | value latency_ms)" "$bench" "${b:+ pair}"
  rm -rf "$home"
done
