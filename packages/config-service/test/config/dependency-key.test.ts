/**
 * `AppConfigReader.dependencyKey` (issue 12): ETags and rendered-response caches follow
 * what an application reads, not the commit. A commit that touches another application
 * keeps the key; every change to what the application reads changes it: its documents,
 * the shared `application*` documents, a `.properties` that starts to shadow a `.yml`, the
 * schema, its existence, and (when asked for) its files and templates folders.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AppConfigReader } from '../../src/config/app-config.js';
import { GitRepository } from '../../src/git/repository.js';
import { makeRepo, type TestRepo } from '../git/fixtures.js';

const repos: TestRepo[] = [];
afterAll(() => {
  for (const r of repos) r.remove();
});

function open(files: Record<string, string>, layout: 'folders' | 'spring' = 'folders'): { repo: TestRepo; reader: AppConfigReader } {
  const repo = makeRepo(files);
  repos.push(repo);
  const git = new GitRepository({ name: 'config', gitdir: `${repo.dir}/.git`, defaultBranch: 'main' });
  return { repo, reader: new AppConfigReader(git, layout) };
}

const DOCS = { documents: true } as const;

describe('dependencyKey', () => {
  it('stays when a commit touches only another application, changes when the app or the shared documents change', async () => {
    const { repo, reader } = open({ 'application.yml': 'shared: 1\n', 'orders/application.yml': 'a: 1\n', 'billing/application.yml': 'b: 1\n' });
    const k0 = await reader.dependencyKey(repo.commit, 'orders', [], DOCS);
    const c1 = repo.commitFiles({ 'billing/application.yml': 'b: 2\n' }, 'billing only');
    expect(await reader.dependencyKey(c1, 'orders', [], DOCS)).toBe(k0);
    expect(await reader.dependencyKey(c1, 'billing', [], DOCS)).not.toBe(await reader.dependencyKey(repo.commit, 'billing', [], DOCS));
    const c2 = repo.commitFiles({ 'application.yml': 'shared: 2\n' }, 'shared');
    const k2 = await reader.dependencyKey(c2, 'orders', [], DOCS);
    expect(k2).not.toBe(k0);
    const c3 = repo.commitFiles({ 'orders/application.yml': 'a: 2\n' }, 'orders');
    expect(await reader.dependencyKey(c3, 'orders', [], DOCS)).not.toBe(k2);
  });

  it('changes when a .properties starts to shadow a .yml of the same layer, and for a profile document only with that profile', async () => {
    const { repo, reader } = open({ 'orders/application.yml': 'a: 1\n' });
    const k0 = await reader.dependencyKey(repo.commit, 'orders', [], DOCS);
    const kp0 = await reader.dependencyKey(repo.commit, 'orders', ['prod'], DOCS);
    const c1 = repo.commitFiles({ 'orders/application.properties': 'a=1\n' }, 'properties');
    expect(await reader.dependencyKey(c1, 'orders', [], DOCS)).not.toBe(k0);
    const c2 = repo.commitFiles({ 'orders/application-dev.yml': 'a: 3\n' }, 'dev profile');
    expect(await reader.dependencyKey(c2, 'orders', ['prod'], DOCS)).not.toBe(kp0); // the .properties of c1
    expect(await reader.dependencyKey(c2, 'orders', ['prod'], DOCS)).toBe(await reader.dependencyKey(c1, 'orders', ['prod'], DOCS));
    expect(await reader.dependencyKey(c2, 'orders', ['dev'], DOCS)).not.toBe(await reader.dependencyKey(c1, 'orders', ['dev'], DOCS));
  });

  it('covers the schema, the existence of the application, and the files and templates folders when asked', async () => {
    const { repo, reader } = open({ 'orders/application.yml': 'a: 1\n' });
    const both = { documents: true, overlays: ['files', 'templates'] } as const;
    const k0 = await reader.dependencyKey(repo.commit, 'orders', [], both);
    const c1 = repo.commitFiles({ 'orders/schema.json': '{}\n' }, 'schema');
    const k1 = await reader.dependencyKey(c1, 'orders', [], both);
    expect(k1).not.toBe(k0);
    const c2 = repo.commitFiles({ 'orders/files/logback.xml': '<x/>\n' }, 'file');
    const k2 = await reader.dependencyKey(c2, 'orders', [], both);
    expect(k2).not.toBe(k1);
    expect(await reader.dependencyKey(c2, 'orders', [], DOCS)).toBe(await reader.dependencyKey(c1, 'orders', [], DOCS));
    const c3 = repo.commitFiles({ 'orders/templates-prod/nginx.conf': 'x\n' }, 'template for prod');
    expect(await reader.dependencyKey(c3, 'orders', [], both)).toBe(k2);
    expect(await reader.dependencyKey(c3, 'orders', ['prod'], both)).not.toBe(await reader.dependencyKey(c2, 'orders', ['prod'], both));
    const c4 = repo.commitFiles({ 'orders/application.yml': null, 'orders/schema.json': null, 'orders/files/logback.xml': null, 'orders/templates-prod/nginx.conf': null, 'other/application.yml': 'x: 1\n' }, 'orders removed');
    expect(await reader.dependencyKey(c4, 'orders', [], both)).not.toBe(await reader.dependencyKey(c3, 'orders', [], both));
  });

  it('spring layout: the root documents of the application and the shared ones', async () => {
    const { repo, reader } = open({ 'application.yml': 's: 1\n', 'orders.yml': 'a: 1\n', 'billing.yml': 'b: 1\n' }, 'spring');
    const k0 = await reader.dependencyKey(repo.commit, 'orders', [], DOCS);
    const c1 = repo.commitFiles({ 'billing.yml': 'b: 2\n' }, 'billing');
    expect(await reader.dependencyKey(c1, 'orders', [], DOCS)).toBe(k0);
    const c2 = repo.commitFiles({ 'orders.yml': 'a: 2\n' }, 'orders');
    expect(await reader.dependencyKey(c2, 'orders', [], DOCS)).not.toBe(k0);
  });
});
