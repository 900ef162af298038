"""The floor for bench_server: a bare Flask endpoint that parses the same request and answers the same bytes.

Started by the benchmark under the same gunicorn worker, threads and TLS/mTLS settings as the provider.
It reads a sample facts object from $BASELINE_FACTS and returns it for every key, compact as the provider writes it.
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request

app = Flask("baseline")
with open(os.environ["BASELINE_FACTS"]) as handle:
    SAMPLE = json.load(handle)


@app.post("/verify")
def verify() -> Response:
    keys = json.loads(request.get_data())["request"]["keys"]
    items = [{"key": key, "value": {**SAMPLE, "image": key}} for key in dict.fromkeys(keys)]
    body = {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse",
            "response": {"idempotent": True, "items": items, "systemError": ""}}
    return Response(json.dumps(body, separators=(",", ":")), mimetype="application/json")
