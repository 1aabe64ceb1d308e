"""Offline checks of infrastructure/terraform (issue 7).

No Terraform provider can be downloaded here, so these tests check what can be
checked without one:

* every ``.tf`` / ``.tfvars`` file parses (python-hcl2);
* the wiring: module call arguments are variables of the called module, the
  required ones are all given, every ``var.X`` / ``local.X`` / ``module.X.Y``
  reference resolves, per-client resources are keyed by clientId;
* the EventBridge patterns and the Pipe/target parameters that the Terraform
  renders equal ``tests/fixtures/eventbridge-routing.json`` (the file the
  Lambda routing test uses too);
* checkov reports no failed check and no parsing error, and every skip says why;
* where a ``terraform`` binary is on PATH: ``fmt -check``; where an AWS provider
  is also available locally (``TF_PLUGIN_DIR``, default ``/opt/tf-plugins``):
  ``validate`` and ``terraform test`` (plan against a mocked provider,
  ``tests/terraform/callbacks_plan.tftest.hcl``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TF_ROOT = REPO / "infrastructure" / "terraform"
COMPONENT = TF_ROOT / "components" / "callbacks"
MODULES = TF_ROOT / "modules"
FIXTURE = REPO / "tests" / "fixtures" / "eventbridge-routing.json"
TFTEST = Path(__file__).resolve().parent / "callbacks_plan.tftest.hcl"
EXAMPLE_TFVARS = COMPONENT / "examples" / "two-clients.tfvars"

EXPECTED_MODULES = {
    "callback-event-queue",
    "transform-filter-lambda",
    "callbacks-event-bus",
    "api-destinations",
    "client-config-storage",
    "client-delivery",
    "delivery-lambda",
}
# Modules that only other modules call, never the component.
INTERNAL_MODULES = {"sqs-queue"}
# Every SQS queue of the pipeline is made by modules/sqs-queue: module -> name of its call.
SQS_QUEUE_CALLERS = {
    "callback-event-queue": "queue",
    "client-delivery": "queue",
    "api-destinations": "dlq",
    "transform-filter-lambda": "rejected_events_queue",
}
# Resources moved from a module into its modules/sqs-queue call (old address -> new address in
# the same module). Each needs a `moved` block, else Terraform destroys and recreates live queues.
MOVED_RESOURCES = {
    "callback-event-queue": {
        "aws_sqs_queue.this": "module.queue.aws_sqs_queue.this",
        "aws_sqs_queue.dlq": "module.queue.aws_sqs_queue.dlq[0]",
        "aws_sqs_queue_redrive_allow_policy.dlq": "module.queue.aws_sqs_queue_redrive_allow_policy.dlq[0]",
        "aws_sqs_queue_policy.this": "module.queue.aws_sqs_queue_policy.this[0]",
        "aws_sqs_queue_policy.dlq": "module.queue.aws_sqs_queue_policy.dlq[0]",
    },
    "client-delivery": {
        "aws_sqs_queue.this": "module.queue.aws_sqs_queue.this",
        "aws_sqs_queue.dlq": "module.queue.aws_sqs_queue.dlq[0]",
        "aws_sqs_queue_redrive_allow_policy.dlq": "module.queue.aws_sqs_queue_redrive_allow_policy.dlq[0]",
        "aws_sqs_queue_policy.this": "module.queue.aws_sqs_queue_policy.this[0]",
        "aws_sqs_queue_policy.dlq": "module.queue.aws_sqs_queue_policy.dlq[0]",
    },
    "api-destinations": {
        "aws_sqs_queue.dlq": "module.dlq.aws_sqs_queue.this",
        "aws_sqs_queue_policy.dlq": "module.dlq.aws_sqs_queue_policy.this[0]",
    },
    "transform-filter-lambda": {
        "aws_sqs_queue.rejected": "module.rejected_events_queue.aws_sqs_queue.this",
    },
}
META_ARGS = {"source", "version", "for_each", "count", "depends_on", "providers"}
ALL_TF_FILES = sorted(TF_ROOT.rglob("*.tf"))

_OPTS = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
_OPTS_COMMENTS = SerializationOptions(strip_string_quotes=True, with_comments=True, explicit_blocks=False)


# --------------------------------------------------------------------------- helpers


def load(path: Path, comments: bool = False) -> dict:
    with path.open(encoding="utf-8") as f:
        return hcl2.load(f, serialization_options=_OPTS_COMMENTS if comments else _OPTS)


def load_dir(directory: Path) -> dict[str, list]:
    """Merge the top-level block lists of every .tf file of one directory."""
    merged: dict[str, list] = {}
    for path in sorted(directory.glob("*.tf")):
        for key, value in load(path).items():
            merged.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return merged


def variables(directory: Path) -> dict[str, dict]:
    return {name: body for block in load_dir(directory).get("variable", []) for name, body in block.items()}


def locals_of(directory: Path) -> dict:
    return {k: v for block in load_dir(directory).get("locals", []) for k, v in block.items()}


def outputs(directory: Path) -> dict[str, dict]:
    return {name: body for block in load_dir(directory).get("output", []) for name, body in block.items()}


def module_calls(directory: Path) -> dict[str, dict]:
    return {name: body for block in load_dir(directory).get("module", []) for name, body in block.items()}


def resources(directory: Path) -> dict[str, dict]:
    """``{"type.name": body}`` of one directory."""
    out = {}
    for block in load_dir(directory).get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[f"{rtype}.{name}"] = body
    return out


def strings(value):
    """Every string inside a parsed HCL value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def expressions(directory: Path):
    """Every string of the directory that holds an expression (``${...}``).

    ``moved`` blocks hold resource addresses, not expressions: they are checked by
    test_every_moved_block_resolves.
    """
    blocks = {k: v for k, v in load_dir(directory).items() if k != "moved"}
    for s in strings(blocks):
        if "${" in s:
            yield s


def module_dir(call: dict, caller: Path = COMPONENT) -> Path:
    return (caller / call["source"]).resolve()


def moved_blocks(directory: Path) -> dict[str, str]:
    """``{from: to}`` of the ``moved`` blocks of one directory (addresses without ``${}``)."""
    out = {}
    for block in load_dir(directory).get("moved", []):
        src, dst = (re.fullmatch(r"\$\{(.+)\}", block[k]).group(1) for k in ("from", "to"))
        assert src not in out, f"{directory.name}: two moved blocks from {src}"
        out[src] = dst
    return out


def resolve_resource_address(directory: Path, address: str) -> tuple[Path, dict]:
    """The directory and body of the resource ``[module.CALL.]*TYPE.NAME[INDEX]`` of ``directory``.

    Fails when a module call or the resource does not exist, or when the index does not
    match: ``[0]`` only for a resource with ``count``, none for one without ``count`` or
    ``for_each``.
    """
    parts = address.split(".")
    while parts[0] == "module":
        calls = module_calls(directory)
        assert parts[1] in calls, f"{directory.name}: no module call {parts[1]} (in {address})"
        assert not set(calls[parts[1]]) & {"count", "for_each"}, f"{address}: module.{parts[1]} is repeated"
        directory = module_dir(calls[parts[1]], directory)
        parts = parts[2:]
    m = re.fullmatch(r"(\w+)\.(\w+)(\[0\])?", ".".join(parts))
    assert m, f"not a resource address: {address}"
    res = resources(directory)
    key = f"{m.group(1)}.{m.group(2)}"
    assert key in res, f"{directory.name} declares no {key} (in {address})"
    body = res[key]
    assert "for_each" not in body, f"{address}: {key} uses for_each, give its key"
    assert bool(m.group(3)) == ("count" in body), f"{address}: the index must be [0] exactly when {key} has count"
    return directory, body


def tf_dirs() -> list[Path]:
    return [COMPONENT] + sorted(p for p in MODULES.iterdir() if p.is_dir())


_REF = re.compile(r"^\$\{([A-Za-z_][\w.\-]*(?:\[[^\]]+\])?)\}$")


def resolve(value, scope):
    """Evaluate a parsed HCL value made of literals and plain references.

    ``scope(ref)`` returns the value of a reference such as ``var.x`` or
    ``each.key``. Anything that is not a plain reference stays as it is, so a
    comparison with the fixture fails on it.
    """
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if isinstance(value, str):
        m = _REF.match(value)
        if m:
            return scope(m.group(1))
    return value


def jsonencode_argument(expr: str):
    """The parsed object of ``${jsonencode({...})}``."""
    m = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", expr, flags=re.S)
    assert m, f"expected a jsonencode(...) expression, got {expr!r}"
    return hcl2.loads(f"x = {m.group(1)}\n", serialization_options=_OPTS)["x"]


def component_scope(placeholders: dict[str, str]):
    comp_locals = locals_of(COMPONENT)

    def scope(ref: str):
        if ref in placeholders:
            return placeholders[ref]
        if ref.startswith("local.") and ref[6:] in comp_locals:
            return resolve(comp_locals[ref[6:]], scope)
        raise AssertionError(f"cannot resolve {ref} in the component")

    return scope


def module_scope(call_name: str, placeholders: dict[str, str], component_placeholders: dict[str, str]):
    """Resolve ``var.X`` of a module through the component's call arguments."""
    call = module_calls(COMPONENT)[call_name]
    mdir = module_dir(call)
    mvars = variables(mdir)
    mlocals = locals_of(mdir)
    outer = component_scope(component_placeholders)

    def scope(ref: str):
        if ref in placeholders:
            return placeholders[ref]
        if ref.startswith("var."):
            name = ref[4:]
            assert name in mvars, f"{call_name}: var.{name} is not declared"
            if name in call:
                return resolve(call[name], outer)
            assert "default" in mvars[name], f"{call_name}: var.{name} is neither passed nor defaulted"
            return mvars[name]["default"]
        if ref.startswith("local.") and ref[6:] in mlocals:
            return resolve(mlocals[ref[6:]], scope)
        raise AssertionError(f"cannot resolve {ref} in module {call_name}")

    return scope


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- parsing and layout


@pytest.mark.parametrize("path", ALL_TF_FILES, ids=lambda p: str(p.relative_to(TF_ROOT)))
def test_tf_file_parses(path: Path):
    parsed = load(path)
    assert parsed, f"{path} parsed to nothing"


def test_tf_files_found():
    assert len(ALL_TF_FILES) >= 30, "the terraform tree is missing"
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} == EXPECTED_MODULES | INTERNAL_MODULES


@pytest.mark.parametrize("name", sorted(EXPECTED_MODULES | INTERNAL_MODULES))
def test_module_layout(name: str):
    mdir = MODULES / name
    for required in ("README.md", "variables.tf", "outputs.tf", "main.tf"):
        assert (mdir / required).is_file(), f"{name} lacks {required}"
    mvars = variables(mdir)
    assert mvars, f"{name} declares no variables"
    undocumented = [v for v, body in mvars.items() if not body.get("description")]
    assert not undocumented, f"{name}: variables without description: {undocumented}"
    assert any(body.get("validation") for body in mvars.values()), f"{name}: no variable validation"
    outs = outputs(mdir)
    assert outs and all(o.get("description") for o in outs.values()), f"{name}: outputs need descriptions"
    readme = (mdir / "README.md").read_text(encoding="utf-8")
    for var_name in mvars:
        assert f"`{var_name}`" in readme, f"{name}/README.md does not mention input {var_name}"


def test_component_variables_documented():
    cvars = variables(COMPONENT)
    assert all(body.get("description") for body in cvars.values())
    assert "clients" in cvars and "client_api_keys" in cvars
    assert cvars["client_api_keys"].get("sensitive") is True, "client_api_keys must be sensitive"
    assert cvars["clients"].get("validation"), "clients needs validation"


# --------------------------------------------------------------------------- wiring


def test_every_module_is_called():
    called = {module_dir(c).name for c in module_calls(COMPONENT).values()}
    assert called == EXPECTED_MODULES
    called_by_modules = {module_dir(c, MODULES / m).name for m in EXPECTED_MODULES for c in module_calls(MODULES / m).values()}
    assert called_by_modules == INTERNAL_MODULES, f"modules called by modules: {sorted(called_by_modules)}"


def _all_module_calls():
    return [(d, name) for d in tf_dirs() for name in sorted(module_calls(d))]


@pytest.mark.parametrize("directory,call_name", _all_module_calls(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_module_arguments_are_module_variables(directory: Path, call_name: str):
    call = module_calls(directory)[call_name]
    mdir = module_dir(call, directory)
    assert mdir.parent == MODULES and (mdir / "main.tf").is_file(), f"module.{call_name}: {call['source']} is not a module of this tree"
    mvars = variables(mdir)
    args = set(call) - META_ARGS
    unknown = args - set(mvars)
    assert not unknown, f"module.{call_name} passes arguments its module does not declare: {sorted(unknown)}"
    required = {v for v, body in mvars.items() if "default" not in body}
    missing = required - args
    assert not missing, f"module.{call_name} does not pass required variables: {sorted(missing)}"


@pytest.mark.parametrize("directory", tf_dirs(), ids=lambda p: p.name)
def test_every_reference_is_declared(directory: Path):
    declared_vars = set(variables(directory))
    declared_locals = set(locals_of(directory))
    exprs = list(expressions(directory))
    used_vars = {m for e in exprs for m in re.findall(r"(?<![\w.])var\.([A-Za-z_][\w-]*)", e)}
    used_locals = {m for e in exprs for m in re.findall(r"(?<![\w.])local\.([A-Za-z_][\w-]*)", e)}
    assert not used_vars - declared_vars, f"{directory.name}: undeclared variables {sorted(used_vars - declared_vars)}"
    assert not used_locals - declared_locals, f"{directory.name}: undeclared locals {sorted(used_locals - declared_locals)}"
    unused = declared_vars - used_vars
    assert not unused, f"{directory.name}: variables declared but never used: {sorted(unused)}"


@pytest.mark.parametrize("directory", tf_dirs(), ids=lambda p: p.name)
def test_module_output_references_exist(directory: Path):
    calls = module_calls(directory)
    outs = {name: set(outputs(module_dir(call, directory))) for name, call in calls.items()}
    for e in expressions(directory):
        for name, out in re.findall(r"(?<![\w.])module\.(\w+)(?:\[[^\]]*\])?\.(\w+)", e):
            assert name in calls, f"module.{name} is not declared"
            assert out in outs[name], f"module.{name} has no output {out}"
        # for m in module.X : ... m.Y
        for var, name in re.findall(r"for\s+(?:\w+\s*,\s*)?(\w+)\s+in\s+module\.(\w+)\s*:", e):
            assert name in calls, f"module.{name} is not declared"
            for out in re.findall(rf"(?<![\w.]){var}\.(\w+)", e):
                assert out in outs[name], f"module.{name} has no output {out} (used as {var}.{out})"


def test_per_client_module_calls_are_keyed_by_client_id():
    calls = module_calls(COMPONENT)
    comp_locals = locals_of(COMPONENT)
    for name in ("api_destinations", "client_delivery"):
        call = calls[name]
        m = re.fullmatch(r"\$\{local\.(\w+)\}", call.get("for_each", ""))
        assert m, f"module.{name} must use for_each over a local derived from var.clients"
        expr = comp_locals[m.group(1)]
        assert re.fullmatch(r"\$\{\{for (\w+), \w+ in var\.clients : \1 => .*\}\}", expr, flags=re.S), (
            f"local.{m.group(1)} must be keyed by the clientId key of var.clients: {expr}"
        )
        assert call["client_id"] == "${each.key}", f"module.{name} must get client_id = each.key"
        assert re.fullmatch(r"\$\{local\.\w+\[each\.key\]\}", call["targets"]), f"module.{name} targets must be looked up by clientId"
    # The targets of each mode come from var.clients, split on delivery.mode.
    for local_name, mode in (("api_destination_targets", "api-destination"), ("https_targets", "https")):
        expr = comp_locals[local_name]
        assert "in var.clients" in expr and f'== "{mode}"' in expr, expr
    # One source of truth: the config objects come from the same var.clients.
    storage = calls["client_config_storage"]
    assert storage["clients"] == "${var.clients}"
    assert storage["client_api_keys"] == "${var.client_api_keys}"
    assert calls["api_destinations"]["client_api_keys"] == "${var.client_api_keys}"


@pytest.mark.parametrize(
    "module,resource_names",
    [
        ("api-destinations", ["aws_cloudwatch_event_connection.this", "aws_cloudwatch_event_api_destination.this",
                              "aws_cloudwatch_event_rule.target", "aws_cloudwatch_event_target.target"]),
        ("client-delivery", ["aws_cloudwatch_event_rule.target", "aws_cloudwatch_event_target.queue"]),
    ],
)
def test_per_target_resources_are_keyed_by_target_id(module: str, resource_names: list[str]):
    mdir = MODULES / module
    res = resources(mdir)
    assert locals_of(mdir)["targets"] == "${{for t in var.targets : t.targetId => t}}"
    per_target = {k for k, body in res.items() if "for_each" in body}
    assert per_target == set(resource_names), f"{module}: resources with for_each: {sorted(per_target)}"
    for name in resource_names:
        assert res[name]["for_each"] == "${local.targets}", f"{module}: {name} must use for_each = local.targets"
    assert not [k for k, body in res.items() if "count" in body], f"{module}: per-client resources must not use count"
    # The per-client DLQ is a single resource of the per-client module instance: it is made by
    # the module's one (not repeated) modules/sqs-queue call, where it has no for_each.
    calls = module_calls(mdir)
    assert not [k for k, c in calls.items() if set(c) & {"count", "for_each"}], f"{module}: module calls must not be repeated"
    dlq_address = MOVED_RESOURCES[module]["aws_sqs_queue.dlq"]
    qdir, dlq = resolve_resource_address(mdir, dlq_address)
    assert qdir.name == "sqs-queue" and "for_each" not in dlq


def test_config_objects_are_one_per_client():
    res = resources(MODULES / "client-config-storage")
    obj = res["aws_s3_object.client_config"]
    assert obj["for_each"] == "${var.clients}"
    assert obj["key"] == "${var.config_prefix}${each.key}.json"
    assert obj["server_side_encryption"] == "aws:kms" and obj["kms_key_id"] == "${var.kms_key_arn}"


def test_alarms_cover_every_dlq_and_lambda():
    comp_locals = locals_of(COMPONENT)
    dlqs = comp_locals["dlq_names"]
    for source in ("module.callback_event_queue.dlq_name", "module.api_destinations", "module.client_delivery"):
        assert source in dlqs, f"dlq_names misses {source}"
    res = resources(COMPONENT)
    for alarm in ("dlq_depth", "dlq_age"):
        assert res[f"aws_cloudwatch_metric_alarm.{alarm}"]["for_each"] == "${local.dlq_names}"
    for alarm in ("lambda_errors", "lambda_throttles"):
        assert res[f"aws_cloudwatch_metric_alarm.{alarm}"]["for_each"] == "${local.lambda_function_names}"
    assert res["aws_cloudwatch_metric_alarm.pipe_failed"]["namespace"] == "AWS/EventBridge/Pipes"
    assert "aws_cloudwatch_dashboard.main" in res


# --------------------------------------------------------------------------- shared SQS queue module

# What each caller passes to modules/sqs-queue: the arguments its queues had before they moved
# there (names, key, retention, visibility timeout, redrive maxReceiveCount, the rules allowed to
# send and the policy statement ids, tags). A change here changes deployed queues.
SQS_QUEUE_CALL_ARGUMENTS = {
    "callback-event-queue": {
        "name": "${local.queue_name}",
        "kms_key_arn": "${var.kms_key_arn}",
        "visibility_timeout_seconds": "${var.visibility_timeout_seconds}",
        "message_retention_seconds": "${var.message_retention_seconds}",
        "dead_letter_queue": {"name": "${local.queue_name}-dlq", "message_retention_seconds": "${var.dlq_message_retention_seconds}",
                              "max_receive_count": "${var.max_receive_count}"},
        "eventbridge_senders": {"source_arns": ["${aws_cloudwatch_event_rule.shared_bus.arn}"],
                                "sid": "AllowOnlyTheSharedBusRule", "dlq_sid": "AllowTheSharedBusRuleDeadLetters"},
        "tags": "${var.tags}",
    },
    "client-delivery": {
        "name": "${var.queue_name}",
        "kms_key_arn": "${var.kms_key_arn}",
        "visibility_timeout_seconds": "${var.visibility_timeout_seconds}",
        "message_retention_seconds": "${local.message_retention_seconds}",
        "dead_letter_queue": {"name": "${var.dlq_name}", "message_retention_seconds": "${var.dlq_message_retention_seconds}",
                              "max_receive_count": "${var.max_receive_count}"},
        "eventbridge_senders": {"source_arns": "${[for r in aws_cloudwatch_event_rule.target : r.arn]}",
                                "sid": "AllowOwnRules", "dlq_sid": "AllowOwnRulesDeadLetters"},
        "tags": "${local.client_tags}",
    },
    "api-destinations": {
        "name": "${local.client_name}-apidest-dlq",
        "kms_key_arn": "${var.kms_key_arn}",
        "message_retention_seconds": "${var.dlq_message_retention_seconds}",
        "eventbridge_senders": {"source_arns": "${[for r in aws_cloudwatch_event_rule.target : r.arn]}",
                                "sid": "AllowOwnRulesDeadLetters"},
        "tags": "${local.client_tags}",
    },
    "transform-filter-lambda": {
        "name": "${var.name_prefix}-rejected-events",
        "kms_key_arn": "${var.kms_key_arn}",
        "message_retention_seconds": 1209600,
        "tags": "${var.tags}",
    },
}


def sqs_queue_instances(call: dict) -> set[str]:
    """Addresses, inside modules/sqs-queue, of the resources one call of it creates.

    Evaluates the ``count`` of each resource from which optional inputs the call gives
    (``local.has_X = var.Y != null``).
    """
    qdir = MODULES / "sqs-queue"
    flags = {}
    for name, expr in locals_of(qdir).items():
        m = re.fullmatch(r"\$\{var\.(\w+) != null\}", str(expr))
        if m:
            flags[name] = m.group(1) in call
    out = set()
    for key, body in resources(qdir).items():
        if "count" not in body:
            out.add(key)
            continue
        m = re.fullmatch(r"\$\{(local\.\w+(?: && local\.\w+)*) \? 1 : 0\}", body["count"])
        assert m, f"sqs-queue: unexpected count of {key}: {body['count']}"
        if all(flags[name] for name in re.findall(r"local\.(\w+)", m.group(1))):
            out.add(f"{key}[0]")
    return out


def test_every_sqs_queue_is_made_by_the_sqs_queue_module():
    for directory in tf_dirs():
        if directory.name != "sqs-queue":
            own = [k for k in resources(directory) if k.startswith("aws_sqs_queue")]
            assert not own, f"{directory.name} declares SQS resources itself instead of calling modules/sqs-queue: {own}"
    users = {d.name for d in tf_dirs() for c in module_calls(d).values() if module_dir(c, d).name == "sqs-queue"}
    assert users == set(SQS_QUEUE_CALLERS), f"modules calling sqs-queue: {sorted(users)}"


@pytest.mark.parametrize("module", sorted(SQS_QUEUE_CALLERS))
def test_sqs_queue_module_is_used(module: str):
    mdir = MODULES / module
    calls = module_calls(mdir)
    call_name = SQS_QUEUE_CALLERS[module]
    assert call_name in calls, f"{module} does not call modules/sqs-queue as module.{call_name}"
    call = calls[call_name]
    assert module_dir(call, mdir) == MODULES / "sqs-queue"
    assert {k: v for k, v in call.items() if k not in META_ARGS} == SQS_QUEUE_CALL_ARGUMENTS[module]
    # The module's outputs that used to name the queue resources now read the call's outputs.
    for out in outputs(mdir).values():
        assert "aws_sqs_queue" not in str(out["value"])


def test_sqs_queue_module_resources():
    """Encryption, redrive and queue policies of every queue of the pipeline."""
    qdir = MODULES / "sqs-queue"
    res = resources(qdir)
    for key in ("aws_sqs_queue.this", "aws_sqs_queue.dlq"):
        q = res[key]
        assert q["kms_master_key_id"] == "${var.kms_key_arn}" and q["kms_data_key_reuse_period_seconds"] == 300, key
        assert q["tags"] == "${var.tags}", key
    assert res["aws_sqs_queue.this"]["message_retention_seconds"] == "${var.message_retention_seconds}"
    assert res["aws_sqs_queue.this"]["visibility_timeout_seconds"] == "${var.visibility_timeout_seconds}"
    assert res["aws_sqs_queue.dlq"]["name"] == "${var.dead_letter_queue.name}"
    assert res["aws_sqs_queue.dlq"]["message_retention_seconds"] == "${var.dead_letter_queue.message_retention_seconds}"
    assert res["aws_sqs_queue.this"]["redrive_policy"] == (
        "${!local.has_dlq ? null : jsonencode({deadLetterTargetArn = aws_sqs_queue.dlq[0].arn, "
        "maxReceiveCount = var.dead_letter_queue.max_receive_count})}"
    )
    allow = res["aws_sqs_queue_redrive_allow_policy.dlq"]
    assert allow["queue_url"] == "${aws_sqs_queue.dlq[0].id}"
    assert allow["redrive_allow_policy"] == '${jsonencode({redrivePermission = "byQueue", sourceQueueArns = [aws_sqs_queue.this.arn]})}'
    assert res["aws_sqs_queue_policy.this"]["policy"] == '${data.aws_iam_policy_document.send["this"].json}'
    assert res["aws_sqs_queue_policy.dlq"]["policy"] == '${data.aws_iam_policy_document.send["dlq"].json}'
    doc = load_dir(qdir)["data"][0]["aws_iam_policy_document"]["send"]
    allow_stmt, deny_stmt = doc["statement"]
    assert allow_stmt["effect"] == "Allow" and allow_stmt["actions"] == ["sqs:SendMessage"]
    assert allow_stmt["principals"] == [{"type": "Service", "identifiers": ["events.amazonaws.com"]}]
    assert allow_stmt["condition"] == [{"test": "ArnEquals", "variable": "aws:SourceArn", "values": "${var.eventbridge_senders.source_arns}"}]
    assert deny_stmt["sid"] == "DenyInsecureTransport" and deny_stmt["effect"] == "Deny" and deny_stmt["actions"] == ["sqs:*"]
    assert deny_stmt["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert allow_stmt["resources"] == deny_stmt["resources"] == ["${each.value.queue_arn}"]


@pytest.mark.parametrize("module", sorted(MOVED_RESOURCES))
def test_moved_resources_have_moved_blocks(module: str):
    mdir = MODULES / module
    moved = moved_blocks(mdir)
    assert moved == MOVED_RESOURCES[module], f"{module}: moved blocks differ from the resources moved"
    res = resources(mdir)
    for src, dst in moved.items():
        assert src not in res, f"{module}: {src} still exists, so it cannot have moved"
        assert re.sub(r"\[0\]$", "", dst).split(".")[-2] == src.split(".")[0], f"{src} -> {dst} changes the resource type"
    # Nothing the sqs-queue call creates is new: every one of its resources came from this module.
    call_name = SQS_QUEUE_CALLERS[module]
    created = sqs_queue_instances(module_calls(mdir)[call_name])
    assert {dst.removeprefix(f"module.{call_name}.") for dst in moved.values()} == created


@pytest.mark.parametrize("directory", tf_dirs(), ids=lambda p: p.name)
def test_every_moved_block_resolves(directory: Path):
    res = resources(directory)
    for src, dst in moved_blocks(directory).items():
        assert src not in res, f"{directory.name}: moved from {src}, which still exists"
        resolve_resource_address(directory, dst)


# --------------------------------------------------------------------------- patterns = fixture


def test_fixture_shape(fixture: dict):
    assert set(fixture) >= {"callbacksBus", "targetPatternTemplate", "sharedBusPattern", "apiDestinationTarget"}
    tpl = fixture["targetPatternTemplate"]
    assert tpl["source"] == [fixture["callbacksBus"]["source"]]
    assert tpl["detail-type"] == [fixture["callbacksBus"]["detailType"]]
    assert tpl["detail"] == {"clientId": ["${clientId}"], "targetId": ["${targetId}"]}


@pytest.mark.parametrize(
    "call_name,module,resource",
    [
        ("api_destinations", "api-destinations", "aws_cloudwatch_event_rule.target"),
        ("client_delivery", "client-delivery", "aws_cloudwatch_event_rule.target"),
    ],
)
def test_target_rule_pattern_equals_fixture(fixture: dict, call_name: str, module: str, resource: str):
    rule = resources(MODULES / module)[resource]
    pattern = jsonencode_argument(rule["event_pattern"])
    # In the component each.key is the clientId; in the module each.key is the targetId.
    scope = module_scope(call_name, {"each.key": "${targetId}"}, {"each.key": "${clientId}"})
    rendered = resolve(pattern, scope)
    assert rendered == fixture["targetPatternTemplate"]


def test_shared_bus_pattern_equals_fixture(fixture: dict):
    mlocals = locals_of(MODULES / "callback-event-queue")
    rule = resources(MODULES / "callback-event-queue")["aws_cloudwatch_event_rule.shared_bus"]
    assert rule["event_pattern"] == "${local.shared_bus_event_pattern}"
    rendered = resolve(jsonencode_argument(mlocals["shared_bus_event_pattern"]), module_scope("callback_event_queue", {}, {}))
    assert rendered == fixture["sharedBusPattern"]
    # The module's own default must be the same list (a caller relying on it gets the contract).
    default = variables(MODULES / "callback-event-queue")["event_types"]["default"]
    assert {"detail": {"type": default}} == fixture["sharedBusPattern"]


def test_pipe_puts_callbacks_bus_source_and_detail_type(fixture: dict):
    pipe = resources(MODULES / "transform-filter-lambda")["aws_pipes_pipe.this"]
    params = pipe["target_parameters"][0]["eventbridge_event_bus_parameters"][0]
    scope = module_scope("transform_filter_lambda", {}, {})
    assert resolve(params["source"], scope) == fixture["callbacksBus"]["source"]
    assert resolve(params["detail_type"], scope) == fixture["callbacksBus"]["detailType"]
    assert pipe["enrichment"] == "${aws_lambda_function.this.arn}"
    assert pipe["target"] == "${var.callbacks_event_bus_arn}"
    sqs = pipe["source_parameters"][0]["sqs_queue_parameters"][0]
    assert sqs == {"batch_size": "${var.batch_size}", "maximum_batching_window_in_seconds": "${var.maximum_batching_window_in_seconds}"}
    call = module_calls(COMPONENT)["transform_filter_lambda"]
    assert call["source_queue_arn"] == "${module.callback_event_queue.queue_arn}"
    assert call["callbacks_event_bus_arn"] == "${module.callbacks_event_bus.bus_arn}"


def test_api_destination_target_parameters(fixture: dict):
    target = resources(MODULES / "api-destinations")["aws_cloudwatch_event_target.target"]
    assert target["input_path"] == fixture["apiDestinationTarget"]["inputPath"]
    assert target["http_target"][0]["header_parameters"] == fixture["apiDestinationTarget"]["headerParameters"]
    # The dead-letter queue is the client's DLQ: module.dlq, whose `arn` is its aws_sqs_queue.this.
    assert target["dead_letter_config"][0]["arn"] == "${module.dlq.arn}"
    assert module_dir(module_calls(MODULES / "api-destinations")["dlq"], MODULES / "api-destinations").name == "sqs-queue"
    assert outputs(MODULES / "sqs-queue")["arn"]["value"] == "${aws_sqs_queue.this.arn}"
    retry = target["retry_policy"][0]
    assert "var.maximum_event_age_in_seconds" in retry["maximum_event_age_in_seconds"]
    assert retry["maximum_retry_attempts"] == "${var.maximum_retry_attempts}"
    mvars = variables(MODULES / "api-destinations")
    assert mvars["maximum_event_age_in_seconds"]["default"] == 7200, "the documented contract retries for 2 hours"
    assert variables(COMPONENT)["api_destination_maximum_event_age_in_seconds"]["default"] == 7200


def test_lambda_environment_matches_contract():
    env_expr = locals_of(MODULES / "transform-filter-lambda")["lambda_environment"]
    for name in ("CLIENT_CONFIG_BUCKET", "CLIENT_CONFIG_PREFIX", "APPLICATION_ID_MAP_KEY", "REJECTED_EVENTS_QUEUE_URL",
                 "CONFIG_CACHE_TTL_SECONDS", "MESSAGE_LINK_BASE_URL", "RUST_LOG", "METRICS_NAMESPACE"):
        assert re.search(rf"\b{name} = ", env_expr), f"transform-filter Lambda lacks {name}"
    for module in ("transform-filter-lambda", "delivery-lambda"):
        fn = [b for k, b in resources(MODULES / module).items() if k.startswith("aws_lambda_function.")][0]
        assert fn["runtime"] == "provided.al2023" and fn["handler"] == "bootstrap"
        assert fn["architectures"] == ["${var.architecture}"]
        assert variables(MODULES / module)["architecture"]["default"] == "arm64"


def test_event_source_mapping_contract():
    esm = resources(MODULES / "client-delivery")["aws_lambda_event_source_mapping.this"]
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    assert esm["function_name"] == "${var.delivery_lambda_function_arn}"
    assert esm["scaling_config"][0]["maximum_concurrency"] == "${local.maximum_concurrency}"
    expr = locals_of(MODULES / "client-delivery")["maximum_concurrency"]
    assert "max(2," in expr and "invocationRateLimit" in expr, expr
    # The delivery Lambda computes the same cap (ConcurrencyCap::Terraform): one environment per
    # RATE_PER_ENVIRONMENT requests/s, rounded up.
    rust = "".join(p.read_text() for p in sorted((REPO / "src/aws/delivery").glob("*.rs")))
    per_env = re.search(r"pub const RATE_PER_ENVIRONMENT: u64 = (\d+);", rust)
    assert per_env, "RATE_PER_ENVIRONMENT not found in src/aws/delivery/*.rs"
    assert f"ceil(sum([for t in var.targets : t.invocationRateLimit]) / {per_env.group(1)})" in expr, expr


# --------------------------------------------------------------------------- example tfvars


def test_example_tfvars_two_clients():
    tfvars = load(EXAMPLE_TFVARS)
    clients = tfvars["clients"]
    assert len(clients) == 2
    cvars = variables(COMPONENT)
    assert set(tfvars) <= set(cvars), f"unknown variables in the example: {set(tfvars) - set(cvars)}"
    modes = set()
    for key, c in clients.items():
        assert c["clientId"] == key
        target_ids = [t["targetId"] for t in c["targets"]]
        for s in c["subscriptions"]:
            assert set(s["targetIds"]) <= set(target_ids)
        for t in c["targets"]:
            assert "headerValue" not in t["apiKey"], "API keys belong in client_api_keys"
            modes.add(t.get("delivery", {}).get("mode", "api-destination"))
    assert modes == {"api-destination", "https"}, "the example should show both delivery modes"


# --------------------------------------------------------------------------- checkov


def _skip_comments():
    for path in ALL_TF_FILES:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "checkov:skip" in line:
                yield path, lineno, line.strip()


def test_checkov_skips_are_justified():
    skips = list(_skip_comments())
    assert skips, "expected some justified skips"
    for path, lineno, line in skips:
        m = re.fullmatch(r"#checkov:skip=(CKV2?_AWS_\d+):(.{20,})", line)
        assert m, f"{path}:{lineno}: skip without an ID and a reason: {line}"


def _checkov_bin() -> str | None:
    return os.environ.get("CHECKOV_BIN") or shutil.which("checkov")


@pytest.mark.skipif(_checkov_bin() is None, reason="checkov not installed (scripts/check-terraform.sh installs it)")
def test_checkov_clean():
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    proc = subprocess.run(
        [_checkov_bin(), "-d", str(TF_ROOT), "--framework", "terraform", "--compact", "--quiet",
         "--skip-download", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (rc={proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [f"{c['check_id']} {c['resource']} {c['file_path']}" for r in reports for c in r["results"].get("failed_checks", [])]
    assert summary["failed"] == 0 and not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0, f"checkov could not parse: {reports[0]['results'].get('parsing_errors')}"
    assert summary["passed"] > 100, summary
    assert summary["skipped"] == len(list(_skip_comments())), "every skip must be an inline #checkov:skip with a reason"
    assert proc.returncode == 0


# --------------------------------------------------------------------------- terraform binary (when present)


def _terraform() -> str | None:
    return os.environ.get("TERRAFORM_BIN") or shutil.which("terraform") or shutil.which("tofu")


def _plugin_dir() -> Path | None:
    p = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
    return p if (p / "registry.terraform.io" / "hashicorp" / "aws").is_dir() else None


def _tf_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "version"], capture_output=True, text=True).stdout
    m = re.search(r"v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@pytest.mark.skipif(_terraform() is None, reason="no terraform/tofu binary on PATH")
def test_terraform_fmt():
    proc = subprocess.run([_terraform(), "fmt", "-check", "-recursive", "-diff", str(TF_ROOT)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def initialised_copy(tmp_path_factory):
    """A copy of the tree (so no .terraform lands in the repo), initialised from the local provider."""
    binary, plugins = _terraform(), _plugin_dir()
    if binary is None:
        pytest.skip("no terraform/tofu binary on PATH")
    if plugins is None:
        pytest.skip("no local AWS provider (TF_PLUGIN_DIR); providers cannot be downloaded here")
    if _tf_version(binary) < (1, 5):
        pytest.skip("the component needs Terraform >= 1.5 (this binary can only fmt)")
    root = tmp_path_factory.mktemp("tf")
    shutil.copytree(TF_ROOT, root / "infrastructure" / "terraform",
                    ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    (root / "tests" / "fixtures").mkdir(parents=True)
    shutil.copy(FIXTURE, root / "tests" / "fixtures" / FIXTURE.name)
    comp = root / "infrastructure" / "terraform" / "components" / "callbacks"
    (comp / "tests").mkdir()
    shutil.copy(TFTEST, comp / "tests" / TFTEST.name)
    zip_path = root / "bootstrap.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    env = dict(os.environ, TF_DATA_DIR=str(root / ".terraform-data"), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    proc = subprocess.run([binary, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={plugins}"],
                          cwd=comp, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return binary, comp, env, zip_path


def test_terraform_validate(initialised_copy):
    binary, comp, env, _ = initialised_copy
    proc = subprocess.run([binary, "validate", "-no-color"], cwd=comp, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_terraform_test_plan_with_mock_provider(initialised_copy):
    binary, comp, env, zip_path = initialised_copy
    if _tf_version(binary) < (1, 7):
        pytest.skip("terraform test with mock_provider needs Terraform >= 1.7")
    proc = subprocess.run(
        [binary, "test", "-no-color", "-var-file=examples/two-clients.tfvars",
         f"-var=transform_filter_lambda_zip={zip_path}", f"-var=delivery_lambda_zip={zip_path}"],
        cwd=comp, capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"Success! [1-9]\d* passed, 0 failed", proc.stdout), proc.stdout
