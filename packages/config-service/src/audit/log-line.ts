/**
 * Audit lines on the log stream (SPEC §6), written from the text the store already made
 * (issue 9): the `audit` member of an `audit event` line is the stored event text (plus
 * its `hash` and `prevHash`, `event-json.ts`), the `checkpoint` member of an `audit
 * checkpoint` line the stored checkpoint text, byte for byte. pino neither serialises the
 * event again nor scans it for redaction paths.
 *
 * Why no redaction is needed: an event holds names, ids, hashes, times and counts only —
 * the serialiser writes the declared fields and nothing else (`AUDIT_EVENT_FIELDS`), and a
 * checkpoint holds ids, a hash and a signature. The service's log serializers (`logger.ts`)
 * have no `audit` or `checkpoint` key, so the audit lines go through a child logger whose
 * object serialiser writes a {@link RawJson} value as its text (pino's `stringifySym`, exposed by `pino.symbols` for integrations). With a
 * logger that is not pino, `RawJson.toJSON` gives the same content, serialised again.
 */
import { pino } from 'pino';

/** A member value that is already JSON text: written as is. */
export class RawJson {
  constructor(readonly json: string) {}
  /** The parsed value, for serialisers that do not know RawJson. */
  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

/** The logger interface the audit lines need (pino fits). */
export interface AuditLineLogger {
  info(obj: object, msg: string): void;
  child(bindings: object, options?: object): AuditLineLogger;
}

type Stringify = (value: unknown, safe?: unknown) => string;

/**
 * A child of `logger` that writes {@link RawJson} members verbatim; for audit lines only
 * (they hold no secret by construction).
 */
export function rawJsonLogger<L extends AuditLineLogger>(logger: L): L {
  const child = logger.child({}) as L;
  const slots = child as unknown as Record<symbol, unknown>;
  const sym = pino.symbols.stringifySym;
  const original = slots[sym];
  if (typeof original === 'function') {
    const stringify = original as Stringify;
    slots[sym] = ((value: unknown, safe?: unknown) => (value instanceof RawJson ? value.json : stringify(value, safe))) satisfies Stringify;
  }
  return child;
}

/**
 * Writes the `audit event` line of a committed event.
 * @param eventLogJson the stored text with `hash` and `prevHash` (`eventLogJson` of `event-json.ts`).
 */
export function logAuditEvent(logger: AuditLineLogger, reqId: string, eventLogJson: string): void {
  logger.info({ reqId, audit: new RawJson(eventLogJson) }, 'audit event');
}

/** Writes the `audit checkpoint` line of a signed checkpoint (its stored text). */
export function logAuditCheckpoint(logger: AuditLineLogger, checkpointJson: string): void {
  logger.info({ checkpoint: new RawJson(checkpointJson) }, 'audit checkpoint');
}
