/** A self-signed certificate for 127.0.0.1 and localhost, made with node:crypto alone. */
export function selfSigned(options?: { commonName?: string; days?: number }): { key: string; cert: string };
