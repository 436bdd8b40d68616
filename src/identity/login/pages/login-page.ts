/** The login page of the built-in authorization server: built-in users, and the company's IdP. */
import { html, renderPage } from './html.js';

export interface LoginPageInput {
  /** The interaction's base path (`/oauth/interaction/<uid>`); forms post below it. */
  readonly action: string;
  readonly csrf: string;
  /** What the app calls itself (its client name, or its metadata document's host). */
  readonly appLabel: string;
  /** Whether built-in users may log in here. */
  readonly passwordLogin: boolean;
  /** The company's IdP, when configured: its button's label. */
  readonly companyLabel: string | undefined;
  /** The user id typed before, shown again after a refusal. */
  readonly userId?: string;
  readonly error?: string;
}

export function renderLoginPage(input: LoginPageInput): string {
  const passwordForm =
    input.passwordLogin &&
    html`<form method="post" action="${input.action}/login">
      <input type="hidden" name="csrf" value="${input.csrf}" />
      <label for="user">User</label>
      <input
        type="text"
        id="user"
        name="user"
        autocomplete="username"
        required
        value="${input.userId ?? ''}"
      />
      <label for="password">Password</label>
      <input
        type="password"
        id="password"
        name="password"
        autocomplete="current-password"
        required
      />
      <button type="submit">Log in</button>
    </form>`;
  const companyForm =
    input.companyLabel !== undefined &&
    html`${input.passwordLogin && html`<p class="divider">or</p>`}
      <form method="post" action="${input.action}/company">
        <input type="hidden" name="csrf" value="${input.csrf}" />
        <button type="submit" class="secondary">Log in with ${input.companyLabel}</button>
      </form>`;
  return renderPage(
    'Log in to Warden',
    html`<h1>Log in to Warden</h1>
      <p><strong>${input.appLabel}</strong> wants to act for you.</p>
      ${input.error !== undefined && html`<p class="error" role="alert">${input.error}</p>`}
      ${passwordForm} ${companyForm}
      <form method="post" action="${input.action}/abort">
        <input type="hidden" name="csrf" value="${input.csrf}" />
        <button type="submit" class="secondary">Cancel</button>
      </form>`,
  );
}
