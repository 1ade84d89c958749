"""Infrastructure rules checked on template.yaml itself."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.template import FUNCTIONS_DIR, TEMPLATE_PATH, load_template

TEMPLATE = load_template()
FUNCTIONS = TEMPLATE.functions


def test_cfn_lint_reports_no_error():
    templates = [str(TEMPLATE_PATH), str(TEMPLATE_PATH.parent / "edge.yaml")]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *templates], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(function) -> list[dict]:
    statements = []
    for policy in function.policies:
        assert isinstance(policy, dict), f"{function.logical_id}: use explicit statements, not managed policies"
        if "Statement" in policy:
            statements.extend(policy["Statement"])
        else:
            (template_name,) = policy
            assert template_name in {
                "DynamoDBReadPolicy",
                "S3ReadPolicy",
                "SQSSendMessagePolicy",
                "EventBridgePutEventsPolicy",
                "SESCrudPolicy",
                "SSMParameterReadPolicy",
                "AWSSecretsManagerGetSecretValuePolicy",
            }, template_name
    return statements


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_least_privilege(name):
    for statement in _statements(FUNCTIONS[name]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert statement["Effect"] == "Allow"
        for action in actions:
            verb = action.partition(":")[2]
            assert "*" not in verb, f"{name}: wildcard action {action}"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource != "*", f"{name}: Resource '*' on {actions}"
            if isinstance(resource, str):
                assert resource.startswith("arn:"), resource


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_module_exists(name):
    function = FUNCTIONS[name]
    assert (FUNCTIONS_DIR / (function.module.replace(".", "/") + ".py")).is_file()


def test_the_functions_run_on_python_3_12_for_arm64():
    assert {(function.runtime, function.architecture) for function in FUNCTIONS.values()} == {("python3.12", "arm64")}


def test_no_function_is_traced_with_x_ray():
    # README, "Tracing": Powertools' Tracer was measured too costly on a cold start. Tracing: Active would also
    # have SAM give every function X-Ray write access.
    functions = TEMPLATE.of_type("AWS::Serverless::Function").values()
    assert "Tracing" not in TEMPLATE.raw["Globals"]["Function"]
    assert all("Tracing" not in function["Properties"] for function in functions)
    for function in FUNCTIONS.values():
        assert not any("xray:" in str(statement["Action"]) for statement in _statements(function))


def test_one_function_per_route_and_every_route_is_versioned():
    routes = TEMPLATE.routes
    assert len({r.function for r in routes}) == len(routes)
    assert all(r.path.startswith("/v1/") for r in routes)


@pytest.mark.parametrize("name", sorted(TEMPLATE.tables))
def test_tables_have_point_in_time_recovery_and_encryption(name):
    table = TEMPLATE.tables[name]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_documents_bucket_is_private_encrypted_tls_only_and_expires_unconfirmed_uploads():
    bucket = TEMPLATE.buckets["DocumentsBucket"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["delete-unconfirmed-uploads"]["Prefix"] == "uploads/"
    assert rules["delete-unconfirmed-uploads"]["ExpirationInDays"] == 1
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] != ["*"]
    policy = TEMPLATE.resources["DocumentsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in policy)


def test_http_api_uses_a_jwt_authorizer_with_configurable_issuer_and_audience():
    auth = TEMPLATE.http_api["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    assert "Fn::If" in authorizer["JwtConfiguration"]["issuer"]
    assert {"JwtIssuer", "JwtAudience"} <= set(TEMPLATE.raw["Parameters"])
    groups = {r["Properties"]["GroupName"] for r in TEMPLATE.of_type("AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"psychologists", "reviewers", "admins"}


def test_review_queue_indexes_are_sparse_keys_the_storage_writes():
    from tests.storage_view import StorageView

    storage = StorageView()

    indexes = {i["IndexName"]: i for i in TEMPLATE.tables["AppTable"]["GlobalSecondaryIndexes"]}
    keys = {name: [k["AttributeName"] for k in index["KeySchema"]] for name, index in indexes.items()}
    assert keys[storage.QUEUE_INDEX] == ["review_pk", "review_sk"]
    assert keys[storage.NATIONAL_QUEUE_INDEX] == ["review_status", "review_sk"]
    for name in (storage.QUEUE_INDEX, storage.NATIONAL_QUEUE_INDEX):
        projected = set(indexes[name]["Projection"]["NonKeyAttributes"])
        assert {"id", "status", "version", "department", "submitted_at", "updated_at", "fields"} <= projected
    queue_policy = _statements(FUNCTIONS["ListReviewQueueFunction"])
    table_actions = [action for s in queue_policy for action in s["Action"] if action.startswith("dynamodb:")]
    assert table_actions == ["dynamodb:Query"], "the queue only queries, never scans"


def test_directory_table_has_string_pk_and_sk():
    table = TEMPLATE.tables["DirectoryTable"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {"pk": "S", "sk": "S"}


def test_cursor_secret_comes_from_secrets_manager_and_mail_from_ses():
    assert FUNCTIONS["ListReviewQueueFunction"].environment["CURSOR_SECRET_ARN"] == {"Ref": "ReviewCursorSecret"}
    assert TEMPLATE.resources["ReviewCursorSecret"]["Type"] == "AWS::SecretsManager::Secret"
    notify = _statements(FUNCTIONS["NotifyDecisionFunction"])
    assert any(s["Action"] == ["ses:SendEmail"] for s in notify)
    assert TEMPLATE.resources["MailIdentity"]["Type"] == "AWS::SES::EmailIdentity"


def test_admin_page_is_hosted_privately_behind_cloudfront_with_a_strict_csp():
    bucket = TEMPLATE.buckets["AdminSiteBucket"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    distribution = TEMPLATE.resources["AdminDistribution"]["Properties"]["DistributionConfig"]
    (s3_origin,) = [o for o in distribution["Origins"] if "S3OriginConfig" in o]
    assert "OriginAccessControlId" in s3_origin
    assert distribution["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    policy = TEMPLATE.resources["AdminHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp = policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    api_behaviour = next(b for b in distribution["CacheBehaviors"] if b["PathPattern"] == "/v1/*")
    assert api_behaviour["ResponseHeadersPolicyId"] == {"Ref": "ApiHeadersPolicy"}


@pytest.mark.parametrize("folder", ["admin", "public"])
def test_pages_have_no_inline_script_or_style(folder):
    import re

    from infra.template import ROOT

    html = (ROOT / folder / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script> is refused by the CSP"
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)


def test_the_public_page_is_served_from_the_same_private_bucket_and_may_load_only_its_tiles_from_elsewhere():
    from urllib.parse import urlsplit

    from infra.template import ROOT

    policy = TEMPLATE.resources["AdminSiteBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (reads,) = [statement for statement in policy if statement["Effect"] == "Allow"]
    assert [_sub(resource) for resource in reads["Resource"]] == [
        "${AdminSiteBucket.Arn}/admin/*",
        "${AdminSiteBucket.Arn}/public/*",
    ]
    index = TEMPLATE.resources["AdminIndexFunction"]["Properties"]["FunctionCode"]
    assert "'/public' + (request.uri === '/' ? '/index.html' : request.uri)" in index
    headers = TEMPLATE.resources["AdminHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"].split(";")
    )
    tiles = json.loads((ROOT / "public" / "config.json").read_text(encoding="utf-8"))["tiles"]["url"]
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(tiles))
    assert csp["img-src"].split() == ["'self'", "data:", "blob:", origin], "config.json's tiles and the CSP differ"
    for directive in ("default-src", "script-src", "style-src", "connect-src"):
        assert csp[directive] == "'self'", directive


def test_sessions_table_keys_counters_and_sessions_and_indexes_them_by_year_and_by_psychologist():
    table = TEMPLATE.tables["SessionsTable"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    by_year, by_psychologist = table["GlobalSecondaryIndexes"]
    assert by_year["IndexName"] == "ByYear"
    assert [k["AttributeName"] for k in by_year["KeySchema"]] == ["year_shard", "tally_sk"]
    assert by_year["Projection"]["ProjectionType"] == "ALL"
    assert by_psychologist["IndexName"] == "ByPsychologist"
    assert [k["AttributeName"] for k in by_psychologist["KeySchema"]] == ["psychologist_sub", "statement_sk"]
    assert TEMPLATE.resources["SessionsTable"]["DeletionPolicy"] == "Retain"


def test_only_the_functions_using_powertools_idempotency_may_touch_its_table():
    def grants(function) -> bool:
        return any(
            statement["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]} for statement in _statements(function)
        )

    users = set()
    for name, function in FUNCTIONS.items():
        source = (FUNCTIONS_DIR / (function.module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        if "msp.idempotency" in source:
            users.add(name)
        assert grants(function) == (name in users), name
    assert users == {"CreateCandidatureFunction", "ImportConventionFunction"}, (
        "a declaration's record is its session item, not IdempotencyTable"
    )


def test_the_session_functions_write_only_what_a_declaration_or_cancellation_writes():
    def actions(name: str, table: str) -> set[str]:
        return {
            action
            for statement in _statements(FUNCTIONS[name])
            if statement["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
            for action in statement["Action"]
        }

    assert actions("DeclareSessionFunction", "SessionsTable") == {
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }
    # A cancelled session is updated into its declaration's record, never deleted.
    assert actions("CancelSessionFunction", "SessionsTable") == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    # The access journal: entries are only added (put) by the session routes, listed (query) by admins.
    assert actions("DeclareSessionFunction", "AccessJournalTable") == {"dynamodb:PutItem"}
    assert actions("CancelSessionFunction", "AccessJournalTable") == {"dynamodb:PutItem"}
    assert actions("LookupSessionQuotaFunction", "AccessJournalTable") == {"dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert actions("ListAccessJournalFunction", "AccessJournalTable") == {"dynamodb:Query"}
    readers = {name for name in FUNCTIONS if actions(name, "AccessJournalTable")}
    assert readers == {
        "DeclareSessionFunction",
        "CancelSessionFunction",
        "LookupSessionQuotaFunction",
        "ListAccessJournalFunction",
    }


def test_the_access_journal_expires_after_the_retention_the_template_sets():
    table = TEMPLATE.tables["AccessJournalTable"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    retention = TEMPLATE.raw["Parameters"]["AccessJournalRetentionDays"]
    assert retention["Type"] == "Number" and retention["Default"] >= 1
    variables = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ACCESS_JOURNAL_RETENTION_DAYS"] == {"Ref": "AccessJournalRetentionDays"}
    assert variables["ACCESS_JOURNAL_TABLE"] == {"Ref": "AccessJournalTable"}


def test_the_deployed_clock_is_the_real_one():
    """make run TODAY=... moves the local stack's clock in its own process; nothing deployed can."""
    switch = re.compile(r"today|clock|shift|fake_?date", re.IGNORECASE)
    assert not [name for name in TEMPLATE.raw["Parameters"] if switch.search(name)]
    variables = dict(TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"])
    for function in FUNCTIONS.values():
        variables |= function.environment
    assert not [name for name in variables if switch.search(name)]
    callers = [
        path.relative_to(FUNCTIONS_DIR)
        for path in FUNCTIONS_DIR.rglob("*.py")
        if "shift_to(" in path.read_text(encoding="utf-8") and path.name != "clock.py"
    ]
    assert callers == [], "only the local stack and the tests move the clock"


def test_the_patient_key_secret_is_generated_retained_and_read_only_where_needed():
    secret = TEMPLATE.resources["PatientKeySecret"]
    assert secret["DeletionPolicy"] == "Retain"
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "secret" and generated["PasswordLength"] >= 32
    readers = {name for name, function in FUNCTIONS.items() if function.environment.get("PATIENT_KEY_SECRET_ARN")}
    # Declaring and looking up key patients; the statement and the export derive each psychologist's references.
    assert readers == {
        "DeclareSessionFunction",
        "LookupSessionQuotaFunction",
        "ListMySessionsFunction",
        "ExportMyDataFunction",
    }


def _given_secrets(function) -> set[str]:
    """The secrets a function is given by ARN (X_SECRET_ARN: !Ref S)."""
    return {
        value["Ref"]
        for key, value in function.environment.items()
        if key.endswith("_SECRET_ARN") and isinstance(value, dict) and value.get("Ref") in TEMPLATE.secrets
    }


def _readable_secrets(function) -> list:
    return [s["Resource"] for s in _statements(function) if "secretsmanager:GetSecretValue" in s["Action"]]


def test_no_secret_value_reaches_an_environment_variable():
    assert "{{resolve:" not in TEMPLATE_PATH.read_text(encoding="utf-8"), "dynamic references put values in variables"
    for name, function in FUNCTIONS.items():
        for key, value in function.environment.items():
            if "SECRET" in key:
                assert key.endswith("_SECRET_ARN") and value == {"Ref": value.get("Ref")}, (name, key)
                assert value["Ref"] in TEMPLATE.secrets, (name, key)


def test_each_function_reads_exactly_the_secrets_it_is_given():
    for name, function in FUNCTIONS.items():
        if name == "CursorSecretRotationFunction":
            continue
        granted = _readable_secrets(function)
        # One statement per secret, on that secret alone.
        assert sorted(r["Ref"] for r in granted) == sorted(_given_secrets(function)), name
    cursor_readers = {name for name, f in FUNCTIONS.items() if f.environment.get("CURSOR_SECRET_ARN")}
    assert cursor_readers == {"ListReviewQueueFunction", "ListAccessJournalFunction", "ListMySessionsFunction"}
    search_readers = {name for name, f in FUNCTIONS.items() if f.environment.get("SEARCH_CURSOR_SECRET_ARN")}
    assert search_readers == {"SearchPsychologistsFunction"}


def test_the_cursor_secrets_rotate_long_after_any_cursor_expires():
    from msp.cursors import LIST_CURSOR_LIFETIME, SEARCH_CURSOR_LIFETIME, SIGNING_DELAY

    rotated = {"ReviewCursorSecret", "SearchCursorSecret"}
    schedules = TEMPLATE.of_type("AWS::SecretsManager::RotationSchedule")
    assert {schedule["Properties"]["SecretId"]["Ref"] for schedule in schedules.values()} == rotated
    longest = max(LIST_CURSOR_LIFETIME, SEARCH_CURSOR_LIFETIME) + SIGNING_DELAY
    for schedule in schedules.values():
        props = schedule["Properties"]
        assert props["RotationLambdaARN"] == {"Fn::GetAtt": ["CursorSecretRotationFunction", "Arn"]}
        interval = dt.timedelta(days=props["RotationRules"]["AutomaticallyAfterDays"])
        assert interval >= 30 * longest, "a cursor must never meet two rotations"
        permission = TEMPLATE.resources[schedule["DependsOn"]]["Properties"]
        assert permission["Principal"] == "secretsmanager.amazonaws.com"
        assert permission["SourceArn"] == props["SecretId"]
    rotation = FUNCTIONS["CursorSecretRotationFunction"]
    (statement,) = _statements(rotation)
    assert sorted(statement["Action"]) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert sorted(r["Ref"] for r in statement["Resource"]) == sorted(rotated)
    assert rotation.events == {} and _given_secrets(rotation) == set()


def test_no_dev_switch_reaches_the_template():
    assert "DEV_SECRET" not in TEMPLATE_PATH.read_text(encoding="utf-8")
    for name, function in FUNCTIONS.items():
        assert not [key for key in function.environment if key.endswith("_DEV_SECRET")], name


@pytest.mark.parametrize(
    ("route", "function"),
    [
        ("POST /v1/sessions", "DeclareSessionFunction"),
        ("DELETE /v1/sessions/{session_id}", "CancelSessionFunction"),
        ("POST /v1/sessions/quota", "LookupSessionQuotaFunction"),
        ("GET /v1/admin/psychologists/{psychologist_sub}/access-journal", "ListAccessJournalFunction"),
    ],
)
def test_session_routes_are_authorized(route, function):
    (found,) = [r for r in TEMPLATE.routes if r.route_key == route]
    assert found.function == function and not found.public


def _sub(value) -> str:
    """A resource's text: a literal, or a !Sub's pattern (other intrinsics read as empty)."""
    return value.get("Fn::Sub", "") if isinstance(value, dict) else value


def test_the_tally_runs_nightly_and_checks_every_morning_whether_the_past_year_closed_paris_time():
    """The closing date is policy data: the closing run is scheduled daily and tallies only the day after it."""
    tally = TEMPLATE.resources["TallySessionsFunction"]["Properties"]
    schedules = {name: event["Properties"] for name, event in tally["Events"].items()}
    assert {event["Type"] for event in tally["Events"].values()} == {"ScheduleV2"}
    assert schedules["Nightly"]["ScheduleExpression"] == "cron(30 2 * * ? *)"
    assert schedules["Closing"]["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert {json.loads(s["Input"])["kind"] for s in schedules.values()} == {"nightly", "closing"}
    assert {s["ScheduleExpressionTimezone"] for s in schedules.values()} == {"Europe/Paris"}
    assert tally["Timeout"] == 900 and tally["ReservedConcurrentExecutions"] == 1


@pytest.mark.parametrize("job", ["TallySessionsFunction", "PurgeCandidaturesFunction"])
def test_a_long_job_may_invoke_itself_and_nothing_else(job):
    properties = TEMPLATE.resources[job]["Properties"]
    (invoke,) = [s for s in _statements(FUNCTIONS[job]) if "lambda:InvokeFunction" in s["Action"]]
    assert _sub(invoke["Resource"]).endswith(":function:" + _sub(properties["FunctionName"]))
    for name, function in FUNCTIONS.items():
        if name not in {"TallySessionsFunction", "PurgeCandidaturesFunction"}:
            assert not [s for s in _statements(function) if any(a.startswith("lambda:") for a in s["Action"])], name


def test_reports_are_written_by_the_tally_only_and_read_by_the_stats_routes():
    for name, function in FUNCTIONS.items():
        for statement in _statements(function):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            on_reports = [r for r in resources if _sub(r).endswith("/reports/*")]
            if on_reports and "s3:PutObject" in statement["Action"]:
                assert name == "TallySessionsFunction"
            if on_reports and "s3:GetObject" in statement["Action"]:
                assert name == "GetStatsFunction"
    # The open statistics read a year's pointer and the summary it names, never a whole report or a CSV file.
    (read,) = [s for s in _statements(FUNCTIONS["GetPublicStatsFunction"]) if s["Action"] == ["s3:GetObject"]]
    assert [_sub(resource).rsplit("/reports/", 1)[1] for resource in read["Resource"]] == [
        "*/latest.json",
        "*/summary.json",
    ]
    (query,) = [s for s in _statements(FUNCTIONS["TallySessionsFunction"]) if s["Action"] == ["dynamodb:Query"]]
    assert _sub(query["Resource"]) == "${SessionsTable.Arn}/index/ByYear"


def test_tally_checkpoints_expire_with_the_bucket_lifecycle():
    rules = {r["Id"]: r for r in TEMPLATE.buckets["DocumentsBucket"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-tally-work"]["Prefix"] == "tally-work/"


def test_the_stats_route_is_authorized():
    (found,) = [r for r in TEMPLATE.routes if r.route_key == "GET /v1/stats"]
    assert found.function == "GetStatsFunction" and not found.public


def test_only_the_patients_routes_are_public_and_they_read_only_public_data():
    public = {route.route_key: route.function for route in TEMPLATE.routes if route.public}
    directory = {
        "GET /v1/psychologists/search": "SearchPsychologistsFunction",
        "GET /v1/psychologists/{psychologist_id}": "GetPsychologistProfileFunction",
    }
    assert public == directory | {
        "GET /v1/places": "SuggestPlacesFunction",
        "GET /v1/public/stats": "GetPublicStatsFunction",
        "GET /v1/openapi.json": "GetOpenApiFunction",
    }
    for function in directory.values():
        for statement in _statements(FUNCTIONS[function]):
            if statement["Action"] == ["secretsmanager:GetSecretValue"]:
                assert statement["Resource"] == {"Ref": "SearchCursorSecret"}, "its cursors' key, nothing else"
                continue
            assert statement["Resource"] == {"Fn::GetAtt": ["DirectoryTable", "Arn"]}, function
            assert set(statement["Action"]) <= {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"}
            if statement["Action"] != ["dynamodb:Query"]:
                assert "dynamodb:LeadingKeys" in str(statement["Condition"]), "single-item reads are scoped by key"
    # The communes are shipped with the code: the places function reads nothing.
    assert FUNCTIONS["SuggestPlacesFunction"].policies == []
    secret = FUNCTIONS["SearchPsychologistsFunction"].environment["SEARCH_CURSOR_SECRET_ARN"]
    assert secret == {"Ref": "SearchCursorSecret"}


def test_reviewer_scopes_come_from_the_token_trigger_not_from_a_writable_attribute():
    pool = TEMPLATE.resources["UserPool"]["Properties"]
    trigger = pool["LambdaConfig"]["PreTokenGenerationConfig"]
    assert trigger == {"LambdaArn": {"Fn::GetAtt": ["IssueTokenClaimsFunction", "Arn"]}, "LambdaVersion": "V2_0"}
    assert pool["UserPoolTier"] in {"ESSENTIALS", "PLUS"}, "access-token customization needs Essentials or Plus"
    client = TEMPLATE.resources["UserPoolClient"]["Properties"]
    assert "custom:departments" not in client["WriteAttributes"] + client["ReadAttributes"]
    permission = TEMPLATE.resources["IssueTokenClaimsPermission"]["Properties"]
    assert permission["Principal"] == "cognito-idp.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    (read,) = _statements(FUNCTIONS["IssueTokenClaimsFunction"])
    assert read["Action"] == ["dynamodb:GetItem"]
    assert read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["REVIEWER#*"]
    policy = TEMPLATE.resources["IssueTokenClaimsUserPoolPolicy"]["Properties"]
    (mfa,) = policy["PolicyDocument"]["Statement"]
    assert mfa["Action"] == ["cognito-idp:AdminGetUser"] and mfa["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    for name in ("GetReviewerDepartmentsFunction", "AssignReviewerDepartmentsFunction"):
        for statement in _statements(FUNCTIONS[name]):
            assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["REVIEWER#*"], name


def test_public_routes_have_tighter_throttles_and_reserved_concurrency():
    api = TEMPLATE.http_api
    stage_rate = api["DefaultRouteSettings"]["ThrottlingRateLimit"]
    public = [route for route in TEMPLATE.routes if route.public]
    for route in public:
        assert api["RouteSettings"][route.route_key]["ThrottlingRateLimit"] < stage_rate, route.route_key
        reserved = TEMPLATE.resources[route.function]["Properties"]["ReservedConcurrentExecutions"]
        assert 0 < reserved <= 40, route.function
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": ["HasApiOriginDomain", True, False]}


def test_the_edge_enforces_tls_1_2_a_web_acl_and_logs_in_prod():
    distribution = TEMPLATE.resources["AdminDistribution"]["Properties"]["DistributionConfig"]
    condition, with_certificate, _ = distribution["ViewerCertificate"]["Fn::If"]
    assert condition == "HasCertificate" and with_certificate["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert distribution["WebACLId"]["Fn::If"][:2] == ["HasEdgeWebAcl", {"Ref": "EdgeWebAclArn"}]
    assert distribution["Logging"]["Bucket"] == {"Fn::GetAtt": ["AccessLogsBucket", "RegionalDomainName"]}
    rule = TEMPLATE.raw["Rules"]["ProdEdgeIsProtected"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    required = {a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for a in rule["Assertions"]}
    assert required == {"EdgeWebAclArn", "CertificateArn", "ApiOriginDomainName"}
    edge = load_template(TEMPLATE_PATH.parent / "edge.yaml")
    acl = edge.resources["EdgeWebAcl"]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT"
    statements = [rule["Statement"] for rule in acl["Rules"]]
    assert (
        sum("RateBasedStatement" in s and s["RateBasedStatement"]["AggregateKeyType"] == "IP" for s in statements) == 2
    )
    managed = {s["ManagedRuleGroupStatement"]["Name"] for s in statements if "ManagedRuleGroupStatement" in s}
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= managed


def test_document_reads_and_writes_are_recorded_by_a_trail_of_their_own():
    trail = TEMPLATE.resources["DocumentsTrail"]["Properties"]
    assert trail["S3BucketName"] == {"Ref": "DocumentsTrailBucket"} and trail["EnableLogFileValidation"] is True
    (selector,) = trail["AdvancedEventSelectors"]
    fields = {f["Field"]: f for f in selector["FieldSelectors"]}
    assert fields["eventCategory"]["Equals"] == ["Data"] and "readOnly" not in fields, "reads and writes"
    prefixes = [_sub(p) for p in fields["resources.ARN"]["StartsWith"]]
    assert {p.rsplit("/", 2)[-2] for p in prefixes} == {"documents", "uploads"}
    # No function may touch the trail's bucket.
    for name, function in FUNCTIONS.items():
        assert "DocumentsTrailBucket" not in json.dumps(function.policies), name


def test_every_function_logs_to_a_group_of_its_own_kept_for_the_retention_parameter():
    from tests.unit.test_failure_alarms import expanded  # the Fn::ForEach loops written out

    groups = [group["Properties"] for group in expanded().values() if group["Type"] == "AWS::Logs::LogGroup"]
    for name in FUNCTIONS:
        own = [group for group in groups if group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}]
        assert len(own) == 1, f"{name}: no log group /aws/lambda/<its name> in the template"
    assert all(group["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in groups)
    assert len(groups) == len(FUNCTIONS) + 1  # and the API's access log


def test_the_log_retention_is_a_parameter_taking_what_cloudwatch_accepts():
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    accepted = PROVIDER_SCHEMA_MANAGER.get_resource_schema("eu-west-3", "AWS::Logs::LogGroup").schema
    parameter = TEMPLATE.parameters["LogRetentionDays"]
    assert parameter["Default"] == 90
    assert parameter["AllowedValues"] == accepted["properties"]["RetentionInDays"]["enum"]


def _access_log_fields() -> dict[str, str]:
    settings = TEMPLATE.http_api["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    return json.loads(settings["Format"])


def test_api_access_logs_are_json_lines_carrying_the_request_id_and_what_an_operator_needs():
    fields = _access_log_fields()
    assert fields["requestId"] == "$context.requestId"  # the functions' correlation id (API_GATEWAY_HTTP)
    assert {
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latency": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
        "userAgent": "$context.identity.userAgent",
    }.items() <= fields.items()


def test_api_access_logs_hold_no_path_value_query_string_or_credential():
    variables = set(_access_log_fields().values())
    # $context.path has the ids a route takes; the only header logged is the user agent.
    assert not any(word in value.lower() for value in variables for word in ("path", "query", "header", "token"))
    assert "$context.routeKey" in variables


def test_the_functions_write_their_metrics_in_the_namespace_parameter():
    environment = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert TEMPLATE.parameters["MetricsNamespace"]["Default"] == "MonSoutienPsy"
    namespace = {function.environment["POWERTOOLS_METRICS_NAMESPACE"]["Ref"] for function in FUNCTIONS.values()}
    assert namespace == {"MetricsNamespace"}, "a function overrides the metrics' namespace"
