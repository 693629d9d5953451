#!/usr/bin/env bash
# Decoding speed per format on one thread: COUNT photos of a JPEG folder (bench/photo_folder.sh makes one) converted
# by ImageMagick to PNG, lossy WebP (quality 80), lossless WebP and GIF (256 colours), then each folder decoded by
# `fasttrain bench --decode` with the loaders' choice (auto), with our managed decoders where we have one, and with
# Skia, against the reference tools in a shell loop (a process per file, start-up included): djpeg for JPEG,
# dwebp for WebP, ImageMagick for PNG and GIF. Prints "format decoder images/s" lines.
#   bash bench/decode_formats.sh JPEG_DIR [COUNT]
set -euo pipefail
src=${1:?usage: decode_formats.sh JPEG_DIR [COUNT]}; count=${2:-20}
cd "$(dirname "$0")/.."
cli=src/MLNet.FastTrain.Cli/bin/Release/net10.0/fasttrain.dll
[[ -f $cli ]] || dotnet build src/MLNet.FastTrain.Cli -c Release >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{jpg,png,webp,webp-lossless,gif}
find "$src" -maxdepth 1 -name '*.jpg' | sort | head -n "$count" | while read -r f; do
  b=$(basename "$f" .jpg)
  cp "$f" "$work/jpg/$b.jpg"
  /usr/bin/convert "$f" "$work/png/$b.png"
  /usr/bin/convert "$f" -quality 80 "$work/webp/$b.webp"
  /usr/bin/convert "$f" -define webp:lossless=true "$work/webp-lossless/$b.webp"
  /usr/bin/convert "$f" -colors 256 "$work/gif/$b.gif"
done
bench() { dotnet "$cli" bench --decode "$1" --threads 1 --json --decoder "$2" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['images_per_s'])"; }
loop() { # FORMAT_DIR, then the command before the file (ends with the file and a sink)
  local dir=$1 n start; shift
  n=$(find "$dir" -type f | wc -l)
  start=$(date +%s.%N)
  for f in "$dir"/*; do "$@" "$f" >/dev/null 2>&1; done
  /usr/bin/python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.1f}')" "$n" "$start" "$(date +%s.%N)"
}
magick() { /usr/bin/convert "$1" ppm:-; }
webp() { dwebp -quiet "$1" -ppm -o -; }
jpeg() { djpeg -pnm "$1"; }
for fmt in jpg png webp webp-lossless gif; do
  echo "$fmt auto $(bench "$work/$fmt" auto)"
  [[ $fmt == jpg || $fmt == png ]] && echo "$fmt managed $(bench "$work/$fmt" managed)"
  echo "$fmt skia $(bench "$work/$fmt" skia)"
  case $fmt in
    jpg) echo "$fmt djpeg $(loop "$work/$fmt" jpeg)" ;;
    webp*) echo "$fmt dwebp $(loop "$work/$fmt" webp)" ;;
  esac
  echo "$fmt imagemagick $(loop "$work/$fmt" magick)"
done
