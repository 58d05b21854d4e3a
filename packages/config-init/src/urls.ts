/**
 * The request URLs of config-init (SPEC §5.1): `{server}/v1/apps/{app}/config`,
 * `/files`, `/files/{path}`, `/templates` and `/templates/{path}`, with a path prefix of
 * `--server` kept.
 */
import type { EnvNaming, Format } from './args.js';

/** `{server}` with `/v1/apps/{app}` and `rest` appended to its path (a path prefix is kept). */
function appUrl(server: URL, app: string, rest: string, query: readonly string[]): URL {
  const url = new URL(server.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/apps/${encodeURIComponent(app)}${rest}`;
  const q = query.filter(Boolean).join('&');
  url.search = q === '' ? '' : `?${q}`;
  return url;
}

/**
 * Builds `GET {server}/v1/apps/{app}/config?profile=…&format=…[&ref=…][&envNaming=spring]`.
 * `envNaming=spring` is sent only for the formats that carry environment names (`env`,
 * `dotenv`); `standard` is the service's default and is not sent.
 */
export function configUrl(server: URL, app: string, profiles: readonly string[], format: Format, ref: string | undefined, envNaming: EnvNaming = 'standard'): URL {
  // Names are validated (`[a-z0-9._-]`), so only the ref needs encoding.
  return appUrl(server, app, '/config', [
    profiles.length > 0 ? `profile=${profiles.join(',')}` : '',
    `format=${format}`,
    ref !== undefined ? `ref=${encodeURIComponent(ref)}` : '',
    envNaming === 'spring' && (format === 'env' || format === 'dotenv') ? 'envNaming=spring' : '',
  ]);
}

/** The two folders of files by path the service serves: raw files and rendered templates. */
export type FileKind = 'files' | 'templates';

/** Builds `GET {server}/v1/apps/{app}/files?profile=…&ref=…` (or `/templates`). */
export function filesListUrl(server: URL, app: string, profiles: readonly string[], ref: string | undefined, kind: FileKind = 'files'): URL {
  return appUrl(server, app, `/${kind}`, [profiles.length > 0 ? `profile=${profiles.join(',')}` : '', ref !== undefined ? `ref=${encodeURIComponent(ref)}` : '']);
}

/** `url` with `wait=<seconds>s` added (long-poll, SPEC §5.1). */
export function withWait(url: URL, waitMs: number): URL {
  const out = new URL(url.href);
  out.searchParams.set('wait', `${Math.max(1, Math.ceil(waitMs / 1000))}s`);
  return out;
}

/**
 * Builds `GET {server}/v1/apps/{app}/files/{path}?profile=…&ref=…`, each path segment
 * URL-encoded on its own (a `/` inside the path stays a separator). `path` must have
 * passed `filePathViolation` (response.ts).
 */
export function fileUrl(server: URL, app: string, path: string, profiles: readonly string[], ref: string | undefined, kind: FileKind = 'files'): URL {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return appUrl(server, app, `/${kind}/${encoded}`, [profiles.length > 0 ? `profile=${profiles.join(',')}` : '', ref !== undefined ? `ref=${encodeURIComponent(ref)}` : '']);
}

