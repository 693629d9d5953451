#!/usr/bin/env bash
# Runs every test project of the solution on a fresh machine: installs what the tests need, restores, builds
# Release, tests, and ends with one line "N passed, N failed, N skipped" summed over all test projects.
# Exits non-zero when a test fails, when the build fails, or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need beyond the .NET SDK: PyTorch (Debian's python3-torch) to export the ResNets the ONNX import
# tests read; Node.js with npm to run ONNX Runtime (onnxruntime-node) on the models we export; libjpeg-turbo's
# cjpeg/djpeg, ImageMagick, libwebp's dwebp and Pillow to encode real photographs in every format and decode the references;
# Open MPI's mpirun and libmpi for the data-parallel tests.
missing=()
command -v djpeg >/dev/null 2>&1 && command -v cjpeg >/dev/null 2>&1 || missing+=(libjpeg-turbo-progs)
[[ -x /usr/bin/convert ]] || missing+=(imagemagick)
command -v dwebp >/dev/null 2>&1 || missing+=(webp)
/usr/bin/python3 -c "import PIL" >/dev/null 2>&1 || missing+=(python3-pil)
/usr/bin/python3 -c "import torch" >/dev/null 2>&1 || missing+=(python3-torch)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Decoder fixtures: real photographs encoded every way, each with its reference decode.
if [[ ! tests/images/generated/manifest.tsv -nt tests/images/make_image_fixtures.sh ]]; then
  apt-get update -qq
  rm -rf tests/images/generated
  bash tests/images/make_image_fixtures.sh tests/images/generated
fi
# ONNX fixtures: torchvision-layout ResNet-18/34 exported by torch.onnx.export, with torch's outputs.
if [[ ! tests/onnx/generated/resnet34.output.bin -nt tests/onnx/make_resnet_onnx.py ]]; then
  /usr/bin/python3 -W ignore tests/onnx/make_resnet_onnx.py tests/onnx/generated --depth 18 --depth 34
fi
# ONNX Runtime for node; --ignore-scripts skips its install script, which would fetch GPU binaries.
if [[ ! -d tests/onnx/node_modules/onnxruntime-node ]]; then
  (cd tests/onnx && npm install --ignore-scripts --no-package-lock --no-audit --no-fund)
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet restore MLNet.FastTrain.sln
dotnet build MLNet.FastTrain.sln -c Release --no-restore

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test MLNet.FastTrain.sln -c Release --no-build 2>&1 | tee "$log" || status=$?

# The kernel tests again on the narrower vector paths a user's machine may take: without AVX-512, and without
# AVX2 (the runtime's switches turn the wider Vector512/Vector256 paths off).
for switch in DOTNET_EnableAVX512 DOTNET_EnableAVX2; do
  echo "== kernel tests with ${switch}=0"
  env "${switch}=0" dotnet test tests/MLNet.FastTrain.Engine.Tests -c Release --no-build --filter "Category=Kernel" 2>&1 | tee -a "$log" || status=$?
done

# Each test project prints: "Passed!  - Failed:     0, Passed:   210, Skipped:     0, Total:   210, ..."
read -r passed failed skipped < <(grep -E '(Passed|Failed)! +- Failed: ' "$log" | awk -F'[:,]' '
  { f += $2; p += $4; s += $6 } END { printf "%d %d %d\n", p, f, s }')
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if ((status != 0 || failed > 0)); then exit 1; fi
if ((passed == 0)); then echo "no test ran" >&2; exit 1; fi
