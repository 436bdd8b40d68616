/** The doctor report as an operator reads it: findings grouped by stage, then the verdict. */
import { ROLLOUT_STAGES, STAGE_TITLES } from '../governance/doctor/finding.js';
import type { DoctorReport } from '../governance/doctor/run-doctor.js';
import { formatTable } from './format-table.js';

const SEVERITY_ORDER = ['error', 'warning', 'info'];

export function formatDoctorReport(report: DoctorReport): string {
  const parts: string[] = [`warden doctor: environment ${report.environment}\n`];
  for (const stage of ROLLOUT_STAGES) {
    const findings = report.findings
      .filter((finding) => finding.stage === stage)
      .sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity));
    if (findings.length === 0) {
      parts.push(`\n${STAGE_TITLES[stage]}: no findings\n`);
      continue;
    }
    parts.push(`\n${STAGE_TITLES[stage]}:\n`);
    const rows = findings.map((finding) => [
      finding.severity.toUpperCase(),
      finding.id,
      finding.where,
    ]);
    parts.push(formatTable([['SEVERITY', 'CHECK', 'WHERE'], ...rows]));
    for (const finding of findings) {
      parts.push(`  ${finding.id}: ${finding.problem}\n    fix: ${finding.fix}\n`);
    }
  }
  if (report.notChecked.length > 0) parts.push(`\nnot checked: ${report.notChecked.join(', ')}\n`);
  const met =
    report.stageMet === undefined
      ? 'none yet (fix the pilot control findings)'
      : STAGE_TITLES[report.stageMet];
  parts.push(`\nThis setup meets: ${met}\n`);
  return parts.join('');
}
