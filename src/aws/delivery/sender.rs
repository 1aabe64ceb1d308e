//! [`Sender`] over the engine's [`HttpSender`]: one client (connection pool, timeout, mTLS
//! identity) per target, kept for the life of the execution environment and rebuilt when the
//! target's settings change. `https://` only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::config::DeliverySettings;
use crate::deliver::{self, Attempt, AttemptOutcome, Egress, HttpSender, Request, SenderConfig};

use super::{Sender, TargetKey};

/// The HTTP clients of every target this execution environment has delivered to.
#[derive(Debug, Default)]
pub struct HttpSenders {
    extra_ca: Option<PathBuf>,
    egress: Egress,
    clients: Mutex<HashMap<TargetKey, (SenderConfig, HttpSender)>>,
}

impl HttpSenders {
    /// `extra_ca`: a PEM bundle trusted in addition to the system roots. `https://` only;
    /// non-public addresses only with `allow_private_egress` (`ALLOW_PRIVATE_EGRESS`).
    pub fn new(extra_ca: Option<PathBuf>, allow_private_egress: bool) -> Self {
        HttpSenders {
            extra_ca,
            egress: Egress {
                allow_private: allow_private_egress,
                ..Egress::default()
            },
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, target: &TargetKey, config: SenderConfig) -> Result<HttpSender, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, s)) = clients.get(target) {
            if *c == config {
                return Ok(s.clone());
            }
        }
        let sender = HttpSender::with_extra_ca(config.clone(), self.extra_ca.as_deref())
            .map_err(|e| e.to_string())?;
        clients.insert(target.clone(), (config, sender.clone()));
        Ok(sender)
    }
}

impl Sender for HttpSenders {
    async fn send(
        &self,
        target: &TargetKey,
        settings: &DeliverySettings,
        request: Request<'_>,
    ) -> Attempt {
        match self.client(target, deliver::sender_config(settings, &self.egress)) {
            Ok(sender) => sender.send(request).await,
            // An unreadable mTLS identity is our configuration's fault: permanent (DLQ, replay
            // once fixed). The message names the file, never its contents.
            Err(reason) => Attempt {
                outcome: AttemptOutcome::Invalid(reason),
                started: SystemTime::now(),
                duration: Duration::ZERO,
            },
        }
    }
}
