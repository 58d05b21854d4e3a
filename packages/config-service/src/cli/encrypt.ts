/**
 * `config-service encrypt` (SPEC §2.5, §9): offline encryption with a public key,
 * `encrypt keygen` for development key pairs, and `encrypt rebind` to bind existing
 * values to their application. No service is needed.
 *
 * ```
 * config-service encrypt --public-key k2.public.pem --key-id k2 --app orders --value 's3cret'
 * printf %s 's3cret' | config-service encrypt --public-key k2.public.pem --key-id k2 --shared
 * config-service encrypt keygen --dir ./keys --id k2
 * config-service encrypt rebind --private-key k2.private.pem --key-id k2 --repo . orders
 * ```
 */
import { Option, type Command } from 'commander';
import type { Layout } from '../config/app-config.js';
import { appBinding, SHARED_BINDING, type SecretBinding } from '../secrets/envelope.js';
import { encryptWithKeyFile, generateKeyFiles, keyFileFor, readPrivateKeyFile } from '../secrets/keygen.js';
import { loadSecretKeySettings } from '../settings/load.js';
import { formatRebindReport, rebindSecrets } from '../secrets/rebind.js';

/** Where the command reads the value and writes its output (injectable for tests). */
export interface EncryptCommandIo {
  /** The plaintext source when `--value` is not given. Default `process.stdin`. */
  readonly stdin: AsyncIterable<Buffer | string>;
  /** Output. Default `process.stdout`. */
  readonly stdout: { write(text: string): unknown };
  /** Warnings. Default `process.stderr`. */
  readonly stderr: { write(text: string): unknown };
}

const APP_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;

async function readAll(input: AsyncIterable<Buffer | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Adds `encrypt` (and `encrypt keygen`) to the program.
 *
 * - `encrypt --public-key <pem> --key-id <id> [--app <name> | --shared] [--value <v>] [--keep-newline]`:
 *   prints `{cipher}{key:<id>}{app:<name>}<base64>` (bound to the application),
 *   `{cipher}{key:<id>}{shared}<base64>` (bound to the shared documents) or, with
 *   neither, an unbound `{cipher}{key:<id>}<base64>` and a warning on stderr; then a
 *   newline. Without `--value` the value is read from stdin; one trailing newline (`\n` or
 *   `\r\n`) is dropped unless `--keep-newline`. `--public-key` may also name a private key
 *   PEM (its public half is used).
 * - `encrypt keygen --dir <dir> --id <id> [--force]`: writes an RSA-3072 pair
 *   `<id>.private.pem` (0600) and `<id>.public.pem`, prints both paths.
 * - `encrypt rebind --private-key <pem> --key-id <id> [--repo <dir>] [--layout folders|spring]
 *   [--app <name>] [--dry-run] [<path>...]`: rewrites the unbound values of key `<id>` in
 *   the documents under the paths (default: the whole repository) bound to their
 *   document's application (`secrets/rebind.ts`); prints one line per value (file, line,
 *   key; never a value) and a summary. Throws (exit 1) when a value could not be rebound.
 *
 * Errors (unreadable or unfit key, malformed id or name, existing files) are
 * `CFG_ERR_INVALID_REQUEST` and never quote the value or key material. The program gets
 * positional options, so `encrypt rebind --key-id` is the subcommand's option.
 */
export function registerEncryptCommand(program: Command, io?: Partial<EncryptCommandIo>): void {
  const stdin = (): AsyncIterable<Buffer | string> => io?.stdin ?? process.stdin;
  const stdout = (): EncryptCommandIo['stdout'] => io?.stdout ?? process.stdout;
  const stderr = (): EncryptCommandIo['stderr'] => io?.stderr ?? process.stderr;
  // Options after a subcommand belong to it (`encrypt rebind --key-id k2`), not to `encrypt`.
  program.enablePositionalOptions();

  const encrypt = program
    .command('encrypt')
    .enablePositionalOptions()
    .description('Encrypt a configuration value offline into {cipher}{key:<id>}{app:<name>}<base64> (RSA-OAEP-256 + AES-256-GCM, bound to the application)')
    .option('--public-key <pem>', 'RSA public key (PEM) of the key; a private key PEM works too')
    .option('--key-id <id>', 'the id the service knows this key by (secrets.keys[].id)')
    .option('-c, --config <file>', "the service settings file: --key-id must be one of its secrets.keys, and --public-key that key's (default: its key file)")
    .option('--app <name>', 'bind the value to this application: it decrypts only in its own documents')
    .option('--shared', 'bind the value to the shared application*.yml documents at the repository root')
    .option('--value <value>', 'the value to encrypt; default: read stdin (the value then stays out of shell history)')
    .option('--keep-newline', 'keep a trailing newline of stdin', false)
    .action(async (opts: { publicKey?: string; keyId?: string; config?: string; app?: string; shared?: boolean; value?: string; keepNewline: boolean }, cmd: Command) => {
      if (!opts.keyId || (!opts.publicKey && !opts.config)) cmd.error('error: --key-id <id> and --public-key <pem> (or --config naming the key) are required', { exitCode: 64 });
      const configured = opts.config === undefined ? undefined : loadSecretKeySettings(opts.config, process.env);
      const keyFile = await keyFileFor(opts.keyId!, opts.publicKey, configured);
      if (opts.app !== undefined && opts.shared === true) cmd.error('error: give --app <name> or --shared, not both', { exitCode: 64 });
      if (opts.app !== undefined && (!APP_NAME.test(opts.app) || opts.app.includes('..'))) cmd.error('error: --app must be a valid application name', { exitCode: 64 });
      const binding: SecretBinding | undefined = opts.app !== undefined ? appBinding(opts.app) : opts.shared === true ? SHARED_BINDING : undefined;
      let value = opts.value;
      if (value === undefined) {
        value = await readAll(stdin());
        if (!opts.keepNewline) value = value.replace(/\r?\n$/, '');
      }
      const cipher = await encryptWithKeyFile(value, keyFile, opts.keyId!, binding);
      if (binding === undefined) {
        stderr().write('config-service: warning: the value is not bound to an application and decrypts in any document; add --app <name> or --shared (docs/secrets.md, "Binding")\n');
      }
      stdout().write(`${cipher}\n`);
    });

  encrypt
    .command('keygen')
    .description('Create an RSA-3072 key pair for development: <id>.private.pem (0600) and <id>.public.pem')
    .requiredOption('-d, --dir <dir>', 'output folder')
    .requiredOption('--id <id>', 'key id (secrets.keys[].id)')
    .option('--force', 'replace existing files', false)
    .action(async (opts: { dir: string; id: string; force: boolean }) => {
      const files = await generateKeyFiles(opts.dir, opts.id, { force: opts.force });
      stdout().write(`${files.privateKeyFile}\n${files.publicKeyFile}\n`);
    });

  encrypt
    .command('rebind')
    .description('Bind the unbound {cipher} values of one key to the application of their document, in place (every other byte unchanged)')
    .argument('[paths...]', 'documents or folders of the repository to migrate (default: the whole repository)')
    .requiredOption('--private-key <pem>', 'RSA private key (PEM) of the key: decrypts the old values, its public half encrypts the new ones')
    .requiredOption('--key-id <id>', 'the id of that key (secrets.keys[].id); values of other keys are skipped')
    .option('--repo <dir>', 'the repository working tree (its root)', '.')
    .addOption(new Option('--layout <layout>', 'repository layout').choices(['folders', 'spring']).default('folders'))
    .option('--app <name>', "spring layout only: the application of the documents given, when their names do not tell it")
    .option('--dry-run', 'print what would change; write nothing', false)
    .action(async (paths: string[], opts: { privateKey: string; keyId: string; repo: string; layout: Layout; app?: string; dryRun: boolean }) => {
      const report = await rebindSecrets({
        root: opts.repo,
        paths,
        layout: opts.layout,
        ...(opts.app !== undefined && { app: opts.app }),
        keyId: opts.keyId,
        privateKey: await readPrivateKeyFile(opts.privateKey),
        dryRun: opts.dryRun,
      });
      stdout().write(formatRebindReport(report, opts.dryRun));
      const errors = report.entries.filter((e) => e.outcome === 'error').length + report.fileErrors.length;
      if (errors > 0) throw new Error(`rebind: ${errors} value(s) or file(s) could not be rebound (listed above)`);
    });
}
