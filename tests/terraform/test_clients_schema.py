"""The Terraform `clients` variable against schemas/client-config.schema.json (the one source of
the client configuration format): every drift between the two fails here.

- Shape: the variable's object type has exactly the schema's properties, at every level;
  a property the schema requires is not `optional(...)` (one documented exception:
  `apiKey.headerValue`, whose values come from the sensitive `client_api_keys` instead).
  The two subscription kinds of the schema (`oneOf`) are one object in Terraform, so there
  the fields are the union and only those both kinds require are required.
- Enums: every string enum of the schema is exactly the list the variable's validations
  accept for that field (`contains([...], ...)`), so Terraform refuses what the schema does.
- Bounds: every `minimum` / `maximum` of a number in the schema appears in a validation of
  that field as `>= minimum` / `<= maximum`.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "client-config.schema.json"
VARIABLES = ROOT / "infrastructure" / "terraform" / "components" / "callbacks" / "variables.tf"
# Required by the schema, optional in Terraform: the value is given in client_api_keys.
OPTIONAL_IN_TERRAFORM = {"targets.apiKey.headerValue"}


def schema() -> dict:
    return json.loads(SCHEMA.read_text())


def resolve(node: dict, root: dict) -> dict:
    while "$ref" in node and node["$ref"].startswith("#/$defs/"):
        node = root["$defs"][node["$ref"][len("#/$defs/"):]]
    return node


def schema_tree(node: dict, root: dict) -> dict:
    """{property: (required, subtree or None)} of an object schema, arrays looked through."""
    node = resolve(node, root)
    if node.get("type") == "array":
        return schema_tree(node["items"], root)
    if "oneOf" in node:
        kinds = [schema_tree(k, root) for k in node["oneOf"]]
        names = sorted({n for k in kinds for n in k})
        return {n: (all(n in k and k[n][0] for k in kinds), next(k[n][1] for k in kinds if n in k)) for n in names}
    if "properties" not in node:
        return None
    required = set(node.get("required", []))
    out = {}
    for name, prop in node["properties"].items():
        prop = resolve(prop, root)
        out[name] = (name in required, schema_tree(prop, root) if prop.get("type") in ("object", "array") or "oneOf" in prop else None)
    return out


# --------------------------------------------------------------------- the variable's HCL type

def clients_variable_text() -> str:
    text = VARIABLES.read_text()
    start = text.index('variable "clients" {')
    end = text.index('\nvariable "', start + 1)
    return text[start:end]


def type_expression(block: str) -> str:
    start = block.index("type = ") + len("type = ")
    depth, i = 0, start
    while True:
        c = block[i]
        depth += c in "({"
        depth -= c in ")}"
        i += 1
        if depth == 0 and c in ")}":
            return block[start:i]


def parse_type(text: str):
    """Terraform type constraint -> (optional, tree) where tree is None (primitive) or a dict
    {attribute: (optional, tree)}; list/map/set are looked through."""
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[(){}=,]", text)
    pos = 0

    def take(expected=None):
        nonlocal pos
        tok = tokens[pos]
        assert expected is None or tok == expected, (expected, tok, tokens[pos - 5:pos + 5])
        pos += 1
        return tok

    def parse():
        name = take()
        if name in ("string", "number", "bool", "any"):
            return (False, None)
        take("(")
        if name == "optional":
            inner = parse()
            if tokens[pos] == ",":
                raise AssertionError("optional() defaults are not expected in clients")
            take(")")
            return (True, inner[1])
        if name in ("list", "map", "set"):
            inner = parse()
            take(")")
            return (False, inner[1])
        assert name == "object", name
        take("{")
        attrs = {}
        while tokens[pos] != "}":
            attr = take()
            take("=")
            attrs[attr] = parse()
            if tokens[pos] == ",":
                take(",")
        take("}")
        take(")")
        return (False, attrs)

    return parse()


def compare(schema_node: dict, tf_node: dict, path: str, problems: list) -> None:
    for name in sorted(set(schema_node) | set(tf_node)):
        where = f"{path}.{name}".lstrip(".")
        if name not in tf_node:
            problems.append(f"{where}: in the schema, missing from the Terraform type")
            continue
        if name not in schema_node:
            problems.append(f"{where}: in the Terraform type, not in the schema")
            continue
        required, sub = schema_node[name]
        optional, tf_sub = tf_node[name]
        if required and optional and where not in OPTIONAL_IN_TERRAFORM:
            problems.append(f"{where}: required by the schema, optional(...) in Terraform")
        if not required and not optional:
            problems.append(f"{where}: optional in the schema, required in Terraform")
        if (sub is None) != (tf_sub is None):
            problems.append(f"{where}: object in one, primitive in the other")
        elif sub is not None:
            compare(sub, tf_sub, where, problems)


def test_clients_type_has_the_schema_shape():
    root = schema()
    # map(object(...)) keyed by clientId: the object is the client document.
    _, tf_tree = parse_type(type_expression(clients_variable_text()))
    problems: list[str] = []
    compare(schema_tree(root, root), tf_tree, "", problems)
    assert not problems, "clients variable drifted from the schema:\n" + "\n".join(problems)


# --------------------------------------------------------------------- enums and bounds

def validations() -> list[str]:
    return re.findall(r"validation \{(.*?)\n  \}", clients_variable_text(), re.S)


def leaf_constraints(node: dict, root: dict, path: str = ""):
    """(path, property schema) of every leaf property (arrays looked through)."""
    node = resolve(node, root)
    if node.get("type") == "array":
        yield from leaf_constraints(node["items"], root, path)
        return
    for kind in node.get("oneOf", []):
        yield from leaf_constraints(kind, root, path)
    for name, prop in node.get("properties", {}).items():
        prop = resolve(prop, root)
        sub = f"{path}.{name}".lstrip(".")
        items = resolve(prop["items"], root) if prop.get("type") == "array" else None
        if items is not None and "properties" not in items and "oneOf" not in items:
            yield sub, items
        elif "properties" in prop or prop.get("type") == "array" or "oneOf" in prop:
            yield from leaf_constraints(prop, root, sub)
        else:
            yield sub, prop


def checks_of(field: str) -> list[str]:
    """The validation blocks that test `field` (its last name, e.g. `.invocationMethod`)."""
    return [v for v in validations() if re.search(rf"\.{re.escape(field)}\b", v)]


def enum_fields():
    root = schema()
    seen = {}
    for path, prop in leaf_constraints(root, root):
        if "enum" in prop and prop.get("type") == "string":
            seen.setdefault(path.split(".")[-1], set()).update(prop["enum"])
    return sorted(seen.items())


@pytest.mark.parametrize("field,allowed", enum_fields(), ids=[f for f, _ in enum_fields()])
def test_enums_are_the_schemas(field, allowed):
    lists = [set(re.findall(r'"([^"]*)"', m)) for v in checks_of(field)
             for m in re.findall(r"contains\(\[(.*?)\]", v, re.S)]
    assert lists, f"no validation of clients checks {field} against the schema's enum {sorted(allowed)}"
    assert allowed in lists, f"{field}: the schema allows {sorted(allowed)}, the variable {[sorted(x) for x in lists]}"


def bound_fields():
    root = schema()
    out = {}
    for path, prop in leaf_constraints(root, root):
        if prop.get("type") in ("integer", "number") and ("minimum" in prop or "maximum" in prop):
            out[path.split(".")[-1]] = (prop.get("minimum"), prop.get("maximum"))
    return sorted(out.items())


@pytest.mark.parametrize("field,bounds", bound_fields(), ids=[f for f, _ in bound_fields()])
def test_bounds_are_the_schemas(field, bounds):
    text = "\n".join(checks_of(field))
    low, high = bounds
    if low is not None:
        assert re.search(rf"{re.escape(field)}\)?\s*>=\s*{low}\b", text), f"{field}: schema minimum {low} not checked"
    if high is not None:
        assert re.search(rf"{re.escape(field)}\)?\s*<=\s*{high}\b", text), f"{field}: schema maximum {high} not checked"


def test_enum_and_bound_fields_found():
    # The schema's enums this test must see (a refactor of the walk must not lose them).
    assert {f for f, _ in enum_fields()} >= {"invocationMethod", "mode", "subscriptionType", "type"}
