/** The consent page: which app, acting for whom, with which roles. */
import { html, renderPage } from './html.js';

export interface ConsentPageInput {
  readonly action: string;
  readonly csrf: string;
  readonly clientId: string;
  readonly clientName: string | undefined;
  /** The host of a Client ID Metadata Document URL: who vouches for the app's name. */
  readonly metadataHost: string | undefined;
  readonly user: string;
  readonly agent: string;
  /** The roles the app will act with (both the person's and the agent's). */
  readonly roles: readonly string[];
}

export function renderConsentPage(input: ConsentPageInput): string {
  const app = input.clientName ?? input.clientId;
  return renderPage(
    'Allow access',
    html`<h1>Allow ${app} to act for you?</h1>
      <dl>
        <dt>App</dt>
        <dd>${app}</dd>
        <dt>Client id</dt>
        <dd>${input.clientId}</dd>
        ${
          input.metadataHost !== undefined &&
          html`<dt>Published by</dt>
            <dd>${input.metadataHost}</dd>`
        }
        <dt>User</dt>
        <dd>${input.user}</dd>
        <dt>Acts as</dt>
        <dd>${input.agent}</dd>
        <dt>Roles</dt>
        <dd>
          ${
            input.roles.length === 0
              ? html`none`
              : html`<ul class="roles">
                  ${input.roles.map((role) => html`<li>${role}</li>`)}
                </ul>`
          }
        </dd>
      </dl>
      <div class="actions">
        <form method="post" action="${input.action}/consent">
          <input type="hidden" name="csrf" value="${input.csrf}" />
          <input type="hidden" name="decision" value="allow" />
          <button type="submit" id="allow">Allow</button>
        </form>
        <form method="post" action="${input.action}/consent">
          <input type="hidden" name="csrf" value="${input.csrf}" />
          <input type="hidden" name="decision" value="deny" />
          <button type="submit" class="secondary" id="deny">Deny</button>
        </form>
      </div>`,
  );
}
