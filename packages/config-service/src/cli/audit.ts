/**
 * The audit commands added for outside evidence (issue 13): what `audit verify` checks
 * besides the chain, `audit keygen` (an Ed25519 checkpoint key pair) and `audit witness`
 * (keeps the service's signed checkpoints in a file elsewhere). `audit verify` and `audit
 * query` themselves are declared in `main.ts`.
 *
 * ```
 * config-service audit keygen --dir ./keys --id cp-2026
 * config-service audit witness --url https://config.internal:8443 --out witness.ndjson \
 *   --public-key cp-2026.public.pem --ca ca.crt --cert auditor.crt --key auditor.key
 * config-service audit verify --config service.yml --checkpoints witness.ndjson --public-key cp-2026.public.pem
 * ```
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { AuditStore, AuditVerdict, CheckpointPublicKey, EvidenceCheckpoint } from '../audit/index.js';
import { CHECKPOINT_KEY_ID, parseCheckpointEvidence, readPublicKeyFiles } from '../audit/checkpoint.js';
import { auditCheckpointKeys, type AuditSettingsInput } from '../audit/index.js';
import { verifyAuditStore } from '../audit/verify-report.js';
import { runWitness, type WitnessResult } from '../audit/witness.js';
import { CFG_ERR_INVALID_REQUEST } from '../errors.js';

/** Inputs of {@link verifyCommand}. */
export interface VerifyCommandInput {
  /** The loaded settings (their `audit.checkpoints.keys` give the public keys when `publicKeyFiles` is empty). */
  settings?: { readonly audit: Readonly<AuditSettingsInput> };
  /** `--checkpoints` files (NDJSON: the log stream, a witness file, the endpoint's output). */
  checkpointFiles?: readonly string[];
  /** `--public-key` files. */
  publicKeyFiles?: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * `audit verify`: the verdict of `store` against its chain, its anchor and checkpoints, and
 * the outside checkpoint files. The public keys are those of `--public-key`, else those of
 * `audit.checkpoints.keys` in the settings.
 * @throws CFG_ERR_INVALID_REQUEST for an unreadable or malformed file, or `--checkpoints`
 *   without any public key; CFG_ERR_SETTINGS_INVALID for unusable keys in the settings.
 */
export async function verifyCommand(store: AuditStore, input: VerifyCommandInput): Promise<AuditVerdict> {
  const files = input.checkpointFiles ?? [];
  let keys: CheckpointPublicKey[] = [];
  if (input.publicKeyFiles && input.publicKeyFiles.length > 0) keys = readPublicKeyFiles(input.publicKeyFiles);
  else if (input.settings) keys = auditCheckpointKeys(input.settings, input.env).publicKeys;
  if (files.length > 0 && keys.length === 0) {
    throw new CFG_ERR_INVALID_REQUEST('--checkpoints needs --public-key (or audit.checkpoints.keys in the settings): a checkpoint proves nothing until its signature is checked');
  }
  const evidence: EvidenceCheckpoint[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CFG_ERR_INVALID_REQUEST(`--checkpoints ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const found = parseCheckpointEvidence(text, file);
    if (found.checkpoints.length === 0) throw new CFG_ERR_INVALID_REQUEST(`--checkpoints ${file}: no checkpoint in it (${found.ignoredLines} other line(s))`);
    evidence.push(...found.checkpoints);
  }
  return verifyAuditStore(store, { evidence, keys });
}

/** Writes an Ed25519 key pair; returns the two paths. @throws CFG_ERR_INVALID_REQUEST for a bad id or existing files. */
export function writeCheckpointKeyPair(dir: string, id: string, force: boolean): { privateKey: string; publicKey: string } {
  if (!CHECKPOINT_KEY_ID.test(id)) throw new CFG_ERR_INVALID_REQUEST('--id must match ^[A-Za-z0-9._-]{1,64}$');
  const privateFile = path.join(dir, `${id}.private.pem`);
  const publicFile = path.join(dir, `${id}.public.pem`);
  for (const f of [privateFile, publicFile]) {
    if (!force && existsSync(f)) throw new CFG_ERR_INVALID_REQUEST(`${f} exists; pass --force to replace it`);
  }
  mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  return { privateKey: privateFile, publicKey: publicFile };
}

/** Where the commands write, and when the witness stops (wired to the process by `main.ts`). */
export interface AuditCommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Aborted on SIGTERM/SIGINT. */
  signal: AbortSignal;
}

interface WitnessFlags {
  url: string;
  out: string;
  publicKey: string[];
  ca?: string;
  cert?: string;
  key?: string;
  tokenFile?: string;
  intervalMs: string;
  once: boolean;
}

function readOption(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CFG_ERR_INVALID_REQUEST(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Adds `audit keygen` and `audit witness` to the `audit` command.
 *
 * - `audit keygen --dir <dir> --id <id> [--force]`: writes an Ed25519 pair
 *   `<id>.private.pem` (0600, for `audit.checkpoints.keys[].privateKeyFile`) and
 *   `<id>.public.pem` (for auditors and witnesses), prints both paths.
 * - `audit witness --url <api url> --out <file> --public-key <pem...> [--ca <pem>]
 *   [--cert <pem> --key <pem> | --token-file <file>] [--interval-ms <ms>] [--once]`: see
 *   `audit/witness.ts`. Exit code 1 when a checkpoint was refused (or, with `--once`, the
 *   poll failed); 0 otherwise, also when stopped by SIGTERM/SIGINT.
 *
 * @param io the output streams and the witness's stop signal, asked for when a command runs (from `main.ts`).
 * @param setExitCode sets the process exit code (from `main.ts`).
 */
export function registerAuditCommands(audit: Command, io: () => AuditCommandIo, setExitCode: (code: number) => void): void {
  audit
    .command('keygen')
    .description('Create an Ed25519 key pair that signs audit checkpoints (audit.checkpoints.keys)')
    .requiredOption('-d, --dir <dir>', 'output folder')
    .requiredOption('--id <id>', 'key id, named in every checkpoint it signs')
    .option('--force', 'replace existing files', false)
    .action((opts: { dir: string; id: string; force: boolean }) => {
      const files = writeCheckpointKeyPair(opts.dir, opts.id, opts.force);
      io().stdout.write(`${files.privateKey}\n${files.publicKey}\n`);
    });

  audit
    .command('witness')
    .description("Poll a service's signed audit checkpoints and append the new, verified ones to a file kept elsewhere")
    .requiredOption('--url <url>', 'the API listener, e.g. https://config.internal:8443')
    .requiredOption('--out <file>', 'NDJSON file the checkpoints are appended to (resumed from when it exists)')
    .requiredOption('--public-key <file...>', 'Ed25519 public key(s) the checkpoints must be signed with')
    .option('--ca <file>', 'CA bundle (PEM) that issued the service certificate')
    .option('--cert <file>', 'client certificate (PEM) of an identity with the audit:read scope')
    .option('--key <file>', 'its private key (PEM)')
    .option('--token-file <file>', 'file holding a bearer token with the audit:read scope (instead of --cert/--key)')
    .option('--interval-ms <ms>', 'time between polls', '30000')
    .option('--once', 'poll once and exit', false)
    .action(async (opts: WitnessFlags) => {
      const intervalMs = Number(opts.intervalMs);
      if (!Number.isInteger(intervalMs) || intervalMs < 100) throw new CFG_ERR_INVALID_REQUEST('--interval-ms must be an integer >= 100');
      if ((opts.cert === undefined) !== (opts.key === undefined)) throw new CFG_ERR_INVALID_REQUEST('--cert and --key go together');
      let url: URL;
      try {
        url = new URL(opts.url);
      } catch {
        throw new CFG_ERR_INVALID_REQUEST('--url must be an https:// URL');
      }
      if (url.protocol !== 'https:') throw new CFG_ERR_INVALID_REQUEST('--url must be an https:// URL');
      const { stderr, signal } = io();
      const result: WitnessResult = await runWitness({
        url: url.href,
        out: opts.out,
        keys: readPublicKeyFiles(opts.publicKey),
        ...(opts.ca !== undefined && { ca: readOption(opts.ca, '--ca') }),
        ...(opts.cert !== undefined && { cert: readOption(opts.cert, '--cert') }),
        ...(opts.key !== undefined && { key: readOption(opts.key, '--key') }),
        ...(opts.tokenFile !== undefined && { token: readOption(opts.tokenFile, '--token-file').toString('utf8').trim() }),
        intervalMs,
        once: opts.once,
        signal,
        report: (line) => stderr.write(`config-service audit witness: ${line}\n`),
      });
      stderr.write(`config-service audit witness: ${result.appended} appended, ${result.refused} refused, ${result.failedPolls} failed poll(s)\n`);
      if (result.refused > 0 || (opts.once && result.failedPolls > 0)) setExitCode(1);
    });
}
