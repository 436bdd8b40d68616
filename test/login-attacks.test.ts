// The built-in authorization server from the attacker's side: PKCE downgraded or skipped, a
// redirect URI swapped, a code replayed, a refresh token reused (the whole family goes), a
// response from another server (mix-up: the client sees `iss`), an open redirect through the
// login page, and a consent forged without the page's CSRF token.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ALICE_PASSWORD, startLoginGateway, type LoginGateway } from './support/login-gateway.js';
import { logInWithPassword, waitForCallback } from './support/login-browser.js';

let login: LoginGateway;

before(async () => {
  login = await startLoginGateway('login-attacks');
});

after(async () => {
  await login?.close();
});

/** A code for a fresh client, as an honest app gets one. */
async function obtainCode() {
  const clientId = await login.register();
  const { verifier, challenge } = login.pkce();
  const callback = await login.authorizeInBrowser(
    login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' }),
  );
  const code = callback.get('code');
  assert.ok(code, `a code: ${callback.toString()}`);
  return { clientId, verifier, code, callback };
}

function redeem(clientId: string, code: string, verifier?: string) {
  return login.token({
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    redirect_uri: login.catcher.url,
    resource: `${login.resource}/fixture`,
    ...(verifier !== undefined && { code_verifier: verifier }),
  });
}

test('refuses PKCE downgraded to plain at the authorization endpoint', async () => {
  const clientId = await login.register();
  const url = login.authorizeUrl(clientId, {
    code_challenge: 'a'.repeat(43),
    code_challenge_method: 'plain',
  });
  const before = login.catcher.received.length;
  await fetch(url, { redirect: 'manual' }).then(async (response) => {
    const location = response.headers.get('location') ?? '';
    assert.equal(response.status, 303);
    const params = new URL(location).searchParams;
    assert.equal(params.get('error'), 'invalid_request');
    assert.equal(params.get('code'), null);
  });
  assert.equal(login.catcher.received.length, before);
});

test('refuses an authorization request without PKCE', async () => {
  const clientId = await login.register();
  const response = await fetch(login.authorizeUrl(clientId, {}), { redirect: 'manual' });
  const params = new URL(response.headers.get('location') ?? '').searchParams;
  assert.equal(params.get('error'), 'invalid_request');
  assert.match(params.get('error_description') ?? '', /PKCE/);
});

test('refuses a code redeemed without its verifier, or with another one', async () => {
  const { clientId, code } = await obtainCode();
  const missing = await redeem(clientId, code);
  assert.equal(missing.status, 400);
  assert.equal(missing.body['error'], 'invalid_grant');
  const other = await redeem(clientId, code, login.pkce().verifier);
  assert.equal(other.status, 400);
  assert.equal(other.body['error'], 'invalid_grant');
  assert.ok(
    await login.waitForRecord(
      'auth.failed',
      (record) => (record.details as Record<string, unknown>)['endpoint'] === 'token',
    ),
    'the refused token requests are recorded',
  );
});

test('refuses a redirect URI the client did not register, without redirecting to it', async () => {
  const clientId = await login.register();
  const { challenge } = login.pkce();
  const url = new URL(
    login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' }),
  );
  url.searchParams.set('redirect_uri', 'https://attacker.example/steal');
  const response = await fetch(url, { redirect: 'manual' });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get('location'), null);
  assert.match(await response.text(), /redirect_uri/);
});

test('a replayed code is refused, and the tokens issued for it are revoked', async () => {
  const { clientId, code, verifier } = await obtainCode();
  const first = await redeem(clientId, code, verifier);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const replay = await redeem(clientId, code, verifier);
  assert.equal(replay.status, 400);
  assert.equal(replay.body['error'], 'invalid_grant');
  const refresh = await login.token({
    grant_type: 'refresh_token',
    client_id: clientId,
    refresh_token: String(first.body['refresh_token']),
  });
  assert.equal(refresh.body['error'], 'invalid_grant', 'the replay revoked the grant');
  assert.ok(
    await login.waitForRecord(
      'token.revoked',
      (record) => (record.details as Record<string, unknown>)['reason'] === 'code_replayed',
    ),
  );
});

test('a reused refresh token revokes its whole family', async () => {
  const { clientId, code, verifier } = await obtainCode();
  const issued = await redeem(clientId, code, verifier);
  const original = String(issued.body['refresh_token']);
  const rotated = await login.token({
    grant_type: 'refresh_token',
    client_id: clientId,
    refresh_token: original,
  });
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  const successor = String(rotated.body['refresh_token']);
  assert.notEqual(successor, original, 'each use rotates the refresh token');
  assert.ok(typeof rotated.body['access_token'] === 'string');

  const reuse = await login.token({
    grant_type: 'refresh_token',
    client_id: clientId,
    refresh_token: original,
  });
  assert.equal(reuse.body['error'], 'invalid_grant');
  const afterReuse = await login.token({
    grant_type: 'refresh_token',
    client_id: clientId,
    refresh_token: successor,
  });
  assert.equal(
    afterReuse.body['error'],
    'invalid_grant',
    'the legitimate successor is revoked too',
  );
  // The code replay above revoked a grant too: this is the second revocation.
  assert.ok(
    await login.waitForRecord(
      'token.revoked',
      (record) =>
        (record.details as Record<string, unknown>)['reason'] === 'refresh_token_reused' &&
        record.user === 'alice',
    ),
    'the revocation is recorded with the person',
  );
});

test('mix-up: every authorization response names its issuer, so a client can refuse another', async () => {
  const { callback } = await obtainCode();
  const metadata = (await (
    await fetch(`${login.gateway.url}/.well-known/oauth-authorization-server`)
  ).json()) as {
    issuer: string;
  };
  assert.equal(callback.get('iss'), metadata.issuer);
  // An error response carries it too: a client checks `iss` before reading anything else.
  const clientId = await login.register();
  const denied = await fetch(login.authorizeUrl(clientId, {}), { redirect: 'manual' });
  const params = new URL(denied.headers.get('location') ?? '').searchParams;
  assert.equal(params.get('iss'), metadata.issuer);
  assert.notEqual(
    params.get('iss'),
    'https://attacker.example',
    'a response from elsewhere would not match',
  );
});

test('the login page sends the browser nowhere but the authorization server', async () => {
  const clientId = await login.register();
  const { challenge } = login.pkce();
  const context = await login.browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(
      `${login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' })}`,
    );
    const action = await page.getAttribute('form', 'action');
    assert.ok(action?.startsWith('/oauth/interaction/'), action ?? '');
    // A login form posted with extra "return" fields: the answer still leads only to the server.
    const response = await context.request.post(`${login.gateway.url}${action}`, {
      form: {
        csrf: (await page.getAttribute('input[name=csrf]', 'value')) ?? '',
        user: 'alice',
        password: ALICE_PASSWORD,
        return_to: 'https://attacker.example/',
        redirect_uri: 'https://attacker.example/',
      },
      maxRedirects: 0,
    });
    assert.equal(response.status(), 200);
    assert.equal(response.headers()['location'], undefined);
    const html = await response.text();
    assert.doesNotMatch(html, /attacker\.example/);
    assert.match(html, new RegExp(`${login.gateway.url}/oauth/authorize/`));
    // The company login's callback, with a made-up state: an error page, no redirect.
    const callback = await fetch(`${login.gateway.url}/oauth/login/callback?state=forged&code=x`, {
      redirect: 'manual',
    });
    assert.equal(callback.status, 400);
    assert.equal(callback.headers.get('location'), null);
  } finally {
    await context.close();
  }
});

test('refuses a consent forged without the page CSRF token, and records it', async () => {
  const clientId = await login.register();
  const { challenge } = login.pkce();
  const before = login.catcher.received.length;
  const context = await login.browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(
      login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    await logInWithPassword(page, 'alice', ALICE_PASSWORD);
    const action = (await page.getAttribute('form', 'action')) ?? '';
    assert.match(action, /\/consent$/);
    // The victim's browser (its cookies) posts a consent some other page made up.
    for (const csrf of [undefined, 'forged-token']) {
      const forged = await context.request.post(`${login.gateway.url}${action}`, {
        form: { decision: 'allow', ...(csrf !== undefined && { csrf }) },
        maxRedirects: 0,
      });
      assert.equal(forged.status(), 403);
    }
    // A token of another interaction does not fit this one either.
    assert.equal(login.catcher.received.length, before, 'no code was issued');
    assert.ok(
      await login.waitForRecord(
        'auth.failed',
        (record) =>
          (record.details as Record<string, unknown>)['reason'] === 'csrf_token_invalid' &&
          (record.details as Record<string, unknown>)['endpoint'] === 'consent',
      ),
    );
    // The real page still works afterwards: the forgery changed nothing.
    await page.click('#allow');
    const callback = await waitForCallback(login.catcher, before + 1);
    assert.ok(callback.get('code'));
  } finally {
    await context.close();
  }
});

test('a cross-site consent post is refused before it is read (Origin check)', async () => {
  const response = await fetch(`${login.gateway.url}/oauth/interaction/abcdefghijklmnop/consent`, {
    method: 'POST',
    headers: {
      origin: 'https://attacker.example',
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'decision=allow',
  });
  assert.equal(response.status, 403);
});

test('refuses a client metadata document on a loopback address without connecting to it', async () => {
  let connections = 0;
  const listener = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  try {
    const { port } = listener.address() as AddressInfo;
    const clientId = `https://127.0.0.1:${port}/client.json`;
    const { challenge } = login.pkce();
    const response = await fetch(
      login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' }),
      { redirect: 'manual' },
    );
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null, 'no redirect to an unverified client');
    assert.equal(connections, 0, 'Warden never connected to its own loopback');
    assert.ok(
      await login.waitForRecord(
        'auth.failed',
        (record) =>
          (record.details as Record<string, unknown>)['endpoint'] === 'authorize' &&
          (record.details as Record<string, unknown>)['app'] === clientId,
      ),
      'the refusal is recorded with the claimed client id',
    );
  } finally {
    listener.close();
  }
});

test('an app name with markup is shown as text, under a CSP that runs no script', async () => {
  const response = await fetch(`${login.gateway.url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: '<img src=x onerror=alert(1)><script>alert(2)</script>',
      redirect_uris: [login.catcher.url],
    }),
  });
  const { client_id: clientId } = (await response.json()) as { client_id: string };
  const { challenge } = login.pkce();
  const context = await login.browser.newContext();
  const page = await context.newPage();
  try {
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const answer = await page.goto(
      login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    assert.equal(
      answer?.headers()['content-security-policy'],
      "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    assert.match(await page.content(), /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.equal(await page.locator('img').count(), 0);
    await logInWithPassword(page, 'alice', ALICE_PASSWORD);
    assert.equal(await page.locator('script').count(), 0);
    assert.deepEqual(dialogs, []);
  } finally {
    await context.close();
  }
});

test('a wrong password is refused on the page and recorded', async () => {
  const clientId = await login.register();
  const { challenge } = login.pkce();
  const context = await login.browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(
      login.authorizeUrl(clientId, { code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    await logInWithPassword(page, 'alice', 'not her password at all', '.error');
    assert.match((await page.textContent('.error')) ?? '', /Wrong user or password/);
  } finally {
    await context.close();
  }
  assert.ok(
    await login.waitForRecord(
      'auth.failed',
      (record) =>
        record.user === 'alice' &&
        (record.details as Record<string, unknown>)['reason'] === 'wrong_password',
    ),
  );
});
