/**
 * The verdict of `config-service audit verify` (issue 13): the store's own chain checks
 * (`AuditStore.examine`), the signatures of the retention anchor and of every checkpoint
 * (stored ones and outside evidence), and that the chain passes through each checkpoint
 * and reaches the newest one. Says plainly what it could not prove.
 *
 * Order of the checks, so the first break named is the most basic one: outside evidence
 * that does not verify (wrong store, bad signature), then stored checkpoints that do not
 * verify, then the anchor, then the chain itself (with the checkpoints' hashes as
 * expectations).
 */
import type { ChainBreakReason, ChainExamination } from './types.js';
import type { AuditStore } from './types.js';
import type { ExpectedHash } from './chain.js';
import { checkCheckpointSignature, parseCheckpoint, type Checkpoint, type CheckpointPublicKey, type EvidenceCheckpoint } from './checkpoint.js';

/** Why a verdict failed: a chain break, or evidence that does not hold. */
export type VerdictBreakReason =
  | ChainBreakReason
  /** A checkpoint's signature does not verify with any of the public keys. */
  | 'checkpoint signature invalid'
  /** A checkpoint names another store id. */
  | 'checkpoint of another store'
  /** The chain starts after `seq` 1 from a retention anchor without a signed checkpoint. */
  | 'anchor unsigned'
  /** The anchor's checkpoint does not verify, or does not vouch for this anchor. */
  | 'anchor signature invalid';

/** The verdict `audit verify` prints. */
export interface AuditVerdict {
  /** True when nothing contradicts the chain; read `notProven` for what that covers. */
  ok: boolean;
  /** Events examined (after the anchor, when there is one). */
  checked: number;
  /** The first missing or contradicting event, or the evidence that failed, and why. */
  firstBreak?: { seq: number; reason: VerdictBreakReason; detail?: string };
  storeId: string;
  /** The store's counter: the last event written (0 when none). */
  lastSeq: number;
  /** The `seq` the stored chain starts at (1, or the retention anchor's). */
  firstSeq: number;
  checkpoints: {
    /** Checkpoints read from `--checkpoints` files. */
    outside: number;
    /** Checkpoints stored in the database whose signature was checked. */
    stored: number;
    /** Checkpoints the chain was found to pass through. */
    matched: number;
    /** Checkpoints older than the retention anchor (their events were pruned): not checked. */
    pruned: number;
    /** `seq` of the newest outside checkpoint. */
    newestOutsideSeq?: number;
  };
  /** What this verdict does NOT prove, in plain words (empty only when nothing is left open). */
  notProven: string[];
}

/** Inputs of {@link verifyAuditStore}. */
export interface VerifyAuditOptions {
  /** Checkpoints from outside the database (the log stream, a witness file). */
  evidence?: readonly EvidenceCheckpoint[];
  /** Public keys of the checkpoint signing keys (settings and `--public-key`). */
  keys: readonly CheckpointPublicKey[];
}

/**
 * Verifies `store` against its own chain, its signed anchor and checkpoints, and the
 * outside evidence.
 * @throws (rejects) CFG_ERR_AUDIT_UNAVAILABLE when the store cannot be read.
 */
export async function verifyAuditStore(store: AuditStore, opts: VerifyAuditOptions): Promise<AuditVerdict> {
  const { keys } = opts;
  const evidence = opts.evidence ?? [];
  const storeId = await store.storeId();
  const expect: ExpectedHash[] = [];
  let evidenceBreak: AuditVerdict['firstBreak'];

  for (const { checkpoint: cp, source } of evidence) {
    evidenceBreak ??= checkEvidence(cp, source, storeId, keys);
    if (!evidenceBreak) expect.push({ seq: cp.seq, hash: cp.hash, source });
  }
  // Stored checkpoints count as evidence only when their signature verifies (read before
  // the chain, so none can be newer than the snapshot examined).
  let stored = 0;
  if (keys.length > 0) {
    for (let after = 0; ; ) {
      const page = await store.checkpoints({ after, limit: 1000 });
      for (const cp of page) {
        const source = `the stored ${cp.kind} checkpoint of seq ${cp.seq} (${cp.time})`;
        evidenceBreak ??= checkEvidence(cp, source, storeId, keys);
        if (!evidenceBreak) {
          expect.push({ seq: cp.seq, hash: cp.hash, source });
          stored++;
        }
      }
      const last = page[page.length - 1];
      if (page.length < 1000 || !last) break;
      after = last.seq;
    }
  }

  const ex = await store.examine({ expect });
  const newestOutside = evidence.reduce<number | undefined>((m, e) => (m === undefined || e.checkpoint.seq > m ? e.checkpoint.seq : m), undefined);
  const firstBreak = evidenceBreak ?? anchorBreak(ex, storeId, keys) ?? ex.firstBreak;
  const verdict: AuditVerdict = {
    ok: firstBreak === undefined,
    checked: ex.checked,
    ...(firstBreak && { firstBreak }),
    storeId,
    lastSeq: ex.head?.seq ?? 0,
    firstSeq: ex.start.seq,
    checkpoints: {
      outside: evidence.length,
      stored,
      matched: ex.matched,
      pruned: ex.beforeStart.length,
      ...(newestOutside !== undefined && { newestOutsideSeq: newestOutside }),
    },
    notProven: notProven(ex, evidence, keys, newestOutside),
  };
  return verdict;
}

function checkEvidence(cp: Checkpoint, source: string, storeId: string, keys: readonly CheckpointPublicKey[]): AuditVerdict['firstBreak'] {
  if (cp.storeId !== storeId) {
    return { seq: cp.seq, reason: 'checkpoint of another store', detail: `${source} is for store ${cp.storeId}; this store is ${storeId}` };
  }
  if (checkCheckpointSignature(cp, keys) !== 'valid') {
    return { seq: cp.seq, reason: 'checkpoint signature invalid', detail: `${source} (key ${cp.keyId}): the signature does not verify with the given public key(s)` };
  }
  return undefined;
}

/** The anchor must carry a retention checkpoint, signed by a known key, for exactly its place. */
function anchorBreak(ex: ChainExamination, storeId: string, keys: readonly CheckpointPublicKey[]): AuditVerdict['firstBreak'] {
  const anchor = ex.anchor;
  if (!anchor || keys.length === 0) return undefined;
  const at = anchor.seq;
  if (anchor.checkpoint === null) {
    return {
      seq: at,
      reason: 'anchor unsigned',
      detail: `the chain starts at seq ${at} from a retention anchor without a signed checkpoint: events 1 to ${at - 1} may have been deleted by someone other than retention`,
    };
  }
  let cp: Checkpoint | string;
  try {
    cp = parseCheckpoint(JSON.parse(anchor.checkpoint));
  } catch {
    cp = 'not JSON';
  }
  const bad = (why: string): AuditVerdict['firstBreak'] => ({ seq: at, reason: 'anchor signature invalid', detail: `the retention anchor (seq ${at}) ${why}` });
  if (typeof cp === 'string') return bad(`carries a checkpoint that is malformed (${cp})`);
  if (checkCheckpointSignature(cp, keys) !== 'valid') return bad(`carries a checkpoint whose signature does not verify with the given public key(s) (key ${cp.keyId})`);
  if (cp.kind !== 'retention') return bad(`carries a '${cp.kind}' checkpoint, not a retention one`);
  if (cp.storeId !== storeId) return bad(`carries a checkpoint of store ${cp.storeId}; this store is ${storeId}`);
  if (cp.seq !== at - 1 || cp.hash !== anchor.prevHash) {
    return bad(`says the chain continues after seq ${at - 1} with hash ${anchor.prevHash}; its signed checkpoint is for seq ${cp.seq} with hash ${cp.hash}`);
  }
  return undefined;
}

function notProven(ex: ChainExamination, evidence: readonly EvidenceCheckpoint[], keys: readonly CheckpointPublicKey[], newestOutside: number | undefined): string[] {
  const out: string[] = [];
  if (evidence.length === 0) {
    out.push(
      'No outside checkpoints were given (--checkpoints): the chain was checked as the database holds it. That the newest events were not deleted together with the counter, or that the whole chain was not rewritten by someone who can write to the database, cannot be proven without checkpoints kept outside it (the log stream, a witness file).',
    );
  } else if (newestOutside !== undefined && (ex.head?.seq ?? 0) > newestOutside) {
    out.push(
      `Events after seq ${newestOutside} (the newest outside checkpoint) are checked against the database alone: their deletion together with the counter, or a rewrite, cannot be proven until a later checkpoint is kept outside.`,
    );
  }
  if (keys.length === 0) {
    out.push('No public key was given (--public-key, or audit.checkpoints.keys in the settings): no signature was checked, neither of the retention anchor nor of stored checkpoints.');
  }
  if (ex.anchor && keys.length === 0) {
    out.push(`The chain starts at seq ${ex.anchor.seq} from a retention anchor whose signature was not checked: that events 1 to ${ex.anchor.seq - 1} were removed by retention is not proven.`);
  }
  if (ex.beforeStart.length > 0) {
    out.push(`${ex.beforeStart.length} checkpoint(s) are older than the retention anchor (seq ${ex.start.seq}): their events were pruned and could not be checked.`);
  }
  return out;
}
