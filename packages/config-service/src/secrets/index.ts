/**
 * Secrets (SPEC §2.5): the `{cipher}` envelope, the keyring, serving secrets decrypted or
 * redacted, and development key generation. See docs/secrets.md.
 */
export {
  CIPHER_PREFIX,
  ENVELOPE_VERSION,
  KEY_ID_PATTERN,
  DECRYPT_REASONS,
  ENVELOPE_VERSION_BOUND,
  encryptValue,
  decryptValue,
  openValue,
  inspectValue,
  isCipherText,
  secretDecryptError,
  type DecryptReason,
  type DecryptionKeys,
  type EncryptionKey,
  type EnvelopeInfo,
  type DecryptContext,
  type OpenedValue,
} from './envelope.js';
export { appBinding, describeBinding, isBinding, SHARED_BINDING, MAX_BINDING_BYTES, type SecretBinding } from './binding.js';
export { loadKeyring, createKeyring, rsaProblem, MIN_RSA_BITS, type Keyring, type KeyringEntry, type SecretsSettings } from './keyring.js';
export {
  applySecrets,
  applySecretsToSource,
  applySecretsToFlatMap,
  secretKeysOf,
  secretsStep,
  REDACTED,
  type SecretsMode,
  type SecretsStepMode,
  type AppliedSecrets,
  type AppliedSourceSecrets,
} from './apply.js';
export { generateKeyFiles, readPublicKeyFile, readPrivateKeyFile, encryptWithKeyFile, KEYGEN_BITS, type KeyFiles } from './keygen.js';
export { rebindSecrets, formatRebindReport, type RebindOptions, type RebindReport, type RebindEntry } from './rebind.js';
