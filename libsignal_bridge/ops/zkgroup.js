// Backup credential ops (zkgroup "backups" API) and the XEdDSA signatures that go with them.
//
// Server half: generate params, issue a credential from a blinded request, verify a
// presentation at a given time. Client half: build the request context from (backup key, ACI),
// receive (unblind) the credential, present it, sign with the backup-id private key.
// Times are epoch seconds. Errors carry one of two kinds so the Python side can map them:
// InvalidInput (bytes that do not parse) and VerificationFailed (a proof, a time window or an
// issuance check that fails).
'use strict';

const { PrivateKey, PublicKey } = require('@signalapp/libsignal-client');
const {
  BackupAuthCredential,
  BackupAuthCredentialPresentation,
  BackupAuthCredentialRequest,
  BackupAuthCredentialRequestContext,
  BackupAuthCredentialResponse,
  BackupCredentialType,
  BackupLevel,
  GenericServerPublicParams,
  GenericServerSecretParams,
} = require('@signalapp/libsignal-client/zkgroup');

class InvalidInput extends Error {}
class VerificationFailed extends Error {}

function fromB64(value, name) {
  if (typeof value !== 'string') {
    throw new InvalidInput(`${name} is missing or not a base64 string`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function toB64(bytes) {
  return Buffer.from(bytes).toString('base64');
}

// Run a libsignal constructor or deserializer; a failure means the bytes are not valid input.
function parse(name, build) {
  try {
    return build();
  } catch (error) {
    throw new InvalidInput(`${name} is invalid: ${error.message}`);
  }
}

// Run a libsignal check; a failure means the cryptographic check did not pass.
function check(checkName, run) {
  try {
    return run();
  } catch (error) {
    throw new VerificationFailed(`${checkName} failed: ${error.message}`);
  }
}

function integer(value, name) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidInput(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function backupLevel(value) {
  if (!(value in BackupLevel) || typeof value !== 'number') {
    throw new InvalidInput(`level must be 200 (free) or 201 (paid), got ${JSON.stringify(value)}`);
  }
  return value;
}

function credentialType(value) {
  if (!(value in BackupCredentialType) || typeof value !== 'number') {
    throw new InvalidInput(`credential_type must be 1 (messages) or 2 (media), got ${JSON.stringify(value)}`);
  }
  return value;
}

function uuidString(bytes) {
  if (bytes.length !== 16) {
    throw new InvalidInput(`aci must be 16 bytes, got ${bytes.length}`);
  }
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// A stub verifies every request with the same secret params, so the parsed object is kept.
let cachedSecret = { text: null, params: null };

function secretParams(text) {
  if (cachedSecret.text !== text) {
    const bytes = fromB64(text, 'secret_params');
    cachedSecret = { text, params: parse('secret_params', () => new GenericServerSecretParams(bytes)) };
  }
  return cachedSecret.params;
}

function publicParams(text) {
  const bytes = fromB64(text, 'public_params');
  return parse('public_params', () => new GenericServerPublicParams(bytes));
}

function describe(credentialOrPresentation) {
  return {
    backup_id: toB64(credentialOrPresentation.getBackupId()),
    level: credentialOrPresentation.getBackupLevel(),
    credential_type: credentialOrPresentation.getType(),
  };
}

module.exports = {
  // -> {secret_params, public_params}
  zk_server_params_generate: () => {
    const secret = GenericServerSecretParams.generate();
    return { secret_params: toB64(secret.serialize()), public_params: toB64(secret.getPublicParams().serialize()) };
  },

  // {secret_params} -> public_params
  zk_server_public_params: ({ secret_params }) => toB64(secretParams(secret_params).getPublicParams().serialize()),

  // {request} -> null; raises InvalidInput when the blinded request does not parse.
  zk_request_check: ({ request }) => {
    const bytes = fromB64(request, 'request');
    parse('request', () => new BackupAuthCredentialRequest(bytes));
    return null;
  },

  // {secret_params, request, redemption_time, level, credential_type} -> response
  zk_issue: ({ secret_params, request, redemption_time, level, credential_type }) => {
    const params = secretParams(secret_params);
    const bytes = fromB64(request, 'request');
    const parsed = parse('request', () => new BackupAuthCredentialRequest(bytes));
    const response = parsed.issueCredential(
      integer(redemption_time, 'redemption_time'),
      backupLevel(level),
      credentialType(credential_type),
      params,
    );
    return toB64(response.serialize());
  },

  // {secret_params, presentation, now} -> {backup_id, level, credential_type}
  zk_verify_presentation: ({ secret_params, presentation, now }) => {
    const params = secretParams(secret_params);
    const seconds = integer(now, 'now');
    const bytes = fromB64(presentation, 'presentation');
    const parsed = parse('presentation', () => new BackupAuthCredentialPresentation(bytes));
    check('presentation verification', () => parsed.verify(params, new Date(seconds * 1000)));
    return describe(parsed);
  },

  // {presentation} -> {backup_id, level, credential_type}, WITHOUT verifying the proof.
  zk_presentation_info: ({ presentation }) => {
    const bytes = fromB64(presentation, 'presentation');
    return describe(parse('presentation', () => new BackupAuthCredentialPresentation(bytes)));
  },

  // {public_key (33 bytes), message, signature} -> bool
  ec_verify: ({ public_key, message, signature }) => {
    const keyBytes = fromB64(public_key, 'public_key');
    const key = parse('public_key', () => PublicKey.deserialize(keyBytes));
    try {
      return key.verify(fromB64(message, 'message'), fromB64(signature, 'signature'));
    } catch (error) {
      // A signature of the wrong length is just an invalid signature.
      return false;
    }
  },

  // {private_key (32 bytes), message} -> signature (64 bytes)
  ec_sign: ({ private_key, message }) => {
    const keyBytes = fromB64(private_key, 'private_key');
    const key = parse('private_key', () => PrivateKey.deserialize(keyBytes));
    return toB64(key.sign(fromB64(message, 'message')));
  },

  // {private_key (32 bytes)} -> public key (33 bytes, 0x05 type byte)
  ec_public_key: ({ private_key }) => {
    const keyBytes = fromB64(private_key, 'private_key');
    const key = parse('private_key', () => PrivateKey.deserialize(keyBytes));
    return toB64(key.getPublicKey().serialize());
  },

  // {backup_key (32 bytes), aci (16 bytes)} -> {context, request}
  zk_request_context_create: ({ backup_key, aci }) => {
    const key = fromB64(backup_key, 'backup_key');
    if (key.length !== 32) {
      throw new InvalidInput(`backup_key must be 32 bytes, got ${key.length}`);
    }
    const aciText = uuidString(fromB64(aci, 'aci'));
    const context = BackupAuthCredentialRequestContext.create(key, aciText);
    return { context: toB64(context.serialize()), request: toB64(context.getRequest().serialize()) };
  },

  // {public_params, context, response, redemption_time} -> credential
  zk_receive: ({ public_params, context, response, redemption_time }) => {
    const params = publicParams(public_params);
    const contextBytes = fromB64(context, 'context');
    const responseBytes = fromB64(response, 'response');
    const parsedContext = parse('context', () => new BackupAuthCredentialRequestContext(contextBytes));
    const parsedResponse = parse('response', () => new BackupAuthCredentialResponse(responseBytes));
    const seconds = integer(redemption_time, 'redemption_time');
    const credential = check('credential receipt', () => parsedContext.receive(parsedResponse, seconds, params));
    return toB64(credential.serialize());
  },

  // {public_params, credential} -> presentation (fresh randomness on every call)
  zk_present: ({ public_params, credential }) => {
    const params = publicParams(public_params);
    const bytes = fromB64(credential, 'credential');
    const parsed = parse('credential', () => new BackupAuthCredential(bytes));
    return toB64(parsed.present(params).serialize());
  },

  // {credential} -> {backup_id, level, credential_type}
  zk_credential_info: ({ credential }) => {
    const bytes = fromB64(credential, 'credential');
    return describe(parse('credential', () => new BackupAuthCredential(bytes)));
  },
};
