/**
 * The login pages' HTML: everything interpolated is escaped, there is no script, and the page is
 * served with a CSP that allows only the stylesheet from this origin and forms posting here.
 */
import type { ServerResponse } from 'node:http';

/** Where the pages' stylesheet is served (the CSP allows styles from this origin only). */
export const LOGIN_STYLESHEET_PATH = '/oauth/assets/login.css';

export const LOGIN_PAGE_CSP =
  "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** A piece of HTML that is already safe to emit. */
export interface SafeHtml {
  readonly html: string;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);
}

/** Tagged template: interpolated strings are escaped, SafeHtml and arrays of it are not. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, index) => {
    out += render(value) + (strings[index + 1] ?? '');
  });
  return { html: out };
}

function render(value: unknown): string {
  if (value === undefined || value === null || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (typeof value === 'object' && 'html' in value) return String((value as SafeHtml).html);
  return escapeHtml(String(value));
}

/** A whole page around `body`. */
export function renderPage(title: string, body: SafeHtml): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title}</title>
        <link rel="stylesheet" href="${LOGIN_STYLESHEET_PATH}" />
      </head>
      <body>
        <main>${body}</main>
      </body>
    </html> `.html;
}

/** Sends a page with the headers every login page carries. */
export function sendPage(response: ServerResponse, status: number, page: string): void {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': LOGIN_PAGE_CSP,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // Not no-referrer: Chromium then sends `Origin: null` with the forms, which the gateway's
    // DNS rebinding guard rightly refuses. same-origin still tells other sites nothing.
    'referrer-policy': 'same-origin',
  });
  response.end(page);
}

export const LOGIN_STYLESHEET = `
body { font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }
main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px;
  box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 1.3rem; margin-top: 0; }
label { display: block; margin: .8rem 0 .3rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: .5rem;
  border: 1px solid #b8bfcc; border-radius: 4px; font-size: 1rem; }
button { margin-top: 1.2rem; padding: .55rem 1.2rem; font-size: 1rem; border-radius: 4px;
  border: 1px solid #2a5bd7; background: #2a5bd7; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #2a5bd7; }
.error { color: #b00020; margin: .8rem 0; }
.divider { margin: 1.5rem 0 .5rem; color: #6b7385; text-align: center; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-all; }
ul.roles { margin: 0; padding-left: 1.1rem; }
.actions { display: flex; gap: .8rem; }
`;
