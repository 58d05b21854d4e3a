import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PublishError, exitCodeFor } from '../src/errors.js';
import { checkOutputDir, dirModeFor, fileNameViolation, publishFiles, publishPathViolation } from '../src/publish.js';
import { hiddenEntries, readVisible } from './helpers/visible.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

let dir: string;
let savedUmask: number;

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'config-init-publish-')), 'config');
  savedUmask = process.umask();
});
afterEach(() => {
  process.umask(savedUmask);
});

describe('publishFiles', () => {
  it('publishes through ..data: visible names are symlinks into a versioned folder', async () => {
    const res = await publishFiles({
      dir,
      mode: 0o640,
      files: [
        { name: 'application.properties', content: 'config.version=1\n' },
        { name: '.config-meta.json', content: '{}\n' },
      ],
    });
    const data = await readlink(join(dir, '..data'));
    expect(data).toBe(res.version);
    expect(data).toMatch(/^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{3}_[0-9a-f]{8}$/);
    expect((await lstat(join(dir, data))).isDirectory()).toBe(true);
    const visible = await readVisible(dir);
    expect([...visible.keys()]).toEqual(['.config-meta.json', 'application.properties']);
    for (const [name, f] of visible) {
      expect(f.isSymlink).toBe(true);
      expect(f.target).toBe(`..data/${name}`);
      expect(f.mode).toBe(0o640);
    }
    expect(visible.get('application.properties')?.content.toString()).toBe('config.version=1\n');
    expect(res.files['application.properties']).toBe(sha('config.version=1\n'));
    expect(await hiddenEntries(dir)).toEqual(['..data', res.version].sort());
  });

  it.each([0o022, 0o077, 0o027, 0o000])('writes mode 0640 exactly under umask %o', async (umask) => {
    process.umask(umask);
    const res = await publishFiles({ dir, mode: 0o640, files: [{ name: 'a.properties', content: 'x=1\n' }] });
    expect((await stat(join(dir, 'a.properties'))).mode & 0o777).toBe(0o640);
    expect((await stat(join(dir, res.version))).mode & 0o777).toBe(0o750);
  });

  it.each([0o600, 0o644, 0o440])('honours other modes (%o)', async (mode) => {
    process.umask(0o077);
    await publishFiles({ dir, mode, files: [{ name: 'a', content: 'x' }] });
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(mode);
  });

  describe('in a setgid folder owned by another group (a Kubernetes fsGroup volume)', () => {
    /** A group other than ours: any gid as root, else one of our supplementary groups. */
    function otherGroup(): number {
      if (process.getuid?.() === 0) return 20_000;
      const other = (process.getgroups?.() ?? []).find((g) => g !== process.getegid?.());
      if (other === undefined) throw new Error('this test needs root or a supplementary group to own the test folder');
      return other;
    }

    it.each([0o022, 0o077])('keeps the group and the setgid bit on every folder and file (umask %o)', async (umask) => {
      const gid = otherGroup();
      await mkdir(dir, { recursive: true });
      await chown(dir, process.getuid?.() ?? 0, gid);
      await chmod(dir, 0o2770);
      process.umask(umask);
      const res = await publishFiles({
        dir,
        mode: 0o640,
        files: [
          { name: 'application.properties', content: 'v=1\n' },
          { name: 'files/conf/logback.xml', content: '<x/>' },
        ],
      });
      expect(res.volumeGid).toBe(gid);
      expect(res.warnings).toEqual([]);
      for (const folder of [res.version, `${res.version}/files`, `${res.version}/files/conf`]) {
        const st = await stat(join(dir, folder));
        expect({ folder, gid: st.gid, mode: (st.mode & 0o7777).toString(8) }).toEqual({ folder, gid, mode: '2750' });
      }
      for (const file of ['application.properties', 'files/conf/logback.xml']) {
        const st = await stat(join(dir, file));
        expect({ file, gid: st.gid, mode: (st.mode & 0o7777).toString(8) }).toEqual({ file, gid, mode: '640' });
      }
      // The output folder itself is left as it was.
      expect(((await stat(dir)).mode & 0o7777).toString(8)).toBe('2770');
    });

    it('reports no volume group for a folder without the setgid bit', async () => {
      const res = await publishFiles({ dir, mode: 0o640, files: [{ name: 'a', content: 'x' }] });
      expect(res.volumeGid).toBeUndefined();
      expect(((await stat(join(dir, res.version))).mode & 0o7777).toString(8)).toBe('750');
    });
  });

  it('derives folder modes from file modes', () => {
    expect(dirModeFor(0o640)).toBe(0o750);
    expect(dirModeFor(0o600)).toBe(0o700);
    expect(dirModeFor(0o644)).toBe(0o755);
  });

  it('replaces the old set with the new set, removes names no longer in it and old versions', async () => {
    const first = await publishFiles({
      dir,
      mode: 0o640,
      files: [
        { name: 'application.properties', content: 'v=1\n' },
        { name: 'application.json', content: '{"v":1}\n' },
      ],
    });
    await writeFile(join(dir, 'README.txt'), 'not ours');
    const second = await publishFiles({
      dir,
      mode: 0o640,
      files: [
        { name: 'application.properties', content: 'v=2\n' },
        { name: 'application.yaml', content: 'v: 2\n' },
      ],
    });
    expect(second.removed).toEqual(['application.json']);
    expect(second.cleaned).toEqual([first.version]);
    const visible = await readVisible(dir);
    expect([...visible.keys()]).toEqual(['README.txt', 'application.properties', 'application.yaml']);
    expect(visible.get('application.properties')?.content.toString()).toBe('v=2\n');
    expect(visible.get('README.txt')?.isSymlink).toBe(false);
    expect(await hiddenEntries(dir)).toEqual(['..data', second.version].sort());
  });

  it('replaces a regular file of the same name by a symlink', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'application.properties'), 'legacy=1\n');
    await publishFiles({ dir, mode: 0o640, files: [{ name: 'application.properties', content: 'v=2\n' }] });
    const f = (await readVisible(dir)).get('application.properties');
    expect(f?.isSymlink).toBe(true);
    expect(f?.content.toString()).toBe('v=2\n');
  });

  it('removes leftovers of killed runs but nothing it does not own', async () => {
    await mkdir(join(dir, '..2020_01_01_00_00_00.000_deadbeef'), { recursive: true });
    await writeFile(join(dir, '..2020_01_01_00_00_00.000_deadbeef', 'application.properties'), 'partial');
    await symlink('..2020_01_01_00_00_00.000_deadbeef', join(dir, '..data_tmp_0badf00d'));
    await symlink('..data/x', join(dir, '..link_tmp_12345678'));
    await writeFile(join(dir, '..someone-elses'), 'keep');
    const res = await publishFiles({ dir, mode: 0o640, files: [{ name: 'application.properties', content: 'v=1\n' }] });
    expect([...res.cleaned].sort()).toEqual(['..2020_01_01_00_00_00.000_deadbeef', '..data_tmp_0badf00d', '..link_tmp_12345678']);
    expect(await hiddenEntries(dir)).toEqual(['..data', res.version, '..someone-elses'].sort());
  });

  it.each(['..', '.', '..data', '..hidden', '', 'x\0y', 'a\\b'])('refuses the file name %j and writes nothing', async (name) => {
    await expect(publishFiles({ dir, mode: 0o640, files: [{ name, content: 'x' }] })).rejects.toThrow(PublishError);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
    expect(fileNameViolation(name)).not.toBeNull();
  });

  it.each(['a/', 'a//b', 'a/../b', 'a/./b', '../a', '..data/x', 'a/b\\c', 'a/b\0', `a/${'x'.repeat(256)}`])(
    'refuses the path %j and writes nothing',
    async (name) => {
      await expect(publishFiles({ dir, mode: 0o640, files: [{ name, content: 'x' }] })).rejects.toThrow(PublishError);
      await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
      expect(publishPathViolation(name)).not.toBeNull();
    },
  );

  it('publishes nested paths inside the version folder behind one visible folder link', async () => {
    process.umask(0o077);
    const res = await publishFiles({
      dir,
      mode: 0o640,
      files: [
        { name: 'files/logback.xml', content: '<configuration/>\n' },
        { name: 'files/certs/ca/root.pem', content: 'PEM\n' },
        { name: 'application.properties', content: 'a=1\n' },
      ],
    });
    expect(await readlink(join(dir, 'files'))).toBe('..data/files');
    expect(await readFile(join(dir, 'files', 'logback.xml'), 'utf8')).toBe('<configuration/>\n');
    expect(await readFile(join(dir, 'files', 'certs', 'ca', 'root.pem'), 'utf8')).toBe('PEM\n');
    expect((await stat(join(dir, 'files', 'certs', 'ca', 'root.pem'))).mode & 0o777).toBe(0o640);
    for (const d of ['files', 'files/certs', 'files/certs/ca']) {
      expect((await stat(join(dir, res.version, d))).mode & 0o777, d).toBe(0o750);
    }
    expect(res.files).toEqual({
      'files/logback.xml': sha('<configuration/>\n'),
      'files/certs/ca/root.pem': sha('PEM\n'),
      'application.properties': sha('a=1\n'),
    });
    expect([...(await readVisible(dir)).keys()]).toEqual(['application.properties', 'files', 'files/certs', 'files/certs/ca', 'files/certs/ca/root.pem', 'files/logback.xml']);
  });

  it('publishes an empty folder when asked, and a later set without it removes its link', async () => {
    await publishFiles({ dir, mode: 0o640, directories: ['files'], files: [{ name: 'a', content: '1' }] });
    expect(await readlink(join(dir, 'files'))).toBe('..data/files');
    expect(await readdir(join(dir, 'files'))).toEqual([]);
    const res = await publishFiles({ dir, mode: 0o640, files: [{ name: 'a', content: '2' }] });
    expect(res.removed).toEqual(['files']);
    expect(await readdir(dir)).toEqual(['..data', res.version, 'a'].sort());
  });

  it('refuses a name that would be both a file and a folder', async () => {
    await expect(
      publishFiles({ dir, mode: 0o640, files: [{ name: 'files', content: '1' }, { name: 'files/x', content: '2' }] }),
    ).rejects.toThrow(/both a file and a folder/);
    await expect(
      publishFiles({ dir, mode: 0o640, files: [{ name: 'f/a', content: '1' }, { name: 'f/a/b', content: '2' }] }),
    ).rejects.toThrow(/both a file and a folder/);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
  });

  it('gives folders owner rwx even for read-only file modes', () => {
    expect(dirModeFor(0o440)).toBe(0o750);
    expect(dirModeFor(0o400)).toBe(0o700);
  });

  it('refuses duplicate names', async () => {
    await expect(
      publishFiles({ dir, mode: 0o640, files: [{ name: 'a', content: '1' }, { name: 'a', content: '2' }] }),
    ).rejects.toThrow(/twice/);
  });

  it('fails with 73 before touching the old set when a directory is in the way', async () => {
    const first = await publishFiles({ dir, mode: 0o640, files: [{ name: 'application.properties', content: 'v=1\n' }] });
    await mkdir(join(dir, 'application.yaml'));
    const err = await publishFiles({
      dir,
      mode: 0o640,
      files: [
        { name: 'application.properties', content: 'v=2\n' },
        { name: 'application.yaml', content: 'v: 2\n' },
      ],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect(exitCodeFor(err)).toBe(73);
    expect(await readlink(join(dir, '..data'))).toBe(first.version);
    expect(await readFile(join(dir, 'application.properties'), 'utf8')).toBe('v=1\n');
    expect(await hiddenEntries(dir)).toEqual(['..data', first.version].sort());
  });

  it('fails with 73 when ..data is not a symlink', async () => {
    await mkdir(join(dir, '..data'), { recursive: true });
    await expect(publishFiles({ dir, mode: 0o640, files: [{ name: 'a', content: 'x' }] })).rejects.toThrow(/not a symlink/);
  });

  it('fails with 73 naming the path when the directory cannot be created', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'file'), 'x');
    const err = await publishFiles({ dir: join(dir, 'file', 'sub'), mode: 0o640, files: [{ name: 'a', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as Error).message).toContain(join(dir, 'file', 'sub'));
    expect(exitCodeFor(err)).toBe(73);
  });
});

describe('checkOutputDir', () => {
  it('accepts an existing directory and a missing folder below an existing one other than /', async () => {
    const root = await mkdtemp(join(tmpdir(), 'outdir-'));
    await expect(checkOutputDir(root, false)).resolves.toBeUndefined();
    await expect(checkOutputDir(join(root, 'a', 'b'), false)).resolves.toBeUndefined();
  });

  it('refuses to create a folder directly under / unless asked, naming the flag', async () => {
    const top = `/config-init-test-${process.pid}-${Date.now()}`;
    await expect(checkOutputDir(top, false)).rejects.toMatchObject({
      code: 'CFG_INIT_ERR_CANNOT_WRITE',
      message: `the output directory ${top} does not exist, and config-init does not create a folder directly under / by itself: mount the shared volume there (Kubernetes), choose an existing --output-dir, or pass --create-output-dir (env CONFIG_INIT_CREATE_OUTPUT_DIR)`,
    });
    await expect(checkOutputDir(`${top}/nested/config`, false)).rejects.toMatchObject({ code: 'CFG_INIT_ERR_CANNOT_WRITE' });
    await expect(checkOutputDir(top, true)).resolves.toBeUndefined();
  });

  it('refuses a path that is a file', async () => {
    const root = await mkdtemp(join(tmpdir(), 'outdir-'));
    await writeFile(join(root, 'f'), 'x');
    await expect(checkOutputDir(join(root, 'f'), false)).rejects.toMatchObject({ message: `the output directory ${join(root, 'f')} exists and is not a directory` });
  });
});
