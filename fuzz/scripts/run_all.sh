#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 600) seconds, one after another, at the lowest CPU
# priority and with a single libFuzzer process. Logs go to $LOG_DIR (default /tmp/offersync-fuzz-logs).
#
#   fuzz/scripts/run_all.sh            # all eleven targets, 10 minutes each
#   SECONDS_EACH=60 fuzz/scripts/run_all.sh parse_affise config
#
# Extra environment passed through: OFFERSYNC_FUZZ_IGNORE, OFFERSYNC_FUZZ_SAME_ORIGIN (README.md).
# FUZZ_TARGET_DIR=dir builds into that target dir (cargo fuzz --target-dir), e.g. to fuzz a
# snapshot of a commit (a copy of the tree with this fuzz/ in it) reusing fuzz/target's deps.
set -u
cd "$(dirname "$0")/.."

SECONDS_EACH=${SECONDS_EACH:-600}
LOG_DIR=${LOG_DIR:-/tmp/offersync-fuzz-logs}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(parse_trackly parse_offerslook parse_s2s parse_affise parse_everflow parse_hasoffers parse_trackier parse_offer18 parse_cake parse_generic config)
fi
mkdir -p "$LOG_DIR"

# The bundled SQLite trips a false ASan ODR report at start-up (two function-local `aiOff`
# tables); it is not a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
export CARGO_BUILD_JOBS=1

for t in "${TARGETS[@]}"; do
    case "$t" in
        config) dict=dict/toml.dict; max_len=16384 ;;
        parse_cake) dict=dict/xml.dict; max_len=8192 ;;
        *) dict=dict/json.dict; max_len=8192 ;;
    esac
    mkdir -p "corpus/$t"
    log="$LOG_DIR/$t.log"
    echo "== $t: $(date -u +%FT%TZ) start, log $log"
    start=$(date +%s)
    nice -n 19 cargo +nightly fuzz run ${FUZZ_TARGET_DIR:+--target-dir "$FUZZ_TARGET_DIR"} \
        "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -dict="$dict" -max_len="$max_len" -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    echo "== $t: $(date -u +%FT%TZ) end, rc=$rc, wall $((end - start)) s"
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::|^Done [0-9]+ runs|panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20
done
