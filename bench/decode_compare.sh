#!/usr/bin/env bash
# JPEG decoding speed on one thread, side by side, alternating over ROUNDS rounds: our managed decoder and SkiaSharp
# through `fasttrain bench --decode` (files read into memory first; three timed passes after a warm-up), libjpeg-turbo's
# djpeg and ImageMagick in a shell loop over the same files (one process per file, start-up included). Each at full
# size and reduced for a 224 px and a 64 px target: the loaders reduce in the DCT domain to no less than twice the
# target (448, 128 px a side); djpeg gets the same scale per file (-scale 1/N) and ImageMagick the size hint
# (-define jpeg:size), which picks that scale too.
#   bash bench/decode_compare.sh JPEG_DIR [ROUNDS]      (bench/photo_folder.sh makes a photo folder)
# Prints "round tool target images/s" lines.
set -euo pipefail
dir=${1:?usage: decode_compare.sh JPEG_DIR [ROUNDS]}; rounds=${2:-2}
cd "$(dirname "$0")/.."
cli=src/MLNet.FastTrain.Cli/bin/Release/net10.0/fasttrain.dll
[[ -f $cli ]] || dotnet build src/MLNet.FastTrain.Cli -c Release >/dev/null
list=$(mktemp)
trap 'rm -f "$list"' EXIT
# file, then the scale denominators for 448 and 128 px: the largest of 8, 4, 2 keeping both sides, else 1.
/usr/bin/python3 - "$dir" > "$list" <<'PY'
import glob, os, sys
from PIL import Image
def scale(w, h, side):
    return next((d for d in (8, 4, 2) if -(-w // d) >= side and -(-h // d) >= side), 1)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.jpg"))):
    w, h = Image.open(f).size
    print(f, scale(w, h, 448), scale(w, h, 128))
PY
n=$(wc -l < "$list")
((n > 0)) || { echo "no .jpg files in $dir" >&2; exit 1; }
seconds() { /usr/bin/python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.1f}')" "$n" "$1" "$2"; }
shell_rate() { # TOOL SIDE: images/s of a shell loop
  local start; start=$(date +%s.%N)
  while read -r f d448 d128; do
    local d=1
    [[ $2 == 448 ]] && d=$d448
    [[ $2 == 128 ]] && d=$d128
    if [[ $1 == djpeg ]]; then djpeg -scale "1/$d" -pnm "$f" >/dev/null
    elif [[ $2 == 0 ]]; then /usr/bin/convert "$f" ppm:- >/dev/null
    else /usr/bin/convert -define "jpeg:size=${2}x${2}" "$f" ppm:- >/dev/null
    fi
  done < "$list"
  seconds "$start" "$(date +%s.%N)"
}
bench_rate() { # DECODER SIDE
  dotnet "$cli" bench --decode "$dir" --threads 1 --json --decoder "$1" --min-side "$2" \
    | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['images_per_s'])"
}
echo "# $n JPEGs in $dir, one thread"
for ((r = 1; r <= rounds; r++)); do
  for side in 0 448 128; do
    target=$([[ $side == 0 ]] && echo full || echo "for-$((side / 2))px")
    echo "$r managed $target $(bench_rate managed "$side")"
    echo "$r skia $target $(bench_rate skia "$side")"
    echo "$r djpeg $target $(shell_rate djpeg "$side")"
    echo "$r imagemagick $target $(shell_rate imagemagick "$side")"
  done
done
