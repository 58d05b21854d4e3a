/**
 * The service settings (`service.yml`), one TypeBox schema with its derived type, so
 * there is no hand-written duplicate to drift (SPEC §9). Defaults live in the schema.
 */
import { Type, type Static } from '@sinclair/typebox';

const Millis = (def: number, description: string) => Type.Integer({ minimum: 0, default: def, description });

export const RepositorySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$', description: 'Repository name, used in logs, metrics and the mirror folder' }),
    path: Type.Optional(Type.String({ minLength: 1, description: 'A local Git repository read in place (bare or with a work tree; only committed objects are read)' })),
    url: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: "A remote HTTP(S) repository mirrored into the data directory; with '{app}' in its path, one repository per application (the template entry)",
      }),
    ),
    apps: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z0-9._*?-]{1,63}$' }), {
        minItems: 1,
        description: "Globs of the applications this repository holds ('*' any run of characters, '?' one); default ['*']. Two entries may not claim one application",
      }),
    ),
    maxMirrors: Type.Optional(Type.Integer({ minimum: 1, description: "Template entry only: most per-application repositories mirrored at once (default 100); the least recently used one is removed for a new one" })),
    evictAfterIdleMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Template entry only: a per-application mirror not read for this long is removed (default 86400000 = 24 h; 0 = never)' })),
    branch: Type.String({ default: 'main', description: 'Default branch, used when a request names no ref' }),
    layout: Type.Union([Type.Literal('folders'), Type.Literal('spring')], { default: 'folders' }),
    pollIntervalMs: Millis(30_000, 'How often a remote is fetched; 0 turns polling off'),
    refCacheMs: Millis(1_000, 'A local repository: how long a resolved ref is reused before its files are read again; 0 reads them on every request'),
    allowInsecureHttp: Type.Optional(
      Type.Boolean({
        description:
          "Allow credentials (user info in 'url', or 'auth') over a plain http:// URL, where anyone on the path can read them; default false: such an entry is refused at start-up. Meant for a Git server on the same host or inside an encrypted tunnel",
      }),
    ),
    webhookSecretFile: Type.Optional(Type.String({ description: 'File holding the shared secret that signs push webhooks (POST /v1/hooks/git)' })),
    auth: Type.Optional(
      Type.Object(
        {
          username: Type.Optional(Type.String()),
          passwordFile: Type.Optional(Type.String({ description: 'File holding the password or token' })),
          passwordEnv: Type.Optional(Type.String({ description: 'Environment variable holding the password or token' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * Limits on one configuration document (issue 7), also read by `config-service validate`
 * (`--config`, `CONFIG_SERVICE_DOCUMENTS_*`). See docs/configuration.md, "Limits".
 */
export const DocumentsSchema = Type.Object(
  {
    maxBytes: Type.Integer({ minimum: 1, default: 16 * 1024 * 1024, description: 'Most bytes in one document (file); larger files are refused with 422 before they are decoded' }),
    maxDepth: Type.Integer({ minimum: 1, maximum: 256, default: 64, description: 'Most levels of maps and lists inside each other, and of one property path (a.b[0].c is 4)' }),
    maxKeys: Type.Integer({ minimum: 1, default: 100_000, description: 'Most keys in one document: map keys plus list items, as written and after alias expansion (.properties: key lines)' }),
    maxAliases: Type.Integer({ minimum: 0, default: 1_000, description: 'Most YAML alias expansions (*name, <<: *name) in one document, each time one is followed' }),
    parseTimeoutMs: Type.Integer({ minimum: 1, default: 20_000, description: 'A document parsed in a worker thread must be done within this, ms (waiting for a worker included; keep it below server.requestTimeoutMs); an overrunning worker is stopped and the read fails with 422' }),
    workerThresholdBytes: Type.Integer({ minimum: 0, default: 16_384, description: 'Documents larger than this are parsed in a worker thread, off the event loop' }),
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'Most worker threads parsing documents at once (started on demand)' }),
    workerMemoryMb: Type.Integer({ minimum: 64, default: 1024, description: 'Heap limit of one parse worker thread, MiB; a worker that runs out is stopped and the read fails with 422' }),
  },
  { additionalProperties: false, default: {} },
);

export const SettingsSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
        workers: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 256,
            description:
              'API processes of `config-service serve` sharing the listener (Node cluster); default: the number of CPUs this process may use (os.availableParallelism()). 1 serves in the one process',
          }),
        ),
        tls: Type.Object(
          {
            cert: Type.String({ description: 'Server certificate chain (PEM file)' }),
            key: Type.String({ description: 'Server private key (PEM file)' }),
            clientCa: Type.String({ description: 'CA bundle that client certificates must chain to (PEM file)' }),
            crl: Type.Array(Type.String(), { default: [], description: 'CRL files (PEM) checked on every handshake' }),
          },
          { additionalProperties: false },
        ),
        requestTimeoutMs: Millis(30_000, 'Whole-request timeout'),
        headersTimeoutMs: Millis(10_000, 'Time a client has to send the request headers (slow-client defence)'),
        keepAliveTimeoutMs: Millis(72_000, 'Idle keep-alive connections are closed after this'),
        bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
        rateLimit: Type.Object(
          {
            max: Type.Integer({ minimum: 0, default: 600, description: 'Requests per identity per window; 0 turns the limit off' }),
            timeWindowMs: Millis(60_000, 'Rate-limit window'),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false },
    ),
    management: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8081 }),
      },
      { additionalProperties: false, default: {} },
    ),
    dataDir: Type.String({ default: './data', description: 'Mirrors and the SQLite audit file live here' }),
    repositories: Type.Array(RepositorySchema, { minItems: 1 }),
    git: Type.Object(
      {
        connectTimeoutMs: Millis(10_000, 'Each request of a fetch must connect (TCP and TLS) within this'),
        idleTimeoutMs: Millis(60_000, 'A fetch fails when the remote sends nothing for this long'),
        syncTimeoutMs: Millis(120_000, 'Deadline of one sync (all its requests); connect and idle timeouts must be below it'),
        retryMinMs: Type.Integer({ minimum: 1, default: 1_000, description: 'First retry delay after a failed sync (doubles per failure, with jitter)' }),
        retryMaxMs: Type.Integer({ minimum: 1, default: 300_000, description: 'Largest retry delay after failed syncs' }),
        staleAfterMs: Millis(0, 'Readiness: a repository whose last successful sync is older than this is not ready; 0 = never stale'),
      },
      { additionalProperties: false, default: {} },
    ),
    identity: Type.Object(
      {
        uriSan: Type.Optional(Type.String()),
        dnsSan: Type.Optional(Type.String()),
        commonName: Type.Optional(Type.String()),
      },
      { additionalProperties: false, default: {} },
    ),
    policy: Type.Object(
      {
        defaultOwnApp: Type.Boolean({ default: true }),
        grants: Type.Array(
          Type.Object(
            {
              subjects: Type.Array(Type.String(), { minItems: 1 }),
              kinds: Type.Optional(Type.Array(Type.Union([Type.Literal('certificate'), Type.Literal('jwt')]))),
              apps: Type.Array(Type.String(), { minItems: 1 }),
              profiles: Type.Optional(Type.Array(Type.String())),
              scopes: Type.Array(
                Type.Union([
                  Type.Literal('config:read'),
                  Type.Literal('secrets:read'),
                  Type.Literal('audit:read'),
                  Type.Literal('encrypt'),
                  Type.Literal('admin'),
                ]),
                { minItems: 1 },
              ),
            },
            { additionalProperties: false },
          ),
          { default: [] },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    jwt: Type.Optional(
      Type.Object(
        {
          publicKeyFile: Type.Optional(Type.String({ description: 'PEM public key that verifies tokens' })),
          jwksFile: Type.Optional(Type.String({ description: 'JWKS file (RFC 7517) whose keys verify tokens, chosen by kid' })),
          issuer: Type.Optional(Type.String()),
          audience: Type.Optional(Type.String()),
          algorithms: Type.Array(Type.String(), { default: ['RS256', 'ES256', 'EdDSA'] }),
          clockSkewSeconds: Type.Integer({ minimum: 0, default: 30 }),
        },
        { additionalProperties: false },
      ),
    ),
    secrets: Type.Object(
      {
        keys: Type.Array(
          Type.Object(
            {
              id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }),
              privateKeyFile: Type.Optional(Type.String({ description: 'RSA private key (PEM) that unwraps data keys; needed to decrypt' })),
              publicKeyFile: Type.Optional(Type.String({ description: 'RSA public key (PEM) that wraps data keys; needed to encrypt' })),
            },
            { additionalProperties: false },
          ),
          { default: [] },
        ),
        encryptKey: Type.Optional(Type.String({ description: 'Key id used by POST /v1/encrypt; default: the first key' })),
        requireBinding: Type.Boolean({
          default: false,
          description: 'Refuse unbound (version-1) {cipher} values when serving (422 secret_decrypt_failed); default false: they decrypt and validate warns',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    audit: Type.Object(
      {
        store: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], { default: 'sqlite' }),
        sqlitePath: Type.Optional(Type.String({ description: 'Default: <dataDir>/audit.sqlite' })),
        retentionDays: Type.Optional(
          Type.Integer({
            minimum: 1,
            description: 'Delete audit events older than this many days (checked hourly; the chain stays verifiable). Absent: keep forever',
          }),
        ),
        commitTimeoutMs: Type.Integer({
          minimum: 100,
          maximum: 60_000,
          default: 5000,
          description: "Most milliseconds a response waits for its audit event's commit; then it is answered 503 audit_unavailable and the store reported not ready",
        }),
        healthCheckIntervalMs: Type.Integer({
          minimum: 100,
          maximum: 300_000,
          default: 5000,
          description: 'How often the audit store is probed (a write transaction that writes nothing) when no event was committed since the last check, so readiness recovers without traffic',
        }),
        checkpoints: Type.Object(
          {
            keys: Type.Array(
              Type.Object(
                {
                  id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'Key id, named in every checkpoint it signs' }),
                  privateKeyFile: Type.Optional(Type.String({ description: 'Ed25519 private key (PEM) that signs checkpoints; kept outside the database' })),
                  privateKeyEnv: Type.Optional(Type.String({ description: 'Environment variable holding the Ed25519 private key (PEM), instead of a file' })),
                  publicKeyFile: Type.Optional(Type.String({ description: 'Ed25519 public key (PEM) of a retired key: verifies its old checkpoints, signs nothing' })),
                },
                { additionalProperties: false },
              ),
              { default: [], description: 'Keys of signed audit checkpoints (issue 13); empty: no checkpoint is signed' },
            ),
            signingKey: Type.Optional(Type.String({ description: 'Id of the key that signs new checkpoints; default: the first key with a private part' })),
            everyEvents: Type.Integer({ minimum: 1, default: 1000, description: 'Sign a checkpoint after this many events written by this process since its last one' }),
            intervalMs: Type.Integer({
              minimum: 100,
              default: 60_000,
              description: 'Sign a checkpoint this often (ms) when this process wrote events since its last one; one more is signed at shutdown',
            }),
          },
          { additionalProperties: false, default: {} },
        ),
        postgres: Type.Optional(
          Type.Object(
            {
              connectionStringEnv: Type.String({ default: 'CONFIG_SERVICE_AUDIT_DATABASE_URL', description: 'Environment variable holding the PostgreSQL connection string (it carries a password, so it is never a setting value)' }),
              table: Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', default: 'audit_events' }),
              poolSize: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
              connectTimeoutMs: Type.Integer({
                minimum: 100,
                maximum: 60_000,
                default: 5000,
                description: 'Most milliseconds opening a PostgreSQL connection (TCP, TLS, authentication) or waiting for a pooled one may take',
              }),
              queryTimeoutMs: Type.Integer({
                minimum: 100,
                maximum: 300_000,
                default: 5000,
                description:
                  "Most milliseconds one statement may run, waiting for the chain's lock included: PostgreSQL cancels it (statement_timeout), and the service drops a connection that has not answered 1000 ms later",
              }),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    documents: DocumentsSchema,
    webhooks: Type.Object(
      {
        deliveryWindowMs: Millis(600_000, 'A webhook delivery id seen within this window is answered as a duplicate, without a fetch; 0 turns the check off'),
      },
      { additionalProperties: false, default: {} },
    ),
    longPoll: Type.Object(
      {
        maxWaitMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 300_000, description: 'Longest wait= of a long-poll, ms; a longer wait= is cut to it' }),
        maxWaiters: Type.Integer({ minimum: 0, default: 50_000, description: 'Most long-poll requests held at once by this replica; beyond it 429 too_many_waiters' }),
        maxWaitersPerIdentity: Type.Integer({ minimum: 0, default: 1_000, description: 'Most long-poll requests held at once for one caller (certificate identity or token subject); beyond it 429 too_many_waiters' }),
        localPollMs: Type.Integer({ minimum: 100, default: 1_000, description: "How often a local repository's refs are read while long-polls wait on it, ms (never while none waits)" }),
      },
      { additionalProperties: false, default: {} },
    ),
    templates: Type.Object(
      {
        renderTimeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 2_000, description: 'Most milliseconds one template may render; then 422 template_invalid' }),
        maxOutputBytes: Type.Integer({ minimum: 1024, default: 1_048_576, description: 'Largest rendered template, bytes; a larger one is 422 template_invalid' }),
        maxTemplateBytes: Type.Integer({ minimum: 1024, default: 1_048_576, description: 'Largest template file (and partial), bytes; a larger one is 422 template_invalid' }),
      },
      { additionalProperties: false, default: {} },
    ),
    cache: Type.Object(
      {
        maxEntries: Type.Integer({ minimum: 0, default: 5000, description: 'Rendered responses kept, by what they depend on (the blobs and paths the application reads) and the request options' }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** Validated, defaulted service settings. */
export type Settings = Static<typeof SettingsSchema>;
/** The `documents:` section: limits on one configuration document. */
export type DocumentSettings = Static<typeof DocumentsSchema>;
/** One configured repository. */
export type RepositorySettings = Static<typeof RepositorySchema>;
/** Git fetch timeouts, retries and the readiness staleness rule. */
export type GitSettings = Static<typeof SettingsSchema>['git'];
