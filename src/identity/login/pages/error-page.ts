/** The page shown when a login cannot go on (and no client redirect is safe to make). */
import { html, renderPage } from './html.js';

export function renderErrorPage(input: {
  readonly error: string;
  readonly description: string;
}): string {
  return renderPage(
    'Login failed',
    html`<h1>Login failed</h1>
      <p class="error">${input.description}</p>
      <p>Error: <code>${input.error}</code>. Start again from your app.</p>`,
  );
}
