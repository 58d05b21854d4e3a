/**
 * The published set: which files a fetch result becomes, and the `.config-meta.json`
 * that describes them. Pure.
 */
import type { Format, Options } from './args.js';
import type { FetchResult } from './fetch.js';
import { sha256Hex, type PublishFile } from './publish.js';

/** Visible file name per format. */
export const OUTPUT_NAMES: Readonly<Record<Format, string>> = {
  json: 'application.json',
  yaml: 'application.yaml',
  properties: 'application.properties',
  env: 'application.env',
  dotenv: '.env',
};

/** Name of the metadata file published with every set. */
export const META_FILE = '.config-meta.json';

/** Visible name of the folder of raw files (`--files`): `files -> ..data/files`. */
export const FILES_DIR = 'files';

/** Visible name of the folder of rendered templates (`--templates`): `templates -> ..data/templates`. */
export const TEMPLATES_DIR = 'templates';

/** Content of `.config-meta.json`. Hashes only, never values. */
export interface ConfigMeta {
  /** Application name. */
  app: string;
  /** Profiles asked for, in order. */
  profiles: string[];
  /** Ref asked for (`null` = the repository's default branch). */
  ref: string | null;
  /** Commit every file was read at. */
  commit: string;
  /** When the set was fetched (ISO 8601, UTC). */
  time: string;
  /** The config-service base URL. */
  server: string;
  /** File name or path (`files/logback.xml`, `templates/nginx.conf`) → SHA-256 hex of its bytes (the meta file itself excluded). */
  files: Record<string, string>;
}

/** A set ready to publish. */
export interface FileSet {
  /** Every file, the meta file last. */
  files: PublishFile[];
  /** Top-level folders to publish even when empty (`files` with `--files`). */
  directories: string[];
  /** The meta that is also in `files`. */
  meta: ConfigMeta;
}

/**
 * Builds the file set (documents, raw files under `files/`, rendered templates under
 * `templates/`, meta) from a fetch result.
 *
 * @param options - the run's options (app, profiles, ref, server, `files`).
 * @param fetched - what {@link fetchConfig} returned.
 * @param now - the time written into the meta (ms since the epoch).
 */
export function buildFileSet(options: Options, fetched: FetchResult, now: number): FileSet {
  const files: PublishFile[] = fetched.documents.map((d) => ({ name: OUTPUT_NAMES[d.format], content: d.body }));
  for (const f of fetched.files ?? []) files.push({ name: `${FILES_DIR}/${f.path}`, content: f.body });
  for (const f of fetched.templates ?? []) files.push({ name: `${TEMPLATES_DIR}/${f.path}`, content: f.body });
  const hashes: Record<string, string> = {};
  for (const f of files) hashes[f.name] = sha256Hex(f.content);
  const server = new URL(options.server.href);
  const meta: ConfigMeta = {
    app: options.app,
    profiles: [...options.profiles],
    ref: options.ref ?? null,
    commit: fetched.commit,
    time: new Date(now).toISOString(),
    server: server.href,
    files: hashes,
  };
  files.push({ name: META_FILE, content: `${JSON.stringify(meta, null, 2)}\n` });
  return { files, directories: [...(options.files ? [FILES_DIR] : []), ...(options.templates ? [TEMPLATES_DIR] : [])], meta };
}
