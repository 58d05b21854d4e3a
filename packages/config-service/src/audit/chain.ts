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
 * cannot be seen from the chain alone; compare the last `seq` with an external record
 * (metrics, log shipper) for that.
 */
import { createHash } from 'node:crypto';
import { toEventInput } from './event.js';
import type { AuditEvent, AuditEventInput, ChainBreakReason, VerifyResult } from './types.js';

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
  const body: Record<string, CanonicalValue> = { ...(toEventInput(event) as unknown as Record<string, CanonicalValue>) };
  body.seq = event.seq;
  return canonicalJson(body);
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

/** Where a chain (or the verified part of it) starts. */
export interface ChainAnchor {
  /** `seq` of the first event expected; default 1. */
  seq: number;
  /** `prevHash` the first event must carry; default {@link GENESIS_HASH}. */
  prevHash: string;
}

/**
 * Checks events one at a time, in `seq` order, and remembers the first break. Lets a
 * store stream its rows (synchronously or not) without holding them all in memory.
 */
export class ChainVerifier {
  #expectedSeq: number;
  #expectedPrev: string;
  #checked = 0;
  #break: { seq: number; reason: ChainBreakReason } | undefined;

  /** @param anchor where the chain starts; default `seq` 1 after {@link GENESIS_HASH}. */
  constructor(anchor: ChainAnchor = { seq: 1, prevHash: GENESIS_HASH }) {
    this.#expectedSeq = anchor.seq;
    this.#expectedPrev = anchor.prevHash;
  }

  /** True once a break was found; later events are ignored. */
  get broken(): boolean {
    return this.#break !== undefined;
  }

  /**
   * Checks the next event: first its `seq` (`sequence gap`), then its `prevHash`
   * (`prev-hash mismatch`), then its own hash (`hash mismatch`, also when its fields are
   * malformed), then `extra` (a store's own checks of the row it read the event from).
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
