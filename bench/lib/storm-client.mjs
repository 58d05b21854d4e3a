#!/usr/bin/env node
// Load generator for requests that ab cannot make (a different URL per request): a Node
// process, pinned by the caller to the load generator's CPU. Each request opens a fresh
// TLS connection with the client certificate (`agent: false`, no session reuse) unless
// `keepAlive` is set (then `concurrency` keep-alive connections).
// Usage: node storm-client.mjs <file holding the JSON options>
//   { origin, cert, key, paths: [...], concurrency, keepAlive, expect: 200 }
// Prints one JSON line: { completed, seconds, rps, p50, p99, statuses, clientCpuSeconds }.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import tlsModule from 'node:tls';

const opts = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// One secure context for every connection: building one per request (PEM parsing, key
// loading) would cost the client more than the handshake. Like ab, the client does not
// verify the server: Node would then also build the server's certificate chain as
// JavaScript objects for every connection (getPeerCertificate), a cost of the load
// generator, not of the server.
const secureContext = tlsModule.createSecureContext({ cert: readFileSync(opts.cert), key: readFileSync(opts.key) });
const tls = { secureContext, rejectUnauthorized: false };
const origin = new URL(opts.origin);
const agent = opts.keepAlive ? new https.Agent({ keepAlive: true, maxSockets: opts.concurrency, ...tls }) : false;
const statuses = {};
const latencies = [];

function one(path) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = https.request(
      { host: origin.hostname, port: origin.port, path, method: 'GET', agent, ...(agent === false && tls), headers: opts.keepAlive ? {} : { connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          resolve();
        });
      },
    );
    req.on('error', (err) => {
      statuses[err.code ?? 'error'] = (statuses[err.code ?? 'error'] ?? 0) + 1;
      resolve();
    });
    req.end();
  });
}

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let next = 0;
await Promise.all(
  Array.from({ length: opts.concurrency }, async () => {
    while (next < opts.paths.length) await one(opts.paths[next++]);
  }),
);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))];
const ok = statuses[opts.expect ?? 200] ?? 0;
process.stdout.write(
  `${JSON.stringify({ completed: ok, total: opts.paths.length, seconds, rps: ok / seconds, p50: q(50), p99: q(99), statuses, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
);
if (agent) agent.destroy();
