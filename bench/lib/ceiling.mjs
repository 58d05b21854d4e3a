#!/usr/bin/env node
// The ceiling: a bare Fastify HTTPS server with config-service's TLS settings (client
// certificate requested, TLS 1.2 minimum, the same certificate and key), answering every
// GET with the same bytes from memory, and nothing else: no audit, no log, no Git.
// Usage: node ceiling.mjs <cert> <key> <ca> <body-file> <media-type>
// Prints `listening <port>` on stdout.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const Fastify = createRequire(path.join(root, 'packages/config-service/package.json'))('fastify');
const [cert, key, ca, bodyFile, mediaType] = process.argv.slice(2);
const body = readFileSync(bodyFile);
const app = Fastify({
  https: { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
  keepAliveTimeout: 72_000,
});
app.get('/*', async (_req, reply) => reply.type(mediaType).send(body));
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening ${app.server.address().port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
