"""What sam deploy is given: the packaged template, samconfig.toml's stages, and the refusal without credentials."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.deploy import stages
from infra.package import PACKAGED_TEMPLATE, package, packaged_template
from infra.template import ROOT, load_template

TEMPLATE = load_template()
EDGE = load_template(ROOT / "edge.yaml")
STAGES = stages()
APPLICATION_STAGES = sorted(
    stage for stage, settings in STAGES.items() if ROOT / settings["template_file"] == PACKAGED_TEMPLATE
)
EDGE_STAGES = sorted(stage for stage, settings in STAGES.items() if settings["template_file"] == "edge.yaml")


def test_the_packaged_template_is_the_template_with_every_function_at_the_artifact():
    packaged = packaged_template(TEMPLATE, "functions")
    expected = copy.deepcopy(TEMPLATE.raw)
    assert expected["Globals"]["Function"].pop("CodeUri") == "functions/"
    for name in TEMPLATE.functions:
        expected["Resources"][name]["Properties"]["CodeUri"] = "functions"
    assert packaged == expected


def test_make_package_writes_the_artifact_beside_a_template_naming_it_for_every_function(tmp_path):
    written = json.loads(package(tmp_path / "build").read_text())
    for name, function in TEMPLATE.functions.items():
        code = tmp_path / "build" / written["Resources"][name]["Properties"]["CodeUri"]
        assert (code / f"{function.module.replace('.', '/')}.py").is_file(), name


def test_every_stage_deploys_the_application_or_the_edge_of_an_application_stage():
    assert set(APPLICATION_STAGES) | set(EDGE_STAGES) == set(STAGES)
    assert {"dev", "prod"} <= set(APPLICATION_STAGES)
    assert "prod-edge" in EDGE_STAGES, "template.yaml's Rules refuse prod without the web ACL of its edge"
    assert {stage.removesuffix("-edge") for stage in EDGE_STAGES} <= set(APPLICATION_STAGES)


def _overrides(stage: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in STAGES[stage]["parameter_overrides"].split())


@pytest.mark.parametrize("stage", APPLICATION_STAGES)
def test_every_application_stage_deploys_the_packaged_template_in_paris_with_its_own_names(stage):
    parameters = STAGES[stage]
    assert parameters["region"] == "eu-west-3"
    assert parameters["stack_name"].endswith(f"-{stage}")
    assert parameters["s3_prefix"].endswith(f"-{stage}")
    assert "CAPABILITY_IAM" in parameters["capabilities"].split()
    overrides = _overrides(stage)
    assert set(overrides) <= set(TEMPLATE.parameters), "samconfig.toml names a parameter template.yaml does not have"
    assert overrides["Stage"] == stage
    assert re.fullmatch(TEMPLATE.parameters["Stage"]["AllowedPattern"], stage)


@pytest.mark.parametrize("stage", EDGE_STAGES)
def test_every_edge_stage_deploys_its_web_acl_in_us_east_1(stage):
    parameters = STAGES[stage]
    assert parameters["region"] == "us-east-1"
    overrides = _overrides(stage)
    assert set(overrides) <= set(EDGE.parameters), "samconfig.toml names a parameter edge.yaml does not have"
    assert overrides["Stage"] == stage.removesuffix("-edge")
    assert parameters["stack_name"].endswith(f"-{overrides['Stage']}")


def test_the_readme_says_what_every_parameter_is_for():
    deploy = (ROOT / "README.md").read_text().split("\n## Deploy\n", 1)[1]
    documented = set(re.findall(r"^\| `(\w+)` \|", deploy, re.MULTILINE))
    assert set(TEMPLATE.parameters) | set(EDGE.parameters) <= documented, "add it to README's Deploy > Parameters"


def test_production_waits_for_its_change_set_to_be_confirmed():
    assert STAGES["prod"]["confirm_changeset"] is True


def _deploy(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """make deploy's command on a machine with no AWS credentials anywhere; the SAM CLI leaves a mark if run."""
    sam = tmp_path / "sam"
    sam.write_text(f"#!/bin/sh\ntouch {tmp_path / 'sam-ran'}\n")
    sam.chmod(0o755)
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to look for: nothing leaves the machine
    }
    command = [sys.executable, "-m", "infra.deploy", "--sam", str(sam), *arguments]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)


def test_deploy_without_aws_credentials_stops_before_anything_and_says_how_to_configure_them(tmp_path):
    result = _deploy(tmp_path, "--stage", "dev")
    assert result.returncode == 1
    assert "No AWS credentials found" in result.stderr
    assert "aws configure sso" in result.stderr and "AWS_PROFILE" in result.stderr
    assert "Deploying" not in result.stdout
    assert not (tmp_path / "sam-ran").exists()


def test_deploy_to_an_unknown_stage_names_the_known_ones(tmp_path):
    result = _deploy(tmp_path, "--stage", "staging")
    assert result.returncode == 1
    assert "Unknown stage 'staging'" in result.stderr and "dev, prod, prod-edge" in result.stderr
    assert not (tmp_path / "sam-ran").exists()
