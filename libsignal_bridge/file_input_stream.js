// A libsignal InputStream that reads a file from disk in pieces, so archives larger than
// memory can be validated. Used by ops/backup.js and by the benchmark script.
'use strict';

const fs = require('fs');
const { InputStream } = require('@signalapp/libsignal-client/dist/io');

class FileInputStream extends InputStream {
  constructor(path) {
    super();
    this.path = path;
    this.position = 0;
    this.handle = null;
  }

  async open() {
    if (this.handle === null) {
      this.handle = await fs.promises.open(this.path, 'r');
    }
    return this.handle;
  }

  async read(amount) {
    const handle = await this.open();
    const buffer = Buffer.allocUnsafe(amount);
    const { bytesRead } = await handle.read(buffer, 0, amount, this.position);
    this.position += bytesRead;
    // A fresh ArrayBuffer of exactly the bytes read (libsignal copies it on its side).
    return new Uint8Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + bytesRead));
  }

  async skip(amount) {
    const { size } = await (await this.open()).stat();
    if (this.position + amount > size) {
      throw new Error(`cannot skip ${amount} bytes at offset ${this.position} of ${this.path} (${size} bytes)`);
    }
    this.position += amount;
  }

  async close() {
    if (this.handle !== null) {
      const handle = this.handle;
      this.handle = null;
      await handle.close();
    }
  }
}

// Return the size of a file in bytes as a BigInt, the length type libsignal expects.
function fileLength(path) {
  return BigInt(fs.statSync(path).size);
}

module.exports = { FileInputStream, fileLength };
