/**
 * Checking and copying audit events, shared by every store so they all store and hash
 * exactly the same fields.
 */
import type { AuditActor, AuditClaimedActor, AuditEvent, AuditEventInput } from './types.js';

/** `YYYY-MM-DDTHH:mm:ss.sssZ`: the only `time` spelling stored, so times sort as text. */
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ACTOR_KINDS: ReadonlySet<string> = new Set(['certificate', 'jwt', 'anonymous']);
const OUTCOMES: ReadonlySet<string> = new Set(['allowed', 'denied', 'error']);

/** True when `s` is an ISO 8601 UTC instant with milliseconds that denotes a real time. */
export function isIsoUtcMs(s: string): boolean {
  return ISO_UTC_MS.test(s) && new Date(s).toISOString() === s;
}

function fail(field: string, what: string): never {
  throw new TypeError(`Invalid audit event: ${field} must be ${what}`);
}

function optString(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(field, 'a string when present');
  return v;
}

function reqString(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(field, 'a non-empty string');
  return v;
}

function stringList(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) fail(field, 'an array of strings');
  return [...v];
}

/** A copy of `actor.claimed` with exactly its known fields (absent ones omitted). */
function claimedActor(v: unknown): AuditClaimedActor {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('actor.claimed', 'an object when present');
  const c = v as Record<string, unknown>;
  const out: AuditClaimedActor = {};
  for (const k of ['subject', 'fingerprint256', 'issuer'] as const) {
    const s = optString(c[k], `actor.claimed.${k}`);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/**
 * Checks an event as given by a caller and returns a copy holding exactly the
 * {@link AuditEventInput} fields, in declaration order, with absent optional fields
 * omitted (extra properties are dropped; arrays are copied).
 *
 * @throws TypeError naming the first field that is missing or of the wrong shape:
 *   `time` not `YYYY-MM-DDTHH:mm:ss.sssZ`, `status` not an integer 100–599, `durationMs`
 *   not a finite number ≥ 0, an unknown `actor.kind` or `outcome`, an `actor.claimed`
 *   that is not an object of optional strings (`subject`, `fingerprint256`, `issuer`), ...
 */
export function toEventInput(e: AuditEventInput): AuditEventInput {
  if (typeof e !== 'object' || e === null) fail('event', 'an object');
  if (typeof e.time !== 'string' || !isIsoUtcMs(e.time)) fail('time', 'an ISO 8601 UTC time with milliseconds');
  const a: unknown = e.actor;
  if (typeof a !== 'object' || a === null) fail('actor', 'an object');
  const actorIn = a as Record<string, unknown>;
  if (typeof actorIn.kind !== 'string' || !ACTOR_KINDS.has(actorIn.kind)) fail('actor.kind', "'certificate', 'jwt' or 'anonymous'");
  const actor: AuditActor = { kind: actorIn.kind as AuditActor['kind'] };
  const subject = optString(actorIn.subject, 'actor.subject');
  const fingerprint256 = optString(actorIn.fingerprint256, 'actor.fingerprint256');
  const issuer = optString(actorIn.issuer, 'actor.issuer');
  if (subject !== undefined) actor.subject = subject;
  if (fingerprint256 !== undefined) actor.fingerprint256 = fingerprint256;
  if (issuer !== undefined) actor.issuer = issuer;
  if (actorIn.claimed !== undefined) actor.claimed = claimedActor(actorIn.claimed);

  if (typeof e.outcome !== 'string' || !OUTCOMES.has(e.outcome)) fail('outcome', "'allowed', 'denied' or 'error'");
  if (!Number.isInteger(e.status) || e.status < 100 || e.status > 599) fail('status', 'an HTTP status code (100-599)');
  if (typeof e.durationMs !== 'number' || !Number.isFinite(e.durationMs) || e.durationMs < 0) {
    fail('durationMs', 'a finite number >= 0');
  }

  const out: AuditEventInput = {
    time: e.time,
    requestId: reqString(e.requestId, 'requestId'),
    actor,
    action: reqString(e.action, 'action'),
    profiles: stringList(e.profiles, 'profiles'),
    outcome: e.outcome,
    status: e.status,
    secretKeys: stringList(e.secretKeys, 'secretKeys'),
    durationMs: e.durationMs,
  };
  const optional = ['clientAddress', 'app', 'repository', 'ref', 'commit', 'format', 'reason', 'bodySha256'] as const;
  for (const k of optional) {
    const v = optString(e[k], k);
    if (v !== undefined) out[k] = v;
  }
  if (e.secretKeyIds !== undefined) out.secretKeyIds = stringList(e.secretKeyIds, 'secretKeyIds');
  return orderEvent(out);
}

/** The fields of `e` in {@link AuditEventInput} declaration order (for readable output). */
function orderEvent<T extends AuditEventInput>(e: T): T {
  const keys: (keyof AuditEvent)[] = [
    'seq', 'time', 'requestId', 'actor', 'clientAddress', 'action', 'app', 'repository', 'profiles', 'ref', 'commit', 'format',
    'outcome', 'status', 'reason', 'secretKeys', 'secretKeyIds', 'bodySha256', 'durationMs', 'prevHash', 'hash',
  ];
  const out: Record<string, unknown> = {};
  const src = e as unknown as Record<string, unknown>;
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
  return out as T;
}

/**
 * Assembles a stored event from an input already checked by {@link toEventInput} and its
 * chain fields (`seq` first, hashes last). Does not check again.
 */
export function withChainFields(input: AuditEventInput, seq: number, prevHash: string, hash: string): AuditEvent {
  return orderEvent({ ...input, seq, prevHash, hash });
}

/**
 * Rebuilds a stored event from untrusted data (a database row): checks the fields as
 * {@link toEventInput} does, then adds the chain fields.
 * @throws TypeError when the fields are malformed.
 */
export function toStoredEvent(input: AuditEventInput, seq: number, prevHash: string, hash: string): AuditEvent {
  return withChainFields(toEventInput(input), seq, prevHash, hash);
}
