/**
 * The on-disk layout of a local Git repository: where its Git directory is, and whether a
 * ref is stored there by exactly its name (loose ref file or `packed-refs` line).
 */
import * as nodeFs from 'node:fs';
import { stat } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { CFG_ERR_REPO_UNAVAILABLE } from '../errors.js';

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

/**
 * Whether `fullRef` is stored in `gitdir` under exactly that name (isomorphic-git's
 * `resolveRef` also tries `refs/<x>`, `refs/tags/<x>`… for a name; this does not).
 *
 * @param gitdir - absolute Git directory.
 * @param fullRef - full ref name, e.g. `refs/heads/main`.
 * @returns true when `<gitdir>/<fullRef>` is a file or `packed-refs` has a line for it;
 *   false otherwise, also when either cannot be read. Never throws.
 */
export async function refExists(gitdir: string, fullRef: string): Promise<boolean> {
  const loose = await stat(nodePath.join(gitdir, fullRef)).catch(() => null);
  if (loose?.isFile() === true) return true;
  const packed = await nodeFs.promises.readFile(nodePath.join(gitdir, 'packed-refs'), 'utf8').catch(() => '');
  for (const line of packed.split('\n')) {
    if (line.length > 41 && line.slice(41) === fullRef) return true;
  }
  return false;
}
