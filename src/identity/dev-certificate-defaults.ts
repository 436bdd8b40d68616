/**
 * What `warden certs dev` writes certificates for when not told otherwise. Apart from the
 * certificate code, so the CLI can show them in its help without loading it.
 */
export const DEFAULT_DEV_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];
export const DEFAULT_TRUST_DOMAIN = 'warden.local';
