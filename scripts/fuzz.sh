#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read users' files, with SharpFuzz and AFL++.
#   scripts/fuzz.sh TARGET|all SECONDS [OUTDIR]
# TARGET: png jpeg bmp pnm image idx csv ftm checkpoint onnx (fuzz/FuzzTargets.cs). Each campaign starts from
# fuzz/corpus/TARGET and writes AFL++'s queue, crashes and hangs under OUTDIR/TARGET (default artifacts/fuzz).
# Prints executions, crashes and hangs per target; exits 1 when a campaign found a crash or a hang. Copy an
# interesting input into fuzz/corpus/TARGET/ to keep it as a regression test (FuzzCorpusTests replays every file).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target or all}; seconds=${2:?seconds per target}; out=${3:-artifacts/fuzz}
targets=(png jpeg bmp pnm image idx csv ftm checkpoint onnx)
[[ $target == all ]] || targets=("$target")

command -v afl-fuzz >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null; }
export PATH="$PATH:$HOME/.dotnet/tools"
command -v sharpfuzz >/dev/null 2>&1 || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
dotnet publish fuzz/MLNet.FastTrain.Fuzz -c Release -o "$bin" -v q -nologo >/dev/null
# Instrument our own assemblies (not the harness, not the framework or third-party ones).
for dll in "$bin"/MLNet.FastTrain.dll "$bin"/MLNet.FastTrain.*.dll; do
  [[ $(basename "$dll") == MLNet.FastTrain.Fuzz.dll ]] && continue
  sharpfuzz "$dll" >/dev/null
done

# AFL++ runs `dotnet` (not an AFL-instrumented binary) and reads coverage from SharpFuzz's shared memory.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_QUIET=1
found=0
for t in "${targets[@]}"; do
  rm -rf "$out/$t"; mkdir -p "$out/$t"
  afl-fuzz -i "fuzz/corpus/$t" -o "$out/$t" -V "$seconds" -t 10000 -m none -- dotnet "$bin/MLNet.FastTrain.Fuzz.dll" "$t" >"$out/$t/afl.log" 2>&1 || true
  stats="$out/$t/default/fuzzer_stats"
  if [[ ! -f $stats ]]; then echo "$t: afl-fuzz did not start (see $out/$t/afl.log)"; found=1; continue; fi
  execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
  crashes=$(awk -F' *: *' '$1=="saved_crashes"||$1=="unique_crashes"{print $2}' "$stats" | head -1)
  hangs=$(awk -F' *: *' '$1=="saved_hangs"||$1=="unique_hangs"{print $2}' "$stats" | head -1)
  paths=$(awk -F' *: *' '$1=="corpus_count"||$1=="paths_total"{print $2}' "$stats" | head -1)
  echo "$t: ${seconds} s, ${execs} executions, ${paths} inputs in the queue, ${crashes} crashes, ${hangs} hangs"
  if ((crashes > 0 || hangs > 0)); then found=1; fi
done
exit "$found"
