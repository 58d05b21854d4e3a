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
  /** A folder (its files are listed as `name/sub/file`; content is empty). */
  isDirectory: boolean;
}

async function walk(root: string, rel: string, out: Map<string, VisibleFile>): Promise<void> {
  for (const name of (await readdir(join(root, rel))).sort()) {
    const p = join(root, rel, name);
    const s = await stat(p);
    const key = `${rel}/${name}`;
    if (s.isDirectory()) {
      out.set(key, { content: Buffer.alloc(0), mode: s.mode & 0o777, isSymlink: false, target: null, isDirectory: true });
      await walk(root, key, out);
    } else {
      out.set(key, { content: await readFile(p), mode: s.mode & 0o777, isSymlink: false, target: null, isDirectory: false });
    }
  }
}

/**
 * Every visible (not `..`-prefixed) entry of `dir`, resolved through its symlinks; the
 * files inside a visible folder are listed too, as `folder/sub/file`.
 */
export async function readVisible(dir: string): Promise<Map<string, VisibleFile>> {
  const out = new Map<string, VisibleFile>();
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('..')) continue;
    const p = join(dir, name);
    const l = await lstat(p);
    const target = l.isSymbolicLink() ? await readlink(p) : null;
    const s = await stat(p);
    if (s.isDirectory()) {
      out.set(name, { content: Buffer.alloc(0), mode: s.mode & 0o777, isSymlink: l.isSymbolicLink(), target, isDirectory: true });
      await walk(dir, name, out);
      continue;
    }
    out.set(name, { content: await readFile(p), mode: s.mode & 0o777, isSymlink: l.isSymbolicLink(), target, isDirectory: false });
  }
  return out;
}

/** Every hidden (`..`-prefixed) entry of `dir`. */
export async function hiddenEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('..')).sort();
}
