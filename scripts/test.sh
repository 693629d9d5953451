#!/usr/bin/env bash
# Runs every test project of the solution on a fresh machine: installs what the tests need, restores, builds
# Release, tests, and ends with one line "N passed, N failed, N skipped" summed over all test projects.
# Exits non-zero when a test fails, when the build fails, or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need (none yet beyond the .NET SDK the machine has).
APT_PACKAGES=()
if ((${#APT_PACKAGES[@]})); then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
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
