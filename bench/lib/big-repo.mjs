// A large configuration repository for the benchmarks, made with `git fast-import`
// (seconds, not minutes): `apps` applications `app-0000` … in the `folders` layout, each
// with `application.yml`, `application-prod.yml` and `application-staging.yml`, shared
// `application*.yml` at the root, and `commits` commits in all: the first adds everything,
// every later one changes one document of one application (so history grows, the tree
// at the head does not).
//
// A merged `app-0000?profile=prod` in JSON is about 4 KiB (the size issue 9 measured).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/** Git identity and a fixed clock, so two runs make the same repository. */
export const GIT_ENV = {
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@example.org',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@example.org',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

/** Name of application `i`. */
export const appName = (i) => `app-${String(i).padStart(4, '0')}`;

function appDefaults(app, i, rev) {
  const lines = [
    'server:',
    `  port: ${8000 + (i % 1000)}`,
    '  shutdown: graceful',
    '  compression:',
    '    enabled: true',
    '    mime-types: [application/json, text/plain, text/html]',
    'spring:',
    '  application:',
    `    name: ${app}`,
    '  datasource:',
    `    url: jdbc:postgresql://db-${i % 17}.internal:5432/${app.replace('-', '_')}`,
    `    username: ${app.replace('-', '_')}_rw`,
    '    hikari:',
    '      maximum-pool-size: 20',
    '      minimum-idle: 4',
    '      connection-timeout: 3000',
    '  jackson:',
    '    default-property-inclusion: non_null',
    'management:',
    '  endpoints:',
    '    web:',
    '      exposure:',
    '        include: [health, info, prometheus]',
    'logging:',
    '  level:',
    '    root: INFO',
    `    com.example.${app.replace('-', '')}: DEBUG`,
    `    com.example.${app.replace('-', '')}.db: INFO`,
    'features:',
  ];
  for (let f = 0; f < 36; f++) lines.push(`  flag-${String(f).padStart(2, '0')}: ${(i + f + rev) % 3 === 0}`);
  lines.push('clients:');
  for (let c = 0; c < 12; c++) {
    lines.push(`  upstream-${c}:`);
    lines.push(`    base-url: https://upstream-${c}.internal.example.org/api/v${1 + ((i + c) % 3)}`);
    lines.push(`    timeout-ms: ${1000 + 250 * c}`);
    lines.push(`    retries: ${c % 4}`);
  }
  lines.push(`revision: ${rev}`);
  return `${lines.join('\n')}\n`;
}

function appProfile(app, i, profile, rev) {
  return [
    'server:',
    `  port: ${profile === 'prod' ? 443 : 8443}`,
    'spring:',
    '  datasource:',
    `    url: jdbc:postgresql://${profile}-db-${i % 17}.internal:5432/${app.replace('-', '_')}`,
    '    hikari:',
    `      maximum-pool-size: ${profile === 'prod' ? 50 : 10}`,
    'logging:',
    '  level:',
    `    com.example.${app.replace('-', '')}: ${profile === 'prod' ? 'WARN' : 'INFO'}`,
    `replicas: ${profile === 'prod' ? 3 + (i % 5) : 1}`,
    `revision: ${rev}`,
    '',
  ].join('\n');
}

const SHARED = [
  'server:',
  '  max-http-request-header-size: 16KB',
  '  tomcat:',
  '    threads:',
  '      max: 200',
  'management:',
  '  metrics:',
  '    tags:',
  '      platform: bench',
  'tracing:',
  '  sampling:',
  '    probability: 0.1',
  'platform:',
  '  region: eu-west-1',
  '  cluster: bench-1',
  '  owner: platform-team@example.org',
  '',
].join('\n');

function data(text) {
  const bytes = Buffer.from(text, 'utf8');
  return `data ${bytes.length}\n${text}\n`;
}

/**
 * Writes the repository as a bare repository at `dir` (branch `main`), packed.
 * @param {{ dir: string, apps: number, commits: number }} opts
 */
export function makeBigRepo({ dir, apps, commits }) {
  mkdirSync(dir, { recursive: true });
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', dir], { env: { ...process.env, ...GIT_ENV } });
  const chunks = [];
  const t0 = 1_767_225_600; // 2026-01-01T00:00:00Z
  const commit = (n, message, files) => {
    chunks.push(`commit refs/heads/main\ncommitter bench <bench@example.org> ${t0 + n * 60} +0000\n${data(message)}`);
    for (const [path, text] of files) chunks.push(`M 100644 inline ${path}\n${data(text)}`);
    chunks.push('\n');
  };
  const first = [
    ['application.yml', SHARED],
    ['application-prod.yml', 'platform:\n  tier: production\n'],
    ['application-staging.yml', 'platform:\n  tier: staging\n'],
  ];
  for (let i = 0; i < apps; i++) {
    const app = appName(i);
    first.push([`${app}/application.yml`, appDefaults(app, i, 0)]);
    first.push([`${app}/application-prod.yml`, appProfile(app, i, 'prod', 0)]);
    first.push([`${app}/application-staging.yml`, appProfile(app, i, 'staging', 0)]);
  }
  commit(0, 'all applications\n', first);
  // Every later commit changes one document of one application (a deterministic walk).
  for (let n = 1; n < commits; n++) {
    const i = (n * 7919) % apps;
    const app = appName(i);
    const which = n % 3;
    const files =
      which === 0 ? [[`${app}/application.yml`, appDefaults(app, i, n)]]
      : which === 1 ? [[`${app}/application-prod.yml`, appProfile(app, i, 'prod', n)]]
      : [[`${app}/application-staging.yml`, appProfile(app, i, 'staging', n)]];
    commit(n, `${app}: revision ${n}\n`, files);
  }
  execFileSync('git', ['-C', dir, 'fast-import', '--quiet'], { input: chunks.join(''), env: { ...process.env, ...GIT_ENV }, maxBuffer: 1 << 30 });
  // One pack, as a long-lived hosted repository has after its gc.
  execFileSync('git', ['-C', dir, 'repack', '-a', '-d', '-q'], { env: { ...process.env, ...GIT_ENV } });
  return { dir, apps, commits };
}

/**
 * Commits a change of `app`'s `application.yml` on `branch` of the bare repository `dir`
 * (plumbing only: no work tree), creating `branch` from `main` when it does not exist.
 * @returns the new commit id
 */
export function commitOneApp(dir, { app, branch = 'main', marker }) {
  const git = (args, input) => execFileSync('git', ['-C', dir, ...args], { input, env: { ...process.env, ...GIT_ENV } }).toString().trim();
  let parent;
  try {
    parent = git(['rev-parse', '--verify', '-q', `refs/heads/${branch}`]);
  } catch {
    parent = git(['rev-parse', 'refs/heads/main']);
  }
  const i = Number(app.slice(4));
  const blob = git(['hash-object', '-w', '--stdin'], `${appDefaults(app, i, 0)}bench-marker: ${marker}\n`);
  // Rebuild the app's tree with the new blob, then the root tree.
  const appTree = git(['ls-tree', `${parent}:${app}`])
    .split('\n')
    .map((l) => (l.endsWith('\tapplication.yml') ? `100644 blob ${blob}\tapplication.yml` : l))
    .join('\n');
  const newAppTree = git(['mktree'], `${appTree}\n`);
  const root = git(['ls-tree', `${parent}^{tree}`])
    .split('\n')
    .map((l) => (l.endsWith(`\t${app}`) ? `040000 tree ${newAppTree}\t${app}` : l))
    .join('\n');
  const tree = git(['mktree'], `${root}\n`);
  const commit = git(['commit-tree', tree, '-p', parent, '-m', `${app}: ${marker}`]);
  git(['update-ref', `refs/heads/${branch}`, commit]);
  return commit;
}
