import { statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Command, CommanderError } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerEncryptCommand } from '../../src/cli/encrypt.js';
import { decryptValue } from '../../src/secrets/envelope.js';
import { loadKeyring } from '../../src/secrets/keyring.js';
import { rsaKey, tempDir, type TestKey } from './keys.js';

/** Runs `config-service <args>` in-process with the encrypt command only; returns stdout. */
async function run(args: string[], stdin = ''): Promise<string> {
  let out = '';
  const program = new Command('config-service').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerEncryptCommand(program, { stdin: Readable.from([Buffer.from(stdin, 'utf8')]), stdout: { write: (t: string) => (out += t) } });
  await program.parseAsync(['node', 'config-service', ...args]);
  return out;
}

let dir: string;
let k1: TestKey;

beforeAll(() => {
  dir = tempDir('cli');
  k1 = rsaKey(dir, 'k1');
});

describe('config-service encrypt (offline)', () => {
  it('--value: prints {cipher}{key:<id>}... that the service keyring decrypts', async () => {
    const out = await run(['encrypt', '--public-key', k1.publicKeyFile, '--key-id', 'k1', '--value', 'pä$$ w0rd']);
    expect(out).toMatch(/^\{cipher\}\{key:k1\}[A-Za-z0-9+/]+={0,2}\n$/);
    const ring = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }] });
    expect(decryptValue(out.trim(), ring)).toBe('pä$$ w0rd');
  });

  it('stdin: one trailing newline dropped unless --keep-newline; a private key PEM works as --public-key', async () => {
    const ring = loadKeyring({ keys: [{ id: 'k1', privateKeyFile: k1.privateKeyFile }] });
    const a = await run(['encrypt', '--public-key', k1.privateKeyFile, '--key-id', 'k1'], 'line1\nline2\n');
    expect(decryptValue(a.trim(), ring)).toBe('line1\nline2');
    const b = await run(['encrypt', '--public-key', k1.publicKeyFile, '--key-id', 'k1', '--keep-newline'], 'x\r\n');
    expect(decryptValue(b.trim(), ring)).toBe('x\r\n');
    const empty = await run(['encrypt', '--public-key', k1.publicKeyFile, '--key-id', 'k1'], '');
    expect(decryptValue(empty.trim(), ring)).toBe('');
  });

  it('usage errors (missing options) are CommanderErrors (exit 64 in main)', async () => {
    await expect(run(['encrypt', '--value', 'x'])).rejects.toBeInstanceOf(CommanderError);
    await expect(run(['encrypt', 'keygen', '--dir', dir])).rejects.toBeInstanceOf(CommanderError);
  });

  it('bad key file or id: CFG_ERR_INVALID_REQUEST naming the file, never the value', async () => {
    const small = rsaKey(dir, 'small', 1024);
    const err = await run(['encrypt', '--public-key', small.publicKeyFile, '--key-id', 'small', '--value', 'topsecret']).then(
      () => new Error('expected a failure'),
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err).toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST' });
    expect(err.message).toContain(small.publicKeyFile);
    expect(err.message).not.toContain('topsecret');
    await expect(run(['encrypt', '--public-key', k1.publicKeyFile, '--key-id', 'bad id', '--value', 'topsecret'])).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST' });
    await expect(run(['encrypt', '--public-key', path.join(dir, 'nope.pem'), '--key-id', 'k1', '--value', 'x'])).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST' });
  });
});

describe('config-service encrypt keygen', () => {
  it('writes an RSA-3072 pair (private 0600) usable by the keyring; refuses to overwrite without --force', async () => {
    const keys = path.join(dir, 'keys');
    const out = await run(['encrypt', 'keygen', '--dir', keys, '--id', 'dev-1']);
    const privateKeyFile = path.join(keys, 'dev-1.private.pem');
    const publicKeyFile = path.join(keys, 'dev-1.public.pem');
    expect(out).toBe(`${privateKeyFile}\n${publicKeyFile}\n`);
    expect(statSync(privateKeyFile).mode & 0o777).toBe(0o600);
    expect(statSync(publicKeyFile).mode & 0o777).toBe(0o644);

    const ring = loadKeyring({ keys: [{ id: 'dev-1', privateKeyFile, publicKeyFile }] });
    expect(ring.get('dev-1')?.bits).toBe(3072);
    const cipher = await run(['encrypt', '--public-key', publicKeyFile, '--key-id', 'dev-1', '--value', 'hello']);
    expect(decryptValue(cipher.trim(), ring)).toBe('hello');

    await expect(run(['encrypt', 'keygen', '--dir', keys, '--id', 'dev-1'])).rejects.toMatchObject({ code: 'CFG_ERR_INVALID_REQUEST' });
    // --force replaces the pair: values of the old key no longer decrypt with the new one.
    await run(['encrypt', 'keygen', '--dir', keys, '--id', 'dev-1', '--force']);
    expect(statSync(privateKeyFile).mode & 0o777).toBe(0o600);
    expect(() => decryptValue(cipher.trim(), loadKeyring({ keys: [{ id: 'dev-1', privateKeyFile }] }))).toThrow(/authentication failed/);
  }, 60_000);
});
