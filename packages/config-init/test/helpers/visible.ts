/** Reads what a consumer of the output directory sees. */
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** One visible file as a reader sees it. */
export interface VisibleFile {
  content: Buffer;
  /** Permission bits of what the name resolves to. */
  mode: number;
  isSymlink: boolean;
  target: string | null;
}

/** Every visible (not `..`-prefixed) entry of `dir`, resolved through its symlinks. */
export async function readVisible(dir: string): Promise<Map<string, VisibleFile>> {
  const out = new Map<string, VisibleFile>();
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('..')) continue;
    const p = join(dir, name);
    const l = await lstat(p);
    const target = l.isSymbolicLink() ? await readlink(p) : null;
    const s = await stat(p);
    out.set(name, { content: await readFile(p), mode: s.mode & 0o777, isSymlink: l.isSymbolicLink(), target });
  }
  return out;
}

/** Every hidden (`..`-prefixed) entry of `dir`. */
export async function hiddenEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('..')).sort();
}
