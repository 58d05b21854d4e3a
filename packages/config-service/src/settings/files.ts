/**
 * The files the service settings name, checked together at start-up, so one run reports
 * every missing or wrong file (TLS, secrets keys, audit checkpoint keys, JWT key, webhook
 * secrets, Git passwords) instead of the first. The readers that use the files later (`http/tls.ts`,
 * `secrets/keyring.ts`, ...) keep their deeper checks (validity dates, key sizes, a key
 * that belongs to its certificate).
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Settings } from './schema.js';

type Kind = 'certificate' | 'crl' | 'private key' | 'public key' | 'jwks' | 'secret';

function contentProblem(kind: Kind, bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  switch (kind) {
    case 'certificate':
      return text.includes('-----BEGIN CERTIFICATE-----') ? undefined : 'no PEM certificate (-----BEGIN CERTIFICATE-----) found';
    case 'crl':
      return text.includes('-----BEGIN X509 CRL-----') ? undefined : 'no PEM CRL (-----BEGIN X509 CRL-----) found';
    case 'private key':
      try {
        createPrivateKey(bytes);
        return undefined;
      } catch {
        return 'not an unencrypted PEM private key';
      }
    case 'public key':
      try {
        createPublicKey(bytes);
        return undefined;
      } catch {
        return 'not a PEM public key or certificate';
      }
    case 'jwks':
      try {
        JSON.parse(text);
        return undefined;
      } catch {
        return 'not JSON (a JWK Set is expected)';
      }
    case 'secret':
      return undefined;
  }
}

/**
 * Checks every file the settings name: it exists, is a regular file, can be read, and
 * holds the kind of content its setting needs (a PEM certificate, CRL, private or public
 * key, a JSON JWK Set; webhook secrets and passwords are only read).
 *
 * @returns one line per bad file, `  <setting>: <file>: <problem>` (never the content); `[]` when all are usable.
 */
export function checkSettingFiles(settings: Readonly<Settings>): string[] {
  const files: Array<[setting: string, file: string, kind: Kind]> = [
    ['server.tls.cert', settings.server.tls.cert, 'certificate'],
    ['server.tls.key', settings.server.tls.key, 'private key'],
    ['server.tls.clientCa', settings.server.tls.clientCa, 'certificate'],
    ...settings.server.tls.crl.map((f, i): [string, string, Kind] => [`server.tls.crl[${i}]`, f, 'crl']),
  ];
  settings.secrets.keys.forEach((k, i) => {
    if (k.privateKeyFile) files.push([`secrets.keys[${i}].privateKeyFile`, k.privateKeyFile, 'private key']);
    if (k.publicKeyFile) files.push([`secrets.keys[${i}].publicKeyFile`, k.publicKeyFile, 'public key']);
  });
  settings.audit.checkpoints.keys.forEach((k, i) => {
    if (k.privateKeyFile) files.push([`audit.checkpoints.keys[${i}].privateKeyFile`, k.privateKeyFile, 'private key']);
    if (k.publicKeyFile) files.push([`audit.checkpoints.keys[${i}].publicKeyFile`, k.publicKeyFile, 'public key']);
  });
  if (settings.jwt?.publicKeyFile) files.push(['jwt.publicKeyFile', settings.jwt.publicKeyFile, 'public key']);
  if (settings.jwt?.jwksFile) files.push(['jwt.jwksFile', settings.jwt.jwksFile, 'jwks']);
  settings.repositories.forEach((r, i) => {
    if (r.webhookSecretFile) files.push([`repositories[${i}].webhookSecretFile`, r.webhookSecretFile, 'secret']);
    if (r.auth?.passwordFile) files.push([`repositories[${i}].auth.passwordFile`, r.auth.passwordFile, 'secret']);
  });
  const problems: string[] = [];
  for (const [setting, file, kind] of files) {
    let bytes: Buffer;
    try {
      if (!statSync(file).isFile()) {
        problems.push(`  ${setting}: ${file}: not a regular file`);
        continue;
      }
      bytes = readFileSync(file);
    } catch (err) {
      problems.push(`  ${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      continue;
    }
    const problem = contentProblem(kind, bytes);
    if (problem !== undefined) problems.push(`  ${setting}: ${file}: ${problem}`);
  }
  return problems;
}
