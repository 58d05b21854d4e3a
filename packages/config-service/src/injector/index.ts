/**
 * `config-service injector`: the Kubernetes mutating admission webhook that adds
 * config-init to annotated pods (SPEC §7.1). Settings, annotation rules, the JSON Patch,
 * the AdmissionReview exchange and the HTTPS listener.
 */
export { InjectorSettingsSchema, loadInjectorSettings, INIT_FORMATS, type InjectorSettings, type LoadInjectorSettingsInput } from './settings.js';
export { readAnnotations, ANNOTATIONS, type InjectionRequest, type AnnotationResult } from './annotations.js';
export { injectionPatch, initContainer, identityVolume, jsonPointer, INIT_CONTAINER_NAME, CONFIG_VOLUME, IDENTITY_VOLUME, type PatchOperation, type PatchResult, type PodLike } from './patch.js';
export { parseAdmissionReview, reviewPod, type AdmissionRequest, type AdmissionResponse, type AdmissionReviewResponse, type ReviewOutcome } from './review.js';
export { buildInjectorApp, startInjector, type RunningInjector } from './server.js';
