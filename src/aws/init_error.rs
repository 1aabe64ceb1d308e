//! Init-phase failures reported to the Lambda Runtime API (`POST /runtime/init/error`), so that
//! Lambda shows the reason (the invoke answers `Runtime.ConfigInvalid` with the message, and the
//! function's log has it) instead of an anonymous `Runtime.ExitError`.

use std::time::Duration;

/// The `Lambda-Runtime-Function-Error-Type` (and `errorType`) of a wrong or missing setting.
pub const CONFIG_INVALID: &str = "Runtime.ConfigInvalid";

/// How long the report may take; the process exits right after it either way.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Passes `result` through; on an error, logs it and reports it to the Runtime API at
/// `AWS_LAMBDA_RUNTIME_API` (when set) before handing it back to `main`, which exits.
pub async fn reported<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, E> {
    if let Err(error) = &result {
        let message = error.to_string();
        tracing::error!(error = %message, "init failed");
        if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
            report(&api, &message).await;
        }
    }
    result
}

/// `POST http://{api}/2018-06-01/runtime/init/error` with the documented error document.
async fn report(api: &str, message: &str) {
    let body = serde_json::json!({
        "errorMessage": message,
        "errorType": CONFIG_INVALID,
        "stackTrace": [],
    });
    let sent = match reqwest::Client::builder().timeout(REPORT_TIMEOUT).build() {
        Ok(client) => {
            client
                .post(format!("http://{api}/2018-06-01/runtime/init/error"))
                .header("Lambda-Runtime-Function-Error-Type", CONFIG_INVALID)
                .json(&body)
                .send()
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}
