"""PyPI `lti1p3platform` 0.1.8 as an LTI 1.3 platform on a loopback port.

argv[1] is JSON: {"client_id", "deployment_id", "platform_pem", "tool_login_url",
"tool_launch_url", "tool_jwks_url"}. Prints {"url": ..., "iss": ...} when listening;
the issuer is the peer's own base URL.

Routes:
  GET  /jwks             the platform JWKS (lti1p3platform's get_jwks)
  GET  /login-init?kind=resource|deep
                         lti1p3platform's OIDCLogin.prepare_preflight_url: JSON
                         {"url": <the tool's login URL with iss, login_hint, ...>}
  GET  /auth?...         the OIDC authorization endpoint: lti1p3platform's
                         MessageLaunch validates the preflight (state, nonce,
                         redirect_uri, client_id) and mints the id_token; JSON
                         {"launch_url", "state", "id_token"} (what its auto-submit
                         form would post)
  POST /dl-return        deep-linking return: validate_deeplinking_resp on the
                         form's JWT; 200 JSON content items, or 400 {"error": ...}
  POST /token            get_access_token (client_credentials + JWT assertion)
  AGS  /lineitems, /lineitems/<n>, /lineitems/<n>/scores, /lineitems/<n>/results
  NRPS /memberships      guarded by lti1p3platform's validate_token and scopes

lti1p3platform issues and validates access tokens but has no AGS/NRPS REST
endpoints of its own (applications write them); the small in-memory endpoints
here are that application part, every call checked with its validate_token.
"""
import json
import re
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

from cryptography.hazmat.primitives import serialization
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request

CONF = json.loads(sys.argv[1])
LOCK = threading.Lock()
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


class DictRequest(Request):
    def build_metadata(self, request):
        return request


class Conf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs):
        self.reg = kwargs["registration"]

    def get_registration_by_params(self, **kwargs):
        return self.reg


class Launch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data, **kwargs):
        return launch_data


class Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs):
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url):
        return url


def platform():
    """A fresh platform config (lti1p3platform caches per-request JWT state on it)."""
    conf = Conf(registration=REG)
    conf.get_registration()
    return conf


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def bearer(self, scopes):
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            self.reply(401, {"error": "missing bearer token"})
            return False
        try:
            ok = platform().validate_token(auth[7:], allowed_scopes=scopes)
        except Exception as e:
            self.reply(401, {"error": f"invalid token: {type(e).__name__}"})
            return False
        if not ok:
            self.reply(403, {"error": "scope not granted"})
            return False
        return True

    def do_GET(self):
        try:
            self.get()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.reply(500, {"error": "peer failure"})

    def do_POST(self):
        try:
            self.post()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.reply(500, {"error": "peer failure"})

    def get(self):
        u = urlparse(self.path)
        q = dict(parse_qsl(u.query, keep_blank_values=True))
        if u.path == "/jwks":
            return self.reply(200, platform().get_jwks())
        if u.path == "/login-init":
            login = Login(None, platform())
            login.set_lti_message_hint(hint=q.get("kind", "resource"))
            if q.get("kind") == "deep":
                login.set_deeplinking_launch_url()
            return self.reply(200, {"url": login.prepare_preflight_url("peer-user-1")})
        if u.path == "/auth":
            launch = Launch(DictRequest({"method": "GET", "get_data": q, "form_data": {}}), platform())
            launch.set_user_data("peer-user-1",
                                 ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                                 "Peer Instructor", "instructor@peer.example")
            launch.set_launch_context_claim("peer-ctx-1", context_title="Peer Course",
                                            context_label="PEER101")
            if q.get("lti_message_hint") == "deep":
                launch.set_dl(f"{BASE}/dl-return", title="Pick content",
                              accept_types={"ltiResourceLink", "link"})
            else:
                launch.set_resource_link_claim("peer-rl-1", title="Peer resource")
                launch.set_ags(f"{BASE}/lineitems")
                launch.set_nrps(f"{BASE}/memberships")
            return self.reply(200, launch.lti_launch())
        if u.path == "/lineitems":
            if self.bearer([AGS + "lineitem", AGS + "lineitem.readonly"]):
                with LOCK:
                    items = list(LINEITEMS.values())
                self.reply(200, items, "application/vnd.ims.lis.v2.lineitemcontainer+json")
            return
        m = re.fullmatch(r"/lineitems/(\d+)(/results)?", u.path)
        if m:
            if m.group(2):
                if not self.bearer([AGS + "result.readonly"]):
                    return
                with LOCK:
                    results = [
                        {"id": f"{BASE}/lineitems/{m.group(1)}/results/{uid}", "userId": uid,
                         "resultScore": s["scoreGiven"], "resultMaximum": s["scoreMaximum"],
                         "scoreOf": f"{BASE}/lineitems/{m.group(1)}"}
                        for uid, s in SCORES.get(m.group(1), {}).items()]
                return self.reply(200, results, "application/vnd.ims.lis.v2.resultcontainer+json")
            if self.bearer([AGS + "lineitem", AGS + "lineitem.readonly"]):
                with LOCK:
                    item = LINEITEMS.get(m.group(1))
                if item is None:
                    return self.reply(404, {"error": "no such line item"})
                self.reply(200, item, "application/vnd.ims.lis.v2.lineitem+json")
            return
        if u.path == "/memberships":
            if self.bearer([NRPS_SCOPE]):
                self.reply(200, {"id": f"{BASE}/memberships", "context": {"id": "peer-ctx-1"},
                                 "members": MEMBERS},
                           "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
            return
        self.reply(404, {"error": "not found"})

    def post(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        u = urlparse(self.path)
        if u.path == "/dl-return":
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            try:
                items = platform().validate_deeplinking_resp({"JWT": form.get("JWT", "")})
            except Exception as e:
                return self.reply(400, {"error": f"{type(e).__name__}: {e}"})
            with LOCK:
                DL_RESULTS.append(items)
            return self.reply(200, {"content_items": items})
        if u.path == "/token":
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            try:
                token = platform().get_access_token(form)
            except Exception as e:
                return self.reply(400, {"error": "invalid_grant", "error_description": type(e).__name__})
            return self.reply(200, token)
        if u.path == "/lineitems":
            if self.bearer([AGS + "lineitem"]):
                item = json.loads(raw)
                with LOCK:
                    n = str(len(LINEITEMS) + 1)
                    item["id"] = f"{BASE}/lineitems/{n}"
                    LINEITEMS[n] = item
                self.reply(201, item, "application/vnd.ims.lis.v2.lineitem+json")
            return
        m = re.fullmatch(r"/lineitems/(\d+)/scores", u.path)
        if m:
            if self.bearer([AGS + "score"]):
                score = json.loads(raw)
                if not self.headers.get("Content-Type", "").startswith("application/vnd.ims.lis.v1.score+json"):
                    return self.reply(415, {"error": "score media type expected"})
                with LOCK:
                    if m.group(1) not in LINEITEMS:
                        return self.reply(404, {"error": "no such line item"})
                    SCORES.setdefault(m.group(1), {})[score["userId"]] = score
                self.reply(204, b"")
            return
        self.reply(404, {"error": "not found"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
BASE = f"http://127.0.0.1:{server.server_address[1]}"
priv = serialization.load_pem_private_key(CONF["platform_pem"].encode(), None)
pub = priv.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
REG = (Registration().set_iss(BASE).set_client_id(CONF["client_id"])
       .set_deployment_id(CONF["deployment_id"]).set_launch_url(CONF["tool_launch_url"])
       .set_deeplink_launch_url(CONF["tool_launch_url"])
       .set_oidc_login_url(CONF["tool_login_url"])
       .set_platform_private_key(CONF["platform_pem"]).set_platform_public_key(pub)
       .set_tool_key_set_url(CONF["tool_jwks_url"]))
LINEITEMS = {"1": {"id": f"{BASE}/lineitems/1", "label": "Peer quiz", "scoreMaximum": 10,
                   "resourceLinkId": "peer-rl-1"}}
SCORES = {}
DL_RESULTS = []
MEMBERS = [{"user_id": f"peer-user-{i}", "name": f"Member {i}", "status": "Active",
            "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]} for i in range(1, 6)]
print(json.dumps({"url": BASE, "iss": BASE}), flush=True)
server.serve_forever()
