#![allow(dead_code)]
//! Shared test helpers: sample events and configurations.

use serde_json::{json, Value};

pub const MESSAGE_TYPE: &str = "uk.nhs.notify.message.status.PUBLISHED.v1";
pub const CHANNEL_TYPE: &str = "uk.nhs.notify.channel.status.PUBLISHED.v1";
pub const MESSAGE_ID: &str = "2WL3qFTEFM0qMY8xjRbt1LIKCzM";

pub fn message_event(id: &str, client: &str, status: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "/data-plane/client-callbacks/nhs-notify-test/core",
        "type": MESSAGE_TYPE,
        "time": "2025-11-03T09:12:44.018Z",
        "datacontenttype": "application/json",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "data": {
            "clientId": client,
            "messageId": MESSAGE_ID,
            "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4",
            "messageStatus": status,
            "previousMessageStatus": "SENDING",
            "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T09:12:44.018Z",
            "routingPlan": {"id": "b838b13c-f98c-4def-93f0-515d4e4f4ee1", "name": "Plan Abc", "version": "ztoe2qRAM8M8vS0bqajhyEBcvXacrGPp", "createdDate": "2023-11-17T14:27:51.413Z"}
        }
    })
}

pub fn channel_event(id: &str, client: &str, channel_status: &str, supplier_status: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "/data-plane/client-callbacks/nhs-notify-test/core",
        "type": CHANNEL_TYPE,
        "time": "2025-11-03T09:12:44.018Z",
        "data": {
            "clientId": client,
            "messageId": MESSAGE_ID,
            "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4",
            "channel": "NHSAPP",
            "channelStatus": channel_status,
            "previousChannelStatus": "SENDING",
            "supplierStatus": supplier_status,
            "previousSupplierStatus": "received",
            "cascadeType": "primary",
            "cascadeOrder": 1,
            "timestamp": "2025-11-03T09:12:44.018Z",
            "retryCount": 0
        }
    })
}

pub fn client_config(client: &str, endpoint: &str) -> Value {
    json!({
        "clientId": client,
        "applicationId": format!("app-{client}"),
        "subscriptions": [
            {"subscriptionId": "sub-msg", "subscriptionType": "MessageStatus", "messageStatuses": ["DELIVERED", "failed"], "targetIds": ["target-1"]},
            {"subscriptionId": "sub-chan", "subscriptionType": "ChannelStatus", "channelType": "NHSAPP", "channelStatuses": ["delivered"], "supplierStatuses": ["READ"], "targetIds": ["target-1"]}
        ],
        "targets": [
            {"targetId": "target-1", "type": "API", "invocationEndpoint": endpoint, "invocationMethod": "POST", "invocationRateLimit": 10, "apiKey": {"headerName": "x-api-key", "headerValue": format!("key-{client}")}}
        ]
    })
}

pub fn schema_file(name: &str) -> Value {
    let text =
        callbacks::schema::files::get(name).unwrap_or_else(|| panic!("schema {name} is embedded"));
    serde_json::from_str(text).expect("schema parses")
}

/// Writes client configs into a fresh temporary directory.
pub fn config_dir(configs: &[Value]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for c in configs {
        let name = c["clientId"].as_str().expect("clientId");
        std::fs::write(
            dir.path().join(format!("{name}.json")),
            serde_json::to_vec_pretty(c).expect("json"),
        )
        .expect("write");
    }
    dir
}
