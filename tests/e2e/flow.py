"""The three parts moto does not run, played by the driver as AWS documents them. Every
parameter is read back from the emulator (the deployed Pipe, event source mappings, API
destinations, connections and rule targets); none is repeated here.

- `Pipe.step`: the EventBridge Pipe (SQS source -> Lambda enrichment -> event bus target).
  Receives up to the source's BatchSize from the queue, invokes the enrichment with the list
  of SQS records, puts each element of the result on the target bus with the target
  parameters' Source and DetailType (the element as detail), and deletes the batch only when
  the enrichment and every PutEvents entry succeeded.
- `EventSourceMapping.step`: Lambda's SQS poller. Receives up to BatchSize, invokes the
  function with {"Records": [...]}, deletes every message not named in the response's
  batchItemFailures (ReportBatchItemFailures); failed ones stay, visible again when the
  visibility timeout the function set (ChangeMessageVisibility) has passed.
- `ApiDestinations.step`: the API destination call for each event a rule routed to an API
  destination target (recorded by the emulator): the body is the event at the target's
  InputPath, the headers are the target's HttpParameters.HeaderParameters (JSON paths read
  from the event) and the connection's API key header (from the connection's secret); 5xx and 429 are retried (up to the
  target's RetryPolicy.MaximumRetryAttempts), any other failure goes to the target's
  DeadLetterConfig queue with the event and the documented message attributes.
"""

import json
import ssl
import time
import urllib.error
import urllib.request

from emulator import api_destination_calls

SQS_RECEIVE_MAX = 10  # the SQS ReceiveMessage limit per call


def queue_url(sqs, arn: str) -> str:
    return sqs.get_queue_url(QueueName=arn.split(":")[-1])["QueueUrl"]


def receive(sqs, url: str, batch_size: int) -> list[dict]:
    messages: list[dict] = []
    while len(messages) < batch_size:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(SQS_RECEIVE_MAX, batch_size - len(messages)),
                                  AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        messages.extend(got)
    return messages


def sqs_record(m: dict, arn: str, region: str) -> dict:
    """A message as Lambda and Pipes hand it to a function (the SQS event record)."""
    return {
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {
            k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
            for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": region,
    }


def delete(sqs, url: str, messages: list[dict]) -> None:
    for i in range(0, len(messages), SQS_RECEIVE_MAX):
        chunk = messages[i:i + SQS_RECEIVE_MAX]
        out = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)])
        assert not out.get("Failed"), out["Failed"]


class Pipe:
    def __init__(self, aws, name: str, function, region: str):
        self.sqs, self.events, self.function, self.region = aws["sqs"], aws["events"], function, region
        pipe = aws["pipes"].describe_pipe(Name=name)
        self.described = pipe
        self.source_arn = pipe["Source"]
        self.url = queue_url(self.sqs, self.source_arn)
        self.batch_size = pipe["SourceParameters"]["SqsQueueParameters"]["BatchSize"]
        self.enrichment = pipe["Enrichment"]
        self.target = pipe["Target"]
        bus = pipe["TargetParameters"]["EventBridgeEventBusParameters"]
        self.source, self.detail_type = bus["Source"], bus["DetailType"]
        self.failures: list[bytes] = []

    def step(self) -> int:
        messages = receive(self.sqs, self.url, self.batch_size)
        if not messages:
            return 0
        kind, body = self.function.invoke([sqs_record(m, self.source_arn, self.region) for m in messages])
        if kind != "response":
            self.failures.append(body)  # the batch stays; it comes back after the visibility timeout
            return len(messages)
        elements = json.loads(body)
        for i in range(0, len(elements), 10):  # PutEvents takes 10 entries per call
            out = self.events.put_events(Entries=[
                {"EventBusName": self.target, "Source": self.source, "DetailType": self.detail_type,
                 "Detail": json.dumps(e)} for e in elements[i:i + 10]])
            if out["FailedEntryCount"]:
                self.failures.append(json.dumps(out["Entries"]).encode())
                return len(messages)
        delete(self.sqs, self.url, messages)
        return len(messages)


class EventSourceMapping:
    def __init__(self, aws, mapping: dict, function, region: str):
        self.sqs, self.function, self.region = aws["sqs"], function, region
        self.arn = mapping["EventSourceArn"]
        self.url = queue_url(self.sqs, self.arn)
        self.batch_size = mapping["BatchSize"]
        self.report_failures = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        self.responses: list[dict] = []

    def step(self) -> int:
        messages = receive(self.sqs, self.url, self.batch_size)
        if not messages:
            return 0
        kind, body = self.function.invoke({"Records": [sqs_record(m, self.arn, self.region) for m in messages]})
        if kind != "response":
            return len(messages)  # the whole batch is retried
        response = json.loads(body) if body else {}
        self.responses.append(response)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])} if self.report_failures else set()
        delete(self.sqs, self.url, [m for m in messages if m["MessageId"] not in failed])
        return len(messages)


def json_path(document, path: str):
    """The subset of JSONPath EventBridge targets use here: `$` or `$.a.b`."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported JSON path {path!r}")
    node = document
    for part in path[2:].split("."):
        node = node[part]
    return node


def compact(value) -> bytes:
    """How EventBridge writes the selected JSON: compact, UTF-8, keys in order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class ApiDestinations:
    RETRY_DELAY_S = 0.5  # AWS backs off exponentially; the test keeps the retries quick

    def __init__(self, aws, endpoint: str, ca_pem: str):
        self.events, self.sqs, self.secrets = aws["events"], aws["sqs"], aws["secretsmanager"]
        self.endpoint, self.ca_pem = endpoint, ca_pem
        self.tls = ssl.create_default_context(cafile=ca_pem)
        self.calls: list[dict] = []

    def _call(self, destination: dict, headers: dict, body: bytes) -> int:
        request = urllib.request.Request(destination["InvocationEndpoint"], data=body, method=destination["HttpMethod"],
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def step(self) -> int:
        routed = api_destination_calls(self.endpoint, self.ca_pem)
        for call in routed:
            self._deliver(call)
        return len(routed)

    def _deliver(self, call: dict) -> None:
        target, event = call["target"], call["event"]
        name = target["Arn"].split(":api-destination/")[1].split("/")[0]
        destination = self.events.describe_api_destination(Name=name)
        connection = self.events.describe_connection(Name=destination["ConnectionArn"].split(":connection/")[1].split("/")[0])
        # EventBridge keeps the connection's credentials in its Secrets Manager secret.
        secret = json.loads(self.secrets.get_secret_value(SecretId=connection["SecretArn"])["SecretString"])
        headers = {k: (str(json_path(event, v)) if v.startswith("$") else v)
                   for k, v in target.get("HttpParameters", {}).get("HeaderParameters", {}).items()}
        headers[secret["api_key_name"]] = secret["api_key_value"]
        body = compact(json_path(event, target.get("InputPath", "$")))
        attempts = target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185) + 1
        statuses = []
        for _ in range(attempts):
            statuses.append(self._call(destination, headers, body))
            if statuses[-1] < 300 or not (statuses[-1] >= 500 or statuses[-1] == 429):
                break
            time.sleep(self.RETRY_DELAY_S)
        self.calls.append({"rule": call["ruleArn"], "target": target["Arn"], "statuses": statuses})
        if statuses[-1] >= 300:
            dlq = target["DeadLetterConfig"]["Arn"]
            self.sqs.send_message(QueueUrl=queue_url(self.sqs, dlq), MessageBody=json.dumps(event), MessageAttributes={
                "RULE_ARN": {"DataType": "String", "StringValue": call["ruleArn"]},
                "TARGET_ARN": {"DataType": "String", "StringValue": target["Arn"]},
                "ERROR_CODE": {"DataType": "String", "StringValue": f"HTTP_{statuses[-1]}"},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": f"the endpoint answered {statuses[-1]}"},
                "RETRY_ATTEMPTS": {"DataType": "Number", "StringValue": str(len(statuses) - 1)},
            })
