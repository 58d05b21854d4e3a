/**
 * config-init (the built bundle) publishing into a Kubernetes `fsGroup`-style volume: a
 * folder owned by a "volume" group with the setgid bit, written by two different uids that
 * both have that group as a supplementary group (as the kubelet gives every container of
 * a pod with `securityContext.fsGroup`), read by a third uid of that group (the
 * application). Issue 7.
 *
 * The users are numeric ids switched to with `setpriv` (util-linux), so nothing is added
 * to /etc/passwd. Prerequisites: the tests run as root (to switch users) and `setpriv`
 * exists; each test fails naming what is missing, never skips.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_INIT_BIN, makeCerts, makeGitRepo, startInit, startTestService, type ClientCert, type GitTestRepo, type InitIdentity, type TestPki, type TestService } from '#helpers';

/** The volume's group (the pod's fsGroup) and the users: two writers, the application, an outsider. */
const VOLUME_GID = 20_700;
const WRITER_1: InitIdentity = { uid: 10_701, gid: 10_701, groups: [VOLUME_GID] };
const WRITER_2: InitIdentity = { uid: 10_702, gid: 10_702, groups: [VOLUME_GID] };
const APP: InitIdentity = { uid: 10_703, gid: 10_703, groups: [VOLUME_GID] };
const OUTSIDER: InitIdentity = { uid: 10_704, gid: 10_704 };

/** Why these tests cannot run here, or `undefined`. */
function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return `these tests switch users with setpriv and must run as root (uid is ${process.getuid?.()})`;
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'these tests need setpriv (Debian: apt-get install util-linux)';
  return undefined;
}

let pki: TestPki;
let orders: ClientCert;
let repo: GitTestRepo;
let service: TestService;
/** A world-traversable folder holding the bundle, the "secret volume" and the volumes. */
let root: string;
let bin: string;
let tls: { cert: string; key: string; ca: string };

beforeAll(async () => {
  const missing = missingPrerequisite();
  if (missing) throw new Error(missing);
  pki = await makeCerts('init-fsgroup');
  orders = await pki.client('orders');
  repo = await makeGitRepo({ 'orders/application.yml': 'orders:\n  version: 1\n' }, { branch: 'main' });
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' } });
  root = mkdtempSync(path.join(os.tmpdir(), 'init-fsgroup-'));
  chmodSync(root, 0o755);
  // The other users need a copy of the bundle they can read (the checkout may not be).
  bin = path.join(root, 'config-init.mjs');
  copyFileSync(CONFIG_INIT_BIN, bin);
  chmodSync(bin, 0o755);
  // Like a projected secret volume with defaultMode 0440 under the pod's fsGroup.
  const secret = path.join(root, 'tls');
  mkdirSync(secret);
  tls = { cert: path.join(secret, 'tls.crt'), key: path.join(secret, 'tls.key'), ca: path.join(secret, 'ca.crt') };
  copyFileSync(orders.certFile, tls.cert);
  copyFileSync(orders.keyFile, tls.key);
  copyFileSync(pki.caFile, tls.ca);
  for (const f of [secret, tls.cert, tls.key, tls.ca]) chownSync(f, 0, VOLUME_GID);
  chmodSync(secret, 0o2750);
  for (const f of [tls.cert, tls.key, tls.ca]) chmodSync(f, 0o440);
});
afterAll(async () => {
  await service?.close();
  repo?.remove();
});

/** A fresh volume: owned by root and the volume group, setgid, group-writable (`mode`). */
function volume(mode: number): string {
  const dir = path.join(mkdtempSync(path.join(root, 'vol-')), 'config');
  chmodSync(path.dirname(dir), 0o755);
  mkdirSync(dir);
  chownSync(dir, 0, VOLUME_GID);
  chmodSync(dir, mode);
  return dir;
}

function args(out: string): string[] {
  return ['fetch', '--server', service.apiUrl, '--app', 'orders', '--cert', tls.cert, '--key', tls.key, '--ca', tls.ca, '--output-dir', out,
    '--format', 'properties,json', '--termination-log', '', '--deadline', '60000'];
}

/** `cat <file>` as `who`: the file's content, or the error. */
function readAs(who: InitIdentity, file: string): { ok: boolean; text: string } {
  const groups = who.groups && who.groups.length > 0 ? [`--groups=${who.groups.join(',')}`] : ['--clear-groups'];
  const r = spawnSync('setpriv', [`--reuid=${who.uid}`, `--regid=${who.gid}`, ...groups, '--', 'cat', file], { encoding: 'utf8' });
  return { ok: r.status === 0, text: r.status === 0 ? r.stdout : r.stderr };
}

/** Every entry of the version folder `..data` points at, with owner, group and mode. */
function versionEntries(out: string): Array<{ path: string; uid: number; gid: number; mode: string }> {
  const version = readlinkSync(path.join(out, '..data'));
  const list: Array<{ path: string; uid: number; gid: number; mode: string }> = [];
  const walk = (rel: string): void => {
    const st = lstatSync(path.join(out, rel));
    list.push({ path: rel, uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8).padStart(4, '0') });
    if (st.isDirectory()) for (const e of readdirSync(path.join(out, rel)).sort()) walk(path.join(rel, e));
  };
  walk(version);
  return list;
}

describe.each([['2770', 0o2770], ['2775', 0o2775]])('a setgid volume folder (mode %s, group = the volume gid)', (_label, mode) => {
  it('files of two writers end up in the volume group, readable by the application; the second run warns but exits 0', async () => {
    const out = volume(mode);
    const commit1 = repo.commitFiles({ 'orders/application.yml': 'orders:\n  version: 1\n' }, 'version 1');

    // First writer.
    const first = await startInit([...args(out), '--ref', commit1], { bin, as: WRITER_1 }).done;
    expect(first.code, first.stderr).toBe(0);
    const v1 = readlinkSync(path.join(out, '..data'));
    expect(versionEntries(out)).toEqual([
      { path: v1, uid: WRITER_1.uid, gid: VOLUME_GID, mode: '2750' },
      { path: path.join(v1, '.config-meta.json'), uid: WRITER_1.uid, gid: VOLUME_GID, mode: '0640' },
      { path: path.join(v1, 'application.json'), uid: WRITER_1.uid, gid: VOLUME_GID, mode: '0640' },
      { path: path.join(v1, 'application.properties'), uid: WRITER_1.uid, gid: VOLUME_GID, mode: '0640' },
    ]);
    expect(readAs(APP, path.join(out, 'application.properties'))).toEqual({ ok: true, text: 'orders.version=1\n' });
    // Only the group grants access: a uid outside it reads nothing.
    expect(readAs(OUTSIDER, path.join(out, 'application.properties')).ok).toBe(false);

    // Second writer (another uid: a new image, a sidecar), after a change.
    // (The commit is asked for by id: the service may still serve the branch it resolved.)
    const commit2 = repo.commitFiles({ 'orders/application.yml': `orders:\n  version: 2\n  mode: ${mode.toString(8)}\n` }, 'version 2');
    const second = await startInit([...args(out), '--ref', commit2], { bin, as: WRITER_2 }).done;
    expect(second.code, second.stderr).toBe(0);
    const v2 = readlinkSync(path.join(out, '..data'));
    expect(v2).not.toBe(v1);
    expect(versionEntries(out)).toEqual([
      { path: v2, uid: WRITER_2.uid, gid: VOLUME_GID, mode: '2750' },
      { path: path.join(v2, '.config-meta.json'), uid: WRITER_2.uid, gid: VOLUME_GID, mode: '0640' },
      { path: path.join(v2, 'application.json'), uid: WRITER_2.uid, gid: VOLUME_GID, mode: '0640' },
      { path: path.join(v2, 'application.properties'), uid: WRITER_2.uid, gid: VOLUME_GID, mode: '0640' },
    ]);
    expect(readAs(APP, path.join(out, 'application.properties'))).toEqual({ ok: true, text: `orders.mode=${mode.toString(8)}\norders.version=2\n` });
    // The first writer's folder is not group-writable, so the second cannot remove it:
    // a warning, never a failure of a run whose new set is published.
    expect(second.stderr).toContain(
      `WARN  config-init: cannot remove the old version '${path.join(out, v1)}': EACCES (owned by uid ${WRITER_1.uid}, mode 2750); it is no longer used (..data points at the new version); a run as its owner removes it, or remove it by hand`,
    );
    expect(second.stderr).not.toMatch(/exit 73|ERROR/);
    expect(existsSync(path.join(out, v1))).toBe(true);

    // The first writer again: it removes its own old version and warns about the other's.
    const third = await startInit(args(out), { bin, as: WRITER_1 }).done;
    expect(third.code, third.stderr).toBe(0);
    expect(existsSync(path.join(out, v1))).toBe(false);
    expect(third.stderr).toContain(`cannot remove the old version '${path.join(out, v2)}': EACCES (owned by uid ${WRITER_2.uid}, mode 2750)`);
    expect(readAs(APP, path.join(out, 'application.json')).ok).toBe(true);
    // The volume folder itself is untouched.
    expect((statSync(out).mode & 0o7777).toString(8)).toBe(mode.toString(8));
    expect(statSync(out).gid).toBe(VOLUME_GID);
  });
});

describe('running as root', () => {
  it('publishes into the volume group and warns why root is a smell and how to avoid it', async () => {
    const out = volume(0o2770);
    const res = await startInit(args(out), { bin }).done;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/WARN {2}config-init: running as root \(uid 0\): config-init needs no root; .*runAsNonRoot: true and runAsUser/);
    for (const e of versionEntries(out)) expect({ path: e.path, gid: e.gid }).toEqual({ path: e.path, gid: VOLUME_GID });
    expect(readAs(APP, path.join(out, 'application.properties')).ok).toBe(true);
  });
});
