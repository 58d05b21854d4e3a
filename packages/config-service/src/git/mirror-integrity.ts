/**
 * Checks that make the data directory trusted only as far as it checks out (SPEC §4):
 *
 * - {@link checkMirrorPath}: no path component from the data directory down to the mirror,
 *   and no entry of the mirror Git isomorphic-git reads or writes (`HEAD`, `config`,
 *   `objects`, `objects/pack` and its files, `refs`, `packed-refs`, the snapshot file), is
 *   a symbolic link or of the wrong kind;
 * - {@link verifyPack}: a pack and its index are whole (the pack's SHA-1 trailer matches
 *   its content and the index; the index's own checksum matches; object counts agree) —
 *   git's pack format, `Documentation/gitformat-pack.txt`;
 * - {@link verifyRefs}: every ref of a snapshot points at an object present in the
 *   snapshot's packs, branch and tag heads that are commits have readable root trees, and
 *   every tree and blob of the default branch's head is present.
 *
 * Each returns a reason (constant text plus names and object ids, never file content) or
 * `null` when all is well. Nothing here writes.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { GitRepository, type TreeEntry, type RefSnapshot } from './repository.js';
import { REMOTE, SNAPSHOT_FILE } from './mirror-snapshot.js';

function relative(root: string, path: string): string {
  return nodePath.relative(root, path) || '.';
}

/**
 * Checks the path of a mirror for symbolic links.
 *
 * @param dataDir - the service's data directory (itself may be a symlink: the operator's choice).
 * @param gitdir - the mirror's Git directory, inside `dataDir`.
 * @returns `null` when safe or absent; otherwise `{ path, reason }` naming the offending path.
 */
export async function checkMirrorPath(dataDir: string, gitdir: string): Promise<{ path: string; reason: string } | null> {
  const root = nodePath.resolve(dataDir);
  const target = nodePath.resolve(gitdir);
  const rel = nodePath.relative(root, target);
  if (rel === '' || rel.startsWith('..') || nodePath.isAbsolute(rel)) return { path: target, reason: 'the mirror path is not inside dataDir' };
  let current = root;
  for (const part of rel.split(nodePath.sep)) {
    current = nodePath.join(current, part);
    const st = await lstat(current).catch(() => null);
    if (st === null) return null; // nothing further exists yet
    if (st.isSymbolicLink()) return { path: current, reason: `'${relative(root, current)}' is a symbolic link` };
    if (!st.isDirectory()) return { path: current, reason: `'${relative(root, current)}' is not a directory` };
  }
  const entries: Array<[string, 'file' | 'dir']> = [
    ['HEAD', 'file'],
    ['config', 'file'],
    ['packed-refs', 'file'],
    [SNAPSHOT_FILE, 'file'],
    ['objects', 'dir'],
    ['objects/pack', 'dir'],
    ['refs', 'dir'],
    ['refs/remotes', 'dir'],
    [`refs/remotes/${REMOTE}`, 'dir'],
    ['refs/tags', 'dir'],
  ];
  for (const [entry, kind] of entries) {
    const full = nodePath.join(target, entry);
    const st = await lstat(full).catch(() => null);
    if (st === null) continue;
    if (st.isSymbolicLink()) return { path: full, reason: `'${relative(root, full)}' is a symbolic link` };
    if (kind === 'dir' ? !st.isDirectory() : !st.isFile()) return { path: full, reason: `'${relative(root, full)}' is not a ${kind === 'dir' ? 'directory' : 'regular file'}` };
  }
  const packDir = nodePath.join(target, 'objects', 'pack');
  for (const name of await readdir(packDir).catch(() => [] as string[])) {
    const st = await lstat(nodePath.join(packDir, name)).catch(() => null);
    if (st !== null && !st.isFile()) return { path: nodePath.join(packDir, name), reason: `'${relative(root, nodePath.join(packDir, name))}' is not a regular file` };
  }
  return null;
}

async function sha1OfFile(file: string, end: number): Promise<Buffer> {
  const hash = createHash('sha1');
  if (end > 0) {
    for await (const chunk of createReadStream(file, { start: 0, end: end - 1 })) hash.update(chunk as Buffer);
  }
  return hash.digest();
}

async function readRange(file: string, start: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Verifies one pack (`pack-<sha>.pack`) against its index (`pack-<sha>.idx`, version 2).
 *
 * @param packDir - `<gitdir>/objects/pack`.
 * @param idxName - the index file name.
 * @returns `null` when whole, else the reason (`pack-….pack is truncated or damaged …`).
 */
export async function verifyPack(packDir: string, idxName: string): Promise<string | null> {
  const idxFile = nodePath.join(packDir, idxName);
  const packName = `${idxName.slice(0, -4)}.pack`;
  const packFile = nodePath.join(packDir, packName);
  const [idxStat, packStat] = await Promise.all([lstat(idxFile).catch(() => null), lstat(packFile).catch(() => null)]);
  if (idxStat === null || !idxStat.isFile()) return `${idxName} is missing`;
  if (packStat === null || !packStat.isFile()) return `${packName} is missing`;
  // Index v2: magic, version, 256 fan-out entries, ..., pack checksum, index checksum.
  if (idxStat.size < 8 + 256 * 4 + 40) return `${idxName} is truncated`;
  const head = await readRange(idxFile, 0, 8 + 256 * 4);
  if (head.readUInt32BE(0) !== 0xff744f63 || head.readUInt32BE(4) !== 2) return `${idxName} is not a version 2 pack index`;
  const objects = head.readUInt32BE(8 + 255 * 4);
  const trailer = await readRange(idxFile, idxStat.size - 40, 40);
  const idxSum = await sha1OfFile(idxFile, idxStat.size - 20);
  if (!idxSum.equals(trailer.subarray(20))) return `${idxName} is damaged (checksum mismatch)`;
  if (packStat.size < 12 + 20) return `${packName} is truncated`;
  const packHead = await readRange(packFile, 0, 12);
  if (packHead.toString('latin1', 0, 4) !== 'PACK' || ![2, 3].includes(packHead.readUInt32BE(4))) return `${packName} is not a Git pack`;
  if (packHead.readUInt32BE(8) !== objects) return `${packName} and ${idxName} disagree on the object count`;
  const packTrailer = await readRange(packFile, packStat.size - 20, 20);
  if (!packTrailer.equals(trailer.subarray(0, 20))) return `${packName} is truncated or damaged (its trailer does not match the index)`;
  const packSum = await sha1OfFile(packFile, packStat.size - 20);
  if (!packSum.equals(packTrailer)) return `${packName} is damaged (checksum mismatch)`;
  return null;
}

/** Verifies every pack of a snapshot; the first problem found, or `null`. */
export async function verifyPacks(gitdir: string, packs: Iterable<string>): Promise<string | null> {
  const dir = nodePath.join(gitdir, 'objects', 'pack');
  for (const idx of packs) {
    const reason = await verifyPack(dir, idx);
    if (reason !== null) return reason;
  }
  return null;
}

/**
 * The files of `commit` whose entries differ from those of `previous` (every file when
 * `previous` is null), descending only into trees whose ids changed.
 */
async function changedFiles(view: GitRepository, commit: string, previous: string | null): Promise<Array<{ path: string; oid: string; type: string }>> {
  if (previous === null) return view.listFiles(commit, '');
  const out: Array<{ path: string; oid: string; type: string }> = [];
  const walk = async (dir: string, now: ReadonlyMap<string, TreeEntry>, before: ReadonlyMap<string, TreeEntry> | null): Promise<void> => {
    for (const entry of now.values()) {
      const old = before?.get(entry.name);
      if (old !== undefined && old.oid === entry.oid && old.type === entry.type) continue;
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.type === 'tree') {
        const sub = await view.readTree(commit, path);
        if (sub === null) throw new Error(`tree ${entry.oid} missing`);
        await walk(path, sub, old?.type === 'tree' ? await view.readTree(previous, path) : null);
      } else {
        out.push({ path, oid: entry.oid, type: entry.type });
      }
    }
  };
  const root = await view.readTree(commit, '');
  if (root === null) throw new Error('root tree missing');
  await walk('', root, await view.readTree(previous, ''));
  return out;
}

/** Remote-side name of a mirror ref, for messages: `refs/remotes/origin/x` → `refs/heads/x`. */
export function remoteRefName(localRef: string): string {
  const prefix = `refs/remotes/${REMOTE}/`;
  return localRef.startsWith(prefix) ? `refs/heads/${localRef.slice(prefix.length)}` : localRef;
}

/**
 * Checks that the refs of `snapshot` (only those in `only`, when given) point at objects
 * its packs hold, reading through a fresh view that sees exactly those packs.
 *
 * @param gitdir - the mirror (or the fresh clone) to check.
 * @param defaultBranch - its head's whole tree (trees and blobs) must be present.
 * @param verifiedHead - the default branch's commit in the snapshot published before
 *   (whose tree was checked then): only the trees and blobs that differ from it are
 *   checked, since packs are never rewritten; a commit that touches one application costs
 *   a few look-ups instead of one per file of the repository.
 * @returns `null`, or the reason naming the ref and object.
 */
export async function verifyRefs(gitdir: string, snapshot: RefSnapshot, defaultBranch: string, only?: ReadonlySet<string>, verifiedHead?: string): Promise<string | null> {
  const view = new GitRepository({ name: 'check', gitdir, defaultBranch, remoteName: REMOTE, treeCacheEntries: 1000 });
  view.publishSnapshot(snapshot);
  try {
    return await firstBadRef(view, snapshot, defaultBranch, only, verifiedHead);
  } finally {
    await view.close();
  }
}

async function firstBadRef(view: GitRepository, snapshot: RefSnapshot, defaultBranch: string, only?: ReadonlySet<string>, verifiedHead?: string): Promise<string | null> {
  for (const [ref, oid] of snapshot.refs) {
    if (only !== undefined && !only.has(ref)) continue;
    if (!(await view.hasObject(oid).catch(() => false))) return `${remoteRefName(ref)} points at ${oid}, which the mirror does not hold`;
    const commit = await view.peelToCommit(oid).catch(() => null);
    if (commit === null) continue; // a tag of a tree or blob: never served
    try {
      const root = await view.readTree(commit, '');
      if (root === null) return `${remoteRefName(ref)} → ${commit}: its tree cannot be read`;
    } catch {
      return `${remoteRefName(ref)} → ${commit}: its tree is not in the mirror`;
    }
  }
  const headRef = `refs/remotes/${REMOTE}/${defaultBranch}`;
  const head = snapshot.refs.get(headRef);
  if (head !== undefined && (only === undefined || only.has(headRef))) {
    const commit = await view.peelToCommit(head).catch(() => null);
    if (commit === null) return `refs/heads/${defaultBranch} points at ${head}, which is not a commit the mirror holds`;
    try {
      const previous = verifiedHead === undefined ? null : await view.peelToCommit(verifiedHead).catch(() => null);
      for (const file of await changedFiles(view, commit, previous)) {
        if (file.type === 'blob' && !(await view.hasObject(file.oid).catch(() => false))) return `refs/heads/${defaultBranch} → ${commit}: blob ${file.oid} (${file.path}) is not in the mirror`;
      }
    } catch {
      return `refs/heads/${defaultBranch} → ${commit}: a tree is not in the mirror`;
    }
  }
  return null;
}
