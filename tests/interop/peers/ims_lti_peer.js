// npm `ims-lti` 3.0.2 as an LTI 1.1 tool provider on a loopback port.
//
// argv[2] is JSON: {"key": ..., "secret": ...}. Prints {"url": ...} when listening.
//
//   POST /launch       ims-lti Provider.valid_request on a form-encoded launch:
//                      200 {"valid": true, ...} or 401 {"valid": false, "error": ...}.
//                      A valid launch with outcome parameters keeps the provider.
//   POST /do/outcome   {"op": "replace"|"read", "score"}: the kept provider's
//                      outcome_service sends Basic Outcomes to the consumer.
//
// ims-lti has no server of its own (it is used inside Express apps); this is the
// small node:http server around it. It signs the URL it is reached at: the
// `Host` header, the protocol and the path, as its README tells Express users.
'use strict';
const http = require('http');
const lti = require('ims-lti');

const conf = JSON.parse(process.argv[2]);
let lastProvider = null;
// One nonce store for every launch (a Provider per request, as in Express apps).
const nonces = new lti.Stores.MemoryStore();

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function reply(res, status, obj) {
  const data = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

const server = http.createServer(async (req, res) => {
  const raw = await readBody(req);
  if (req.method === 'POST' && req.url === '/launch') {
    const body = Object.fromEntries(new URLSearchParams(raw));
    const provider = new lti.Provider(conf.key, conf.secret, nonces);
    req.protocol = 'http';
    provider.valid_request(req, body, (err, valid) => {
      if (!valid) return reply(res, 401, { valid: false, error: err ? err.message : 'invalid' });
      if (provider.outcome_service) lastProvider = provider;
      return reply(res, 200, {
        valid: true, resource_link_id: body.resource_link_id, user_id: provider.userId,
        instructor: provider.instructor === true, outcomes: Boolean(provider.outcome_service),
      });
    });
    return;
  }
  if (req.method === 'POST' && req.url === '/do/outcome') {
    const cmd = JSON.parse(raw);
    if (!lastProvider) return reply(res, 409, { error: 'no launch with outcomes yet' });
    const svc = lastProvider.outcome_service;
    const done = (err, result) => reply(res, 200, {
      success: !err && result !== false, error: err ? err.message : null,
      score: cmd.op === 'read' && !err ? result : null,
    });
    if (cmd.op === 'replace') svc.send_replace_result(cmd.score, done);
    else svc.send_read_result(done);
    return;
  }
  reply(res, 404, { error: 'not found' });
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
