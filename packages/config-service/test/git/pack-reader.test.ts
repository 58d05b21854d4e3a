/**
 * The pack reader of mirrors (src/git/pack-reader.ts) against the git CLI: every object
 * of a repository with a long delta history, packed with offset deltas and again with
 * reference deltas, reads back byte for byte as `git cat-file` prints it; and a
 * GitRepository reading through it (a published snapshot) sees the same trees, files and
 * first-parent history as one reading through isomorphic-git.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, PackSet, PackFormatError } from '../../src/git/pack-reader.js';
import { GitRepository } from '../../src/git/repository.js';
import { GIT_ENV, makeRepo, type TestRepo } from './fixtures.js';

let repo: TestRepo;

beforeAll(() => {
  repo = makeRepo({ 'orders/application.yml': 'a: 0\n', 'application.yml': 'shared: 1\n' });
  // Enough history for long delta chains: one document rewritten many times.
  for (let i = 1; i <= 60; i++) {
    const lines = Array.from({ length: 40 }, (_, j) => `key${j}: ${j === i % 40 ? `changed-${i}` : `value-${j}`}`).join('\n');
    repo.commitFiles({ 'orders/application.yml': `${lines}\n`, [`app${i % 5}/application.yml`]: `n: ${i}\n` }, `change ${i}\n\nbody of ${i}\r\n`);
  }
  repo.git('tag', '-a', 'v1', '-m', 'release');
});

afterAll(() => repo?.remove());

function allObjects(gitdir: string): Array<{ oid: string; type: string }> {
  return execFileSync('git', ['--git-dir', gitdir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objecttype)'], { env: GIT_ENV, encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const [oid, type] = l.split(' ');
      return { oid: oid!, type: type! };
    });
}

function packsOf(gitdir: string): Set<string> {
  return new Set(readdirSync(join(gitdir, 'objects', 'pack')).filter((f) => f.endsWith('.idx')));
}

describe.each([
  ['offset deltas', ['repack', '-a', '-d', '-f', '--depth=50', '--window=50']],
  ['reference deltas', ['-c', 'repack.useDeltaBaseOffset=false', 'repack', '-a', '-d', '-f', '--depth=50', '--window=50']],
])('PackSet with %s', (_name, repackArgs) => {
  let gitdir: string;
  beforeAll(() => {
    gitdir = join(repo.dir, '.git');
    execFileSync('git', ['--git-dir', gitdir, ...repackArgs], { env: GIT_ENV });
  });

  it('reads every object as git cat-file prints it', async () => {
    const objects = allObjects(gitdir);
    expect(objects.length).toBeGreaterThan(200);
    const deltas = execFileSync('git', ['--git-dir', gitdir, 'verify-pack', '-v', ...[...packsOf(gitdir)].map((p) => join(gitdir, 'objects', 'pack', p))], { env: GIT_ENV, encoding: 'utf8' });
    expect(deltas).toMatch(/chain length = [5-9]\d*|chain length = \d\d/); // long chains exist
    const packs = new PackSet(join(gitdir, 'objects', 'pack'));
    try {
      for (const { oid, type } of objects) {
        const expected = execFileSync('git', ['--git-dir', gitdir, 'cat-file', type, oid], { env: GIT_ENV });
        const got = await packs.read(oid, packsOf(gitdir));
        expect(got?.type, oid).toBe(type);
        expect(Buffer.compare(got!.data, expected), oid).toBe(0);
      }
      expect(await packs.read('0'.repeat(40), packsOf(gitdir))).toBeNull();
      expect(await packs.has(objects[0]!.oid, packsOf(gitdir))).toBe(true);
      expect(await packs.has('f'.repeat(40), packsOf(gitdir))).toBe(false);
    } finally {
      await packs.close();
    }
  });

  it('gives a GitRepository with a snapshot the same trees, files and history as isomorphic-git', async () => {
    const head = repo.git('rev-parse', 'HEAD');
    const plain = new GitRepository({ name: 'r', gitdir, defaultBranch: 'main' });
    const packed = new GitRepository({ name: 'r', gitdir, defaultBranch: 'main' });
    const refs = new Map([
      ['refs/heads/main', head],
      ['refs/tags/v1', repo.git('rev-parse', 'refs/tags/v1')],
    ]);
    packed.publishSnapshot({ refs, packs: packsOf(gitdir) });
    expect(await packed.resolveRef('v1')).toEqual(await plain.resolveRef('v1'));
    expect(await packed.resolveRef()).toEqual({ commit: head, ref: 'refs/heads/main' });
    for (const dir of ['', 'orders', 'app3']) expect([...((await packed.readTree(head, dir)) ?? [])]).toEqual([...((await plain.readTree(head, dir)) ?? [])]);
    expect(await packed.readFileAt(head, 'orders/application.yml')).toEqual(await plain.readFileAt(head, 'orders/application.yml'));
    expect(await packed.listFiles(head, '')).toEqual(await plain.listFiles(head, ''));
    const history = async (r: GitRepository) => {
      const out = [];
      for await (const c of r.walkFirstParent(head, 100)) out.push(c);
      return out;
    };
    const expected = await history(plain);
    expect(expected.length).toBe(61);
    expect(await history(packed)).toEqual(expected);
    expect(await packed.hasObject(head)).toBe(true);
    await expect(packed.readBlob(head)).rejects.toMatchObject({ code: 'NotFoundError' });
    packed.publishSnapshot(null);
  });
});

describe('applyDelta', () => {
  it('copies and inserts, and refuses a delta that does not fit its base', () => {
    const base = Buffer.from('hello world');
    // source size 11, target size 12: copy "hello " (offset 0, 6 bytes), insert "there!"
    const delta = Buffer.from([11, 12, 0x80 | 0x10, 6, 6, ...Buffer.from('there!')]);
    expect(applyDelta(base, delta).toString()).toBe('hello there!');
    expect(() => applyDelta(Buffer.from('short'), delta)).toThrow(PackFormatError);
    expect(() => applyDelta(base, Buffer.from([11, 5, 0]))).toThrow(PackFormatError);
  });
});
