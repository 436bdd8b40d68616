/** Runs every check and judges the rollout stage the setup meets. */
import {
  ROLLOUT_STAGES,
  type DoctorCheck,
  type DoctorInput,
  type Finding,
  type RolloutStage,
} from './finding.js';
import { DOCTOR_CHECKS } from './registry.js';

export interface DoctorReport {
  readonly environment: string;
  readonly findings: readonly Finding[];
  /** The highest stage whose checks (and those of every stage before it) found nothing to fix. */
  readonly stageMet: RolloutStage | undefined;
  /** What was not looked at (the store, a gateway): its checks were skipped. */
  readonly notChecked: readonly string[];
}

export function runDoctor(
  input: DoctorInput,
  checks: readonly DoctorCheck[] = DOCTOR_CHECKS,
): DoctorReport {
  const findings = checks.flatMap((check) => check(input));
  const notChecked = [
    ...(input.store === undefined ? ['store'] : []),
    ...(input.gateway === undefined ? ['gateway'] : []),
  ];
  return {
    environment: input.config.environment,
    findings,
    stageMet: judgeStage(findings),
    notChecked,
  };
}

export function judgeStage(findings: readonly Finding[]): RolloutStage | undefined {
  let met: RolloutStage | undefined;
  for (const stage of ROLLOUT_STAGES) {
    if (findings.some((finding) => finding.stage === stage && finding.severity !== 'info')) break;
    met = stage;
  }
  return met;
}

/** 0 clean (info at most), 1 a warning or worse. "Could not check" (2) is the shell's to say. */
export function doctorExitCode(report: DoctorReport): 0 | 1 {
  return report.findings.some((finding) => finding.severity !== 'info') ? 1 : 0;
}
