"""lti1p3platform (PyPI, LTI 1.3 platform): id_token minting with the same claims
and the same 2048-bit key as ours (`generate_launch_request`: builds the launch
message and RS256-signs it, which is what its `lti_launch` does before rendering
the auto-submit form)."""
import time

from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request

from common import args, emit, load, measure


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


def main():
    d, reps, ms = args()
    fx = load(d)
    from cryptography.hazmat.primitives import serialization
    priv = serialization.load_pem_private_key(fx["platform_pem"].encode(), None)
    pub = priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    reg = (Registration().set_iss(fx["iss"]).set_client_id(fx["client_id"])
           .set_deployment_id(fx["deployment_id"]).set_launch_url(fx["target_link_uri"])
           .set_oidc_login_url("https://tool.example.com/login")
           .set_platform_private_key(fx["platform_pem"]).set_platform_public_key(pub))
    conf = Conf(registration=reg)
    req = DictRequest({"method": "POST", "form_data": {}, "get_data": {
        "nonce": fx["nonce"], "state": fx["state"],
        "redirect_uri": fx["target_link_uri"], "client_id": fx["client_id"]}})

    def one():
        launch = Launch(req, conf)
        launch._registration = conf.get_registration()
        launch.set_user_data("a6d5c443-1f51-4783-ba1a-7686ffe3b54a",
                             ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                             "Jane Doe", "jane.doe@example.edu")
        launch.set_resource_link_claim("200d101f-2c14-434a-a0f3-57c2a42369fd", title="Week 3 quiz")
        launch.set_launch_context_claim("c1d887f0a1a3", context_title="Economics", context_label="ECON 101")
        launch.set_custom_parameters_claim({"course_id": "1"})
        launch.set_ags("https://lms.example.edu/api/lti/courses/1/line_items")
        launch.set_nrps("https://lms.example.edu/api/lti/courses/1/names_and_roles")
        return launch.generate_launch_request()

    assert one()["id_token"].count(".") == 2

    def batch():
        t = time.perf_counter()
        for _ in range(16):
            one()
        return 16, time.perf_counter() - t

    emit("mint13", "lti1p3platform 0.1.8", [measure(ms, batch) for _ in range(reps)])


if __name__ == "__main__":
    main()
