import { describe, expect, it } from 'vitest';
import { PgSyncBus, SYNC_CHANNEL_PREFIX, parseSyncNotification, syncChannel } from '../../src/git/sync-bus.js';

describe('sync bus', () => {
  it('derives a short, stable, identifier-safe channel per repository', () => {
    const ch = syncChannel('config');
    expect(ch).toMatch(/^config_service_sync_[0-9a-f]{16}$/);
    expect(ch.startsWith(SYNC_CHANNEL_PREFIX)).toBe(true);
    expect(syncChannel('config')).toBe(ch);
    expect(syncChannel('other "repo"; DROP')).not.toBe(ch);
    expect(syncChannel('x'.repeat(500)).length).toBeLessThan(64);
  });

  it('parses only well-formed payloads', () => {
    expect(parseSyncNotification('{"repo":"config","from":"r1"}')).toEqual({ repo: 'config', from: 'r1' });
    expect(parseSyncNotification(undefined)).toBeUndefined();
    expect(parseSyncNotification('not json')).toBeUndefined();
    expect(parseSyncNotification('{"repo":1,"from":"r1"}')).toBeUndefined();
    expect(parseSyncNotification('null')).toBeUndefined();
  });

  it('retries in the background without logging the password when PostgreSQL is unreachable', async () => {
    const lines: string[] = [];
    const log = (obj: object, msg: string): void => {
      lines.push(`${msg} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v))}`);
    };
    const bus = new PgSyncBus({
      connectionString: 'postgres://svc:Sup3r-S3cret-pw@127.0.0.1:1/db',
      repositories: ['config'],
      logger: { info: log, warn: log },
      reconnectMinMs: 10,
      reconnectMaxMs: 20,
      connectTimeoutMs: 500,
    });
    await bus.start();
    expect(bus.listening).toBe(false);
    await bus.publish('config'); // not connected: logged, never rejects
    await new Promise((r) => setTimeout(r, 100));
    await bus.close();
    expect(lines.some((l) => l.startsWith('sync bus: cannot LISTEN on PostgreSQL; retrying'))).toBe(true);
    expect(lines.filter((l) => l.startsWith('sync bus: cannot LISTEN')).length).toBeGreaterThan(1);
    for (const l of lines) expect(l).not.toContain('Sup3r-S3cret-pw');
  });
});
