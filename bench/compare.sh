#!/usr/bin/env bash
# Side-by-side comparison with the PyTorch reference workload (../shared/anchors/pytorch_fmnist.py).
# Runs our `fasttrain bench` and the reference alternately, ROUNDS times, on the same machine and prints the ratio
# of medians for each measurement, so machine noise hits both sides alike.
#
#   bash bench/compare.sh [--rounds 3] [--steps 60] [--threads 2] [--batch 128] [--gemm-only]
#
# Needs Debian's python3-torch, libopenblas0-pthread and dataset-fashion-mnist (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 steps=60 threads=2 batch=128 gemm_only=0
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --gemm-only) gemm_only=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

anchors=${ANCHORS_DIR:-../shared/anchors}
[ -f "$anchors/pytorch_fmnist.py" ] || { echo "no reference script at $anchors/pytorch_fmnist.py (set ANCHORS_DIR)" >&2; exit 1; }
missing=()
for p in python3-torch libopenblas0-pthread dataset-fashion-mnist jq; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; fi

dotnet build src/MLNet.FastTrain.Cli -c Release -v q --nologo >/dev/null
ours=(dotnet src/MLNet.FastTrain.Cli/bin/Release/net10.0/fasttrain.dll bench)
theirs=(/usr/bin/python3 "$anchors/pytorch_fmnist.py")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
peak_kb() { awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$1"; }

# torch.set_num_threads does not reach OpenBLAS's own thread pool, which torch.mm runs on: without
# OPENBLAS_NUM_THREADS a "one-thread" torch.mm uses every core.
torch_gemm() {
  OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 /usr/bin/python3 - "$1" <<'PY'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3): a @ b
n = 20; t = time.perf_counter()
for _ in range(n): a @ b
print(round(2 * 1024 ** 3 * n / (time.perf_counter() - t) / 1e9, 1))
PY
}

for ((r = 1; r <= rounds; r++)); do
  for model in simple resnet; do
    ((gemm_only)) && break
    /usr/bin/time -v "${ours[@]}" --model "$model" --threads "$threads" --batch "$batch" --steps "$steps" --json \
      >"$tmp/ours-$model-$r.json" 2>"$tmp/ours-$model-$r.time"
    # OpenBLAS's own pool held to the same thread count, as in torch_gemm below: otherwise it starts a thread per
    # core next to torch's OpenMP threads and the two oversubscribe the cores.
    OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads /usr/bin/time -v "${theirs[@]}" --model "$model" --threads "$threads" --batch "$batch" --steps "$steps" \
      >"$tmp/theirs-$model-$r.json" 2>"$tmp/theirs-$model-$r.time"
  done
  "${ours[@]}" --gemm 1024 --threads 1 --json | jq .gflops >>"$tmp/ours-gemm1"
  torch_gemm 1 >>"$tmp/theirs-gemm1"
  "${ours[@]}" --gemm 1024 --threads 2 --json | jq .gflops >>"$tmp/ours-gemm2"
done

printf '%-34s %12s %12s %8s\n' measurement ours pytorch ratio
row() { printf '%-34s %12s %12s %8s\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')"; }
for model in simple resnet; do
  ((gemm_only)) && break
  for key in train_images_per_s infer_images_per_s; do
    o=$(cat "$tmp"/ours-$model-*.json | jq ".$key" | median)
    t=$(cat "$tmp"/theirs-$model-*.json | jq ".$key" | median)
    row "$model $key" "$o" "$t"
  done
  o=$(for f in "$tmp"/ours-$model-*.time; do peak_kb "$f"; done | median)
  t=$(for f in "$tmp"/theirs-$model-*.time; do peak_kb "$f"; done | median)
  row "$model peak RSS (KiB, lower is better)" "$o" "$t"
  echo "$model allocated_bytes_per_step (ours): $(cat "$tmp"/ours-$model-*.json | jq .allocated_bytes_per_step | median)"
done
row "gemm 1024^3 GFLOP/s, 1 thread" "$(median <"$tmp/ours-gemm1")" "$(median <"$tmp/theirs-gemm1")"
g1=$(median <"$tmp/ours-gemm1"); g2=$(median <"$tmp/ours-gemm2")
echo "ours gemm 2 threads / 1 thread: $(awk -v a="$g2" -v b="$g1" 'BEGIN { printf "%.2f", a / b }')"
