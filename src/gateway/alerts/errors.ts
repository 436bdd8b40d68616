/** Errors of alert delivery; local (never sent to an MCP client). */
import { LocalError } from '../../domain/errors.js';

/** A webhook refused or could not take an alert. */
export class AlertDeliveryError extends LocalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WARDEN_ALERT_DELIVERY_FAILED', message, options);
    this.name = 'AlertDeliveryError';
  }
}
