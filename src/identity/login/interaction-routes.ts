/** Which login step a browser request under /oauth/interaction or the callback path is. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import {
  beginCompanyLogin,
  finishCompanyLogin,
  receiveCompanyCallback,
} from './interaction-company.js';
import {
  COMPANY_CALLBACK_PATH,
  INTERACTION_PATH,
  type InteractionContext,
  type StepRequest,
} from './interaction-context.js';
import {
  showInteraction,
  submitAbort,
  submitConsent,
  submitPassword,
} from './interaction-steps.js';

type Step = (context: InteractionContext, step: StepRequest, uid: string) => Promise<void>;

const STEPS: Readonly<Record<string, { readonly method: string; readonly run: Step }>> = {
  '': { method: 'GET', run: showInteraction },
  login: { method: 'POST', run: submitPassword },
  consent: { method: 'POST', run: submitConsent },
  abort: { method: 'POST', run: submitAbort },
  'company-begin': { method: 'POST', run: beginCompanyLogin },
  'company-finish': { method: 'GET', run: finishCompanyLogin },
};

// oidc-provider's interaction uids are nanoids: URL-safe base64 characters.
const INTERACTION =
  /^\/oauth\/interaction\/([A-Za-z0-9_-]{8,64})(?:\/(login|consent|abort|company))?$/;

export type InteractionHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange: { readonly requestId: string; readonly source: string },
) => Promise<void>;

/** The handler for `path`, when it is a login step's. */
export function routeInteraction(
  context: InteractionContext,
  path: string,
): InteractionHandler | undefined {
  if (path === COMPANY_CALLBACK_PATH)
    return async (request, response, exchange) => {
      requireMethod(request, 'GET');
      await receiveCompanyCallback(context, { request, response, ...exchange });
    };
  if (!path.startsWith(`${INTERACTION_PATH}/`)) return undefined;
  const match = INTERACTION.exec(path);
  if (!match) return undefined;
  const uid = match[1] ?? '';
  const action = match[2] ?? '';
  return async (request, response, exchange) => {
    // …/company is both the button's POST and the way back from the provider (GET).
    const name =
      action === 'company'
        ? request.method === 'GET'
          ? 'company-finish'
          : 'company-begin'
        : action;
    const step = STEPS[name];
    if (!step) return;
    requireMethod(request, step.method);
    await step.run(context, { request, response, ...exchange }, uid);
  };
}

function requireMethod(request: IncomingMessage, method: string): void {
  if (request.method !== method)
    throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, { details: { allow: method } });
}
