/**
 * What `warden doctor` reports: findings, each tied to one of the seed's three rollout stages
 * (pilot control, operational hardening, governed scale), and the facts the checks read.
 */
import type { Config } from '../../config/config.js';

export type Severity = 'info' | 'warning' | 'error';

/** The seed's rollout stages, in the order a deployment reaches them. */
export const ROLLOUT_STAGES = ['pilot', 'hardening', 'governed'] as const;
export type RolloutStage = (typeof ROLLOUT_STAGES)[number];

export const STAGE_TITLES: Readonly<Record<RolloutStage, string>> = {
  pilot: 'pilot control',
  hardening: 'operational hardening',
  governed: 'governed scale',
};

export interface Finding {
  /** Stable, e.g. `auth.tls-off`: scripts and tests branch on it, never on the text. */
  readonly id: string;
  readonly stage: RolloutStage;
  readonly severity: Severity;
  /** What is wrong, in one sentence. */
  readonly problem: string;
  /** The config key path (or `store`, `gateway`) it is about. */
  readonly where: string;
  readonly fix: string;
}

/** A signing key as the store lists it (never its private part). */
export interface SigningKeyFact {
  readonly kid: string;
  readonly state: 'active' | 'rotated' | 'retired';
  readonly createdAt: number;
}

/** A held call's approval request, as much of it as the checks need. */
export interface ApprovalFact {
  /** `upstream.tool`. */
  readonly tool: string;
  /** The ids of the grants that allowed the call. */
  readonly grants: readonly string[];
  readonly createdAt: number;
}

/** What the store tells, read without writing a row. */
export interface StoreFacts {
  /** The built-in issuer's keys; undefined when no built-in issuer is configured. */
  readonly signingKeys: readonly SigningKeyFact[] | undefined;
  /** Approval requests created within the window. */
  readonly approvals: readonly ApprovalFact[];
  /** Whether any audit record, and any denial, was written within the window. */
  readonly auditRecordsInWindow: boolean;
  readonly denialsInWindow: boolean;
}

/** What a running gateway answered at /readyz. */
export interface GatewayFacts {
  readonly url: string;
  readonly readyStatus: number;
}

/** Facts about this host the config's paths are judged against. */
export interface HostFacts {
  /** Folders whose contents do not survive a reboot or a cleaner (os.tmpdir(), /tmp, …). */
  readonly temporaryDirs: readonly string[];
  /** Whether audit.hash_key_file exists. */
  readonly hashKeyFileExists: boolean;
}

/** Everything one doctor run reads. Store and gateway facts are undefined when not checked. */
export interface DoctorInput {
  readonly config: Config;
  readonly now: number;
  /** The window, in days, for "records in the last N days". */
  readonly windowDays: number;
  readonly host: HostFacts;
  readonly store: StoreFacts | undefined;
  readonly gateway: GatewayFacts | undefined;
  /** A config of another environment given with --compare. */
  readonly other: Config | undefined;
}

/** One family of checks: a pure function of the facts. */
export type DoctorCheck = (input: DoctorInput) => Finding[];
