/** Pilot control: what the listener shows besides MCP (metrics, browsers from any origin). */
import type { DoctorInput, Finding } from './finding.js';

export function checkExposure({ config }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  if (config.metrics.enabled && config.metrics.listen === undefined) {
    findings.push({
      id: 'exposure.metrics-on-main-listener',
      stage: 'pilot',
      severity: 'warning',
      problem:
        'metrics are served on the main listener: whoever reaches the gateway can try the scrape token',
      where: 'metrics.listen',
      fix: 'serve them on an address of their own: metrics.listen: { host: 127.0.0.1, port: 9464 }',
    });
  }
  if (config.listen.allowedOrigins.includes('*')) {
    findings.push({
      id: 'exposure.any-origin',
      stage: 'pilot',
      severity: 'warning',
      problem: 'browsers may call the gateway from any web page',
      where: 'listen.allowed_origins',
      fix: 'list the exact origins of the apps that call the gateway',
    });
  }
  return findings;
}
