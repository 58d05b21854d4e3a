/**
 * `config-service encrypt` (SPEC §2.5, §9): offline encryption with a public key, and
 * `encrypt keygen` for development key pairs. No service is needed.
 *
 * ```
 * config-service encrypt --public-key k2.public.pem --key-id k2 --value 's3cret'
 * printf %s 's3cret' | config-service encrypt --public-key k2.public.pem --key-id k2
 * config-service encrypt keygen --dir ./keys --id k2
 * ```
 */
import type { Command } from 'commander';
import { encryptWithKeyFile, generateKeyFiles } from '../secrets/keygen.js';

/** Where the command reads the value and writes its output (injectable for tests). */
export interface EncryptCommandIo {
  /** The plaintext source when `--value` is not given. Default `process.stdin`. */
  readonly stdin: AsyncIterable<Buffer | string>;
  /** Output. Default `process.stdout`. */
  readonly stdout: { write(text: string): unknown };
}

async function readAll(input: AsyncIterable<Buffer | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Adds `encrypt` (and `encrypt keygen`) to the program.
 *
 * - `encrypt --public-key <pem> --key-id <id> [--value <v>] [--keep-newline]`: prints
 *   `{cipher}{key:<id>}<base64>` and a newline. Without `--value` the value is read from
 *   stdin; one trailing newline (`\n` or `\r\n`) is dropped unless `--keep-newline`.
 *   `--public-key` may also name a private key PEM (its public half is used).
 * - `encrypt keygen --dir <dir> --id <id> [--force]`: writes an RSA-3072 pair
 *   `<id>.private.pem` (0600) and `<id>.public.pem`, prints both paths.
 *
 * Errors (unreadable or unfit key, malformed id, existing files) are
 * `CFG_ERR_INVALID_REQUEST` and never quote the value or key material.
 */
export function registerEncryptCommand(program: Command, io?: Partial<EncryptCommandIo>): void {
  const stdin = (): AsyncIterable<Buffer | string> => io?.stdin ?? process.stdin;
  const stdout = (): EncryptCommandIo['stdout'] => io?.stdout ?? process.stdout;

  const encrypt = program
    .command('encrypt')
    .description('Encrypt a configuration value offline into {cipher}{key:<id>}<base64> (RSA-OAEP-256 + AES-256-GCM)')
    .option('--public-key <pem>', 'RSA public key (PEM) of the key; a private key PEM works too')
    .option('--key-id <id>', 'the id the service knows this key by (secrets.keys[].id)')
    .option('--value <value>', 'the value to encrypt; default: read stdin (the value then stays out of shell history)')
    .option('--keep-newline', 'keep a trailing newline of stdin', false)
    .action(async (opts: { publicKey?: string; keyId?: string; value?: string; keepNewline: boolean }, cmd: Command) => {
      if (!opts.publicKey || !opts.keyId) cmd.error('error: --public-key <pem> and --key-id <id> are required', { exitCode: 64 });
      let value = opts.value;
      if (value === undefined) {
        value = await readAll(stdin());
        if (!opts.keepNewline) value = value.replace(/\r?\n$/, '');
      }
      stdout().write(`${await encryptWithKeyFile(value, opts.publicKey!, opts.keyId!)}\n`);
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
}
