# Sourced by bench_compare.sh, bench_batch.sh and bench_rounds.sh once their arguments are read (ROOT, MODEL,
# THREADS and NAME set): our binary, a Python with torch + transformers, and the random vit-mae-base model, each
# checked (or, for the model, written) the same way, with one way to fail.

BIN="${BIN:-$ROOT/target/release/mae-explorer}"
if [[ -z "${PYTHON:-}" ]]; then
  for p in "$ROOT/tools/.venv/bin/python" /work/venv/bin/python python3; do
    if command -v "$p" >/dev/null 2>&1; then PYTHON="$p"; break; fi
  done
fi
die() { echo "$NAME: error: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "our binary '$BIN' is missing or not executable (build it: cargo build --release), or set BIN=..."
"$PYTHON" -c 'import torch, transformers' 2>/dev/null \
  || die "'$PYTHON' cannot import torch + transformers (see tools/README.md, or set PYTHON=...)"
if [[ ! -f "$MODEL/config.json" ]]; then
  echo "== $MODEL absent: writing a random vit-mae-base there"
  "$PYTHON" "$ROOT/tools/bench_torch.py" --make-base "$MODEL" --threads "$THREADS"
fi
