/**
 * Which repository holds which application (SPEC §4, "Several repositories"): the `apps`
 * globs of each `repositories[]` entry, the check that no two entries claim one
 * application, and the URL template of the per-application entry.
 *
 * Globs are those of the access policy (`auth/policy.ts` `matchesGlob`): `*` matches any
 * run of characters (none included), `?` exactly one, everything else itself, and a glob
 * matches the whole name. `**` is the same as `*` (names have no `/`).
 *
 * Overlap ({@link findOverlap}) is decided exactly, not by trying examples: two globs
 * claim a common application when some string over the application-name alphabet
 * (`a-z`, `0-9`, `.`, `_`, `-`) matches both. The check builds the product of the two
 * globs' automata (positions i in one, j in the other; `*` loops on any character or is
 * skipped) and searches it breadth-first for a pair of end positions; the path found spells
 * a name both match, shown in the error. It does not apply the other name rules (length,
 * first and last character, no `..`), so a pair that could only share a name those rules
 * forbid is still reported.
 */
import { matchesGlob } from '../auth/policy.js';

/** The globs used when an entry has no `apps`: every application. */
export const ALL_APPS: readonly string[] = Object.freeze(['*']);

/** Whether `app` matches one of `globs`. */
export function matchesAny(globs: readonly string[], app: string): boolean {
  return globs.some((g) => matchesGlob(g, app));
}

/**
 * A name both globs match, or `undefined` when there is none (see the module comment).
 * @example commonMatch('pay-*', '*-eu') === 'pay-eu'
 */
export function commonMatch(a: string, b: string): string | undefined {
  const A = Array.from(a.replace(/\*+/g, '*'));
  const B = Array.from(b.replace(/\*+/g, '*'));
  // State: positions in A and B, and whether a character was consumed (names are never empty).
  const key = (i: number, j: number, n: number): number => (i * (B.length + 1) + j) * 2 + n;
  const prev = new Map<number, { from: number; char: string }>();
  const start = key(0, 0, 0);
  prev.set(start, { from: -1, char: '' });
  const queue: Array<[number, number, number]> = [[0, 0, 0]];
  const visit = (i: number, j: number, n: number, from: number, char: string): void => {
    const k = key(i, j, n);
    if (prev.has(k)) return;
    prev.set(k, { from, char });
    queue.push([i, j, n]);
  };
  for (let q = 0; q < queue.length; q++) {
    const [i, j, n] = queue[q] as [number, number, number];
    const here = key(i, j, n);
    if (i === A.length && j === B.length && n === 1) {
      let out = '';
      for (let k = here; k !== start; ) {
        const p = prev.get(k) as { from: number; char: string };
        out = p.char + out;
        k = p.from;
      }
      return out;
    }
    const pa = A[i];
    const pb = B[j];
    // A `*` may match nothing.
    if (pa === '*') visit(i + 1, j, n, here, '');
    if (pb === '*') visit(i, j + 1, n, here, '');
    if (pa === undefined || pb === undefined) continue;
    // Both consume one character.
    const wildA = pa === '*' || pa === '?';
    const wildB = pb === '*' || pb === '?';
    let c: string | undefined;
    if (!wildA && !wildB) c = pa === pb ? pa : undefined;
    else if (!wildA) c = pa;
    else if (!wildB) c = pb;
    else c = 'x';
    if (c === undefined) continue;
    visit(pa === '*' ? i : i + 1, pb === '*' ? j : j + 1, 1, here, c);
  }
  return undefined;
}

/** Two entries that claim a common application. */
export interface Overlap {
  /** Indexes into the list given to {@link findOverlap}. */
  readonly first: number;
  readonly second: number;
  readonly firstGlob: string;
  readonly secondGlob: string;
  /** A name both claim. */
  readonly example: string;
}

/**
 * The first pair of entries whose globs claim a common application, in list order.
 * @param entries - each entry's globs (`ALL_APPS` for an entry without `apps`).
 */
export function findOverlap(entries: ReadonlyArray<readonly string[]>): Overlap | undefined {
  for (let s = 1; s < entries.length; s++) {
    for (let f = 0; f < s; f++) {
      for (const g1 of entries[f] as readonly string[]) {
        for (const g2 of entries[s] as readonly string[]) {
          const example = commonMatch(g1, g2);
          if (example !== undefined) return { first: f, second: s, firstGlob: g1, secondGlob: g2, example };
        }
      }
    }
  }
  return undefined;
}

/** The placeholder of a per-application repository URL. */
export const APP_PLACEHOLDER = '{app}';

/** Whether a repository URL is a template (`https://git.example/config/{app}.git`). */
export function isTemplateUrl(url: string): boolean {
  return url.includes(APP_PLACEHOLDER);
}

/**
 * The URL of one application's repository: `{app}` replaced by the name (names are
 * `[a-z0-9._-]`, safe in a URL path as they are).
 */
export function expandTemplate(url: string, app: string): string {
  return url.split(APP_PLACEHOLDER).join(app);
}

/**
 * A remote URL as compared for webhooks: no credentials, no query or fragment, scheme and
 * host lower-cased, default port, trailing `/` and `.git` dropped, the path lower-cased too
 * (Git hosts treat repository paths case-insensitively).
 * @returns the normalized URL, or `undefined` when `url` is not an absolute http(s) URL.
 */
export function normalizeRemoteUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  const path = u.pathname.replace(/\/+$/, '').replace(/\.git$/i, '');
  return `${u.protocol}//${u.host}${path}`.toLowerCase();
}

/**
 * The application a URL names under a template, or `undefined`.
 * @param template - the template entry's URL (`https://git.example/config/{app}.git`).
 * @param url - a repository URL from a webhook payload.
 */
export function appFromTemplateUrl(template: string, url: string): string | undefined {
  const marker = 'cfgsvcappplaceholder0';
  const t = normalizeRemoteUrl(template.split(APP_PLACEHOLDER).join(marker));
  const n = normalizeRemoteUrl(url);
  if (t === undefined || n === undefined) return undefined;
  const at = t.indexOf(marker);
  const prefix = t.slice(0, at);
  const suffix = t.slice(at + marker.length);
  if (!n.startsWith(prefix) || !n.endsWith(suffix) || n.length <= prefix.length + suffix.length) return undefined;
  const app = n.slice(prefix.length, n.length - suffix.length);
  return /^[a-z0-9._-]+$/.test(app) ? app : undefined;
}
