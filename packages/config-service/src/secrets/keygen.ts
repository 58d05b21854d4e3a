/**
 * Development key pairs and offline encryption for `config-service encrypt` (SPEC §2.5,
 * §9). Production keys come from the operator's own key management; these helpers only
 * write PEM files in the formats {@link loadKeyring} reads.
 */
import { generateKeyPair, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CFG_ERR_INVALID_REQUEST } from '../errors.js';
import { KEY_ID_PATTERN, encryptValue, type SecretBinding } from './envelope.js';
import { rsaProblem } from './keyring.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Modulus of development keys, bits (RSA-3072: 128-bit security, NIST SP 800-57 Part 1). */
export const KEYGEN_BITS = 3072;

/** The files {@link generateKeyFiles} wrote. */
export interface KeyFiles {
  readonly id: string;
  /** `<dir>/<id>.private.pem`: PKCS#8 PEM, mode 0600. */
  readonly privateKeyFile: string;
  /** `<dir>/<id>.public.pem`: SPKI PEM, mode 0644. */
  readonly publicKeyFile: string;
}

async function writeNew(file: string, text: string, mode: number, force: boolean): Promise<void> {
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | (force ? fsConstants.O_TRUNC : fsConstants.O_EXCL);
  let handle;
  try {
    handle = await open(file, flags, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CFG_ERR_INVALID_REQUEST(`${file} exists; pass --force to replace it`);
    throw err;
  }
  try {
    await handle.chmod(mode); // O_TRUNC keeps an existing file's mode; umask may narrow a new one.
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates an RSA-3072 key pair for development: `<dir>/<id>.private.pem` (PKCS#8, mode
 * 0600) and `<dir>/<id>.public.pem` (SPKI, 0644). The folder is created (0700) if needed.
 *
 * @param dir - output folder.
 * @param id - the key id (`^[A-Za-z0-9._-]{1,64}$`), used in the file names.
 * @param opts.force - replace existing files. Default false.
 * @throws CFG_ERR_INVALID_REQUEST (400) on a malformed id or when a file exists without `force`.
 */
export async function generateKeyFiles(dir: string, id: string, opts: { force?: boolean } = {}): Promise<KeyFiles> {
  if (!KEY_ID_PATTERN.test(id)) throw new CFG_ERR_INVALID_REQUEST('the key id must match ^[A-Za-z0-9._-]{1,64}$');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: KEYGEN_BITS, publicExponent: 0x10001 });
  const privateKeyFile = path.resolve(dir, `${id}.private.pem`);
  const publicKeyFile = path.resolve(dir, `${id}.public.pem`);
  await writeNew(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600, opts.force ?? false);
  await writeNew(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644, opts.force ?? false);
  return { id, privateKeyFile, publicKeyFile };
}

/** Reads a PEM key file as `parse` reads it; every failure names the file, never its content. */
async function readRsaKeyFile(file: string, parse: (pem: Buffer) => KeyObject, notPem: string): Promise<KeyObject> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw new CFG_ERR_INVALID_REQUEST(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let key: KeyObject;
  try {
    key = parse(pem);
  } catch {
    throw new CFG_ERR_INVALID_REQUEST(`${file} is not ${notPem}`);
  }
  const problem = rsaProblem(key);
  if (problem) throw new CFG_ERR_INVALID_REQUEST(`${file}: ${problem}`);
  return key;
}

/**
 * Reads an RSA public key for offline encryption: a PEM public key, or a PEM private key
 * whose public half is used.
 *
 * @throws CFG_ERR_INVALID_REQUEST (400) naming the file when it cannot be read, is not PEM,
 *   or is not RSA ≥ 2048 bits. Never quotes the file's content.
 */
export function readPublicKeyFile(file: string): Promise<KeyObject> {
  return readRsaKeyFile(file, (pem) => createPublicKey({ key: pem, format: 'pem' }), 'a PEM public key (or unencrypted private key)');
}

/**
 * Reads an RSA private key (PEM, PKCS#8 or PKCS#1, unencrypted) for `encrypt rebind`.
 *
 * @throws CFG_ERR_INVALID_REQUEST (400) naming the file when it cannot be read, is not an
 *   unencrypted PEM private key, or is not RSA ≥ 2048 bits. Never quotes the file's content.
 */
export function readPrivateKeyFile(file: string): Promise<KeyObject> {
  return readRsaKeyFile(file, (pem) => createPrivateKey({ key: pem, format: 'pem' }), 'an unencrypted PEM private key');
}

/** A configured key as `secrets.keys[]` holds it (paths absolute). */
export interface ConfiguredKey {
  readonly id: string;
  readonly publicKeyFile?: string | undefined;
  readonly privateKeyFile?: string | undefined;
}

/**
 * Checks that `publicKeyFile` is the key `keyId` names, before anything is encrypted
 * with it: a value encrypted with key k1's public key but labelled k2 fails to decrypt
 * for everyone, and only when it is served.
 *
 * - With the service's keys (`configured`, from `--config`): `keyId` must be one of them,
 *   and when that key's file can be read, `publicKeyFile` must hold the same public key.
 * - Always: a file named as `encrypt keygen` names them (`<id>.public.pem`,
 *   `<id>.private.pem`) must carry `keyId` in its name.
 *
 * @param publicKeyFile - the key file given (`--public-key`); absent: the configured key's file is used.
 * @returns the key file to encrypt with.
 * @throws CFG_ERR_INVALID_REQUEST naming both ids (never key material).
 */
export async function keyFileFor(keyId: string, publicKeyFile: string | undefined, configured?: readonly ConfiguredKey[]): Promise<string> {
  let file = publicKeyFile;
  if (configured !== undefined) {
    const key = configured.find((k) => k.id === keyId);
    if (key === undefined) {
      const ids = configured.map((k) => `'${k.id}'`).join(', ');
      throw new CFG_ERR_INVALID_REQUEST(`--key-id ${keyId}: the service has no key with this id (${ids === '' ? 'secrets.keys is empty' : `secrets.keys: ${ids}`})`);
    }
    const own = key.publicKeyFile ?? key.privateKeyFile;
    if (file === undefined) {
      if (own === undefined) throw new CFG_ERR_INVALID_REQUEST(`--key-id ${keyId}: secrets.keys names no key file for it; give --public-key`);
      file = own;
    } else if (own !== undefined) {
      const expected = await readPublicKeyFile(own).catch(() => undefined);
      const given = await readPublicKeyFile(file);
      const der = (k: KeyObject): string => k.export({ type: 'spki', format: 'der' }).toString('base64');
      if (expected !== undefined && der(expected) !== der(given)) {
        throw new CFG_ERR_INVALID_REQUEST(`--public-key ${file} is not the key of '${keyId}' in secrets.keys (${own}); the value would not decrypt`);
      }
    }
  }
  if (file === undefined) throw new CFG_ERR_INVALID_REQUEST('--public-key <pem> is required (or --config naming the key in secrets.keys)');
  const named = /^(.+)\.(?:public|private)\.pem$/.exec(path.basename(file));
  if (named !== null && named[1] !== keyId) {
    throw new CFG_ERR_INVALID_REQUEST(`--public-key ${file} is the key of '${named[1]}' (its file name says so), not of '${keyId}': a value labelled '${keyId}' would not decrypt; use --key-id ${named[1]}, or the public key of '${keyId}'`);
  }
  return file;
}

/**
 * Encrypts one value offline (no service needed): `{cipher}{key:<id>}<base64>`, or with a
 * binding `{cipher}{key:<id>}{app:<name>}<base64>` / `{cipher}{key:<id>}{shared}<base64>`.
 *
 * @param plaintext - the value.
 * @param publicKeyFile - PEM public key (or private key) of key `keyId`.
 * @param keyId - the key id the service knows this key by.
 * @param binding - where the value belongs (`app:<name>` or `shared`); absent: unbound.
 * @throws CFG_ERR_INVALID_REQUEST (400) on a malformed id or an unusable key file.
 */
export async function encryptWithKeyFile(plaintext: string, publicKeyFile: string, keyId: string, binding?: SecretBinding): Promise<string> {
  if (!KEY_ID_PATTERN.test(keyId)) throw new CFG_ERR_INVALID_REQUEST('the key id must match ^[A-Za-z0-9._-]{1,64}$');
  return encryptValue(plaintext, { id: keyId, publicKey: await readPublicKeyFile(publicKeyFile) }, binding);
}
