"""Reads template.yaml: the single source of tables, buckets, functions, routes and environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
FUNCTIONS_DIR = ROOT / "functions"


class _CloudFormationLoader(yaml.SafeLoader):
    """Turns short-form intrinsics (!Ref, !Sub, !GetAtt ...) into their long form."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    public: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}$")

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class BucketTrigger:
    function: str
    bucket: str
    events: str
    prefix: str


@dataclass(frozen=True)
class EventRule:
    """An EventBridgeRule event of a function: events on `bus` matching `pattern` invoke it."""

    function: str
    bus: str
    pattern: dict[str, Any]


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """What Lambda does with an asynchronous invocation that fails: retries, then the record to a queue."""

    maximum_retry_attempts: int = 2  # Lambda's defaults
    maximum_event_age_seconds: int = 21600
    on_failure_queue: str | None = None  # the queue's logical id

    @classmethod
    def of(cls, properties: dict[str, Any]) -> AsyncInvokeConfig:
        config = properties.get("EventInvokeConfig", {})
        on_failure = config.get("DestinationConfig", {}).get("OnFailure", {})
        if on_failure and on_failure.get("Type") != "SQS":
            raise ValueError(f"the local stack sends failed invocations to SQS queues only, not {on_failure}")
        destination = on_failure.get("Destination", {}).get("Fn::GetAtt")
        return cls(
            maximum_retry_attempts=config.get("MaximumRetryAttempts", cls.maximum_retry_attempts),
            maximum_event_age_seconds=config.get("MaximumEventAgeInSeconds", cls.maximum_event_age_seconds),
            on_failure_queue=destination[0] if destination else None,
        )


@dataclass
class Function:
    logical_id: str
    handler: str
    environment: dict[str, Any]
    policies: list[Any]
    timeout: int
    memory: int
    runtime: str
    architecture: str
    events: dict[str, Any] = field(default_factory=dict)
    async_invoke: AsyncInvokeConfig = field(default_factory=AsyncInvokeConfig)

    @property
    def module(self) -> str:
        path, _ = self.handler.rsplit(".", 1)
        return path.replace("/", ".")

    @property
    def entry_point(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass
class Template:
    raw: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        """The resources written one by one; those of a Fn::ForEach loop (the alarms) are left out."""
        return {name: r for name, r in self.raw["Resources"].items() if not name.startswith("Fn::ForEach::")}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        return {name: r["Properties"] for name, r in self.of_type("AWS::DynamoDB::Table").items()}

    @property
    def buckets(self) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in self.of_type("AWS::S3::Bucket").items()}

    @property
    def functions(self) -> dict[str, Function]:
        defaults = self.raw.get("Globals", {}).get("Function", {})
        functions = {}
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            environment = dict(defaults.get("Environment", {}).get("Variables", {}))
            environment.update(props.get("Environment", {}).get("Variables", {}))
            functions[name] = Function(
                logical_id=name,
                handler=props["Handler"],
                environment=environment,
                policies=props.get("Policies", []),
                timeout=props.get("Timeout", defaults.get("Timeout", 3)),
                memory=props.get("MemorySize", defaults.get("MemorySize", 128)),
                runtime=props.get("Runtime", defaults.get("Runtime", "")),
                # Lambda's default architecture when a template names none.
                architecture=props.get("Architectures", defaults.get("Architectures", ["x86_64"]))[0],
                events=props.get("Events", {}),
                async_invoke=AsyncInvokeConfig.of(props),
            )
        return functions

    @property
    def routes(self) -> list[Route]:
        routes = []
        for function in self.functions.values():
            for event in function.events.values():
                if event["Type"] != "HttpApi":
                    continue
                props = event["Properties"]
                auth = props.get("Auth", {}).get("Authorizer")
                routes.append(Route(props["Method"].upper(), props["Path"], function.logical_id, auth == "NONE"))
        return sorted(routes, key=lambda r: (r.path, r.method))

    @property
    def bucket_triggers(self) -> list[BucketTrigger]:
        triggers = []
        for function in self.functions.values():
            for event in function.events.values():
                if event["Type"] != "S3":
                    continue
                props = event["Properties"]
                rules = props.get("Filter", {}).get("S3Key", {}).get("Rules", [])
                prefix = next((r["Value"] for r in rules if r["Name"].lower() == "prefix"), "")
                triggers.append(BucketTrigger(function.logical_id, props["Bucket"]["Ref"], props["Events"], prefix))
        return triggers

    @property
    def event_rules(self) -> list[EventRule]:
        rules = []
        for function in self.functions.values():
            for event in function.events.values():
                if event["Type"] != "EventBridgeRule":
                    continue
                props = event["Properties"]
                rules.append(EventRule(function.logical_id, props["EventBusName"]["Ref"], props["Pattern"]))
        return rules

    @property
    def queues(self) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in self.of_type("AWS::SQS::Queue").items()}

    @property
    def event_buses(self) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in self.of_type("AWS::Events::EventBus").items()}

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return self.raw.get("Parameters", {})

    @property
    def secrets(self) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in self.of_type("AWS::SecretsManager::Secret").items()}

    @property
    def http_api(self) -> dict[str, Any]:
        (api,) = self.of_type("AWS::Serverless::HttpApi").values()
        return api["Properties"]


@cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    with path.open(encoding="utf-8") as handle:
        return Template(yaml.load(handle, Loader=_CloudFormationLoader))  # noqa: S506 - SafeLoader subclass


def _stage_name(name: Any, prefix: str) -> str:
    """A template name `!Sub msp-${Stage}-...` with the local prefix in place of msp-<stage>."""
    pattern = name.get("Fn::Sub") if isinstance(name, dict) else None
    if not isinstance(pattern, str) or not pattern.startswith("msp-${Stage}-"):
        raise ValueError(f"name the resource !Sub msp-${{Stage}}-..., not {name!r}")
    return prefix + pattern.removeprefix("msp-${Stage}")


class LocalNames:
    """Physical names of the template's resources on the local stack, and the environment they imply."""

    def __init__(self, template: Template, prefix: str):
        self.template = template
        self.by_logical_id: dict[str, str] = {}
        for name in template.tables:
            self.by_logical_id[name] = f"{prefix}-{name}"
        for name in template.buckets:
            self.by_logical_id[name] = f"{prefix}-{name}".lower()
        for name in template.event_buses:
            self.by_logical_id[name] = f"{prefix}-{name}"
        for name, properties in template.queues.items():
            # The template's own name with the stage's prefix (msp-${Stage}-X-failures): msp-local-X-failures.
            self.by_logical_id[name] = _stage_name(properties["QueueName"], prefix)
        for name in template.secrets:
            # Only a name to pass around: the local stack hands functions the secret's value itself
            # (see infra.provision.dev_secrets), there is no Secrets Manager on loopback.
            self.by_logical_id[name] = f"arn:aws:secretsmanager:eu-west-3:000000000000:secret:{prefix}-{name}"

    def secret_variables(self) -> dict[str, str]:
        """Environment variables naming a template secret (`X_SECRET_ARN: !Ref S`), with their secret."""
        found = {}
        for function in self.template.functions.values():
            for key, value in function.environment.items():
                if isinstance(value, dict) and value.get("Ref") in self.template.secrets:
                    found[key] = value["Ref"]
        return found

    def table(self, logical_id: str) -> str:
        return self.by_logical_id[logical_id]

    def bucket(self, logical_id: str) -> str:
        return self.by_logical_id[logical_id]

    def resolve(self, value: Any) -> str:
        """A template value (literal, Ref, or the Sub that names a bucket) as a local string; a parameter
        resolves to its default. Secrets reach functions as ARNs only (see dev_secrets for their local values)."""
        if isinstance(value, str | int | float):
            return str(value)
        if "Ref" in value and value["Ref"] in self.by_logical_id:
            return self.by_logical_id[value["Ref"]]
        if "Ref" in value and "Default" in self.template.parameters.get(value["Ref"], {}):
            return str(self.template.parameters[value["Ref"]]["Default"])
        if "Fn::Sub" in value:
            for name, props in self.template.buckets.items():
                if props.get("BucketName") == value:
                    return self.by_logical_id[name]
        raise ValueError(f"cannot resolve {value!r} locally; name the resource with !Ref")

    def environment(self) -> dict[str, str]:
        """Environment of every function; functions must agree on shared variable names."""
        merged: dict[str, str] = {}
        for function in self.template.functions.values():
            for key, value in function.environment.items():
                resolved = self.resolve(value)
                if merged.setdefault(key, resolved) != resolved:
                    raise ValueError(f"functions disagree on {key}: {merged[key]} vs {resolved}")
        return merged
