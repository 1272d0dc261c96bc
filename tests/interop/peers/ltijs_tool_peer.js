// npm `ltijs` 5.9.9 as an LTI 1.3 tool server on a loopback port, with its
// `ltijs-sequelize` 2.4.4 database plugin on SQLite (`sqlite3` 5.1.7): no MongoDB.
// Used by the interop suite (tests/lti13_ltijs.rs) and by the end-to-end benchmark
// (`lti-loadgen e2e-ltijs`).
//
// argv[2] is JSON: {"iss", "client_id", "auth_login_url", "auth_token_url",
// "key_set_url", "db_dir", "token_max_age"?}. Sets ltijs up with the SQLite file
// db_dir/ltijs.sqlite (db_dir null: an in-memory SQLite database, for the benchmark,
// which runs `lti serve` on its memory store), registers the platform with
// `lti.registerPlatform` (authConfig JWK_SET: the platform's JWKS URL), and prints
// {"url", "login_url", "launch_url", "keyset_url"} when listening.
//
// Routes (ltijs's own, from `lti.setup`):
//   GET|POST /login  third-party login initiation → 302 to the platform's auth URL
//                    and a signed `state<state>` cookie
//   POST /           the id_token (form_post): validated by ltijs, then 302 to
//                    /?ltik=… with the signed session cookie; 401 JSON on refusal
//   GET  /?ltik=…    onConnect / onDeepLinking: 200 JSON {"kind", "ltik", "token"}
//                    (the verified token ltijs keeps: user, platformContext, …)
//   GET  /keys       the tool's JWKS (ltijs makes one RSA key per platform)
// Routes added here (behind ltijs's session check: `Authorization: Bearer <ltik>`
// plus the session cookie):
//   POST /do/deep-link {"title", "url", "score_maximum"?}:
//                    lti.DeepLinking.createDeepLinkingMessage → {"jwt", "return_url"}
//   POST /do/ags     {"score", "label"}: lti.Grade.createLineItem, submitScore (no
//                    scoreMaximum: ltijs reads it back from the line item),
//                    getScores, getLineItems
//   POST /do/nrps    lti.NamesAndRoles.getMembers
// A failing service call answers 502 {"error", "status", "body"} (the platform's
// answer, as got reports it).
'use strict';
const crypto = require('crypto');
const http = require('http');
const path = require('path');
const lti = require('ltijs').Provider;
const Database = require('ltijs-sequelize');

const conf = JSON.parse(process.argv[2]);
// ltijs-sequelize runs its migrations with `logger: console` (umzug), printing to
// stdout; stdout carries only the ready line here, so the console goes to stderr.
console.log = console.error;
console.info = console.error;

const db = new Database('ltijs', 'ltijs', 'ltijs', {
  dialect: 'sqlite',
  storage: conf.db_dir ? path.join(conf.db_dir, 'ltijs.sqlite') : ':memory:',
  logging: false,
});

lti.setup(crypto.randomBytes(32).toString('hex'), { plugin: db }, {
  appRoute: '/',
  loginRoute: '/login',
  keysetRoute: '/keys',
  // ltijs's default is 10 s; the benchmark signs a whole phase of tokens before
  // launching them and passes 300 (our tool's default maximum token age).
  tokenMaxAge: conf.token_max_age || 10,
});

const launched = (kind) => async (token, req, res) =>
  res.json({ kind, ltik: res.locals.ltik, token });
lti.onConnect(launched('resource_link'));
lti.onDeepLinking(launched('deep_linking'));

function failed(res, err) {
  const response = err.response || {};
  res.status(502).json({
    error: err.message,
    status: response.statusCode || null,
    body: typeof response.body === 'string' ? response.body : null,
  });
}

lti.app.post('/do/deep-link', async (req, res) => {
  try {
    const item = { type: 'ltiResourceLink', title: req.body.title, url: req.body.url };
    if (req.body.score_maximum) {
      item.lineItem = { scoreMaximum: req.body.score_maximum, label: req.body.title };
    }
    const jwt = await lti.DeepLinking.createDeepLinkingMessage(res.locals.token, [item], {
      message: 'Added by ltijs',
    });
    res.json({ jwt, return_url: res.locals.context.deepLinkingSettings.deep_link_return_url });
  } catch (err) {
    failed(res, err);
  }
});

lti.app.post('/do/ags', async (req, res) => {
  try {
    const token = res.locals.token;
    const lineItem = await lti.Grade.createLineItem(
      token,
      { scoreMaximum: 10, label: req.body.label, tag: 'ltijs', resourceId: 'ltijs-activity' },
      { resourceLinkId: true },
    );
    const sent = await lti.Grade.submitScore(token, lineItem.id, {
      scoreGiven: req.body.score,
      activityProgress: 'Completed',
      gradingProgress: 'FullyGraded',
      comment: 'graded by ltijs',
    });
    const scores = await lti.Grade.getScores(token, lineItem.id, { userId: token.user });
    const lineItems = await lti.Grade.getLineItems(token, { resourceLinkId: true });
    res.json({ lineItem, sent, scores, lineItems });
  } catch (err) {
    failed(res, err);
  }
});

lti.app.post('/do/nrps', async (req, res) => {
  try {
    res.json(await lti.NamesAndRoles.getMembers(res.locals.token));
  } catch (err) {
    failed(res, err);
  }
});

async function main() {
  await lti.deploy({ serverless: true, silent: true });
  await lti.registerPlatform({
    url: conf.iss,
    name: 'lti-rs platform',
    clientId: conf.client_id,
    authenticationEndpoint: conf.auth_login_url,
    accesstokenEndpoint: conf.auth_token_url,
    authConfig: { method: 'JWK_SET', key: conf.key_set_url },
  });
  const server = http.createServer(lti.app);
  server.listen(0, '127.0.0.1', () => {
    const url = `http://127.0.0.1:${server.address().port}`;
    process.stdout.write(`${JSON.stringify({
      url,
      login_url: `${url}/login`,
      launch_url: `${url}/`,
      keyset_url: `${url}/keys`,
    })}\n`);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
