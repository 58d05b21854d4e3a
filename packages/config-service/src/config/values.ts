/**
 * Small helpers on values: exact number spellings, text of scalars, deep equality.
 * Internal to `src/config/`.
 */
import type { NumberLiteral, PropertyValue, Scalar, TreeValue } from './types.js';

/** True for a {@link NumberLiteral}. */
export function isNumberLiteral(v: unknown): v is NumberLiteral {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'number' && typeof (v as { text?: unknown }).text === 'string';
}

/** True for a scalar (string, boolean, number literal). */
export function isScalar(v: unknown): v is Scalar {
  return typeof v === 'string' || typeof v === 'boolean' || isNumberLiteral(v);
}

/** Makes an integer literal from a bigint: canonical decimal digits (`0o640` → `"416"`). */
export function intLiteral(v: bigint): NumberLiteral {
  return { kind: 'number', text: v.toString() };
}

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/**
 * Makes a float literal whose text is valid as a JSON number, a YAML 1.2 core float and a
 * YAML 1.1 float at once (YAML 1.1 needs a `.` in the mantissa and a signed exponent):
 * the source spelling is kept when it is JSON-valid, completed by `.0` and `+` where
 * needed (`1e3` → `1.0e+3`, `1.50` stays `1.50`); otherwise the shortest round-trip
 * spelling of the double is used (`.5` → `0.5`).
 *
 * @param value - the parsed double.
 * @param source - the text in the document, when known.
 * @returns the literal, or `undefined` for infinities and NaN (not representable in JSON).
 */
export function floatLiteral(value: number, source: string | undefined): NumberLiteral | undefined {
  if (!Number.isFinite(value)) return undefined;
  const text = source !== undefined && JSON_NUMBER.test(source) ? source : String(value);
  const m = JSON_NUMBER.exec(text);
  if (m === null) return undefined;
  const sign = text.startsWith('-') ? '-' : '';
  const int = m[1] as string;
  const frac = m[2] ?? '.0';
  let exp = m[3] ?? '';
  if (exp !== '' && exp[1] !== '+' && exp[1] !== '-') exp = `${exp[0]}+${exp.slice(1)}`;
  return { kind: 'number', text: `${sign}${int}${frac}${exp}` };
}

/**
 * The text of a scalar as every text format writes it: strings as they are, booleans
 * `true`/`false`, numbers their exact digits.
 */
export function scalarText(v: Scalar): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return v.text;
}

/** Structural equality of two values (numbers compare by their text). */
export function valuesEqual(a: PropertyValue | TreeValue | null, b: PropertyValue | TreeValue | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (isNumberLiteral(a) || isNumberLiteral(b)) return isNumberLiteral(a) && isNumberLiteral(b) && a.text === b.text;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => valuesEqual(x as TreeValue, b[i] as TreeValue));
  }
  const ao = a as { readonly [k: string]: TreeValue };
  const bo = b as { readonly [k: string]: TreeValue };
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && valuesEqual(ao[k] as TreeValue, bo[k] as TreeValue));
}
