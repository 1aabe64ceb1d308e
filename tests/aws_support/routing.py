"""Routing check for the transform-filter Lambda's output, on a moto EventBridge bus.

Usage: routing.py ENDPOINT FIXTURE OUTPUT_JSON PAIRS_JSON

Creates a bus, and for every (clientId, targetId) in PAIRS_JSON an SQS queue and a rule whose
pattern is the fixture's targetPatternTemplate (the pattern the Terraform renders), then puts
every element of OUTPUT_JSON on the bus as the Pipe would (source / detail-type from the
fixture, the element as detail). Prints, per "clientId/targetId", what its queue received:
the detail's correlation fields and the `detail.payload` subtree re-serialized the way
EventBridge's InputPath does (compact, UTF-8).
"""

import json
import sys
import uuid

import boto3


def substitute(node, values):
    if isinstance(node, dict):
        return {k: substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, values) for v in node]
    if isinstance(node, str) and node.startswith("${") and node.endswith("}"):
        return values[node[2:-1]]
    return node


def main():
    endpoint, fixture_path, output_path, pairs_json = sys.argv[1:5]
    with open(fixture_path, encoding="utf-8") as f:
        fixture = json.load(f)
    with open(output_path, encoding="utf-8") as f:
        details = json.load(f)
    pairs = json.loads(pairs_json)
    kw = dict(endpoint_url=endpoint, region_name="eu-west-2",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    events = boto3.client("events", **kw)
    sqs = boto3.client("sqs", **kw)

    run = uuid.uuid4().hex[:8]
    bus = f"callbacks-{run}"
    events.create_event_bus(Name=bus)
    queues = {}
    for i, (client_id, target_id) in enumerate(pairs):
        url = sqs.create_queue(QueueName=f"cb-{run}-{i}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = substitute(fixture["targetPatternTemplate"], {"clientId": client_id, "targetId": target_id})
        rule = f"cb-{run}-{i}"
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        queues[f"{client_id}/{target_id}"] = url

    bus_fields = fixture["callbacksBus"]
    for start in range(0, len(details), 10):
        entries = [{"Source": bus_fields["source"], "DetailType": bus_fields["detailType"],
                    "Detail": json.dumps(d, ensure_ascii=False), "EventBusName": bus}
                   for d in details[start:start + 10]]
        result = events.put_events(Entries=entries)
        if result.get("FailedEntryCount"):
            raise SystemExit(f"put_events failed: {result}")

    received = {}
    for name, url in queues.items():
        got = []
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                event = json.loads(m["Body"])
                detail = event["detail"]
                got.append({
                    "source": event["source"],
                    "detailType": event["detail-type"],
                    "clientId": detail["clientId"],
                    "targetId": detail["targetId"],
                    "eventId": detail["eventId"],
                    "signature": detail["signature"],
                    # InputPath = $.detail.payload, re-serialized as EventBridge sends it.
                    "body": json.dumps(detail["payload"], separators=(",", ":"), ensure_ascii=False),
                })
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        received[name] = got
    json.dump(received, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
