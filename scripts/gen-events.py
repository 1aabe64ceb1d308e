#!/usr/bin/env python3
"""Writes N newline-delimited status events (a deterministic mix across 10 clients) to stdout.

Used by scripts/bench-transform.sh (BENCHMARKS.md) to measure `callbacks transform` throughput
and peak memory. Every event carries the optional CloudEvents attributes NHS Notify sets
(subject, datacontenttype, dataschema, traceparent), about 960 bytes a line:
    python3 scripts/gen-events.py 200000 > /tmp/events.ndjson
"""
import json
import sys

MESSAGE = ["CREATED", "PENDING_ENRICHMENT", "ENRICHED", "SENDING", "DELIVERED", "FAILED"]
CHANNEL = ["CREATED", "SENDING", "DELIVERED", "FAILED", "SKIPPED"]
SUPPLIER = ["received", "notified", "read", "delivered", "permanent_failure"]
CHANNELS = ["NHSAPP", "EMAIL", "SMS", "LETTER"]
SCHEMA_BASE = "https://notify.nhs.uk/cloudevents/schemas/client-callbacks/"


def event(i):
    client = f"client-{i % 10}"
    base = {
        "specversion": "1.0",
        "id": f"9b1a0c9e-0000-4000-8000-{i:012d}",
        "source": "/data-plane/client-callbacks/nhs-notify-prod/core",
        "time": "2025-11-03T09:12:44.018Z",
        "datacontenttype": "application/json",
        "subject": f"customer/{i % 977:08d}/message/2WL3qFTEFM0qMY8xjRbt1LIKCzM",
        "traceparent": f"00-{i + 1:032x}-b7ad6b7169203331-01",
    }
    if i % 5 < 3:
        base["type"] = "uk.nhs.notify.message.status.PUBLISHED.v1"
        base["dataschema"] = SCHEMA_BASE + "message-status-data.v1.schema.json"
        base["data"] = {
            "clientId": client, "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
            "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4",
            "messageStatus": MESSAGE[i % 6], "previousMessageStatus": "ENRICHED",
            "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T09:12:44.018Z",
            "routingPlan": {"id": "b838b13c-f98c-4def-93f0-515d4e4f4ee1", "name": "Plan Abc",
                            "version": "ztoe2qRAM8M8vS0bqajhyEBcvXacrGPp", "createdDate": "2023-11-17T14:27:51.413Z"},
        }
    else:
        base["type"] = "uk.nhs.notify.channel.status.PUBLISHED.v1"
        base["dataschema"] = SCHEMA_BASE + "channel-status-data.v1.schema.json"
        base["data"] = {
            "clientId": client, "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
            "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4", "channel": CHANNELS[i % 4],
            "channelStatus": CHANNEL[i % 5], "previousChannelStatus": "SENDING",
            "supplierStatus": SUPPLIER[i % 5], "previousSupplierStatus": "received",
            "cascadeType": "primary", "cascadeOrder": 1, "timestamp": "2025-11-03T09:12:44.018Z", "retryCount": 0,
        }
    return base


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    out = sys.stdout
    for i in range(n):
        out.write(json.dumps(event(i), separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    main()
