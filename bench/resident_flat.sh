#!/usr/bin/env bash
# Whether a training run's resident memory stays flat: trains 10 epochs and compares the resident size at the end of
# every epoch after the first with the first's. Fails (exit 1) when one is more than 5 % above it.
#   [MODEL=resnet9] bench/resident_flat.sh [extra fasttrain train options...]     e.g. --data <folder>
# (the network is MODEL, default the small ResNet: --model cannot be given twice)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release src/MLNet.FastTrain.Cli -v q -nologo > /dev/null
out=$(src/MLNet.FastTrain.Cli/bin/Release/net10.0/fasttrain train --model "${MODEL:-resnet}" --recipe one-cycle --epochs 10 --lr 0.01 --tta false --json "$@")
python3 - "$out" <<'PY'
import json, sys
run = json.loads(sys.argv[1])
rss = run["resident_mb_per_epoch"]
first = rss[0]
worst = max(rss[1:], default=first)
print(f"{run['model']}, batch {run['batch_size']}, {run['train_images']} images, accuracy {run['accuracy']:.4f}")
print("resident MB at the end of each epoch:", " ".join(f"{r:.0f}" for r in rss))
print(f"largest after the first: {worst:.0f} MB, {100 * (worst / first - 1):+.1f} % of the first's {first:.0f} MB")
sys.exit(0 if worst <= first * 1.05 else 1)
PY
