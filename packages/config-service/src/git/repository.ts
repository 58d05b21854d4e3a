/**
 * Read-only access to the configuration stored in a Git repository, from Git objects only.
 *
 * Configuration is always read at a commit — refs are resolved once per request to one
 * commit id and every tree and blob is then read from that commit's objects — never from a
 * working tree (SPEC §4). A local repository is read through isomorphic-git with ONE shared
 * `cache` object per repository: SPEC §11 measured isomorphic-git 30-190x slower without a
 * shared pack cache. A mirror's published packs are read by `pack-reader.ts` instead
 * (isomorphic-git keeps whole packs and every deep delta it resolved in memory, so memory
 * would grow with the history). Trees and peeled refs are immutable by object id and are
 * cached in bounded LRU maps (`object-cache.ts`).
 *
 * Two kinds of repository are read:
 * - a local path read in place (`remoteName` unset): refs are read from disk on every
 *   resolution, since the git CLI updates them atomically (lock file + rename);
 * - a mirror kept by `GitMirror` (`remoteName` set, branches under
 *   `refs/remotes/<remote>/`): isomorphic-git's fetch rewrites refs before the pack holding
 *   their objects is on disk, so the mirror publishes a {@link RefSnapshot} after each
 *   successful sync, and this class resolves refs from it and only sees the packs it lists.
 *   Reads are therefore never affected by a fetch in progress or a failed fetch
 *   (`snapshot-fs.ts` hides the packs a snapshot does not list from isomorphic-git).
 *
 * The shapes returned are in `repository-types.ts`, the snapshot in `ref-snapshot.ts`, and
 * `findGitdir` in `gitdir.ts`; they are re-exported here, the module other folders import.
 */
import * as nodePath from 'node:path';
import { expandOid, readBlob, readCommit, readObject, readTag, readTree, resolveRef } from 'isomorphic-git';
import type { PromiseFsClient } from 'isomorphic-git';
import { CFG_ERR_REF_NOT_FOUND, CFG_ERR_UNSUPPORTED_ENTRY } from '../errors.js';
import { assertValidRef } from './ref-name.js';
import { PackSet, type GitObject } from './pack-reader.js';
import { errorCode, isNotFound, notFound, parseCommit, parseTree, type ParsedCommit, type RawTreeEntry } from './git-objects.js';
import { refExists } from './gitdir.js';
import { PromiseLru, TreeCache } from './object-cache.js';
import { sameRefs, type RefSnapshot } from './ref-snapshot.js';
import { snapshotFs } from './snapshot-fs.js';
import type { FirstParentEntry, ListedFile, ResolvedRef, TreeEntry } from './repository-types.js';

export { findGitdir } from './gitdir.js';
export type { RefSnapshot } from './ref-snapshot.js';
export type { FirstParentEntry, ListedFile, ResolvedRef, TreeEntry, TreeEntryType } from './repository-types.js';

/** Options of {@link GitRepository}. */
export interface GitRepositoryOptions {
  /** Repository name used in errors and logs (never a URL). */
  readonly name: string;
  /** The Git directory: `<path>/.git` for a work tree, the path itself for a bare repo or mirror. */
  readonly gitdir: string;
  /** Branch read when no ref is given. */
  readonly defaultBranch: string;
  /** Set for mirrors: branches live under `refs/remotes/<remoteName>/`. */
  readonly remoteName?: string;
  /** Trees kept in the LRU cache (entries, default 20000). */
  readonly treeCacheEntries?: number;
  /**
   * The isomorphic-git cache object to share (a mirror passes the one its fetches use, so
   * there is one cache per mirror); default: a new one owned by this repository.
   */
  readonly cache?: object;
}

/** Bytes every Git LFS pointer file starts with. */
const LFS_POINTER_PREFIX = new TextEncoder().encode('version https://git-lfs.github.com/spec/v1');
const FULL_OID = /^[0-9a-fA-F]{40}$/;
const SHORT_OID = /^[0-9a-fA-F]{4,39}$/;

function startsWithBytes(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Splits a `/`-separated repository path; `null` when it has empty, `.` or `..` components. */
function splitPath(path: string): string[] | null {
  if (path === '') return [];
  const parts = path.split('/');
  for (const p of parts) if (p === '' || p === '.' || p === '..') return null;
  return parts;
}

/**
 * Read-only view of one Git repository's objects. Safe under concurrent calls.
 */
export class GitRepository {
  /** Repository name (for errors and logs). */
  readonly name: string;
  /** Absolute Git directory. */
  readonly gitdir: string;
  /** Branch read when no ref is given. */
  readonly defaultBranch: string;
  /** Remote whose tracking refs hold the branches (mirrors), or undefined (local repos). */
  readonly remoteName: string | undefined;

  /** The one isomorphic-git cache shared by every read of this repository (SPEC §11). */
  readonly #cache: object;
  readonly #fs: PromiseFsClient;
  readonly #packDir: string;
  #snapshot: RefSnapshot | null = null;
  readonly #snapshotListeners = new Set<(snapshot: RefSnapshot | null, refsChanged: boolean) => void>();
  /** A mirror's packs, read without isomorphic-git (`pack-reader.ts`) while a snapshot is published. */
  #packs: PackSet | null = null;
  readonly #trees: TreeCache;
  /** Root tree of a commit, by commit id. */
  readonly #commitTrees = new PromiseLru<string>(10_000);
  /** Commit an object peels to, by object id; `null` (missing, not a commit) is not kept. */
  readonly #peeled = new PromiseLru<string | null>(10_000, (commit) => commit !== null);

  /**
   * @param options - see {@link GitRepositoryOptions}. No I/O happens here.
   */
  constructor(options: GitRepositoryOptions) {
    this.name = options.name;
    this.gitdir = nodePath.resolve(options.gitdir);
    this.defaultBranch = options.defaultBranch;
    this.remoteName = options.remoteName;
    this.#cache = options.cache ?? {};
    this.#trees = new TreeCache(options.treeCacheEntries ?? 20_000);
    this.#packDir = nodePath.join(this.gitdir, 'objects', 'pack');
    this.#fs = snapshotFs(this.gitdir, () => this.#snapshot);
  }

  /**
   * Publishes the refs and packs reads must use (mirrors only; called by `GitMirror` after
   * each successful sync). `null` goes back to reading refs and packs from disk.
   */
  publishSnapshot(snapshot: RefSnapshot | null): void {
    const refsChanged = !sameRefs(this.#snapshot, snapshot);
    this.#snapshot = snapshot;
    if (snapshot === null && this.#packs !== null) {
      void this.#packs.close();
      this.#packs = null;
    } else if (snapshot !== null) {
      // Packs the new snapshot no longer lists (replaced by a repack) are closed.
      void this.#packs?.retain(snapshot.packs);
    }
    for (const listener of [...this.#snapshotListeners]) listener(snapshot, refsChanged);
  }

  /** Closes the pack files this repository opened (a throwaway view of a mirror, after use). */
  async close(): Promise<void> {
    const packs = this.#packs;
    this.#packs = null;
    await packs?.close();
  }

  /**
   * Calls `listener` after every {@link publishSnapshot} (the primary of `server.workers`
   * tells its workers; long-polls wake when `refsChanged`, in every process that reads the
   * mirror). `refsChanged` is false when the refs are those of the snapshot published before.
   * @returns a function that removes it.
   */
  onSnapshot(listener: (snapshot: RefSnapshot | null, refsChanged: boolean) => void): () => void {
    this.#snapshotListeners.add(listener);
    return () => {
      this.#snapshotListeners.delete(listener);
    };
  }

  /** The snapshot published last, or `null` (refs read from disk). */
  get snapshot(): RefSnapshot | null {
    return this.#snapshot;
  }

  /**
   * Resolves a ref to one commit.
   *
   * Order: a full 40-hex commit id that exists; a branch (`refs/heads/<ref>`, or
   * `refs/remotes/<remote>/<ref>` for mirrors); a tag (`refs/tags/<ref>`, annotated tags
   * peeled to their commit); a full ref name starting with `refs/` (`refs/heads/x` maps to
   * the remote-tracking ref for mirrors); an abbreviated unambiguous commit id (4-39 hex).
   *
   * @param ref - branch, tag, full ref or commit id; default: the repository's default branch.
   * @returns the commit id and what matched (see {@link ResolvedRef}).
   * @throws CFG_ERR_INVALID_REF (400) when `ref` breaks git-check-ref-format rules.
   * @throws CFG_ERR_REF_NOT_FOUND (404) when nothing matches (or an abbreviation is ambiguous).
   */
  async resolveRef(ref?: string): Promise<ResolvedRef> {
    const wanted = ref ?? this.defaultBranch;
    assertValidRef(wanted);

    if (FULL_OID.test(wanted)) {
      const oid = wanted.toLowerCase();
      const commit = await this.#peelToCommit(oid);
      if (commit !== null) return { commit, ref: oid };
    }

    const branch = await this.#lookup(this.#branchRef(wanted));
    if (branch !== null) return { commit: branch, ref: `refs/heads/${wanted}` };

    const tag = await this.#lookup(`refs/tags/${wanted}`);
    if (tag !== null) return { commit: tag, ref: `refs/tags/${wanted}` };

    if (wanted.startsWith('refs/')) {
      const full =
        this.remoteName !== undefined && wanted.startsWith('refs/heads/')
          ? this.#branchRef(wanted.slice('refs/heads/'.length))
          : wanted;
      const hit = await this.#lookup(full);
      if (hit !== null) return { commit: hit, ref: wanted };
    }

    if (SHORT_OID.test(wanted)) {
      const oid = await expandOid({ fs: this.#fs, gitdir: this.gitdir, oid: wanted.toLowerCase(), cache: this.#cache }).catch(
        (err: unknown) => {
          if (isNotFound(err) || errorCode(err) === 'AmbiguousError') return null;
          throw err;
        },
      );
      if (oid !== null) {
        const commit = await this.#peelToCommit(oid);
        if (commit !== null) return { commit, ref: oid };
      }
    }
    throw new CFG_ERR_REF_NOT_FOUND(wanted, this.name);
  }

  /**
   * Lists one directory of the tree of a commit.
   *
   * @param commit - commit id (40 hex), as returned by {@link resolveRef}.
   * @param dir - directory path, `''` for the root, `/`-separated, no leading slash.
   * @returns entries by name, or `null` when `dir` does not exist (or is not a directory).
   */
  async readTree(commit: string, dir: string): Promise<ReadonlyMap<string, TreeEntry> | null> {
    const parts = splitPath(dir);
    if (parts === null) return null;
    let tree = await this.#tree(await this.#rootTree(commit));
    for (const part of parts) {
      const entry = tree.get(part);
      if (entry?.type !== 'tree') return null;
      tree = await this.#tree(entry.oid);
    }
    return tree;
  }

  /**
   * Reads a blob's bytes.
   *
   * @param oid - blob id (40 hex).
   * @throws isomorphic-git `NotFoundError` / `ObjectTypeError` when it is not a blob here.
   */
  async readBlob(oid: string): Promise<Uint8Array> {
    if (this.#snapshot !== null) {
      const object = await this.#packObject(oid);
      if (object === null || object.type !== 'blob') throw notFound(`blob ${oid}`);
      return Uint8Array.from(object.data);
    }
    const { blob } = await readBlob({ fs: this.#fs, gitdir: this.gitdir, oid, cache: this.#cache });
    return blob;
  }

  /** An object of the published snapshot's packs, or null (mirrors only). */
  #packObject(oid: string): Promise<GitObject | null> {
    const snapshot = this.#snapshot as RefSnapshot;
    this.#packs ??= new PackSet(this.#packDir);
    return this.#packs.read(oid, snapshot.packs);
  }

  /** A commit's fields: from the packs for a mirror, else through isomorphic-git. */
  async #commit(oid: string): Promise<ParsedCommit> {
    if (this.#snapshot !== null) {
      const object = await this.#packObject(oid);
      if (object === null || object.type !== 'commit') throw notFound(`commit ${oid}`);
      return parseCommit(object.data);
    }
    const c = (await readCommit({ fs: this.#fs, gitdir: this.gitdir, oid, cache: this.#cache })).commit;
    return { tree: c.tree, parents: c.parent, authorName: c.author.name, committerTime: c.committer.timestamp, message: c.message };
  }

  /**
   * Reads one regular file of a commit.
   *
   * @param commit - commit id (40 hex).
   * @param path - file path from the root, `/`-separated, no leading slash.
   * @returns blob id and bytes, or `null` when no such file (or `path` is a directory).
   * @throws CFG_ERR_UNSUPPORTED_ENTRY (422) when the entry is a symbolic link, a submodule or
   *   a Git LFS pointer file: such entries are never followed and never served.
   */
  async readFileAt(commit: string, path: string): Promise<{ oid: string; bytes: Uint8Array } | null> {
    const parts = splitPath(path);
    if (parts === null || parts.length === 0) return null;
    const name = parts[parts.length - 1] as string;
    const tree = await this.readTree(commit, parts.slice(0, -1).join('/'));
    const entry = tree?.get(name);
    if (entry === undefined || entry.type === 'tree') return null;
    if (entry.type === 'symlink') {
      throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(path)} is a symbolic link; symbolic links are never followed or served`);
    }
    if (entry.type === 'submodule') {
      throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(path)} is a submodule; submodules are never followed or served`);
    }
    const bytes = await this.readBlob(entry.oid);
    if (startsWithBytes(bytes, LFS_POINTER_PREFIX)) {
      throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(path)} is a Git LFS pointer file; LFS content is not served`);
    }
    return { oid: entry.oid, bytes };
  }

  /**
   * Lists every file below a directory of a commit, recursively, in Git tree order.
   *
   * @param commit - commit id (40 hex).
   * @param dir - directory, `''` for the root, `/`-separated, no leading slash.
   * @returns files with their paths from the repository root; `[]` when `dir` does not exist.
   *   Symlinks and submodules are listed with their type (callers refuse them).
   */
  async listFiles(commit: string, dir: string): Promise<ListedFile[]> {
    const start = await this.readTree(commit, dir);
    if (start === null) return [];
    const out: ListedFile[] = [];
    const walk = async (tree: ReadonlyMap<string, TreeEntry>, prefix: string): Promise<void> => {
      for (const entry of tree.values()) {
        const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
        if (entry.type === 'tree') await walk(await this.#tree(entry.oid), path);
        else out.push({ path, oid: entry.oid, type: entry.type });
      }
    };
    await walk(start, dir);
    return out;
  }

  /**
   * Walks first-parent history from `commit`, newest first, reading one commit at a time
   * (lazily, through the shared isomorphic-git cache). isomorphic-git's `log` follows
   * every parent of a merge, so it is not used here.
   *
   * @param commit - the commit to start from (40 hex), as returned by {@link resolveRef}.
   * @param maxCount - at most this many commits are read (the walk is depth-bounded).
   * @returns an async iterator of commits; it ends at a root commit, after `maxCount`
   *   commits, or at a commit whose object is missing (a shallow mirror).
   */
  async *walkFirstParent(commit: string, maxCount: number): AsyncGenerator<FirstParentEntry, void, undefined> {
    let oid: string | null = commit;
    for (let n = 0; oid !== null && n < maxCount; n++) {
      let c: ParsedCommit;
      try {
        c = await this.#commit(oid);
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      const parent = c.parents[0] ?? null;
      yield { commit: oid, parent, committerTime: c.committerTime, authorName: c.authorName, message: c.message };
      oid = parent;
    }
  }

  /**
   * Whether the object `oid` is readable here (through the published snapshot's packs, for
   * a mirror). Used by the mirror's integrity checks.
   */
  async hasObject(oid: string): Promise<boolean> {
    if (this.#snapshot !== null) {
      this.#packs ??= new PackSet(this.#packDir);
      return this.#packs.has(oid, this.#snapshot.packs);
    }
    try {
      await readObject({ fs: this.#fs, gitdir: this.gitdir, oid, format: 'deflated', cache: this.#cache });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** The commit an object id designates (annotated tags peeled), or `null` when missing or not a commit. */
  peelToCommit(oid: string): Promise<string | null> {
    return this.#peelToCommit(oid);
  }

  #branchRef(branch: string): string {
    return this.remoteName !== undefined ? `refs/remotes/${this.remoteName}/${branch}` : `refs/heads/${branch}`;
  }

  /** Commit a full ref name points to (tags peeled), or null when absent or not a commit. */
  async #lookup(fullRef: string): Promise<string | null> {
    let oid: string | null;
    if (this.#snapshot !== null) {
      oid = this.#snapshot.refs.get(fullRef) ?? null;
    } else {
      oid = await resolveRef({ fs: this.#fs, gitdir: this.gitdir, ref: fullRef }).catch((err: unknown) => {
        if (isNotFound(err)) return null;
        throw err;
      });
      // isomorphic-git also tries `refs/<x>`, `refs/tags/<x>`… for a name; keep exact names only.
      if (oid !== null && !(await refExists(this.gitdir, fullRef))) oid = null;
    }
    return oid === null ? null : this.#peelToCommit(oid);
  }

  /** The commit an object id designates (tags peeled), or null when missing or not a commit. */
  #peelToCommit(oid: string): Promise<string | null> {
    // Absence may change (a later fetch brings the object): a miss or failure is not cached.
    return this.#peeled.get(oid, () => this.#peel(oid));
  }

  async #peel(start: string): Promise<string | null> {
    let oid = start;
    for (let depth = 0; depth < 10; depth++) {
      if (this.#snapshot !== null) {
        const object = await this.#packObject(oid);
        if (object === null) return null;
        if (object.type === 'commit') return oid;
        if (object.type !== 'tag') return null;
        const target = /^object ([0-9a-f]{40})$/m.exec(object.data.toString('latin1'));
        if (target === null) return null;
        oid = target[1] as string;
        continue;
      }
      let type: string;
      try {
        ({ type } = await readObject({ fs: this.#fs, gitdir: this.gitdir, oid, format: 'content', cache: this.#cache }));
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
      if (type === 'commit') return oid;
      if (type !== 'tag') return null;
      const { tag } = await readTag({ fs: this.#fs, gitdir: this.gitdir, oid, cache: this.#cache });
      oid = tag.object;
    }
    return null;
  }

  #rootTree(commit: string): Promise<string> {
    return this.#commitTrees.get(commit, () => this.#commit(commit).then((c) => c.tree));
  }

  #tree(oid: string): Promise<ReadonlyMap<string, TreeEntry>> {
    return this.#trees.get(oid, (id) => this.#readTreeEntries(id));
  }

  /** A tree's stored entries: from the packs for a mirror, else through isomorphic-git. */
  #readTreeEntries(oid: string): Promise<readonly RawTreeEntry[]> {
    if (this.#snapshot !== null) {
      return this.#packObject(oid).then((object) => {
        if (object === null || object.type !== 'tree') throw notFound(`tree ${oid}`);
        return parseTree(object.data);
      });
    }
    return readTree({ fs: this.#fs, gitdir: this.gitdir, oid, cache: this.#cache }).then(({ tree }) => tree);
  }
}
