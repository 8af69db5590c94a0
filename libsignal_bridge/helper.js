// Long-lived helper that runs libsignal (@signalapp/libsignal-client) for the Python side.
//
// Protocol: one JSON object per line on stdin, {"id": N, "op": "name", "args": {...}}, and one
// JSON line per request on stdout, {"id": N, "ok": true, "result": ...} or
// {"id": N, "ok": false, "error": "message", "kind": "ErrorClassName"}. Binary values travel
// as standard base64 strings. Requests may be answered out of order when an op is async.
// Ops are registered by the modules in ./ops; each exports an object of name -> function(args).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const ops = {
  ping: () => ({ pong: true, pid: process.pid }),
};
const opsDir = path.join(__dirname, 'ops');
for (const file of fs.readdirSync(opsDir).sort()) {
  if (file.endsWith('.js')) {
    Object.assign(ops, require(path.join(opsDir, file)));
  }
}

function reply(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

async function handle(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    reply({ id: null, ok: false, error: `invalid request line: ${error.message}`, kind: 'ProtocolError' });
    return;
  }
  const { id, op, args } = request;
  const fn = ops[op];
  if (!fn) {
    reply({ id, ok: false, error: `unknown op: ${op}`, kind: 'ProtocolError' });
    return;
  }
  try {
    const result = await fn(args || {});
    reply({ id, ok: true, result: result === undefined ? null : result });
  } catch (error) {
    const kind = (error && error.constructor && error.constructor.name) || 'Error';
    reply({ id, ok: false, error: String((error && error.message) || error), kind });
  }
}

const input = readline.createInterface({ input: process.stdin, terminal: false });
input.on('line', (line) => {
  if (line.trim()) {
    handle(line);
  }
});
input.on('close', () => process.exit(0));
