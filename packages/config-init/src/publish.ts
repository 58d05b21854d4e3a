/**
 * Atomic publication of a set of files, the way the kubelet publishes ConfigMap and
 * Secret volumes (its `AtomicWriter`), SPEC §7 and case 16.
 *
 * Layout inside the output directory:
 *
 * ```
 * ..2025_11_30_12_07_00.123_1a2b3c4d/   one folder per published version (final modes)
 *     application.properties
 *     .config-meta.json
 *     files/logback.xml                 raw files (`--files`), nested folders allowed
 * ..data -> ..2025_11_30_12_07_00.123_1a2b3c4d   swapped atomically with rename(2)
 * application.properties -> ..data/application.properties
 * .config-meta.json      -> ..data/.config-meta.json
 * files                  -> ..data/files
 * ```
 *
 * A reader that opens a visible name resolves `..data` once, so it reads a file of the old
 * version or of the new one, complete (files are fsynced before the swap and never
 * written in place), with its final mode (set before the first byte is written).
 *
 * Group of the published files (Kubernetes `fsGroup` volumes): when the output directory
 * has the setgid bit, everything is created in place under it, so the kernel gives the
 * version folder and its files the directory's group and the folders keep the setgid bit
 * (a `chmod` with a mode that lacks it would clear it, and files created afterwards would
 * fall into the writer's own group, unreadable for the application). A folder or file
 * that still ends up in another group is `chown`ed to the directory's group when the
 * writer may (root, or a member of that group); otherwise the run warns.
 *
 * Only the publication itself can fail a run: once `..data` points at the new version,
 * removing old versions and stale links is best effort and a failure is a warning (the
 * folder of another uid's run cannot be removed when it is not group-writable).
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readlink, rename, rm, stat, symlink, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { PublishError } from './errors.js';

/** Name of the symlink that points at the current version folder. */
export const DATA_LINK = '..data';

/** Version folders this module creates: `..YYYY_MM_DD_HH_MM_SS.mmm_<hex>`. */
const VERSION_RE = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{3}_[0-9a-f]{8}$/;
/** Temporary symlinks this module creates; leftovers of a killed run are removed. */
const TMP_RE = /^\.\.(data|link)_tmp_[0-9a-f]{8}$/;

/** One file to publish. */
export interface PublishFile {
  /**
   * Visible name (no `/`, not `.` or `..`, not starting with `..`), or a relative path
   * `dir/sub/file` whose first segment is the visible name of a folder (see
   * {@link publishPathViolation}).
   */
  readonly name: string;
  /** Exact bytes. */
  readonly content: Buffer | string;
}

/** What {@link publishFiles} needs. */
export interface PublishOptions {
  /** Output directory (created if missing). */
  readonly dir: string;
  /** The complete new set; visible links for names not in it are removed. */
  readonly files: readonly PublishFile[];
  /** Permission bits of every file (e.g. `0o640`); folders get the matching x bits. */
  readonly mode: number;
  /** Top-level folders to publish even when no file lies in them (e.g. an empty `files`). */
  readonly directories?: readonly string[];
  /** Clock for the version folder name (tests). */
  readonly now?: () => number;
}

/** What was published. */
export interface PublishResult {
  /**
   * Non-fatal problems, one line each, for the log: old versions or links that could not
   * be removed, files left outside the output folder's group.
   */
  readonly warnings: readonly string[];
  /** The output folder's group id when it has the setgid bit (the published files are in this group). */
  readonly volumeGid: number | undefined;
  /** Name of the new version folder (target of `..data`). */
  readonly version: string;
  /** File name or path (`files/a/b.xml`) → SHA-256 hex of its content. */
  readonly files: Readonly<Record<string, string>>;
  /** Visible links removed because their name is no longer in the set. */
  readonly removed: readonly string[];
  /** Old versions and temporary entries cleaned up. */
  readonly cleaned: readonly string[];
}

/** SHA-256 hex of some bytes. */
export function sha256Hex(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * Why `name` cannot be a published file name, or `null` if it can.
 * Refused: empty, `/` or NUL, `.`/`..`, a leading `..` (reserved for `..data` and
 * version folders), over 255 bytes.
 */
export function fileNameViolation(name: string): string | null {
  if (name === '') return 'is empty';
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) return "contains '/', '\\' or NUL";
  if (name === '.' || name === '..') return "is '.' or '..'";
  if (name.startsWith('..')) return "starts with '..' (reserved)";
  if (Buffer.byteLength(name) > 255) return 'is longer than 255 bytes';
  return null;
}

/**
 * Why `path` cannot be published, or `null` if it can: its first segment must pass
 * {@link fileNameViolation}; every further segment must be non-empty, not `.` or `..`,
 * without `\` or NUL, at most 255 bytes.
 */
export function publishPathViolation(path: string): string | null {
  const [first = '', ...rest] = path.split('/');
  const why = fileNameViolation(first);
  if (why) return why;
  for (const seg of rest) {
    if (seg === '') return 'has an empty segment';
    if (seg === '.' || seg === '..') return "has a '.' or '..' segment";
    if (seg.includes('\\') || seg.includes('\0')) return "contains '\\' or NUL";
    if (Buffer.byteLength(seg) > 255) return 'has a segment longer than 255 bytes';
  }
  return null;
}

function codeOf(err: unknown): string {
  return err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : String(err);
}

/** Runs an fs step; a failure becomes a {@link PublishError} (exit 73) naming the path. */
async function step<T>(what: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PublishError) throw err;
    throw new PublishError(`cannot ${what} '${path}': ${codeOf(err)}`, { cause: err });
  }
}

function randomHex(): string {
  return randomBytes(4).toString('hex');
}

function versionName(now: number): string {
  const d = new Date(now);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const ts = `${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
  return `..${ts}_${randomHex()}`;
}

/**
 * Folder mode for a file mode: add x wherever r is set, and the owner always has rwx
 * (0640 → 0750, 0440 → 0750), so a non-root writer can fill the folder and later remove
 * it when a newer version replaces it.
 */
export function dirModeFor(fileMode: number): number {
  return (fileMode | ((fileMode & 0o444) >> 2) | 0o700) & 0o777;
}

/** The setgid bit of a directory: entries created in it get its group (and folders the bit). */
const S_ISGID = 0o2000;

/**
 * The group every created entry must have: the output directory's, when it is setgid.
 * Records at most one warning per path kind when an entry cannot be put in that group.
 */
interface GroupPolicy {
  /** Group id of the setgid output directory, or `undefined` (no setgid: nothing to keep). */
  readonly gid: number | undefined;
  /** Warnings collected during the run. */
  readonly warnings: string[];
}

/**
 * Puts an entry this run created into `policy.gid` when it is not there (a folder that
 * lost its setgid bit, or a writer outside the group): `fchown(-1, gid)`, which works for
 * root and for members of the group; otherwise a warning.
 */
async function keepGroup(fh: FileHandle, path: string, policy: GroupPolicy): Promise<void> {
  if (policy.gid === undefined) return;
  const st = await step('inspect', path, () => fh.stat());
  if (st.gid === policy.gid) return;
  try {
    await fh.chown(-1, policy.gid);
  } catch (err) {
    const w = `'${path}' is in group ${st.gid}, not in the output folder's group ${policy.gid} (chown: ${codeOf(err)}): a reader that relies on that group (Kubernetes fsGroup) cannot read it; run config-init with group ${policy.gid} among its groups (the pod's fsGroup does this)`;
    if (!policy.warnings.some((x) => x.includes('not in the output folder'))) policy.warnings.push(w);
  }
}

/**
 * Creates folder `path` with mode `dmode` in place, keeping the setgid bit it inherits
 * from a setgid parent (the umask is defeated by `fchmod`, which is only called when the
 * mode differs, and then with the setgid bit included).
 */
async function makeFolder(path: string, dmode: number, policy: GroupPolicy): Promise<void> {
  await step('create directory', path, () => mkdir(path, { mode: dmode }));
  await fixFolder(path, dmode, policy);
}

/** Gives a folder this run created its group and its exact mode (setgid kept). */
async function fixFolder(path: string, dmode: number, policy: GroupPolicy): Promise<void> {
  const fh = await step('open directory', path, () => open(path, 'r'));
  try {
    const want = dmode | (policy.gid !== undefined ? S_ISGID : 0);
    await keepGroup(fh, path, policy);
    const st = await step('inspect', path, () => fh.stat());
    if ((st.mode & 0o7777) !== want) await step('chmod', path, () => fh.chmod(want));
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Creates `path` exclusively with `mode` (umask defeated by fchmod), writes, fsyncs. */
async function writeDurable(path: string, content: Buffer | string, mode: number, policy: GroupPolicy): Promise<void> {
  const fh = await step('create', path, () => open(path, 'wx', mode));
  try {
    await keepGroup(fh, path, policy);
    // open(2) applies the umask; fchmod sets the exact mode before any byte is written.
    await step('chmod', path, () => fh.chmod(mode));
    await step('write', path, () => fh.writeFile(content));
    await step('fsync', path, () => fh.sync());
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** fsyncs a directory so renames and creations in it survive a crash. */
async function fsyncDir(path: string): Promise<void> {
  const fh = await step('open directory', path, () => open(path, 'r'));
  try {
    await step('fsync directory', path, () => fh.sync());
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function lstatOrNull(path: string): Promise<import('node:fs').Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return null;
    throw new PublishError(`cannot inspect '${path}': ${codeOf(err)}`, { cause: err });
  }
}

async function readlinkOrNull(path: string): Promise<string | null> {
  try {
    return await readlink(path);
  } catch {
    return null;
  }
}

/** Atomically makes `dir/name` a symlink to `target` (temp symlink + rename). */
async function replaceWithSymlink(dir: string, name: string, target: string, tmpPrefix: 'data' | 'link'): Promise<void> {
  const tmp = join(dir, `..${tmpPrefix}_tmp_${randomHex()}`);
  await step('create symlink', tmp, () => symlink(target, tmp));
  try {
    await step('rename symlink onto', join(dir, name), () => rename(tmp, join(dir, name)));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Publishes `files` into `dir` atomically: all of the new set becomes visible at one
 * instant (the `..data` rename), or — on any failure before that — nothing changes.
 *
 * Steps: preflight (names, no directory in the way) → new version folder with final modes,
 * every file fsynced, folder fsynced → links for brand-new names (dangling until the swap)
 * → `..data` swapped by rename → other visible names made links through `..data` (temp
 * link + rename, replacing regular files) → links of names no longer in the set removed
 * → output dir fsynced → old versions and leftover temporaries removed. What cannot be
 * removed after the swap is returned in `warnings`, never thrown.
 *
 * One writer per directory at a time (an init container runs once per pod start).
 *
 * @throws {@link PublishError} (exit 73) naming the path that could not be written, only
 *   for a failure up to and including the swap and the visible links.
 */
export async function publishFiles(opts: PublishOptions): Promise<PublishResult> {
  const { dir, files, mode } = opts;
  const paths = new Set<string>();
  // Visible names: top-level files and top-level folders (first segment of a path).
  const names = new Set<string>();
  const folders = new Set<string>();
  for (const d of opts.directories ?? []) {
    const why = fileNameViolation(d);
    if (why) throw new PublishError(`refusing to publish folder name '${d}': it ${why}`);
    folders.add(d);
    names.add(d);
  }
  for (const f of files) {
    const why = publishPathViolation(f.name);
    if (why) throw new PublishError(`refusing to publish file name '${f.name}': it ${why}`);
    if (paths.has(f.name)) throw new PublishError(`refusing to publish: file name '${f.name}' appears twice`);
    paths.add(f.name);
    const top = f.name.split('/')[0] ?? f.name;
    if (top !== f.name) folders.add(top);
    names.add(top);
  }
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (i < parts.length ? paths.has(prefix) : folders.has(prefix)) {
        throw new PublishError(`refusing to publish: '${prefix}' would be both a file and a folder`);
      }
    }
  }

  await step('create directory', dir, () => mkdir(dir, { recursive: true }));
  const dirStat = await step('inspect', dir, () => stat(dir));
  const policy: GroupPolicy = { gid: (dirStat.mode & S_ISGID) !== 0 ? dirStat.gid : undefined, warnings: [] };

  // Preflight: anything that would make the swap or a link fail must fail now, before
  // the old set is touched.
  const dataStat = await lstatOrNull(join(dir, DATA_LINK));
  if (dataStat && !dataStat.isSymbolicLink()) throw new PublishError(`cannot publish: '${join(dir, DATA_LINK)}' exists and is not a symlink`);
  const before = new Map<string, import('node:fs').Stats | null>();
  for (const name of names) {
    const st = await lstatOrNull(join(dir, name));
    if (st?.isDirectory()) throw new PublishError(`cannot publish: '${join(dir, name)}' is a directory`);
    before.set(name, st);
  }

  const version = versionName((opts.now ?? Date.now)());
  const versionPath = join(dir, version);
  const hashes: Record<string, string> = {};
  const dmode = dirModeFor(mode);
  const createdLinks: string[] = [];
  await step('create directory', versionPath, () => mkdir(versionPath, { mode: dmode }));
  try {
    await fixFolder(versionPath, dmode, policy);
    const made = new Set<string>();
    const makeDir = async (path: string): Promise<void> => {
      if (made.has(path) || path === versionPath) return;
      await makeDir(dirname(path));
      await makeFolder(path, dmode, policy);
      made.add(path);
    };
    for (const d of folders) await makeDir(join(versionPath, d));
    for (const f of files) {
      const target = join(versionPath, ...f.name.split('/'));
      await makeDir(dirname(target));
      await writeDurable(target, f.content, mode, policy);
      hashes[f.name] = sha256Hex(f.content);
    }
    // Deepest first, so each folder's entries are durable before its parent's.
    for (const d of [...made].sort((a, b) => b.length - a.length)) await fsyncDir(d);
    await fsyncDir(versionPath);
    // A brand-new name gets its link now: it dangles (reads ENOENT, like a missing file)
    // until the swap, so it appears at the same instant as the rest of the new set.
    for (const name of names) {
      if (before.get(name) === null) {
        await step('create symlink', join(dir, name), () => symlink(`${DATA_LINK}/${name}`, join(dir, name)));
        createdLinks.push(join(dir, name));
      }
    }
  } catch (err) {
    // Nothing visible changed yet: undo what this run made and report.
    for (const link of createdLinks) await unlink(link).catch(() => undefined);
    await rm(versionPath, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }

  // The one atomic step.
  await replaceWithSymlink(dir, DATA_LINK, version, 'data');

  for (const name of names) {
    const target = `${DATA_LINK}/${name}`;
    const st = await lstatOrNull(join(dir, name));
    if (st?.isSymbolicLink() && (await readlinkOrNull(join(dir, name))) === target) continue;
    await replaceWithSymlink(dir, name, target, 'link');
  }

  // The new set is published. From here on nothing can fail the run: what cannot be
  // removed is reported and left for a later run (or an operator).
  const removed: string[] = [];
  const cleaned: string[] = [];
  const warnings = policy.warnings;
  const entries = await readdir(dir).catch((err: unknown) => {
    warnings.push(`cannot list '${dir}' to remove old versions: ${codeOf(err)}`);
    return [] as string[];
  });
  for (const entry of entries) {
    if (names.has(entry) || entry.startsWith('..')) continue;
    const path = join(dir, entry);
    // Only links this module made (`name -> ..data/name`); other files are left alone.
    if ((await readlinkOrNull(path)) === `${DATA_LINK}/${entry}`) {
      try {
        await unlink(path);
        removed.push(entry);
      } catch (err) {
        warnings.push(`cannot remove the link '${path}' of a name no longer in the set: ${codeOf(err)}`);
      }
    }
  }
  await fsyncDir(dir);

  for (const entry of entries) {
    if (entry === version || entry === DATA_LINK) continue;
    if (VERSION_RE.test(entry) || TMP_RE.test(entry)) {
      const path = join(dir, entry);
      try {
        await rm(path, { recursive: true, force: true });
        cleaned.push(entry);
      } catch (err) {
        warnings.push(await cannotRemove(path, err));
      }
    }
  }
  if (cleaned.length > 0) await fsyncDir(dir).catch(() => undefined);

  return { version, files: hashes, removed, cleaned, warnings, volumeGid: policy.gid };
}

/** A warning for an old version that could not be removed, naming its owner when it is another uid. */
async function cannotRemove(path: string, err: unknown): Promise<string> {
  const st = await lstat(path).catch(() => null);
  const owner = st ? ` (owned by uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})` : '';
  return `cannot remove the old version '${path}': ${codeOf(err)}${owner}; it is no longer used (..data points at the new version); a run as its owner removes it, or remove it by hand`;
}

/**
 * Checks, before anything is fetched, that `--output-dir` may be published into: an
 * existing directory, or a missing one config-init may create. It does not create a
 * folder directly under `/` (`/config` on a laptop or in a container whose volume is not
 * mounted) unless `create` (`--create-output-dir`): in Kubernetes the shared volume is
 * mounted there, so a missing one means the pod spec lacks the mount, and outside a
 * container a new top-level folder is rarely what anyone wants. A missing folder below an
 * existing one other than `/` (`/tmp/run/config`, `./out`) is created by the publication.
 *
 * @param dir - the output directory as given.
 * @param create - `--create-output-dir`.
 * @throws PublishError (exit 73) naming the path and the flag, when it exists but is not a
 *   directory, or when it would be a new folder directly under `/` and `create` is false.
 */
export async function checkOutputDir(dir: string, create: boolean): Promise<void> {
  const abs = resolvePath(dir);
  const st = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new PublishError(`cannot inspect the output directory ${dir}: ${err.code ?? err.message}`, { cause: err });
  });
  if (st !== null) {
    if (!st.isDirectory()) throw new PublishError(`the output directory ${dir} exists and is not a directory`);
    return;
  }
  if (create) return;
  let ancestor = dirname(abs);
  while (ancestor !== dirname(ancestor) && (await stat(ancestor).catch(() => null)) === null) ancestor = dirname(ancestor);
  if (ancestor === dirname(ancestor)) {
    throw new PublishError(
      `the output directory ${dir} does not exist, and config-init does not create a folder directly under ${ancestor} by itself: mount the shared volume there (Kubernetes), choose an existing --output-dir, or pass --create-output-dir (env CONFIG_INIT_CREATE_OUTPUT_DIR)`,
    );
  }
}
