"""The two messages of the OTA protocol the server speaks (docs/protocol.md): the trigger it
publishes on `ID/OTA`, and the statuses a device publishes on `ID/ota/status`."""
from ..payloads import load_object
from ..schemas import OtaStatusDoc, parse

MAX_STATUS = 2048  # bytes of an ota/status payload; a longer one is refused unread


def build_trigger(host, port, target, sha1, size=None, token=None, extra=()):
    """The `ID/OTA` payload: the seed's four fields; size, token and key=value fields after."""
    fields = [host, str(port), target, sha1]
    if token is not None:
        fields += [str(size), token] + list(extra)
    return "|".join(fields)


def parse_device_status(payload):
    """The dict {state, token, reason, detail, sha1} of an `ID/ota/status` payload
    (schemas.OtaStatusDoc); ValueError says what is wrong with it, the field first."""
    st = parse(OtaStatusDoc, load_object(payload, MAX_STATUS, "ota status"))
    return {"state": st.state, "token": st.token, "reason": st.reason[:300],
            "detail": st.detail[:300], "sha1": st.sha1}
