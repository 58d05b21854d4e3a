/**
 * `config-service encrypt rebind` (docs/secrets.md, "Binding"): migrates unbound
 * (version-1) `{cipher}` values of a configuration repository's working tree to values
 * bound to the application their document belongs to (version 2), in place.
 *
 * For every document of the layout under the paths given, each `{cipher}` value (found
 * by parsing the document with the service's own parser) that is unbound and encrypted
 * with the key given is decrypted with its private key and encrypted again with the same
 * key, bound to the document's binding (`app:<app>` for an application's documents,
 * `shared` for the root `application*` documents; `config/secrets-step.ts`
 * `documentBinding`). Only the value's text is replaced; every other byte of the file
 * stays as it was (comments, order, quoting, line endings, encoding): the file is handled
 * as ISO-8859-1, so each byte maps to one character and back.
 *
 * Nothing else is rewritten: a value already bound (to the right place or not), a value of
 * another key, or a value whose text cannot be found as written in the file is reported.
 * Reports name files, lines and keys, never a value.
 */
import { lstat, readFile, readdir, realpath, rename, stat, writeFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Layout } from '../config/app-config.js';
import { parseDocument } from '../config/parse.js';
import { formatPropertyName, type NameToken } from '../config/paths.js';
import { documentBinding } from '../config/secrets-step.js';
import type { TreeValue } from '../config/types.js';
import { isNumberLiteral } from '../config/values.js';
import { CFG_ERR_INVALID_REQUEST } from '../errors.js';
import { describeBinding, encryptValue, inspectValue, isCipherText, KEY_ID_PATTERN, openValue, type SecretBinding } from './envelope.js';
import { createKeyring } from './keyring.js';

/** Options of {@link rebindSecrets}. */
export interface RebindOptions {
  /** The repository's working tree (its root). */
  readonly root: string;
  /** Files or folders to migrate, absolute or relative to `root`; each inside `root`. Default: the whole tree. */
  readonly paths?: readonly string[];
  /** Repository layout (SPEC §2). Default `folders`. */
  readonly layout?: Layout;
  /**
   * `spring` layout only: the application the documents belong to, for names that do not
   * tell it (`my-app-dev.yml`: `my-app` with profile `dev`, or `my` with `app-dev`?).
   */
  readonly app?: string;
  /** The id of the key whose values are migrated (`secrets.keys[].id`). */
  readonly keyId: string;
  /** Its RSA private key (decrypts; its public half encrypts again). */
  readonly privateKey: KeyObject;
  /** Report what would change without writing. */
  readonly dryRun?: boolean;
}

/** One value, by file, line and key. */
export interface RebindEntry {
  /** Path from the repository root, `/`-separated. */
  readonly file: string;
  /** 1-based line of the key. */
  readonly line: number;
  /** Flattened key (`db.password`, `hosts[1]`). */
  readonly key: string;
  /** What happened: `rebound`, `bound` (already bound here), `other-key` (skipped), `error`. */
  readonly outcome: 'rebound' | 'bound' | 'other-key' | 'error';
  /** The key id of the value, when it could be read. */
  readonly keyId?: string;
  /** The binding written (`rebound`) or found (`bound`). */
  readonly binding?: SecretBinding;
  /** For `error`: why, naming no value. */
  readonly message?: string;
}

/** The result of {@link rebindSecrets}. */
export interface RebindReport {
  /** Every `{cipher}` value met, by file (sorted) then line. */
  readonly entries: readonly RebindEntry[];
  /** Problems with a whole file (not parsable, not a document, ambiguous application). */
  readonly fileErrors: ReadonlyArray<{ readonly file: string; readonly message: string }>;
  /** Documents read. */
  readonly documents: number;
  /** Documents rewritten (or that would be, with `dryRun`). */
  readonly changedDocuments: number;
}

const DOCUMENT_EXT = /\.(?:yml|yaml|json|properties)$/;
const SHARED_NAME = /^application(?:-[^/]*)?\.(?:yml|yaml|json|properties)$/;
const APP_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
/** A `{cipher}` text as it can stand in a file (ASCII only; base64 needs no escaping in any format). */
const CIPHER_TOKEN = /\{cipher\}(?:\{key:[A-Za-z0-9._-]{1,64}\})?(?:\{(?:shared|app:[a-z0-9._-]{1,63})\})?[A-Za-z0-9+/]*={0,2}/g;

function usage(message: string): Error {
  return new CFG_ERR_INVALID_REQUEST(message);
}

/** Every regular file below `dir` (relative to `root`, `/`-separated), never through a symlink; `.git` left out. */
async function walkFiles(root: string, dir: string, out: string[]): Promise<void> {
  const full = path.join(root, ...dir.split('/').filter((s) => s !== ''));
  for (const d of (await readdir(full, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (d.name === '.git') continue;
    const rel = dir === '' ? d.name : `${dir}/${d.name}`;
    if (d.isDirectory()) await walkFiles(root, rel, out);
    else if (d.isFile()) out.push(rel);
  }
}

/**
 * The binding of a document of the layout, or why the file is not one.
 * `rootNames`: the file names at the repository root (spring layout: which applications exist).
 */
function bindingOfFile(rel: string, layout: Layout, forcedApp: string | undefined, rootNames: ReadonlySet<string>): { binding: SecretBinding } | { notDocument: string } {
  const parts = rel.split('/');
  const name = parts[parts.length - 1] as string;
  if (!DOCUMENT_EXT.test(name)) return { notDocument: 'not a .yml, .yaml, .json or .properties document' };
  if (parts.length === 1 && SHARED_NAME.test(name)) return { binding: 'shared' };
  if (layout === 'folders') {
    const app = parts[0] as string;
    if (parts.length === 2 && SHARED_NAME.test(name) && APP_NAME.test(app) && !app.includes('..')) return { binding: documentBinding(app, rel) };
    return { notDocument: "not a document of the 'folders' layout (application*.<ext> at the root or in an application's folder)" };
  }
  if (parts.length !== 1) return { notDocument: "not a document of the 'spring' layout (documents are at the repository root)" };
  if (name.endsWith('.schema.json')) return { notDocument: 'a schema, not a document' };
  const base = name.replace(DOCUMENT_EXT, '');
  if (forcedApp !== undefined) {
    if (base !== forcedApp && !base.startsWith(`${forcedApp}-`)) return { notDocument: `not a document of application '${forcedApp}'` };
    return { binding: documentBinding(forcedApp, rel) };
  }
  // `<app>.<ext>` or `<app>-<profile>.<ext>`: the application is the longest prefix (at a `-`)
  // that has a document of its own at the root; a name without `-` is its own application.
  const dashes = [...base.matchAll(/-/g)].map((m) => m.index);
  const candidates = [base, ...dashes.reverse().map((i) => base.slice(0, i))];
  const hasOwn = (app: string): boolean => [...rootNames].some((n) => DOCUMENT_EXT.test(n) && n.replace(DOCUMENT_EXT, '') === app);
  const app = candidates.find(hasOwn) ?? (dashes.length === 0 ? base : undefined);
  if (app === undefined || !APP_NAME.test(app)) {
    return { notDocument: `cannot tell the application of ${rel}; give it with --app` };
  }
  return { binding: documentBinding(app, rel) };
}

/** Every `{cipher}` string of a parsed document: flattened key, line, text. */
function cipherValues(rel: string, bytes: Uint8Array): Array<{ key: string; line: number; text: string }> {
  const out: Array<{ key: string; line: number; text: string }> = [];
  const visit = (tokens: NameToken[], value: TreeValue, line: number): void => {
    if (typeof value === 'string') {
      if (isCipherText(value)) out.push({ key: formatPropertyName(tokens), line, text: value });
    } else if (Array.isArray(value)) {
      (value as readonly TreeValue[]).forEach((v, i) => visit([...tokens, { index: i }], v, line));
    } else if (typeof value === 'object' && value !== null && !isNumberLiteral(value)) {
      const map = value as { readonly [k: string]: TreeValue };
      for (const k of Object.keys(map)) visit([...tokens, k], map[k] as TreeValue, line);
    }
  };
  for (const source of parseDocument({ path: rel, bytes }).sources) {
    for (const e of source.source.entries) if (e.value !== null) visit([...e.path], e.value as TreeValue, e.origin.line ?? 1);
  }
  return out;
}

/** Writes `bytes` over `file` through a temporary file in the same folder, keeping the mode. */
async function replaceFile(file: string, bytes: Buffer): Promise<void> {
  const mode = (await stat(file)).mode & 0o7777;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.rebind-${process.pid}`);
  try {
    await writeFile(tmp, bytes, { mode, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Rebinds the unbound values of key `keyId` under `paths` (see this module's header).
 *
 * @returns every `{cipher}` value met and what happened to it; problems are entries and
 *   file errors, never thrown.
 * @throws CFG_ERR_INVALID_REQUEST (400) when a path is outside `root` or does not exist,
 *   a file named explicitly is not a document of the layout, `app` is given for the
 *   `folders` layout or is not a valid name, or the key is not an RSA private key.
 * @throws Error (errno) when a file cannot be read or written.
 */
export async function rebindSecrets(options: RebindOptions): Promise<RebindReport> {
  const layout = options.layout ?? 'folders';
  if (options.app !== undefined) {
    if (layout !== 'spring') throw usage("--app is only for the 'spring' layout; in the 'folders' layout the folder names the application");
    if (!APP_NAME.test(options.app) || options.app.includes('..')) throw usage('--app must be a valid application name');
  }
  if (!KEY_ID_PATTERN.test(options.keyId)) throw usage('the key id must match ^[A-Za-z0-9._-]{1,64}$');
  if (options.privateKey.type !== 'private') throw usage('the key must be a private key');
  const keyring = createKeyring([{ id: options.keyId, privateKey: options.privateKey }]);
  const encryptionKey = { id: options.keyId, publicKey: createPublicKey(options.privateKey) };
  const root = await realpath(options.root);
  const rootNames = new Set((await readdir(root, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name));

  // The files to look at: named files must be documents; folders are walked and non-documents left out.
  const files = new Map<string, { binding: SecretBinding } | { notDocument: string }>();
  const fileErrors: Array<{ file: string; message: string }> = [];
  for (const given of options.paths?.length ? options.paths : ['.']) {
    const abs = path.resolve(root, given);
    const rel = path.relative(root, abs).split(path.sep).join('/');
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw usage(`${given} is outside the repository ${options.root}`);
    let info;
    try {
      info = await lstat(abs);
    } catch {
      throw usage(`${given} does not exist`);
    }
    if (info.isSymbolicLink()) throw usage(`${given} is a symbolic link; symbolic links are never followed`);
    if (info.isDirectory()) {
      const found: string[] = [];
      await walkFiles(root, rel === '' ? '' : rel, found);
      for (const f of found) {
        const b = bindingOfFile(f, layout, options.app, rootNames);
        if ('binding' in b) files.set(f, b);
        else if (b.notDocument.startsWith('cannot tell')) fileErrors.push({ file: f, message: b.notDocument });
      }
    } else {
      const b = bindingOfFile(rel, layout, options.app, rootNames);
      if ('notDocument' in b) throw usage(`${rel}: ${b.notDocument}`);
      files.set(rel, b);
    }
  }

  const entries: RebindEntry[] = [];
  let documents = 0;
  let changedDocuments = 0;
  for (const rel of [...files.keys()].sort()) {
    const { binding } = files.get(rel) as { binding: SecretBinding };
    const full = path.join(root, ...rel.split('/'));
    const bytes = await readFile(full);
    documents++;
    let values;
    try {
      values = cipherValues(rel, bytes);
    } catch (err) {
      fileErrors.push({ file: rel, message: `cannot be parsed: ${(err as Error).message}` });
      continue;
    }
    const replacements = new Map<string, string>();
    const pending: Array<{ entry: RebindEntry; token: string }> = [];
    for (const v of values) {
      const at = { key: v.key, document: rel, line: v.line };
      const base = { file: rel, line: v.line, key: v.key };
      let info;
      try {
        info = inspectValue(v.text, at);
      } catch (err) {
        entries.push({ ...base, outcome: 'error', message: (err as Error).message });
        continue;
      }
      if (info.binding !== undefined) {
        if (info.binding === binding) entries.push({ ...base, outcome: 'bound', keyId: info.keyId, binding });
        else entries.push({ ...base, outcome: 'error', keyId: info.keyId, message: `bound to another application (the value is bound to ${describeBinding(info.binding)}); not changed` });
        continue;
      }
      if (info.keyId !== options.keyId) {
        entries.push({ ...base, outcome: 'other-key', keyId: info.keyId });
        continue;
      }
      const token = v.text.trim();
      let next = replacements.get(token);
      if (next === undefined) {
        try {
          next = encryptValue(openValue(v.text, keyring, at).plaintext, encryptionKey, binding);
        } catch (err) {
          entries.push({ ...base, outcome: 'error', keyId: info.keyId, message: (err as Error).message });
          continue;
        }
        replacements.set(token, next);
      }
      pending.push({ entry: { ...base, outcome: 'rebound', keyId: info.keyId, binding }, token });
    }
    if (replacements.size === 0) continue;
    // Latin-1 maps every byte to one character and back, so untouched bytes stay exact.
    const text = bytes.toString('latin1');
    const seen = new Set<string>();
    const rewritten = text.replace(CIPHER_TOKEN, (token) => {
      const next = replacements.get(token);
      if (next === undefined) return token;
      seen.add(token);
      return next;
    });
    for (const p of pending) {
      if (seen.has(p.token)) entries.push(p.entry);
      else {
        const { binding: _b, ...rest } = p.entry;
        entries.push({ ...rest, outcome: 'error', message: 'the value is not written as one unbroken {cipher} text in the file (escaped or folded); not changed' });
      }
    }
    if (seen.size === 0) continue;
    changedDocuments++;
    if (!options.dryRun) await replaceFile(full, Buffer.from(rewritten, 'latin1'));
  }
  entries.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
  return { entries, fileErrors, documents, changedDocuments };
}

/**
 * The report as text: one line per value (`<file>:<line>: <key>: <what happened>`), file
 * errors, and a summary line. Names files, lines, keys and key ids, never a value.
 */
export function formatRebindReport(report: RebindReport, dryRun = false): string {
  let out = '';
  const verb = dryRun ? 'would be rebound' : 'rebound';
  for (const e of report.entries) {
    const where = `${e.file}:${e.line}: ${e.key}`;
    if (e.outcome === 'rebound') out += `${where}: ${verb} to ${describeBinding(e.binding as SecretBinding)} (key ${e.keyId})\n`;
    else if (e.outcome === 'bound') out += `${where}: already bound to ${describeBinding(e.binding as SecretBinding)} (key ${e.keyId})\n`;
    else if (e.outcome === 'other-key') out += `${where}: skipped: encrypted with key '${e.keyId}' (run again with that key)\n`;
    else out += `${where}: error: ${e.message}\n`;
  }
  for (const f of report.fileErrors) out += `${f.file}: error: ${f.message}\n`;
  const count = (o: RebindEntry['outcome']): number => report.entries.filter((e) => e.outcome === o).length;
  const errors = count('error') + report.fileErrors.length;
  const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  out += `${plural(count('rebound'), 'value')} ${verb} in ${plural(report.changedDocuments, 'document')}; ${count('bound')} already bound; ${count('other-key')} skipped (other key); ${plural(errors, 'error')}; checked ${plural(report.documents, 'document')}\n`;
  return out;
}
