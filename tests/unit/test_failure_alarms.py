"""template.yaml's failure handling: each asynchronously invoked function's on-failure queue, its alarm, and the
alarms of every function and of the API, read in the template as CloudFormation expands it (Fn::ForEach, by
cfn-lint's own language-extensions transform)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from infra.template import ROOT, LocalNames, load_template

TEMPLATE = load_template()
# Event sources that invoke a function asynchronously (S3 notifications, EventBridge rules, schedules).
ASYNC_SOURCES = {"S3", "EventBridgeRule", "ScheduleV2", "Schedule", "CloudWatchEvent", "SNS"}
ALARM_TOPIC = {"Ref": "AlarmTopic"}


@cache
def expanded() -> dict[str, Any]:
    """Resources after the language extensions (the loops written out), before the SAM transform."""
    from cfnlint.decode import decode
    from cfnlint.template import Template
    from cfnlint.template.transforms import Transform

    raw, problems = decode(str(ROOT / "template.yaml"))
    assert not problems and raw is not None
    template = Template(str(ROOT / "template.yaml"), raw, ["eu-west-3"])
    assert Transform().transform(template) == []
    return template.template["Resources"]


def _alarms() -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in expanded().items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _async_functions() -> set[str]:
    return {
        name
        for name, function in TEMPLATE.functions.items()
        if any(event["Type"] in ASYNC_SOURCES for event in function.events.values())
    }


def test_the_asynchronously_invoked_functions_are_the_ones_expected():
    assert _async_functions() == {
        "VerifyDocumentUploadFunction",
        "NotifyDecisionFunction",
        "EndConventionsFunction",
        "SendReviewDigestFunction",
        "PurgeCandidaturesFunction",
        "TallySessionsFunction",
    }


def test_each_asynchronously_invoked_function_sends_its_failures_to_a_queue_of_its_own():
    destinations = {}
    for name in _async_functions():
        function = TEMPLATE.functions[name]
        config = TEMPLATE.resources[name]["Properties"]["EventInvokeConfig"]
        assert config["DestinationConfig"]["OnFailure"]["Type"] == "SQS", name
        queue = function.async_invoke.on_failure_queue
        assert queue in TEMPLATE.queues, name
        assert 0 <= function.async_invoke.maximum_retry_attempts <= 2
        # Long enough for a throttled event to wait for a running invocation of the same function.
        assert function.timeout < function.async_invoke.maximum_event_age_seconds <= 21600
        destinations[name] = queue
    assert len(set(destinations.values())) == len(destinations), "one queue per function"
    assert set(destinations.values()) == set(TEMPLATE.queues)


def test_each_queue_keeps_its_records_14_days_encrypted():
    for name, queue in TEMPLATE.queues.items():
        assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600, name
        assert queue["SqsManagedSseEnabled"] is True, name


def test_each_queue_has_an_alarm_as_soon_as_a_record_waits():
    watched = {}
    for name, alarm in _alarms().items():
        if alarm.get("Namespace") == "AWS/SQS":
            assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible", name
            assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold"), name
            assert alarm["AlarmActions"] == [ALARM_TOPIC], name
            ((dimension,),) = [alarm["Dimensions"]]
            assert dimension["Name"] == "QueueName"
            watched[dimension["Value"]["Fn::GetAtt"][0]] = name
    assert set(watched) == set(TEMPLATE.queues)


def test_every_function_has_its_errors_and_throttles_alarms():
    found: dict[str, set[str]] = {}
    for name, alarm in _alarms().items():
        if alarm.get("Namespace") != "AWS/Lambda":
            continue
        ((dimension,),) = [alarm["Dimensions"]]
        assert dimension["Name"] == "FunctionName"
        function = dimension["Value"]["Fn::Sub"].strip("${}")  # the function's name, by reference
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold"), name
        assert alarm["AlarmActions"] == [ALARM_TOPIC], name
        found.setdefault(function, set()).add(alarm["MetricName"])
    assert found == {name: {"Errors", "Throttles"} for name in TEMPLATE.functions}


def _periods(alarm: dict[str, Any]) -> int:
    """EvaluationPeriods, a FindInMap with a default resolved as CloudFormation's language extensions do."""
    periods = alarm["EvaluationPeriods"]
    if isinstance(periods, int):
        return periods
    mapping, key, attribute, default = periods["Fn::FindInMap"]
    return TEMPLATE.raw["Mappings"][mapping].get(key, {}).get(attribute, default["DefaultValue"])


def test_the_self_continuing_jobs_throttles_alarm_outlasts_a_continuation():
    for name in ("TallySessionsFunction", "PurgeCandidaturesFunction"):
        alarm = _alarms()[f"{name}ThrottlesAlarm"]
        assert _periods(alarm) * alarm["Period"] > TEMPLATE.functions[name].timeout
    assert _periods(_alarms()["GetMeFunctionThrottlesAlarm"]) == 1


def test_the_api_5xx_alarm_is_a_rate_of_the_http_api_requests():
    alarm = _alarms()["Api5xxRateAlarm"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    for metric_id, metric_name in (("failed", "5xx"), ("requests", "Count")):
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway" and stat["Metric"]["MetricName"] == metric_name
        assert stat["Metric"]["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
        assert stat["Stat"] == "Sum" and metrics[metric_id]["ReturnData"] is False
    assert "100 * failed / requests" in metrics["rate"]["Expression"] and metrics["rate"]["ReturnData"] is True
    assert alarm["AlarmActions"] == [ALARM_TOPIC]


def test_the_alarm_topic_is_encrypted_and_mails_the_alarm_email_parameter_only_when_given():
    topic = TEMPLATE.resources["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = TEMPLATE.resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    subscription = TEMPLATE.resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert TEMPLATE.raw["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert TEMPLATE.parameters["AlarmEmail"]["Default"] == ""


def test_only_the_decision_rule_may_put_undelivered_events_in_the_notifier_queue():
    (rule,) = [
        e for e in TEMPLATE.functions["NotifyDecisionFunction"].events.values() if e["Type"] == "EventBridgeRule"
    ]
    assert rule["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["NotifyDecisionFunctionFailures", "Arn"]}}
    assert rule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    policies = TEMPLATE.of_type("AWS::SQS::QueuePolicy")
    assert list(policies) == ["NotifyDecisionFailuresPolicy"]
    properties = policies["NotifyDecisionFailuresPolicy"]["Properties"]
    assert properties["Queues"] == [{"Ref": "NotifyDecisionFunctionFailures"}]
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["NotifyDecisionFunctionDecision", "Arn"]}}
    }


def test_no_function_policy_grants_sqs_itself():
    """SAM grants a function sqs:SendMessage on its destination queue alone; nothing else may."""
    for name, function in TEMPLATE.functions.items():
        for policy in function.policies:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a.startswith("sqs:")], name


def test_local_queue_names_follow_the_stage_pattern():
    names = LocalNames(TEMPLATE, "msp-local")
    assert names.by_logical_id["NotifyDecisionFunctionFailures"] == "msp-local-NotifyDecisionFunction-failures"
    assert TEMPLATE.queues["NotifyDecisionFunctionFailures"]["QueueName"] == {
        "Fn::Sub": "msp-${Stage}-NotifyDecisionFunction-failures"
    }


def test_a_redriven_digest_covers_the_day_its_schedule_fired_for():
    import datetime as dt

    from handlers.send_review_digest import digest_day

    (schedule,) = TEMPLATE.functions["SendReviewDigestFunction"].events.values()
    assert json.loads(schedule["Properties"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    # Fired at 07:00 in Paris on 2 March (06:00 UTC): the digest of 1 March, whenever it runs.
    assert digest_day({"scheduled_time": "2026-03-02T06:00:00Z"}) == dt.date(2026, 3, 1)
    assert digest_day({"scheduled_time": "2026-03-01T23:30:00Z"}) == dt.date(2026, 3, 1)  # 00:30 on 2 March


def test_a_night_without_a_finished_tally_raises_the_tally_alarm():
    from handlers.tally_sessions import metrics as tally_metrics

    alarm = _alarms()["TallyNotFinishedAlarm"]
    assert alarm["Namespace"] == {"Ref": "MetricsNamespace"} and alarm["MetricName"] == "TallyFinished"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": tally_metrics.service}]
    assert alarm["Statistic"] == "Sum" and alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1 and alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]
    # Silence is the failure: no run finishing writes nothing at all.
    assert alarm["TreatMissingData"] == "breaching"
    # Longer than a night between two runs plus one run's longest invocation, within CloudWatch's 7 days.
    window = alarm["Period"] * alarm["EvaluationPeriods"]
    assert 24 * 3600 + TEMPLATE.functions["TallySessionsFunction"].timeout < window <= 7 * 24 * 3600
    assert alarm["AlarmActions"] == [ALARM_TOPIC]
