// Backup oracle ops over files on disk: libsignal's archive validator, its frame-by-frame
// validator and ComparableBackup. Files are streamed, so large archives work.
//
// `purpose` is "remote" (RemoteBackup, the default), "transfer" (DeviceTransfer) or "takeout"
// (TakeoutExport). Keys come either as `recovery_key` + `aci` (UUID string) or as `backup_key`
// + `backup_id` (base64), each with an optional base64 `forward_secrecy_token`.
'use strict';

const fs = require('fs');
const { Aci } = require('@signalapp/libsignal-client');
const { BackupForwardSecrecyToken } = require('@signalapp/libsignal-client/dist/AccountKeys');
const MessageBackup = require('@signalapp/libsignal-client/dist/MessageBackup');
const { FileInputStream, fileLength } = require('../file_input_stream');

const { ComparableBackup, MessageBackupKey, OnlineBackupValidator, Purpose } = MessageBackup;

class InvalidInput extends Error {}

const PURPOSES = { remote: Purpose.RemoteBackup, transfer: Purpose.DeviceTransfer, takeout: Purpose.TakeoutExport };
const READ_BYTES = 1 << 20;

function purposeOf(name) {
  const purpose = PURPOSES[name || 'remote'];
  if (purpose === undefined) {
    throw new InvalidInput(`purpose must be remote, transfer or takeout, got ${JSON.stringify(name)}`);
  }
  return purpose;
}

function existingFile(path) {
  if (typeof path !== 'string' || !fs.existsSync(path)) {
    throw new InvalidInput(`file not found: ${JSON.stringify(path)}`);
  }
  return path;
}

function base64(value, name) {
  if (typeof value !== 'string') {
    throw new InvalidInput(`${name} must be a base64 string`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function messageBackupKey(args) {
  const token = args.forward_secrecy_token
    ? new BackupForwardSecrecyToken(base64(args.forward_secrecy_token, 'forward_secrecy_token'))
    : undefined;
  if (typeof args.recovery_key === 'string') {
    return new MessageBackupKey({
      accountEntropy: args.recovery_key,
      aci: Aci.parseFromServiceIdString(args.aci),
      forwardSecrecyToken: token,
    });
  }
  if (args.backup_key !== undefined) {
    return new MessageBackupKey({
      backupKey: base64(args.backup_key, 'backup_key'),
      backupId: base64(args.backup_id, 'backup_id'),
      forwardSecrecyToken: token,
    });
  }
  throw new InvalidInput('pass recovery_key and aci, or backup_key and backup_id');
}

// Yield each varint-delimited message of a plain frame stream file, reading it in pieces.
async function* frameMessages(path) {
  const handle = await fs.promises.open(path, 'r');
  try {
    let pending = Buffer.alloc(0);
    let offset = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(READ_BYTES);
      const { bytesRead } = await handle.read(chunk, 0, READ_BYTES, offset);
      offset += bytesRead;
      pending = pending.length ? Buffer.concat([pending, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let position = 0;
      for (;;) {
        let length = 0;
        let shift = 0;
        let cursor = position;
        let complete = false;
        while (cursor < pending.length && cursor - position < 10) {
          const byte = pending[cursor++];
          length += (byte & 0x7f) * 2 ** shift;
          shift += 7;
          if (byte < 0x80) {
            complete = true;
            break;
          }
        }
        if (!complete || cursor + length > pending.length) {
          break;
        }
        yield new Uint8Array(pending.subarray(cursor, cursor + length));
        position = cursor + length;
      }
      pending = pending.subarray(position);
      if (bytesRead === 0) {
        if (pending.length) {
          throw new Error(`frame stream ends inside a frame (${pending.length} bytes left)`);
        }
        return;
      }
    }
  } finally {
    await handle.close();
  }
}

module.exports = {
  // {path, purpose, keys...} -> {ok, error, unknown_fields}. An archive libsignal rejects is a
  // result (ok false); only bad arguments throw.
  validate_archive: async (args) => {
    const path = existingFile(args.path);
    const key = messageBackupKey(args);
    try {
      const outcome = await MessageBackup.validate(
        key, purposeOf(args.purpose), () => new FileInputStream(path), fileLength(path));
      return { ok: outcome.ok, error: outcome.errorMessage, unknown_fields: outcome.unknownFieldMessages };
    } catch (error) {
      if (error instanceof InvalidInput) {
        throw error;
      }
      return { ok: false, error: String((error && error.message) || error), unknown_fields: [] };
    }
  },

  // {path, purpose} -> {ok, error, frames}: a plain frame stream through OnlineBackupValidator.
  validate_frames: async (args) => {
    const path = existingFile(args.path);
    const purpose = purposeOf(args.purpose);
    let frames = 0;
    try {
      let validator = null;
      for await (const message of frameMessages(path)) {
        if (validator === null) {
          validator = new OnlineBackupValidator(message, purpose);
        } else {
          validator.addFrame(message);
        }
        frames += 1;
      }
      if (validator === null) {
        return { ok: false, error: 'no frames found', frames: 0 };
      }
      validator.finalize();
      return { ok: true, error: null, frames: frames - 1 };
    } catch (error) {
      return { ok: false, error: String((error && error.message) || error), frames: Math.max(frames - 1, 0) };
    }
  },

  // {path, purpose} -> {text, unknown_fields}; throws (LibsignalError in Python) when libsignal
  // rejects the stream.
  comparable_backup: async (args) => {
    const path = existingFile(args.path);
    const stream = new FileInputStream(path);
    try {
      const backup = await ComparableBackup.fromUnencrypted(purposeOf(args.purpose), stream, fileLength(path));
      return { text: backup.comparableString(), unknown_fields: backup.unknownFields };
    } finally {
      await stream.close();
    }
  },
};
