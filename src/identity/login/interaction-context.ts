/**
 * What the login and consent steps share: the provider, the people, the pages' CSRF tokens, the
 * audit sink, and how a refused step is answered (an escaped error page, never a redirect to a
 * URL the request named).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentConfig } from '../../config/config.js';
import type { LoginConfig } from '../../config/login-schema.js';
import { WardenError } from '../../domain/errors.js';
import { readBody } from '../../http/read-body.js';
import type { OAuthArtifactRepository } from '../../store/types.js';
import type {
  AuthorizationEventSink,
  LoginStep,
} from '../authorization-server/authorization-events.js';
import type { LoggedInPeople } from '../authorization-server/logged-in-people.js';
import type {
  OidcClient,
  OidcInteraction,
  OidcProvider,
} from '../authorization-server/oidc-provider-api.js';
import type { BuiltinUserDirectory } from './builtin-users.js';
import type { CompanyLogin } from './company-login.js';
import type { InteractionCsrf } from './interaction-csrf.js';
import { renderErrorPage } from './pages/error-page.js';
import { sendPage } from './pages/html.js';

export interface InteractionContext {
  readonly provider: OidcProvider;
  readonly login: LoginConfig;
  readonly agents: ReadonlyMap<string, AgentConfig>;
  readonly people: LoggedInPeople;
  readonly users: BuiltinUserDirectory;
  readonly companyLogin: CompanyLogin | undefined;
  readonly csrf: InteractionCsrf;
  /** Short-lived state of company logins in flight, shared by the replicas. */
  readonly artifacts: OAuthArtifactRepository;
  /** The authorization server's origin (the built-in issuer). */
  readonly issuer: string;
  readonly onEvent: AuthorizationEventSink;
  readonly now: () => number;
}

/** One browser request to a step. */
export interface StepRequest {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly requestId: string;
  readonly source: string;
}

/** A loaded interaction: the one the browser's cookie names, which the URL must name too. */
export interface LoadedInteraction {
  readonly interaction: OidcInteraction;
  readonly client: OidcClient | undefined;
  /** `/oauth/interaction/<uid>`. */
  readonly action: string;
}

export const INTERACTION_PATH = '/oauth/interaction';
export const COMPANY_CALLBACK_PATH = '/oauth/login/callback';
const MAX_FORM_BYTES = 8 * 1024;

/** Answers with the error page and records the refusal. */
export function refuseStep(
  context: InteractionContext,
  step: StepRequest,
  refusal: {
    readonly step: LoginStep;
    readonly status: number;
    readonly reason: string;
    readonly description: string;
    readonly app?: string | undefined;
    readonly user?: string | undefined;
  },
): void {
  context.onEvent({
    kind: 'auth.failed',
    source: step.source,
    requestId: step.requestId,
    step: refusal.step,
    error: 'access_denied',
    reason: refusal.reason,
    app: refusal.app,
    user: refusal.user,
  });
  sendPage(
    step.response,
    refusal.status,
    renderErrorPage({ error: 'access_denied', description: refusal.description }),
  );
}

/**
 * The interaction the browser's cookie names, if it is the one in the URL; otherwise the step
 * is refused (an expired login, or a link made for someone else's browser).
 */
export async function loadInteraction(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
  stepName: LoginStep,
): Promise<LoadedInteraction | undefined> {
  let interaction: OidcInteraction;
  try {
    interaction = await context.provider.interactionDetails(step.request, step.response);
  } catch {
    refuseStep(context, step, {
      step: stepName,
      status: 400,
      reason: 'interaction_not_found',
      description: 'This login has expired or was started in another browser.',
    });
    return undefined;
  }
  if (interaction.uid !== uid) {
    refuseStep(context, step, {
      step: stepName,
      status: 400,
      reason: 'interaction_mismatch',
      description: 'This login link does not belong to this browser.',
      app: interaction.params.client_id,
    });
    return undefined;
  }
  const clientId = interaction.params.client_id;
  const client =
    typeof clientId === 'string' ? await context.provider.Client.find(clientId) : undefined;
  return { interaction, client, action: `${INTERACTION_PATH}/${uid}` };
}

/** A form post's fields; a body too large or not a form is refused as a bad request. */
export async function readForm(request: IncomingMessage): Promise<URLSearchParams | undefined> {
  const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/x-www-form-urlencoded') return undefined;
  try {
    return new URLSearchParams(await readBody(request, MAX_FORM_BYTES));
  } catch (error) {
    if (error instanceof WardenError && error.code === 'WARDEN_BODY_TOO_LARGE') return undefined;
    throw error;
  }
}

/**
 * The form, if it carries this interaction's CSRF token; otherwise the step is refused. Checked
 * before anything in the form is acted on.
 */
export async function readCheckedForm(
  context: InteractionContext,
  step: StepRequest,
  loaded: LoadedInteraction,
  stepName: LoginStep,
): Promise<URLSearchParams | undefined> {
  const form = await readForm(step.request);
  if (form && context.csrf.verify(loaded.interaction.uid, form.get('csrf'))) return form;
  refuseStep(context, step, {
    step: stepName,
    status: 403,
    reason: form ? 'csrf_token_invalid' : 'malformed_form',
    description: 'This form was not sent from the login page. Start again from your app.',
    app: loaded.client?.clientId,
    user: loaded.interaction.session?.accountId,
  });
  return undefined;
}

/** What the pages call the app: its name, else its metadata document's host, else its id. */
export function appLabelOf(client: OidcClient | undefined, clientId: string | undefined): string {
  if (client?.clientName) return client.clientName;
  const host = metadataHostOf(client);
  return host ?? clientId ?? 'An app';
}

/** The host serving the app's Client ID Metadata Document, when its client_id is one. */
export function metadataHostOf(client: OidcClient | undefined): string | undefined {
  if (!client?.clientIdMetadataDocument) return undefined;
  try {
    return new URL(client.clientId).host;
  } catch {
    return undefined;
  }
}

/** A form posted to a step: the interaction it belongs to, and its fields, CSRF-checked. */
export async function loadPostedForm(
  context: InteractionContext,
  step: StepRequest,
  uid: string,
  stepName: LoginStep,
): Promise<{ loaded: LoadedInteraction; form: URLSearchParams } | undefined> {
  const loaded = await loadInteraction(context, step, uid, stepName);
  if (!loaded) return undefined;
  const form = await readCheckedForm(context, step, loaded, stepName);
  return form && { loaded, form };
}
