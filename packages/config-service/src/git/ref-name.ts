/**
 * Validation of the `ref` a client asks for, before any lookup.
 *
 * Implements the rules of git-check-ref-format(1) (as `git check-ref-format --allow-onelevel`
 * applies them), so every name Git itself accepts for a branch or tag is accepted here —
 * slashes and `#` included (`feature/pay-42`, `orders#1.4-ab12cd`, `v1.2.0`) — and every
 * name that could walk out of the refs namespace (`..`, `//`, a leading `/`) is refused.
 * Commit ids (4–40 hex digits, abbreviated or full) satisfy the same rules and pass.
 *
 * Source of the rules: git-check-ref-format(1), SPEC §4, case 13.
 */
import { CFG_ERR_INVALID_REF } from '../errors.js';

/** Longest ref accepted, in bytes of its UTF-8 encoding. */
export const MAX_REF_BYTES = 255;

/** Abbreviated or full commit id: 4 to 40 lower- or upper-case hex digits. */
const COMMIT_ID = /^[0-9a-fA-F]{4,40}$/;

/**
 * Whether `ref` looks like a commit id (4–40 hex digits). Such a string may still name a
 * branch or tag; resolution order decides (see `GitRepository.resolveRef`).
 */
export function isCommitIdLike(ref: string): boolean {
  return COMMIT_ID.test(ref);
}

/**
 * The first git-check-ref-format rule `ref` breaks, or `null` when it is a valid ref name.
 *
 * @param ref - the ref as the client sent it, after URL decoding (and after the Spring
 *   route's `(_)` → `/` translation).
 * @returns a short description of the rule broken, e.g. `"contains '..'"`; never contains
 *   anything but constant text.
 */
export function refFormatViolation(ref: string): string | null {
  if (ref.length === 0) return 'is empty';
  if (Buffer.byteLength(ref, 'utf8') > MAX_REF_BYTES) return `is longer than ${MAX_REF_BYTES} bytes`;
  if (COMMIT_ID.test(ref)) return null;
  if (ref === '@') return "is '@' alone";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(ref)) return 'contains a control character';
  if (ref.includes(' ')) return 'contains a space';
  for (const ch of ['~', '^', ':', '?', '*', '[', '\\']) {
    if (ref.includes(ch)) return `contains '${ch}'`;
  }
  if (ref.includes('..')) return "contains '..'";
  if (ref.includes('@{')) return "contains '@{'";
  if (ref.startsWith('/')) return "begins with '/'";
  if (ref.endsWith('/')) return "ends with '/'";
  if (ref.includes('//')) return "contains '//'";
  if (ref.endsWith('.')) return "ends with '.'";
  for (const component of ref.split('/')) {
    if (component.startsWith('.')) return "has a component beginning with '.'";
    if (component.endsWith('.lock')) return "has a component ending with '.lock'";
  }
  return null;
}

/**
 * Throws unless `ref` is a valid Git ref name or commit id.
 *
 * @param ref - branch, tag, full ref name (`refs/...`) or commit id, as requested.
 * @throws CFG_ERR_INVALID_REF (400) naming the rule broken; the message quotes the ref
 *   (JSON-escaped, at most {@link MAX_REF_BYTES} characters) and nothing else.
 */
export function assertValidRef(ref: string): void {
  const violation = refFormatViolation(ref);
  if (violation !== null) {
    const shown = ref.length > MAX_REF_BYTES ? `${ref.slice(0, MAX_REF_BYTES)}…` : ref;
    throw new CFG_ERR_INVALID_REF(`${JSON.stringify(shown)} ${violation}`);
  }
}
