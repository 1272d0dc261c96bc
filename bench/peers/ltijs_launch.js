// ltijs 5.9.9 (npm, LTI 1.3 tool): in-process launch validation of the shared fixture
// through its own validator, `Auth.validateToken` (what its /launch route calls after
// matching the state cookie): JWT decode, issuer check, platform lookup, JWK -> PEM,
// RS256 verify (jsonwebtoken), aud/alg/max-age/nonce checks, LTI claim checks.
// The platform is registered with its key inline (authConfig JWK_KEY), like ours has a
// resolved key: no HTTP on the measured path. Its Database is an in-memory map per
// launch (lighter than the sqlite/sequelize store ltijs really uses: this favours
// ltijs), holding no nonce yet, like ours gets a fresh store per launch.
// usage: node ltijs_launch.js FIXTURE_DIR REPS MILLIS
'use strict';
const fs = require('fs');
const Auth = require('ltijs/dist/Utils/Auth');

const [dir, reps, ms] = [process.argv[2], +process.argv[3], +process.argv[4]];
const fx = JSON.parse(fs.readFileSync(`${dir}/fixture.json`, 'utf8'));

const platform = {
  platformActive: async () => true,
  platformAuthConfig: async () => ({ method: 'JWK_KEY', key: fx.jwk }),
  platformClientId: async () => fx.client_id,
  platformKid: async () => 'platform-1',
};
const getPlatform = async (iss, aud) => (iss === fx.iss && aud === fx.client_id ? platform : false);

function freshDb() {
  const nonces = new Set();
  return {
    Get: async (_enc, table, q) => (table === 'nonce' && nonces.has(q.nonce) ? [q] : false),
    Insert: async (_enc, table, q) => { if (table === 'nonce') nonces.add(q.nonce); return true; },
  };
}

async function one() {
  return Auth.validateToken(fx.token, false, { iss: fx.iss, maxAge: false }, getPlatform, 'enc-key', freshDb());
}

async function main() {
  const first = await one();
  if (first['https://purl.imsglobal.org/spec/lti/claim/deployment_id'] !== fx.deployment_id) throw new Error('bad launch');
  const out = [];
  for (let r = 0; r < reps; r++) {
    let ops = 0; let spent = 0;
    while (spent < ms) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < 32; i++) await one();
      spent += Number(process.hrtime.bigint() - t) / 1e6;
      ops += 32;
    }
    out.push(ops / (spent / 1000));
  }
  console.log(JSON.stringify({ workload: 'launch13', impl: 'ltijs 5.9.9', unit: 'ops/s', reps: out }));
}
main().catch((e) => { console.error(e); process.exit(1); });
