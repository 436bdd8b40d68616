/** Every doctor check family, in the order their findings are listed. */
import { checkApprovals } from './check-approvals.js';
import { checkAuthentication } from './check-authentication.js';
import { checkExposure } from './check-exposure.js';
import { checkGateway } from './check-gateway.js';
import { checkKeys } from './check-keys.js';
import { checkLogging } from './check-logging.js';
import { checkPermissions } from './check-permissions.js';
import { checkStorage } from './check-storage.js';
import { checkTamperEvidence } from './check-tamper-evidence.js';
import { compareEnvironments } from './compare-environments.js';
import type { DoctorCheck } from './finding.js';

export const DOCTOR_CHECKS: readonly DoctorCheck[] = [
  checkAuthentication,
  checkExposure,
  checkStorage,
  checkLogging,
  checkPermissions,
  checkApprovals,
  checkKeys,
  checkTamperEvidence,
  checkGateway,
  compareEnvironments,
];
