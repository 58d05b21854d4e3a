/**
 * The tamper-evident hash chain of the audit log (SPEC §6).
 *
 * Each event stores the hash of the event before it and its own hash:
 *
 * ```
 * hash = hex(sha256(prevHash + "\n" + canonicalJson(body)))
 * body = every AuditEventInput field present in the event, plus `seq`
 * ```
 *
 * with UTF-8 bytes hashed, and `prevHash` = {@link GENESIS_HASH} for `seq` 1. Changing,
 * removing or reordering any stored event therefore breaks the chain at that event (or at
 * the next one); {@link verifyChain} names the first break. Truncating the newest events
 * cannot be seen from the chain alone: stores keep a counter of the last event written
 * (a row deletion does not roll it back), and signed checkpoints kept outside the database
 * (`checkpoint.ts`) prove the rest; {@link ChainVerifier.finish} checks both.
 */
import { createHash } from 'node:crypto';
import { toEventInput } from './event.js';
import { eventJsonParts, joinEventJson } from './event-json.js';
import type { AuditEvent, AuditEventInput, ChainAnchor, ChainBreakReason, ChainHead, ExpectedHash, VerifyResult } from './types.js';

export type { ChainAnchor, ChainHead, ExpectedHash } from './types.js';

/** `prevHash` of the first event: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** A value {@link canonicalJson} accepts. */
export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue | undefined };

/**
 * Serialises a value as canonical JSON, the exact text the chain hashes:
 * - object members sorted by key (JavaScript's default sort: UTF-16 code units),
 *   members whose value is `undefined` omitted;
 * - no whitespace anywhere;
 * - strings as `JSON.stringify` writes them (ES2019 well-formed: lone surrogates escaped);
 * - numbers as `JSON.stringify` writes them (ECMAScript shortest round-trip form,
 *   `-0` as `0`).
 *
 * @throws TypeError for a non-finite number, an `undefined` array item, or any value that
 *   is not JSON (bigint, function, symbol).
 */
export function canonicalJson(value: CanonicalValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number ${String(value)}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    const items = value as readonly (CanonicalValue | undefined)[];
    return `[${items
      .map((v) => {
        if (v === undefined) throw new TypeError('canonicalJson: undefined array item');
        return canonicalJson(v);
      })
      .join(',')}]`;
  }
  if (typeof value === 'object') {
    const obj = value as { readonly [key: string]: CanonicalValue | undefined };
    const parts: string[] = [];
    for (const key of Object.keys(obj).sort()) {
      const v = obj[key];
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
    }
    return `{${parts.join(',')}}`;
  }
  throw new TypeError(`canonicalJson: unsupported ${typeof value}`);
}

/**
 * The canonical JSON text of an event's hashed body: its {@link AuditEventInput} fields plus
 * `seq` (not `prevHash`, which is hashed as the prefix, nor `hash`). Stores keep exactly
 * this text, so a row can be re-hashed as stored.
 *
 * @throws TypeError when the event's fields are malformed (see `toEventInput`).
 */
export function eventBodyJson(event: AuditEventInput & { seq: number }): string {
  // The fixed-order serialiser of event-json.ts writes exactly canonicalJson(body).
  return joinEventJson(eventJsonParts(toEventInput(event)), event.seq);
}

/** Hex SHA-256 of `prevHash + "\n" + bodyJson` (UTF-8): an event's `hash`. */
export function hashEventBody(prevHash: string, bodyJson: string): string {
  return createHash('sha256').update(prevHash, 'utf8').update('\n', 'utf8').update(bodyJson, 'utf8').digest('hex');
}

/**
 * The hash an event must carry, computed from its fields and its `prevHash`.
 * @throws TypeError when the event's fields are malformed.
 */
export function computeEventHash(event: AuditEventInput & { seq: number; prevHash: string }): string {
  return hashEventBody(event.prevHash, eventBodyJson(event));
}

/**
 * Checks events one at a time, in `seq` order, and remembers the first break. Lets a
 * store stream its rows (synchronously or not) without holding them all in memory.
 *
 * With `expect`, the chain must also pass through each expected hash (`checkpoint
 * mismatch` at the first event whose hash differs); {@link finish} then checks the end of
 * the chain against the store's counter and the newest expectation (`missing events`).
 */
export class ChainVerifier {
  #expectedSeq: number;
  #expectedPrev: string;
  #checked = 0;
  #break: { seq: number; reason: ChainBreakReason; detail?: string } | undefined;
  readonly #expect = new Map<number, ExpectedHash[]>();
  readonly #beforeStart: ExpectedHash[] = [];
  #matched = 0;

  /**
   * @param anchor where the chain starts; default `seq` 1 after {@link GENESIS_HASH}.
   * @param expect hashes the chain must pass through. Those before the anchor's event
   *   (pruned) cannot be checked and are listed by {@link beforeStart}; one at the anchor's
   *   own event (`anchor.seq - 1`) is compared with `anchor.prevHash`.
   */
  constructor(anchor: ChainAnchor = { seq: 1, prevHash: GENESIS_HASH }, expect: readonly ExpectedHash[] = []) {
    this.#expectedSeq = anchor.seq;
    this.#expectedPrev = anchor.prevHash;
    for (const e of expect) {
      if (e.seq < anchor.seq - 1) {
        this.#beforeStart.push(e);
        continue;
      }
      if (e.seq === anchor.seq - 1) {
        if (e.hash === anchor.prevHash) this.#matched++;
        else this.#break ??= { seq: e.seq, reason: 'checkpoint mismatch', detail: `${e.source} has hash ${e.hash} at seq ${e.seq}; the chain starts after hash ${anchor.prevHash}` };
        continue;
      }
      const list = this.#expect.get(e.seq);
      if (list) list.push(e);
      else this.#expect.set(e.seq, [e]);
    }
  }

  /** True once a break was found; later events are ignored. */
  get broken(): boolean {
    return this.#break !== undefined;
  }

  /** Expectations older than the start of the chain (pruned): they could not be checked. */
  get beforeStart(): readonly ExpectedHash[] {
    return this.#beforeStart;
  }

  /** Expectations the chain was found to pass through. */
  get matched(): number {
    return this.#matched;
  }

  /**
   * Checks the next event: first its `seq` (`sequence gap`), then its `prevHash`
   * (`prev-hash mismatch`), then its own hash (`hash mismatch`, also when its fields are
   * malformed), then `extra` (a store's own checks of the row it read the event from),
   * then the expected hashes at its `seq` (`checkpoint mismatch`).
   * Returns false when the chain is broken (now or before).
   */
  push(event: AuditEvent, extra?: (event: AuditEvent) => ChainBreakReason | undefined): boolean {
    if (this.#break) return false;
    this.#checked++;
    const reason = this.#check(event) ?? extra?.(event);
    if (reason) {
      this.#break = { seq: event.seq, reason };
      return false;
    }
    const expected = this.#expect.get(event.seq);
    if (expected) {
      const wrong = expected.find((e) => e.hash !== event.hash);
      if (wrong) {
        this.#break = {
          seq: event.seq,
          reason: 'checkpoint mismatch',
          detail: `event ${event.seq} has hash ${event.hash}; ${wrong.source} signed hash ${wrong.hash} for it: the chain was rewritten at or before seq ${event.seq}`,
        };
        return false;
      }
      this.#matched += expected.length;
      this.#expect.delete(event.seq);
    }
    this.#expectedSeq = event.seq + 1;
    this.#expectedPrev = event.hash;
    return true;
  }

  /** Records a break at an event that could not even be read (counts it as checked). */
  fail(seq: number, reason: ChainBreakReason): void {
    if (this.#break) return;
    this.#checked++;
    this.#break = { seq, reason };
  }

  /**
   * Checks the end of the chain once every event was pushed: the store's counter (`head`)
   * must be the last event checked (`missing events` when it is further: the newest
   * events were deleted; `counter mismatch` when it is behind or names another hash), and
   * no expected hash may lie beyond the last event (`missing events`: the store does not
   * reach a signed checkpoint).
   * @param head the store's counter; `undefined` when its row is missing (`counter
   *   mismatch`: it exists from the store's creation on); `null` when the caller keeps no
   *   counter (only the expectations are checked).
   */
  finish(head: ChainHead | undefined | null): void {
    if (this.#break) return;
    const lastSeq = this.#expectedSeq - 1;
    const lastHash = this.#expectedPrev;
    if (head === undefined) {
      this.#break = { seq: lastSeq + 1, reason: 'counter mismatch', detail: "the store's counter row is missing: it was deleted" };
      return;
    }
    if (head !== null) {
      if (head.seq > lastSeq) {
        this.#break = {
          seq: lastSeq + 1,
          reason: 'missing events',
          detail: `the store's counter says events up to seq ${head.seq} were written; ${lastSeq === 0 ? 'no event is stored' : `the last stored event is seq ${lastSeq}`}: events ${lastSeq + 1} to ${head.seq} are missing`,
        };
        return;
      }
      if (head.seq < lastSeq || head.hash !== lastHash) {
        this.#break = {
          seq: head.seq < lastSeq ? head.seq + 1 : lastSeq,
          reason: 'counter mismatch',
          detail: `the store's counter (seq ${head.seq}, hash ${head.hash}) is not the last stored event (seq ${lastSeq}, hash ${lastHash}): it was edited`,
        };
        return;
      }
    }
    let newest: ExpectedHash | undefined;
    for (const list of this.#expect.values()) for (const e of list) if (e.seq > lastSeq && (!newest || e.seq > newest.seq)) newest = e;
    if (newest) {
      this.#break = {
        seq: lastSeq + 1,
        reason: 'missing events',
        detail: `${newest.source} shows the chain reached seq ${newest.seq}; ${lastSeq === 0 ? 'no event is stored' : `the store ends at seq ${lastSeq}`}: events ${lastSeq + 1} to ${newest.seq} are missing`,
      };
    }
  }

  /** The last event accepted: `seq` and `hash` (the anchor's when none was). */
  get last(): ChainHead {
    return { seq: this.#expectedSeq - 1, hash: this.#expectedPrev };
  }

  /** The verdict so far. */
  result(): VerifyResult {
    return this.#break
      ? { ok: false, checked: this.#checked, firstBreak: { ...this.#break } }
      : { ok: true, checked: this.#checked };
  }

  #check(event: AuditEvent): ChainBreakReason | undefined {
    if (event.seq !== this.#expectedSeq) return 'sequence gap';
    if (event.prevHash !== this.#expectedPrev) return 'prev-hash mismatch';
    let hash: string;
    try {
      hash = computeEventHash(event);
    } catch {
      return 'hash mismatch';
    }
    return hash === event.hash ? undefined : 'hash mismatch';
  }
}

/**
 * Verifies a chain given in `seq` order and names the first break (verification stops
 * there). An empty chain is ok with `checked: 0`.
 *
 * @param events the events, oldest first.
 * @param anchor where the chain starts; default `seq` 1 after {@link GENESIS_HASH}.
 */
export function verifyChain(events: Iterable<AuditEvent>, anchor?: ChainAnchor): VerifyResult {
  const v = new ChainVerifier(anchor);
  for (const e of events) if (!v.push(e)) break;
  return v.result();
}

/** {@link verifyChain} for events that arrive asynchronously (a database cursor). */
export async function verifyChainAsync(
  events: AsyncIterable<AuditEvent> | Iterable<AuditEvent>,
  anchor?: ChainAnchor,
): Promise<VerifyResult> {
  const v = new ChainVerifier(anchor);
  for await (const e of events) if (!v.push(e)) break;
  return v.result();
}
