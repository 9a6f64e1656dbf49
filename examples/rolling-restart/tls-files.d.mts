/** A certificate for this run, written as key.pem and cert.pem in a temporary folder. */
export function tlsFiles(): Promise<{ dir: string; cert: string; remove: () => Promise<void> }>;
