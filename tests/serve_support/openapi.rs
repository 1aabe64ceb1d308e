//! `docs/attempts-api.openapi.json` for the tests: real answers of a running serve validated
//! against what the file documents for their operation and status.

use serde_json::{json, Value};

pub fn openapi() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/attempts-api.openapi.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Asserts that `body` is what the OpenAPI file documents for `method` on `template` and
/// `status`.
pub fn conforms(api: &Value, method: &str, template: &str, status: u16, body: &Value) {
    let schema = &api["paths"][template][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} documents no {status} answer"
    );
    let root = json!({ "allOf": [schema], "components": api["components"] });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: {errors:?}\n{body:#}"
    );
}

/// The admin listener of a running serve, every answer validated against the file.
pub struct Admin {
    pub base: String,
    pub api: Value,
    pub http: reqwest::Client,
}

impl Admin {
    pub fn new(base: String) -> Admin {
        Admin {
            base,
            api: openapi(),
            http: reqwest::Client::new(),
        }
    }

    /// GETs `path` (documented as `template`); the status and body, validated.
    pub async fn get(&self, template: &str, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base));
        self.answer("get", template, path, r).await
    }

    /// POSTs `body` as JSON to `path` (documented as `template`); the status and body,
    /// validated.
    pub async fn post(&self, template: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(body);
        self.answer("post", template, path, r).await
    }

    async fn answer(
        &self,
        method: &str,
        template: &str,
        path: &str,
        r: reqwest::RequestBuilder,
    ) -> (u16, Value) {
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(super::API_KEY),
            "an API key in {path}: {text}"
        );
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        conforms(&self.api, method, template, status, &body);
        (status, body)
    }
}
