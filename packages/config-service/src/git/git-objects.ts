/**
 * Git object bytes to fields, for the objects `GitRepository` reads from a mirror's packs
 * without isomorphic-git: tree entries, the fields of a commit, the kind of an entry from its
 * mode, and the not-found errors both read paths (packs and isomorphic-git) report alike.
 */
import type { TreeEntryType } from './repository-types.js';

/** One entry of a tree object as stored: mode (octal text), name, object id (40 hex). */
export interface RawTreeEntry {
  readonly mode: string;
  readonly path: string;
  readonly oid: string;
}

/** The fields of a commit `GitRepository` uses. */
export interface ParsedCommit {
  readonly tree: string;
  readonly parents: readonly string[];
  readonly authorName: string;
  /** Seconds since the epoch. */
  readonly committerTime: number;
  /** As isomorphic-git gives it: CRLF made LF, leading newlines dropped, one final newline. */
  readonly message: string;
}

/**
 * The kind of a tree entry from its Git mode.
 *
 * @param mode - octal mode text as stored (`040000` or `40000`, `100644`, `120000`, `160000`…).
 * @returns `'tree'`, `'symlink'`, `'submodule'`, else `'blob'`.
 */
export function entryType(mode: string): TreeEntryType {
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

/**
 * The string `code` of an error (Node's `ENOENT`, isomorphic-git's `NotFoundError`…).
 *
 * @returns the code, or `undefined` when `err` has no string `code`.
 */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Whether an error says an object, ref or file is absent: isomorphic-git's `NotFoundError`
 * (also thrown by {@link notFound}), or Node's `ENOENT` / `ENOTDIR`.
 */
export function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'NotFoundError' || code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The error of an object that is not in the repository, as isomorphic-git words it.
 *
 * @param what - what was looked for, e.g. `blob <oid>`.
 * @returns an `Error` with `code: 'NotFoundError'` and message `Could not find <what>.`.
 */
export function notFound(what: string): Error {
  return Object.assign(new Error(`Could not find ${what}.`), { code: 'NotFoundError' });
}

/**
 * Entries of a tree object (`<mode> <name>\0<20-byte id>`, repeated), in stored order.
 *
 * @param data - the tree object's content (no `tree <size>\0` header).
 * @throws an `Error` with `code: 'InternalError'` when the bytes are not a well-formed tree.
 */
export function parseTree(data: Buffer): RawTreeEntry[] {
  const out: RawTreeEntry[] = [];
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

/**
 * The fields of a commit object (header lines, a blank line, the message).
 *
 * @param data - the commit object's content (no `commit <size>\0` header).
 * @returns its tree, parents in order, author name, committer time and message; a header
 *   that is missing or unreadable gives `''` (tree, author) or `0` (time). Never throws.
 */
export function parseCommit(data: Buffer): ParsedCommit {
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
