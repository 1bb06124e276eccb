"""JSON from outside: MQTT payloads (anyone on the broker may have written them) and request
bodies. One strict reader for both: JSON as RFC 8259 has it, and nothing a store or the next
reader would choke on."""
import json


def _no_constant(name):
    raise ValueError("%s is not a JSON number" % name)  # NaN, Infinity: Python's, not JSON's


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("the key %r is given twice" % key[:40])
        seen[key] = value
    return seen


def loads(data, what):
    """The JSON value in `data` (bytes or str); ValueError names `what` and what is wrong:
    not JSON or not UTF-8, nested too deep, NaN or Infinity, a key given twice (which value
    was meant?), a number of thousands of digits, a lone surrogate ("\\ud800": valid JSON,
    but not text that UTF-8 or SQLite can hold)."""
    try:
        doc = json.loads(data, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ValueError("%s is nested too deeply" % what) from None
    except UnicodeDecodeError:
        raise ValueError("%s is not UTF-8" % what) from None
    except json.JSONDecodeError as exc:
        raise ValueError("%s is not JSON (%s)" % (what, exc.msg)) from None
    except ValueError as exc:  # ours above, or int()'s digit limit
        why = str(exc) if "JSON" in str(exc) or "twice" in str(exc) else "a number too long"
        raise ValueError("%s: %s" % (what, why)) from None
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s has a string that is not valid Unicode (a lone surrogate)"
                         % what) from None
    return doc


def load_object(payload, limit, what):
    """The JSON object in `payload`; ValueError names `what` and what is wrong with it."""
    if len(payload) > limit:
        raise ValueError("%s of %d bytes is over %d" % (what, len(payload), limit))
    doc = loads(payload, what)
    if not isinstance(doc, dict):
        raise ValueError("%s is not a JSON object" % what)
    return doc
