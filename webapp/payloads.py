"""JSON from MQTT: anyone on the broker may have written it, so it is size-limited first."""
import json


def load_object(payload, limit, what):
    """The JSON object in `payload`; ValueError names `what` and what is wrong with it."""
    if len(payload) > limit:
        raise ValueError("%s of %d bytes is over %d" % (what, len(payload), limit))
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError("%s is not JSON (%s)" % (what, type(exc).__name__)) from None
    if not isinstance(doc, dict):
        raise ValueError("%s is not a JSON object" % what)
    try:  # a lone surrogate ("\ud800" escaped in JSON) is valid JSON but not text to store
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s has a string that is not valid Unicode (a lone surrogate)"
                         % what) from None
    return doc
