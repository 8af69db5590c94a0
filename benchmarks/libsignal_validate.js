// Validate one encrypted backup archive with libsignal's MessageBackup.validate, the reference
// the inspect benchmark compares against. Prints one JSON line: {ok, error, unknown_fields}.
//
// Usage: node benchmarks/libsignal_validate.js ARCHIVE ACI [purpose]
// The recovery key is read from the environment variable BENCH_RECOVERY_KEY; the archive must
// use the legacy layout (no forward-secrecy token).
'use strict';

const path = require('path');
const { Aci } = require('@signalapp/libsignal-client');
const MessageBackup = require('@signalapp/libsignal-client/dist/MessageBackup');
const { FileInputStream, fileLength } = require(path.join(__dirname, '..', 'libsignal_bridge', 'file_input_stream'));

async function main() {
  const [archive, aci, purposeName = 'remote'] = process.argv.slice(2);
  const recoveryKey = process.env.BENCH_RECOVERY_KEY;
  if (!archive || !aci || !recoveryKey) {
    console.error('usage: BENCH_RECOVERY_KEY=... node libsignal_validate.js ARCHIVE ACI [remote|transfer|takeout]');
    process.exit(2);
  }
  const purposes = {
    remote: MessageBackup.Purpose.RemoteBackup,
    transfer: MessageBackup.Purpose.DeviceTransfer,
    takeout: MessageBackup.Purpose.TakeoutExport,
  };
  const key = new MessageBackup.MessageBackupKey({
    accountEntropy: recoveryKey,
    aci: Aci.parseFromServiceIdString(aci),
  });
  const outcome = await MessageBackup.validate(
    key, purposes[purposeName], () => new FileInputStream(archive), fileLength(archive));
  console.log(JSON.stringify({ ok: outcome.ok, error: outcome.errorMessage, unknown_fields: outcome.unknownFieldMessages }));
  process.exit(outcome.ok ? 0 : 1);
}

main().catch((error) => {
  console.error(String((error && error.message) || error));
  process.exit(2);
});
