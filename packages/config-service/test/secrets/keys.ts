/**
 * Test keys for the secrets tests: RSA pairs generated once per file, written as PEM
 * files in a temp folder.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestKey {
  id: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
  privateKeyFile: string;
  publicKeyFile: string;
}

/** A fresh temp folder. */
export function tempDir(name = 'secrets'): string {
  return mkdtempSync(path.join(os.tmpdir(), `cfgsvc-${name}-`));
}

/** Generates an RSA key pair `id` (default 2048 bits) and writes it to `dir`. */
export function rsaKey(dir: string, id: string, bits = 2048): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const privateKeyFile = path.join(dir, `${id}.private.pem`);
  const publicKeyFile = path.join(dir, `${id}.public.pem`);
  writeFileSync(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { id, publicKey, privateKey, privateKeyFile, publicKeyFile };
}

/**
 * Asserts that nothing secret appears in an error: neither its message nor its `data`
 * (as JSON) contains any of `needles` (plaintexts, base64 payloads, PEM text).
 */
export function leakedIn(err: unknown, needles: readonly string[]): string[] {
  const e = err as Error & { data?: unknown };
  const hay = `${e.message}\n${JSON.stringify(e.data ?? null)}\n${String(e.stack ?? '')}`;
  return needles.filter((n) => n.length > 0 && hay.includes(n));
}

/** The base64 payload of a `{cipher}` text (after the optional `{key:}` and `{app:}`/`{shared}` prefixes). */
export function payloadOf(cipher: string): string {
  return cipher.replace(/^\{cipher\}(\{key:[^}]*\})?(\{(?:shared|app:[^}]*)\})?/, '');
}

/** Catches what `fn` throws (fails when it returns). */
export function thrown(fn: () => unknown): Error & { code?: string; statusCode?: number; data?: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string; statusCode?: number; data?: Record<string, unknown> };
  }
  throw new Error('expected an error, got a result');
}
