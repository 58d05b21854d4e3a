/**
 * Builds a Dockerfile's output without a container engine, for CI (no Docker daemon runs
 * here): the `build` stage's instructions are carried out in a temporary folder standing
 * for the container's `/` (COPY from the build context filtered by `.dockerignore`,
 * WORKDIR, ENV, and every RUN as written, with `/bin/sh -c` as Docker runs the shell
 * form), then the final stage's `COPY --from=<build stage>` lines assemble the final
 * image's files in another folder. Programs of the final image are then run from there.
 *
 * What this cannot check, and refuses rather than skips: a RUN in the final stage (it
 * would run against the base image), instructions it does not know. Stages other than
 * the build stage and the final stage (e.g. a `toolchain` stage that installs OS
 * packages) are not run: their packages are expected on the machine.
 */
import { spawn } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, copyFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

// CommonJS `module.exports = ignore` whose typings say `export default`: load it as Node does.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;

/** One instruction: keyword (upper case), its flags (`--from=build`) and the rest. */
export interface DockerInstruction {
  keyword: string;
  flags: Record<string, string>;
  args: string;
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface DockerStage {
  /** Base image or stage name. */
  from: string;
  /** Name after `AS`, if any. */
  name?: string;
  instructions: DockerInstruction[];
}

/** Splits a Dockerfile into stages and instructions (comments, continuations, flags). */
export function parseDockerfile(text: string): DockerStage[] {
  const stages: DockerStage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const startLine = i + 1;
    let logical = lines[i]!;
    if (/^\s*(#.*)?$/.test(logical)) continue;
    while (/\\\s*$/.test(logical)) {
      logical = logical.replace(/\\\s*$/, '');
      i += 1;
      // Comment lines inside a continuation are dropped, as Docker does.
      while (i < lines.length && /^\s*#/.test(lines[i]!)) i += 1;
      // Docker removes the backslash and the newline: the lines are joined as they are.
      logical += lines[i] ?? '';
    }
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(logical);
    if (!m) throw new Error(`Dockerfile line ${startLine}: cannot parse '${logical}'`);
    const keyword = m[1]!.toUpperCase();
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)=(\S+)\s+/.exec(rest); f; f = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
      flags[f[1]!] = f[2]!;
      rest = rest.slice(f[0].length);
    }
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!from) throw new Error(`Dockerfile line ${startLine}: bad FROM '${rest}'`);
      stages.push({ from: from[1]!, ...(from[2] && { name: from[2] }), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${startLine}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, flags, args: rest, line: startLine });
  }
  return stages;
}

/** `["a", "b"]` (exec form) → the array; anything else → undefined (shell form). */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new Error(`bad exec form ${args}`);
  return parsed as string[];
}

/** `ENV A=1 B="x y"` or `ENV A 1` → pairs. */
function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!args.includes('=')) {
    const [k, ...v] = args.split(/\s+/);
    out[k!] = v.join(' ');
    return out;
  }
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return out;
}

/** `COPY a b dest` → sources and destination (exec form allowed). */
function copyArgs(args: string): { sources: string[]; dest: string } {
  const parts = execForm(args) ?? args.split(/\s+/);
  if (parts.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/** Runs `/bin/sh -c <script>` (or the exec form) in `cwd`; rejects with its output on a non-zero exit. */
function run(command: string[], cwd: string, env: NodeJS.ProcessEnv, log: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      log.push(out);
      if (code === 0) resolve();
      else reject(new Error(`RUN ${JSON.stringify(command.at(-1))} exited ${code}:\n${out}`));
    });
  });
}

/** Copies `rel` (file, folder or symlink) of `context` to `dest`, leaving out what `.dockerignore` names. */
function copyFromContext(context: string, rel: string, dest: string, ignored: (p: string) => boolean): void {
  const src = path.join(context, rel);
  const st = lstatSync(src);
  if (st.isSymbolicLink()) {
    mkdirSync(path.dirname(dest), { recursive: true });
    symlinkSync(readlinkSync(src), dest);
  } else if (st.isDirectory()) {
    mkdirSync(dest, { recursive: true });
    for (const name of readdirSync(src)) {
      const childRel = rel === '.' ? name : `${rel}/${name}`;
      if (!ignored(childRel)) copyFromContext(context, childRel, path.join(dest, name), ignored);
    }
  } else {
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(src, dest);
  }
}

/** The final image's files and run settings, as the Dockerfile builds them. */
export interface BuiltImage {
  /** Host folder standing for the final image's `/`. */
  root: string;
  /** The build stage's `/` (sources, node_modules, build output). */
  buildRoot: string;
  /** ENV of the final stage. */
  env: Record<string, string>;
  user?: string;
  entrypoint: string[];
  cmd: string[];
  /** Output of every RUN, in order. */
  log: string[];
  /** Maps an absolute path inside the final image to the host. */
  hostPath(p: string): string;
  /** Removes both folders (the build stage holds node_modules and a 100 MB executable). */
  remove(): void;
}

/**
 * Builds `dockerfile` with `context` as the build context: runs the stage named
 * `buildStage` and assembles the last stage's files. `env` is the environment the RUN
 * lines start from (the base image's: PATH, HOME), before the Dockerfile's ENV lines.
 * @throws on a failing RUN (with its output), an unknown instruction, a RUN in the final stage.
 */
export async function buildDockerfile(dockerfile: string, context: string, opts: { buildStage?: string; env: NodeJS.ProcessEnv }): Promise<BuiltImage> {
  const stages = parseDockerfile(readFileSync(dockerfile, 'utf8'));
  const buildName = opts.buildStage ?? 'build';
  const build = stages.find((s) => s.name === buildName);
  const final = stages.at(-1)!;
  if (!build || build === final) throw new Error(`${dockerfile}: no stage '${buildName}' before the final stage`);
  const dockerignore = path.join(context, '.dockerignore');
  const rules = existsSync(dockerignore) ? readFileSync(dockerignore, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')) : [];
  const ig = ignore().add(rules);
  const ignored = (p: string) => ig.ignores(p);

  const tmp = mkdtempSync(path.join(os.tmpdir(), `image-${path.basename(dockerfile).replace(/\W/g, '-')}-`));
  const buildRoot = path.join(tmp, 'build');
  const root = path.join(tmp, 'final');
  mkdirSync(buildRoot);
  mkdirSync(root);
  const inBuild = (p: string) => path.join(buildRoot, p);
  const log: string[] = [];

  let workdir = '/';
  const env: NodeJS.ProcessEnv = { ...opts.env };
  for (const ins of build.instructions) {
    const where = `${path.basename(dockerfile)}:${ins.line}`;
    switch (ins.keyword) {
      case 'WORKDIR':
        workdir = path.posix.resolve(workdir, ins.args);
        mkdirSync(inBuild(workdir), { recursive: true });
        break;
      case 'ENV':
        Object.assign(env, parseEnv(ins.args));
        break;
      case 'COPY': {
        if (ins.flags.from) throw new Error(`${where}: COPY --from in the build stage is not supported by this check`);
        const { sources, dest } = copyArgs(ins.args);
        const target = path.posix.resolve(workdir, dest);
        for (const s of sources) {
          const rel = path.posix.normalize(s).replace(/\/$/, '') || '.';
          const st = lstatSync(path.join(context, rel));
          const to = st.isDirectory() || (!dest.endsWith('/') && sources.length === 1) ? target : path.posix.join(target, path.posix.basename(rel));
          copyFromContext(context, rel, inBuild(to), ignored);
        }
        break;
      }
      case 'RUN': {
        const unknown = Object.keys(ins.flags).filter((f) => f !== 'mount');
        if (unknown.length) throw new Error(`${where}: RUN --${unknown[0]} is not supported by this check`);
        const command = execForm(ins.args) ?? ['/bin/sh', '-c', ins.args];
        await run(command, inBuild(workdir), env, log);
        break;
      }
      default:
        throw new Error(`${where}: ${ins.keyword} in the build stage is not supported by this check`);
    }
  }

  const finalEnv: Record<string, string> = {};
  let user: string | undefined;
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  for (const ins of final.instructions) {
    const where = `${path.basename(dockerfile)}:${ins.line}`;
    switch (ins.keyword) {
      case 'COPY': {
        if (ins.flags.from !== buildName) throw new Error(`${where}: the final stage copies only from '${buildName}' in this check`);
        const { sources, dest } = copyArgs(ins.args);
        for (const s of sources) {
          const to = dest.endsWith('/') && !s.endsWith('/') ? path.posix.join(dest, path.posix.basename(s)) : dest;
          cpSync(inBuild(s), path.join(root, to), { recursive: true, verbatimSymlinks: true });
        }
        break;
      }
      case 'ENV':
        Object.assign(finalEnv, parseEnv(ins.args));
        break;
      case 'USER':
        user = ins.args;
        break;
      case 'ENTRYPOINT':
        entrypoint = execForm(ins.args) ?? ['/bin/sh', '-c', ins.args];
        break;
      case 'CMD':
        cmd = execForm(ins.args) ?? ['/bin/sh', '-c', ins.args];
        break;
      case 'WORKDIR':
      case 'EXPOSE':
      case 'LABEL':
        break;
      case 'RUN':
        throw new Error(`${where}: RUN in the final stage: build everything in '${buildName}' (this check cannot run it, and the final stage stays free of build tools)`);
      default:
        throw new Error(`${where}: ${ins.keyword} in the final stage is not supported by this check`);
    }
  }
  return { root, buildRoot, env: finalEnv, ...(user !== undefined && { user }), entrypoint, cmd, log, hostPath: (p) => path.join(root, p), remove: () => rmSync(tmp, { recursive: true, force: true }) };
}

/** The default PATH of Debian-based images, as folders of the final image on the host. */
export function imagePath(image: BuiltImage): string {
  const inImage = image.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return inImage.split(':').map((d) => image.hostPath(d)).join(':');
}
