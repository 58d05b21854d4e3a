/**
 * An audit log that proves itself (issue 13), end to end on BOTH stores (SQLite and the
 * real PostgreSQL): the real service over mTLS signs checkpoints with a key made by the
 * documented `config-service audit keygen`, someone with write access to the database
 * tampers with it behind the service's back (better-sqlite3 / psql), and the built
 * `config-service audit verify` gives an exact verdict each time:
 *
 * - a checkpoint file taken from the log stream verifies a clean store, and `requestId=`
 *   (and `audit query --request-id`) finds the event of a given response;
 * - the newest events deleted: the gap is named, and the number is not reused after a restart;
 * - the oldest events deleted plus a forged retention anchor: refused (unsigned, signed by
 *   another key, or a replayed periodic checkpoint);
 * - the chain rewritten after a checkpoint (hashes recomputed, counter and stored
 *   checkpoints fixed up): consistent to the database alone, named against the checkpoint file;
 * - `config-service audit witness` collects checkpoints across a restart of the service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpsGet,
  makeCerts,
  makeGitRepo,
  runServiceCli,
  SERVICE_CLI,
  startTestService,
  type ClientCert,
  type GitTestRepo,
  type TestPki,
  type TestService,
} from '#helpers';
import { psql, testDatabaseUrl } from './helpers/postgres.ts';

type Sqlite = new (file: string) => {
  prepare(sql: string): { all(...p: unknown[]): unknown[]; run(...p: unknown[]): unknown; get(...p: unknown[]): unknown };
  close(): void;
};
const Database = createRequire(new URL('../packages/config-service/package.json', import.meta.url))('better-sqlite3') as Sqlite;

const URL_ENV = 'CONFIG_SERVICE_AUDIT_DATABASE_URL';
const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const NOT_PROVEN_NO_EVIDENCE =
  'No outside checkpoints were given (--checkpoints): the chain was checked as the database holds it. That the newest events were not deleted together with the counter, or that the whole chain was not rewritten by someone who can write to the database, cannot be proven without checkpoints kept outside it (the log stream, a witness file).';

interface Row {
  seq: number;
  request_id: string;
  prev_hash: string;
  hash: string;
  event: string;
}

/** Raw access to one store's tables, independent of the service's code. */
interface Backend {
  /** Settings of `audit:` besides the checkpoints, and the YAML lines of the same for the CLI. */
  audit: Record<string, unknown>;
  yaml: string[];
  env: NodeJS.ProcessEnv;
  rows(): Promise<Row[]>;
  exec(sql: string): Promise<void>;
  /** Table names. */
  t: { events: string; head: string; checkpoints: string; anchor: string };
  dispose(): Promise<void>;
}

const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;

function sqliteBackend(dir: string): Backend {
  const file = path.join(dir, 'audit.sqlite');
  const run = (fn: (db: InstanceType<Sqlite>) => unknown): unknown => {
    const db = new Database(file);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    audit: { store: 'sqlite', sqlitePath: file },
    yaml: ['  store: sqlite', `  sqlitePath: ${JSON.stringify(file)}`],
    env: {},
    t: { events: 'audit_events', head: 'audit_head', checkpoints: 'audit_checkpoints', anchor: 'audit_anchor' },
    rows: async () => run((db) => db.prepare('SELECT seq, request_id, prev_hash, hash, event FROM audit_events ORDER BY seq').all()) as Row[],
    exec: async (sql) => void run((db) => db.prepare(sql).run()),
    dispose: async () => {},
  };
}

function postgresBackend(url: string): Backend {
  const table = `audit_ev_${randomBytes(6).toString('hex')}`;
  const t = { events: `"${table}"`, head: `"${table}_head"`, checkpoints: `"${table}_checkpoints"`, anchor: `"${table}_anchor"` };
  return {
    audit: { store: 'postgres', postgres: { table } },
    yaml: ['  store: postgres', `  postgres: { table: ${table} }`],
    env: { [URL_ENV]: url },
    t,
    rows: async () =>
      (await psql(url, `SELECT seq, request_id, prev_hash, hash, event FROM ${t.events} ORDER BY seq`)).map(([seq, request_id, prev_hash, hash, event]) => ({
        seq: Number(seq),
        request_id: request_id!,
        prev_hash: prev_hash!,
        hash: hash!,
        event: event!,
      })),
    exec: async (sql) => void (await psql(url, sql)),
    dispose: async () => void (await psql(url, `DROP TABLE IF EXISTS ${Object.values(t).join(', ')}`)),
  };
}

let pki: TestPki;
let orders: ClientCert;
let auditor: ClientCert;
let repo: GitTestRepo;
let keyDir: string;
let pgUrl: string;

beforeAll(async () => {
  pgUrl = testDatabaseUrl();
  pki = await makeCerts('audit-evidence');
  orders = await pki.client('orders');
  auditor = await pki.client('auditor');
  repo = await makeGitRepo({ 'orders/application.yml': 'server: {port: 8080}\n' });
  keyDir = mkdtempSync(path.join(os.tmpdir(), 'audit-keys-'));
  // The documented command makes the pair.
  const keygen = await runServiceCli(['audit', 'keygen', '--dir', keyDir, '--id', 'cp1']);
  expect(keygen).toMatchObject({ status: 0, stdout: `${path.join(keyDir, 'cp1.private.pem')}\n${path.join(keyDir, 'cp1.public.pem')}\n` });
});

const privateKeyFile = (): string => path.join(keyDir, 'cp1.private.pem');
const publicKeyFile = (): string => path.join(keyDir, 'cp1.public.pem');

/** A free TCP port on 127.0.0.1 (for a service restarted on the same address). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe.each([
  ['SQLite', (dir: string) => sqliteBackend(dir)],
  ['PostgreSQL', () => postgresBackend(pgUrl)],
])('audit evidence: %s', (_name, makeBackend) => {
  let dir: string;
  let backend: Backend;
  let service: TestService | undefined;
  let settingsFile: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'audit-evidence-'));
  });
  afterAll(async () => {
    await service?.close();
  });

  /** A fresh store for one scenario, with its settings file for the CLI. */
  async function freshStore(): Promise<void> {
    await backend?.dispose();
    const sub = mkdtempSync(path.join(dir, 's-'));
    backend = makeBackend(sub);
    settingsFile = path.join(sub, 'service.yml');
    writeFileSync(
      settingsFile,
      [
        'server:',
        '  tls:',
        `    cert: ${JSON.stringify(pki.serverCertFile)}`,
        `    key: ${JSON.stringify(pki.serverKeyFile)}`,
        `    clientCa: ${JSON.stringify(pki.caFile)}`,
        `dataDir: ${JSON.stringify(path.join(sub, 'data'))}`,
        'repositories:',
        `  - { name: config, path: ${JSON.stringify(repo.dir)} }`,
        'audit:',
        ...backend.yaml,
        '  checkpoints:',
        `    keys: [{ id: cp1, privateKeyFile: ${JSON.stringify(privateKeyFile())} }]`,
        '',
      ].join('\n'),
    );
  }

  async function start(port = 0): Promise<TestService> {
    service = await startTestService({
      pki,
      repository: { path: repo.dir, branch: 'main' },
      server: { port },
      settings: {
        audit: { ...backend.audit, checkpoints: { keys: [{ id: 'cp1', privateKeyFile: privateKeyFile() }], everyEvents: 2, intervalMs: 3_600_000 } },
        policy: { grants: [{ subjects: ['auditor'], apps: ['*'], profiles: ['*'], scopes: ['audit:read'] }] },
      },
      env: backend.env,
    });
    return service;
  }

  async function stop(): Promise<string[]> {
    const s = service!;
    service = undefined;
    await s.close();
    return s.logs;
  }

  const read = (s: TestService) => httpsGet(s.apiUrl, '/v1/apps/orders/config?format=json', { ca: pki.ca.certPem, cert: orders.cert, key: orders.key });

  async function verify(...args: string[]): Promise<{ status: number | null; verdict: Record<string, unknown>; stderr: string }> {
    const r = await runServiceCli(['audit', 'verify', '--config', settingsFile, ...args], { env: { ...process.env, ...backend.env } });
    let verdict: Record<string, unknown> = {};
    try {
      verdict = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      throw new Error(`audit verify printed no verdict (exit ${r.status}): ${r.stderr}`);
    }
    return { status: r.status, verdict, stderr: r.stderr };
  }

  /** Writes the service's log lines (the log stream, every line) to a file; returns it. */
  function logFile(lines: string[], name: string): string {
    const file = path.join(dir, `${name}-${randomBytes(3).toString('hex')}.ndjson`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  /** `file:line` of the checkpoint of `seq` in a log file, as the verdict names it. */
  function lineOf(file: string, seq: number): string {
    const i = readFileSync(file, 'utf8')
      .split('\n')
      .findIndex((l) => l.includes('"msg":"audit checkpoint"') && (JSON.parse(l) as { checkpoint: { seq: number } }).checkpoint.seq === seq);
    return `${file}:${i + 1}`;
  }

  it('a checkpoint file taken from the log stream verifies a clean store; requestId= finds the event of a response', async () => {
    await freshStore();
    const s = await start();
    const reads = [];
    for (let i = 0; i < 5; i++) reads.push(await read(s));
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const third = reads[2]!;
    const rid = third.headers['request-id']!;
    const found = await httpsGet(s.apiUrl, `/v1/audit?requestId=${encodeURIComponent(rid)}`, { ca: pki.ca.certPem, cert: auditor.cert, key: auditor.key });
    expect(found.status).toBe(200);
    const events = found.json<{ events: Array<Record<string, unknown>> }>().events;
    expect(events.map((e) => [e.seq, e.requestId, e.action, e.app, e.status, e.bodySha256])).toEqual([
      [3, rid, 'config.read', 'orders', 200, createHash('sha256').update(third.body).digest('hex')],
    ]);
    const logs = await stop();

    // The log line of each event carries exactly the stored text, plus its hashes.
    const rows = await backend.rows();
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const lines = logs.map((l) => JSON.parse(l) as { msg: string; audit?: Record<string, unknown>; checkpoint?: Record<string, unknown> });
    const auditLines = logs.filter((l) => l.includes('"msg":"audit event"'));
    expect(auditLines.length).toBe(6);
    for (const [i, row] of rows.entries()) {
      expect(auditLines[i]).toContain(`"audit":${row.event.slice(0, -1)},"hash":"${row.hash}","prevHash":"${row.prev_hash}"}`);
    }
    // Checkpoints every 2 events, signed in the transaction of the event that reaches the
    // count: after events 2, 4 and 6 (the audit query); none was left to sign at shutdown.
    const checkpoints = lines.filter((l) => l.msg === 'audit checkpoint').map((l) => l.checkpoint!);
    expect(checkpoints.map((c) => [c.kind, c.seq, c.hash, c.keyId])).toEqual([
      ['checkpoint', 2, rows[1]!.hash, 'cp1'],
      ['checkpoint', 4, rows[3]!.hash, 'cp1'],
      ['checkpoint', 6, rows[5]!.hash, 'cp1'],
    ]);
    const storeId = checkpoints[0]!.storeId as string;

    const file = logFile(logs, 'log-stream');
    const clean = await verify('--checkpoints', file, '--public-key', publicKeyFile());
    expect(clean).toMatchObject({ status: 0 });
    expect(clean.verdict).toEqual({
      ok: true,
      checked: 6,
      storeId,
      lastSeq: 6,
      firstSeq: 1,
      checkpoints: { outside: 3, stored: 3, matched: 6, pruned: 0, newestOutsideSeq: 6 },
      notProven: [],
    });
    // Without outside evidence it says what it could not prove.
    const alone = await verify();
    expect(alone).toMatchObject({ status: 0 });
    expect(alone.verdict).toEqual({
      ok: true,
      checked: 6,
      storeId,
      lastSeq: 6,
      firstSeq: 1,
      checkpoints: { outside: 0, stored: 3, matched: 3, pruned: 0 },
      notProven: [NOT_PROVEN_NO_EVIDENCE],
    });
    // The CLI finds the same event by request id.
    const query = await runServiceCli(['audit', 'query', '--config', settingsFile, '--request-id', rid], { env: { ...process.env, ...backend.env } });
    expect(query.status).toBe(0);
    expect(query.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([3]);
  });

  it('the newest events deleted: the gap is named, and the numbers are not reused after a restart', async () => {
    await freshStore();
    let s = await start();
    for (let i = 0; i < 4; i++) expect((await read(s)).status).toBe(200);
    await stop();
    await backend.exec(`DELETE FROM ${backend.t.events} WHERE seq >= 3`);
    const cut = await verify('--public-key', publicKeyFile());
    expect(cut.status).toBe(1);
    expect(cut.verdict).toMatchObject({
      ok: false,
      checked: 2,
      firstBreak: {
        seq: 3,
        reason: 'missing events',
        detail: "the store's counter says events up to seq 4 were written; the last stored event is seq 2: events 3 to 4 are missing",
      },
      lastSeq: 4,
    });

    s = await start();
    const after = await read(s);
    expect(after.status).toBe(200);
    await stop();
    const rows = await backend.rows();
    // Not 3: the deleted numbers stay a gap.
    expect(rows.map((r) => [r.seq, r.request_id])).toEqual([
      [1, expect.any(String)],
      [2, expect.any(String)],
      [5, after.headers['request-id']],
    ]);
    const gap = await verify('--public-key', publicKeyFile());
    expect(gap.status).toBe(1);
    expect(gap.verdict).toMatchObject({ ok: false, checked: 3, firstBreak: { seq: 5, reason: 'sequence gap' }, lastSeq: 5 });
  });

  it('the oldest events deleted and a retention anchor forged: refused, unsigned or badly signed', async () => {
    await freshStore();
    const s = await start();
    for (let i = 0; i < 4; i++) expect((await read(s)).status).toBe(200);
    await stop();
    const rows = await backend.rows();
    const storeId = (await verify()).verdict.storeId as string;
    await backend.exec(`DELETE FROM ${backend.t.events} WHERE seq <= 2`);
    await backend.exec(`INSERT INTO ${backend.t.anchor} (id, seq, prev_hash, checkpoint) VALUES (1, 3, ${q(rows[1]!.hash)}, NULL)`);
    // The settings hold the key (no --public-key): the unsigned anchor is refused.
    const unchecked = await runServiceCli(['audit', 'verify', '--config', settingsFile], { env: { ...process.env, ...backend.env } });
    expect(unchecked.status).toBe(1);
    const unsigned = JSON.parse(unchecked.stdout) as Record<string, unknown>;
    expect(unsigned).toMatchObject({
      ok: false,
      checked: 2,
      firstBreak: {
        seq: 3,
        reason: 'anchor unsigned',
        detail: 'the chain starts at seq 3 from a retention anchor without a signed checkpoint: events 1 to 2 may have been deleted by someone other than retention',
      },
      firstSeq: 3,
    });

    // Signed, but with the attacker's own key.
    const attacker = generateKeyPairSync('ed25519');
    const payload = { kind: 'retention', storeId, writerId: 'attacker', seq: 2, hash: rows[1]!.hash, time: '2026-01-01T00:00:00.000Z', keyId: 'cp1' };
    const canonical = (o: Record<string, unknown>): string => JSON.stringify(Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]])));
    const forged = { ...payload, signature: sign(null, Buffer.from(`config-service audit checkpoint v1\n${canonical(payload)}`), attacker.privateKey).toString('base64') };
    await backend.exec(`UPDATE ${backend.t.anchor} SET checkpoint = ${q(canonical(forged))}`);
    const badSig = await verify('--public-key', publicKeyFile());
    expect(badSig.status).toBe(1);
    expect(badSig.verdict).toMatchObject({
      ok: false,
      firstBreak: {
        seq: 3,
        reason: 'anchor signature invalid',
        detail: 'the retention anchor (seq 3) carries a checkpoint whose signature does not verify with the given public key(s) (key cp1)',
      },
    });

    // A genuine periodic checkpoint of seq 2, replayed as a retention anchor.
    const [[genuine]] = (await (async () => {
      if (backend.yaml[0]!.includes('sqlite')) {
        const db = new Database((backend.audit as { sqlitePath: string }).sqlitePath);
        try {
          return [[(db.prepare(`SELECT checkpoint FROM audit_checkpoints WHERE seq = 2`).get() as { checkpoint: string }).checkpoint]];
        } finally {
          db.close();
        }
      }
      return psql(pgUrl, `SELECT checkpoint FROM ${backend.t.checkpoints} WHERE seq = 2`);
    })()) as [[string]];
    await backend.exec(`UPDATE ${backend.t.anchor} SET checkpoint = ${q(genuine)}`);
    const replayed = await verify('--public-key', publicKeyFile());
    expect(replayed.status).toBe(1);
    expect(replayed.verdict).toMatchObject({
      ok: false,
      firstBreak: { seq: 3, reason: 'anchor signature invalid', detail: "the retention anchor (seq 3) carries a 'checkpoint' checkpoint, not a retention one" },
    });
  });

  it('the chain rewritten after a checkpoint: consistent to the database alone, named against the checkpoint file', async () => {
    await freshStore();
    const s = await start();
    for (let i = 0; i < 4; i++) expect((await read(s)).status).toBe(200);
    const logs = await stop();
    const evidence = logFile(logs, 'rewrite-evidence');
    const rows = await backend.rows();
    // Rewrite event 3 (another body hash) and everything after it, with correct hashes, then
    // the counter, and remove the stored checkpoints that would contradict it.
    const text3 = rows[2]!.event.replace(/"bodySha256":"[0-9a-f]{64}"/, `"bodySha256":"${'e'.repeat(64)}"`);
    const hash3 = sha256(`${rows[1]!.hash}\n${text3}`);
    const hash4 = sha256(`${hash3}\n${rows[3]!.event}`);
    await backend.exec(`UPDATE ${backend.t.events} SET event = ${q(text3)}, hash = ${q(hash3)} WHERE seq = 3`);
    await backend.exec(`UPDATE ${backend.t.events} SET prev_hash = ${q(hash3)}, hash = ${q(hash4)} WHERE seq = 4`);
    await backend.exec(`UPDATE ${backend.t.head} SET hash = ${q(hash4)}`);
    await backend.exec(`DELETE FROM ${backend.t.checkpoints}`);

    const alone = await verify('--public-key', publicKeyFile());
    expect(alone).toMatchObject({ status: 0, verdict: { ok: true, checked: 4, notProven: [NOT_PROVEN_NO_EVIDENCE] } });
    const named = await verify('--checkpoints', evidence, '--public-key', publicKeyFile());
    expect(named.status).toBe(1);
    expect(named.verdict).toMatchObject({
      ok: false,
      checked: 4,
      firstBreak: {
        seq: 4,
        reason: 'checkpoint mismatch',
        detail: `event 4 has hash ${hash4}; ${lineOf(evidence, 4)} signed hash ${rows[3]!.hash} for it: the chain was rewritten at or before seq 4`,
      },
      checkpoints: { outside: 2, stored: 0, matched: 1, pruned: 0, newestOutsideSeq: 4 },
    });
    // Deleting the rewritten tail and moving the counter back is no way out either.
    await backend.exec(`DELETE FROM ${backend.t.events} WHERE seq >= 3`);
    await backend.exec(`UPDATE ${backend.t.head} SET seq = 2, hash = ${q(rows[1]!.hash)}`);
    expect((await verify('--public-key', publicKeyFile())).verdict).toMatchObject({ ok: true, checked: 2 });
    const cut = await verify('--checkpoints', evidence, '--public-key', publicKeyFile());
    expect(cut.verdict).toMatchObject({
      ok: false,
      firstBreak: { seq: 3, reason: 'missing events', detail: `${lineOf(evidence, 4)} shows the chain reached seq 4; the store ends at seq 2: events 3 to 4 are missing` },
    });
    // A checkpoint file with a forged line is refused, naming the line.
    const forgedFile = path.join(dir, `forged-${randomBytes(3).toString('hex')}.ndjson`);
    const cpLine = logs.find((l) => l.includes('"msg":"audit checkpoint"'))!;
    const cp = (JSON.parse(cpLine) as { checkpoint: Record<string, unknown> }).checkpoint;
    writeFileSync(forgedFile, `${JSON.stringify({ ...cp, hash: 'a'.repeat(64) })}\n`);
    const refused = await verify('--checkpoints', forgedFile, '--public-key', publicKeyFile());
    expect(refused.verdict).toMatchObject({
      ok: false,
      firstBreak: { seq: 2, reason: 'checkpoint signature invalid', detail: `${forgedFile}:1 (key cp1): the signature does not verify with the given public key(s)` },
    });
  });

  it('a witness run collects checkpoints across a restart of the service', async () => {
    await freshStore();
    const port = await freePort();
    let s = await start(port);
    const out = path.join(dir, `witness-${randomBytes(3).toString('hex')}.ndjson`);
    const witness: ChildProcess = spawn(
      process.execPath,
      [SERVICE_CLI, 'audit', 'witness', '--url', s.apiUrl, '--out', out, '--public-key', publicKeyFile(), '--ca', pki.caFile, '--cert', auditor.certFile, '--key', auditor.keyFile, '--interval-ms', '200'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let witnessLog = '';
    witness.stderr?.on('data', (d: Buffer) => (witnessLog += d));
    const exited = new Promise<number | null>((resolve) => witness.on('exit', (code) => resolve(code)));
    const kept = (): Array<{ seq: number; storeId: string }> => {
      try {
        return readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; storeId: string });
      } catch {
        return [];
      }
    };
    const until = async (what: string, check: () => boolean): Promise<void> => {
      const end = Date.now() + 60_000;
      while (!check()) {
        if (Date.now() > end) throw new Error(`${what} within 60 s; witness said:\n${witnessLog}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      for (let i = 0; i < 2; i++) expect((await read(s)).status).toBe(200);
      await until('the witness kept the first checkpoint', () => kept().length > 0);
      await stop();
      const firstRun = await backend.rows();
      // The last checkpoint of the first run is of its last event (signed at shutdown, or in
      // the transaction of that event).
      const lastOfFirstRun = firstRun[firstRun.length - 1]!.seq;
      await until('the witness noticed the service is down', () => witnessLog.includes('poll failed'));
      s = await start(port);
      for (let i = 0; i < 2; i++) expect((await read(s)).status).toBe(200);
      await until('the witness kept the last checkpoint of the first run and one of the second', () => {
        const seqs = kept().map((c) => c.seq);
        return seqs.includes(lastOfFirstRun) && seqs.some((q) => q > lastOfFirstRun);
      });
    } finally {
      witness.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    await stop();
    const lines = kept();
    const seqs = lines.map((c) => c.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(lines.map((c) => c.storeId)).size).toBe(1);

    const rows = await backend.rows();
    const lastSeq = rows[rows.length - 1]!.seq;
    const newest = seqs[seqs.length - 1]!;
    const result = await verify('--checkpoints', out, '--public-key', publicKeyFile());
    expect(result.status).toBe(0);
    expect(result.verdict).toEqual({
      ok: true,
      checked: lastSeq,
      storeId: lines[0]!.storeId,
      lastSeq,
      firstSeq: 1,
      checkpoints: expect.objectContaining({ outside: lines.length, pruned: 0, newestOutsideSeq: newest }),
      notProven:
        newest < lastSeq
          ? [
              `Events after seq ${newest} (the newest outside checkpoint) are checked against the database alone: their deletion together with the counter, or a rewrite, cannot be proven until a later checkpoint is kept outside.`,
            ]
          : [],
    });
  });

  afterAll(async () => {
    await backend?.dispose();
  });
});
