/**
 * Bindings of `{cipher}` values (docs/secrets.md, "Binding"): where a version-2 value
 * belongs, as written in its payload (and authenticated as part of the AES-GCM AAD by
 * `envelope.ts`) and in its text prefix.
 */

/**
 * Where a bound value belongs: `app:<name>` (one application's own documents) or
 * `shared` (the shared `application*` documents every application reads).
 */
export type SecretBinding = `app:${string}` | 'shared';

/** The binding of the shared `application*` documents. */
export const SHARED_BINDING: SecretBinding = 'shared';

/** Longest binding, bytes (`app:` and a 63-character application name). */
export const MAX_BINDING_BYTES = 67;

/** SPEC §5 application names: `^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`, no `..`. */
const APP_NAME_RE = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;

/** True for a well-formed {@link SecretBinding}. Never throws. */
export function isBinding(value: unknown): value is SecretBinding {
  if (value === SHARED_BINDING) return true;
  if (typeof value !== 'string' || !value.startsWith('app:')) return false;
  const app = value.slice(4);
  return APP_NAME_RE.test(app) && !app.includes('..');
}

/**
 * The binding of application `app`'s own documents: `app:<app>`.
 * @throws TypeError when `app` is not a valid application name (SPEC §5).
 */
export function appBinding(app: string): SecretBinding {
  const b = `app:${app}` as const;
  if (!isBinding(b)) throw new TypeError('appBinding: not a valid application name');
  return b;
}

/** Words for a binding in messages: `application 'orders'` or `the shared documents`. */
export function describeBinding(binding: SecretBinding): string {
  return binding === SHARED_BINDING ? 'the shared documents' : `application '${binding.slice(4)}'`;
}

/** The text prefix of a binding: `{app:<name>}` or `{shared}`. */
export function bindingPrefix(binding: SecretBinding): string {
  return binding === SHARED_BINDING ? '{shared}' : `{${binding}}`;
}
