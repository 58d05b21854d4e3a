/**
 * History for tooling (SPEC §4, §5.1): which commits changed the documents an application
 * reads, and the key-level difference between two merged configurations (secrets masked).
 */
import type { FirstParentEntry, GitRepository } from '../git/repository.js';
import { isCipherText } from '../secrets/envelope.js';
import { REDACTED } from '../secrets/apply.js';
import type { AppConfigReader } from './app-config.js';
import { compareTokens, type NameToken } from './paths.js';
import { flattenProperties } from './tree.js';
import type { MergedConfig } from './types.js';

/** One commit that changed what an application reads. */
export interface HistoryCommit {
  /** Commit id (40 hex). */
  commit: string;
  /** Committer time, ISO 8601 UTC (`2024-01-01T00:00:00.000Z`). */
  time: string;
  /** The author's name only: e-mail addresses are personal data and are never returned. */
  author: { name: string };
  /** First line of the commit message. */
  message: string;
  /** Paths (from the repository root, sorted) of the documents added, changed or removed against the first parent. */
  documents: string[];
}

/** Result of {@link appHistory}. */
export interface AppHistory {
  commits: HistoryCommit[];
  /**
   * True when the walk stopped before reaching the root commit and before finding
   * `limit` commits: the scan cap was hit, or a parent is missing (shallow mirror).
   */
  truncated: boolean;
}

/** Options of {@link appHistory}. */
export interface AppHistoryOptions {
  /** Most commits returned. */
  readonly limit: number;
  /** Most commits examined (first-parent), so one request reads a bounded history. */
  readonly scanCap: number;
}

type DocSet = ReadonlyMap<string, string>;

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
}

function changedPaths(now: DocSet, before: DocSet): string[] {
  const out = new Set<string>();
  for (const [path, oid] of now) if (before.get(path) !== oid) out.add(path);
  for (const path of before.keys()) if (!now.has(path)) out.add(path);
  return [...out].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Walks first-parent history from `commit`, newest first, and keeps the commits where
 * the set of documents `app` reads for `profiles` (paths and blob ids, plus the schema
 * file; see {@link AppConfigReader.documentOids}) differs from the commit's first parent.
 * A root commit is compared with nothing. Raw files are not considered.
 *
 * @param repo - the repository (its first-parent walk)
 * @param reader - the reader of the same repository
 * @returns at most `limit` commits, newest first
 */
export async function appHistory(
  repo: Pick<GitRepository, 'walkFirstParent'>,
  reader: Pick<AppConfigReader, 'documentOids'>,
  commit: string,
  app: string,
  profiles: readonly string[],
  options: AppHistoryOptions,
): Promise<AppHistory> {
  const sets = new Map<string, DocSet>();
  const docs = async (oid: string): Promise<DocSet> => {
    let set = sets.get(oid);
    if (set === undefined) {
      set = new Map((await reader.documentOids(oid, app, profiles)).map((d) => [d.path, d.oid] as const));
      sets.set(oid, set);
    }
    return set;
  };
  const commits: HistoryCommit[] = [];
  let last: FirstParentEntry | undefined;
  for await (const entry of repo.walkFirstParent(commit, options.scanCap)) {
    last = entry;
    let before: DocSet;
    try {
      before = entry.parent === null ? new Map() : await docs(entry.parent);
    } catch (err) {
      // A shallow mirror: the parent is not here, so this commit's change is unknown.
      if (errorCode(err) === 'NotFoundError') return { commits, truncated: true };
      throw err;
    }
    const documents = changedPaths(await docs(entry.commit), before);
    sets.delete(entry.commit);
    if (documents.length > 0) {
      commits.push({
        commit: entry.commit,
        time: new Date(entry.committerTime * 1000).toISOString(),
        author: { name: entry.authorName },
        message: entry.message.split('\n', 1)[0]!.replace(/\r$/, ''),
        documents,
      });
      if (commits.length >= options.limit) return { commits, truncated: false };
    }
  }
  // Not at a root commit: the scan cap was hit, or the next commit is missing.
  return { commits, truncated: last !== undefined && last.parent !== null };
}

/** One key-level change of {@link diffConfigs}. */
export interface ConfigChange {
  /** Flattened property name (`server.port`, `hosts[0]`). */
  key: string;
  change: 'added' | 'removed' | 'changed';
  /** Text before (absent for `added`); `<redacted>` for a secret. */
  from?: string;
  /** Text after (absent for `removed`); `<redacted>` for a secret. */
  to?: string;
}

/**
 * The key-level difference between two merged configurations, on their flattened names
 * and texts (as in the `properties` format), sorted in that format's key order. A value
 * that is `{cipher}` text on either side is shown as `<redacted>` on both sides; an
 * unchanged secret is not listed.
 *
 * @param before - the merge at `from` (empty when the application did not exist there)
 * @param after - the merge at `to`
 * @returns the changes, and the keys of those that are secrets (for the audit event)
 */
export function diffConfigs(before: MergedConfig, after: MergedConfig): { changes: ConfigChange[]; secretKeys: string[] } {
  const entries = new Map<string, { tokens: readonly NameToken[]; from?: string; to?: string }>();
  for (const p of flattenProperties(before)) entries.set(p.name, { tokens: p.tokens, from: p.value });
  for (const p of flattenProperties(after)) {
    const e = entries.get(p.name);
    if (e) e.to = p.value;
    else entries.set(p.name, { tokens: p.tokens, to: p.value });
  }
  const sorted = [...entries.entries()].sort((a, b) => compareTokens(a[1].tokens, b[1].tokens));
  const out: ConfigChange[] = [];
  const secretKeys: string[] = [];
  for (const [key, { from, to }] of sorted) {
    if (from === to) continue;
    const secret = isCipherText(from) || isCipherText(to);
    if (secret) secretKeys.push(key);
    const show = (v: string): string => (secret ? REDACTED : v);
    if (from === undefined) out.push({ key, change: 'added', to: show(to!) });
    else if (to === undefined) out.push({ key, change: 'removed', from: show(from) });
    else out.push({ key, change: 'changed', from: show(from), to: show(to) });
  }
  return { changes: out, secretKeys };
}
