import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFileSet, main, META_FILE, OUTPUT_NAMES, parseCommandLine, sha256Hex } from '../src/index.js';

function sinks(): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s) => ((out += s), true) }, stderr: { write: (s) => ((err += s), true) } },
    out: () => out,
    err: () => err,
  };
}

describe('main', () => {
  it('--help prints every flag on stdout and exits 0', async () => {
    const s = sinks();
    expect(await main(['--help'], {}, s.io)).toBe(0);
    expect(s.out()).toContain('CONFIG_INIT_SERVER');
    expect(s.err()).toBe('');
  });

  it('--version prints the version', async () => {
    const s = sinks();
    expect(await main(['--version'], {}, s.io)).toBe(0);
    expect(s.out()).toMatch(/^config-init \S+\n$/);
  });

  it('a usage error exits 64 and reaches an existing termination log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'config-init-main-'));
    const tlog = join(dir, 'termination-log');
    await writeFile(tlog, 'stale text from an earlier run that is longer');
    const s = sinks();
    expect(await main(['--app', 'Bad'], { CONFIG_INIT_TERMINATION_LOG: tlog }, s.io)).toBe(64);
    expect(s.err()).toMatch(/^config-init: /);
    expect(await readFile(tlog, 'utf8')).toBe(`config-init: exit 64 CFG_INIT_ERR_USAGE: ${s.err().replace(/^config-init: /, '').trim()}\n`);
  });

  it('a missing certificate file exits 64 naming the path', async () => {
    const s = sinks();
    const code = await main(
      ['--server', 'https://127.0.0.1:1', '--app', 'orders', '--cert', '/nope/c.pem', '--key', '/nope/k.pem', '--termination-log='],
      {},
      s.io,
    );
    expect(code).toBe(64);
    expect(s.err()).toMatch(/\/nope\/(c|k)\.pem/);
  });
});

describe('buildFileSet', () => {
  it('names files per format and adds the meta file with hashes', () => {
    const cmd = parseCommandLine(['--server', 'https://cs:8443/base', '--app', 'orders', '--profile', 'prod', '--ref', 'main', '--cert', 'c', '--key', 'k', '--format', 'json,dotenv'], {});
    if (cmd.kind !== 'fetch') throw new Error('not fetch');
    const commit = 'c'.repeat(40);
    const { files, meta } = buildFileSet(
      cmd.options,
      {
        commit,
        requests: 2,
        retries: 0,
        documents: [
          { format: 'json', body: Buffer.from('{"a":1}'), commit, etag: undefined, propertyCount: 1, contentType: 'application/json' },
          { format: 'dotenv', body: Buffer.from('A="1"\n'), commit, etag: undefined, propertyCount: 1, contentType: 'text/plain' },
        ],
      },
      Date.parse('2025-11-30T12:00:00Z'),
    );
    expect(files.map((f) => f.name)).toEqual([OUTPUT_NAMES.json, OUTPUT_NAMES.dotenv, META_FILE]);
    expect(meta).toEqual({
      app: 'orders',
      profiles: ['prod'],
      ref: 'main',
      commit,
      time: '2025-11-30T12:00:00.000Z',
      server: 'https://cs:8443/base',
      files: { 'application.json': sha256Hex('{"a":1}'), '.env': sha256Hex('A="1"\n') },
    });
    expect(JSON.parse(String(files[2]?.content))).toEqual(meta);
  });
});
