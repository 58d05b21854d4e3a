/**
 * History and diff (SPEC §4, §5.1) below the HTTP layer: first-parent walk, scan cap,
 * spring layout and the schema file, and the diff's order and redaction.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AppConfigReader } from '../../../src/config/app-config.js';
import { appHistory, diffConfigs } from '../../../src/config/history.js';
import { GitRepository } from '../../../src/git/repository.js';
import { makeRepo, type TestRepo } from '../../git/fixtures.js';
import { configFor } from '../../config/helpers.js';

const repos: TestRepo[] = [];
afterAll(() => {
  for (const r of repos) r.remove();
});

function open(files: Record<string, string>, layout: 'folders' | 'spring' = 'folders'): { repo: TestRepo; git: GitRepository; reader: AppConfigReader } {
  const repo = makeRepo(files);
  repos.push(repo);
  const git = new GitRepository({ name: 'config', gitdir: `${repo.dir}/.git`, defaultBranch: 'main' });
  return { repo, git, reader: new AppConfigReader(git, layout) };
}

describe('appHistory', () => {
  it('follows first parents only: a merged side branch shows as the merge commit', async () => {
    const { repo, git, reader } = open({ 'orders/application.yml': 'a: 1\n' });
    repo.git('checkout', '-q', '-b', 'side');
    const side = repo.commitFiles({ 'orders/application.yml': 'a: 2\n' }, 'side change');
    repo.git('checkout', '-q', 'main');
    const other = repo.commitFiles({ 'billing/application.yml': 'x: 1\n' }, 'billing');
    repo.git('merge', '-q', '--no-ff', '-m', 'merge side', 'side');
    const merge = repo.git('rev-parse', 'HEAD');
    const { commits, truncated } = await appHistory(git, reader, merge, 'orders', [], { limit: 10, scanCap: 100 });
    expect(commits.map((c) => [c.commit, c.message, c.documents])).toEqual([
      [merge, 'merge side', ['orders/application.yml']],
      [repo.commit, 'initial', ['orders/application.yml']],
    ]);
    expect(commits.map((c) => c.commit)).not.toContain(side);
    expect(commits.map((c) => c.commit)).not.toContain(other);
    expect(truncated).toBe(false);
  });

  it('stops at the scan cap and says so; counts the schema file; commits before the app existed are not listed', async () => {
    const { repo, git, reader } = open({ 'application.yml': 's: 1\n' });
    const created = repo.commitFiles({ 'orders/application.yml': 'a: 1\n' }, 'create orders');
    const schema = repo.commitFiles({ 'orders/schema.json': '{}\n' }, 'schema');
    const raw = repo.commitFiles({ 'orders/files/x.txt': 'x\n' }, 'raw file');
    const all = await appHistory(git, reader, raw, 'orders', [], { limit: 10, scanCap: 100 });
    expect(all.commits.map((c) => [c.commit, c.documents])).toEqual([
      [schema, ['orders/schema.json']],
      [created, ['application.yml', 'orders/application.yml']],
    ]);
    const capped = await appHistory(git, reader, raw, 'orders', [], { limit: 10, scanCap: 2 });
    expect(capped).toEqual({ commits: [expect.objectContaining({ commit: schema })], truncated: true });
  });

  it('reads the spring layout', async () => {
    const { repo, git, reader } = open({ 'orders.yml': 'a: 1\n', 'billing.yml': 'b: 1\n' }, 'spring');
    const prod = repo.commitFiles({ 'orders-prod.yml': 'a: 2\n' }, 'prod');
    const billing = repo.commitFiles({ 'billing.yml': 'b: 2\n' }, 'billing');
    const { commits } = await appHistory(git, reader, billing, 'orders', ['prod'], { limit: 10, scanCap: 100 });
    expect(commits.map((c) => [c.commit, c.documents])).toEqual([
      [prod, ['orders-prod.yml']],
      [repo.commit, ['orders.yml']],
    ]);
  });
});

describe('diffConfigs', () => {
  it('sorts like the properties format (list indices numerically) and redacts secrets on both sides', () => {
    const before = configFor({ 'orders/application.yml': "l:\n  - a\n  - b\ns: '{cipher}OLD'\nk: '{cipher}SAME'\np: 'plain'\n" }, 'orders');
    const after = configFor({ 'orders/application.yml': "l: [a, b, c, d, e, f, g, h, i, j, k]\ns: '{cipher}NEW'\nk: '{cipher}SAME'\np: '{cipher}NOW'\n" }, 'orders');
    const { changes, secretKeys } = diffConfigs(before, after);
    expect(changes.map((c) => c.key)).toEqual(['l[2]', 'l[3]', 'l[4]', 'l[5]', 'l[6]', 'l[7]', 'l[8]', 'l[9]', 'l[10]', 'p', 's']);
    expect(changes.slice(-2)).toEqual([
      { key: 'p', change: 'changed', from: '<redacted>', to: '<redacted>' },
      { key: 's', change: 'changed', from: '<redacted>', to: '<redacted>' },
    ]);
    expect(secretKeys).toEqual(['p', 's']);
    expect(JSON.stringify(changes)).not.toContain('cipher');
  });
});
