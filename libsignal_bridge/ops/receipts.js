// Receipt credential ops (zkgroup receipts), used by the stub's POST /v1/archives/redeem-receipt.
//
// Server half: generate the zkgroup ServerSecretParams, issue a receipt credential (the
// payment processor's step, driven by the stub's admin API) and verify a presentation.
// Client half, for tests: request, receive and present. Binary values are standard base64;
// receipt levels travel as decimal strings or numbers, expirations as epoch seconds.
// Error kinds: InvalidInput (bytes that do not parse) and VerificationFailed (a failed check).
'use strict';

const crypto = require('crypto');
const {
  ClientZkReceiptOperations,
  ReceiptCredential,
  ReceiptCredentialPresentation,
  ReceiptCredentialRequest,
  ReceiptCredentialRequestContext,
  ReceiptCredentialResponse,
  ReceiptSerial,
  ServerPublicParams,
  ServerSecretParams,
  ServerZkReceiptOperations,
} = require('@signalapp/libsignal-client/zkgroup');

class InvalidInput extends Error {}
class VerificationFailed extends Error {}

function bytes(value, name) {
  if (typeof value !== 'string') {
    throw new InvalidInput(`${name} is missing or not a base64 string`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function b64(data) {
  return Buffer.from(data).toString('base64');
}

function parse(name, build) {
  try {
    return build();
  } catch (error) {
    throw new InvalidInput(`${name} is invalid: ${error.message}`);
  }
}

function seconds(value, name) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidInput(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

const serverOps = (secret) =>
  new ServerZkReceiptOperations(parse('secret_params', () => new ServerSecretParams(bytes(secret, 'secret_params'))));
const clientOps = (publicParams) =>
  new ClientZkReceiptOperations(
    parse('public_params', () => new ServerPublicParams(bytes(publicParams, 'public_params'))),
  );

module.exports = {
  // -> {secret_params, public_params}
  receipt_server_params_generate: () => {
    const secret = ServerSecretParams.generate();
    return { secret_params: b64(secret.serialize()), public_params: b64(secret.getPublicParams().serialize()) };
  },

  // {secret_params} -> public_params
  receipt_server_public_params: ({ secret_params }) =>
    b64(parse('secret_params', () => new ServerSecretParams(bytes(secret_params, 'secret_params'))).getPublicParams().serialize()),

  // {secret_params, request, expiration, level} -> response
  receipt_issue: ({ secret_params, request, expiration, level }) => {
    const parsed = parse('request', () => new ReceiptCredentialRequest(bytes(request, 'request')));
    const response = serverOps(secret_params).issueReceiptCredential(
      parsed,
      seconds(expiration, 'expiration'),
      BigInt(level),
    );
    return b64(response.serialize());
  },

  // {secret_params, presentation} -> {level, expiration, serial}
  receipt_verify_presentation: ({ secret_params, presentation }) => {
    const parsed = parse('presentation', () => new ReceiptCredentialPresentation(bytes(presentation, 'presentation')));
    const ops = serverOps(secret_params);
    try {
      ops.verifyReceiptCredentialPresentation(parsed);
    } catch (error) {
      throw new VerificationFailed(`receipt presentation verification failed: ${error.message}`);
    }
    return {
      level: parsed.getReceiptLevel().toString(),
      expiration: parsed.getReceiptExpirationTime(),
      serial: b64(parsed.getReceiptSerialBytes().serialize()),
    };
  },

  // {public_params} -> {context, request}
  receipt_request_create: ({ public_params }) => {
    const serial = new ReceiptSerial(new Uint8Array(crypto.randomBytes(ReceiptSerial.SIZE)));
    const context = clientOps(public_params).createReceiptCredentialRequestContext(serial);
    return { context: b64(context.serialize()), request: b64(context.getRequest().serialize()) };
  },

  // {public_params, context, response} -> credential
  receipt_receive: ({ public_params, context, response }) => {
    const parsedContext = parse('context', () => new ReceiptCredentialRequestContext(bytes(context, 'context')));
    const parsedResponse = parse('response', () => new ReceiptCredentialResponse(bytes(response, 'response')));
    try {
      return b64(clientOps(public_params).receiveReceiptCredential(parsedContext, parsedResponse).serialize());
    } catch (error) {
      throw new VerificationFailed(`receipt credential check failed: ${error.message}`);
    }
  },

  // {public_params, credential} -> presentation
  receipt_present: ({ public_params, credential }) => {
    const parsed = parse('credential', () => new ReceiptCredential(bytes(credential, 'credential')));
    return b64(clientOps(public_params).createReceiptCredentialPresentation(parsed).serialize());
  },
};
