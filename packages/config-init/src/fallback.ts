/**
 * The opt-in fallback of `fetch` (SPEC §7: `--fallback-dir`, `--fallback-max-age`).
 *
 * After every successful publication a copy of the whole set (files and
 * `.config-meta.json`) is published into the fallback directory with the same atomic
 * technique (`..data` swap), files 0600. When config-service stays unreachable until the
 * deadline (exit 69 only), the copy may be published instead, if it is for the same app,
 * profiles and ref, intact (every SHA-256 in its meta matches) and younger than the
 * maximum age.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DATA_LINK, publishFiles, publishPathViolation, sha256Hex, type PublishFile, type PublishResult } from './publish.js';
import type { Options } from './args.js';
import { FILES_DIR, META_FILE, OUTPUT_NAMES, TEMPLATES_DIR, type ConfigMeta } from './set.js';

/** Permission bits of the fallback copy (folders 0700): only config-init's user reads it. */
export const FALLBACK_FILE_MODE = 0o600;

/** Tolerated clock skew (ms) for a meta `time` that lies in the future. */
const FUTURE_SKEW_MS = 60_000;

/** A usable fallback set. */
export interface FallbackSet {
  /** The meta of the set, as published then. */
  meta: ConfigMeta;
  /** Every file, the meta file last (its original bytes). */
  files: PublishFile[];
  /** Top-level folders to publish even when empty. */
  directories: string[];
  /** Age of the set (ms): now − `meta.time`. */
  ageMs: number;
}

/** What the fallback set must match. */
export interface FallbackExpectation {
  /** Application name. */
  app: string;
  /** Profiles, in order. */
  profiles: readonly string[];
  /** Ref asked for (`undefined` = default branch). */
  ref: string | undefined;
  /** File names the set must contain (one per requested format). */
  names: readonly string[];
  /** Whether the set must hold the `files` folder. */
  files: boolean;
  /** Whether the set must hold the `templates` folder (`--templates`); default false. */
  templates?: boolean;
  /** Oldest acceptable set (ms). */
  maxAgeMs: number;
  /** The current time (ms since the epoch). */
  now: number;
}

/** Keeps a copy of a published set in `dir` (atomically, files 0600). */
export function saveFallback(dir: string, files: readonly PublishFile[], directories: readonly string[], now?: () => number): Promise<PublishResult> {
  return publishFiles({ dir, files, directories, mode: FALLBACK_FILE_MODE, ...(now ? { now } : {}) });
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function parseMeta(text: string): ConfigMeta | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'its meta is not JSON';
  }
  if (v === null || typeof v !== 'object') return 'its meta is not an object';
  const m = v as Record<string, unknown>;
  if (typeof m.app !== 'string' || !isStringArray(m.profiles) || (m.ref !== null && typeof m.ref !== 'string') || typeof m.commit !== 'string'
    || typeof m.time !== 'string' || typeof m.server !== 'string' || m.files === null || typeof m.files !== 'object') {
    return 'its meta lacks app, profiles, ref, commit, time, server or files';
  }
  const files = m.files as Record<string, unknown>;
  for (const h of Object.values(files)) if (typeof h !== 'string') return 'its meta has a non-string hash';
  return { app: m.app, profiles: m.profiles, ref: m.ref, commit: m.commit, time: m.time, server: m.server, files: files as Record<string, string> };
}

/**
 * What a set on disk must match to stand for the run `options` describe (the application,
 * profiles, ref, formats, files and templates asked for).
 * @param maxAgeMs - oldest set accepted, ms; @param now - the clock, ms since the epoch.
 */
export function expectationOf(options: Options, maxAgeMs: number, now: number): FallbackExpectation {
  return {
    app: options.app,
    profiles: options.profiles,
    ref: options.ref,
    names: options.formats.map((f) => OUTPUT_NAMES[f]),
    files: options.files,
    templates: options.templates,
    maxAgeMs,
    now,
  };
}

/**
 * Reads the fallback set in `dir` and checks it against `want`.
 *
 * @returns the set, or a reason (one line, no values) why it cannot be used.
 */
export async function loadFallback(dir: string, want: FallbackExpectation): Promise<FallbackSet | string> {
  const data = join(dir, DATA_LINK);
  let metaBytes: Buffer;
  try {
    metaBytes = await readFile(join(data, META_FILE));
  } catch (err) {
    const code = err !== null && typeof err === 'object' && 'code' in err ? String(err.code) : 'error';
    return `no fallback set in '${dir}' (${code})`;
  }
  const meta = parseMeta(metaBytes.toString('utf8'));
  if (typeof meta === 'string') return `the fallback set in '${dir}' is unusable: ${meta}`;
  if (meta.app !== want.app) return `the fallback set is for app '${meta.app}', not '${want.app}'`;
  if (meta.profiles.join(',') !== want.profiles.join(',')) return `the fallback set is for profiles '${meta.profiles.join(',')}', not '${want.profiles.join(',')}'`;
  if (meta.ref !== (want.ref ?? null)) return `the fallback set is for ref '${meta.ref ?? '(default)'}', not '${want.ref ?? '(default)'}'`;
  const time = Date.parse(meta.time);
  if (Number.isNaN(time)) return 'the fallback set has no valid time';
  const ageMs = want.now - time;
  if (ageMs < -FUTURE_SKEW_MS) return `the fallback set's time ${meta.time} lies in the future`;
  if (ageMs > want.maxAgeMs) return `the fallback set from ${meta.time} is ${ageMs} ms old (more than --fallback-max-age ${want.maxAgeMs} ms)`;
  for (const name of want.names) if (!(name in meta.files)) return `the fallback set has no ${name}`;
  const files: PublishFile[] = [];
  for (const [name, hash] of Object.entries(meta.files)) {
    const why = publishPathViolation(name);
    if (why || name === META_FILE) return `the fallback set lists a bad file name '${name}'`;
    let content: Buffer;
    try {
      content = await readFile(join(data, ...name.split('/')));
    } catch {
      return `the fallback set misses ${name}`;
    }
    if (sha256Hex(content) !== hash) return `the fallback set is damaged: ${name} does not match its SHA-256`;
    files.push({ name, content });
  }
  const directories: string[] = [];
  if (want.files) {
    const st = await lstat(join(data, FILES_DIR)).catch(() => null);
    if (!st?.isDirectory()) return `the fallback set has no ${FILES_DIR}/ folder (it was saved without --files)`;
    directories.push(FILES_DIR);
  }
  if (want.templates === true) {
    const st = await lstat(join(data, TEMPLATES_DIR)).catch(() => null);
    if (!st?.isDirectory()) return `the fallback set has no ${TEMPLATES_DIR}/ folder (it was saved without --templates)`;
    directories.push(TEMPLATES_DIR);
  }
  files.push({ name: META_FILE, content: metaBytes });
  return { meta, files, directories, ageMs: Math.max(0, ageMs) };
}
