/**
 * The steps of a login at the built-in authorization server, each a browser request under
 * `/oauth/interaction/<uid>`: the page (login or consent, as oidc-provider's prompt asks), the
 * built-in user's password, the consent, and cancelling. Every form carries the interaction's
 * CSRF token; every refusal is recorded; the only redirects are oidc-provider's own return URLs.
 */
import type { AgentConfig } from '../../config/config.js';
import {
  appLabelOf,
  loadInteraction,
  metadataHostOf,
  loadPostedForm,
  refuseStep,
  type InteractionContext,
  type LoadedInteraction,
  type StepRequest,
} from './interaction-context.js';
import { renderConsentPage } from './pages/consent-page.js';
import { renderContinuePage } from './pages/continue-page.js';
import { sendPage } from './pages/html.js';
import { renderLoginPage } from './pages/login-page.js';
import { actingRoles } from './person.js';

/** GET /oauth/interaction/<uid>: the login page, or the consent page once logged in. */
export async function showInteraction(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
): Promise<void> {
  const loaded = await loadInteraction(context, step, uid, 'authorize');
  if (!loaded) return;
  if (loaded.interaction.prompt.name === 'login') {
    sendPage(step.response, 200, loginPage(context, loaded));
    return;
  }
  await showConsent(context, step, loaded);
}

function loginPage(
  context: InteractionContext,
  loaded: LoadedInteraction,
  retry?: { readonly userId: string; readonly error: string },
): string {
  return renderLoginPage({
    action: loaded.action,
    csrf: context.csrf.tokenFor(loaded.interaction.uid),
    appLabel: appLabelOf(loaded.client, loaded.interaction.params.client_id),
    passwordLogin: context.login.users.size > 0,
    companyLabel: context.companyLogin?.label,
    ...(retry && { userId: retry.userId, error: retry.error }),
  });
}

/** POST …/login: a built-in user's id and password. */
export async function submitPassword(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
): Promise<void> {
  const posted = await loadPostedForm(context, step, uid, 'login');
  if (!posted) return;
  const { loaded, form } = posted;
  const userId = form.get('user') ?? '';
  const verdict = await context.users.verify(userId, form.get('password') ?? '', step.source);
  if (verdict.outcome === 'refused') {
    context.onEvent({
      kind: 'auth.failed',
      source: step.source,
      requestId: step.requestId,
      step: 'login',
      error: 'access_denied',
      reason: verdict.reason,
      app: loaded.client?.clientId,
      // Only a configured id is named: a typo or a guess is nobody's to attribute.
      user: context.login.users.has(userId) ? userId : undefined,
    });
    const limited = verdict.reason === 'limited';
    const error = limited
      ? 'Too many failed attempts. Try again later.'
      : 'Wrong user or password.';
    sendPage(step.response, limited ? 429 : 401, loginPage(context, loaded, { userId, error }));
    return;
  }
  await context.people.remember(verdict.person);
  await finishStep(context, step, { login: { accountId: verdict.person.id } }, false);
}

async function showConsent(
  context: InteractionContext,
  step: StepRequest,
  loaded: LoadedInteraction,
): Promise<void> {
  const consenting = await consentingPerson(context, step, loaded);
  if (!consenting) return;
  const { person, agent } = consenting;
  const clientId = loaded.interaction.params.client_id ?? '';
  sendPage(
    step.response,
    200,
    renderConsentPage({
      action: loaded.action,
      csrf: context.csrf.tokenFor(loaded.interaction.uid),
      clientId,
      clientName: loaded.client?.clientName,
      metadataHost: metadataHostOf(loaded.client),
      user: person.id,
      agent: agent.id,
      roles: actingRoles(person.roles, agent.roles),
    }),
  );
}

async function consentingPerson(
  context: InteractionContext,
  step: StepRequest,
  loaded: LoadedInteraction,
): Promise<{ person: { id: string; roles: readonly string[] }; agent: AgentConfig } | undefined> {
  const accountId = loaded.interaction.session?.accountId;
  const person = accountId === undefined ? undefined : await context.people.find(accountId);
  const agent = context.agents.get(context.login.agent);
  if (person && agent && loaded.interaction.prompt.name === 'consent') return { person, agent };
  refuseStep(context, step, {
    step: 'consent',
    status: 400,
    reason: !person ? 'person_unknown' : !agent ? 'login_agent_missing' : 'not_at_consent',
    description: 'This login cannot go on. Start again from your app.',
    app: loaded.client?.clientId,
    user: accountId,
  });
  return undefined;
}

/** POST …/consent: allow (the grant records what was asked) or deny. */
export async function submitConsent(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
): Promise<void> {
  const posted = await loadPostedForm(context, step, uid, 'consent');
  if (!posted) return;
  const { loaded, form } = posted;
  const consenting = await consentingPerson(context, step, loaded);
  if (!consenting) return;
  const { interaction } = loaded;
  if (form.get('decision') !== 'allow') {
    await finishRefused(context, step, loaded, 'consent', 'consent_denied', consenting.person.id);
    return;
  }
  const { provider } = context;
  const clientId = interaction.params.client_id ?? '';
  const grant =
    (interaction.grantId === undefined
      ? undefined
      : await provider.Grant.find(interaction.grantId)) ??
    new provider.Grant({ accountId: consenting.person.id, clientId });
  const { missingOIDCScope, missingResourceScopes } = interaction.prompt.details;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {}))
    grant.addResourceScope(resource, scopes.join(' '));
  const grantId = await grant.save();
  await finishStep(context, step, { consent: { grantId } }, true);
}

/** POST …/abort: the person cancelled at the login page. */
export async function submitAbort(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
): Promise<void> {
  const posted = await loadPostedForm(context, step, uid, 'login');
  if (!posted) return;
  await finishRefused(context, step, posted.loaded, 'login', 'login_cancelled', undefined);
}

/** Ends the interaction with access_denied: the app learns it at its redirect URI. */
async function finishRefused(
  context: InteractionContext,
  step: StepRequest,
  loaded: LoadedInteraction,
  stepName: 'login' | 'consent',
  reason: string,
  user: string | undefined,
): Promise<void> {
  context.onEvent({
    kind: 'auth.failed',
    source: step.source,
    requestId: step.requestId,
    step: stepName,
    error: 'access_denied',
    reason,
    app: loaded.client?.clientId,
    user,
  });
  const description =
    stepName === 'consent' ? 'the person refused access' : 'the person cancelled the login';
  await finishStep(
    context,
    step,
    { error: 'access_denied', error_description: description },
    false,
  );
}

/** Hands the step's result to oidc-provider and moves the browser on to its return URL. */
async function finishStep(
  context: InteractionContext,
  step: StepRequest,
  result: Record<string, unknown>,
  mergeWithLastSubmission: boolean,
): Promise<void> {
  const returnTo = await context.provider.interactionResult(step.request, step.response, result, {
    mergeWithLastSubmission,
  });
  sendPage(step.response, 200, renderContinuePage(returnTo));
}
