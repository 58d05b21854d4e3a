/**
 * Public surface of config-service as a library: the app factories, start-up and settings.
 */
export { buildApp, type AppDependencies } from './app.js';
export { buildManagementApp } from './management.js';
export { startService, type RunningService } from './server.js';
export { loadSettings, listEnvSettings, ENV_PREFIX } from './settings/load.js';
export type { Settings, RepositorySettings } from './settings/schema.js';
export { ERRORS, problemCode } from './errors.js';
export { signWebhook, type WebhookStyle } from './http/routes/hooks.js';
export { LongPollHub, type LongPollOptions, type WaitOutcome } from './http/long-poll.js';
export { PgSyncBus, syncChannel, type PgSyncBusOptions, type SyncSignals } from './git/sync-bus.js';
export { createCa, issueCertificate, createCrl, certificateSerial, type CertificateBundle, type KeyAlgorithm } from './pki/pki.js';
export { initPki, issueClientFiles } from './pki/files.js';
// The audit plugin's `declare module 'fastify'` block (app.auditStore, request.audit) comes with these types.
export type { AuditContext } from './http/plugins/audit.js';
export type { AuditEvent, AuditQuery, AuditStore } from './audit/types.js';
export { loadInjectorSettings, startInjector, jsonPointer, type InjectorSettings, type RunningInjector, type AdmissionReviewResponse } from './injector/index.js';
