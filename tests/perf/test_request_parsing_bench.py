"""Request parsing and the OpenAPI document: Powertools' own against ours (make bench, the README records it).

1. Cold start. Each route is served the way its handler does today (msp.http.create_app, then parse_body or
   parse_query) and the way Powertools would (APIGatewayHttpResolver(enable_validation=True), the model as a
   Body() or Query() parameter, its RequestValidationError mapped to our 422), each in fresh processes,
   interleaved, median of ROUNDS. Measured from the process's first statement to the first answer: the
   imports, the resolver and its route, one valid request. "increment" is the part that differs: timed once the
   modules both use (msp.http, the route's model) are loaded, in wall time and in the process's CPU time (which
   a busy machine stretches less). Both answer the valid request byte for byte alike;
   the statuses they answer a few invalid requests with follow.
2. The document. A resolver with every operation of msp.openapi.OPERATIONS, declared the way Powertools reads
   them (path, header, query and body parameters, the success model), gives app.get_openapi_json_schema();
   the table compares what each document states, operation by operation.
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import uuid
from typing import Annotated, Any

from infra.template import FUNCTIONS_DIR

ROUNDS = int(os.environ.get("PARSING_ROUNDS", "15"))
TIMES = ("total", "increment", "increment_cpu")
CLAIMS = {"sub": "psy-bench", "cognito:groups": "[psychologists]"}
BODY = {"civility": "mme", "first_name": "Anne", "last_name": "Martin", "publics": ["adultes"], "languages": ["fr"]}
ROUTES = {
    "POST /v1/candidatures (body)": {
        "model": ("msp.candidatures.models", "CandidatureFields"),
        "decorator": 'app.post("/v1/candidatures")',
        "ours": "parse_body(app, CandidatureFields)",
        "param": "Body()",
        "event": {"method": "POST", "path": "/v1/candidatures", "query": "", "body": json.dumps(BODY)},
        "probes": {
            "malformed JSON": {"method": "POST", "path": "/v1/candidatures", "query": "", "body": "{"},
            "no Content-Type": {
                "method": "POST",
                "path": "/v1/candidatures",
                "query": "",
                "body": json.dumps(BODY),
                "json": False,
            },
        },
    },
    "GET /v1/psychologists/search (query)": {
        "model": ("msp.directory.search", "SearchQuery"),
        "decorator": 'app.get("/v1/psychologists/search")',
        "ours": "parse_query(app, SearchQuery)",
        "param": "Query()",
        "event": {"method": "GET", "path": "/v1/psychologists/search", "query": "lat=48.85&lon=2.35&language=fr"},
        "probes": {
            "unknown parameter": {
                "method": "GET",
                "path": "/v1/psychologists/search",
                "query": "lat=48.85&lon=2.35&page=2",
            },
            "lat out of France": {"method": "GET", "path": "/v1/psychologists/search", "query": "lat=51.5&lon=-0.12"},
        },
    },
}

# Both variants: the route's model and msp.http (the error shape, json_response) load first, then the timed part.
COMMON = """
import json, time
started = time.perf_counter()
from msp.http import json_response
from {module} import {model}
common, common_cpu = time.perf_counter(), time.process_time()
"""
OURS = """
from msp.http import create_app, parse_body, parse_query
app = create_app()

@{decorator}
def route():
    return json_response(200, {ours}.model_dump(mode="json"))
"""
POWERTOOLS = """
from typing import Annotated
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from msp.http import error_response
app = APIGatewayHttpResolver(enable_validation=True)

@app.exception_handler(RequestValidationError)
def _invalid(error):
    details = [{{"field": ".".join(map(str, e["loc"][1:])) or "body", "message": e["msg"]}} for e in error.errors()]
    return error_response(422, "validation_error", "The request has invalid fields.", details)

@{decorator}
def route(request: Annotated[{model}, {param}]):
    return json_response(200, request.model_dump(mode="json"))
"""
ANSWER = """
answer = app.resolve({event!r}, None)
done, done_cpu = time.perf_counter(), time.process_time()
probes = {{name: app.resolve(event, None)["statusCode"] for name, event in {probes!r}.items()}}
print(json.dumps({{"total": (done - started) * 1000, "increment": (done - common) * 1000,
                  "increment_cpu": (done_cpu - common_cpu) * 1000, "answer": answer, "probes": probes}}))
"""


def _event(method: str, path: str, query: str, body: str | None = None, json: bool = True) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(part.split("=", 1) for part in query.split("&")) if query else None,
        "headers": {"content-type": "application/json"} if json else {},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "stage": "$default",
            "authorizer": {"jwt": {"claims": CLAIMS}},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _program(variant: str, route: dict[str, Any]) -> str:
    module, model = route["model"]
    code = OURS if variant == "ours" else POWERTOOLS
    return (
        COMMON.format(module=module, model=model)
        + code.format(decorator=route["decorator"], ours=route["ours"], model=model, param=route["param"])
        + ANSWER.format(
            event=_event(**route["event"]),
            probes={name: _event(**event) for name, event in route["probes"].items()},
        )
    )


def _cold_start(program: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        cwd=FUNCTIONS_DIR,
        env={**os.environ, "AWS_REGION": "eu-west-3", "POWERTOOLS_DEV": "false"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cold_start_of_our_parsing_against_powertools_validation():
    print(f"\ncold start, median of {ROUNDS} fresh processes each, interleaved (ms)")
    print(f"  {'route':38s} {'variant':11s} {'total':>7s} {'increment':>10s} {'its CPU time':>13s}")
    probes: dict[str, dict[str, dict[str, int]]] = {}
    for label, route in ROUTES.items():
        samples: dict[str, list[dict[str, Any]]] = {"ours": [], "powertools": []}
        for round_ in range(ROUNDS):
            for variant in ("ours", "powertools") if round_ % 2 else ("powertools", "ours"):
                samples[variant].append(_cold_start(_program(variant, route)))
        answers = {variant: runs[0]["answer"] for variant, runs in samples.items()}
        assert answers["ours"] == answers["powertools"], answers  # the same answer to a valid request
        probes[label] = {variant: runs[0]["probes"] for variant, runs in samples.items()}
        medians = {
            variant: {key: statistics.median(run[key] for run in runs) for key in TIMES}
            for variant, runs in samples.items()
        }
        for variant, median in medians.items():
            print(
                f"  {label:38s} {variant:11s} {median['total']:7.1f} {median['increment']:10.1f}"
                f" {median['increment_cpu']:13.1f}"
            )
        extra = {key: medians["powertools"][key] - medians["ours"][key] for key in ("increment", "increment_cpu")}
        print(f"  {label:38s} {'difference':11s} {'':7s} {extra['increment']:+10.1f} {extra['increment_cpu']:+13.1f}")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end")
    print("\nstatus answered to invalid requests: ours | Powertools'")
    for label, by_variant in probes.items():
        for name, status in by_variant["ours"].items():
            print(f"  {label:38s} {name:20s} {status} | {by_variant['powertools'][name]}")


# ---------------------------------------------------------------- the document


def _powertools_document() -> dict[str, Any]:
    """Every operation declared the way Powertools reads a route: typed parameters and the success model."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
    from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

    from msp.openapi import OPERATIONS, PATH_PARAMETERS

    app = APIGatewayHttpResolver(enable_validation=True)
    for op in OPERATIONS:
        parameters = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=_path_parameter(schema, Path))
            for name, schema in PATH_PARAMETERS.items()
            if f"{{{name}}}" in op.path
        ]
        parameters += [
            inspect.Parameter(
                header.name.lower().replace("-", "_"),
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[str, Header(alias=header.name, pattern=header.pattern)],
            )
            for header in op.headers
        ]
        for model, marker in ((op.body, Body()), (op.query, Query())):
            if model is not None:
                parameters.append(
                    inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[model, marker])
                )
        returns = op.response if isinstance(op.response, type) else inspect.Signature.empty

        def endpoint(**_: Any) -> None:
            return None

        endpoint.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
        endpoint.__name__ = f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').strip('{}')}"
        route = op.path.replace("{", "<").replace("}", ">")
        security = [{"bearerAuth": []}] if op.roles else None
        app.route(route, method=op.method, summary=op.summary, security=security)(endpoint)
    document = app.get_openapi_json_schema(
        title="Mon soutien psy API", security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")}
    )
    return json.loads(document)


def _path_parameter(schema: dict[str, Any], path: Any) -> Any:
    if schema.get("format") == "uuid":
        return Annotated[uuid.UUID, path()]
    return Annotated[str, path(pattern=schema["pattern"])]


CONSTRAINTS = ("pattern", "enum", "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "format")


def _count(node: Any, document: dict[str, Any], seen: frozenset[str] = frozenset()) -> int:
    """Constraint keywords in a schema, following its references once."""
    if isinstance(node, list):
        return sum(_count(value, document, seen) for value in node)
    if not isinstance(node, dict):
        return 0
    reference = node.get("$ref")
    if isinstance(reference, str) and reference not in seen:
        target = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]
        return _count(target, document, seen | {reference})
    return sum(key in CONSTRAINTS for key in node) + sum(_count(value, document, seen) for value in node.values())


def _facts(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation = document["paths"][path][method]
    responses = operation.get("responses", {})
    errors = [response for status, response in responses.items() if status >= "400"]
    return {
        "error statuses": len(errors),
        "error statuses with the API's error body": sum("/schemas/Error" in json.dumps(error) for error in errors),
        "security (bearer JWT)": bool(operation.get("security")),
        "request constraints (keywords)": _count(operation.get("parameters", []), document)
        + _count(operation.get("requestBody", {}), document),
        "response headers (ETag, Location, Retry-After...)": sum(
            len(response.get("headers", {})) for response in responses.values()
        ),
        "links": sum(len(response.get("links", {})) for response in responses.values()),
    }


def test_the_document_powertools_generates_against_ours():
    from msp.openapi import build_document

    ours, theirs = build_document(), _powertools_document()
    operations = [(path, method) for path, methods in ours["paths"].items() for method in methods]
    totals: dict[str, list[int]] = {}
    for path, method in operations:
        powertools_path = path if path in theirs["paths"] else None
        assert powertools_path, f"Powertools left out {method.upper()} {path}"
        mine, generated = _facts(ours, path, method), _facts(theirs, path, method)
        for fact in mine:
            pair = totals.setdefault(fact, [0, 0])
            pair[0] += int(mine[fact])
            pair[1] += int(generated[fact])
    print(f"\nthe OpenAPI document over {len(operations)} operations: ours (msp.openapi) | Powertools' (generated)")
    for fact, (mine_total, generated_total) in totals.items():
        print(f"  {fact:55s} {mine_total:5d} | {generated_total:5d}")
    # Powertools documents each route's validation error (422) on its own: our document lists more.
    assert totals["error statuses"][0] > totals["error statuses"][1]
