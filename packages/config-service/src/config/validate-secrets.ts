/**
 * The secrets checks of `config-service validate` (docs/validate.md, docs/secrets.md
 * "Binding"): every `{cipher}` value of a document is read (never decrypted: validate
 * has no keys) and reported when
 *
 * - its envelope cannot be read (warning: it fails to decrypt for every caller allowed
 *   `secrets:read`; a warning, not an error, because repositories moved over from Spring
 *   Cloud Config may hold values in Spring's own `{cipher}` format, which their Spring
 *   clients decrypt themselves);
 * - it is bound to another application than the document's (error: it fails with
 *   "bound to another application" when served);
 * - it is unbound, version 1 (warning by default; `--unbound-secrets error`): a copy of it
 *   decrypts in any application's documents; `config-service encrypt rebind` binds it.
 *
 * Given the service's keys ({@link KnownKeys}: `--public-key id=file` or `--config`'s
 * `secrets.keys`), also (errors): an envelope that cannot be read, a key id no configured
 * key has, and a wrapped data key whose size is not the named key's modulus (encrypted
 * with another public key under that id). Still no private key is needed.
 */
import { describeBinding, inspectValue, isCipherText, type SecretBinding } from '../secrets/envelope.js';
import type { Layout } from './app-config.js';
import { formatPropertyName, type NameToken } from './paths.js';
import type { ParsedDocument, TreeValue } from './types.js';
import { isNumberLiteral } from './values.js';

/** One finding of {@link secretFindings}; severity `unbound` takes the severity chosen for unbound values. */
export interface SecretFinding {
  readonly line: number;
  readonly column: number;
  readonly severity: 'error' | 'warning' | 'unbound';
  readonly message: string;
}

const SHARED_NAME = /^application(?:-[^/]*)?\.(?:yml|yaml|json|properties)$/;
const EXT = /\.(?:yml|yaml|json|properties)$/;

/**
 * The public keys a repository's values must be encrypted with (`validate --public-key
 * id=file`, or the `secrets.keys` of `--config`): the ids the service knows, and for keys
 * whose public half was given, the size of what they wrap (the RSA modulus, in bytes).
 */
export interface KnownKeys {
  /** Every configured key id. */
  readonly ids: ReadonlySet<string>;
  /** Modulus bytes by key id, for keys whose public key was read. */
  readonly modulusBytes: ReadonlyMap<string, number>;
}

/** Whether `binding` may stand in document `path` of the layout. */
function bindingFits(binding: SecretBinding, path: string, layout: Layout): boolean {
  if (!path.includes('/') && SHARED_NAME.test(path)) return binding === 'shared';
  if (binding === 'shared') return false;
  const app = binding.slice('app:'.length);
  if (layout === 'folders') return path.startsWith(`${app}/`);
  // spring: `<app>.<ext>` or `<app>-<profile>.<ext>` at the root; the name alone cannot
  // tell `my-app` (profile `dev`) from `my` (profile `app-dev`), so any such prefix fits.
  const base = path.replace(EXT, '');
  return base === app || base.startsWith(`${app}-`);
}

/**
 * The secrets findings of one parsed document (`path` from the repository root).
 * Never throws; names keys, lines and key ids, never a value.
 */
export function secretFindings(path: string, parsed: ParsedDocument, layout: Layout, keys?: KnownKeys): SecretFinding[] {
  const out: SecretFinding[] = [];
  const check = (tokens: readonly NameToken[], text: string, line: number, column: number): void => {
    const key = formatPropertyName(tokens);
    let info;
    try {
      info = inspectValue(text, key);
    } catch (err) {
      const reason = ((err as { data?: { reason?: string } }).data?.reason) ?? 'not a valid {cipher} envelope';
      // With the service's keys given, every {cipher} value must be one of its envelopes.
      out.push({ line, column, severity: keys === undefined ? 'warning' : 'error', message: `the secret at key '${key}' cannot be decrypted by this service: ${reason}` });
      return;
    }
    if (keys !== undefined && !keys.ids.has(info.keyId)) {
      const known = [...keys.ids].sort().map((id) => `'${id}'`).join(', ');
      out.push({ line, column, severity: 'error', message: `the secret at key '${key}' names key id '${info.keyId}', which no configured key has (${known === '' ? 'no keys are configured' : `known: ${known}`}); it fails to decrypt` });
      return;
    }
    const modulus = keys?.modulusBytes.get(info.keyId);
    if (modulus !== undefined && modulus !== info.wrappedBytes) {
      out.push({
        line,
        column,
        severity: 'error',
        message: `the secret at key '${key}' was not encrypted with the public key of '${info.keyId}' (its wrapped data key has ${info.wrappedBytes} bytes, that key's modulus ${modulus}); it fails to decrypt`,
      });
      return;
    }
    if (info.binding === undefined) {
      out.push({
        line,
        column,
        severity: 'unbound',
        message: `the secret at key '${key}' (key id '${info.keyId}') is not bound to an application (envelope version 1), so a copy of it decrypts in any application's documents; bind it with 'config-service encrypt rebind'`,
      });
    } else if (!bindingFits(info.binding, path, layout)) {
      out.push({
        line,
        column,
        severity: 'error',
        message: `the secret at key '${key}' (key id '${info.keyId}') is bound to another application (the value is bound to ${describeBinding(info.binding)}); it fails to decrypt here`,
      });
    }
  };
  const walk = (tokens: NameToken[], value: TreeValue, line: number, column: number): void => {
    if (typeof value === 'string') {
      if (isCipherText(value)) check(tokens, value, line, column);
    } else if (Array.isArray(value)) {
      (value as readonly TreeValue[]).forEach((v, i) => walk([...tokens, { index: i }], v, line, column));
    } else if (typeof value === 'object' && value !== null && !isNumberLiteral(value)) {
      const map = value as { readonly [k: string]: TreeValue };
      for (const k of Object.keys(map)) walk([...tokens, k], map[k] as TreeValue, line, column);
    }
  };
  for (const s of parsed.sources) {
    for (const e of s.source.entries) if (e.value !== null) walk([...e.path], e.value as TreeValue, e.origin.line ?? 1, e.origin.column ?? 1);
  }
  return out;
}
