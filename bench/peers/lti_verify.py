"""PyPI `lti` 0.9.5 (ToolProvider, on oauthlib 4.0.1): LTI 1.1 launch verification of
the shared signed bodies, with an empty nonce store and with LIVE live nonces.

The request validator is the one an application writes for `lti`: a dict of
consumer secrets and a set of seen (key, timestamp, nonce) triples. oauthlib's
default key/nonce format (only letters and digits, 20..30 characters) is widened
to what LMSs send, as every real deployment of `lti` has to.
"""
import sys
import time
from urllib.parse import parse_qsl

from lti import ToolProvider
from oauthlib.oauth1 import RequestValidator

from common import emit, load


class Validator(RequestValidator):
    def __init__(self, secrets, seen):
        super().__init__()
        self.secrets = secrets
        self.seen = seen

    enforce_ssl = False

    # oauthlib's defaults accept only [A-Za-z0-9] keys and nonces of 20..30
    # characters; LMS consumer keys and nonces routinely contain '-', '.', '_'.
    SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    def check_client_key(self, client_key):
        return 0 < len(client_key) <= 255 and set(client_key) <= self.SAFE

    def check_nonce(self, nonce):
        return 0 < len(nonce) <= 255 and set(nonce) <= self.SAFE

    @property
    def dummy_client(self):
        return "dummy-client"

    def validate_client_key(self, client_key, request):
        return client_key in self.secrets

    def get_client_secret(self, client_key, request):
        return self.secrets.get(client_key, "dummy-secret")

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        k = (client_key, nonce)
        if k in self.seen:
            return False
        self.seen[k] = int(timestamp)
        return True


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: lti_verify.py FIXTURE_DIR REPS MILLIS LIVE_NONCES")
    d, reps, ms, live = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    fx = load(d)
    l = fx["lti11"]
    with open(f"{d}/{l['bodies']}") as f:
        bodies = f.read().splitlines()
    now = int(time.time())
    seen = {(l["key"], f"live-{i}"): now for i in range(live)}
    v = Validator({l["key"]: l["secret"]}, seen)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    chunk = len(bodies) // reps
    out = []
    for r in range(reps):
        part = bodies[r * chunk:(r + 1) * chunk]
        t = time.perf_counter()
        n = 0
        for body in part:
            if time.perf_counter() - t > ms / 1000.0:
                break
            n += 1
            params = dict(parse_qsl(body, keep_blank_values=True))
            tp = ToolProvider.from_unpacked_request(l["secret"], params, l["url"], headers)
            if not tp.is_valid_request(v):
                raise SystemExit("a fixture body did not verify")
        out.append(n / (time.perf_counter() - t))
    emit("lti11_verify" if live == 0 else "lti11_verify_1M", "lti 0.9.5 + oauthlib 4.0.1", out,
         live_nonces=live)


if __name__ == "__main__":
    main()
