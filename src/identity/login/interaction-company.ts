/**
 * Login through the company's identity provider, as steps of an interaction:
 *  1. POST …/company: begin; what `finish` needs is kept in the store under the provider's
 *     `state` (one-time, 10 minutes), with the interaction's uid, and the browser is sent on.
 *  2. GET /oauth/login/callback: the provider sends the browser back; the pending login is
 *     taken (once) and finished into a person, who is remembered under the same state.
 *  3. GET …/<uid>/company?state=…: back under the interaction's own path, where its cookie is
 *     sent, the person is handed to oidc-provider. The uid must be the one the login began in, so
 *     a callback link sent to someone else's browser logs nobody in there.
 */
import type { PendingCompanyLogin } from './company-login.js';
import { CompanyLoginError } from './company-login-error.js';
import { renderContinuePage } from './pages/continue-page.js';
import { sendPage } from './pages/html.js';
import {
  COMPANY_CALLBACK_PATH,
  INTERACTION_PATH,
  loadInteraction,
  loadPostedForm,
  refuseStep,
  type InteractionContext,
  type StepRequest,
} from './interaction-context.js';

const PENDING_KIND = 'WardenCompanyLogin';
const FINISHED_KIND = 'WardenCompanyLoginDone';
const PENDING_MS = 10 * 60_000;

interface PendingRecord {
  readonly uid: string;
  readonly pending: PendingCompanyLogin;
}

interface FinishedRecord {
  readonly uid: string;
  readonly personId: string;
}

export async function beginCompanyLogin(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
): Promise<void> {
  // The form carries nothing but its CSRF token, checked here.
  if (!(await loadPostedForm(context, step, uid, 'login'))) return;
  const companyLogin = context.companyLogin;
  if (!companyLogin) {
    refuseStep(context, step, {
      step: 'login',
      status: 404,
      reason: 'company_login_not_configured',
      description: 'Login through a company account is not configured here.',
    });
    return;
  }
  const { redirectTo, pending } = await companyLogin.begin({
    callbackUrl: `${context.issuer}${COMPANY_CALLBACK_PATH}`,
  });
  await keep<PendingRecord>(context, PENDING_KIND, pending.state, { uid, pending });
  // Not a 303: CSP form-action would stop a form's redirect to the provider (another origin).
  sendPage(step.response, 200, renderContinuePage(redirectTo));
}

export async function receiveCompanyCallback(
  context: InteractionContext,
  step: StepRequest,
): Promise<void> {
  const callbackUrl = new URL(step.request.url ?? '/', context.issuer);
  const state = callbackUrl.searchParams.get('state') ?? '';
  const record = state === '' ? undefined : await take<PendingRecord>(context, PENDING_KIND, state);
  if (!record || !context.companyLogin) {
    refuseStep(context, step, {
      step: 'callback',
      status: 400,
      reason: 'unknown_state',
      description: 'This login was not started here, or it was already used.',
    });
    return;
  }
  let person;
  try {
    person = await context.companyLogin.finish({ callbackUrl, pending: record.pending });
  } catch (error) {
    if (!(error instanceof CompanyLoginError)) throw error;
    refuseStep(context, step, {
      step: 'callback',
      status: 400,
      reason: error.code,
      description: 'The company login did not succeed.',
    });
    return;
  }
  await context.people.remember(person);
  await keep<FinishedRecord>(context, FINISHED_KIND, state, {
    uid: record.uid,
    personId: person.id,
  });
  const back = `${INTERACTION_PATH}/${record.uid}/company?state=${encodeURIComponent(state)}`;
  step.response.writeHead(303, { location: back, 'cache-control': 'no-store' });
  step.response.end();
}

export async function finishCompanyLogin(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
): Promise<void> {
  const loaded = await loadInteraction(context, step, uid, 'callback');
  if (!loaded) return;
  const state = new URL(step.request.url ?? '/', context.issuer).searchParams.get('state') ?? '';
  const finished =
    state === '' ? undefined : await take<FinishedRecord>(context, FINISHED_KIND, state);
  if (!finished || finished.uid !== uid) {
    refuseStep(context, step, {
      step: 'callback',
      status: 400,
      reason: finished ? 'interaction_mismatch' : 'unknown_state',
      description: 'This login does not belong to this browser.',
      app: loaded.client?.clientId,
    });
    return;
  }
  await context.provider.interactionFinished(
    step.request,
    step.response,
    { login: { accountId: finished.personId } },
    { mergeWithLastSubmission: false },
  );
}

async function keep<T>(context: InteractionContext, kind: string, id: string, value: T) {
  await context.artifacts.upsert({
    kind,
    id,
    payload: JSON.stringify(value),
    grantId: undefined,
    uid: undefined,
    userCode: undefined,
    expiresAt: context.now() + PENDING_MS,
    consumedAt: undefined,
  });
}

/** The record, once: a second take (a replayed callback) finds nothing. */
async function take<T>(
  context: InteractionContext,
  kind: string,
  id: string,
): Promise<T | undefined> {
  const stored = await context.artifacts.find(kind, id, context.now());
  if (!stored || !(await context.artifacts.consume(kind, id, context.now()))) return undefined;
  await context.artifacts.destroy(kind, id);
  return JSON.parse(stored.payload) as T;
}
