/**
 * Pilot control, "full logging", and the seed's "logging only successful calls": calls that may
 * go through unrecorded (fail-open), operational logs turned off, an audit log that holds nothing
 * or no denial in the window.
 */
import type { DoctorInput, Finding } from './finding.js';

/** Tool names that read as changing something: fail-open is risky for them even when allowed. */
const ACTING_TOOL_NAME =
  /(pay|transfer|send|delete|remove|drop|update|write|create|issue|exec|run|deploy|grant|revoke|refund|approve|purchase|order)/i;
/** More fail-open tools than this (and more than a quarter of those configured) is "many". */
const MANY_FAIL_OPEN = 3;

export function checkLogging({ config, store, windowDays }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  let failOpen = 0;
  let configured = 0;
  for (const [upstream, settings] of config.upstreams) {
    for (const [tool, tooling] of settings.tools) {
      configured += 1;
      if (tooling.onFailure !== 'open') continue;
      failOpen += 1;
      if (ACTING_TOOL_NAME.test(tool)) {
        findings.push({
          id: 'logging.fail-open-acting-tool',
          stage: 'pilot',
          severity: 'warning',
          problem: `${upstream}.${tool} is marked non-sensitive and fails open, yet its name says it changes something: its calls may run before they are recorded`,
          where: `upstreams.${upstream}.tools.${tool}.on_failure`,
          fix: 'remove on_failure: open (and sensitive: false) unless the tool only reads',
        });
      }
    }
  }
  if (failOpen > MANY_FAIL_OPEN && failOpen * 4 > configured) {
    findings.push({
      id: 'logging.many-fail-open',
      stage: 'pilot',
      severity: 'warning',
      problem: `${failOpen} of ${configured} configured tools fail open: an audit outage lets all of them through unrecorded`,
      where: 'upstreams.*.tools',
      fix: 'keep on_failure: open for the few read-only tools that must stay up',
    });
  }
  if (config.log.level === 'silent' || config.log.level === 'fatal') {
    findings.push({
      id: 'logging.operational-log-off',
      stage: 'pilot',
      severity: 'warning',
      problem: `log.level is ${config.log.level}: refused requests and failures never reach the operational log`,
      where: 'log.level',
      fix: 'use log.level: info (or warn)',
    });
  }
  if (store !== undefined && !store.auditRecordsInWindow) {
    findings.push({
      id: 'logging.no-audit-records',
      stage: 'pilot',
      severity: 'warning',
      problem: `the audit log holds no record from the last ${windowDays} days`,
      where: 'store',
      fix: 'check that the gateway runs on this store (and that this is the store it runs on)',
    });
  }
  if (store?.auditRecordsInWindow === true && !store.denialsInWindow) {
    findings.push({
      id: 'logging.no-denials',
      stage: 'hardening',
      severity: 'info',
      problem: `no call was denied in the last ${windowDays} days: either the policy is too broad or denials are not recorded`,
      where: 'store',
      fix: 'review the grants (warden policy explain) and check that refusals reach the audit log',
    });
  }
  return findings;
}
