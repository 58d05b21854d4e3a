/**
 * A configuration repository as a Git host serves it, for tests of a service that mirrors
 * it: a work clone the test commits in, its bare copy under `<root>/srv/<name>.git`, and
 * the real `git http-backend` serving that folder; and the push webhook a Git host sends.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { signWebhook } from 'config-service';
import type { ClientCert } from './certs.ts';
import { startGitHttpServer, type GitHttpServer } from './git-http-server.ts';
import { makeGitRepo, runGit, type GitFiles, type GitTestRepo } from './git-repo.ts';
import { httpsGet } from './https.ts';

/** A served repository (see the module header). */
export interface GitRemote {
  readonly work: GitTestRepo;
  /** The bare repository the server serves. */
  readonly bare: string;
  readonly server: GitHttpServer;
  /** Clone URL of the bare repository (`http://127.0.0.1:<port>/<name>.git`). */
  readonly url: string;
  /** `git push -q <bare> <args>` from the work clone. */
  push(...args: string[]): void;
  /** Stops the server and removes the work clone (the bare copy lives under `root`). */
  close(): Promise<void>;
}

/**
 * Makes a work repository with `files`, clones it bare to `<root>/srv/<name>.git` and
 * serves `<root>/srv` over Git smart HTTP.
 */
export async function startGitRemote(root: string, files: Record<string, string | Uint8Array>, opts: { name?: string } = {}): Promise<GitRemote> {
  const name = opts.name ?? 'config';
  const srv = join(root, 'srv');
  const bare = join(srv, `${name}.git`);
  const work = await makeGitRepo(files);
  runGit(root, 'clone', '-q', '--bare', work.dir, bare);
  const server = await startGitHttpServer({ projectRoot: srv });
  return {
    work,
    bare,
    server,
    url: `${server.url}/${name}.git`,
    push: (...args) => work.git('push', '-q', bare, ...args),
    close: async () => {
      await server.close();
      work.remove();
    },
  };
}

/** Writes a webhook secret file (mode 0600) under `dir`; @returns its path. */
export function writeWebhookSecret(dir: string, secret: string): string {
  const file = join(dir, 'webhook-secret');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

/** Who receives the webhook and how the test checks what it serves. */
export interface PushTarget {
  remote: GitRemote;
  /** The service's API URL. */
  apiUrl: string;
  /** PEM of the CA that signed the service's certificate. */
  ca: string;
  /** The webhook secret the service's repository entry names. */
  secret: string;
  /** A client that may read `app`. */
  client: ClientCert;
  /** The application whose file list shows the served commit (default `orders`). */
  app?: string;
}

/**
 * Commits `files` in the work clone, pushes `main`, sends a GitHub-style push webhook
 * (HMAC-SHA256 signature, a fresh delivery id) and waits until the service serves the
 * commit (`GET /v1/apps/<app>/files` answers with it).
 * @returns the commit and when the webhook was sent (`Date.now()`).
 */
export async function pushAndNotify(target: PushTarget, files: GitFiles, message: string, ms = 60_000): Promise<{ commit: string; hookAt: number }> {
  const { remote } = target;
  const before = remote.work.git('rev-parse', 'HEAD');
  const commit = remote.work.commitFiles(files, message);
  remote.push('main');
  const body = JSON.stringify({ ref: 'refs/heads/main', before, after: commit, repository: { full_name: 'platform/config' } });
  const [header, signature] = signWebhook('github', body, target.secret);
  const hookAt = Date.now();
  const hook = await httpsGet(target.apiUrl, '/v1/hooks/git', {
    ca: target.ca,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', [header]: signature, 'x-github-event': 'push', 'x-github-delivery': randomUUID() },
  });
  expect(hook.status).toBe(202);
  const client = { ca: target.ca, cert: target.client.cert, key: target.client.key };
  const deadline = Date.now() + ms;
  while ((await httpsGet(target.apiUrl, `/v1/apps/${target.app ?? 'orders'}/files`, client)).headers['config-commit'] !== commit) {
    if (Date.now() > deadline) throw new Error(`the service never served ${commit}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { commit, hookAt };
}
