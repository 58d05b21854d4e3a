/**
 * The syntax of placeholders (`${key}`, `${key:default}`, nesting, `\${` escapes), parsed
 * as Spring Framework 6.2's `PlaceholderParser` does; see `placeholders.ts` for the rules
 * and for their resolution. Pure: text in, parts out.
 */

/** Deepest nesting of placeholders inside one text (`${a.${b.${c}}}`). */
export const MAX_PLACEHOLDER_NESTING = 32;

/**
 * What went wrong with a placeholder. `secret`: a secret inside a longer value without
 * `compose` (CFG_ERR_SECRET_REFERENCE); `secretKey`: a secret in a placeholder's key
 * (CFG_ERR_SECRET_REFERENCE); the others are CFG_ERR_PLACEHOLDER.
 */
export type PlaceholderProblemKind = 'missing' | 'cycle' | 'depth' | 'size' | 'secret' | 'secretKey';


export const PREFIX = '${';
export const SUFFIX = '}';
const SIMPLE_PREFIX = '{';
const SEPARATOR = ':';
const ESCAPE = '\\';

/** A parsed piece of a text: literal text, a placeholder with a plain key, or one whose key or default nests placeholders. */
export type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'simple'; readonly text: string; readonly key: string; readonly fallback: string | null }
  | { readonly kind: 'nested'; readonly text: string; readonly keyParts: readonly Part[]; readonly defaultParts: readonly Part[] | null };

/** Thrown inside the resolver; turned into a {@link PlaceholderError} at the top. */
export class Problem {
  constructor(
    readonly kind: PlaceholderProblemKind,
    readonly chain: readonly string[],
    readonly placeholder?: string,
    readonly secret?: string,
  ) {}
}

function isEscaped(value: string, index: number): boolean {
  return index > 0 && value[index - 1] === ESCAPE;
}

/** Index of the `}` closing the placeholder that starts at `start`, or -1 (Spring's `nextValidEndPrefix`). */
function endOfPlaceholder(value: string, start: number): number {
  let index = start + PREFIX.length;
  let nested = 0;
  while (index < value.length) {
    if (value.startsWith(SUFFIX, index)) {
      if (nested === 0) return index;
      nested--;
      index += SUFFIX.length;
    } else if (value.startsWith(SIMPLE_PREFIX, index)) {
      nested++;
      index += SIMPLE_PREFIX.length;
    } else {
      index++;
    }
  }
  return -1;
}

function addText(parts: Part[], text: string): void {
  if (text === '') return;
  const last = parts[parts.length - 1];
  if (last !== undefined && last.kind === 'text') parts[parts.length - 1] = { kind: 'text', text: last.text + text };
  else parts.push({ kind: 'text', text });
}

/** Splits `key:default` at the first unescaped `:`; `null` when there is no `:` at all. */
function splitKeyAndDefault(value: string): { key: string; fallback: string | null } | null {
  if (!value.includes(SEPARATOR)) return null;
  let position = 0;
  let buffer = '';
  let index = value.indexOf(SEPARATOR, position);
  while (index !== -1) {
    if (isEscaped(value, index)) {
      buffer += value.slice(position, index - 1) + SEPARATOR;
      position = index + SEPARATOR.length;
      index = value.indexOf(SEPARATOR, position);
    } else {
      return { key: buffer + value.slice(position, index), fallback: value.slice(index + SEPARATOR.length) };
    }
  }
  return { key: buffer + value.slice(position), fallback: null };
}

function nestedPart(text: string, parts: readonly Part[]): Part {
  const keyParts: Part[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as Part;
    if (part.kind !== 'text') {
      keyParts.push(part);
      continue;
    }
    const split = splitKeyAndDefault(part.text);
    if (split === null) {
      keyParts.push(part);
      continue;
    }
    keyParts.push({ kind: 'text', text: split.key });
    const defaultParts: Part[] = split.fallback === null ? [] : [{ kind: 'text', text: split.fallback }];
    defaultParts.push(...parts.slice(i + 1));
    return { kind: 'nested', text, keyParts, defaultParts };
  }
  return { kind: 'nested', text, keyParts, defaultParts: null };
}

/**
 * Parses a text into literal parts and placeholders (Spring 6.2 `PlaceholderParser.parse`).
 * With `inPlaceholder`, `value` is the inside of one placeholder and one part is returned.
 */
export function parse(value: string, inPlaceholder: boolean, nesting: number, chain: readonly string[]): Part[] {
  if (nesting > MAX_PLACEHOLDER_NESTING) throw new Problem('depth', [...chain]);
  let start = value.indexOf(PREFIX);
  if (start === -1) {
    if (!inPlaceholder) return [{ kind: 'text', text: value }];
    const split = splitKeyAndDefault(value);
    return [split === null ? { kind: 'simple', text: value, key: value, fallback: null } : { kind: 'simple', text: value, key: split.key, fallback: split.fallback }];
  }
  const parts: Part[] = [];
  let position = 0;
  while (start !== -1) {
    const end = endOfPlaceholder(value, start);
    if (end === -1) {
      // Not a placeholder: keep the prefix as text and look further.
      addText(parts, value.slice(position, start + PREFIX.length));
      position = start + PREFIX.length;
    } else if (isEscaped(value, start)) {
      // `\${`: drop the backslash, keep `${` as text.
      addText(parts, value.slice(position, start - 1));
      addText(parts, PREFIX);
      position = start + PREFIX.length;
    } else {
      addText(parts, value.slice(position, start));
      parts.push(...parse(value.slice(start + PREFIX.length, end), true, nesting + 1, chain));
      position = end + SUFFIX.length;
    }
    start = value.indexOf(PREFIX, position);
  }
  addText(parts, value.slice(position));
  return inPlaceholder ? [nestedPart(value, parts)] : parts;
}

/**
 * The key of a placeholder as written, nested placeholders kept as `${key}` without their
 * defaults (a default is a value, and messages never show values).
 */
export function writtenKey(part: Part): string {
  if (part.kind === 'text') return part.text;
  if (part.kind === 'simple') return part.key;
  return part.keyParts.map((p) => (p.kind === 'text' ? p.text : `${PREFIX}${writtenKey(p)}${SUFFIX}`)).join('');
}
