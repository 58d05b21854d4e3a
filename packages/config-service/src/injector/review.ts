/**
 * One `admission.k8s.io/v1` AdmissionReview in, one out (Kubernetes "Dynamic Admission
 * Control": the response echoes `request.uid`; a patch is a base64 JSON Patch with
 * `patchType: JSONPatch`; a denial carries `status.code` and `status.message`, which
 * kubectl shows as `admission webhook "…" denied the request: <message>`).
 */
import { CFG_ERR_ADMISSION_REVIEW_INVALID } from '../errors.js';
import { readAnnotations } from './annotations.js';
import { injectionPatch, type PodLike } from './patch.js';
import type { InjectorSettings } from './settings.js';

/** The parts of an AdmissionRequest the injector reads. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: string;
  namespace?: string;
  name?: string;
  dryRun?: boolean;
  object?: PodLike | null;
  oldObject?: unknown;
}

/** The AdmissionResponse the injector writes. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch document. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

/** A whole AdmissionReview answer. */
export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** What happened to one review, for the log (no pod content). */
export interface ReviewOutcome {
  uid: string;
  namespace: string | undefined;
  /** `name`, or `generateName*` for a pod that has none yet. */
  pod: string | undefined;
  app: string | undefined;
  result: 'injected' | 'skipped' | 'denied' | 'ignored';
  reason: string;
  dryRun: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks the shape of a received AdmissionReview.
 * @throws CFG_ERR_ADMISSION_REVIEW_INVALID (400) naming the field that is wrong.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new CFG_ERR_ADMISSION_REVIEW_INVALID('the body is not a JSON object');
  if (body.apiVersion !== 'admission.k8s.io/v1') throw new CFG_ERR_ADMISSION_REVIEW_INVALID(`apiVersion must be admission.k8s.io/v1 (the webhook's admissionReviewVersions: ["v1"])`);
  if (body.kind !== 'AdmissionReview') throw new CFG_ERR_ADMISSION_REVIEW_INVALID('kind must be AdmissionReview');
  const req = body.request;
  if (!isObject(req)) throw new CFG_ERR_ADMISSION_REVIEW_INVALID('request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') throw new CFG_ERR_ADMISSION_REVIEW_INVALID('request.uid is missing');
  if (!isObject(req.kind) || typeof req.kind.kind !== 'string') throw new CFG_ERR_ADMISSION_REVIEW_INVALID('request.kind is missing');
  if (typeof req.operation !== 'string') throw new CFG_ERR_ADMISSION_REVIEW_INVALID('request.operation is missing');
  if (req.object !== undefined && req.object !== null && !isObject(req.object)) throw new CFG_ERR_ADMISSION_REVIEW_INVALID('request.object is not an object');
  return req as unknown as AdmissionRequest;
}

/**
 * Decides one admission request: pods created with `<prefix>/app` get the injection patch,
 * bad annotations are denied, everything else is allowed unchanged. `dryRun` requests get
 * the same answer (the injector has no side effects: `sideEffects: None`).
 */
export function reviewPod(req: AdmissionRequest, settings: InjectorSettings): { review: AdmissionReviewResponse; outcome: ReviewOutcome } {
  const pod = req.object ?? undefined;
  const outcome: ReviewOutcome = {
    uid: req.uid,
    namespace: req.namespace ?? pod?.metadata?.namespace,
    pod: req.name ?? pod?.metadata?.name ?? (pod?.metadata?.generateName !== undefined ? `${pod.metadata.generateName}*` : undefined),
    app: undefined,
    result: 'ignored',
    reason: '',
    dryRun: req.dryRun === true,
  };
  const answer = (response: Omit<AdmissionResponse, 'uid'>) => ({
    review: { apiVersion: 'admission.k8s.io/v1' as const, kind: 'AdmissionReview' as const, response: { uid: req.uid, ...response } },
    outcome,
  });
  if (req.kind.kind !== 'Pod' || (req.kind.group ?? '') !== '' || req.operation !== 'CREATE' || !pod) {
    outcome.reason = `${req.operation} ${req.kind.kind}: only pod creation is mutated`;
    return answer({ allowed: true });
  }
  const read = readAnnotations(pod.metadata?.annotations, settings);
  if (read.kind === 'deny') {
    outcome.result = 'denied';
    outcome.reason = read.message;
    return answer({ allowed: false, status: { code: 400, message: read.message } });
  }
  if (read.kind === 'skip') {
    outcome.result = read.reason === 'not-annotated' ? 'ignored' : 'skipped';
    outcome.reason = read.reason;
    return answer({ allowed: true, ...(read.warnings.length && { warnings: read.warnings }) });
  }
  outcome.app = read.request.app;
  const built = injectionPatch(pod, read.request, settings);
  if (built.kind === 'deny') {
    outcome.result = 'denied';
    outcome.reason = built.message;
    return answer({ allowed: false, status: { code: 400, message: built.message } });
  }
  if (built.kind === 'skip') {
    outcome.result = 'skipped';
    outcome.reason = built.warnings.join('; ');
    return answer({ allowed: true, warnings: built.warnings });
  }
  outcome.result = 'injected';
  outcome.reason = `${built.patch.length} operations`;
  return answer({
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(built.patch)).toString('base64'),
    auditAnnotations: { app: read.request.app },
    ...(built.warnings.length && { warnings: built.warnings }),
  });
}
