#!/usr/bin/env bash
# Builds the decoder fixtures from real photographs: the sample photos Debian ships in python3-skimage (extracted
# from the .deb, not installed), encoded by libjpeg-turbo's cjpeg in every JPEG mode the decoder supports and by
# ImageMagick in every PNG colour type / bit depth, BMP (RLE too), PNM, WebP and GIF variant; each next to the
# reference decode (djpeg for JPEG, at full size and at 1/2, 1/4 and 1/8 with -scale; dwebp for WebP; ImageMagick for
# the rest). Writes
# OUT_DIR/manifest.tsv: file, reference, and "exact", "psnr", "scaleN" (djpeg -scale 1/N), "webp" (lossy, dwebp),
# "cmyk" (ImageMagick's sRGB) or "scale16".
# Needs: libjpeg-turbo-progs, imagemagick, webp, python3-pil (scripts/test.sh installs them).
set -euo pipefail
out=${1:?usage: make_image_fixtures.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
IM=/usr/bin/convert

(cd "$work" && apt-get download python3-skimage >/dev/null 2>&1 && dpkg-deb -x python3-skimage_*.deb x)
data="$work/x/usr/lib/python3/dist-packages/skimage/data"
manifest="$out/manifest.tsv"
: > "$manifest"
add() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$manifest"; }

photos=(astronaut chelsea coffee motorcycle_left camera)
for p in "${photos[@]}"; do
  "$IM" "$data/$p.png" -strip "$work/$p.ppm"
done
# An odd size exercises partial blocks and MCUs at the right and bottom edges.
"$IM" "$data/chelsea.png" -strip -crop 123x77+40+30 +repage "$work/odd.ppm"
"$IM" "$data/camera.png" -strip -colorspace gray "$work/camera.pgm"

# JPEG: every subsampling, baseline and progressive, restart markers, optimised tables, qualities; gray.
for p in astronaut chelsea coffee motorcycle_left odd; do
  for s in 1x1 2x1 2x2 1x2; do
    cjpeg -quality 90 -sample "$s" "$work/$p.ppm" > "$out/$p-$s.jpg"
    cjpeg -quality 90 -sample "$s" -progressive "$work/$p.ppm" > "$out/$p-$s-prog.jpg"
  done
  cjpeg -quality 75 -sample 2x2 -restart 1 "$work/$p.ppm" > "$out/$p-rst.jpg"
  cjpeg -quality 50 -sample 2x2 -optimize -progressive -restart 3B "$work/$p.ppm" > "$out/$p-q50-rst-prog.jpg"
  cjpeg -quality 98 -sample 1x1 -dct float "$work/$p.ppm" > "$out/$p-q98.jpg"
  cjpeg -quality 85 -grayscale "$work/$p.ppm" > "$out/$p-gray.jpg"
  cjpeg -quality 85 -grayscale -progressive "$work/$p.ppm" > "$out/$p-gray-prog.jpg"
done
cjpeg -quality 90 "$work/camera.pgm" > "$out/camera-gray.jpg"
for f in "$out"/*.jpg; do
  djpeg -pnm "$f" > "${f%.jpg}.ref.pnm"
  add "$(basename "$f")" "$(basename "${f%.jpg}").ref.pnm" psnr
  # DCT-domain downscaling: libjpeg-turbo's reduced inverse DCTs at 1/2, 1/4 and 1/8 of the size.
  for n in 2 4 8; do
    djpeg -scale "1/$n" -pnm "$f" > "${f%.jpg}.ref-1of$n.pnm"
    add "$(basename "$f")" "$(basename "${f%.jpg}").ref-1of$n.pnm" "scale$n"
  done
done

# PNG: every colour type and bit depth, interlaced or not; references are ImageMagick's 8-bit decodes.
png() { # name, then ImageMagick options
  local name=$1; shift
  "$IM" "$@" "$out/$name.png"
  "$IM" "$out/$name.png" -depth 8 "$out/$name.ref.ppm"
  add "$name.png" "$name.ref.ppm" exact
}
# 16-bit gray: ImageMagick 6.9 truncates these to 8 bits (31800 becomes 123) where libpng's scaling rounds (124),
# so their reference is ImageMagick's lossless 16-bit PGM, which the test reduces with libpng's formula.
png16gray() {
  local name=$1; shift
  "$IM" "$@" "$out/$name.png"
  "$IM" "$out/$name.png" -depth 16 "$out/$name.ref16.pgm"
  add "$name.png" "$name.ref16.pgm" scale16
}
for p in chelsea odd; do
  src="$work/$p.ppm"
  for il in None PNG; do
    png "$p-rgb8-$il" "$src" -interlace $il -define png:color-type=2 -define png:bit-depth=8
    png "$p-rgb16-$il" "$src" -interlace $il -depth 16 -define png:color-type=2 -define png:bit-depth=16
    png "$p-rgba8-$il" "$src" -interlace $il -alpha set -channel A -fx '0.5+0.5*i/w' +channel -define png:color-type=6 -define png:bit-depth=8
    png "$p-rgba16-$il" "$src" -interlace $il -depth 16 -alpha set -channel A -fx 'j/h' +channel -define png:color-type=6 -define png:bit-depth=16
    # ImageMagick picks the palette's bit depth itself (8, 4 and 2 bits here); 1-bit palettes are written below.
    for n in 200 16 4 2; do
      png "$p-pal$n-$il" "$src" -interlace $il -colors $n -define png:color-type=3
    done
    png "$p-paltrns-$il" "$src" -interlace $il -colors 64 -transparent "$("$IM" "$src" -colors 64 -format '%[pixel:p{10,10}]' info:)" -define png:color-type=3
    for d in 1 2 4 8; do
      png "$p-gray$d-$il" "$src" -interlace $il -colorspace gray -depth $d -define png:color-type=0 -define png:bit-depth=$d
    done
    png "$p-graya8-$il" "$src" -interlace $il -colorspace gray -alpha set -channel A -fx 'i/w' +channel -define png:color-type=4 -define png:bit-depth=8
    png16gray "$p-gray16-$il" "$src" -interlace $il -colorspace gray -depth 16 -define png:color-type=0 -define png:bit-depth=16
    png16gray "$p-graya16-$il" "$src" -interlace $il -colorspace gray -depth 16 -alpha set -channel A -fx 'i/w' +channel -define png:color-type=4 -define png:bit-depth=16
  done
done

# A 1-bit palette PNG (ImageMagick will not write one): the photo quantised to two colours, packed by hand.
for p in chelsea odd; do
  "$IM" "$work/$p.ppm" -colors 2 +dither "$work/$p-2.ppm"
  /usr/bin/python3 - "$work/$p-2.ppm" "$out/$p-pal1bit.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
fields, pos = [], 2
while len(fields) < 3:
    while data[pos] in b" \t\r\n": pos += 1
    end = pos
    while data[end] not in b" \t\r\n": end += 1
    fields.append(int(data[pos:end])); pos = end
w, h, _ = fields
px = data[pos + 1:]
colours = sorted({px[i:i + 3] for i in range(0, len(px), 3)})
index = {c: i for i, c in enumerate(colours)}
rows = b""
for y in range(h):
    bits = [index[px[3 * (y * w + x):3 * (y * w + x) + 3]] for x in range(w)] + [0] * 7
    rows += b"\0" + bytes(sum(bits[x + k] << (7 - k) for k in range(8)) for x in range(0, w, 8))
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 3, 0, 0, 0))
png += chunk(b"PLTE", b"".join(colours)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PY
  "$IM" "$out/$p-pal1bit.png" -depth 8 "$out/$p-pal1bit.ref.ppm"
  add "$p-pal1bit.png" "$p-pal1bit.ref.ppm" exact
done

# BMP: 24-bit, 32-bit (bit fields), 8-bit palette; bottom-up as written.
for p in chelsea odd; do
  "$IM" "$work/$p.ppm" -type TrueColor "BMP3:$out/$p-24.bmp"
  "$IM" "$work/$p.ppm" -alpha set -type TrueColorAlpha "BMP:$out/$p-32.bmp"
  "$IM" "$work/$p.ppm" -colors 256 -type Palette -compress None "BMP3:$out/$p-8.bmp"
  for b in 24 32 8; do
    "$IM" "$out/$p-$b.bmp" -depth 8 "$out/$p-$b.bmp.ref.ppm"
    add "$p-$b.bmp" "$p-$b.bmp.ref.ppm" exact
  done
done

# BMP with 1- and 4-bit palettes, and run-length encoded: RLE8 from ImageMagick; RLE4, which ImageMagick reads but
# does not write, re-encoded from its 4-bit BMP (runs, and literal stretches in absolute mode).
for p in chelsea odd; do
  "$IM" "$work/$p.ppm" -colors 16 -type Palette -compress None "BMP3:$out/$p-4.bmp"
  "$IM" "$work/$p.ppm" -colors 2 -type Palette -compress None "BMP3:$out/$p-1.bmp"
  "$IM" "$work/$p.ppm" -colors 256 -type Palette -compress RLE "BMP3:$out/$p-rle8.bmp"
  /usr/bin/python3 - "$out/$p-4.bmp" "$out/$p-rle4.bmp" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
offset, = struct.unpack_from("<I", d, 10)
w, h = struct.unpack_from("<ii", d, 18)
stride = (w * 4 + 31) // 32 * 4
out = bytearray()
for r in range(h):
    row = d[offset + r * stride: offset + (r + 1) * stride]
    px = [(row[x // 2] >> (4 if x % 2 == 0 else 0)) & 15 for x in range(w)]
    x = 0
    while x < w:
        n = 1
        while x + n < w and n < 255 and px[x + n] == px[x]: n += 1
        if n >= 2:
            out += bytes([n, px[x] << 4 | px[x]]); x += n; continue
        lit = 1
        while x + lit < w and lit < 255 and px[x + lit] != px[x + lit - 1]: lit += 1
        if lit < 3:
            out += bytes([1, px[x] << 4]); x += 1; continue
        vals = px[x:x + lit] + [0]
        data = bytes(vals[i] << 4 | vals[i + 1] for i in range(0, lit, 2))
        out += bytes([0, lit]) + data + (b"\0" if len(data) % 2 else b""); x += lit
    out += b"\0\0"
out += b"\0\1"
header = d[:offset]
struct.pack_into("<I", header, 30, 2)            # BI_RLE4
struct.pack_into("<I", header, 34, len(out))     # image size
struct.pack_into("<I", header, 2, offset + len(out))
open(sys.argv[2], "wb").write(header + out)
PY
  for b in 4 1 rle8 rle4; do
    "$IM" "$out/$p-$b.bmp" -depth 8 "$out/$p-$b.bmp.ref.ppm"
    add "$p-$b.bmp" "$p-$b.bmp.ref.ppm" exact
  done
done

# CMYK JPEGs as Adobe writes them (inks inverted): YCCK from ImageMagick (Adobe transform 2), plain CMYK from Pillow
# (transform 0); the references are ImageMagick's conversions to sRGB.
for p in chelsea odd; do
  "$IM" "$work/$p.ppm" -colorspace CMYK -quality 90 "$out/$p-ycck.jpg"
  /usr/bin/python3 -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("CMYK").save(sys.argv[2], quality=90)' "$work/$p.ppm" "$out/$p-cmyk.jpg"
  for k in ycck cmyk; do
    "$IM" "$out/$p-$k.jpg" -colorspace sRGB -depth 8 "$out/$p-$k.jpg.ref.ppm"
    add "$p-$k.jpg" "$p-$k.jpg.ref.ppm" cmyk
  done
done

# WebP, lossy and lossless, written by ImageMagick (libwebp) and decoded for reference by libwebp's dwebp; GIF, one
# frame and two (we read the first), decoded for reference by ImageMagick.
for p in chelsea odd; do
  "$IM" "$work/$p.ppm" -quality 80 "$out/$p-lossy.webp"
  "$IM" "$work/$p.ppm" -define webp:lossless=true "$out/$p-lossless.webp"
  for k in lossy lossless; do
    dwebp -quiet "$out/$p-$k.webp" -ppm -o "$out/$p-$k.webp.ref.ppm"
  done
  add "$p-lossy.webp" "$p-lossy.webp.ref.ppm" webp
  add "$p-lossless.webp" "$p-lossless.webp.ref.ppm" exact
  "$IM" "$work/$p.ppm" -colors 256 "$out/$p.gif"
  "$IM" "$work/$p.ppm" \( "$work/$p.ppm" -negate \) -colors 64 "$out/$p-anim.gif"
  "$IM" "$out/$p.gif" -depth 8 "$out/$p.gif.ref.ppm"
  "$IM" "$out/$p-anim.gif[0]" -depth 8 "$out/$p-anim.gif.ref.ppm"
  add "$p.gif" "$p.gif.ref.ppm" exact
  add "$p-anim.gif" "$p-anim.gif.ref.ppm" exact
done

# PGM/PPM: 8 and 16 bit.
for p in chelsea odd; do
  "$IM" "$work/$p.ppm" -depth 8 "$out/$p-8.ppm"
  "$IM" "$work/$p.ppm" -depth 16 "$out/$p-16.ppm"
  "$IM" "$work/$p.ppm" -colorspace gray -depth 16 "$out/$p-16.pgm"
  "$IM" "$work/$p.ppm" -colorspace gray -depth 8 "$out/$p-8.pgm"
  for f in "$p-8.ppm" "$p-16.ppm" "$p-8.pgm"; do
    "$IM" "$out/$f" -depth 8 "$out/$f.ref.ppm"
    add "$f" "$f.ref.ppm" exact
  done
  add "$p-16.pgm" "$p-16.pgm" scale16
done
echo "$(wc -l < "$manifest") fixtures in $out"
