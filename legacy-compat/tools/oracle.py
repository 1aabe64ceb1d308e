#!/usr/bin/env python3
"""Oracle for the legacy-compat golden corpus.

Computes, for each case under legacy-compat/cases/, the callback requests that the
clients must receive, and writes them to the case's expected.json. The rules are taken
from docs/CONTRACTS.md and the corpus README only; this file shares no code with the
Rust implementation, so the corpus is an independent check of it.

Usage:
    python3 legacy-compat/tools/oracle.py            # (re)write every case's expected.json
    python3 legacy-compat/tools/oracle.py CASE_DIR   # only these cases
    python3 legacy-compat/tools/oracle.py --check    # compare, write nothing; exit 1 on a difference

Inputs of a case (see ../README.md): event.json, clients/*.json (optional),
application-ids.json (optional), and expected.json, of which only "description" and
"linkBaseUrl" are read: "callbacks" is always recomputed.

Python standard library only.
"""

import hashlib
import hmac
import json
import os
import sys

DEFAULT_LINK_BASE_URL = "https://api.service.nhs.uk/comms"
CONTENT_TYPE = "application/vnd.api+json"
SIGNATURE_HEADER = "x-hmac-sha256-signature"

MESSAGE_STATUS_TYPES = {
    "uk.nhs.notify.message.status.PUBLISHED.v1",
    "uk.nhs.notify.client-callbacks.message.status.PUBLISHED.v1",
}
CHANNEL_STATUS_TYPES = {
    "uk.nhs.notify.channel.status.PUBLISHED.v1",
    "uk.nhs.notify.client-callbacks.channel.status.PUBLISHED.v1",
}

MESSAGE_REQUIRED = ["clientId", "messageId", "messageReference", "messageStatus",
                    "channels", "timestamp", "routingPlan"]
CHANNEL_REQUIRED = ["clientId", "messageId", "messageReference", "channel", "channelStatus",
                    "supplierStatus", "cascadeType", "cascadeOrder", "timestamp", "retryCount"]


class CaseError(Exception):
    """The case's inputs break a rule the corpus relies on (fix the case, not the oracle)."""


# ---------------------------------------------------------------------------------------
# Loading

def refuse_repeated_names(pairs):
    """An object that repeats a member name is ambiguous (RFC 8259): refused, not last-one-wins."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise CaseError(f"member {key!r} is repeated")
        obj[key] = value
    return obj


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=refuse_repeated_names)


def without_nulls(obj):
    """Null means absent (CloudEvents JSON format 3.1): for the envelope and for data."""
    return {k: v for k, v in obj.items() if v is not None}


def load_case(case_dir):
    event = load_json(os.path.join(case_dir, "event.json"))
    clients = []
    clients_dir = os.path.join(case_dir, "clients")
    if os.path.isdir(clients_dir):
        for name in sorted(os.listdir(clients_dir)):
            if name.endswith(".json"):
                doc = load_json(os.path.join(clients_dir, name))
                if doc.get("clientId") + ".json" != name:
                    raise CaseError(f"clients/{name}: file name must be <clientId>.json")
                clients.append(doc)
    app_ids_path = os.path.join(case_dir, "application-ids.json")
    app_ids = load_json(app_ids_path) if os.path.exists(app_ids_path) else {}
    expected_path = os.path.join(case_dir, "expected.json")
    expected = load_json(expected_path) if os.path.exists(expected_path) else {}
    return event, clients, app_ids, expected


# ---------------------------------------------------------------------------------------
# Filter

def lower(value):
    """Statuses, channel types and supplier statuses are compared and sent in lower case,
    whatever case the event or the configuration writes them in."""
    return value.lower()


def changed(previous, current):
    """A status changed when there is no previous value or it differs (ignoring case)."""
    return previous is None or lower(previous) != lower(current)


def in_list(value, values):
    return lower(value) in {lower(v) for v in values}


def subscription_matches(kind, data, sub):
    if kind == "MessageStatus":
        if sub["subscriptionType"] != "MessageStatus":
            return False
        return (in_list(data["messageStatus"], sub["messageStatuses"])
                and changed(data.get("previousMessageStatus"), data["messageStatus"]))
    # ChannelStatus
    if sub["subscriptionType"] != "ChannelStatus":
        return False
    if lower(data["channel"]) != lower(sub["channelType"]):
        return False
    supplier_hit = (changed(data.get("previousSupplierStatus"), data["supplierStatus"])
                    and in_list(data["supplierStatus"], sub["supplierStatuses"]))
    channel_hit = (changed(data.get("previousChannelStatus"), data["channelStatus"])
                   and in_list(data["channelStatus"], sub["channelStatuses"]))
    return supplier_hit or channel_hit


def matching_targets(kind, data, config):
    """{targetId: [subscriptionId, ...]} in configuration order, each id once."""
    known_targets = {t["targetId"] for t in config["targets"]}
    hits = {}
    for sub in config["subscriptions"]:
        if not subscription_matches(kind, data, sub):
            continue
        for target_id in sub["targetIds"]:
            if target_id not in known_targets:
                raise CaseError(f"subscription {sub['subscriptionId']} names unknown target {target_id}")
            ids = hits.setdefault(target_id, [])
            if sub["subscriptionId"] not in ids:
                ids.append(sub["subscriptionId"])
    return hits


# ---------------------------------------------------------------------------------------
# Transform (key order is the contract's; Python dicts keep insertion order)

def optional_text(attrs, data, key):
    value = data.get(key)
    if isinstance(value, str) and value != "":
        attrs[key] = value


def idempotency_key(event):
    return hashlib.sha256((event["source"] + "\n" + event["id"]).encode("utf-8")).hexdigest()


def message_status_attributes(data):
    attrs = {
        "messageId": data["messageId"],
        "messageReference": data["messageReference"],
        "messageStatus": lower(data["messageStatus"]),
    }
    optional_text(attrs, data, "messageStatusDescription")
    optional_text(attrs, data, "messageFailureReasonCode")
    attrs["channels"] = [
        {"type": lower(c["type"]), "channelStatus": lower(c["channelStatus"])}
        for c in data["channels"]
    ]
    attrs["timestamp"] = data["timestamp"]
    plan = data["routingPlan"]
    attrs["routingPlan"] = {
        "id": plan["id"],
        "name": plan["name"],
        "version": plan["version"],
        "createdDate": plan["createdDate"],
    }
    return attrs


def channel_status_attributes(data):
    attrs = {
        "messageId": data["messageId"],
        "messageReference": data["messageReference"],
        "cascadeType": data["cascadeType"],
        "cascadeOrder": data["cascadeOrder"],
        "channel": lower(data["channel"]),
        "channelStatus": lower(data["channelStatus"]),
    }
    optional_text(attrs, data, "channelStatusDescription")
    optional_text(attrs, data, "channelFailureReasonCode")
    attrs["supplierStatus"] = lower(data["supplierStatus"])
    attrs["timestamp"] = data["timestamp"]
    attrs["retryCount"] = data["retryCount"]
    return attrs


def callback_body(kind, event, link_base_url):
    data = event["data"]
    attrs = message_status_attributes(data) if kind == "MessageStatus" else channel_status_attributes(data)
    item = {
        "type": kind,
        "attributes": attrs,
        "links": {"message": link_base_url + "/v1/messages/" + data["messageId"]},
        "meta": {"idempotencyKey": idempotency_key(event)},
    }
    return json.dumps({"data": [item]}, separators=(",", ":"), ensure_ascii=False)


def signature(application_id, api_key, body):
    key = (application_id + "." + api_key).encode("utf-8")
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------
# A whole case

def event_kind(event):
    if event.get("type") in MESSAGE_STATUS_TYPES:
        return "MessageStatus", MESSAGE_REQUIRED
    if event.get("type") in CHANNEL_STATUS_TYPES:
        return "ChannelStatus", CHANNEL_REQUIRED
    raise CaseError(f"event type {event.get('type')!r} is not accepted")


def compute(case_dir):
    event, clients, app_ids, expected = load_case(case_dir)
    event = without_nulls(event)
    kind, required = event_kind(event)
    if not isinstance(event.get("data"), dict):
        raise CaseError("event data is absent or not an object")
    data = event["data"] = without_nulls(event["data"])
    missing = [k for k in required if k not in data]
    if missing:
        raise CaseError(f"event data lacks {missing}")
    if " " in event["source"] or not event["id"]:
        raise CaseError("event source/id unusable")

    link_base_url = expected.get("linkBaseUrl", DEFAULT_LINK_BASE_URL)
    configs = [c for c in clients if c["clientId"] == data["clientId"]]
    if len(configs) > 1:
        raise CaseError(f"two configurations for client {data['clientId']}")

    callbacks = []
    if configs:
        config = configs[0]
        hits = matching_targets(kind, data, config)
        if hits:
            application_id = config.get("applicationId") or app_ids.get(config["clientId"])
            if not application_id:
                raise CaseError(f"no applicationId for client {config['clientId']}")
            body = callback_body(kind, event, link_base_url)
            targets = {t["targetId"]: t for t in config["targets"]}
            for target_id in sorted(hits):
                target = targets[target_id]
                api_key = target["apiKey"]
                header_name = api_key["headerName"].lower()
                if header_name in ("content-type", SIGNATURE_HEADER):
                    raise CaseError(f"target {target_id}: apiKey header clashes with {header_name}")
                callbacks.append({
                    "clientId": config["clientId"],
                    "targetId": target_id,
                    "subscriptionIds": hits[target_id],
                    "url": target["invocationEndpoint"],
                    "method": "POST",
                    "headers": {
                        "content-type": CONTENT_TYPE,
                        header_name: api_key["headerValue"],
                        SIGNATURE_HEADER: signature(application_id, api_key["headerValue"], body),
                    },
                    "body": body,
                })

    out = {"description": expected.get("description", "")}
    if "linkBaseUrl" in expected:
        out["linkBaseUrl"] = expected["linkBaseUrl"]
    out["callbacks"] = callbacks
    return out


def render(obj):
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv
    dirs = [a for a in argv if a != "--check"]
    if not dirs:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cases")
        root = os.path.normpath(root)
        dirs = [os.path.join(root, d) for d in sorted(os.listdir(root))
                if os.path.isdir(os.path.join(root, d))]
    failures = 0
    total_callbacks = 0
    for case_dir in dirs:
        name = os.path.basename(os.path.normpath(case_dir))
        try:
            out = compute(case_dir)
        except (CaseError, KeyError, TypeError, ValueError) as e:
            print(f"ERROR {name}: {type(e).__name__}: {e}")
            failures += 1
            continue
        text = render(out)
        path = os.path.join(case_dir, "expected.json")
        total_callbacks += len(out["callbacks"])
        if check:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
            print(f"{'ok  ' if same else 'DIFF'} {name}: {len(out['callbacks'])} callback(s)")
            failures += 0 if same else 1
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {name}: {len(out['callbacks'])} callback(s)")
    print(f"{len(dirs)} case(s), {total_callbacks} callback(s), {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
