/**
 * The state file of a mirror, `config-service-snapshot.json` in its Git directory: the refs
 * and packs of the last successful sync (what reads see, SPEC §4) and the times an operator
 * needs after a restart (when the served commit was fetched, when the last sync succeeded).
 *
 * Version 2 (this one): `{ version: 2, refs, packs, commit, commitFetchedAt, lastSyncAt }`.
 * Version 1 files (`{ version: 1, refs, packs }`, written by earlier builds at every
 * successful sync) are read with `lastSyncAt` taken from the file's modification time.
 */
import { readFileSync, statSync } from 'node:fs';
import { readdir, rename, writeFile } from 'node:fs/promises';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { deleteRef, listRefs, resolveRef, writeRef } from 'isomorphic-git';
import type { RefSnapshot } from './repository.js';

/** Name of the state file inside the mirror's Git directory. */
export const SNAPSHOT_FILE = 'config-service-snapshot.json';
/** The remote every mirror fetches from. */
export const REMOTE = 'origin';

/** A snapshot with the times kept beside it. */
export interface StoredSnapshot {
  readonly snapshot: RefSnapshot;
  /** Commit at the head of the default branch, or `null` when the remote lacked it. */
  readonly commit: string | null;
  /** When `commit` was first fetched; `null` when unknown. */
  readonly commitFetchedAt: Date | null;
  /** End of the last successful sync; `null` when unknown. */
  readonly lastSyncAt: Date | null;
}

interface FileV2 {
  version: 2;
  refs: Record<string, string>;
  packs: string[];
  commit: string | null;
  commitFetchedAt: string | null;
  lastSyncAt: string | null;
}

const OID = /^[0-9a-f]{40}$/;
const PACK_IDX = /^pack-[0-9a-f]{40}\.idx$/;

function date(v: unknown): Date | null {
  if (typeof v !== 'string') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * Reads the state file.
 * @returns the stored snapshot, `'missing'` when there is no file, or a reason string when
 *   it is not a snapshot this build wrote (bad JSON, unknown version, malformed refs or packs).
 */
export function readSnapshotFile(gitdir: string): StoredSnapshot | 'missing' | { invalid: string } {
  const file = nodePath.join(gitdir, SNAPSHOT_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return { invalid: `${SNAPSHOT_FILE} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { invalid: `${SNAPSHOT_FILE} is not JSON` };
  }
  if ((parsed.version !== 1 && parsed.version !== 2) || typeof parsed.refs !== 'object' || parsed.refs === null || !Array.isArray(parsed.packs)) {
    return { invalid: `${SNAPSHOT_FILE} is not a snapshot of this version` };
  }
  const refs = new Map<string, string>();
  for (const [ref, oid] of Object.entries(parsed.refs as Record<string, unknown>)) {
    if (!(ref.startsWith(`refs/remotes/${REMOTE}/`) || ref.startsWith('refs/tags/')) || ref.includes('..') || typeof oid !== 'string' || !OID.test(oid)) {
      return { invalid: `${SNAPSHOT_FILE} holds a malformed ref entry` };
    }
    refs.set(ref, oid);
  }
  const packs = new Set<string>();
  for (const p of parsed.packs as unknown[]) {
    if (typeof p !== 'string' || !PACK_IDX.test(p)) return { invalid: `${SNAPSHOT_FILE} names a malformed pack` };
    packs.add(p);
  }
  if (parsed.version === 1) {
    const mtime = statSync(file).mtime;
    return { snapshot: { refs, packs }, commit: null, commitFetchedAt: null, lastSyncAt: mtime };
  }
  const commit = typeof parsed.commit === 'string' && OID.test(parsed.commit) ? parsed.commit : null;
  return { snapshot: { refs, packs }, commit, commitFetchedAt: date(parsed.commitFetchedAt), lastSyncAt: date(parsed.lastSyncAt) };
}

/** Writes the state file atomically (temporary file, then rename). */
export async function writeSnapshotFile(gitdir: string, stored: StoredSnapshot): Promise<void> {
  const data: FileV2 = {
    version: 2,
    refs: Object.fromEntries(stored.snapshot.refs),
    packs: [...stored.snapshot.packs],
    commit: stored.commit,
    commitFetchedAt: stored.commitFetchedAt?.toISOString() ?? null,
    lastSyncAt: stored.lastSyncAt?.toISOString() ?? null,
  };
  const file = nodePath.join(gitdir, SNAPSHOT_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(data)}\n`, { flag: 'w' });
  await rename(tmp, file);
}

/** Branches (remote-tracking) and tags as they are on disk now, and the complete packs. */
export async function readDiskState(gitdir: string): Promise<RefSnapshot> {
  const refs = new Map<string, string>();
  for (const prefix of [`refs/remotes/${REMOTE}`, 'refs/tags']) {
    for (const name of await listRefs({ fs, gitdir, filepath: prefix })) {
      if (prefix !== 'refs/tags' && name === 'HEAD') continue;
      const full = `${prefix}/${name}`;
      refs.set(full, await resolveRef({ fs, gitdir, ref: full }));
    }
  }
  const files = await readdir(nodePath.join(gitdir, 'objects', 'pack')).catch(() => [] as string[]);
  const packs = new Set(files.filter((f) => PACK_IDX.test(f) && files.includes(`${f.slice(0, -4)}.pack`)));
  return { refs, packs };
}

/**
 * Puts the refs on disk back to `refs` (branches and tags): what a failed or refused fetch
 * wrote is undone, so the next fetch offers the remote only objects the mirror really has.
 */
export async function restoreRefs(gitdir: string, refs: ReadonlyMap<string, string>): Promise<void> {
  const disk = await readDiskState(gitdir).catch(() => ({ refs: new Map<string, string>() }));
  for (const ref of disk.refs.keys()) {
    if (!refs.has(ref)) await deleteRef({ fs, gitdir, ref }).catch(() => undefined);
  }
  for (const [ref, oid] of refs) {
    if (disk.refs.get(ref) !== oid) await writeRef({ fs, gitdir, ref, value: oid, force: true });
  }
}
