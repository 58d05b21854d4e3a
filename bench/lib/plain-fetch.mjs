#!/usr/bin/env node
// The baseline of config-init: a dependency-free Node fetch-and-write. One mTLS GET,
// the body written to a temporary file, fsynced and renamed into place.
// Usage: node plain-fetch.mjs <url> <cert> <key> <ca> <out-file>
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import https from 'node:https';

const [url, cert, key, ca, out] = process.argv.slice(2);
https
  .get(url, { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca) }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      if (res.statusCode !== 200) {
        process.stderr.write(`status ${res.statusCode}\n`);
        process.exit(1);
      }
      const fd = openSync(`${out}.tmp`, 'w', 0o640);
      writeSync(fd, Buffer.concat(chunks));
      fsyncSync(fd);
      closeSync(fd);
      renameSync(`${out}.tmp`, out);
    });
  })
  .on('error', (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
