"""What the end-to-end test sends and what it asserts (see run_e2e.py for the set-up).

Clients (tfvars written here, applied by Terraform):
  client-a  applicationId in its document; target "ad" in api-destination mode.
  client-b  applicationId from application_id_map; target "hs" in https mode.
  client-c  subscribed to SENDING only; target "hs" in https mode: gets nothing.
"""

import base64
import hashlib
import json
import secrets
import time

from flow import ApiDestinations, EventSourceMapping, Pipe, queue_url
from receivers import Receiver

MESSAGE_TYPE = "uk.nhs.notify.message.status.PUBLISHED.v1"
CACHE_TTL_S = 1  # config_cache_ttl_seconds: short, so an applied change shows quickly


def cloud_event(n: int, client: str, status: str, reference: str) -> dict:
    return {
        "specversion": "1.0", "id": f"e2e-{n}", "source": "/data-plane/client-callbacks/e2e",
        "type": MESSAGE_TYPE, "time": "2025-11-03T09:12:44.018Z", "datacontenttype": "application/json",
        "data": {
            "clientId": client, "messageId": f"e2eMessage{n:017d}", "messageReference": reference,
            "messageStatus": status, "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T09:12:44.018Z",
            "routingPlan": {"id": "b838b13c-f98c-4def-93f0-515d4e4f4ee1", "name": "Plan É/1",
                            "version": "v1", "createdDate": "2023-11-17T14:27:51.413Z"},
        },
    }


class Scenario:
    def __init__(self, aws, ca, log, started: list):
        self.aws, self.ca, self.log = aws, ca, log
        cert, key = ca.issue("receivers")
        self.api_keys = {f"{c}/{t}": secrets.token_hex(16) for c, t in
                         (("client-a", "ad"), ("client-b", "hs"), ("client-c", "hs"))}
        apps = {"client-a": "app-a", "client-b": "app-b", "client-c": "app-c"}
        self.receivers = {}
        for pair, api_key in self.api_keys.items():
            client = pair.split("/")[0]
            self.receivers[pair] = Receiver(client, cert, key, "x-api-key", api_key, apps[client])
            started.append(self.receivers[pair])
        self.a_statuses = ["DELIVERED", "FAILED"]

    # ----------------------------------------------------------------------------- deployment

    def tfvars(self, shared_bus: str, zips: dict) -> dict:
        def target(pair: str, delivery: dict) -> dict:
            return {"targetId": pair.split("/")[1], "type": "API", "invocationEndpoint": self.receivers[pair].url,
                    "invocationMethod": "POST", "invocationRateLimit": 10, "apiKey": {"headerName": "x-api-key"},
                    "delivery": delivery}

        https = {"mode": "https", "maxRetryDurationSeconds": 600, "initialBackoffMs": 1000, "maxBackoffMs": 2000,
                 "timeoutMs": 5000}

        def subscription(statuses: list[str], target_id: str) -> dict:
            return {"subscriptionId": "statuses", "subscriptionType": "MessageStatus", "messageStatuses": statuses,
                    "targetIds": [target_id]}

        return {
            "environment": "e2e", "shared_event_bus_name": shared_bus, "lambda_architecture": "x86_64",
            "transform_filter_lambda_zip": str(zips["transform-filter"]), "delivery_lambda_zip": str(zips["delivery"]),
            "config_cache_ttl_seconds": CACHE_TTL_S, "rust_log": "info",
            "application_id_map_key": "application-ids.json", "application_id_map": {"client-b": "app-b"},
            "clients": {
                "client-a": {"clientId": "client-a", "applicationId": "app-a",
                             "subscriptions": [subscription(self.a_statuses, "ad")],
                             "targets": [target("client-a/ad", {"mode": "api-destination", "maxRetryDurationSeconds": 600})]},
                "client-b": {"clientId": "client-b", "subscriptions": [subscription(["DELIVERED", "FAILED"], "hs")],
                             "targets": [target("client-b/hs", https)]},
                "client-c": {"clientId": "client-c", "applicationId": "app-c",
                             "subscriptions": [subscription(["SENDING"], "hs")],
                             "targets": [target("client-c/hs", https)]},
            },
        }

    @staticmethod
    def check_code(config: dict, zip_path) -> None:
        """The function the driver runs is the zip Terraform deployed."""
        digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
        assert config["CodeSha256"] == digest, (config["FunctionName"], config["CodeSha256"], digest)

    # ----------------------------------------------------------------------------- the flow

    def run(self, deployment, outputs: dict, functions: dict, emu) -> None:
        aws = self.aws
        self.pipe = Pipe(aws, outputs["pipe_name"], functions["transform-filter"], "eu-west-2")
        assert self.pipe.enrichment == functions["transform-filter"].arn, self.pipe.described
        assert self.pipe.target.endswith(f":event-bus/{outputs['callbacks_event_bus_name']}"), self.pipe.target
        assert self.pipe.url == outputs["callback_event_queue_url"], (self.pipe.url, outputs["callback_event_queue_url"])
        delivery_arn = functions["delivery"].arn
        mappings = aws["lambda"].list_event_source_mappings()["EventSourceMappings"]
        self.esms = [EventSourceMapping(aws, m, functions["delivery"], "eu-west-2")
                     for m in mappings if m["FunctionArn"] == delivery_arn]
        assert {m.url for m in self.esms} == set(outputs["https_delivery_queue_urls"].values()), \
            ([m.url for m in self.esms], outputs["https_delivery_queue_urls"])
        assert all(m.report_failures for m in self.esms)
        self.api = ApiDestinations(aws, emu.endpoint, str(self.ca.ca_pem))
        self.outputs = outputs

        self.log("batch 1: deliveries, retries, a 400 per mode, an invalid event, filtered events")
        batch = [
            cloud_event(1, "client-a", "DELIVERED", "ok-é/\"1\""),
            cloud_event(2, "client-b", "DELIVERED", "ok-2"),
            cloud_event(3, "client-a", "FAILED", "answer-500-then-200"),
            cloud_event(4, "client-a", "DELIVERED", "answer-400"),
            cloud_event(5, "client-b", "FAILED", "answer-500-then-200"),
            cloud_event(6, "client-b", "DELIVERED", "answer-400"),
            cloud_event(8, "client-c", "DELIVERED", "not-subscribed"),
            cloud_event(9, "client-a", "SENDING", "not-subscribed-yet"),
        ]
        invalid = cloud_event(7, "client-a", "NOT_A_STATUS", "invalid")
        batch.insert(6, invalid)
        self.put_on_shared_bus(batch)
        self.pump(lambda: self.got("client-a/ad", 200) >= {1, 3} and self.got("client-b/hs", 200) >= {2, 5}
                  and self.got("client-a/ad", 400) and self.got("client-b/hs", 400)
                  and self.dlq_messages("https_delivery_dlq_arns", "client-b", keep=True), "batch 1")
        assert not self.pipe.failures, self.pipe.failures
        self.assert_deliveries({"client-a/ad": {1, 3, 4}, "client-b/hs": {2, 5, 6}, "client-c/hs": set()})
        self.assert_retried("client-a/ad", 3)
        self.assert_retried("client-b/hs", 5)
        self.assert_dead_letters()
        self.assert_rejected(invalid)

        self.log("config change: client-a subscribes to SENDING (terraform apply)")
        self.a_statuses = ["DELIVERED", "FAILED", "SENDING"]
        tfvars = json.loads((deployment.dir / "e2e.tfvars.json").read_text())
        tfvars["clients"]["client-a"]["subscriptions"][0]["messageStatuses"] = self.a_statuses
        deployment.apply(tfvars, self.api_keys)
        time.sleep(CACHE_TTL_S + 1)
        self.put_on_shared_bus([cloud_event(10, "client-a", "SENDING", "after-change")])
        self.pump(lambda: 10 in self.got("client-a/ad", 200), "after the change")
        self.assert_deliveries({"client-a/ad": {1, 3, 4, 10}, "client-b/hs": {2, 5, 6}, "client-c/hs": set()})
        self.log("flow assertions passed")

    def put_on_shared_bus(self, events: list[dict]) -> None:
        out = self.aws["events"].put_events(Entries=[
            {"EventBusName": self.outputs["shared_event_bus_name"], "Source": "uk.nhs.notify", "DetailType": e["type"],
             "Detail": json.dumps(e)} for e in events])
        assert out["FailedEntryCount"] == 0, out

    def pump(self, done, what: str, timeout_s: float = 90) -> None:
        """Runs the Pipe, the API destinations and the event source mappings until `done()`."""
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.summary()}"
            moved = self.pipe.step() + self.api.step() + sum(m.step() for m in self.esms)
            if not moved:
                time.sleep(0.3)

    # ----------------------------------------------------------------------------- assertions

    def got(self, pair: str, status: int) -> set[int]:
        return {int(r["message_id"][len("e2eMessage"):]) for r in self.receivers[pair].snapshot()
                if r.get("status") == status and "message_id" in r}

    def summary(self) -> str:
        return json.dumps({p: [(r.get("message_id"), r["status"]) for r in rx.snapshot()]
                           for p, rx in self.receivers.items()})

    def assert_deliveries(self, expected: dict) -> None:
        for pair, rx in self.receivers.items():
            requests = rx.snapshot()
            got = {int(r["message_id"][len("e2eMessage"):]) for r in requests if "message_id" in r}
            assert got == expected[pair], (pair, got, expected[pair], self.summary())
            for r in requests:
                assert r["api_key_ok"] and r["signature_ok"], (pair, r)
                assert r["content_type"] == "application/vnd.api+json", (pair, r["content_type"])

    def assert_retried(self, pair: str, n: int) -> None:
        statuses = [r["status"] for r in self.receivers[pair].snapshot() if r.get("message_id", "").endswith(f"{n:017d}")]
        assert statuses == [500, 200], (pair, n, statuses)

    def dlq_messages(self, output: str, client: str, keep: bool = False) -> list[dict]:
        sqs = self.aws["sqs"]
        url = queue_url(sqs, self.outputs[output][client])
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                  VisibilityTimeout=0 if keep else 30).get("Messages", [])
        return got

    def assert_dead_letters(self) -> None:
        https = self.dlq_messages("https_delivery_dlq_arns", "client-b")
        assert len(https) == 1, https
        attrs = {k: v.get("StringValue") for k, v in https[0]["MessageAttributes"].items()}
        assert attrs.get("eventId") == "e2e-6", attrs
        history = json.loads(attrs["attemptHistory"])
        assert [a.get("status") for a in history] == [400], history
        api = self.dlq_messages("api_destination_dlq_arns", "client-a")
        assert len(api) == 1, api
        event = json.loads(api[0]["Body"])
        assert event["detail"]["eventId"] == "e2e-4", event
        assert api[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "HTTP_400"
        statuses = [r["status"] for r in self.receivers["client-a/ad"].snapshot() if r.get("reference") == "answer-400"]
        assert statuses == [400], statuses  # a 4xx is not retried

    def assert_rejected(self, invalid: dict) -> None:
        sqs = self.aws["sqs"]
        got = sqs.receive_message(QueueUrl=self.outputs["rejected_events_queue_url"], MaxNumberOfMessages=10,
                                  VisibilityTimeout=30).get("Messages", [])
        assert len(got) == 1, got
        record = json.loads(got[0]["Body"])
        assert record.get("eventId") == invalid["id"], record
        assert "messageStatus" in json.dumps(record.get("fields")) + record.get("reason", ""), record
        assert json.loads(record["body"])["detail"] == invalid, record["body"]

    @staticmethod
    def assert_nothing_left(aws, shared_bus: str, log) -> None:
        """After `terraform destroy`: no resource of the component in the emulator."""
        aws_managed_keys = {a.get("TargetKeyId") for a in aws["kms"].list_aliases()["Aliases"]
                            if a["AliasName"].startswith("alias/aws/")}
        left = {
            "queues": aws["sqs"].list_queues().get("QueueUrls", []),
            "buckets": [b["Name"] for b in aws["s3"].list_buckets().get("Buckets", [])],
            "functions": [f["FunctionName"] for f in aws["lambda"].list_functions()["Functions"]],
            "event source mappings": aws["lambda"].list_event_source_mappings()["EventSourceMappings"],
            "buses": [b["Name"] for b in aws["events"].list_event_buses()["EventBuses"]
                      if b["Name"] not in ("default", shared_bus)],
            "shared bus rules": [r["Name"] for r in aws["events"].list_rules(EventBusName=shared_bus)["Rules"]],
            "api destinations": [d["Name"] for d in aws["events"].list_api_destinations()["ApiDestinations"]],
            "connections": [c["Name"] for c in aws["events"].list_connections()["Connections"]],
            "archives": [a["ArchiveName"] for a in aws["events"].list_archives()["Archives"]],
            "pipes": [p["Name"] for p in aws["pipes"].list_pipes()["Pipes"]],
            "tables": aws["dynamodb"].list_tables()["TableNames"],
            "roles": [r["RoleName"] for r in aws["iam"].list_roles()["Roles"]],
            "log groups": [g["logGroupName"] for g in aws["logs"].describe_log_groups()["logGroups"]],
            "alarms": [a["AlarmName"] for a in aws["cloudwatch"].describe_alarms()["MetricAlarms"]],
            "dashboards": [d["DashboardName"] for d in aws["cloudwatch"].list_dashboards()["DashboardEntries"]],
            # A destroyed customer managed key waits out its deletion window (as on AWS); AWS
            # managed keys (alias/aws/*: moto makes alias/aws/dynamodb with the table) are not
            # the component's.
            "kms keys not pending deletion": [
                m["KeyId"] for m in (aws["kms"].describe_key(KeyId=k["KeyId"])["KeyMetadata"]
                                     for k in aws["kms"].list_keys()["Keys"])
                if m["KeyManager"] == "CUSTOMER" and m["KeyState"] != "PendingDeletion"
                and m["KeyId"] not in aws_managed_keys],
            "secrets": [x["Name"] for x in aws["secretsmanager"].list_secrets()["SecretList"]],
            "kms aliases": [a["AliasName"] for a in aws["kms"].list_aliases()["Aliases"]
                            if not a["AliasName"].startswith("alias/aws/")],
        }
        left = {k: v for k, v in left.items() if v}
        assert not left, f"terraform destroy left: {left}"
        log("destroy left nothing behind")
