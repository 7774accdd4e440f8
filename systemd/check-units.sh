#!/usr/bin/env bash
# Check the systemd units against an offersync binary:
#   - `systemd-analyze verify` on offersync.service, offersync-once.service and offersync-once.timer
#     (any message it prints, even a warning such as an unknown or misspelt setting, fails);
#   - `systemd-analyze security --offline=yes` on both services: the overall exposure of each
#     must be at most 1.0 (MAX_EXPOSURE, in tenths: 10).
# The units name /usr/local/bin/offersync; they are checked from a temporary copy that names the
# binary given instead. Needs systemd-analyze >= 250 (for --offline); no running systemd needed.
#
# Usage: systemd/check-units.sh path/to/offersync      (e.g. target/debug/offersync)
set -euo pipefail

MAX_EXPOSURE=${MAX_EXPOSURE:-10} # tenths: 10 = 1.0

die() {
  echo "check-units: $*" >&2
  exit 2
}

[ $# -eq 1 ] || die "usage: $0 path/to/offersync"
command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze not found (install systemd)"
[ -f "$1" ] && [ -x "$1" ] || die "$1: not an executable file"

bin=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
# The path goes into ExecStart= lines: keep it to characters that need no unit-file quoting.
case $bin in
  *[!A-Za-z0-9/._+-]*) die "$bin: use a path made of letters, digits and / . _ + - only" ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
units=(offersync.service offersync-once.service offersync-once.timer)
services=(offersync.service offersync-once.service)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in "${units[@]}"; do
  [ -f "$here/$u" ] || die "$here/$u: missing"
  sed "s|/usr/local/bin/offersync|$bin|g" "$here/$u" >"$tmp/$u"
done

export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat SYSTEMD_LOG_COLOR=0

echo "== systemd-analyze verify ${units[*]}"
status=0
out=$(cd "$tmp" && systemd-analyze verify --man=no "${units[@]/#/$tmp/}" 2>&1) || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out" | sed "s|$tmp/|$here/|g" >&2
  echo "check-units: systemd-analyze verify failed (exit $status, or it printed the messages above)" >&2
  exit 1
fi
echo "ok"

failed=0
for s in "${services[@]}"; do
  echo "== systemd-analyze security --offline=yes $s"
  status=0
  out=$(systemd-analyze security --offline=yes --no-pager "$tmp/$s" 2>&1) || status=$?
  # "→ Overall exposure level for offersync.service: 1.0 OK 🙂"
  level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' | tail -n 1)
  if [ "$status" -ne 0 ] || [ -z "$level" ]; then
    printf '%s\n' "$out" >&2
    echo "check-units: systemd-analyze security failed on $s (exit $status)" >&2
    exit 1
  fi
  # The findings that still count, then the overall level.
  printf '%s\n' "$out" | grep -E '^✗|^- ' || true
  tenths=$((10#${level%.*} * 10 + 10#${level#*.}))
  if [ "$tenths" -gt "$MAX_EXPOSURE" ]; then
    echo "$s: overall exposure $level: above $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)): FAIL" >&2
    failed=1
  else
    echo "$s: overall exposure $level (at most $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10))): ok"
  fi
done
exit "$failed"
