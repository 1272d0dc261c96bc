"""PyPI `pylti1p3` 2.0.0 as an LTI 1.3 tool on a loopback port.

argv[1] is JSON: {"iss", "client_id", "deployment_id", "auth_login_url",
"auth_token_url", "key_set_url", "tool_pem"}. Prints {"url", "jwks"} when
listening (jwks: the tool's public keys, from pylti1p3's ToolConfDict.get_jwks).

pylti1p3 ships adapters for Django and Flask only. This script uses its
framework-neutral classes (Request, CookieService, SessionService, OIDCLogin,
MessageLaunch) the way those adapters do, with an in-memory session per `sid`
cookie. The OIDC redirect URL is taken from OIDCLogin._prepare_redirect_url (what
its Redirect objects wrap), so no redirect class is needed.

Routes:
  GET  /login      third-party login initiation → 302 to the platform's auth URL
  POST /launch     MessageLaunch.validate() (platform JWKS fetched over HTTP);
                   200 JSON {"valid": true, "launch_id", "message_type", "sub", ...}
                   or 401 {"valid": false, "error"}
  POST /do/deep-link {"launch_id", "title", "url"}: the DeepLink response JWT
  POST /do/ags     {"launch_id", "score"}: find_or_create_lineitem, put_grade for
                   the launch's sub, then get_grades and get_lineitems
  POST /do/nrps    {"launch_id"}: get_members
"""
import json
import sys
import threading
import traceback
import uuid
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

from cryptography.hazmat.primitives import serialization
from pylti1p3.cookie import CookieService
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.oidc_login import OIDCLogin
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from pylti1p3.tool_config import ToolConfDict

CONF = json.loads(sys.argv[1])
SESSIONS = {}
LAUNCHES = {}
LOCK = threading.Lock()

priv = serialization.load_pem_private_key(CONF["tool_pem"].encode(), None)
PUB = priv.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
TOOL_CONF = ToolConfDict({CONF["iss"]: [{
    "default": True, "client_id": CONF["client_id"],
    "auth_login_url": CONF["auth_login_url"], "auth_token_url": CONF["auth_token_url"],
    "key_set_url": CONF["key_set_url"], "key_set": None,
    "deployment_ids": [CONF["deployment_id"]],
}]})
TOOL_CONF.set_private_key(CONF["iss"], CONF["tool_pem"], client_id=CONF["client_id"])
TOOL_CONF.set_public_key(CONF["iss"], PUB, client_id=CONF["client_id"])


class PeerRequest(Request):
    def __init__(self, params, session, cookies):
        self._params = params
        self._session = session
        self.cookies = cookies

    @property
    def session(self):
        return self._session

    def is_secure(self):
        return False

    def get_param(self, key):
        return self._params.get(key)


class PeerCookies(CookieService):
    def __init__(self, request):
        self._request = request
        self.outgoing = {}

    def get_cookie(self, name):
        return self._request.cookies.get(self._cookie_prefix + "-" + name)

    def set_cookie(self, name, value, exp=3600):
        self.outgoing[self._cookie_prefix + "-" + name] = value


class PeerLogin(OIDCLogin):
    def get_redirect(self, url):
        raise NotImplementedError("the redirect URL is read directly")


class PeerLaunch(MessageLaunch):
    def _get_request_param(self, key):
        return self._request.get_param(key)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def cookies(self):
        c = SimpleCookie(self.headers.get("Cookie", ""))
        return {k: m.value for k, m in c.items()}

    def session(self, cookies):
        sid = cookies.get("sid")
        with LOCK:
            if sid not in SESSIONS:
                sid = uuid.uuid4().hex
                SESSIONS[sid] = {}
            return sid, SESSIONS[sid]

    def do_GET(self):
        try:
            u = urlparse(self.path)
            if u.path != "/login":
                return self.reply(404, {"error": "not found"})
            params = dict(parse_qsl(u.query, keep_blank_values=True))
            cookies = self.cookies()
            sid, session = self.session(cookies)
            req = PeerRequest(params, session, cookies)
            cookie_service = PeerCookies(req)
            login = PeerLogin(req, TOOL_CONF, SessionService(req), cookie_service)
            url = login._prepare_redirect_url(params["target_link_uri"])
            headers = [("Location", url), ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly")]
            headers += [("Set-Cookie", f"{k}={v}; Path=/; HttpOnly") for k, v in cookie_service.outgoing.items()]
            self.reply(302, {"location": url}, headers)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            self.reply(400, {"error": f"{type(e).__name__}: {e}"})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        u = urlparse(self.path)
        if u.path == "/launch":
            params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            cookies = self.cookies()
            sid, session = self.session(cookies)
            req = PeerRequest(params, session, cookies)
            launch = PeerLaunch(req, TOOL_CONF, session_service=SessionService(req),
                                cookie_service=PeerCookies(req))
            try:
                launch.validate()
            except Exception as e:
                return self.reply(401, {"valid": False, "error": f"{type(e).__name__}: {e}"})
            data = launch.get_launch_data()
            with LOCK:
                LAUNCHES[launch.get_launch_id()] = launch
            return self.reply(200, {
                "valid": True, "launch_id": launch.get_launch_id(), "sub": data.get("sub"),
                "message_type": data.get("https://purl.imsglobal.org/spec/lti/claim/message_type"),
                "has_ags": launch.has_ags(), "has_nrps": launch.has_nrps(),
                "is_deep_link": launch.is_deep_link_launch()})
        try:
            cmd = json.loads(raw)
            with LOCK:
                launch = LAUNCHES[cmd["launch_id"]]
            if u.path == "/do/deep-link":
                res = DeepLinkResource().set_url(cmd["url"]).set_title(cmd["title"])
                return self.reply(200, {"jwt": launch.get_deep_link().get_response_jwt([res]),
                                        "return_url": launch.get_launch_data()[
                                            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"][
                                            "deep_link_return_url"]})
            if u.path == "/do/ags":
                ags = launch.get_ags()
                item = ags.find_or_create_lineitem(
                    LineItem().set_tag("interop").set_score_maximum(10)
                    .set_label("Interop quiz").set_resource_id("interop-1"))
                grade = (Grade().set_score_given(cmd["score"]).set_score_maximum(10)
                         .set_user_id(launch.get_launch_data()["sub"])
                         .set_activity_progress("Completed")
                         .set_grading_progress("FullyGraded")
                         .set_timestamp("2026-01-01T00:00:00.000Z"))
                ags.put_grade(grade, item)
                return self.reply(200, {"grades": ags.get_grades(item),
                                        "lineitems": ags.get_lineitems()})
            if u.path == "/do/nrps":
                return self.reply(200, {"members": launch.get_nrps().get_members()})
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            return self.reply(502, {"error": f"{type(e).__name__}: {e}"})
        self.reply(404, {"error": "not found"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}",
                  "jwks": TOOL_CONF.get_jwks(CONF["iss"], CONF["client_id"])}), flush=True)
server.serve_forever()
