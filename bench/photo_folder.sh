#!/usr/bin/env bash
# Makes a synthetic folder of phone-sized photos (bench/make_photo_folder.py) from the real photographs Debian ships
# in python3-skimage (extracted from the .deb, not installed).
#   bash bench/photo_folder.sh OUT_DIR COUNT [make_photo_folder.py options]
set -euo pipefail
out=${1:?usage: photo_folder.sh OUT_DIR COUNT [options]}; count=${2:?count}; shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-numpy python3-pil >/dev/null; }
(cd "$work" && apt-get download python3-skimage >/dev/null 2>&1 && dpkg-deb -x python3-skimage_*.deb x)
data="$work/x/usr/lib/python3/dist-packages/skimage/data"
mkdir -p "$work/src"
for p in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg hubble_deep_field.jpg retina.jpg; do cp "$data/$p" "$work/src/"; done
/usr/bin/python3 "$here/make_photo_folder.py" "$work/src" "$out" "$count" "$@"
