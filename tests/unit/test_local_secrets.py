"""The local stack's stand-in for Secrets Manager, derived from the template."""

from __future__ import annotations

import json
import stat

from infra.provision import dev_secrets, generated_secret
from infra.template import LocalNames, load_template
from msp.cursors import CursorKeys
from msp.sessions.rules import PatientKeyring

TEMPLATE = load_template()


def test_a_generated_value_has_the_templates_shape():
    document = json.loads(generated_secret(TEMPLATE.secrets["PatientKeySecret"]))
    assert document["key_id"] == "k1" and len(document["secret"]) == 64 and document["secret"].isalnum()
    assert PatientKeyring.from_secret(json.dumps(document)).version_for(2026).key_id == "k1"


def test_dev_secrets_are_kept_private_and_stable_across_restarts(tmp_path):
    names = LocalNames(TEMPLATE, "msp-unit")
    first = dev_secrets(TEMPLATE, names, tmp_path)
    assert list(first) == ["CURSOR_DEV_SECRET", "PATIENT_KEY_DEV_SECRET", "SEARCH_CURSOR_DEV_SECRET"]
    assert dev_secrets(TEMPLATE, names, tmp_path) == first
    kept = sorted(path.name for path in tmp_path.iterdir())
    assert kept == ["PatientKeySecret.json", "ReviewCursorSecret.json", "SearchCursorSecret.json"]
    assert {stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()} == {0o600}


def test_the_cursor_dev_secrets_are_keys_the_functions_accept(tmp_path):
    values = dev_secrets(TEMPLATE, LocalNames(TEMPLATE, "msp-unit"), tmp_path)
    for variable in ("CURSOR_DEV_SECRET", "SEARCH_CURSOR_DEV_SECRET"):
        keys = CursorKeys.from_secret(values[variable])
        assert len(keys.current) == 64 and keys.previous is None
    assert values["CURSOR_DEV_SECRET"] != values["SEARCH_CURSOR_DEV_SECRET"]


def test_local_functions_get_a_local_secret_arn():
    environment = LocalNames(TEMPLATE, "msp-unit").environment()
    assert environment["PATIENT_KEY_SECRET_ARN"].endswith(":secret:msp-unit-PatientKeySecret")
    assert environment["CURSOR_SECRET_ARN"].endswith(":secret:msp-unit-ReviewCursorSecret")
    assert environment["SEARCH_CURSOR_SECRET_ARN"].endswith(":secret:msp-unit-SearchCursorSecret")
    assert environment["SESSIONS_TABLE"] == "msp-unit-SessionsTable"
