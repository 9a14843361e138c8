#!/usr/bin/env bash
# The checks of `mae-explorer eval` that are measurements, not tests (issue 18): peak RSS over many images against
# over a few, shards covering every image once, and runs killed with SIGKILL and resumed giving the uninterrupted
# file. Images are copies of the repository's sample pictures (and a truncated one), so nothing is downloaded.
#
#   tools/eval_checks.sh [BINARY] [MODEL] [IMAGES]     (defaults: target/release/mae-explorer, demo, 2000)
#
# Run from the repository root. Prints peak_rss_kib for 20 and for IMAGES images and their difference,
# shards=ok, the uninterrupted run's time, the rows each kill left, and resume=ok (after KILLS kills at random
# moments; set KILLS=, default 5), or says what differed.
set -euo pipefail
binary=${1:-target/release/mae-explorer}
model=${2:-demo}
count=${3:-2000}
kills=${KILLS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sources=(assets/chelsea.png tests/fixtures/photos/rocket.jpg tests/fixtures/preprocess/large.png
    tests/fixtures/preprocess/cmyk.jpg tests/fixtures/preprocess/tall.png tests/fixtures/bad/images/truncated.png)
# Optional: one large photo-sized picture in both folders, so the peak includes decoding one (ImageMagick).
if convert assets/chelsea.png -resize '4000x3000!' "$work/big.png" 2>/dev/null && [ -s "$work/big.png" ]; then
    sources+=("$work/big.png")
fi
make_folder() { # folder, count
    mkdir -p "$1"
    for ((i = 0; i < $2; i++)); do
        local source=${sources[$((i % ${#sources[@]}))]}
        cp "$source" "$1/$(printf %05d "$i").${source##*.}"
    done
}
make_folder "$work/few" 20
make_folder "$work/many" "$count"

# Peak resident memory in KiB of one eval run (GNU time's %M), the run's own output discarded.
peak_rss() { # folder, out
    /usr/bin/time -f '%M' -o "$work/rss" "$binary" eval --model "$model" --images "$1" --seeds 0,1 \
        --out "$2" >/dev/null 2>&1
    cat "$work/rss"
}
few=$(peak_rss "$work/few" "$work/few.csv")
many=$(peak_rss "$work/many" "$work/many.csv")
echo "peak_rss_kib images=20: $few"
echo "peak_rss_kib images=$count: $many"
echo "peak_rss_growth_mib: $(((many - few) / 1024))"

# Shards: concatenated (headers after the first dropped), the same rows as one run.
for part in 0 1 2; do
    "$binary" eval --model "$model" --images "$work/many" --seeds 0,1 --shard "$part/3" \
        --out "$work/shard$part.csv" >/dev/null 2>&1
done
{ cat "$work/shard0.csv"; tail -n +2 "$work/shard1.csv"; tail -n +2 "$work/shard2.csv"; } | sort >"$work/shards.sorted"
sort "$work/many.csv" >"$work/many.sorted"
if cmp -s "$work/shards.sorted" "$work/many.sorted"; then echo "shards=ok"; else echo "shards=DIFFER"; fi

# SIGKILL at random moments, then --resume until done: the file must equal the uninterrupted run's byte for byte.
seconds=$(/usr/bin/time -f '%e' "$binary" eval --model "$model" --images "$work/many" --seeds 0,1 \
    --out "$work/timed.csv" 2>&1 >/dev/null | tail -1)
echo "uninterrupted_run_s: $seconds ($count images × 2 seeds)"
for ((k = 0; k < kills; k++)); do
    flag=--resume
    "$binary" eval --model "$model" --images "$work/many" --seeds 0,1 --out "$work/killed.csv" $flag \
        >/dev/null 2>&1 &
    sleep "$(awk -v s="$seconds" -v r="$RANDOM" 'BEGIN { printf "%.2f", s * (0.05 + 0.15 * r / 32768) }')"
    kill -9 $! 2>/dev/null || true
    wait $! 2>/dev/null || true
    echo "killed: $(($(wc -l <"$work/killed.csv") - 1)) rows written so far"
done
"$binary" eval --model "$model" --images "$work/many" --seeds 0,1 --out "$work/killed.csv" --resume \
    >/dev/null 2>&1
if cmp -s "$work/killed.csv" "$work/many.csv"; then echo "resume=ok (after $kills kills)"; else
    echo "resume=DIFFER"; diff <(sort "$work/killed.csv") "$work/many.sorted" | head
fi
