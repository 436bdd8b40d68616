/** Pilot control, "full logging": the audit log lives where it survives a reboot. */
import type { DoctorInput, Finding } from './finding.js';
import { isProduction, isUnderAny, sqliteFile } from './judge-paths.js';

export function checkStorage({ config, host }: DoctorInput): Finding[] {
  if (config.store === 'sqlite::memory:') {
    return [
      {
        id: 'storage.temporary',
        stage: 'pilot',
        severity: 'error',
        problem:
          'the store is in memory: the audit log, approvals and keys vanish at every restart',
        where: 'store',
        fix: 'use sqlite:/var/lib/warden/warden.db or a postgres:// store',
      },
    ];
  }
  const file = sqliteFile(config.store);
  if (file === undefined || !isUnderAny(file, host.temporaryDirs)) return [];
  return [
    {
      id: 'storage.temporary',
      stage: 'pilot',
      severity: isProduction(config) ? 'error' : 'warning',
      problem: `the store ${file} is on a temporary path: the audit log may be cleaned away`,
      where: 'store',
      fix: 'move it to a persistent volume, e.g. sqlite:/var/lib/warden/warden.db',
    },
  ];
}
