/**
 * `config-service jwt keygen` and `config-service jwt issue`: development tokens for
 * calling the API without a certificate (docs/security.md, "Development tokens"). The
 * work is in `pki/jwt.ts`; this file parses the options and prints.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CFG_ERR_USAGE } from '../errors.js';

/** Splits `a,b c` (commas or white space) into its items. */
function items(text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).filter((s) => s !== '');
}

/** Adds `jwt keygen --dir <dir> [--force]` and `jwt issue --key <file> --sub <s> --scope <s> [--apps <globs>] [--ttl <d>] [--issuer] [--audience] [--kid]`. */
export function registerJwtCommand(program: Command): void {
  const jwt = program.command('jwt').description('Development JWTs for tooling and people (production tokens come from your identity provider)');
  jwt
    .command('keygen')
    .description('Create an ECDSA P-256 key pair: jwt-private.pem (0600) signs tokens, jwt-public.pem is the service\'s jwt.publicKeyFile')
    .requiredOption('-d, --dir <dir>', 'output folder')
    .option('--force', 'replace an existing key pair', false)
    .action(async (opts: { dir: string; force: boolean }) => {
      const { generateJwtKeys } = await import('../pki/jwt.js');
      const files = await generateJwtKeys(opts.dir, { force: opts.force });
      process.stdout.write(`${files.privateKey}\n${files.publicKey}\n`);
    });
  jwt
    .command('issue')
    .description('Print a signed token with the claims the service reads (sub, scope, apps, iss, aud, iat, exp)')
    .requiredOption('--key <file>', 'private key (PEM) whose public key is the service\'s jwt.publicKeyFile')
    .requiredOption('--sub <subject>', 'who calls: the audit events\' actor.subject')
    .requiredOption('--scope <scopes>', 'space- or comma-separated: config:read secrets:read audit:read encrypt admin')
    .option('--apps <globs>', "space- or comma-separated application globs ('*' = every application); none by default")
    .option('--ttl <duration>', 'lifetime: seconds, or 15m, 1h, ... (at most 24h)', '1h')
    .option('--issuer <iss>', 'iss claim (needed when the service sets jwt.issuer)')
    .option('--audience <aud>', 'aud claim (needed when the service sets jwt.audience)')
    .option('--kid <id>', 'kid header (for a service that reads a JWKS file)')
    .action(async (opts: { key: string; sub: string; scope: string; apps?: string; ttl: string; issuer?: string; audience?: string; kid?: string }) => {
      const { issueDevToken, parseTtl } = await import('../pki/jwt.js');
      let pem: Buffer;
      try {
        pem = readFileSync(opts.key);
      } catch (err) {
        throw new CFG_ERR_USAGE(`--key: cannot read ${opts.key} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      const token = await issueDevToken(pem, {
        sub: opts.sub,
        scopes: items(opts.scope),
        apps: items(opts.apps),
        ttlSeconds: parseTtl(opts.ttl),
        ...(opts.issuer !== undefined && { issuer: opts.issuer }),
        ...(opts.audience !== undefined && { audience: opts.audience }),
        ...(opts.kid !== undefined && { kid: opts.kid }),
      });
      process.stdout.write(`${token}\n`);
    });
}
