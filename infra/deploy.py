"""`make deploy STAGE=...`: sam deploy with samconfig.toml's environment of the stage (the packaged application, or
the edge's web ACL).

Nothing is built or sent before AWS has accepted the credentials found (an STS GetCallerIdentity), so a machine
without them stops at once, saying how to provide them.

    python -m infra.deploy --stage dev --sam .tools/sam/bin/sam [-- extra sam deploy options]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.package import PACKAGED_TEMPLATE, PackagingError, package
from infra.template import ROOT

SAMCONFIG = ROOT / "samconfig.toml"
HOW_TO_CONFIGURE = (
    "Configure credentials of the target account first, one of: `aws configure sso` then `export AWS_PROFILE=<profile>`"
    " (IAM Identity Center), `aws configure` (access keys in ~/.aws/credentials), or the AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN variables; `aws sts get-caller-identity` tells whether they work."
)


class DeployError(RuntimeError):
    """The deployment cannot start; the message says why and what to do."""


def stages(config_path: Path = SAMCONFIG) -> dict[str, dict]:
    """samconfig.toml's deploy parameters by stage (its environments that deploy)."""
    config = tomllib.loads(config_path.read_text())
    return {
        name: env["deploy"]["parameters"] for name, env in config.items() if isinstance(env, dict) and "deploy" in env
    }


def caller_identity(region: str) -> dict[str, str]:
    """Who AWS takes us for in `region`; DeployError without credentials or when AWS refuses them."""
    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise DeployError(f"No AWS credentials found. {HOW_TO_CONFIGURE}")
    try:
        return session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        raise DeployError(f"AWS did not accept the credentials found ({error}). {HOW_TO_CONFIGURE}") from error


def deploy(stage: str, sam: str, extra: list[str]) -> int:
    known = stages()
    if stage not in known:
        raise DeployError(
            f"Unknown stage {stage!r}: samconfig.toml deploys {', '.join(sorted(known))} (make deploy STAGE=...)."
        )
    region = known[stage]["region"]
    identity = caller_identity(region)
    print(f"Deploying {known[stage]['stack_name']} to account {identity['Account']} in {region} as {identity['Arn']}")
    # The application's stages deploy the packaged template; the edge's, edge.yaml as it is (no code).
    if ROOT / known[stage]["template_file"] == PACKAGED_TEMPLATE:
        package()
    command = [sam, "deploy", "--config-env", stage, *extra]
    return subprocess.run(command, cwd=ROOT, env=os.environ | {"SAM_CLI_TELEMETRY": "0"}).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, help="an environment of samconfig.toml: dev, prod, prod-edge")
    parser.add_argument("--sam", required=True, help="the SAM CLI (make deploy installs it under .tools/sam)")
    parser.add_argument("extra", nargs="*", help="more sam deploy options, after --")
    arguments = parser.parse_args(argv)
    try:
        return deploy(arguments.stage, arguments.sam, arguments.extra)
    except (DeployError, PackagingError) as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
