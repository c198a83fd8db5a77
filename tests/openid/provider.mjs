// The OpenID provider of the tests: oidc-provider (the certified Node implementation) on 127.0.0.1, with the
// clients and users of a JSON file, and a sign-in page of its own. Started by tests/openid_provider.py:
//   node provider.mjs CONFIG.json   (prints "ready" once it listens)
// For the refused cases, POST /test/tamper {"mode": ...} makes the next token answer carry a bad ID token:
// forged (signed by another key under the real key's id), expired, wrong-issuer, wrong-audience,
// wrong-nonce or unsigned (alg none); the others are signed with the provider's own key.
import fs from 'node:fs';
import http from 'node:http';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { issuer, port, users } = config;
const KID = 'test-key-1';

const signing = await jose.generateKeyPair('RS256', { extractable: true });
const other = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(signing.privateKey)), kid: KID, use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [jwk] },
  cookies: { keys: ['a-cookie-key-of-the-test-provider-only'] },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'], roles: ['roles'] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'roles'],
  features: { devInteractions: { enabled: false } },
  pkce: { methods: ['S256'], required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600,
    RefreshToken: 3600, ClientCredentials: 600, DeviceCode: 600, BackchannelAuthenticationRequest: 600,
  },
  async findAccount(ctx, sub) {
    const user = users[sub];
    if (!user) return undefined;
    return { accountId: sub, async claims() { return { sub, ...user.claims }; } };
  },
});

// the next token answer's ID token, spoiled as the tests ask
let tamper = null;
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || !tamper || !ctx.body || typeof ctx.body.id_token !== 'string') return;
  const mode = tamper;
  tamper = null;
  const claims = jose.decodeJwt(ctx.body.id_token);
  const now = Math.floor(Date.now() / 1000);
  let key = signing.privateKey;
  if (mode === 'forged') key = other.privateKey;
  else if (mode === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  else if (mode === 'wrong-issuer') claims.iss = 'http://127.0.0.1:9/another-provider';
  else if (mode === 'wrong-audience') claims.aud = 'another-client';
  else if (mode === 'wrong-nonce') claims.nonce = 'not-the-nonce-that-was-sent';
  if (mode === 'unsigned') {
    const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    ctx.body.id_token = `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
    return;
  }
  ctx.body.id_token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID }).sign(key);
});

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><meta charset="utf-8"><title>${escape(title)}</title>`
    + `<h1>${escape(title)}</h1>${body}</html>`);
}

function loginForm(res, uid, clientId, error) {
  page(res, error ? 401 : 200, 'Institution sign-in',
    `<p>Sign in to continue to ${escape(clientId)}.</p>${error ? `<p class="error">${escape(error)}</p>` : ''}`
    + `<form method="post" action="/interaction/${escape(uid)}/login">`
    + '<label>User name <input name="username" autocomplete="username" autofocus></label> '
    + '<label>Password <input name="password" type="password" autocomplete="current-password"></label> '
    + '<button type="submit">Sign in</button></form>');
}

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (req.method === 'POST' && url.pathname.endsWith('/login')) {
    const form = await body(req);
    const user = users[form.get('username') || ''];
    if (!user || user.password !== form.get('password')) {
      loginForm(res, uid, params.client_id, 'Unknown user name or wrong password.');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: form.get('username') } },
      { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'login') {
    loginForm(res, uid, params.client_id, null);
    return;
  }
  if (prompt.name === 'consent') { // the institution's own console: consented for its staff
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  page(res, 501, 'Not implemented', `<p>${escape(prompt.name)}</p>`);
}

const handle = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/interaction/')) {
      await interaction(req, res, url);
    } else if (url.pathname === '/test/tamper' && req.method === 'POST') {
      let text = '';
      for await (const chunk of req) text += chunk;
      tamper = JSON.parse(text).mode || null;
      res.writeHead(204);
      res.end();
    } else {
      handle(req, res);
    }
  } catch (err) {
    if (!res.headersSent) page(res, 500, 'Provider error', `<p>${escape(err && err.message)}</p>`);
    else res.end();
  }
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
