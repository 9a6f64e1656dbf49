// One self-signed certificate for 127.0.0.1 per test run (made with node:crypto, see
// examples/rolling-restart/self-signed.mjs: no openssl binary, no private key in the repository, no
// expiry to maintain). Callers trust it by passing `cert` as their CA.

import { selfSigned } from '../examples/rolling-restart/self-signed.mjs';

export const TLS: { readonly key: string; readonly cert: string } = selfSigned({ commonName: 'lossless tests' });
