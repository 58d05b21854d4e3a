/**
 * Test helper: real Git repositories made with the git CLI in fresh temp directories.
 *
 * Author and committer (name, e-mail, date) are fixed and the user's and system's git
 * configuration is ignored, so the same files and messages give the same commit ids on
 * every run. Node built-ins only.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Environment for every git command: fixed identity and dates, no user or system config. */
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
  GIT_ADVICE: '0',
};

/** Files of a commit: path (`/`-separated) → content; `null` deletes the file (commitFiles only). */
export type GitFiles = Record<string, string | Uint8Array | null>;

/** A work-tree repository made by {@link makeGitRepo}. */
export interface GitTestRepo {
  /** Absolute path of the work tree (the Git directory is `<dir>/.git`). */
  readonly dir: string;
  /** Id of the first commit. */
  readonly commit: string;
  /**
   * Runs `git -C dir <args>` with the fixed environment.
   * @returns stdout, with one trailing newline removed.
   * @throws when git exits non-zero (the error carries git's stderr).
   */
  git(...args: string[]): string;
  /**
   * Writes (or, for `null`, deletes) files, stages everything and commits.
   * @returns the new commit id (40 hex).
   */
  commitFiles(files: GitFiles, message: string): string;
  /** Removes the temp directory. */
  remove(): void;
}

/**
 * Runs git with the fixed environment.
 * @param cwd - directory passed as `git -C`
 * @param args - git arguments
 * @returns stdout with one trailing newline removed.
 */
export function runGit(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], { env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).replace(/\n$/, '');
}

function writeFiles(dir: string, files: GitFiles): void {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    if (content === null) {
      rmSync(full, { force: true });
      continue;
    }
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

/**
 * Creates a repository with one commit holding `files`, in a new directory under
 * `os.tmpdir()`.
 *
 * @param files - path → content of the first commit (may be empty: an empty commit is made).
 * @param opts.branch - name of the initial branch (default `main`).
 */
export async function makeGitRepo(files: Record<string, string | Uint8Array>, opts: { branch?: string } = {}): Promise<GitTestRepo> {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-git-'));
  const git = (...args: string[]): string => runGit(dir, ...args);
  git('init', '-q', '-b', opts.branch ?? 'main');
  git('config', 'commit.gpgsign', 'false');
  git('config', 'core.autocrlf', 'false');
  const commitFiles = (more: GitFiles, message: string): string => {
    writeFiles(dir, more);
    git('add', '-A');
    git('commit', '-q', '--allow-empty', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  const commit = commitFiles(files, 'initial');
  return { dir, commit, git, commitFiles, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
