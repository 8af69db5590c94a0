#!/usr/bin/env bash
# Runs the suite on the emulator the android-emulator-runner action started.
#
# Environment: EMULATOR_PORT (set by the action, default 5554), APK or APK_DIR (a folder with
# exactly one .apk), PROFILE (name or YAML path), RUN_ARGS (extra `backup-harness run`
# arguments), REPORT_DIR, PCAP_FILE. The exit status is the run's: 0 passed, 1 a check failed,
# 3 infrastructure errors only.
set -euo pipefail

serial="emulator-${EMULATOR_PORT:-5554}"
report="${REPORT_DIR:-reports/android}"

apk="${APK:-}"
if [ -z "$apk" ] && [ -n "${APK_DIR:-}" ]; then
  mapfile -t found < <(find "$APK_DIR" -name '*.apk' -type f)
  if [ "${#found[@]}" -ne 1 ]; then
    echo "expected exactly one .apk in $APK_DIR, found ${#found[@]}" >&2
    exit 2
  fi
  apk="${found[0]}"
fi

# Clock control needs a root adbd; google_apis images allow it (Play Store images do not).
adb -s "$serial" root || echo "adb root failed; clock tests will report an infrastructure error" >&2
adb -s "$serial" wait-for-device

args=(run --target android --serial "$serial" --report "$report")
if [ -n "$apk" ]; then
  args+=(--apk "$apk")
fi
if [ -n "${PROFILE:-}" ]; then
  args+=(--profile "$PROFILE")
fi
# NOTE: --pcap is passed only when the run command offers it, so the packet-capture leak scan
# runs in the suite once the option exists there.
if [ -n "${PCAP_FILE:-}" ] && .venv/bin/backup-harness run --help | grep -q -- '--pcap'; then
  args+=(--pcap "$PCAP_FILE")
fi

# shellcheck disable=SC2086  # RUN_ARGS holds several arguments on purpose
exec .venv/bin/backup-harness "${args[@]}" ${RUN_ARGS:-}
