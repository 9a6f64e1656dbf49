// The demo's TLS material for `--protocol h2`: a self-signed certificate for 127.0.0.1 made for the
// run (self-signed.mjs), written to a temporary folder as key.pem and cert.pem for the provider
// processes, and removed at the end.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSigned } from './self-signed.mjs';

export async function tlsFiles() {
  const dir = await mkdtemp(join(tmpdir(), 'lossless-demo-tls-'));
  const { key, cert } = selfSigned({ commonName: 'lossless demo' });
  await writeFile(join(dir, 'key.pem'), key, { mode: 0o600 });
  await writeFile(join(dir, 'cert.pem'), cert);
  return { dir, cert: join(dir, 'cert.pem'), remove: () => rm(dir, { recursive: true, force: true }) };
}
