#![allow(dead_code)]
//! Support for the `aws_*` tests: sample events and configurations, an order-preserving JSON
//! re-serializer, a moto server the tests start themselves, and AWS SDK clients pointed at it.

use std::io::BufRead;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const MESSAGE_TYPE: &str = "uk.nhs.notify.message.status.PUBLISHED.v1";
pub const CHANNEL_TYPE: &str = "uk.nhs.notify.channel.status.PUBLISHED.v1";
pub const REGION: &str = "eu-west-2";

/// A message status event. Its messageReference holds non-ASCII characters, a `/` and an
/// escaped quote so that byte-exactness of the payload is really exercised.
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
            "messageId": message_id_for(id),
            "messageReference": "réf/ü–\"x\"",
            "messageStatus": status,
            "previousMessageStatus": "SENDING",
            "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T09:12:44.018Z",
            "routingPlan": {"id": "b838b13c-f98c-4def-93f0-515d4e4f4ee1", "name": "Plan Abc",
                "version": "ztoe2qRAM8M8vS0bqajhyEBcvXacrGPp", "createdDate": "2023-11-17T14:27:51.413Z"}
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
            "messageId": message_id_for(id),
            "messageReference": "ref-1",
            "channel": "NHSAPP",
            "channelStatus": channel_status,
            "supplierStatus": supplier_status,
            "cascadeType": "primary",
            "cascadeOrder": 1,
            "timestamp": "2025-11-03T09:12:44.018Z",
            "retryCount": 0
        }
    })
}

/// An EventBridge envelope around a CloudEvent (as a rule on the shared bus delivers it to SQS).
pub fn eventbridge_envelope(cloud_event: &Value) -> Value {
    json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "status",
        "source": "uk.nhs.notify", "account": "123456789012", "time": "2025-11-03T09:12:44Z",
        "region": REGION, "resources": [], "detail": cloud_event
    })
}

/// A valid Notify message id (27 alphanumerics) derived from an event id.
pub fn message_id_for(event_id: &str) -> String {
    let alnum: String = event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("M{alnum:0>26}").chars().take(27).collect()
}

pub fn api_key(client: &str, target: &str) -> String {
    format!("key-{client}-{target}")
}

pub fn application_id(client: &str) -> String {
    format!("app-{client}")
}

/// A client with two targets: `sub-msg` (DELIVERED, FAILED) → target-1 and target-2;
/// `sub-chan` (NHSAPP delivered/read) → target-1.
pub fn client_config(client: &str) -> Value {
    let targets: Vec<Value> = ["target-1", "target-2"]
        .iter()
        .map(|t| {
            json!({
                "targetId": t, "type": "API", "invocationEndpoint": format!("https://{client}.example/{t}"),
                "invocationMethod": "POST", "invocationRateLimit": 10,
                "apiKey": {"headerName": "x-api-key", "headerValue": api_key(client, t)}
            })
        })
        .collect();
    json!({
        "clientId": client,
        "applicationId": application_id(client),
        "subscriptions": [
            {"subscriptionId": "sub-msg", "subscriptionType": "MessageStatus",
             "messageStatuses": ["DELIVERED", "FAILED"], "targetIds": ["target-1", "target-2"]},
            {"subscriptionId": "sub-chan", "subscriptionType": "ChannelStatus", "channelType": "NHSAPP",
             "channelStatuses": ["DELIVERED"], "supplierStatuses": ["read"], "targetIds": ["target-1"]}
        ],
        "targets": targets
    })
}

/// An SQS record as the Pipe passes it to the enrichment (body: the event as a string).
pub fn sqs_record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": "AQEB",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1762160000000"},
        "messageAttributes": {},
        "md5OfBody": "x",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-2:123456789012:callback-events",
        "awsRegion": REGION
    })
}

// ---------------------------------------------------------------------------------------------
// Order-preserving JSON (serde_json's Value sorts object keys in this crate's build)
// ---------------------------------------------------------------------------------------------

/// A JSON value that keeps object keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    pub fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Ordered]> {
        match self {
            Ordered::Array(items) => Some(items),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Ordered::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
    /// Compact serialization (no insignificant white space, UTF-8, keys in document order):
    /// what EventBridge does when it extracts a subtree with `InputPath`.
    pub fn to_compact(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializes")
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Ordered, E> {
                serde_json::Number::from_f64(n)
                    .map(Ordered::Number)
                    .ok_or_else(|| E::custom("not finite"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Ordered, E> {
                Ok(Ordered::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    pairs.push((k, v));
                }
                Ok(Ordered::Object(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Null => s.serialize_unit(),
            Ordered::Bool(b) => s.serialize_bool(*b),
            Ordered::Number(n) => n.serialize(s),
            Ordered::String(t) => s.serialize_str(t),
            Ordered::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Ordered::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// moto
// ---------------------------------------------------------------------------------------------

/// A moto server on loopback, started once per test binary. It stops when the test process
/// exits (it runs until its stdin, a pipe held by this process, closes).
pub struct Moto {
    pub endpoint: String,
    _child: std::sync::Mutex<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

const MOTO_LAUNCHER: &str = r#"
import sys
try:
    from moto.server import ThreadedMotoServer
except ImportError as e:
    print("MOTO-MISSING", e, flush=True)
    sys.exit(3)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("MOTO-READY", flush=True)
sys.stdin.read()
server.stop()
"#;

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-c", MOTO_LAUNCHER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be on PATH to run moto (pip install 'moto[server]==5.2.5' boto3)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        if !line.starts_with("MOTO-READY") {
            let _ = child.kill();
            panic!(
                "moto server did not start ({}). Install it with: pip install 'moto[server]==5.2.5' boto3",
                line.trim()
            );
        }
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { endpoint: format!("http://{addr}"), _child: std::sync::Mutex::new(child) }
    })
}

/// The environment the Lambda binary and the SDK clients need to talk to moto.
pub fn moto_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let sdk = sdk_config(endpoint).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

pub async fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(endpoint).await)
}

/// A fresh name for a bucket or queue (tests share one moto).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
}

pub async fn put_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: impl Into<Vec<u8>>,
) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.into()))
        .send()
        .await
        .expect("put object");
}

pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("url")
        .to_string()
}

/// Every message on a queue (drained), bodies parsed as JSON.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    drain_queue_text(sqs, url)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).expect("message body is JSON"))
        .collect()
}

/// Every message body on a queue (drained), exactly as received.
pub async fn drain_queue_text(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive");
        let msgs = got.messages();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(m.body().unwrap_or("null").to_string());
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The delivery Lambda's client on moto (tests/aws_delivery*.rs)
// ---------------------------------------------------------------------------------------------

/// An https-mode client: one MessageStatus subscription (DELIVERED, FAILED) on one target,
/// `target-1`, at `endpoint` with API key `key` and the given `delivery` settings.
pub fn https_client_config(
    client: &str,
    app: &str,
    key: &str,
    endpoint: &str,
    delivery: Value,
) -> Value {
    json!({
        "clientId": client, "applicationId": app,
        "subscriptions": [{"subscriptionId": "sub-msg", "subscriptionType": "MessageStatus",
            "messageStatuses": ["DELIVERED", "FAILED"], "targetIds": ["target-1"]}],
        "targets": [{"targetId": "target-1", "type": "API", "invocationEndpoint": endpoint,
            "invocationMethod": "POST", "invocationRateLimit": 100,
            "apiKey": {"headerName": "x-api-key", "headerValue": key},
            "delivery": delivery}]
    })
}

/// Delivery settings with quick retries: a retryable failure comes back after one second.
pub fn fast_retries() -> Value {
    json!({"mode": "https", "initialBackoffMs": 1000, "maxBackoffMs": 1000, "timeoutMs": 5000})
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .expect("arn")
}

/// A client's queue and its dead-letter queue.
pub struct ClientQueue {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

/// Creates queue `name` with a redrive policy to a new `{name}-dlq`.
pub async fn client_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receive_count: u32,
    visibility_timeout_seconds: u32,
) -> ClientQueue {
    use aws_sdk_sqs::types::QueueAttributeName;
    let dlq_url = create_queue(sqs, &format!("{name}-dlq")).await;
    let dlq_arn = queue_arn(sqs, &dlq_url).await;
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()})
                .to_string(),
        )
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_seconds.to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_string();
    let arn = queue_arn(sqs, &url).await;
    ClientQueue { url, arn, dlq_url }
}

/// A DynamoDB table with a string key `pk` (the delivery Lambda's `DELIVERY_STATE_TABLE`).
pub async fn state_table(db: &aws_sdk_dynamodb::Client, prefix: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let table = unique(prefix);
    db.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
    table
}

/// One https-mode client on moto: its configuration in S3 (under `clients/`), its queue with a
/// redrive policy to its DLQ, and a configuration source reading that bucket (TTL 0).
pub struct DeliveryEnv {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub configs: std::sync::Arc<callbacks::aws::s3_config::S3ConfigSource>,
}

impl DeliveryEnv {
    /// `config`: the client's configuration document; the queue is named `{name}-…` with
    /// `max_receive_count` and `visibility_timeout_seconds`.
    pub async fn new(
        client: &str,
        config: &Value,
        name: &str,
        max_receive_count: u32,
        visibility_timeout_seconds: u32,
    ) -> DeliveryEnv {
        use callbacks::aws::s3_config::{S3ConfigSettings, S3ConfigSource};
        let m = moto();
        let sqs = sqs_client(&m.endpoint).await;
        let s3 = s3_client(&m.endpoint).await;
        let bucket = unique(&format!("{name}-cfg"));
        create_bucket(&s3, &bucket).await;
        put_object(
            &s3,
            &bucket,
            &format!("clients/{client}.json"),
            config.to_string(),
        )
        .await;
        let queue = client_queue(
            &sqs,
            &unique(name),
            max_receive_count,
            visibility_timeout_seconds,
        )
        .await;
        let configs = std::sync::Arc::new(S3ConfigSource::new(
            s3.clone(),
            S3ConfigSettings {
                bucket: bucket.clone(),
                prefix: "clients/".into(),
                application_id_map_key: None,
                ttl: Duration::ZERO,
            },
        ));
        DeliveryEnv {
            sqs,
            s3,
            bucket,
            queue_url: queue.url,
            queue_arn: queue.arn,
            dlq_url: queue.dlq_url,
            configs,
        }
    }
}

/// How many messages are visible on a queue now (received with visibility 0: left visible).
pub async fn visible_messages(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive")
        .messages()
        .len()
}
