#!/usr/bin/env bash
# Run `kiln bench` and its PyTorch / JAX peers back to back, in one run on one machine,
# and print kiln's times against each peer's (benches/peers/compare.py).
#
#   benches/peers/run.sh                 # 2^24-element optimizer steps, batch 128, 20 reps
#   SIZE=1048576 REPS=5 benches/peers/run.sh    # a quick look
#
# Environment (all optional):
#   SIZE       elements of the optimizer steps and of the 20-op chain (default 16777216)
#   REPS       timed repetitions per case (default 20)      BATCH  MLP batch (default 128)
#   XENT_ROWS  rows of the [rows, 1000] cross-entropy (default 4096)
#   OPTIM      optimizers (default sgd,adam,vsgd)
#   SUITE      optim, step, fusion or all (default all; kiln's step suite runs the mlp model)
#   NO_BUILD=1 use the existing target/release/kiln instead of `cargo build --release`
#   THREADS    threads for kiln (KILN_NUM_THREADS), PyTorch and JAX (default: all cores)
#   PEERS_DIR  where the peers are installed (default .cache/peers, gitignored), one folder
#              per peer put on PYTHONPATH:
#                pip install --target .cache/peers/torch torch
#                pip install --target .cache/peers/jax 'jax[cpu]'
#              A peer that is not installed is reported and skipped.
#   NO_COMPILE=1  skip torch.compile (its cold compiles take minutes on 2 cores)
#   OUT        folder for the JSON files (default runs/peers-<UTC time>, gitignored)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE="${SIZE:-16777216}"
REPS="${REPS:-20}"
BATCH="${BATCH:-128}"
XENT_ROWS="${XENT_ROWS:-4096}"
OPTIM="${OPTIM:-sgd,adam,vsgd}"
SUITE="${SUITE:-all}"
THREADS="${THREADS:-$(nproc)}"
PEERS_DIR="${PEERS_DIR:-$PWD/.cache/peers}"
OUT="${OUT:-runs/peers-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $THREADS"
echo "== load before: $(cat /proc/loadavg)"
[[ "${NO_BUILD:-}" == "1" ]] || cargo build --release -p kiln
common=(--suite "$SUITE" --size "$SIZE" --batch "$BATCH" --xent-rows "$XENT_ROWS" --reps "$REPS")

echo "== kiln (load $(cut -d' ' -f1-3 /proc/loadavg))"
KILN_NUM_THREADS="$THREADS" ./target/release/kiln bench --model mlp --optim "$OPTIM" \
    "${common[@]}" --json "$OUT/kiln.json"

peer_path() { [[ -d "$PEERS_DIR/$1" ]] && echo "$PEERS_DIR/$1" || echo ""; }
extra=()
[[ "${NO_COMPILE:-}" == "1" ]] && extra+=(--no-compile)
echo "== PyTorch (load $(cut -d' ' -f1-3 /proc/loadavg))"
PYTHONPATH="$(peer_path torch)" OMP_NUM_THREADS="$THREADS" \
    python3 benches/peers/peers_torch.py --optim "$OPTIM" --threads "$THREADS" "${common[@]}" \
    "${extra[@]}" --json "$OUT/torch.json"
echo "== JAX (load $(cut -d' ' -f1-3 /proc/loadavg))"
PYTHONPATH="$(peer_path jax)" python3 benches/peers/peers_jax.py --optim "$OPTIM" --threads "$THREADS" \
    "${common[@]}" --json "$OUT/jax.json"
echo "== load after: $(cat /proc/loadavg)"
echo
python3 benches/peers/compare.py "$OUT/kiln.json" "$OUT/torch.json" "$OUT/jax.json" | tee "$OUT/compare.md"
echo "(JSON and this table in $OUT)"
