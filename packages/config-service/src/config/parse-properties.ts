/**
 * Reads `.properties` text the way `java.util.Properties.load(Reader)` does (Java 17 API
 * docs: natural and logical lines, separators, escapes). Internal to `src/config/`.
 */
import type { RawEntry } from './assemble.js';
import { documentError, quoteKey } from './document-error.js';
import { limitError, type DocumentLimits } from './limits.js';
import { parsePropertyName } from './paths.js';
import type { Origin } from './types.js';

const WS = new Set([' ', '\t', '\f']);

interface LogicalLine {
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

/**
 * Splits text into logical lines (`Properties.load`): natural lines end at `\n`, `\r` or
 * `\r\n`; leading white space (space, tab, form feed) is skipped; blank lines and lines
 * whose first non-blank character is `#` or `!` are comments; a line ending in an odd
 * number of backslashes continues on the next line, whose leading white space is dropped
 * (a blank continuation line ends the logical line; a backslash at the end of input is
 * dropped).
 */
function logicalLines(text: string): LogicalLine[] {
  const natural = text.split(/\r\n|\r|\n/);
  const out: LogicalLine[] = [];
  for (let i = 0; i < natural.length; i++) {
    const raw = natural[i] as string;
    let start = 0;
    while (start < raw.length && WS.has(raw[start] as string)) start++;
    if (start === raw.length) continue;
    if (raw[start] === '#' || raw[start] === '!') continue;
    const lineNo = i + 1;
    // Segments are joined once at the end: slicing a growing string per continuation
    // line would copy it each time (quadratic in a file of continuation lines).
    const parts: string[] = [];
    let segment = raw.slice(start);
    while (trailingBackslashes(segment) % 2 === 1) {
      parts.push(segment.slice(0, -1));
      segment = '';
      if (i + 1 >= natural.length) break;
      i++;
      const next = natural[i] as string;
      let s = 0;
      while (s < next.length && WS.has(next[s] as string)) s++;
      segment = next.slice(s);
    }
    parts.push(segment);
    out.push({ text: parts.join(''), line: lineNo, column: start + 1 });
  }
  return out;
}

function trailingBackslashes(s: string): number {
  let n = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === '\\'; i--) n++;
  return n;
}

/**
 * `Properties.loadConvert`: `\t \n \r \f`, `\uXXXX` (exactly four hex digits), and any
 * other escaped character stands for itself.
 *
 * @returns the converted text, or the offset of a malformed `\u` escape.
 */
function unescape(s: string): string | { malformedAt: number } {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = s[++i];
    if (e === undefined) break;
    if (e === 'u') {
      const hex = s.slice(i + 1, i + 5);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) return { malformedAt: i - 1 };
      out += String.fromCharCode(parseInt(hex, 16));
      i += 4;
    } else if (e === 't') out += '\t';
    else if (e === 'n') out += '\n';
    else if (e === 'r') out += '\r';
    else if (e === 'f') out += '\f';
    else out += e;
  }
  return out;
}

/** One key/value pair as `java.util.Properties.load` reads it, with the key's position. */
export interface LoadedProperty {
  readonly key: string;
  readonly value: string;
  /** 1-based line and column of the key's first character. */
  readonly line: number;
  readonly column: number;
}

/**
 * `java.util.Properties.load` on text: logical lines, key/value split at the first
 * unescaped `=`, `:` or white space (then white space and one `=`/`:` skipped), escapes
 * converted. A key given twice keeps its last value, at the position it was last written.
 *
 * @param text - decoded text (BOM already removed).
 * @param document - document path, for messages.
 * @param maxKeys - most key lines (`documents.maxKeys`); unbounded when absent.
 * @returns the pairs in the order they were last written.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) for a malformed `\uXXXX` escape (Java throws
 *   `IllegalArgumentException`), naming line and column; never quotes a value.
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) at the key line that goes over `maxKeys`.
 */
export function loadProperties(text: string, document: string, maxKeys = Number.POSITIVE_INFINITY): LoadedProperty[] {
  const byKey = new Map<string, LoadedProperty>();
  let lines = 0;
  for (const ll of logicalLines(text)) {
    if (++lines > maxKeys) throw limitError({ document, line: ll.line, column: ll.column }, 'maxKeys', maxKeys, 'the number of keys', '(key lines)');
    const s = ll.text;
    let keyLen = 0;
    let valueStart = s.length;
    let hasSep = false;
    let backslash = false;
    while (keyLen < s.length) {
      const c = s[keyLen] as string;
      if ((c === '=' || c === ':') && !backslash) {
        valueStart = keyLen + 1;
        hasSep = true;
        break;
      } else if (WS.has(c) && !backslash) {
        valueStart = keyLen + 1;
        break;
      }
      backslash = c === '\\' ? !backslash : false;
      keyLen++;
    }
    while (valueStart < s.length) {
      const c = s[valueStart] as string;
      if (!WS.has(c)) {
        if (!hasSep && (c === '=' || c === ':')) hasSep = true;
        else break;
      }
      valueStart++;
    }
    const key = unescape(s.slice(0, keyLen));
    if (typeof key !== 'string') throw documentError({ document, line: ll.line, column: ll.column + key.malformedAt }, 'malformed \\uXXXX escape in a key');
    const value = unescape(s.slice(valueStart));
    if (typeof value !== 'string') {
      // The column is exact only when the value has no continuation before the escape.
      throw documentError({ document, line: ll.line, column: ll.column + valueStart + value.malformedAt }, `malformed \\uXXXX escape in the value of ${quoteKey(key)}`);
    }
    byKey.delete(key);
    byKey.set(key, { key, value, line: ll.line, column: ll.column });
  }
  return [...byKey.values()];
}

/**
 * Parses `.properties` text into raw keys: {@link loadProperties}, then each key split
 * into a property path with Spring's name syntax (`a.b`, `list[0]`, `map[some.key]`).
 * Values are always strings.
 *
 * @param text - decoded text (BOM already removed).
 * @param document - document path, for origins and messages.
 * @param commit - commit, for origins.
 * @param limits - `maxKeys` (key lines) and `maxDepth` (levels of one key's property path).
 * @returns raw keys in the order they were last written.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) for a malformed `\uXXXX` escape, or a key that
 *   names no property or starts with a list index; never quotes a value.
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) over `maxKeys` or `maxDepth`.
 */
export function readProperties(text: string, document: string, commit: string | undefined, limits: Pick<DocumentLimits, 'maxKeys' | 'maxDepth'>): RawEntry[] {
  return loadProperties(text, document, limits.maxKeys).map((p): RawEntry => {
    const origin: Origin = { document, line: p.line, column: p.column, ...(commit === undefined ? {} : { commit }) };
    const tokens = parsePropertyName(p.key);
    if (tokens.length > limits.maxDepth) {
      throw limitError({ document, line: p.line, column: p.column }, 'maxDepth', limits.maxDepth, 'the depth of this property path', '(map keys, dotted segments and list indices)');
    }
    if (tokens.length === 0) throw documentError({ document, line: p.line, column: p.column }, `key ${quoteKey(p.key)} names no property`);
    if (typeof tokens[0] !== 'string') throw documentError({ document, line: p.line, column: p.column }, `key ${quoteKey(p.key)} starts with a list index`);
    return { tokens, value: p.value, origin, spelling: quoteKey(p.key) };
  });
}
