/**
 * The answer to a login or consent form: a page that moves the browser on to oidc-provider's
 * return URL with a meta refresh (and a link), not a 303. CSP `form-action 'self'` also governs
 * the redirects that follow a form submission, so a 303 chain ending at the app's redirect URI
 * (another origin) would be blocked; a refresh is a new navigation, outside the form's reach.
 */
import { html, renderPage } from './html.js';

export function renderContinuePage(returnTo: string): string {
  const page = renderPage(
    'Continue',
    html`<h1>Continue</h1>
      <p><a id="continue" href="${returnTo}">Continue</a></p>`,
  );
  return page.replace(
    '<title>',
    html`<meta http-equiv="refresh" content="${`0;url=${returnTo}`}">
<title>`.html,
  );
}
