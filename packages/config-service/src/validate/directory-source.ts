/**
 * A configuration repository's working tree read the way the service reads a commit, for
 * `config-service validate` (which runs on a checkout in the repository's CI) and tests:
 * {@link DirectorySource} offers `GitRepository`'s `readTree`/`readFileAt`/`listFiles`,
 * so `AppConfigReader` finds, parses and merges the documents as the service would.
 * Reading files lives here, outside `config/`, which only handles bytes it is handed.
 */
import { createHash } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { lstat, open, readdir, readlink, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigSource } from '../config/app-config.js';
import { CFG_ERR_UNSUPPORTED_ENTRY } from '../errors.js';
import type { ListedFile, TreeEntry } from '../git/repository.js';


const LFS_POINTER_PREFIX = 'version https://git-lfs.github.com/spec/v1';

function splitPath(path: string): string[] | null {
  if (path === '') return [];
  const parts = path.split('/');
  for (const p of parts) if (p === '' || p === '.' || p === '..' || p.includes('\0') || p.includes('\\')) return null;
  return parts;
}

function gitOid(kind: 'blob' | 'tree' | 'link', content: Uint8Array | string): string {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return createHash('sha1').update(`${kind === 'tree' ? 'tree' : 'blob'} ${bytes.length}\0`).update(bytes).digest('hex');
}

/**
 * A working tree read like a Git commit (implements the `ConfigSource` subset of
 * `GitRepository`; the `commit` arguments are ignored).
 *
 * - Symbolic links are listed with type `symlink` and never followed: `readFileAt` refuses
 *   them (CFG_ERR_UNSUPPORTED_ENTRY, as Git reads do), a directory path through one is
 *   "not found", and files are opened with `O_NOFOLLOW`.
 * - Paths are `/`-separated and relative; `..`, `.`, empty segments, backslashes and NUL
 *   are refused (treated as not found), so nothing outside the root is ever read.
 * - `.git` entries are left out (Git trees never hold them). Sockets, FIFOs and devices
 *   are left out. Blob ids are Git's (`sha1("blob <n>\0" + bytes)`).
 */
export class DirectorySource implements ConfigSource {
  readonly #root: string;
  readonly #trees = new Map<string, ReadonlyMap<string, TreeEntry> | null>();
  readonly #files = new Map<string, Uint8Array>();

  /** @param root - absolute, real path of the working tree (see {@link DirectorySource.open}). */
  private constructor(root: string) {
    this.#root = root;
  }

  /**
   * @param dir - the working tree; may itself be reached through a symlink.
   * @throws Error (ENOENT/ENOTDIR) when `dir` is not a directory.
   */
  static async open(dir: string): Promise<DirectorySource> {
    const root = await realpath(dir);
    if (!(await lstat(root)).isDirectory()) throw Object.assign(new Error(`not a directory: ${dir}`), { code: 'ENOTDIR' });
    return new DirectorySource(root);
  }

  /** Lists one directory. `null` when it does not exist, is not a directory or is reached through a symlink. */
  async readTree(_commit: string, dir: string): Promise<ReadonlyMap<string, TreeEntry> | null> {
    const parts = splitPath(dir);
    if (parts === null) return null;
    const key = parts.join('/');
    if (this.#trees.has(key)) return this.#trees.get(key) ?? null;
    let tree: Map<string, TreeEntry> | null = null;
    if (await this.#isRealDirectory(parts)) {
      const full = join(this.#root, ...parts);
      const dirents: Dirent[] = await readdir(full, { withFileTypes: true });
      tree = new Map();
      for (const d of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        if (d.name === '.git') continue;
        const rel = key === '' ? d.name : `${key}/${d.name}`;
        if (d.isSymbolicLink()) tree.set(d.name, { name: d.name, type: 'symlink', oid: gitOid('link', await readlink(join(full, d.name))) });
        else if (d.isDirectory()) tree.set(d.name, { name: d.name, type: 'tree', oid: gitOid('tree', rel) });
        else if (d.isFile()) tree.set(d.name, { name: d.name, type: 'blob', oid: gitOid('blob', await this.#bytes(rel)) });
      }
    }
    this.#trees.set(key, tree);
    return tree;
  }

  /**
   * Reads one regular file.
   * @returns blob id and bytes, or `null` when there is no such file.
   * @throws CFG_ERR_UNSUPPORTED_ENTRY (422) for a symlink or a Git LFS pointer file.
   */
  async readFileAt(_commit: string, path: string): Promise<{ oid: string; bytes: Uint8Array } | null> {
    const parts = splitPath(path);
    if (parts === null || parts.length === 0) return null;
    const name = parts[parts.length - 1] as string;
    const entry = (await this.readTree('', parts.slice(0, -1).join('/')))?.get(name);
    if (entry === undefined || entry.type === 'tree') return null;
    if (entry.type !== 'blob') {
      throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(path)} is a symbolic link; symbolic links are never followed or served`);
    }
    const bytes = await this.#bytes(parts.join('/'));
    if (Buffer.from(bytes.subarray(0, LFS_POINTER_PREFIX.length)).toString('latin1') === LFS_POINTER_PREFIX) {
      throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(path)} is a Git LFS pointer file; LFS content is not served`);
    }
    return { oid: entry.oid, bytes };
  }

  /** Every file below `dir`, recursively (symlinks listed with their type, not followed). */
  async listFiles(_commit: string, dir: string): Promise<ListedFile[]> {
    const out: ListedFile[] = [];
    const walk = async (d: string): Promise<void> => {
      const tree = await this.readTree('', d);
      if (tree === null) return;
      for (const e of tree.values()) {
        const path = d === '' ? e.name : `${d}/${e.name}`;
        if (e.type === 'tree') await walk(path);
        else out.push({ path, oid: e.oid, type: e.type });
      }
    };
    await walk(dir);
    return out;
  }

  async #isRealDirectory(parts: readonly string[]): Promise<boolean> {
    let full = this.#root;
    for (const p of parts) {
      full = join(full, p);
      try {
        if (!(await lstat(full)).isDirectory()) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  async #bytes(rel: string): Promise<Uint8Array> {
    const known = this.#files.get(rel);
    if (known !== undefined) return known;
    const handle = await open(join(this.#root, ...rel.split('/')), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const bytes = new Uint8Array(await handle.readFile());
      this.#files.set(rel, bytes);
      return bytes;
    } finally {
      await handle.close();
    }
  }
}
