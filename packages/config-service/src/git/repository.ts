/**
 * Read-only access to the configuration stored in a Git repository, from Git objects only.
 *
 * Configuration is always read at a commit — refs are resolved once per request to one
 * commit id and every tree and blob is then read from that commit's objects — never from a
 * working tree (SPEC §4). A local repository is read through isomorphic-git with ONE shared
 * `cache` object per repository: SPEC §11 measured isomorphic-git 30-190x slower without a
 * shared pack cache. A mirror's published packs are read by `pack-reader.ts` instead
 * (isomorphic-git keeps whole packs and every deep delta it resolved in memory, so memory
 * would grow with the history). Trees and peeled refs are immutable by object id and are cached here in bounded LRU maps.
 *
 * Two kinds of repository are read:
 * - a local path read in place (`remoteName` unset): refs are read from disk on every
 *   resolution, since the git CLI updates them atomically (lock file + rename);
 * - a mirror kept by `GitMirror` (`remoteName` set, branches under
 *   `refs/remotes/<remote>/`): isomorphic-git's fetch rewrites refs before the pack holding
 *   their objects is on disk, so the mirror publishes a {@link RefSnapshot} after each
 *   successful sync, and this class resolves refs from it and only sees the packs it lists.
 *   Reads are therefore never affected by a fetch in progress or a failed fetch.
 */
import * as nodeFs from 'node:fs';
import { stat } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { expandOid, readBlob, readCommit, readObject, readTag, readTree, resolveRef } from 'isomorphic-git';
import type { PromiseFsClient } from 'isomorphic-git';
import { CFG_ERR_REF_NOT_FOUND, CFG_ERR_REPO_UNAVAILABLE, CFG_ERR_UNSUPPORTED_ENTRY } from '../errors.js';
import { LRUCache } from 'lru-cache';
import { assertValidRef } from './ref-name.js';
import { PackSet, type GitObject } from './pack-reader.js';

/** Kind of a tree entry, from its Git mode: 040000 tree, 120000 symlink, 160000 submodule, else blob. */
export type TreeEntryType = 'blob' | 'tree' | 'symlink' | 'submodule';

/** One entry of a Git tree. */
export interface TreeEntry {
  /** File or directory name (one path component, no `/`). */
  readonly name: string;
  /** Object id (40 hex) of the blob, tree, or — for a submodule — the commit it pins. */
  readonly oid: string;
  /** Kind of entry. */
  readonly type: TreeEntryType;
}

/** A file found by {@link GitRepository.listFiles}. */
export interface ListedFile {
  /** Path from the repository root, `/`-separated, no leading slash. */
  readonly path: string;
  /** Object id (40 hex). */
  readonly oid: string;
  /** Kind of entry; never `'tree'` (trees are descended into). */
  readonly type: Exclude<TreeEntryType, 'tree'>;
}

/** One commit of {@link GitRepository.walkFirstParent}. */
export interface FirstParentEntry {
  /** Commit id (40 hex). */
  readonly commit: string;
  /** First parent's id, or `null` for a root commit. */
  readonly parent: string | null;
  /** Committer time, seconds since the epoch (UTC). */
  readonly committerTime: number;
  /** Author name (the e-mail is personal data and is not returned). */
  readonly authorName: string;
  /** Full commit message. */
  readonly message: string;
}

/** Result of {@link GitRepository.resolveRef}. */
export interface ResolvedRef {
  /** Commit id (40 lower-case hex). For an annotated tag this is the commit, not the tag object. */
  readonly commit: string;
  /**
   * What matched: `refs/heads/<branch>` (also for mirrors, whose branches are stored under
   * `refs/remotes/<remote>/`), `refs/tags/<tag>`, the full ref name given, or the commit id.
   */
  readonly ref: string;
}

/**
 * Refs and packs a mirror publishes after a successful sync; reads see exactly this state.
 */
export interface RefSnapshot {
  /** Full ref name (`refs/remotes/origin/main`, `refs/tags/v1`) → object id (40 hex, tags unpeeled). */
  readonly refs: ReadonlyMap<string, string>;
  /** File names (`pack-<sha>.idx`) of the pack indexes reads may use. */
  readonly packs: ReadonlySet<string>;
}

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

/** Most tree entries kept in memory by one repository (about 150 bytes each). */
const TREE_CACHE_MAX_ENTRIES = 100_000;

/** Path of a loose object below `objects/`. */
const LOOSE_OBJECT = /^[0-9a-f]{2}[\\/][0-9a-f]{38}$/;
/** What a loose-object read of a mirror rejects with (isomorphic-git only checks that it failed). */
const NO_LOOSE_OBJECT = Object.assign(new Error('no loose objects in a mirror'), { code: 'ENOENT' });

/** Bytes every Git LFS pointer file starts with. */
const LFS_POINTER_PREFIX = new TextEncoder().encode('version https://git-lfs.github.com/spec/v1');
const FULL_OID = /^[0-9a-fA-F]{40}$/;
const SHORT_OID = /^[0-9a-fA-F]{4,39}$/;

/**
 * Finds the Git directory of a local repository path.
 *
 * @param path - a work tree (with a `.git` directory, or a `.git` file `gitdir: <dir>`),
 *   or a bare repository.
 * @returns the absolute Git directory.
 * @throws CFG_ERR_REPO_UNAVAILABLE (503) when `path` is not a Git repository.
 */
export async function findGitdir(path: string): Promise<string> {
  const root = nodePath.resolve(path);
  const dotGit = nodePath.join(root, '.git');
  const st = await stat(dotGit).catch(() => null);
  if (st?.isDirectory() === true) return dotGit;
  if (st?.isFile() === true) {
    const text = await nodeFs.promises.readFile(dotGit, 'utf8');
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(text);
    if (m?.[1] !== undefined) return nodePath.resolve(root, m[1]);
  }
  const [head, objects] = await Promise.all([
    stat(nodePath.join(root, 'HEAD')).catch(() => null),
    stat(nodePath.join(root, 'objects')).catch(() => null),
  ]);
  if (head?.isFile() === true && objects?.isDirectory() === true) return root;
  throw new CFG_ERR_REPO_UNAVAILABLE(nodePath.basename(root), 'not a Git repository');
}

function entryType(mode: string): TreeEntryType {
  switch (mode) {
    case '040000':
    case '40000':
      return 'tree';
    case '120000':
      return 'symlink';
    case '160000':
      return 'submodule';
    default:
      return 'blob';
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'NotFoundError' || code === 'ENOENT' || code === 'ENOTDIR';
}

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

/** The fields of a commit this module uses. */
interface ParsedCommit {
  tree: string;
  parents: string[];
  authorName: string;
  /** Seconds since the epoch. */
  committerTime: number;
  /** As isomorphic-git gives it: CRLF made LF, leading newlines dropped, one final newline. */
  message: string;
}

/** The error of an object that is not in the repository (as isomorphic-git names it). */
function notFound(what: string): Error {
  return Object.assign(new Error(`Could not find ${what}.`), { code: 'NotFoundError' });
}

/** Entries of a tree object (`<mode> <name>\0<20-byte id>`, repeated). */
function parseTree(data: Buffer): Array<{ path: string; oid: string; mode: string }> {
  const out: Array<{ path: string; oid: string; mode: string }> = [];
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    const nul = data.indexOf(0, space + 1);
    if (space === -1 || nul === -1 || nul + 21 > data.length) throw Object.assign(new Error('malformed tree object'), { code: 'InternalError' });
    out.push({ mode: data.toString('latin1', i, space), path: data.toString('utf8', space + 1, nul), oid: data.toString('hex', nul + 1, nul + 21) });
    i = nul + 21;
  }
  return out;
}

/** The fields of a commit object (header lines, a blank line, the message). */
function parseCommit(data: Buffer): ParsedCommit {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split === -1 ? text : text.slice(0, split);
  const body = split === -1 ? '' : text.slice(split + 2);
  let tree = '';
  const parents: string[] = [];
  let authorName = '';
  let committerTime = 0;
  for (const line of head.split('\n')) {
    if (line.startsWith('tree ')) tree = line.slice(5);
    else if (line.startsWith('parent ')) parents.push(line.slice(7));
    else if (line.startsWith('author ')) authorName = /^author (.*) <[^>]*> -?\d+ [+-]\d{4}$/.exec(line)?.[1] ?? '';
    else if (line.startsWith('committer ')) committerTime = Number(/ (-?\d+) [+-]\d{4}$/.exec(line)?.[1] ?? 0);
  }
  let message = body.replace(/\r\n/g, '\n').replace(/^\n+/, '');
  if (!message.endsWith('\n')) message += '\n';
  return { tree, parents, authorName, committerTime, message };
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
  /** Trees read, by id, bounded by their total number of entries as well as by count. */
  readonly #trees: LRUCache<string, ReadonlyMap<string, TreeEntry>>;
  /** Tree reads in progress, so concurrent cold reads of one tree read it once. */
  readonly #treeReads = new Map<string, Promise<ReadonlyMap<string, TreeEntry>>>();
  readonly #commitTrees = new LRUCache<string, Promise<string>>({ max: 10_000 });
  readonly #peeled = new LRUCache<string, Promise<string | null>>({ max: 10_000 });

  /**
   * @param options - see {@link GitRepositoryOptions}. No I/O happens here.
   */
  constructor(options: GitRepositoryOptions) {
    this.name = options.name;
    this.gitdir = nodePath.resolve(options.gitdir);
    this.defaultBranch = options.defaultBranch;
    this.remoteName = options.remoteName;
    this.#cache = options.cache ?? {};
    // A root tree of a few thousand applications is a few hundred KiB once read: the cache
    // is bounded by entries too, so reading many commits does not grow memory with history.
    this.#trees = new LRUCache({ max: Math.max(1, options.treeCacheEntries ?? 20_000), maxSize: TREE_CACHE_MAX_ENTRIES, sizeCalculation: (tree) => tree.size + 1 });
    this.#packDir = nodePath.join(this.gitdir, 'objects', 'pack');
    const packDir = this.#packDir;
    const visiblePacks = (): ReadonlySet<string> | null => this.#snapshot?.packs ?? null;
    const p = nodeFs.promises;
    const objectsDir = nodePath.join(this.gitdir, 'objects') + nodePath.sep;
    this.#fs = {
      promises: {
        // A mirror holds its objects in packs only (fetches write packs), so isomorphic-git's
        // look-up of a loose object, tried before the packs for every object, is answered
        // without a failing open() and the error Node builds for it.
        readFile: (file: string, ...rest: unknown[]): Promise<unknown> => {
          if (this.#snapshot !== null && file.startsWith(objectsDir) && LOOSE_OBJECT.test(file.slice(objectsDir.length))) return Promise.reject(NO_LOOSE_OBJECT);
          return (p.readFile as (f: string, ...r: unknown[]) => Promise<unknown>)(file, ...rest);
        },
        writeFile: p.writeFile,
        unlink: p.unlink,
        mkdir: p.mkdir,
        rmdir: p.rmdir,
        stat: p.stat,
        lstat: p.lstat,
        readlink: p.readlink,
        symlink: p.symlink,
        chmod: p.chmod,
        // Hide packs a fetch in progress is still writing: only published packs are read.
        // isomorphic-git lists the pack folder for every object it reads; with a snapshot
        // the list is the snapshot's, without asking the disk.
        readdir: async (dir: string, ...rest: unknown[]): Promise<unknown> => {
          const packs = visiblePacks();
          if (packs !== null && (dir === packDir || nodePath.resolve(dir) === packDir)) return [...packs];
          return (p.readdir as (d: string, ...r: unknown[]) => Promise<string[]>)(dir, ...rest);
        },
      },
    };
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
      if (oid !== null && !(await this.#refExists(fullRef))) oid = null;
    }
    return oid === null ? null : this.#peelToCommit(oid);
  }

  async #refExists(fullRef: string): Promise<boolean> {
    const loose = await stat(nodePath.join(this.gitdir, fullRef)).catch(() => null);
    if (loose?.isFile() === true) return true;
    const packed = await nodeFs.promises.readFile(nodePath.join(this.gitdir, 'packed-refs'), 'utf8').catch(() => '');
    for (const line of packed.split('\n')) {
      if (line.length > 41 && line.slice(41) === fullRef) return true;
    }
    return false;
  }

  /** The commit an object id designates (tags peeled), or null when missing or not a commit. */
  #peelToCommit(oid: string): Promise<string | null> {
    let p = this.#peeled.get(oid);
    if (p === undefined) {
      p = this.#peel(oid);
      this.#peeled.set(oid, p);
      // Absence may change (a later fetch brings the object): never cache a miss or failure.
      p.then(
        (c) => {
          if (c === null && this.#peeled.get(oid) === p) this.#peeled.delete(oid);
        },
        () => {
          if (this.#peeled.get(oid) === p) this.#peeled.delete(oid);
        },
      );
    }
    return p;
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
    let p = this.#commitTrees.get(commit);
    if (p === undefined) {
      p = this.#commit(commit).then((c) => c.tree);
      this.#commitTrees.set(commit, p);
      p.catch(() => {
        if (this.#commitTrees.get(commit) === p) this.#commitTrees.delete(commit);
      });
    }
    return p;
  }

  #tree(oid: string): Promise<ReadonlyMap<string, TreeEntry>> {
    const hit = this.#trees.get(oid);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.#treeReads.get(oid);
    if (p === undefined) {
      const read: Promise<Array<{ path: string; oid: string; mode: string }>> =
        this.#snapshot !== null
          ? this.#packObject(oid).then((object) => {
              if (object === null || object.type !== 'tree') throw notFound(`tree ${oid}`);
              return parseTree(object.data);
            })
          : readTree({ fs: this.#fs, gitdir: this.gitdir, oid, cache: this.#cache }).then(({ tree }) => tree);
      p = read.then((tree) => {
        const map = new Map<string, TreeEntry>();
        for (const e of tree) map.set(e.path, Object.freeze({ name: e.path, oid: e.oid, type: entryType(e.mode) }));
        this.#trees.set(oid, map);
        return map;
      });
      this.#treeReads.set(oid, p);
      const done = (): void => {
        this.#treeReads.delete(oid);
      };
      p.then(done, done);
    }
    return p;
  }
}

/** Whether two published snapshots name the same refs (both `null` counts as the same). */
function sameRefs(a: RefSnapshot | null, b: RefSnapshot | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.refs.size !== b.refs.size) return false;
  for (const [ref, oid] of a.refs) if (b.refs.get(ref) !== oid) return false;
  return true;
}
