/**
 * The one serialisation of an audit event (issue 9): the canonical JSON text that the
 * chain hashes (`chain.ts`) is written once, here, from an event already checked by
 * `toEventInput`, and that same text is the stored row's `event` column and the `audit`
 * object of the log line (`log-line.ts`). Nothing re-serialises the event afterwards.
 *
 * The text is exactly `canonicalJson(body)` of `chain.ts` (members sorted by key, no
 * whitespace, strings and numbers as `JSON.stringify` writes them), built with a fixed
 * member order instead of a generic sort: the fields are known, so their sorted order is
 * too ({@link AUDIT_EVENT_FIELDS}). A property test checks the two agree byte for byte.
 *
 * `seq` sorts between `secretKeys` and `status`, so the text is kept as two parts that a
 * writer joins around the `seq` it assigns inside its transaction:
 * `head + ',"seq":' + seq + tail` ({@link joinEventJson}).
 *
 * Secrets by construction: an event holds names, ids, hashes, times and counts only. The
 * serialiser writes the fields of {@link AUDIT_EVENT_FIELDS} and nothing else, whatever
 * other properties the object carries, so a value can reach the text only through a field
 * declared here (a test keeps this list, the type and the serialiser in step).
 */
import type { AuditActor, AuditClaimedActor, AuditEventInput } from './types.js';

/**
 * Every field an event can hold, in the order the canonical text writes them (sorted by
 * key, `seq` included), with what it may contain. No field holds a configuration value, a
 * credential or a key: `kind` says what each one is.
 */
export const AUDIT_EVENT_FIELDS = Object.freeze([
  ['action', 'name'],
  ['actor', 'identity (kind, subject, certificate fingerprint and issuer names)'],
  ['app', 'name'],
  ['bodySha256', 'hash'],
  ['clientAddress', 'address'],
  ['commit', 'id'],
  ['durationMs', 'number'],
  ['format', 'name'],
  ['outcome', 'name'],
  ['profiles', 'names'],
  ['reason', 'name'],
  ['ref', 'name'],
  ['repository', 'name'],
  ['requestId', 'id'],
  ['secretKeyIds', 'ids'],
  ['secretKeys', 'names'],
  ['seq', 'number'],
  ['status', 'number'],
  ['time', 'time'],
] as const);

/** The canonical text of one event, split where `seq` goes. */
export interface EventJsonParts {
  /** `{"action":...,"secretKeys":[...]` (every member before `seq`, no trailing comma). */
  readonly head: string;
  /** `,"status":<n>,"time":"..."}` (every member after `seq`). */
  readonly tail: string;
}

const str = JSON.stringify;

function strings(list: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < list.length; i++) out += (i === 0 ? '' : ',') + str(list[i]);
  return `${out}]`;
}

function num(n: number): string {
  // JSON.stringify writes -0 as 0 and the shortest round-trip form, as canonicalJson does.
  return JSON.stringify(n);
}

function claimedJson(c: AuditClaimedActor): string {
  const parts: string[] = [];
  if (c.fingerprint256 !== undefined) parts.push(`"fingerprint256":${str(c.fingerprint256)}`);
  if (c.issuer !== undefined) parts.push(`"issuer":${str(c.issuer)}`);
  if (c.subject !== undefined) parts.push(`"subject":${str(c.subject)}`);
  return `{${parts.join(',')}}`;
}

function actorJson(a: AuditActor): string {
  let out = '{';
  if (a.claimed !== undefined) out += `"claimed":${claimedJson(a.claimed)},`;
  if (a.fingerprint256 !== undefined) out += `"fingerprint256":${str(a.fingerprint256)},`;
  if (a.issuer !== undefined) out += `"issuer":${str(a.issuer)},`;
  out += `"kind":${str(a.kind)}`;
  if (a.subject !== undefined) out += `,"subject":${str(a.subject)}`;
  return `${out}}`;
}

/**
 * The canonical text of `input` without `seq`, in two parts.
 *
 * @param input an event checked by `toEventInput` (only its declared fields are read;
 *   nothing is checked again).
 */
export function eventJsonParts(input: AuditEventInput): EventJsonParts {
  let head = `{"action":${str(input.action)},"actor":${actorJson(input.actor)}`;
  if (input.app !== undefined) head += `,"app":${str(input.app)}`;
  if (input.bodySha256 !== undefined) head += `,"bodySha256":${str(input.bodySha256)}`;
  if (input.clientAddress !== undefined) head += `,"clientAddress":${str(input.clientAddress)}`;
  if (input.commit !== undefined) head += `,"commit":${str(input.commit)}`;
  head += `,"durationMs":${num(input.durationMs)}`;
  if (input.format !== undefined) head += `,"format":${str(input.format)}`;
  head += `,"outcome":${str(input.outcome)},"profiles":${strings(input.profiles)}`;
  if (input.reason !== undefined) head += `,"reason":${str(input.reason)}`;
  if (input.ref !== undefined) head += `,"ref":${str(input.ref)}`;
  if (input.repository !== undefined) head += `,"repository":${str(input.repository)}`;
  head += `,"requestId":${str(input.requestId)}`;
  if (input.secretKeyIds !== undefined) head += `,"secretKeyIds":${strings(input.secretKeyIds)}`;
  head += `,"secretKeys":${strings(input.secretKeys)}`;
  return { head, tail: `,"status":${num(input.status)},"time":${str(input.time)}}` };
}

/** The stored text of an event: its parts joined around `seq`. */
export function joinEventJson(parts: EventJsonParts, seq: number): string {
  return `${parts.head},"seq":${seq}${parts.tail}`;
}

/**
 * The `audit` object of the log line: the stored text with the chain's `hash` and
 * `prevHash` added as its last members (a reader recomputes the hash from the text before
 * `,"hash":`, plus `}`).
 */
export function eventLogJson(storedJson: string, prevHash: string, hash: string): string {
  return `${storedJson.slice(0, -1)},"hash":${str(hash)},"prevHash":${str(prevHash)}}`;
}

const storedText = new WeakMap<object, string>();

/** Remembers the stored text of an event a store returned (read back with {@link storedEventJson}). */
export function rememberEventJson(event: object, json: string): void {
  storedText.set(event, json);
}

/**
 * The exact text a store kept for `event` (as hashed), when the event came from a store's
 * `append`; undefined otherwise (the caller serialises it then).
 */
export function storedEventJson(event: object): string | undefined {
  return storedText.get(event);
}
