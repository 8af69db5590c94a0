// Message backup ops: libsignal's validator and ComparableBackup over a plain frame stream.
//
// A plain frame stream is the unencrypted, uncompressed form (BackupInfo, then Frames, each
// varint-length-delimited), passed either as base64 `data` or as a local file `path`.
// `purpose` is "remote" (RemoteBackup, the default), "transfer" (DeviceTransfer) or "takeout".
'use strict';

const fs = require('fs');
const { ComparableBackup, Purpose } = require('@signalapp/libsignal-client/dist/MessageBackup');
const { InputStream } = require('@signalapp/libsignal-client/dist/io');

class InvalidInput extends Error {}

const PURPOSES = { remote: Purpose.RemoteBackup, transfer: Purpose.DeviceTransfer, takeout: Purpose.TakeoutExport };

// An InputStream over bytes already in memory.
class BufferInputStream extends InputStream {
  constructor(bytes) {
    super();
    this.bytes = bytes;
    this.position = 0;
  }

  async read(amount) {
    const end = Math.min(this.bytes.length, this.position + amount);
    const chunk = this.bytes.slice(this.position, end);
    this.position = end;
    return new Uint8Array(chunk);
  }

  async skip(amount) {
    if (this.position + amount > this.bytes.length) {
      throw new Error(`cannot skip ${amount} bytes at offset ${this.position} of ${this.bytes.length}`);
    }
    this.position += amount;
  }
}

function input({ data, path }) {
  if (typeof path === 'string') {
    try {
      return new Uint8Array(fs.readFileSync(path));
    } catch (error) {
      throw new InvalidInput(`cannot read ${path}: ${error.message}`);
    }
  }
  if (typeof data === 'string') {
    return new Uint8Array(Buffer.from(data, 'base64'));
  }
  throw new InvalidInput('pass the frame stream as base64 `data` or as a file `path`');
}

function purposeOf(name) {
  const purpose = PURPOSES[name || 'remote'];
  if (purpose === undefined) {
    throw new InvalidInput(`purpose must be remote, transfer or takeout, got ${JSON.stringify(name)}`);
  }
  return purpose;
}

async function comparable(args) {
  const bytes = input(args);
  return ComparableBackup.fromUnencrypted(purposeOf(args.purpose), new BufferInputStream(bytes), BigInt(bytes.length));
}

module.exports = {
  // {data|path, purpose} -> {comparable, unknown_fields}; rejects an invalid stream.
  backup_comparable: async (args) => {
    const backup = await comparable(args);
    return { comparable: backup.comparableString(), unknown_fields: backup.unknownFields };
  },

  // {data|path, purpose} -> {ok, error, unknown_fields}; an invalid stream is a result here.
  backup_validate_plain: async (args) => {
    const bytes = input(args);
    const purpose = purposeOf(args.purpose);
    try {
      const backup = await ComparableBackup.fromUnencrypted(purpose, new BufferInputStream(bytes), BigInt(bytes.length));
      return { ok: true, error: null, unknown_fields: backup.unknownFields };
    } catch (error) {
      return { ok: false, error: String((error && error.message) || error), unknown_fields: [] };
    }
  },
};
