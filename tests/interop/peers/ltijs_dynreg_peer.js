// npm `ltijs` 5.9.9 as an LTI 1.3 tool that registers itself with a platform
// through LTI Dynamic Registration (ltijs's own `dynReg` service and its
// `/register` route), on its `ltijs-sequelize` SQLite store. Used by the interop
// suite (tests/dynreg_ltijs.rs).
//
// argv[2] is JSON: {"db_dir", "redirect_uris"?}; `redirect_uris` are extra
// redirect URIs ltijs declares (its `dynReg.redirectUris`), for negative cases. No platform is registered by hand: ltijs learns
// the platform (issuer, endpoints, the client id it is given) from the
// registration. ltijs needs its own public URL before `setup`, so the HTTP
// server listens first (loopback, port 0) and ltijs's app is attached after.
// Prints {"url", "register_url", "login_url", "launch_url", "keyset_url"} when
// listening.
//
// Routes (ltijs's own):
//   GET  /register?openid_configuration=…&registration_token=…
//                    fetches the configuration, posts the registration with the
//                    token as Bearer, stores the platform (activated: autoActivate),
//                    answers the page posting {subject: "org.imsglobal.lti.close"}
//                    to window.opener || window.parent; 500 JSON when the
//                    platform refuses
//   GET|POST /login, POST /, GET /?ltik=…, GET /keys: as in ltijs_tool_peer.js
// Route added here (whitelisted: no ltijs session needed):
//   GET  /do/platforms  [{"url", "client_id", "active"}] of the platforms ltijs knows
'use strict';
const crypto = require('crypto');
const http = require('http');
const path = require('path');
const lti = require('ltijs').Provider;
const Database = require('ltijs-sequelize');

const conf = JSON.parse(process.argv[2]);
// stdout carries only the ready line (see ltijs_tool_peer.js).
console.log = console.error;
console.info = console.error;

const db = new Database('ltijs', 'ltijs', 'ltijs', {
  dialect: 'sqlite',
  storage: path.join(conf.db_dir, 'ltijs.sqlite'),
  logging: false,
});

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  main(url).catch((err) => {
    console.error(err);
    process.exit(1);
  });
});

async function main(url) {
  lti.setup(crypto.randomBytes(32).toString('hex'), { plugin: db }, {
    appRoute: '/',
    loginRoute: '/login',
    keysetRoute: '/keys',
    dynRegRoute: '/register',
    dynReg: {
      url,
      name: 'ltijs (dynamic registration)',
      description: 'npm ltijs registered through LTI Dynamic Registration',
      autoActivate: true,
      redirectUris: conf.redirect_uris || [],
    },
    tokenMaxAge: 10,
  });
  const launched = (kind) => async (token, req, res) =>
    res.json({ kind, ltik: res.locals.ltik, token });
  lti.onConnect(launched('resource_link'));
  lti.onDeepLinking(launched('deep_linking'));
  lti.whitelist('/do/platforms');
  lti.app.get('/do/platforms', async (req, res) => {
    const platforms = await lti.getAllPlatforms();
    const out = [];
    for (const p of platforms) {
      out.push({
        url: await p.platformUrl(),
        client_id: await p.platformClientId(),
        active: await p.platformActive(),
      });
    }
    res.json(out);
  });
  await lti.deploy({ serverless: true, silent: true });
  server.on('request', lti.app);
  process.stdout.write(`${JSON.stringify({
    url,
    register_url: `${url}/register`,
    login_url: `${url}/login`,
    launch_url: url,
    keyset_url: `${url}/keys`,
  })}\n`);
}
