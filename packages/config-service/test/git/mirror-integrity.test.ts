/**
 * The mirror's trust checks (src/git/mirror-integrity.ts) on real packs made by `git repack`
 * and real folders: every damage gets its exact reason, nothing passes by accident.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { checkMirrorPath, verifyPack, verifyRefs } from '../../src/git/mirror-integrity.js';
import { GIT_ENV, makeRepo, runGit } from './fixtures.js';

const repo = makeRepo({ 'orders/application.yml': 'x: 1\n', 'billing/application.yml': 'y: 2\n' });
runGit(repo.dir, 'repack', '-a', '-d', '-q');
const packDir = join(repo.dir, '.git', 'objects', 'pack');
const idx = readdirSync(packDir).find((f) => f.endsWith('.idx'))!;
const pack = `${idx.slice(0, -4)}.pack`;
const tmp = mkdtempSync(join(tmpdir(), 'cfg-integrity-'));
afterAll(() => {
  repo.remove();
  rmSync(tmp, { recursive: true, force: true });
});

/** A copy of the pack and index in a fresh folder, with `damage` applied. */
function copy(damage: (dir: string) => void = () => undefined): string {
  const dir = mkdtempSync(join(tmp, 'pack-'));
  writeFileSync(join(dir, idx), readFileSync(join(packDir, idx)));
  writeFileSync(join(dir, pack), readFileSync(join(packDir, pack)));
  damage(dir);
  return dir;
}

describe('verifyPack', () => {
  it('accepts a whole pack', async () => {
    expect(await verifyPack(copy(), idx)).toBeNull();
  });

  it.each<[string, (dir: string) => void, string]>([
    ['truncated pack', (d) => truncateSync(join(d, pack), 40), `${pack} is truncated or damaged (its trailer does not match the index)`],
    ['flipped byte in the pack', (d) => {
      const b = readFileSync(join(d, pack));
      b[20] = b[20]! ^ 0xff;
      writeFileSync(join(d, pack), b);
    }, `${pack} is damaged (checksum mismatch)`],
    ['flipped byte in the index', (d) => {
      const b = readFileSync(join(d, idx));
      b[50] = b[50]! ^ 0xff; // inside the fan-out table
      writeFileSync(join(d, idx), b);
    }, `${idx} is damaged (checksum mismatch)`],
    ['missing pack', (d) => rmSync(join(d, pack)), `${pack} is missing`],
    ['truncated index', (d) => truncateSync(join(d, idx), 100), `${idx} is truncated`],
  ])('%s', async (_name, damage, reason) => {
    expect(await verifyPack(copy(damage), idx)).toBe(reason);
  });
});

describe('checkMirrorPath', () => {
  it('a symlink anywhere from dataDir down to the mirror, or inside it, is named; dataDir itself may be one', async () => {
    const data = mkdtempSync(join(tmp, 'data-'));
    const gitdir = join(data, 'mirrors', 'config.git');
    expect(await checkMirrorPath(data, gitdir)).toBeNull(); // nothing yet
    mkdirSync(join(gitdir, 'objects', 'pack'), { recursive: true });
    expect(await checkMirrorPath(data, gitdir)).toBeNull();
    const elsewhere = mkdtempSync(join(tmp, 'elsewhere-'));
    rmSync(join(gitdir, 'objects', 'pack'), { recursive: true });
    symlinkSync(elsewhere, join(gitdir, 'objects', 'pack'));
    expect(await checkMirrorPath(data, gitdir)).toEqual({ path: join(gitdir, 'objects', 'pack'), reason: "'mirrors/config.git/objects/pack' is a symbolic link" });
    rmSync(join(data, 'mirrors'), { recursive: true });
    symlinkSync(elsewhere, join(data, 'mirrors'));
    expect(await checkMirrorPath(data, gitdir)).toEqual({ path: join(data, 'mirrors'), reason: "'mirrors' is a symbolic link" });
    const linkToData = join(tmp, 'data-link');
    rmSync(join(data, 'mirrors'));
    symlinkSync(data, linkToData);
    expect(await checkMirrorPath(linkToData, join(linkToData, 'mirrors', 'config.git'))).toBeNull();
    expect(await checkMirrorPath(data, join(tmp, 'outside.git'))).toMatchObject({ reason: 'the mirror path is not inside dataDir' });
  });
});

describe('verifyRefs', () => {
  it('finds a blob of the new head missing from the packs, checking only what changed since the verified head', async () => {
    const r = makeRepo({ 'orders/application.yml': 'x: 1\n', 'billing/application.yml': 'y: 2\n' });
    try {
      const c1 = r.commit;
      const c2 = r.commitFiles({ 'billing/application.yml': 'y: 3\n' }, 'billing');
      const missing = r.git('rev-parse', `${c2}:billing/application.yml`);
      const untouched = r.git('rev-parse', `${c1}:orders/application.yml`);
      // A mirror whose one pack lacks the new blob (a fetch that lost it).
      const bare = mkdtempSync(join(tmp, 'mirror-'));
      mkdirSync(join(bare, 'objects', 'pack'), { recursive: true });
      const ids = [...r.git('rev-list', '--objects', c2).split('\n').map((l) => l.split(' ')[0]!)].filter((id) => id !== missing);
      const name = execFileSync('git', ['-C', r.dir, 'pack-objects', '-q', join(bare, 'objects', 'pack', 'pack')], { env: GIT_ENV, input: `${ids.join('\n')}\n`, encoding: 'utf8' }).trim();
      const snapshot = { refs: new Map([['refs/remotes/origin/main', c2]]), packs: new Set([`pack-${name}.idx`]) };
      const only = new Set(['refs/remotes/origin/main']);
      const reason = `refs/heads/main → ${c2}: blob ${missing} (billing/application.yml) is not in the mirror`;
      expect(await verifyRefs(bare, snapshot, 'main', only)).toBe(reason);
      expect(await verifyRefs(bare, snapshot, 'main', only, c1)).toBe(reason);
      // A blob that the verified head already had is not looked at again.
      const withoutOld = mkdtempSync(join(tmp, 'mirror-'));
      mkdirSync(join(withoutOld, 'objects', 'pack'), { recursive: true });
      const ids2 = [...r.git('rev-list', '--objects', c2, c1).split('\n').map((l) => l.split(' ')[0]!)].filter((id) => id !== untouched);
      const name2 = execFileSync('git', ['-C', r.dir, 'pack-objects', '-q', join(withoutOld, 'objects', 'pack', 'pack')], { env: GIT_ENV, input: `${ids2.join('\n')}\n`, encoding: 'utf8' }).trim();
      const snapshot2 = { refs: new Map([['refs/remotes/origin/main', c2]]), packs: new Set([`pack-${name2}.idx`]) };
      expect(await verifyRefs(withoutOld, snapshot2, 'main', only, c1)).toBeNull();
      expect(await verifyRefs(withoutOld, snapshot2, 'main', only)).toBe(`refs/heads/main → ${c2}: blob ${untouched} (orders/application.yml) is not in the mirror`);
      // Every check closes the pack files it opened (was: left to the garbage collector).
      expect(openPackFiles()).toEqual([]);
    } finally {
      r.remove();
    }
  });
});

/** Pack and index files this process holds open (Linux: /proc/self/fd). */
function openPackFiles(): string[] {
  const held: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(join('/proc/self/fd', fd));
      if (/\.(pack|idx)$/.test(target)) held.push(target);
    } catch {
      // closed while listing
    }
  }
  return held;
}
