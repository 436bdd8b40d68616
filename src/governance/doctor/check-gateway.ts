/** A running gateway, when --url names one: it answers ready. */
import type { DoctorInput, Finding } from './finding.js';

export function checkGateway({ gateway }: DoctorInput): Finding[] {
  if (gateway === undefined || gateway.readyStatus === 200) return [];
  return [
    {
      id: 'gateway.not-ready',
      stage: 'pilot',
      severity: 'error',
      problem: `${gateway.url}/readyz answered ${gateway.readyStatus}: the gateway is not taking calls`,
      where: 'gateway',
      fix: 'look at its log (it may be draining, or waiting for the store or an upstream)',
    },
  ];
}
