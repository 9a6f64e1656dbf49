// A self-signed certificate for 127.0.0.1 and localhost, made with node:crypto alone (no openssl
// binary, no key on disk): a P-256 key and an X.509 v3 certificate written in DER by hand. For demos
// and tests over TLS on loopback only; callers trust it by passing it as their CA.

import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/**
 * @param {{ commonName?: string, days?: number }} [options]
 * @returns {{ key: string, cert: string }} PEM private key and certificate
 */
export function selfSigned({ commonName = 'lossless loopback', days = 7 } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaWithSha256 = seq(oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
  const name = seq(set(seq(oid([0x55, 0x04, 0x03]), tlv(0x0c, Buffer.from(commonName)))));
  const now = Date.now();
  const serial = randomBytes(8);
  serial[0] &= 0x7f; // a positive INTEGER
  const subjectAltName = seq(
    oid([0x55, 0x1d, 0x11]),
    tlv(0x04, seq(tlv(0x87, Buffer.from([127, 0, 0, 1])), tlv(0x82, Buffer.from('localhost')))),
  );
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // version 3
    tlv(0x02, serial),
    ecdsaWithSha256,
    name,
    seq(utcTime(now - 60_000), utcTime(now + days * 86_400_000)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(subjectAltName)),
  );
  const signature = sign('sha256', tbs, privateKey); // DER-encoded ECDSA signature
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return {
    key: String(privateKey.export({ type: 'pkcs8', format: 'pem' })),
    cert: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
  };
}

/** One DER element: tag, length, contents. */
function tlv(tag, contents) {
  const n = contents.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), contents]);
}

function seq(...parts) {
  return tlv(0x30, Buffer.concat(parts));
}

function set(...parts) {
  return tlv(0x31, Buffer.concat(parts));
}

function oid(bytes) {
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime (YYMMDDHHMMSSZ): valid until 2049, far beyond a certificate made for one run. */
function utcTime(ms) {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.678Z
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return tlv(0x17, Buffer.from(text));
}
