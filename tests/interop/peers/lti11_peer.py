"""PyPI `lti` 0.9.5 (+ oauthlib 4.0.1) as an LTI 1.1 peer on a loopback port.

argv[1] is JSON: {"key": ..., "secret": ...}. Prints {"url": ...} when listening.

Routes (JSON in, JSON out unless noted):
  POST /launch          `lti` ToolProvider verifies a form-encoded launch:
                        200 {"valid": true, ...} or 401 {"valid": false, "error": ...}
  POST /outcomes        a consumer's Basic Outcomes endpoint: OAuth (header +
                        oauth_body_hash) checked with oauthlib, the POX parsed with
                        `lti`'s OutcomeRequest, the answer built with its
                        OutcomeResponse (XML)
  POST /do/sign         {"url", "params"}: `lti` ToolConsumer signs a launch;
                        returns {"fields": {...}} (the caller posts it)
  POST /do/outcome      {"url", "sourcedid", "op": "replace"|"read", "score"}:
                        `lti` ToolProvider sends Basic Outcomes to a consumer
  GET  /scores          the scores /outcomes stored

`lti` has no standalone HTTP server (its adapters are for Django and Flask), so
this script is the small server around its classes; oauthlib's default client
key / nonce format (letters and digits only, 20..30 characters) is widened to
what LMSs send (see README.md).
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from lti import OutcomeRequest, OutcomeResponse, ToolConsumer, ToolProvider
from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

CONF = json.loads(sys.argv[1])
SCORES = {}
LOCK = threading.Lock()
SEEN = set()
SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class Validator(RequestValidator):
    enforce_ssl = False

    def check_client_key(self, client_key):
        return 0 < len(client_key) <= 255 and set(client_key) <= SAFE

    def check_nonce(self, nonce):
        return 0 < len(nonce) <= 255 and set(nonce) <= SAFE

    @property
    def dummy_client(self):
        return "dummy-client"

    def validate_client_key(self, client_key, request):
        return client_key == CONF["key"]

    def get_client_secret(self, client_key, request):
        return CONF["secret"] if client_key == CONF["key"] else "dummy-secret"

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        with LOCK:
            if (client_key, nonce) in SEEN:
                return False
            SEEN.add((client_key, nonce))
            return True


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def url(self):
        return f"http://{self.headers['Host']}{self.path}"

    def do_GET(self):
        if self.path == "/scores":
            with LOCK:
                return self.reply(200, dict(SCORES))
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        raw = self.body()
        if self.path == "/launch":
            params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            tp = ToolProvider.from_unpacked_request(
                CONF["secret"], params, self.url(), {"Content-Type": self.headers["Content-Type"]})
            try:
                valid = tp.is_valid_request(Validator())
            except Exception as e:  # lti raises for some malformed requests
                return self.reply(401, {"valid": False, "error": type(e).__name__})
            if not valid:
                return self.reply(401, {"valid": False, "error": "invalid signature or nonce"})
            return self.reply(200, {"valid": True, "resource_link_id": tp.resource_link_id,
                                    "user_id": tp.user_id, "roles": tp.roles,
                                    "custom": {k: v for k, v in params.items() if k.startswith("custom_")}})
        if self.path == "/outcomes":
            return self.outcomes(raw)
        req = json.loads(raw or b"{}")
        if self.path == "/do/sign":
            tc = ToolConsumer(CONF["key"], CONF["secret"], params=req["params"], launch_url=req["url"])
            fields = tc.generate_launch_data()
            return self.reply(200, {"fields": fields})
        if self.path == "/do/outcome":
            tp = ToolProvider(CONF["key"], CONF["secret"], params={
                "lis_outcome_service_url": req["url"], "lis_result_sourcedid": req["sourcedid"]})
            if req["op"] == "replace":
                resp = tp.post_replace_result(req["score"])
            else:
                resp = tp.post_read_result()
            return self.reply(200, {"success": bool(resp.is_success()),
                                    "code_major": str(resp.code_major),
                                    "score": None if resp.score is None else str(resp.score),
                                    "http_status": resp.response_code})
        self.reply(404, {"error": "not found"})

    def outcomes(self, raw):
        # The body hash first (oauthlib's SignatureOnlyEndpoint checks the signature
        # over the header parameters, which include oauth_body_hash).
        endpoint = SignatureOnlyEndpoint(Validator())
        valid, request = endpoint.validate_request(
            self.url(), "POST", body=None, headers={"Authorization": self.headers.get("Authorization", "")})
        claimed = dict(request.oauth_params).get("oauth_body_hash") if request is not None else None
        actual = base64.b64encode(hashlib.sha1(raw).digest()).decode()
        if not valid or claimed is None or not hmac.compare_digest(claimed, actual):
            return self.reply(401, b"signature or body hash invalid", "text/plain")
        req = OutcomeRequest()
        req.process_xml(raw)
        resp = OutcomeResponse(message_identifier="peer-" + str(len(SCORES)),
                               message_ref_identifier=req.message_identifier,
                               operation=req.operation, code_major="success",
                               severity="status", description="ok")
        with LOCK:
            if req.operation == "replaceResult":
                SCORES[str(req.lis_result_sourcedid)] = req.score
            elif req.operation == "readResult":
                resp.score = SCORES.get(str(req.lis_result_sourcedid))
            elif req.operation == "deleteResult":
                SCORES.pop(str(req.lis_result_sourcedid), None)
            else:
                resp.code_major = "unsupported"
        self.reply(200, resp.generate_response_xml(), "application/xml")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
server.serve_forever()
