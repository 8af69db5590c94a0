// Key derivation ops: libsignal's recovery key (AccountEntropyPool) and backup key hierarchy,
// used as the oracle for harness/keys.py.
//
// Recovery keys and media names are strings, ACIs are UUID strings, every byte value (keys,
// ids, tokens) is standard base64. A null or missing `token` means no forward-secrecy token.
'use strict';

const { Aci } = require('@signalapp/libsignal-client');
const {
  AccountEntropyPool,
  BackupForwardSecrecyToken,
  BackupKey,
  SvrKey,
} = require('@signalapp/libsignal-client/dist/AccountKeys');
const { MessageBackupKey } = require('@signalapp/libsignal-client/dist/MessageBackup');

class InvalidInput extends Error {}

function bytes(value, name) {
  if (typeof value !== 'string') {
    throw new InvalidInput(`${name} must be a base64 string`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function b64(value) {
  return Buffer.from(value).toString('base64');
}

function validPool(pool) {
  if (typeof pool !== 'string' || !AccountEntropyPool.isValid(pool)) {
    // MessageBackupKey treats an invalid pool as a programmer error, so reject it here.
    throw new InvalidInput('recovery_key is not a valid account entropy pool');
  }
  return pool;
}

function tokenOf(token) {
  return token == null ? undefined : new BackupForwardSecrecyToken(bytes(token, 'token'));
}

function messageKeyResult(key) {
  return { hmac_key: b64(key.hmacKey), aes_key: b64(key.aesKey) };
}

// Everything a BackupKey (or media root key) derives for one ACI and media name.
function backupKeyDerivations(backupKey, aci, mediaName) {
  const ecKey = backupKey.deriveEcKey(aci);
  const mediaId = backupKey.deriveMediaId(mediaName);
  return {
    backup_id: b64(backupKey.deriveBackupId(aci)),
    backup_id_private_key: b64(ecKey.serialize()),
    backup_id_public_key: b64(ecKey.getPublicKey().serialize()),
    local_metadata_key: b64(backupKey.deriveLocalBackupMetadataKey()),
    media_id: b64(mediaId),
    media_encryption_key: b64(backupKey.deriveMediaEncryptionKey(mediaId)),
    thumbnail_transit_key: b64(backupKey.deriveThumbnailTransitEncryptionKey(mediaId)),
  };
}

module.exports = {
  // {recovery_key} -> {valid}
  aep_is_valid: ({ recovery_key }) => ({ valid: AccountEntropyPool.isValid(recovery_key) }),

  // {} -> {recovery_key}
  aep_generate: () => ({ recovery_key: AccountEntropyPool.generate() }),

  // {recovery_key, aci, token?, media_name?} -> every derivation, each base64:
  // {backup_key, svr_key, svr_registration_lock, svr_registration_recovery,
  //  svr_storage_service_encryption, svr_logging_key, backup_id, backup_id_private_key,
  //  backup_id_public_key, local_metadata_key, media_id, media_encryption_key,
  //  thumbnail_transit_key, legacy: {hmac_key, aes_key}, message: {hmac_key, aes_key},
  //  message_from_parts: {hmac_key, aes_key}}
  // `message` uses the token when given (else it equals `legacy`); `message_from_parts` builds
  // the same key from (backup key, backup id). The media derivations use the backup key as root.
  derive_all: ({ recovery_key, aci, token, media_name }) => {
    const pool = validPool(recovery_key);
    const account = Aci.parseFromServiceIdString(aci);
    const forwardSecrecyToken = tokenOf(token);
    const backupKey = AccountEntropyPool.deriveBackupKey(pool);
    const svrKey = new SvrKey(AccountEntropyPool.deriveSvrKey(pool));
    const derived = backupKeyDerivations(backupKey, account, media_name == null ? '' : media_name);
    const backupId = backupKey.deriveBackupId(account);
    return {
      backup_key: b64(backupKey.getContents()),
      svr_key: b64(svrKey.getContents()),
      svr_registration_lock: b64(svrKey.deriveRegistrationLock()),
      svr_registration_recovery: b64(svrKey.deriveRegistrationRecoveryPassword()),
      svr_storage_service_encryption: b64(svrKey.deriveStorageServiceKey()),
      svr_logging_key: b64(svrKey.deriveLoggingKey()),
      ...derived,
      legacy: messageKeyResult(new MessageBackupKey({ accountEntropy: pool, aci: account })),
      message: messageKeyResult(
        new MessageBackupKey({ accountEntropy: pool, aci: account, forwardSecrecyToken })
      ),
      message_from_parts: messageKeyResult(
        new MessageBackupKey({ backupKey, backupId, forwardSecrecyToken })
      ),
    };
  },

  // {backup_key, aci, media_name?} -> the BackupKey derivations of a raw 32-byte root key
  // (a media root key, or any backup key), each base64.
  backup_key_derive: ({ backup_key, aci, media_name }) => {
    const backupKey = new BackupKey(bytes(backup_key, 'backup_key'));
    const account = Aci.parseFromServiceIdString(aci);
    return backupKeyDerivations(backupKey, account, media_name == null ? '' : media_name);
  },

  // {svr_key} -> the four SvrKey children, each base64.
  svr_key_derive: ({ svr_key }) => {
    const svrKey = new SvrKey(bytes(svr_key, 'svr_key'));
    return {
      registration_lock: b64(svrKey.deriveRegistrationLock()),
      registration_recovery: b64(svrKey.deriveRegistrationRecoveryPassword()),
      storage_service_encryption: b64(svrKey.deriveStorageServiceKey()),
      logging_key: b64(svrKey.deriveLoggingKey()),
    };
  },

  // {backup_key, backup_id, token?} -> {hmac_key, aes_key}
  message_backup_key_derive: ({ backup_key, backup_id, token }) => {
    const key = new MessageBackupKey({
      backupKey: bytes(backup_key, 'backup_key'),
      backupId: bytes(backup_id, 'backup_id'),
      forwardSecrecyToken: tokenOf(token),
    });
    return messageKeyResult(key);
  },
};
