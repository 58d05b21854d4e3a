/**
 * Real Git repositories for the git tests, made with the git CLI in fresh temp directories,
 * with a fixed identity and dates and no user or system configuration (deterministic ids).
 * (The end-to-end workspace has the same helper in test/helpers/git-repo.ts; it lies outside
 * this package's rootDir, hence this copy.)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_AUTHOR_EMAIL: 'author@example.test',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'Test Committer',
  GIT_COMMITTER_EMAIL: 'committer@example.test',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
};

/** Runs `git -C cwd args…`; returns stdout without its trailing newline. */
export function runGit(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], { env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).replace(/\n$/, '');
}

export interface TestRepo {
  dir: string;
  commit: string;
  git(...args: string[]): string;
  commitFiles(files: Record<string, string | Uint8Array | null>, message: string): string;
  remove(): void;
}

/** A work-tree repository with one commit holding `files`. */
export function makeRepo(files: Record<string, string | Uint8Array>, branch = 'main'): TestRepo {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-git-unit-'));
  const git = (...args: string[]): string => runGit(dir, ...args);
  git('init', '-q', '-b', branch);
  const commitFiles = (more: Record<string, string | Uint8Array | null>, message: string): string => {
    for (const [path, content] of Object.entries(more)) {
      const full = join(dir, path);
      if (content === null) rmSync(full, { force: true });
      else {
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
    }
    git('add', '-A');
    git('commit', '-q', '--allow-empty', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  const commit = commitFiles(files, 'initial');
  return { dir, commit, git, commitFiles, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
