#!/usr/bin/env bash
# Runs a published crate's own test suite with and without taskleak:
#
#   scripts/real-suite.sh NAME VERSION [extra cargo args, e.g. --features full]
#
# 1. Gets NAME-VERSION into the cargo registry (a scratch crate depending on
#    it, then `cargo fetch`) and copies its package twice into
#    target/real-suites/NAME-VERSION/: `plain` (untouched: the baseline, whose
#    failures are not taskleak's) and `checked`, where
#    `cargo taskleak adopt --taskleak-path <this repository>` marks every test.
#    Each copy is made a workspace of its own; both use one Cargo.lock.
# 2. For both copies, builds and runs `cargo test` twice: stable, and with
#    RUSTFLAGS="--cfg tokio_unstable" (each mode its own target directory).
#    A crate's rules in scripts/real-suite-configs/NAME.toml, if any, become
#    the checked copy's taskleak.toml.
# 3. Runs `cargo taskleak --json … --junit …` on the checked copy, on the
#    tokio_unstable build of step 2.
# 4. Writes every log, and summary.txt: tests passed/failed/ignored and wall
#    times per copy and mode, and the tests failing only in the checked copy.
#
# A step whose `.rc` file exists is not run again (the runs are long): delete
# the work directory, or set FRESH=1, to start over; RECHECK=1 starts the
# checked copy over (a new copy, adopted and run again: after a change to
# taskleak), keeping the plain copy's runs and both copies' build caches;
# REGATE=1 runs only the gate again; BENCH=N times both copies' tests (N
# alternated rounds per mode) for the summary's overhead lines. Every run is
# bounded by `timeout` (BUILD_TIMEOUT, TEST_TIMEOUT, in seconds).
# BASELINE_ONLY=1 stops after the plain copy's runs.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 NAME VERSION [extra cargo args, e.g. --features full]" >&2
    exit 2
fi
name=$1
version=$2
shift 2
extra=("$@")

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$repo/target/real-suites/$name-$version
BUILD_TIMEOUT=${BUILD_TIMEOUT:-2400}
TEST_TIMEOUT=${TEST_TIMEOUT:-1800}
registry_src=${CARGO_HOME:-$HOME/.cargo}/registry/src

if [[ ${FRESH:-0} == 1 ]]; then
    rm -rf "$work"
fi
if [[ ${RECHECK:-0} == 1 && -d $work/plain ]]; then
    rm -rf "$work/checked" "$work/logs"/adopt.* "$work/logs"/checked-* "$work/logs"/gate*
    cp -r "$work/plain" "$work/checked"
fi
if [[ ${REGATE:-0} == 1 ]]; then
    rm -f "$work/logs"/gate*
fi
mkdir -p "$work/logs"
log() { echo "==> $*" >&2; }

# --- the package, twice --------------------------------------------------
if [[ ! -d $work/plain ]]; then
    log "fetching $name $version"
    fetch=$work/fetch
    mkdir -p "$fetch/src"
    : >"$fetch/src/lib.rs"
    cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "real-suite-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$name = "=$version"

[workspace]
EOF
    timeout 600 cargo fetch --manifest-path "$fetch/Cargo.toml"
    package=$(ls -d "$registry_src"/*/"$name-$version" | head -n 1)
    if [[ ! -d $package ]]; then
        echo "error: $name-$version is not in $registry_src after cargo fetch" >&2
        exit 1
    fi
    for copy in plain checked; do
        cp -r "$package" "$work/$copy.tmp"
        chmod -R u+w "$work/$copy.tmp"
        # A standalone workspace, not a member of this repository's.
        if ! grep -q '^\[workspace\]' "$work/$copy.tmp/Cargo.toml"; then
            printf '\n[workspace]\n' >>"$work/$copy.tmp/Cargo.toml"
        fi
        mv "$work/$copy.tmp" "$work/$copy"
    done
    # One set of dependency versions for both copies.
    (cd "$work/plain" && timeout 600 cargo generate-lockfile)
    cp "$work/plain/Cargo.lock" "$work/checked/Cargo.lock"
fi

# --- the runs --------------------------------------------------------------
# run_suite COPY MODE: builds, then runs, the copy's tests in MODE
# (`stable` or `unstable`); logs/COPY-MODE-{build,test}.{log,rc,secs}.
run_suite() {
    local copy=$1 mode=$2
    local base=$work/logs/$copy-$mode
    local flags=""
    [[ $mode == unstable ]] && flags="--cfg tokio_unstable"
    [[ -f $base-test.rc ]] && return 0
    local target=$work/target-$copy-$mode
    for step in build test; do
        local args=(test --no-fail-fast "${extra[@]}")
        local limit=$TEST_TIMEOUT
        if [[ $step == build ]]; then
            args=(test --no-run "${extra[@]}")
            limit=$BUILD_TIMEOUT
        fi
        log "$copy, $mode: cargo ${args[*]}"
        local start=$SECONDS rc=0
        (cd "$work/$copy" && RUSTFLAGS=$flags CARGO_TARGET_DIR=$target CARGO_TERM_COLOR=never \
            timeout --kill-after=30 "$limit" cargo "${args[@]}") >"$base-$step.log" 2>&1 </dev/null || rc=$?
        echo $((SECONDS - start)) >"$base-$step.secs"
        echo "$rc" >"$base-$step.rc"
        log "$copy, $mode: $step exit $rc in $((SECONDS - start)) s"
        # A build that failed leaves nothing to run.
        if [[ $step == build && $rc != 0 ]]; then
            echo "build failed" >"$base-test.log"
            echo 0 >"$base-test.secs"
            echo "$rc" >"$base-test.rc"
            return 0
        fi
    done
}

# The baseline first: it needs nothing from this repository.
for mode in stable unstable; do
    run_suite plain "$mode"
done
if [[ ${BASELINE_ONLY:-0} == 1 ]]; then
    log "BASELINE_ONLY=1: stopping after the plain copy's runs"
    exit 0
fi

# --- taskleak on the checked copy ----------------------------------------
# The gate in a target directory of its own: built without RUSTFLAGS, it
# would otherwise rebuild what ./scripts/test.sh keeps in target/.
gate_target=$repo/target/real-suites/gate-build
gate=$gate_target/debug/cargo-taskleak
# Always (a no-op when up to date): REGATE=1 must run the current gate.
log "building cargo-taskleak"
(cd "$repo" && CARGO_TARGET_DIR=$gate_target timeout "$BUILD_TIMEOUT" cargo build -p cargo-taskleak)
if [[ ! -f $work/logs/adopt.rc ]]; then
    log "cargo taskleak adopt on the checked copy"
    set +e
    (cd "$work/checked" && "$gate" taskleak adopt --taskleak-path "$repo") >"$work/logs/adopt.log" 2>&1
    echo $? >"$work/logs/adopt.rc"
    set -e
    # A crate's documented rules (docs/real-world.md), as its users would
    # write them in `taskleak.toml`.
    config=$repo/scripts/real-suite-configs/$name.toml
    if [[ -f $config ]]; then
        cp "$config" "$work/checked/taskleak.toml"
        echo "taskleak.toml: $config" >>"$work/logs/adopt.log"
    fi
    cat "$work/logs/adopt.log"
fi

for mode in stable unstable; do
    run_suite checked "$mode"
done

# The gate, on the checked copy's tokio_unstable build (same RUSTFLAGS, same
# target directory: nothing is rebuilt).
if [[ ! -f $work/logs/gate.rc ]]; then
    log "checked: cargo taskleak"
    start=$SECONDS
    rc=0
    (cd "$work/checked" && RUSTFLAGS="--cfg tokio_unstable" CARGO_TERM_COLOR=never \
        timeout --kill-after=30 "$TEST_TIMEOUT" "$gate" taskleak \
        --target-dir "$work/target-checked-unstable" \
        --json "$work/logs/gate.json" --junit "$work/logs/gate.xml" \
        -- "${extra[@]}") >"$work/logs/gate.log" 2>&1 </dev/null || rc=$?
    echo $((SECONDS - start)) >"$work/logs/gate.secs"
    echo "$rc" >"$work/logs/gate.rc"
    cp "$work/target-checked-unstable/taskleak-output.log" "$work/logs/gate-output.log" 2>/dev/null || true
fi

# --- overhead (BENCH=N) --------------------------------------------------------
# The tests (doctests left out: they are the same in both copies), built
# already, run as `cargo test --tests` in plain and checked copies
# alternately, N rounds per mode, the order swapped every round; the median
# of the per-round ratios checked/plain. logs/bench-MODE.txt.
bench_suite() {
    local mode=$1 rounds=$2 flags=""
    [[ $mode == unstable ]] && flags="--cfg tokio_unstable"
    local out=$work/logs/bench-$mode.txt
    : >"$out"
    for ((round = 1; round <= rounds; round++)); do
        local order=(plain checked)
        ((round % 2 == 0)) && order=(checked plain)
        for copy in "${order[@]}"; do
            local start end
            start=$(date +%s%N)
            (cd "$work/$copy" && RUSTFLAGS=$flags CARGO_TARGET_DIR=$work/target-$copy-$mode \
                timeout --kill-after=30 "$TEST_TIMEOUT" cargo test -q --offline --no-fail-fast --tests "${extra[@]}") \
                >/dev/null 2>&1 </dev/null || true
            end=$(date +%s%N)
            echo "$round $copy $(((end - start) / 1000000))" >>"$out"
        done
    done
}

# `plain P ms, checked C ms (medians), ratio R (median of N rounds)`.
bench_line() {
    local file=$1 n
    median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    n=$(awk '{ print $1 }' "$file" | sort -u | wc -l)
    printf 'plain %s ms, checked %s ms (medians), ratio %s (median of %s alternated rounds)' \
        "$(awk '$2 == "plain" { print $3 }' "$file" | median)" \
        "$(awk '$2 == "checked" { print $3 }' "$file" | median)" \
        "$(awk '{ ms[$1, $2] = $3; r[$1] = 1 } END { for (k in r) printf "%.3f\n", ms[k, "checked"] / ms[k, "plain"] }' "$file" | median)" \
        "$n"
}

if [[ ${BENCH:-0} -gt 0 ]]; then
    for mode in stable unstable; do
        log "overhead, $mode: $BENCH alternated rounds"
        bench_suite "$mode" "$BENCH"
    done
fi

# --- the summary -----------------------------------------------------------
# Failed tests of a test log, as `binary: name`, sorted.
failed_tests() {
    awk '
        /^ *Running / { bin = $0; sub(/.*\(/, "", bin); sub(/\).*/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin) }
        /^ *Doc-tests / { bin = "doctest " $2 }
        /^test .* \.\.\. FAILED$/ { name = $0; sub(/^test /, "", name); sub(/ \.\.\. FAILED$/, "", name); print bin ": " name }
    ' "$1" | sort -u
}

# `passed failed ignored`, summed over the log's `test result:` lines, and
# the test binaries' own time (their `finished in`, doc-tests left out: they
# are the same in both copies and mostly compile time).
counts() {
    awk '
        /^ *Doc-tests / { doc = 1 }
        /^ *Running / { doc = 0 }
        /^test result: / && !doc { t += $NF }
        /^test result: / {
            for (i = 1; i <= NF; i++) {
                if ($(i + 1) ~ /^passed;?$/) p += $i
                if ($(i + 1) ~ /^failed;?$/) f += $i
                if ($(i + 1) ~ /^ignored;?$/) g += $i
            }
        }
        END { printf "%d passed, %d failed, %d ignored; binaries %.1f s", p, f, g, t }
    ' "$1"
}

summary=$work/summary.txt
{
    echo "$name $version  (cargo test ${extra[*]})"
    echo "adopt: exit $(cat "$work/logs/adopt.rc")"
    grep -E '^(files changed|tests marked|tests skipped)' "$work/logs/adopt.log" || true
    echo
    for mode in stable unstable; do
        for copy in plain checked; do
            base=$work/logs/$copy-$mode
            printf '%-8s %-9s build %5s s (exit %s)  tests %5s s (exit %s)  %s\n' "$copy" "$mode" \
                "$(cat "$base-build.secs")" "$(cat "$base-build.rc")" \
                "$(cat "$base-test.secs")" "$(cat "$base-test.rc")" "$(counts "$base-test.log")"
        done
    done
    echo "gate              $(cat "$work/logs/gate.secs") s (exit $(cat "$work/logs/gate.rc"))"
    for mode in stable unstable; do
        if [[ -s $work/logs/bench-$mode.txt ]]; then
            echo "overhead ($mode, cargo test --tests): $(bench_line "$work/logs/bench-$mode.txt")"
        fi
    done
    grep -E '^totals:' "$work/logs/gate.log" || true
    for mode in stable unstable; do
        echo
        echo "failing in checked only ($mode):"
        comm -13 <(failed_tests "$work/logs/plain-$mode-test.log") \
            <(failed_tests "$work/logs/checked-$mode-test.log") | sed 's/^/  /'
        echo "failing in plain only ($mode):"
        comm -23 <(failed_tests "$work/logs/plain-$mode-test.log") \
            <(failed_tests "$work/logs/checked-$mode-test.log") | sed 's/^/  /'
    done
} >"$summary"
cat "$summary"
echo "logs: $work/logs" >&2
