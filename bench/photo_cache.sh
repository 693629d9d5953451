#!/usr/bin/env bash
# A photo folder at 224 px: one-cycle on the small ResNet at batch 32 for at most a minute (peak memory comes early),
# through the on-disk cache (first run builds it, second reuses it) and held in memory, each under /usr/bin/time.
# Prints, per run, the seconds spent loading
# (load_seconds: decoding, or reading the cache's index, until the first batch can be served), the whole run's
# seconds and its peak resident memory, then the cache's size on disk.
#   bash bench/photo_cache.sh PHOTO_DIR [FASTTRAIN_DLL]     (bench/photo_folder.sh makes a photo folder)
# FASTTRAIN_DLL defaults to this checkout's Release build; give another build's to compare versions.
set -euo pipefail
dir=${1:?usage: photo_cache.sh PHOTO_DIR [FASTTRAIN_DLL]}
cd "$(dirname "$0")/.."
cli=${2:-src/MLNet.FastTrain.Cli/bin/Release/net10.0/fasttrain.dll}
[[ -f $cli ]] || dotnet build src/MLNet.FastTrain.Cli -c Release >/dev/null
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
run() { # LABEL, then extra options
  local label=$1 out; shift
  out=$( { /usr/bin/time -f '%M %e' dotnet "$cli" train --data "$dir" --size 224 --model resnet --recipe one-cycle --epochs 1 \
      --batch 32 --time-budget 60s --lr 0.01 --tta false --json "$@" 2>&1 1>&3 | tail -n 1; } 3>&1 )
  /usr/bin/python3 - "$label" "$out" <<'PY'
import json, sys
label, text = sys.argv[1], sys.argv[2].strip().splitlines()
peak_kb, wall = text[-1].split()
result = json.loads(next(l for l in text if l.startswith("{")))
print(f"{label}: load {result['load_seconds']} s, run {float(wall):.1f} s, peak RSS {int(peak_kb) / 1024:.0f} MB, accuracy {result.get('accuracy')}")
PY
}
run "cache, first run (builds it)" --cache "$cache"
run "cache, second run (reuses it)" --cache "$cache"
run "in memory" 
echo "cache on disk: $(du -sh "$cache" | cut -f1) ($(find "$cache" -type f | wc -l) file)"
