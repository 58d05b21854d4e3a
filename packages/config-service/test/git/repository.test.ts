import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findGitdir, GitRepository } from '../../src/git/repository.js';
import { GIT_ENV, makeRepo, runGit, type TestRepo } from './fixtures.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

async function caught(p: Promise<unknown>): Promise<Error & { code?: string; statusCode?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string; statusCode?: number };
  }
  throw new Error('expected a rejection');
}

let repo: TestRepo;
let git: GitRepository;
let c: { main: string; feature: string; hash: string; tagCommit: string; tagObject: string };

/** Case 13's repository: slashes, `#`, an annotated tag. */
beforeEach(async () => {
  repo = makeRepo({ 'orders/application.yml': 'x: from-main\n', 'application.yml': 'common: 1\n' });
  const main = repo.commit;
  repo.git('checkout', '-q', '-b', 'feature/pay-42');
  const feature = repo.commitFiles({ 'orders/application.yml': 'x: from-feature\n' }, 'feature');
  repo.git('checkout', '-q', '-b', 'orders#1.4-ab12cd', main);
  const hash = repo.commitFiles({ 'orders/application.yml': 'x: from-hash-branch\n' }, 'hash');
  repo.git('checkout', '-q', '-b', 'release', main);
  const tagCommit = repo.commitFiles({ 'orders/application.yml': 'x: from-tag\n' }, 'tagged');
  repo.git('tag', '-a', '-m', 'release 1.2.0', 'v1.2.0');
  repo.git('tag', 'light', feature);
  const tagObject = repo.git('rev-parse', 'v1.2.0');
  repo.git('checkout', '-q', 'main');
  c = { main, feature, hash, tagCommit, tagObject };
  git = new GitRepository({ name: 'config', gitdir: await findGitdir(repo.dir), defaultBranch: 'main' });
});

afterEach(() => repo.remove());

describe('GitRepository.resolveRef (case 13)', () => {
  it('defaults to the configured branch', async () => {
    expect(await git.resolveRef()).toEqual({ commit: c.main, ref: 'refs/heads/main' });
  });

  it('resolves branches with slashes and #', async () => {
    expect(await git.resolveRef('feature/pay-42')).toEqual({ commit: c.feature, ref: 'refs/heads/feature/pay-42' });
    expect(await git.resolveRef('orders#1.4-ab12cd')).toEqual({ commit: c.hash, ref: 'refs/heads/orders#1.4-ab12cd' });
    expect(text((await git.readFileAt(c.feature, 'orders/application.yml'))!.bytes)).toBe('x: from-feature\n');
    expect(text((await git.readFileAt(c.hash, 'orders/application.yml'))!.bytes)).toBe('x: from-hash-branch\n');
  });

  it('peels an annotated tag to its commit (not the tag object)', async () => {
    expect(c.tagObject).not.toBe(c.tagCommit);
    expect(repo.git('cat-file', '-t', c.tagObject)).toBe('tag');
    expect(await git.resolveRef('v1.2.0')).toEqual({ commit: c.tagCommit, ref: 'refs/tags/v1.2.0' });
    expect(await git.resolveRef('light')).toEqual({ commit: c.feature, ref: 'refs/tags/light' });
    expect(text((await git.readFileAt(c.tagCommit, 'orders/application.yml'))!.bytes)).toBe('x: from-tag\n');
  });

  it('resolves full ref names', async () => {
    expect(await git.resolveRef('refs/heads/feature/pay-42')).toEqual({ commit: c.feature, ref: 'refs/heads/feature/pay-42' });
    expect(await git.resolveRef('refs/tags/v1.2.0')).toEqual({ commit: c.tagCommit, ref: 'refs/tags/v1.2.0' });
  });

  it('resolves full and abbreviated commit ids (any case), and a tag object id to its commit', async () => {
    expect(await git.resolveRef(c.feature)).toEqual({ commit: c.feature, ref: c.feature });
    expect(await git.resolveRef(c.feature.toUpperCase())).toEqual({ commit: c.feature, ref: c.feature });
    expect(await git.resolveRef(c.hash.slice(0, 7))).toEqual({ commit: c.hash, ref: c.hash });
    expect(await git.resolveRef(c.tagObject)).toEqual({ commit: c.tagCommit, ref: c.tagObject });
  });

  it('prefers a branch over a tag of the same name, and a branch over a hex abbreviation', async () => {
    repo.git('tag', 'feature/pay-42', c.main);
    expect((await git.resolveRef('feature/pay-42')).commit).toBe(c.feature);
    const abbrev = c.hash.slice(0, 8);
    repo.git('branch', abbrev, c.main);
    expect(await git.resolveRef(abbrev)).toEqual({ commit: c.main, ref: `refs/heads/${abbrev}` });
  });

  it('reads refs packed by git pack-refs and objects packed by git gc', async () => {
    repo.git('gc', '-q');
    repo.git('pack-refs', '--all');
    const fresh = new GitRepository({ name: 'config', gitdir: join(repo.dir, '.git'), defaultBranch: 'main' });
    expect(await fresh.resolveRef('feature/pay-42')).toEqual({ commit: c.feature, ref: 'refs/heads/feature/pay-42' });
    expect(await fresh.resolveRef('v1.2.0')).toEqual({ commit: c.tagCommit, ref: 'refs/tags/v1.2.0' });
    expect(text((await fresh.readFileAt(c.hash, 'orders/application.yml'))!.bytes)).toBe('x: from-hash-branch\n');
  });

  it('unknown refs are CFG_ERR_REF_NOT_FOUND 404', async () => {
    for (const ref of ['nope', 'feature/pay-43', 'refs/heads/nope', 'deadbeef', '0'.repeat(40), 'refs/tags/feature/pay-42']) {
      const err = await caught(git.resolveRef(ref));
      expect([ref, err.code, err.statusCode, err.message]).toEqual([
        ref,
        'CFG_ERR_REF_NOT_FOUND',
        404,
        `Ref '${ref}' not found in repository 'config'`,
      ]);
    }
  });

  it('an abbreviation of a non-commit object, or an ambiguous one, is 404', async () => {
    const blob = repo.git('rev-parse', `${c.main}:application.yml`);
    expect((await caught(git.resolveRef(blob.slice(0, 10)))).code).toBe('CFG_ERR_REF_NOT_FOUND');
    // Write blobs until two objects share a 4-hex prefix (deterministic contents).
    const dir = mkdtempSync(join(tmpdir(), 'cfg-blobs-'));
    const paths: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const p = join(dir, `b${i}`);
      writeFileSync(p, `blob ${i}\n`);
      paths.push(p);
    }
    const ids = execFileSync('git', ['-C', repo.dir, 'hash-object', '-w', '--stdin-paths'], { env: GIT_ENV, input: paths.join('\n'), encoding: 'utf8' })
      .trim()
      .split('\n');
    rmSync(dir, { recursive: true, force: true });
    const seen = new Set<string>();
    const dup = ids.map((id) => id.slice(0, 4)).find((p) => (seen.has(p) ? true : (seen.add(p), false)));
    expect(dup).toBeDefined();
    const err = await caught(git.resolveRef(dup!));
    expect([err.code, err.statusCode]).toEqual(['CFG_ERR_REF_NOT_FOUND', 404]);
  });

  it('invalid refs are CFG_ERR_INVALID_REF 400, before any lookup', async () => {
    for (const ref of ['feature/../x', 'refs/heads/../../config', 'a//b', 'x.lock', 'a@{1}']) {
      const err = await caught(git.resolveRef(ref));
      expect([ref, err.code, err.statusCode]).toEqual([ref, 'CFG_ERR_INVALID_REF', 400]);
    }
  });

  it('sees new commits of a local repository read in place', async () => {
    const next = repo.commitFiles({ 'orders/application.yml': 'x: next\n' }, 'next');
    expect(await git.resolveRef()).toEqual({ commit: next, ref: 'refs/heads/main' });
  });
});

describe('GitRepository reads', () => {
  it('readTree lists a directory with entry types; null for a missing dir or a file', async () => {
    const root = await git.readTree(c.main, '');
    expect([...root!.values()]).toEqual([
      { name: 'application.yml', oid: repo.git('rev-parse', `${c.main}:application.yml`), type: 'blob' },
      { name: 'orders', oid: repo.git('rev-parse', `${c.main}:orders`), type: 'tree' },
    ]);
    expect([...(await git.readTree(c.main, 'orders'))!.keys()]).toEqual(['application.yml']);
    expect(await git.readTree(c.main, 'missing')).toBeNull();
    expect(await git.readTree(c.main, 'orders/application.yml')).toBeNull();
    expect(await git.readTree(c.main, '../orders')).toBeNull();
    expect(await git.readTree(c.main, 'orders/')).toBeNull();
  });

  it('readFileAt and readBlob return the committed bytes; null for a missing file or a directory', async () => {
    const oid = repo.git('rev-parse', `${c.main}:orders/application.yml`);
    expect(await git.readFileAt(c.main, 'orders/application.yml')).toEqual({ oid, bytes: new TextEncoder().encode('x: from-main\n') });
    expect(text(await git.readBlob(oid))).toBe('x: from-main\n');
    expect(await git.readFileAt(c.main, 'orders/missing.yml')).toBeNull();
    expect(await git.readFileAt(c.main, 'orders')).toBeNull();
    expect(await git.readFileAt(c.main, '')).toBeNull();
    expect(await git.readFileAt(c.main, 'orders/../application.yml')).toBeNull();
  });

  it('never sees uncommitted working-tree changes (modified, staged, untracked)', async () => {
    writeFileSync(join(repo.dir, 'orders/application.yml'), 'x: dirty\n');
    writeFileSync(join(repo.dir, 'application.yml'), 'common: staged\n');
    repo.git('add', 'application.yml');
    writeFileSync(join(repo.dir, 'orders/untracked.yml'), 'y: 1\n');
    const { commit } = await git.resolveRef();
    expect(commit).toBe(c.main);
    expect(text((await git.readFileAt(commit, 'orders/application.yml'))!.bytes)).toBe('x: from-main\n');
    expect(text((await git.readFileAt(commit, 'application.yml'))!.bytes)).toBe('common: 1\n');
    expect(await git.readFileAt(commit, 'orders/untracked.yml')).toBeNull();
    expect((await git.listFiles(commit, '')).map((f) => f.path)).toEqual(['application.yml', 'orders/application.yml']);
  });

  it('refuses symlinks, submodules and Git LFS pointers with CFG_ERR_UNSUPPORTED_ENTRY 422', async () => {
    symlinkSync('../application.yml', join(repo.dir, 'orders/link.yml'));
    writeFileSync(
      join(repo.dir, 'orders/big.yml'),
      'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n',
    );
    repo.git('add', '-A');
    repo.git('update-index', '--add', '--cacheinfo', `160000,${c.feature},orders/vendor`);
    repo.git('commit', '-q', '-m', 'odd entries');
    const commit = repo.git('rev-parse', 'HEAD');
    const tree = (await git.readTree(commit, 'orders'))!;
    expect([tree.get('link.yml')?.type, tree.get('vendor')?.type, tree.get('big.yml')?.type]).toEqual(['symlink', 'submodule', 'blob']);
    const cases: Array<[string, string]> = [
      ['orders/link.yml', '"orders/link.yml" is a symbolic link; symbolic links are never followed or served'],
      ['orders/vendor', '"orders/vendor" is a submodule; submodules are never followed or served'],
      ['orders/big.yml', '"orders/big.yml" is a Git LFS pointer file; LFS content is not served'],
    ];
    for (const [path, message] of cases) {
      const err = await caught(git.readFileAt(commit, path));
      expect([err.code, err.statusCode, err.message]).toEqual(['CFG_ERR_UNSUPPORTED_ENTRY', 422, message]);
    }
  });

  it('listFiles walks a directory recursively with full paths', async () => {
    const commit = repo.commitFiles({ 'orders/sub/deep/a.json': '{}', 'orders/sub/b.txt': 'b' }, 'more');
    expect(await git.listFiles(commit, 'orders')).toEqual([
      { path: 'orders/application.yml', oid: repo.git('rev-parse', `${commit}:orders/application.yml`), type: 'blob' },
      { path: 'orders/sub/b.txt', oid: repo.git('rev-parse', `${commit}:orders/sub/b.txt`), type: 'blob' },
      { path: 'orders/sub/deep/a.json', oid: repo.git('rev-parse', `${commit}:orders/sub/deep/a.json`), type: 'blob' },
    ]);
    expect(await git.listFiles(commit, 'nope')).toEqual([]);
  });

  it('serves many concurrent reads at different refs correctly', async () => {
    repo.git('gc', '-q');
    const fresh = new GitRepository({ name: 'config', gitdir: join(repo.dir, '.git'), defaultBranch: 'main' });
    const want: Record<string, string> = { main: 'x: from-main\n', 'feature/pay-42': 'x: from-feature\n', 'orders#1.4-ab12cd': 'x: from-hash-branch\n', 'v1.2.0': 'x: from-tag\n' };
    const refs = Object.keys(want);
    const results = await Promise.all(
      Array.from({ length: 80 }, async (_, i) => {
        const ref = refs[i % refs.length]!;
        const { commit } = await fresh.resolveRef(ref);
        return [ref, text((await fresh.readFileAt(commit, 'orders/application.yml'))!.bytes)];
      }),
    );
    for (const [ref, body] of results) expect(body).toBe(want[ref!]);
  });
});

describe('findGitdir', () => {
  it('finds <path>/.git for a work tree, the path for a bare repo, and refuses a plain directory', async () => {
    expect(await findGitdir(repo.dir)).toBe(join(repo.dir, '.git'));
    const bareParent = mkdtempSync(join(tmpdir(), 'cfg-bare-'));
    const bare = join(bareParent, 'config.git');
    runGit(bareParent, 'clone', '-q', '--bare', repo.dir, bare);
    expect(await findGitdir(bare)).toBe(bare);
    const bareRepo = new GitRepository({ name: 'bare', gitdir: bare, defaultBranch: 'main' });
    expect(await bareRepo.resolveRef('feature/pay-42')).toEqual({ commit: c.feature, ref: 'refs/heads/feature/pay-42' });
    const plain = join(bareParent, 'plain');
    mkdirSync(plain);
    const err = await caught(findGitdir(plain));
    expect([err.code, err.statusCode, err.message]).toEqual(['CFG_ERR_REPO_UNAVAILABLE', 503, "Repository 'plain' is unavailable: not a Git repository"]);
    rmSync(bareParent, { recursive: true, force: true });
  });
});
