"""pylti1p3 (PyPI, LTI 1.3 tool): in-process launch validation of the shared fixture.

pylti1p3 ships adapters only for Django and Flask; it is used here through its
framework-neutral base classes (Request, CookieService, MessageLaunch), which is
what those adapters subclass. Every launch gets a fresh session holding the
login's nonce and a cookie holding the state (what its OIDCLogin stores), like
ours gets a fresh store holding the state. The platform's JWKS is given inline
(`key_set`), like ours gets a resolved key: no HTTP on the measured path.
"""
import time

from pylti1p3.cookie import CookieService
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from pylti1p3.tool_config import ToolConfDict

from common import args, emit, load, measure


class DictRequest(Request):
    def __init__(self, params, session):
        self._params = params
        self._session = session

    @property
    def session(self):
        return self._session

    def is_secure(self):
        return True

    def get_param(self, key):
        return self._params.get(key)


class DictCookies(CookieService):
    def __init__(self, cookies):
        self._cookies = cookies

    def get_cookie(self, name):
        return self._cookies.get(self._cookie_prefix + "-" + name)

    def set_cookie(self, name, value, exp=3600):
        self._cookies[self._cookie_prefix + "-" + name] = value


class Launch(MessageLaunch):
    def _get_request_param(self, key):
        return self._request.get_param(key)


def main():
    d, reps, ms = args()
    fx = load(d)
    conf = ToolConfDict({fx["iss"]: [{
        "default": True, "client_id": fx["client_id"],
        "auth_login_url": fx["auth_login_url"], "auth_token_url": fx["auth_token_url"],
        "key_set_url": None, "key_set": {"keys": [fx["jwk"]]},
        "deployment_ids": [fx["deployment_id"]],
    }]})
    params = {"id_token": fx["token"], "state": fx["state"]}

    def one():
        session = {"lti1p3-nonce-" + fx["nonce"]: True}
        req = DictRequest(params, session)
        cookies = DictCookies({"lti1p3-" + fx["state"]: fx["state"]})
        launch = Launch(req, conf, session_service=SessionService(req), cookie_service=cookies)
        launch.validate()
        return launch

    data = one().get_launch_data()
    assert data["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == fx["deployment_id"]

    def batch():
        t = time.perf_counter()
        for _ in range(32):
            one()
        return 32, time.perf_counter() - t

    emit("launch13", "pylti1p3 2.0.0", [measure(ms, batch) for _ in range(reps)])


if __name__ == "__main__":
    main()
