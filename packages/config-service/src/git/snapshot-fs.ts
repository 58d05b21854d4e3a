/**
 * The file system `GitRepository` hands isomorphic-git: Node's `fs.promises`, except that
 * while a mirror's {@link RefSnapshot} is published, only the packs it lists are visible (a
 * fetch in progress may be writing others) and loose objects are never looked for.
 */
import * as nodeFs from 'node:fs';
import * as nodePath from 'node:path';
import type { PromiseFsClient } from 'isomorphic-git';
import type { RefSnapshot } from './ref-snapshot.js';

/** Path of a loose object below `objects/`. */
const LOOSE_OBJECT = /^[0-9a-f]{2}[\\/][0-9a-f]{38}$/;
/** What a loose-object read of a mirror rejects with (isomorphic-git only checks that it failed). */
const NO_LOOSE_OBJECT = Object.assign(new Error('no loose objects in a mirror'), { code: 'ENOENT' });

/**
 * Builds the isomorphic-git `fs` client of one repository.
 *
 * @param gitdir - the repository's absolute Git directory.
 * @param snapshot - returns the snapshot published now, or `null` (everything on disk is
 *   visible); asked on every call, so a newly published snapshot applies at once.
 * @returns a `PromiseFsClient` whose `readdir` of `<gitdir>/objects/pack` answers the
 *   snapshot's pack indexes without asking the disk, and whose `readFile` of a loose object
 *   (`objects/xx/<38 hex>`) rejects with `ENOENT` while a snapshot is published. Every other
 *   call, and every call without a snapshot, is Node's, with Node's errors.
 */
export function snapshotFs(gitdir: string, snapshot: () => RefSnapshot | null): PromiseFsClient {
  const packDir = nodePath.join(gitdir, 'objects', 'pack');
  const objectsDir = nodePath.join(gitdir, 'objects') + nodePath.sep;
  const p = nodeFs.promises;
  return {
    promises: {
      // A mirror holds its objects in packs only (fetches write packs), so isomorphic-git's
      // look-up of a loose object, tried before the packs for every object, is answered
      // without a failing open() and the error Node builds for it.
      readFile: (file: string, ...rest: unknown[]): Promise<unknown> => {
        if (snapshot() !== null && file.startsWith(objectsDir) && LOOSE_OBJECT.test(file.slice(objectsDir.length))) return Promise.reject(NO_LOOSE_OBJECT);
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
        const packs = snapshot()?.packs ?? null;
        if (packs !== null && (dir === packDir || nodePath.resolve(dir) === packDir)) return [...packs];
        return (p.readdir as (d: string, ...r: unknown[]) => Promise<string[]>)(dir, ...rest);
      },
    },
  };
}
