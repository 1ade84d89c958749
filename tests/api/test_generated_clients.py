"""Clients generated from the committed OpenAPI document, as a client developer would make them.

openapi-python-client (a dev dependency) must generate the Python client without a single warning, and that
client, unchanged, takes a candidature from creation to submission on the local stack; openapi-typescript's
types (npm, with typescript: make test installs both under .tools/npm) must compile, strictly, in a program
using them. Every pattern of the document is read as a client reads it, an ECMA-262 regular expression (node),
and where the API checks one itself its verdicts are the document's.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from pydantic import ValidationError

from infra.api_client import SAMPLE_PDF
from infra.seed import DOCUMENT_KINDS
from infra.template import FUNCTIONS_DIR, ROOT
from msp.candidatures.models import CandidatureFields
from msp.directory.search import SearchQuery

DOCUMENT = FUNCTIONS_DIR / "openapi.json"
VENV_BIN = Path(sys.executable).parent
NPM_BIN = ROOT / ".tools" / "npm" / "node_modules" / ".bin"
PACKAGE = "msp_generated_client"


def _run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The generator formats its output with ruff, which it looks for on PATH.
    environment = os.environ | {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def generated_python(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    where = tmp_path_factory.mktemp("python-client")
    generator = VENV_BIN / "openapi-python-client"
    assert generator.exists(), "openapi-python-client is missing from the virtualenv: run 'make venv'"
    command = [generator, "generate", "--path", DOCUMENT, "--output-path", where / PACKAGE, "--meta", "none"]
    result = _run(command, where)
    return result, where


def test_the_python_client_is_generated_without_a_warning(generated_python):
    result, where = generated_python
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert (where / PACKAGE / "api" / "default" / "post_candidatures.py").exists(), output


def test_the_typescript_types_compile_in_a_strict_program(tmp_path):
    for tool in ("openapi-typescript", "tsc"):
        assert (NPM_BIN / tool).exists(), f"{tool} is missing under .tools/npm: run 'make test' (npm ci)"
    generated = _run([NPM_BIN / "openapi-typescript", DOCUMENT, "--output", tmp_path / "api.d.ts"], tmp_path)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # A program a client would write: typed bodies, answers and errors; what the document forbids does not compile.
    (tmp_path / "client.ts").write_text(
        """
import type { components, paths } from "./api";

type Schemas = components["schemas"];
const fields: Schemas["CandidatureFields"] = {
  civility: "mme",
  practices: [
    { address: "1 rue de Rivoli", postcode: "75001", city: "Paris", department: "75", lat: 48.86, lon: 2.34 },
  ],
  publics: ["adultes"],
};
const answer: Schemas["Candidature"] = {
  civility: "mme",
  id: "3f1c7d9e-8a2b-4c5d-9e0f-1a2b3c4d5e6f",
  status: "draft",
  version: 1,
  created_at: "2026-01-05T09:00:00.000000Z",
  updated_at: "2026-01-05T09:00:00.000000Z",
  submitted_at: null,
  status_reason: null,
  department: "75",
  documents: [],
  previous_candidature_id: null,
  convention_start: null,
  convention_end: null,
};
const refused: Schemas["Error"] = { error: { code: "validation_error", message: "…", details: [{ field: "email" }] } };
type SearchQuery = paths["/v1/psychologists/search"]["get"]["parameters"]["query"];
const search: SearchQuery = { lat: 48.86, lon: 2.34, public: "enfants", language: "fr" };
type Declare = paths["/v1/sessions"]["post"];
const header: Declare["parameters"]["header"] = { "Idempotency-Key": "d3b0c442-98fc-4c1c-b4e5-7a1f2e3d4c5b" };
const conflict: Declare["responses"][409]["content"]["application/json"] = refused;
// @ts-expect-error: a status the document does not list
const unknown: Schemas["Candidature"]["status"] = "archived";
// @ts-expect-error: publics come from a closed list
const wrong: Schemas["CandidatureFields"]["publics"] = ["seniors"];
// @ts-expect-error: an answer leaves out what a draft has not given, it never sends null
const cleared: Schemas["Candidature"]["phone"] = null;
export { fields, answer, search, header, conflict, unknown, wrong, cleared };
""",
        encoding="utf-8",
    )
    compiled = _run([NPM_BIN / "tsc", "--noEmit", "--strict", "--target", "es2022", "client.ts"], tmp_path)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


NODE = "node"
# Names the API accepts or refuses for reasons a pattern states: scripts, digits, marks, separators.
NAMES = [
    "Éloïse",
    "Jean-Pierre",
    "O’Brien",
    "D'Artagnan",
    "Ζωή",
    "李",
    "Nguyễn",
    "Łukasz",
    "ʻOkina",
    "ǅemal",
    "Jean42",
    "½",
    "Ⅻ",
    "e\u0301",
    "Jean  Pierre",
    "-Jean",
    "Jean-",
    "Jean_",
    "J.",
    "A B",
    "Anne–Marie",
]
# Name searches. Not among them: a name made only of spacing accents (´, ¨, ˜), which the pattern lets through
# and the API refuses, folding them to nothing.
SEARCHED = ["a", "é", "Le G", "1", "!", "---", "'", "’", " . ", "\u0301", "e\u0301", "李", "-a-"]


def _ecma_matches(patterns: list[str], samples: list[tuple[str, str]]) -> tuple[list[str], list[bool]]:
    """What ECMA-262 (node, unicode mode, as JSON Schema reads a pattern) makes of the patterns and samples."""
    script = """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const invalid = input.patterns.filter((p) => { try { new RegExp(p, "u"); return false; } catch { return true; } });
const matches = input.samples.map(([p, text]) => new RegExp(p, "u").test(text));
process.stdout.write(JSON.stringify({ invalid, matches }));
"""
    result = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps({"patterns": patterns, "samples": samples}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(result.stdout)
    return answer["invalid"], answer["matches"]


def _patterns(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(value) for value in node))
    return set()


def _accepted(model, data) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


def test_documented_patterns_are_ecma_regular_expressions_that_agree_with_the_api():
    patterns = sorted(_patterns(json.loads(DOCUMENT.read_text(encoding="utf-8"))))
    name_pattern = CandidatureFields.model_json_schema()["properties"]["first_name"]["anyOf"][0]["pattern"]
    search_pattern = next(p for p in patterns if p.startswith("[^"))
    samples = [(name_pattern, name) for name in NAMES] + [(search_pattern, name) for name in SEARCHED]
    invalid, matches = _ecma_matches(patterns, samples)
    assert not invalid
    accepted = [_accepted(CandidatureFields, {"first_name": name}) for name in NAMES] + [
        _accepted(SearchQuery, {"lat": 48.85, "lon": 2.35, "name": name}) for name in SEARCHED
    ]
    assert matches == accepted, [sample for sample, a, m in zip(samples, accepted, matches, strict=True) if a != m]


def _import(where: Path, *modules: str) -> list[ModuleType]:
    sys.path.insert(0, str(where))
    try:
        return [importlib.import_module(f"{PACKAGE}{module}") for module in modules]
    finally:
        sys.path.remove(str(where))


def test_the_generated_client_takes_a_candidature_to_submission(generated_python, stack, psychologist, unique_fields):
    result, where = generated_python
    assert result.returncode == 0, result.stdout + result.stderr
    package, models, create, upload, read, submit = _import(
        where,
        "",
        ".models",
        ".api.default.post_candidatures",
        ".api.default.post_candidatures_candidature_id_documents",
        ".api.default.get_candidatures_candidature_id",
        ".api.default.post_candidatures_candidature_id_submit",
    )
    # Undocumented statuses raise: every answer below must be one the document lists.
    _, token = psychologist
    client = package.AuthenticatedClient(base_url=stack.base_url, token=token, raise_on_unexpected_status=True)

    created = create.sync_detailed(
        client=client, body=models.CandidatureFields.from_dict(unique_fields()), idempotency_key=str(uuid.uuid4())
    )
    assert created.status_code == 201, created.content
    draft = created.parsed
    assert isinstance(draft, models.Candidature) and draft.status == models.Status.DRAFT
    assert created.headers["location"] == f"/v1/candidatures/{draft.id}"

    for kind in DOCUMENT_KINDS:
        request = models.DocumentUploadRequest(
            kind=models.DocumentKind(kind), content_type=models.DocumentType.APPLICATIONPDF, size=len(SAMPLE_PDF)
        )
        ticket = upload.sync(draft.id, client=client, body=request)
        assert isinstance(ticket, models.DocumentUpload), ticket
        # The presigned POST goes to the S3 server as a browser sends the form: its fields, then the file.
        sent = httpx.post(
            ticket.upload.url,
            data=ticket.upload.fields.to_dict(),
            files={"file": (f"{kind}.pdf", SAMPLE_PDF, "application/pdf")},
            timeout=30,
        )
        assert sent.status_code in (200, 201, 204), sent.text
        stack.notifier.deliver_pending()
        assert _checked_status(read, client, draft.id, ticket.document_id) == models.DocumentStatus.VERIFIED

    submitted = submit.sync_detailed(draft.id, client=client)
    assert submitted.status_code == 200, submitted.content
    assert isinstance(submitted.parsed, models.Candidature)
    assert submitted.parsed.status == models.Status.SUBMITTED
    assert [document.status for document in submitted.parsed.documents] == [models.DocumentStatus.VERIFIED] * 3


def _checked_status(read: ModuleType, client, candidature_id: uuid.UUID, document_id: uuid.UUID, timeout: float = 15):
    """The document's status once its upload has been checked (pending until then, or until the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        candidature = read.sync(candidature_id, client=client)
        document = next(d for d in candidature.documents if d.document_id == document_id)
        if document.status.value != "pending" or time.monotonic() > deadline:
            return document.status
        time.sleep(0.1)
