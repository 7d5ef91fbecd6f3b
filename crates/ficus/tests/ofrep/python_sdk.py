"""OpenFeature's Python SDK with its OFREP provider against a running ficus.

Usage: python_sdk.py BASE_URL KEY PHASE
  PHASE "before": the flags as the config first has them; "after": after the test changed
  the theme flag's default variant to dark. Prints one JSON object of what it saw.
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

base_url, key, phase = sys.argv[1], sys.argv[2], sys.argv[3]
api.set_provider(OFREPProvider(base_url, headers_factory=lambda: {"Authorization": f"Bearer {key}"}))
client = api.get_client()
ctx = EvaluationContext(targeting_key="user-1", attributes={"plan": "pro"})

out = {}
d = client.get_boolean_details("new-checkout", False, ctx)
out["bool"] = [d.value, d.variant, str(d.reason), d.error_code and str(d.error_code)]
d = client.get_string_details("theme", "fallback", ctx)
out["string"] = [d.value, d.variant, str(d.reason)]
d = client.get_integer_details("page-size", 1, ctx)
out["integer"] = [d.value, d.variant, str(d.reason)]
d = client.get_float_details("ratio", 0.0, ctx)
out["float"] = [d.value, d.variant]
d = client.get_object_details("banner", {}, ctx)
out["object"] = [d.value, d.variant]
d = client.get_boolean_details("missing-flag", True, ctx)
out["missing"] = [d.value, str(d.reason), str(d.error_code)]
d = client.get_string_details("new-checkout", "wrong-type", ctx)
out["type_mismatch"] = [d.value, str(d.error_code)]
print(json.dumps(out))
