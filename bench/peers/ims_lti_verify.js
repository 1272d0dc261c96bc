// ims-lti 3.0.2 (npm, LTI 1.1 provider): launch verification of the shared signed
// bodies with its MemoryNonceStore, empty and with LIVE live nonces.
// usage: node ims_lti_verify.js FIXTURE_DIR REPS MILLIS LIVE_NONCES
'use strict';
const fs = require('fs');
const lti = require('ims-lti');

const [dir, reps, ms, live] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
const fx = JSON.parse(fs.readFileSync(`${dir}/fixture.json`, 'utf8'));
const l = fx.lti11;
const bodies = fs.readFileSync(`${dir}/${l.bodies}`, 'utf8').split('\n').filter((b) => b.length);
const url = new URL(l.url);
const store = new lti.Stores.MemoryStore();
const now = Math.round(Date.now() / 1000);
for (let i = 0; i < live; i++) store.used[`live-${i}`] = now + 3600;
const provider = new lti.Provider(l.key, l.secret, store);

function verify(body) {
  const params = Object.fromEntries(new URLSearchParams(body));
  const req = {
    method: 'POST', url: url.pathname, protocol: url.protocol.replace(':', ''),
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded' }, body: params,
  };
  let ok = null;
  provider.valid_request(req, params, (err, valid) => { ok = valid ? true : (err ? err.message : 'invalid'); });
  if (ok !== true) throw new Error(`a fixture body did not verify: ${ok}`);
}

const chunk = Math.floor(bodies.length / reps);
const out = [];
for (let r = 0; r < reps; r++) {
  const part = bodies.slice(r * chunk, (r + 1) * chunk);
  const t = process.hrtime.bigint();
  let n = 0;
  for (const body of part) {
    if (Number(process.hrtime.bigint() - t) / 1e6 > ms) break;
    verify(body);
    n++;
  }
  out.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
}
console.log(JSON.stringify({ workload: live === 0 ? 'lti11_verify' : 'lti11_verify_1M', impl: 'ims-lti 3.0.2',
  unit: 'ops/s', reps: out, live_nonces: live }));
