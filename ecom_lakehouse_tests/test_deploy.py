"""deploy/: the CloudFormation templates lint clean and keep their security promises, and the
Step Functions trigger's request, evaluated as Step Functions would evaluate it, makes a real
`dagster dev` process the forwarded file. Nothing here calls AWS."""

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonata
import pytest
from cfnlint.decode import cfn_yaml
from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.generators.ecommerce import generate
from ecom_lakehouse.names import names_of
from ecom_lakehouse.resources.cloudwatch import METRICS, NAMESPACE, monitoring_template_yaml
from ecom_lakehouse_tests.conftest import files_under
from ecom_lakehouse_tests.dagster_dev import post_graphql, running_dagster_dev

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
TEMPLATES = sorted((DEPLOY / "cloudformation").glob("*.yaml"))


def template(name: str) -> dict:
    return cfn_yaml.load(str(DEPLOY / "cloudformation" / f"{name}.yaml"))


def resources(tpl: dict, kind: str) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in tpl["Resources"].items() if r["Type"] == kind}


def test_every_template_passes_cfn_lint():
    assert {p.stem for p in TEMPLATES} >= {"storage", "analytics", "trigger", "dagster"}
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(lint), *map(str, TEMPLATES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lake_bucket_is_private_encrypted_tls_only_versioned_and_evented():
    storage = template("storage")
    bucket = storage["Resources"]["LakeBucket"]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": ["DataKey", "Arn"]
    }
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]
    assert storage["Resources"]["DataKey"]["Properties"]["EnableKeyRotation"] is True
    for policy in resources(storage, "AWS::S3::BucketPolicy").values():
        (tls_only,) = [
            s
            for s in policy["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool")
        ]
        assert tls_only["Condition"]["Bool"] == {"aws:SecureTransport": False}
        assert tls_only["Action"] == "s3:*" and tls_only["Principal"] == "*"


def test_lifecycle_rules_cover_every_zone_that_expires():
    rules = template("storage")["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"][
        "Rules"
    ]
    by_prefix = {r.get("Prefix"): r for r in rules}
    archived = by_prefix["archived/"]
    assert archived["Transitions"][0]["StorageClass"] == "GLACIER_IR"
    assert "ExpirationInDays" in archived
    for prefix in ("rejected/", "validated/", "athena-query-results/"):
        assert "ExpirationInDays" in by_prefix[prefix], prefix
    assert "raw/" not in by_prefix and "processed/" not in by_prefix  # never expire


# Actions that read or write data: never granted on every resource.
DATA_ACTION = re.compile(
    r"^(s3|dynamodb|sqs|sns|glue|athena|kinesis|secretsmanager|ssm|rds-data|states"
    r"|emr-serverless|logs:(GetLogEvents|FilterLogEvents)|kms:(Decrypt|GenerateDataKey|Encrypt))"
)


def iam_statements() -> list[tuple[str, str, dict]]:
    """Every identity-policy statement of every template: (template, resource, statement)."""
    found = []
    for path in TEMPLATES:
        tpl = cfn_yaml.load(str(path))
        for name, resource in tpl["Resources"].items():
            props = resource.get("Properties", {})
            documents = []
            if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
                documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
            if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                documents.append(props["PolicyDocument"])
            for document in documents:
                found += [(path.stem, name, s) for s in document["Statement"]]
    return found


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_iam_is_least_privilege():
    statements = iam_statements()
    assert len(statements) > 10
    for where, name, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = as_list(statement["Action"])
        label = f"{where}:{name}:{statement.get('Sid')}"
        assert not [a for a in actions if a == "*" or a.endswith(":*")], label
        if "*" in as_list(statement["Resource"]):
            assert not [a for a in actions if DATA_ACTION.match(a)], label


def test_the_trigger_maps_every_raw_folder_to_its_dataset():
    definition = trigger_definition()
    route = definition["States"]["Route"]["Assign"]["dataset"]
    for contract in CONTRACTS.values():
        event = s3_event("lake", f"raw/{contract.raw_folder}/f.csv")
        assert evaluate(route, event, {}) == contract.name
        assert names_of(contract).ingest_job == f"{contract.name}_ingest"
    assert evaluate(route, s3_event("lake", "raw/unknown/f.csv"), {}) is None


def trigger_definition(**substitutions: str) -> dict:
    """The state machine as deployed: DefinitionSubstitutions applied."""
    machine = template("trigger")["Resources"]["TriggerStateMachine"]["Properties"]
    values = {"CodeLocationName": "ecom_lakehouse", **substitutions}

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: substitute(v) for k, v in node.items()}
        if isinstance(node, list):
            return [substitute(v) for v in node]
        if isinstance(node, str):
            return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], m[0]), node)
        return node

    assert set(machine["DefinitionSubstitutions"]) >= set(values)
    return substitute(machine["Definition"])


def s3_event(bucket: str, key: str, etag: str = "0123abcd", at: str = "") -> dict:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "time": at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1, "etag": etag},
        },
    }


def evaluate(value: Any, state_input: Any, variables: dict, result: Any = None) -> Any:
    """A field of a JSONata state as Step Functions evaluates it: "{% expr %}" strings are
    JSONata over $states and the assigned variables; anything else is taken as it is."""
    if isinstance(value, dict):
        return {k: evaluate(v, state_input, variables, result) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, state_input, variables, result) for v in value]
    if isinstance(value, str) and value.strip().startswith("{%"):
        expression = jsonata.Jsonata(value.strip()[2:-2])
        bindings = {"states": {"input": state_input, "result": result}, **variables}
        return expression.evaluate(None, bindings)
    return value


def forwarded_request(event: dict) -> tuple[str, dict]:
    """What the state machine sends for ``event``: walk it from its start as Step Functions
    would, up to the HTTP task, and evaluate that task's request body."""
    definition = trigger_definition()
    states, name, variables = definition["States"], definition["StartAt"], {}
    while states[name]["Type"] != "Task":
        state = states[name]
        if state["Type"] == "Pass":
            variables |= {k: evaluate(v, event, variables) for k, v in state["Assign"].items()}
            name = state["Next"]
        elif state["Type"] == "Choice":
            matched = [c for c in state["Choices"] if evaluate(c["Condition"], event, variables)]
            name = matched[0]["Next"] if matched else state["Default"]
        else:
            pytest.fail(f"the event ended in {name} ({state['Type']}) without reaching Dagster")
    task = states[name]
    assert task["Resource"] == "arn:aws:states:::http:invoke"
    arguments = evaluate(task["Arguments"], event, variables)
    return name, arguments["RequestBody"]


def test_a_key_outside_the_datasets_is_not_forwarded():
    definition = trigger_definition()
    state = definition["States"]["IsADatasetFile"]
    variables: dict = {}
    event = s3_event("lake", "raw/notes.txt")
    for key, value in definition["States"]["Route"]["Assign"].items():
        variables[key] = evaluate(value, event, variables)
    assert not evaluate(state["Choices"][0]["Condition"], event, variables)


RUN_QUERY = """query Run($runId: ID!) { runOrError(runId: $runId) {
  __typename ... on Run { status jobName tags { key value } } } }"""


def wait_for_run(port: int, run_id: str) -> dict:
    """The run once it ended (or as it is after 90 s)."""
    deadline = time.monotonic() + 90
    while True:
        run = post_graphql(port, {"query": RUN_QUERY, "variables": {"runId": run_id}})
        run = run["data"]["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            return run
        time.sleep(1)


def test_the_forwarded_request_makes_dagster_process_the_file(tmp_path):
    with running_dagster_dev(tmp_path) as (port, lake_dir, _):
        files = generate(tmp_path / "files", orders=40, products=10, seed=5)
        source = next((tmp_path / "files" / "orders").iterdir())
        key = f"raw/orders/{source.name}"
        (lake_dir / "raw/orders").mkdir(parents=True)
        (lake_dir / key).write_bytes(source.read_bytes())

        landed = Lake(str(lake_dir)).head(key)
        assert landed is not None
        event = s3_event("lake-bucket", key, landed.etag)
        task, body = forwarded_request(event)
        assert task == "ForwardToDagster"
        response = post_graphql(port, body)
        assert "errors" not in response, response
        launched = response["data"]["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        # the state machine's own success test, on the real response
        choice = trigger_definition()["States"]["WasTheRunLaunched"]["Choices"][0]
        assert evaluate(choice["Condition"], response, {}) is True

        run = wait_for_run(port, launched["run"]["runId"])
        assert run["status"] == "SUCCESS", run
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/partition"] == event["time"][:10]  # the day it landed
        assert tags["ecom_lakehouse/file"] == key.removeprefix("raw/")
        assert tags["ecom_lakehouse/trigger"] == f"s3://lake-bucket/{key}"
        assert run["jobName"] == "orders_ingest"
        assert files_under(lake_dir, "raw") == []  # processed and archived
        table = DeltaTable(str(lake_dir / layout.table_path("orders")))
        assert table.to_pyarrow_table().num_rows == files.rows["orders"]
        # a second delivery of the same event (or the sensor's run) finds the upload loaded
        # and archived: its run succeeds, skipping it, and changes nothing
        again = post_graphql(port, body)["data"]["launchRun"]
        assert again["__typename"] == "LaunchRunSuccess", again
        second = wait_for_run(port, again["run"]["runId"])
        assert second["status"] == "SUCCESS", second
        assert table.version() == DeltaTable(str(lake_dir / layout.table_path("orders"))).version()


CHECKOV = Path(__file__).resolve().parents[1] / ".venv-checkov" / "bin" / "checkov"


def test_checkov_finds_nothing_and_every_skip_says_why():
    if not CHECKOV.exists():
        message = f"{CHECKOV} is missing: `make test` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [str(CHECKOV), "-d", str(DEPLOY / "cloudformation"), "--framework", "cloudformation",
         "--output", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for report in reports
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    for path in TEMPLATES:
        for name, resource in cfn_yaml.load(str(path))["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 20, f"{path.name}:{name}:{skip['id']}"


def test_the_state_machine_is_closed_every_state_reachable_and_every_end_explicit():
    definition = trigger_definition()
    states = definition["States"]

    def targets(state: dict) -> list[str]:
        found = [state.get("Next"), state.get("Default")]
        found += [c["Next"] for c in state.get("Choices", [])]
        found += [c["Next"] for c in state.get("Catch", [])]
        return [t for t in found if t]

    assert definition["QueryLanguage"] == "JSONata"
    reachable, frontier = set(), [definition["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        assert name in states, f"{name} is the target of a transition but not a state"
        reachable.add(name)
        frontier += targets(states[name])
    assert reachable == set(states)
    for name, state in states.items():
        ends = state["Type"] in ("Succeed", "Fail") or state.get("End")
        assert ends or state.get("Next") or state["Type"] == "Choice", name
    # the HTTP call retries with backoff and has a way out when Dagster cannot be reached
    forward = states["ForwardToDagster"]
    assert forward["Retry"][0]["BackoffRate"] > 1 and forward["Retry"][0]["MaxAttempts"] >= 3
    assert forward["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert states[forward["Catch"][0]["Next"]]["Resource"] == "arn:aws:states:::sns:publish"


def test_the_kpi_tables_are_on_demand_recoverable_encrypted_and_only_written_by_dagster():
    from ecom_lakehouse.contracts import KPIS
    from ecom_lakehouse.resources.settings import KPI_TABLE_SETTINGS

    tables = resources(template("analytics"), "AWS::DynamoDB::Table")
    by_variable = {"LAKEHOUSE_KPI_ORDER_TABLE": "OrderKpiTable",
                   "LAKEHOUSE_KPI_CATEGORY_TABLE": "CategoryKpiTable"}  # fmt: skip
    for kpi, variable in KPI_TABLE_SETTINGS.items():
        table = tables[by_variable[variable]]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["SSESpecification"]["SSEEnabled"] is True
        assert [k["AttributeName"] for k in table["KeySchema"]] == list(KPIS[kpi].key)
        assert {a["AttributeType"] for a in table["AttributeDefinitions"]} == {"S"}
    dagster = template("dagster")
    statements = [s for _, _, s in iam_statements() if "dynamodb" in str(s.get("Action"))]
    (write,) = statements
    assert as_list(write["Action"]) == ["dynamodb:BatchWriteItem"]
    assert len(as_list(write["Resource"])) == 2
    for definition in resources(dagster, "AWS::ECS::TaskDefinition").values():
        env = {
            e["Name"] for c in definition["ContainerDefinitions"] for e in c.get("Environment", [])
        }
        if "LAKEHOUSE_ENV" in env:
            assert set(by_variable) <= env


def test_the_monitoring_stack_is_what_the_contracts_render():
    rendered = monitoring_template_yaml(CONTRACTS.values())
    committed = (DEPLOY / "cloudformation" / "monitoring.yaml").read_text()
    assert committed == rendered, (
        "deploy/cloudformation/monitoring.yaml is stale: run `.venv/bin/ecom-lakehouse "
        "monitoring-template > deploy/cloudformation/monitoring.yaml`"
    )


def _export_name(value: object) -> str:
    """An export's name as written (``!Sub`` text; the template of a ``!Sub`` list)."""
    value = value.get("Fn::Sub", value) if isinstance(value, dict) else value
    return str(value[0] if isinstance(value, list) else value)


def _exports() -> set[str]:
    return {
        _export_name(output["Export"]["Name"])
        for path in TEMPLATES
        for output in cfn_yaml.load(str(path)).get("Outputs", {}).values()
        if "Export" in output
    }


def _imports(node: object) -> list[str]:
    if isinstance(node, dict):
        if "Fn::ImportValue" in node:
            return [_export_name(node["Fn::ImportValue"])]
        return [i for v in node.values() for i in _imports(v)]
    if isinstance(node, list):
        return [i for v in node for i in _imports(v)]
    return []


def test_every_stack_imports_only_what_another_exports():
    exports = _exports()
    for path in TEMPLATES:
        missing = sorted(set(_imports(cfn_yaml.load(str(path)))) - exports)
        assert missing == [], f"{path.name} imports what no stack exports: {missing}"


def test_every_dataset_has_a_stale_alarm_over_its_freshness_and_a_rejected_row_rate_alarm():
    stack = template("monitoring")["Resources"]
    alarms = {r["Properties"]["AlarmName"]["Fn::Sub"]: r["Properties"]
              for r in stack.values() if r["Type"] == "AWS::CloudWatch::Alarm"}  # fmt: skip
    failure_topic = [{"Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-FailureTopicArn"}}]
    assert all(a["AlarmActions"] == failure_topic for a in alarms.values())
    for contract in CONTRACTS.values():
        stale = alarms[f"${{EnvironmentName}}-{contract.name}-stale"]
        assert contract.freshness is not None
        window = stale["Period"] * stale["EvaluationPeriods"]
        assert window == contract.freshness.total_seconds()
        assert stale["DatapointsToAlarm"] == stale["EvaluationPeriods"]
        assert (stale["MetricName"], stale["TreatMissingData"]) == ("LoadSeconds", "breaching")
        rate = alarms[f"${{EnvironmentName}}-{contract.name}-rejected-rows"]
        used = {
            m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m
        }
        assert used == {"RowsRejected", "RowsRead"}
    assert {"${EnvironmentName}-failed-runs", "${EnvironmentName}-trigger-dead-letters"} <= set(
        alarms
    )
    # every metric the dashboard and alarms name is one the lakehouse publishes
    published = {name for name, _ in METRICS.values()}
    body = stack["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    for widget in json.loads(body)["widgets"]:
        for metric in widget["properties"]["metrics"]:
            assert metric[0] != NAMESPACE or metric[1] in published, metric
