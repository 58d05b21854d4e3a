/**
 * The verdict of `audit verify` over a real SQLite store: a genuine signed retention anchor
 * is accepted, what is left unproven is said, outside evidence is read from every form it
 * comes in, the checkpoint keys load from the settings with errors naming the setting, and
 * two stores (writer threads) appending to one file keep one chain.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointJson, loadCheckpointKeys, parseCheckpointEvidence, readPublicKeyFiles, type Checkpoint, type CheckpointPublicKey } from '../../src/audit/checkpoint.js';
import { openSqliteAuditStore, type SqliteAuditStore } from '../../src/audit/sqlite-store.js';
import { verifyAuditStore } from '../../src/audit/verify-report.js';
import { makeEvent } from './helpers.js';

const pair = generateKeyPairSync('ed25519');
const signer = { keyId: 'cp1', privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
const keys: CheckpointPublicKey[] = [{ id: 'cp1', key: pair.publicKey, source: 'test' }];

let dir: string;
const stores: SqliteAuditStore[] = [];
const open = (withKey = true): SqliteAuditStore => {
  const s = openSqliteAuditStore({
    path: join(dir, 'audit.sqlite'),
    ...(withKey && { checkpoints: { signer, writerId: 'w1', everyEvents: 2, intervalMs: 3_600_000 } }),
  });
  stores.push(s);
  return s;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'verify-report-'));
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('verifyAuditStore', () => {
  it('accepts a chain that starts from a genuine signed retention anchor, and says what stays unproven', async () => {
    const store = open();
    for (let i = 1; i <= 4; i++) await store.append(makeEvent({ requestId: `e${i}`, time: `2025-01-0${i}T00:00:00.000Z` }));
    expect(await store.prune('2025-01-03')).toEqual({ deleted: 2 });
    const storeId = await store.storeId();
    const verdict = await verifyAuditStore(store, { keys });
    expect(verdict).toEqual({
      ok: true,
      checked: 2,
      storeId,
      lastSeq: 4,
      firstSeq: 3,
      // Stored: checkpoint 2 and 4 (every 2 events), and the retention checkpoint of seq 2.
      checkpoints: { outside: 0, stored: 3, matched: 3, pruned: 0 },
      notProven: [
        'No outside checkpoints were given (--checkpoints): the chain was checked as the database holds it. That the newest events were not deleted together with the counter, or that the whole chain was not rewritten by someone who can write to the database, cannot be proven without checkpoints kept outside it (the log stream, a witness file).',
      ],
    });
    // Without a key nothing is refused, and the verdict says what was not checked.
    expect((await verifyAuditStore(store, { keys: [] })).notProven).toEqual([
      expect.stringMatching(/^No outside checkpoints were given/),
      'No public key was given (--public-key, or audit.checkpoints.keys in the settings): no signature was checked, neither of the retention anchor nor of stored checkpoints.',
      'The chain starts at seq 3 from a retention anchor whose signature was not checked: that events 1 to 2 were removed by retention is not proven.',
    ]);
  });

  it('names outside checkpoints of another store, and pruned ones it could not check', async () => {
    const store = open();
    for (let i = 1; i <= 4; i++) await store.append(makeEvent({ requestId: `e${i}`, time: `2025-01-0${i}T00:00:00.000Z` }));
    const stored = await store.checkpoints();
    const evidence = stored.map((checkpoint, i) => ({ checkpoint, source: `w.ndjson:${i + 1}` }));
    await store.prune('2025-01-04');
    const verdict = await verifyAuditStore(store, { keys, evidence });
    expect(verdict).toMatchObject({ ok: true, checked: 1, firstSeq: 4, checkpoints: { outside: 2, pruned: 1, newestOutsideSeq: 4 } });
    expect(verdict.notProven).toEqual(['1 checkpoint(s) are older than the retention anchor (seq 4): their events were pruned and could not be checked.']);

    const other: Checkpoint = { ...stored[1]!, storeId: '00000000-0000-4000-8000-000000000000' };
    const wrong = await verifyAuditStore(store, { keys, evidence: [{ checkpoint: other, source: 'x.ndjson:9' }] });
    expect(wrong).toMatchObject({
      ok: false,
      firstBreak: { seq: 4, reason: 'checkpoint of another store', detail: `x.ndjson:9 is for store 00000000-0000-4000-8000-000000000000; this store is ${await store.storeId()}` },
    });
  });

  it('two stores appending to the same file at once keep one chain (what several API processes do)', async () => {
    const a = open(false);
    const b = open(false);
    const run = (s: SqliteAuditStore, name: string) => Promise.all(Array.from({ length: 300 }, (_, i) => s.append(makeEvent({ requestId: `${name}${i}` }))));
    const [ea, eb] = await Promise.all([run(a, 'a'), run(b, 'b')]);
    const seqs = [...ea, ...eb].map((e) => e.seq).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(await a.verify()).toEqual({ ok: true, checked: 600 });
  });
});

describe('checkpoint evidence and keys', () => {
  it('reads checkpoints from a log stream, a witness file and the endpoint JSON, naming a malformed line', async () => {
    const store = open();
    for (let i = 1; i <= 2; i++) await store.append(makeEvent({ requestId: `e${i}` }));
    const [cp] = await store.checkpoints();
    const json = checkpointJson(cp!);
    const text = [
      '{"level":"info","msg":"config-service listening"}',
      `{"level":"info","checkpoint":${json},"msg":"audit checkpoint"}`,
      'not json at all',
      json,
      JSON.stringify({ checkpoints: [cp, cp] }),
      '',
    ].join('\n');
    const found = parseCheckpointEvidence(text, 'mixed.ndjson');
    expect(found.checkpoints.map((c) => c.source)).toEqual(['mixed.ndjson:2', 'mixed.ndjson:4', 'mixed.ndjson:5', 'mixed.ndjson:5']);
    expect(found.checkpoints.every((c) => c.checkpoint.hash === cp!.hash)).toBe(true);
    expect(found.ignoredLines).toBe(2);
    expect(() => parseCheckpointEvidence(`${json}\n${JSON.stringify({ ...cp, seq: 0 })}\n`, 'bad.ndjson')).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_INVALID_REQUEST', message: 'Invalid request: bad.ndjson:2: not a valid checkpoint: seq must be an integer >= 1' }),
    );
  });

  it('loads keys from files and the environment; errors name the setting, never the key', () => {
    const priv = join(dir, 'cp1.private.pem');
    const pub = join(dir, 'old.public.pem');
    writeFileSync(priv, signer.privateKeyPem);
    const old = generateKeyPairSync('ed25519');
    writeFileSync(pub, old.publicKey.export({ type: 'spki', format: 'pem' }));
    const loaded = loadCheckpointKeys({ keys: [{ id: 'old', publicKeyFile: pub }, { id: 'cp1', privateKeyFile: priv }] }, {});
    expect(loaded.signer?.keyId).toBe('cp1');
    expect(loaded.publicKeys.map((k) => k.id)).toEqual(['old', 'cp1']);
    expect(loadCheckpointKeys({ keys: [{ id: 'env', privateKeyEnv: 'CP_KEY' }] }, { CP_KEY: signer.privateKeyPem }).signer?.keyId).toBe('env');
    expect(loadCheckpointKeys({ keys: [] }, {})).toEqual({ publicKeys: [] });

    const rsa = join(dir, 'rsa.pem');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cases: [Parameters<typeof loadCheckpointKeys>[0], string][] = [
      [{ keys: [{ id: 'x', privateKeyEnv: 'UNSET' }] }, '  audit.checkpoints.keys.0.privateKeyEnv: the environment variable UNSET is not set'],
      [{ keys: [{ id: 'x', privateKeyFile: join(dir, 'missing.pem') }] }, `  audit.checkpoints.keys.0.privateKeyFile: cannot read ${join(dir, 'missing.pem')} (ENOENT)`],
      [{ keys: [{ id: 'x', privateKeyFile: rsa }] }, '  audit.checkpoints.keys.0: an Ed25519 key is required (found rsa)'],
      [{ keys: [{ id: 'x', privateKeyFile: priv, publicKeyFile: pub }] }, '  audit.checkpoints.keys.0: set exactly one of privateKeyFile, privateKeyEnv or publicKeyFile'],
      [{ keys: [{ id: 'x', publicKeyFile: pub }, { id: 'x', publicKeyFile: pub }] }, "  audit.checkpoints.keys.1.id: 'x' is used twice"],
      [{ keys: [{ id: 'x', publicKeyFile: pub }], signingKey: 'x' }, "  audit.checkpoints.signingKey: 'x' is not a key with privateKeyFile or privateKeyEnv"],
    ];
    for (const [settings, message] of cases) {
      expect(() => loadCheckpointKeys(settings, {})).toThrow(expect.objectContaining({ code: 'CFG_ERR_SETTINGS_INVALID', message: `Invalid service settings:\n${message}` }));
    }
    expect(() => readPublicKeyFiles([rsa])).toThrow(`--public-key ${rsa}: PEM block 1 is a rsa key, not Ed25519`);
    expect(readPublicKeyFiles([priv, pub]).length).toBe(2);
  });
});
