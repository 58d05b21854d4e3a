/** Shared helpers of the end-to-end tests. */
export * from './certs.ts';
export * from './https.ts';
export * from './service.ts';
export * from './init.ts';
export * from './git-repo.ts';
export * from './git-http-server.ts';
export * from './git-remote.ts';
export * from './jwt.ts';
export * from './tcp-proxy.ts';
export * from './service-cli.ts';
export * from './cli.ts';
export * from './dockerfile.ts';
export * from './k8s.ts';
