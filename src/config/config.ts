/** The typed, frozen configuration every other module receives. */

export interface UpstreamCredentialConfig {
  readonly source:
    | { readonly kind: 'env'; readonly name: string }
    | { readonly kind: 'file'; readonly path: string };
  readonly header: string;
  readonly scheme: string;
}

export interface HttpUpstreamConfig {
  readonly kind: 'http';
  readonly name: string;
  readonly url: string;
  readonly credential: UpstreamCredentialConfig | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

export interface StdioUpstreamConfig {
  readonly kind: 'stdio';
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | undefined;
  readonly timeoutMs: number;
  readonly maxSessions: number;
  readonly restartBackoffMs: number;
  readonly restartBackoffMaxMs: number;
}

export type UpstreamConfig = HttpUpstreamConfig | StdioUpstreamConfig;

export interface Config {
  /** Where the config came from (a file path, or a label such as "demo"). */
  readonly source: string;
  readonly environment: string;
  readonly listen: {
    readonly host: string;
    readonly port: number;
    readonly allowedHosts: readonly string[];
    readonly allowedOrigins: readonly string[];
  };
  readonly store: string;
  readonly log: { readonly level: string };
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxSessions: number;
    readonly sessionIdleTimeoutMs: number;
    readonly shutdownGraceMs: number;
  };
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
}
