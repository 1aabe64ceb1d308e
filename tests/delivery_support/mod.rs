#![allow(dead_code)]
//! An HTTPS callback receiver on loopback for the delivery Lambda tests: a CA, a server
//! certificate for 127.0.0.1 and (for mTLS) a client certificate, all made in the test with
//! rcgen; TLS by rustls; HTTP/1.1 by hyper. Every request is recorded; the answer comes from a
//! function of the request's arrival index.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// Certificates and keys (PEM files in a temporary directory).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    pub client_cert_pem: PathBuf,
    pub client_key_pem: PathBuf,
    server_cert_pem: String,
    server_key_pem: String,
    ca_cert_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "callbacks test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA cert");

        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .expect("server cert");

        let client_key = KeyPair::generate().expect("client key");
        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        client_params
            .distinguished_name
            .push(DnType::CommonName, "nhs-notify-callbacks");
        let client_cert = client_params
            .signed_by(&client_key, &ca)
            .expect("client cert");

        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write pem");
            p
        };
        let ca_pem = write("ca.pem", &ca.pem());
        let client_cert_pem = write("client.pem", &client_cert.pem());
        let client_key_pem = write("client.key", &client_key.serialize_pem());
        Pki {
            ca_pem,
            client_cert_pem,
            client_key_pem,
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            ca_cert_pem: ca.pem(),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server certificate (for 127.0.0.1 and localhost) and key as PEM files.
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        let cert = self.dir.path().join("server.pem");
        let key = self.dir.path().join("server.key");
        std::fs::write(&cert, &self.server_cert_pem).expect("write server cert");
        std::fs::write(&key, &self.server_key_pem).expect("write server key");
        (cert, key)
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs =
            vec![CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).expect("key");
        let builder = rustls::ServerConfig::builder();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes()).expect("ca"))
                .expect("root");
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder.with_single_cert(certs, key).expect("server config")
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn idempotency_key(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("json body");
        v["data"][0]["meta"]["idempotencyKey"]
            .as_str()
            .expect("key")
            .to_string()
    }
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
    pub fn retry_after(status: u16, value: &str) -> Reply {
        Reply {
            retry_after: Some(value.to_string()),
            ..Reply::status(status)
        }
    }
}

type Responder = dyn Fn(usize, &Received) -> Reply + Send + Sync;

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a receiver. `require_client_cert`: mTLS (client certificates signed by the test CA).
pub async fn start(
    pki: &Pki,
    require_client_cert: bool,
    responder: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static,
) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor =
        tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config(require_client_cert)));
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let responder: Arc<Responder> = Arc::new(responder);
    let rec = Arc::clone(&received);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let rec = Arc::clone(&rec);
            let responder = Arc::clone(&responder);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let rec = Arc::clone(&rec);
                    let responder = Arc::clone(&responder);
                    async move {
                        let at = Instant::now();
                        let path = req.uri().path().to_string();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (n.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                            })
                            .collect();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes().to_vec())
                            .unwrap_or_default();
                        let r = Received {
                            at,
                            path,
                            headers,
                            body,
                        };
                        let index = {
                            let mut all = rec.lock().expect("lock");
                            all.push(r.clone());
                            all.len() - 1
                        };
                        let reply = responder(index, &r);
                        if !reply.delay.is_zero() {
                            tokio::time::sleep(reply.delay).await;
                        }
                        let mut resp = Response::builder().status(reply.status);
                        if let Some(ra) = &reply.retry_after {
                            resp = resp.header("retry-after", ra);
                        }
                        Ok::<_, Infallible>(
                            resp.body(Full::new(Bytes::from_static(b"{}")))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Receiver {
        addr,
        received,
        task,
    }
}
