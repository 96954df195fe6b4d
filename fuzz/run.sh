#!/usr/bin/env bash
# Coverage-guided fuzzing of pyredcache._core.loads with libFuzzer, under
# AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   bash fuzz/run.sh [RUNS]      RUNS inputs (default 1000000)
#
# Builds fuzz/build/fuzz_loads (clang; csrc/*.c compiled into the binary with
# coverage instrumentation and the sanitizers, the interpreter embedded),
# seeds fuzz/corpus/ from fuzz/make_seeds.py, runs RUNS inputs and prints
# how many ran and how many crashed.  Crashing inputs are saved as
# fuzz/crash-<sha1> (also leak-, oom-, timeout-); replay one with
#   fuzz/build/fuzz_loads fuzz/crash-<sha1>
# (with the same environment as below).  Exits 1 when anything crashed.
#
# Environment: CLANG (default clang), PYTHON (default .venv/bin/python, else
# python3), FUZZ_JOBS (parallel workers, default 1), FUZZ_ARGS (more
# libFuzzer flags).
set -euo pipefail

RUNS="${1:-1000000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CC="${CLANG:-clang}"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY="$ROOT/.venv/bin/python"
else
    PY=python3
fi
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz/run.sh: $CC is missing (Debian/Ubuntu: apt-get install -y clang)" >&2
    exit 2
fi

BUILD="$HERE/build"
CORPUS="$HERE/corpus"
mkdir -p "$BUILD/obj" "$CORPUS"

pyvar() { "$PY" -c "import sys, sysconfig; print(sysconfig.get_config_var('$1') or '')"; }
INCLUDEPY="$(pyvar INCLUDEPY)"
LIBDIR="$(pyvar LIBDIR)"
LDVERSION="$(pyvar LDVERSION)"
PYHOME="$("$PY" -c 'import sys; print(sys.base_prefix)')"
PURELIB="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined
     -fno-omit-frame-pointer -g -O1)
CFLAGS=(-std=gnu11 -Wall -Wextra -Wno-missing-field-initializers
        -I"$ROOT/csrc" -I"$INCLUDEPY" $(pkg-config --cflags hiredis))

echo "fuzz/run.sh: building $BUILD/fuzz_loads with $CC"
objs=()
for src in "$ROOT"/csrc/*.c; do
    obj="$BUILD/obj/$(basename "$src" .c).o"
    "$CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
    objs+=("$obj")
done
"$CC" "${CFLAGS[@]}" "${SAN[@]}" -c "$HERE/fuzz_loads.c" -o "$BUILD/obj/fuzz_loads.o"
"$CC" "${SAN[@]}" -fsanitize=fuzzer "$BUILD/obj/fuzz_loads.o" "${objs[@]}" \
    -L"$LIBDIR" -lpython"$LDVERSION" -Wl,-rpath,"$LIBDIR" \
    $(pkg-config --libs hiredis) -lm -ldl -lpthread -o "$BUILD/fuzz_loads"

"$PY" "$HERE/make_seeds.py" "$CORPUS"

# Crash files present before this run are not counted again.
shopt -s nullglob
before=("$HERE"/crash-* "$HERE"/leak-* "$HERE"/oom-* "$HERE"/timeout-*)

export PYTHONHOME="$PYHOME"
export PYTHONPATH="$ROOT:$PURELIB"
export PYTHONMALLOC=malloc          # every object allocation visible to ASan
export PYTHONDONTWRITEBYTECODE=1
# The embedded interpreter is never finalised, so leak reports at exit are
# noise; a real leak shows as growth past -rss_limit_mb (libFuzzer's OOM).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

LOG="$BUILD/fuzz.log"
JOBS="${FUZZ_JOBS:-1}"
set +e
if [ "$JOBS" -gt 1 ]; then
    per=$(( (RUNS + JOBS - 1) / JOBS ))
    for j in $(seq 1 "$JOBS"); do
        "$BUILD/fuzz_loads" -runs="$per" -max_len=4096 -rss_limit_mb=2048 \
            -dict="$HERE/msgpack.dict" -artifact_prefix="$HERE/" -print_final_stats=1 \
            -seed="$j" ${FUZZ_ARGS:-} "$CORPUS" >"$LOG.$j" 2>&1 &
    done
    wait
    cat "$LOG".* >"$LOG"
else
    "$BUILD/fuzz_loads" -runs="$RUNS" -max_len=4096 -rss_limit_mb=2048 \
        -dict="$HERE/msgpack.dict" -artifact_prefix="$HERE/" -print_final_stats=1 \
        ${FUZZ_ARGS:-} "$CORPUS" >"$LOG" 2>&1
fi
status=$?
set -e

after=("$HERE"/crash-* "$HERE"/leak-* "$HERE"/oom-* "$HERE"/timeout-*)
new=()
for f in "${after[@]}"; do
    seen=0
    for g in "${before[@]}"; do [ "$f" = "$g" ] && seen=1; done
    [ $seen = 0 ] && new+=("$f")
done

ran=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$LOG" | awk '{s += $2} END {print s + 0}')
secs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$LOG" | awk '{if ($5 > m) m = $5} END {print m + 0}')
cov=$(grep -Eo 'cov: [0-9]+' "$LOG" | tail -1 | awk '{print $2}')
echo "fuzz/run.sh: $ran inputs run in ${secs}s (libFuzzer exit status $status, edge coverage ${cov:-?}); ${#new[@]} crashes"
for f in "${new[@]}"; do
    echo "  crash: $f"
done
if [ ${#new[@]} -gt 0 ] || [ $status -ne 0 ]; then
    echo "fuzz/run.sh: see $LOG" >&2
    tail -n 40 "$LOG" >&2
    exit 1
fi
