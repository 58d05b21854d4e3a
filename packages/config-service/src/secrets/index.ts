/**
 * Secrets (SPEC §2.5): the `{cipher}` envelope, the keyring, serving secrets decrypted or
 * redacted, and development key generation. See docs/secrets.md.
 */
export {
  CIPHER_PREFIX,
  ENVELOPE_VERSION,
  KEY_ID_PATTERN,
  DECRYPT_REASONS,
  encryptValue,
  decryptValue,
  inspectValue,
  isCipherText,
  secretDecryptError,
  type DecryptReason,
  type DecryptionKeys,
  type EncryptionKey,
  type EnvelopeInfo,
} from './envelope.js';
export { loadKeyring, createKeyring, rsaProblem, MIN_RSA_BITS, type Keyring, type KeyringEntry, type SecretsSettings } from './keyring.js';
export {
  applySecrets,
  applySecretsToSource,
  applySecretsToFlatMap,
  secretKeysOf,
  REDACTED,
  type SecretsMode,
  type AppliedSecrets,
  type AppliedSourceSecrets,
} from './apply.js';
export { generateKeyFiles, readPublicKeyFile, encryptWithKeyFile, KEYGEN_BITS, type KeyFiles } from './keygen.js';
