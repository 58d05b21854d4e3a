/**
 * Signed checkpoints of the audit chain (issue 13).
 *
 * A checkpoint says "store S had, when writer W looked at time T, its chain head at
 * `seq` N with hash H", signed with Ed25519 (RFC 8032) by a key held outside the
 * database. Copies kept outside (the log stream, a witness file) let `audit verify` prove
 * that the chain was not rewritten nor cut before that point, which the chain alone cannot.
 *
 * - `kind: "checkpoint"`: the head at that moment (every `audit.checkpoints.everyEvents`
 *   events, every `intervalMs`, and at shutdown).
 * - `kind: "retention"`: the last event a prune deleted; the store's retention anchor
 *   carries it, so a chain that starts after `seq` 1 is accepted only with a valid
 *   signature of the key (a forged anchor is refused).
 *
 * What is signed: the UTF-8 bytes of {@link CHECKPOINT_DOMAIN} followed by the canonical
 * JSON (`chain.ts`) of every member except `signature`. The checkpoint's text (stored,
 * logged, served, kept by a witness) is the canonical JSON of all its members.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CFG_ERR_AUDIT_UNAVAILABLE, CFG_ERR_INVALID_REQUEST, CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { canonicalJson } from './chain.js';
import { isIsoUtcMs } from './event.js';
import type { Checkpoint } from './types.js';

export type { Checkpoint } from './types.js';

/** Prefix of the signed bytes, so a checkpoint signature is never valid for anything else. */
export const CHECKPOINT_DOMAIN = 'config-service audit checkpoint v1\n';

/** A key id: what `audit.checkpoints.keys[].id` accepts. */
export const CHECKPOINT_KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A checkpoint before it is signed. */
export type CheckpointPayload = Omit<Checkpoint, 'signature'>;

const HEX64 = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The exact bytes an Ed25519 signature of `payload` covers. */
export function checkpointSignedBytes(payload: CheckpointPayload): Buffer {
  const { kind, storeId, writerId, seq, hash, time, keyId } = payload;
  return Buffer.from(CHECKPOINT_DOMAIN + canonicalJson({ kind, storeId, writerId, seq, hash, time, keyId }), 'utf8');
}

/** Signs `payload` with an Ed25519 private key. */
export function signCheckpoint(payload: CheckpointPayload, privateKey: KeyObject): Checkpoint {
  const signature = sign(null, checkpointSignedBytes(payload), privateKey).toString('base64');
  return { ...payload, signature };
}

/** The text of a checkpoint as it is stored, logged and served: canonical JSON of all its members. */
export function checkpointJson(cp: Checkpoint): string {
  const { kind, storeId, writerId, seq, hash, time, keyId, signature } = cp;
  return canonicalJson({ kind, storeId, writerId, seq, hash, time, keyId, signature });
}

/**
 * Checks the shape of untrusted data (a file line, a database row) as a checkpoint.
 * @returns the checkpoint with exactly its members, or a text naming the first bad member.
 */
export function parseCheckpoint(v: unknown): Checkpoint | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const o = v as Record<string, unknown>;
  if (o.kind !== 'checkpoint' && o.kind !== 'retention') return "kind must be 'checkpoint' or 'retention'";
  for (const k of ['storeId', 'writerId', 'keyId'] as const) {
    if (typeof o[k] !== 'string' || (o[k] as string).length === 0 || (o[k] as string).length > 256) return `${k} must be a non-empty string`;
  }
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 1) return 'seq must be an integer >= 1';
  if (typeof o.hash !== 'string' || !HEX64.test(o.hash)) return 'hash must be 64 lower-case hex digits';
  if (typeof o.time !== 'string' || !isIsoUtcMs(o.time)) return 'time must be an ISO 8601 UTC time with milliseconds';
  if (typeof o.signature !== 'string' || !BASE64.test(o.signature)) return 'signature must be base64';
  return {
    kind: o.kind,
    storeId: o.storeId as string,
    writerId: o.writerId as string,
    seq: o.seq as number,
    hash: o.hash,
    time: o.time,
    keyId: o.keyId as string,
    signature: o.signature,
  };
}

/**
 * A checkpoint as a store kept it (its canonical text).
 * @throws CFG_ERR_AUDIT_UNAVAILABLE for a stored text that is not a checkpoint.
 */
export function storedCheckpoint(json: string): Checkpoint {
  let cp: Checkpoint | string;
  try {
    cp = parseCheckpoint(JSON.parse(json));
  } catch {
    cp = 'not JSON';
  }
  if (typeof cp === 'string') throw new CFG_ERR_AUDIT_UNAVAILABLE(`a stored checkpoint is malformed (${cp})`);
  return cp;
}

/** A public key that may have signed checkpoints. */
export interface CheckpointPublicKey {
  /** The key id from the settings; absent for a key given as a bare file (`--public-key`). */
  id?: string;
  key: KeyObject;
  /** Where it came from (a file, a setting), for messages. */
  source: string;
}

/**
 * Whether one of `keys` signed `cp`: keys with the checkpoint's `keyId` are tried first,
 * then keys without an id. Ed25519 only.
 * @returns `valid`, `invalid` (no key verifies the signature) or `no-key` (`keys` is empty).
 */
export function checkCheckpointSignature(cp: Checkpoint, keys: readonly CheckpointPublicKey[]): 'valid' | 'invalid' | 'no-key' {
  if (keys.length === 0) return 'no-key';
  const bytes = checkpointSignedBytes(cp);
  const signature = Buffer.from(cp.signature, 'base64');
  const ordered = [...keys.filter((k) => k.id === cp.keyId), ...keys.filter((k) => k.id === undefined)];
  for (const k of ordered) {
    try {
      if (verify(null, bytes, k.key, signature)) return 'valid';
    } catch {
      // a malformed signature: try the next key, then report invalid
    }
  }
  return 'invalid';
}

/** The signing side: the key checkpoints are signed with, as the store's writer needs it. */
export interface CheckpointSigner {
  keyId: string;
  /** The private key, PKCS#8 PEM (handed to the SQLite writer thread). */
  privateKeyPem: string;
}

/** `audit.checkpoints` of the service settings. */
export interface CheckpointSettings {
  keys: readonly { id: string; privateKeyFile?: string | undefined; privateKeyEnv?: string | undefined; publicKeyFile?: string | undefined }[];
  signingKey?: string | undefined;
  everyEvents: number;
  intervalMs: number;
}

/** The keys of `audit.checkpoints`, loaded. */
export interface CheckpointKeys {
  /** The key new checkpoints are signed with; absent when no key has a private part (checkpoints are off). */
  signer?: CheckpointSigner;
  /** Every configured key's public half (old keys kept for verification after a rotation). */
  publicKeys: CheckpointPublicKey[];
}

function ed25519(key: KeyObject, where: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new CFG_ERR_SETTINGS_INVALID(`  ${where}: an Ed25519 key is required (found ${key.asymmetricKeyType ?? 'a symmetric key'})`);
  }
  return key;
}

/**
 * Loads `audit.checkpoints.keys`: each key from exactly one of `privateKeyFile`,
 * `privateKeyEnv` (a variable holding the PEM) or `publicKeyFile` (verification only).
 * The signing key is `signingKey`, else the first key with a private part.
 *
 * @throws CFG_ERR_SETTINGS_INVALID naming the setting: a file that cannot be read, a
 *   variable that is unset, text that is not a PEM Ed25519 key, duplicate ids, a
 *   `signingKey` that names no key with a private part. Never quotes key material.
 */
export function loadCheckpointKeys(settings: Pick<CheckpointSettings, 'keys' | 'signingKey'>, env: Readonly<Record<string, string | undefined>>): CheckpointKeys {
  const publicKeys: CheckpointPublicKey[] = [];
  const privates = new Map<string, string>();
  const seen = new Set<string>();
  settings.keys.forEach((k, i) => {
    const where = `audit.checkpoints.keys.${i}`;
    if (seen.has(k.id)) throw new CFG_ERR_SETTINGS_INVALID(`  ${where}.id: '${k.id}' is used twice`);
    seen.add(k.id);
    const given = [k.privateKeyFile, k.privateKeyEnv, k.publicKeyFile].filter((x) => x !== undefined).length;
    if (given !== 1) throw new CFG_ERR_SETTINGS_INVALID(`  ${where}: set exactly one of privateKeyFile, privateKeyEnv or publicKeyFile`);
    if (k.publicKeyFile !== undefined) {
      const pem = readText(k.publicKeyFile, `${where}.publicKeyFile`);
      let key: KeyObject;
      try {
        key = createPublicKey(pem);
      } catch {
        throw new CFG_ERR_SETTINGS_INVALID(`  ${where}.publicKeyFile: ${k.publicKeyFile} is not a PEM public key`);
      }
      publicKeys.push({ id: k.id, key: ed25519(key, `${where}.publicKeyFile`), source: k.publicKeyFile });
      return;
    }
    let pem: string;
    let source: string;
    if (k.privateKeyFile !== undefined) {
      pem = readText(k.privateKeyFile, `${where}.privateKeyFile`);
      source = k.privateKeyFile;
    } else {
      const name = k.privateKeyEnv as string;
      const value = env[name];
      if (!value) throw new CFG_ERR_SETTINGS_INVALID(`  ${where}.privateKeyEnv: the environment variable ${name} is not set`);
      pem = value;
      source = `$${name}`;
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch {
      throw new CFG_ERR_SETTINGS_INVALID(`  ${where}: ${source} is not a PEM private key`);
    }
    ed25519(key, where);
    privates.set(k.id, key.export({ type: 'pkcs8', format: 'pem' }).toString());
    publicKeys.push({ id: k.id, key: createPublicKey(key), source });
  });
  let signingId = settings.signingKey;
  if (signingId !== undefined && !privates.has(signingId)) {
    throw new CFG_ERR_SETTINGS_INVALID(`  audit.checkpoints.signingKey: '${signingId}' is not a key with privateKeyFile or privateKeyEnv`);
  }
  signingId ??= [...privates.keys()][0];
  const privateKeyPem = signingId === undefined ? undefined : privates.get(signingId);
  return { ...(signingId !== undefined && privateKeyPem !== undefined && { signer: { keyId: signingId, privateKeyPem } }), publicKeys };
}

function readText(file: string, where: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CFG_ERR_SETTINGS_INVALID(`  ${where}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Reads Ed25519 public keys from PEM files (`audit verify --public-key`, `audit witness
 * --public-key`): each file may hold several PEM blocks; a private key block gives its
 * public half.
 * @throws CFG_ERR_INVALID_REQUEST naming the file when it cannot be read, holds no PEM
 *   key, or holds a key that is not Ed25519.
 */
export function readPublicKeyFiles(files: readonly string[]): CheckpointPublicKey[] {
  const out: CheckpointPublicKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CFG_ERR_INVALID_REQUEST(`--public-key ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const blocks = text.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
    if (blocks.length === 0) throw new CFG_ERR_INVALID_REQUEST(`--public-key ${file}: no PEM key in it`);
    blocks.forEach((pem, i) => {
      let key: KeyObject;
      try {
        key = /PRIVATE KEY/.test(pem) ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
      } catch {
        throw new CFG_ERR_INVALID_REQUEST(`--public-key ${file}: PEM block ${i + 1} is not a key`);
      }
      if (key.asymmetricKeyType !== 'ed25519') {
        throw new CFG_ERR_INVALID_REQUEST(`--public-key ${file}: PEM block ${i + 1} is a ${key.asymmetricKeyType ?? 'symmetric'} key, not Ed25519`);
      }
      out.push({ key, source: file });
    });
  }
  return out;
}

/** One checkpoint read from outside evidence, with where it was found. */
export interface EvidenceCheckpoint {
  checkpoint: Checkpoint;
  /** `file:line`, for messages. */
  source: string;
}

/** What {@link parseCheckpointEvidence} found in a file. */
export interface CheckpointEvidence {
  checkpoints: EvidenceCheckpoint[];
  /** Lines that hold no checkpoint (other log lines, blank lines, text that is not JSON). */
  ignoredLines: number;
}

/**
 * Reads checkpoints from NDJSON text: the service log stream (lines with `"msg":"audit
 * checkpoint"` and a `checkpoint` member; every other line is ignored), the witness file
 * or `GET /v1/audit/checkpoints?format=ndjson` (one checkpoint per line), or the JSON of
 * that endpoint (`{"checkpoints":[...]}`) on one line.
 *
 * @param name the file name used in messages.
 * @throws CFG_ERR_INVALID_REQUEST naming `name:line` and the member for a line that is
 *   meant as a checkpoint (it has a `checkpoint` member, or a `signature` and a `seq`) but
 *   is malformed.
 */
export function parseCheckpointEvidence(text: string, name: string): CheckpointEvidence {
  const checkpoints: EvidenceCheckpoint[] = [];
  let ignoredLines = 0;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const where = `${name}:${i + 1}`;
    if (line === '') {
      if (i < lines.length - 1) ignoredLines++;
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      ignoredLines++;
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      ignoredLines++;
      return;
    }
    const o = v as Record<string, unknown>;
    const candidates: unknown[] = Array.isArray(o.checkpoints)
      ? o.checkpoints
      : o.checkpoint !== undefined
        ? [o.checkpoint]
        : 'signature' in o && 'seq' in o
          ? [o]
          : [];
    if (candidates.length === 0) {
      ignoredLines++;
      return;
    }
    for (const c of candidates) {
      const cp = parseCheckpoint(c);
      if (typeof cp === 'string') throw new CFG_ERR_INVALID_REQUEST(`${where}: not a valid checkpoint: ${cp}`);
      checkpoints.push({ checkpoint: cp, source: where });
    }
  });
  return { checkpoints, ignoredLines };
}
