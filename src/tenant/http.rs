//! The one place tenant HTTP requests are sent: TLS trust, timeouts, per-tenant concurrency and
//! rate limits, retries (exactly `Retry-After` when given, else exponential backoff with jitter),
//! and metrics.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use super::error::{Api, ErrorClass, TenantError};
use crate::metrics::{ApiLabels, RequestLabels, TenantMetrics};

/// Which limiter bucket a call uses: reads and writes are throttled separately by Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Token,
    GraphRead,
    GraphWrite,
    Exchange,
}

/// Whether repeating a request that may have reached the tenant is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, and writes whose repeat is detected (create → "already exists" → re-read).
    Safe,
    /// Writes whose repeat would create a second object (e.g. addPassword): retried only when the
    /// tenant certainly did not act (429, connect failure).
    Unsafe,
}

/// Retry and limit settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Per-request timeout (Exchange REST cmdlets time out server-side after 15 minutes).
    pub timeout: Duration,
    /// Attempts per logical call, the first included.
    pub max_attempts: u32,
    /// First backoff step.
    pub base_backoff: Duration,
    /// Largest backoff step (and largest Retry-After honoured).
    pub max_backoff: Duration,
    /// Concurrent requests per (tenant, family).
    pub concurrency: usize,
    /// Requests per second per (tenant, family); `None` = unlimited.
    pub rate_per_second: Option<u32>,
    /// Extra PEM CA certificates to trust (sovereign/private clouds, the simulator).
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            max_attempts: 6,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(120),
            concurrency: 10,
            rate_per_second: None,
            ca_pem: None,
        }
    }
}

struct Bucket {
    slots: Semaphore,
    rate: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

type Buckets = HashMap<(String, Family), Arc<Bucket>>;

/// Shared HTTP machinery for all tenant clients.
#[derive(Clone)]
pub struct Transport {
    pub(crate) client: reqwest::Client,
    config: Arc<HttpConfig>,
    buckets: Arc<Mutex<Buckets>>,
    metrics: Arc<TenantMetrics>,
}

impl Transport {
    /// Builds the HTTP client (rustls with the webpki roots plus any configured CA).
    pub fn new(config: HttpConfig, metrics: Arc<TenantMetrics>) -> Result<Self, TenantError> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("t2t-operator/", env!("CARGO_PKG_VERSION")));
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &config.ca_pem {
            for cert in crate::tls::parse_pem_certs(pem).map_err(TenantError::Config)? {
                roots
                    .add(cert)
                    .map_err(|e| TenantError::Config(format!("CA bundle: {e}")))?;
            }
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder = builder.tls_backend_preconfigured(tls);
        let client = builder
            .build()
            .map_err(|e| TenantError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            config: Arc::new(config),
            buckets: Arc::default(),
            metrics,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The wait before retrying a call that failed `tries` times with `class`, counted in the
    /// metrics. A throttle waits its `Retry-After` (else backoff) and pauses the whole
    /// (tenant, family) bucket, so the tenant's other calls hold off too.
    pub fn retry_wait(
        &self,
        api: Api,
        tenant: &str,
        family: Family,
        class: ErrorClass,
        tries: u32,
    ) -> Duration {
        let api_label = ApiLabels { api: api.as_str() };
        let wait = match class {
            ErrorClass::Throttled { retry_after } => {
                self.metrics.throttled.get_or_create(&api_label).inc();
                let wait = retry_after
                    .unwrap_or_else(|| backoff(&self.config, tries))
                    .min(self.config.max_backoff);
                self.pause(&self.bucket(tenant, family), wait);
                wait
            }
            _ => backoff(&self.config, tries),
        };
        self.metrics.retries.get_or_create(&api_label).inc();
        wait
    }

    fn bucket(&self, tenant: &str, family: Family) -> Arc<Bucket> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((tenant.to_ascii_lowercase(), family))
            .or_insert_with(|| {
                Arc::new(Bucket {
                    slots: Semaphore::new(self.config.concurrency.max(1)),
                    rate: self
                        .config
                        .rate_per_second
                        .and_then(NonZeroU32::new)
                        .map(|r| RateLimiter::direct(Quota::per_second(r))),
                    paused_until: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Pauses a bucket: a throttled answer slows every caller for that tenant, not just the one that saw it.
    fn pause(&self, bucket: &Bucket, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = bucket
            .paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    /// Runs one logical call: `attempt` sends the request once and returns its outcome. Retries
    /// throttled and transient failures; returns conflicts and terminal errors at once.
    pub async fn execute<T, F, Fut>(
        &self,
        api: Api,
        tenant: &str,
        family: Family,
        method: &str,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, TenantError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, TenantError>>,
    {
        let bucket = self.bucket(tenant, family);
        let api_label = ApiLabels { api: api.as_str() };
        let mut tries = 0u32;
        loop {
            tries += 1;
            // Wait for a pause, a rate token and a concurrency slot.
            let waited = Instant::now();
            loop {
                let pause = *bucket
                    .paused_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                match pause {
                    Some(until) if until > Instant::now() => {
                        tokio::time::sleep_until(until.into()).await
                    }
                    _ => break,
                }
            }
            if let Some(rate) = &bucket.rate {
                rate.until_ready().await;
            }
            let permit = bucket
                .slots
                .acquire()
                .await
                .map_err(|_| TenantError::Config("limiter closed".into()))?;
            self.metrics
                .limiter_wait
                .get_or_create(&api_label)
                .observe(waited.elapsed().as_secs_f64());

            let started = Instant::now();
            let result = attempt().await;
            drop(permit);
            self.metrics
                .duration
                .get_or_create(&api_label)
                .observe(started.elapsed().as_secs_f64());
            let code = match &result {
                Ok(_) => "200".to_string(),
                Err(e) => e
                    .status()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "error".into()),
            };
            self.metrics
                .requests
                .get_or_create(&RequestLabels {
                    api: api.as_str(),
                    method: method.to_string(),
                    code,
                })
                .inc();

            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let class = err.class();
            let retryable = match (class, idempotency) {
                (ErrorClass::Throttled { .. }, _) => true,
                (ErrorClass::Transient, Idempotency::Safe) => true,
                // A connect failure means the request never left; anything else may have been applied.
                (ErrorClass::Transient, Idempotency::Unsafe) => {
                    matches!(&err, TenantError::Transport { message, .. } if message.starts_with("connect:"))
                }
                _ => false,
            };
            if !retryable {
                return Err(err);
            }
            if tries >= self.config.max_attempts {
                return Err(TenantError::RetriesExhausted {
                    attempts: tries,
                    last: Box::new(err),
                });
            }
            let wait = self.retry_wait(api, tenant, family, class, tries);
            tracing::debug!(api = api.as_str(), method, tries, wait_ms = wait.as_millis() as u64, error = %err, "retrying tenant request");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Exponential backoff with ±20 % jitter: base × 2^(n-1), capped.
pub fn backoff(config: &HttpConfig, attempt: u32) -> Duration {
    let exp = config
        .base_backoff
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
    let capped = exp.min(config.max_backoff);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    capped.mul_f64(jitter)
}

/// Converts a reqwest failure into a transport error, keeping whether the request left at all.
pub(crate) fn transport_error(api: Api, e: &reqwest::Error) -> TenantError {
    let kind = if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "io"
    };
    // reqwest's Display includes the URL, never headers or bodies, so no secret leaks here.
    TenantError::Transport {
        api: api.as_str(),
        message: format!("{kind}: {}", without_url(e)),
        timeout: e.is_timeout(),
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<url>");
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Reads `Retry-After` from a response.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(super::error::parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transport(max_attempts: u32) -> Transport {
        let cfg = HttpConfig {
            max_attempts,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_secs(5),
            ..Default::default()
        };
        Transport::new(cfg, Arc::new(TenantMetrics::unregistered())).expect("transport")
    }

    #[test]
    fn backoff_grows_and_caps() {
        let cfg = HttpConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        let b1 = backoff(&cfg, 1);
        assert!(b1 >= Duration::from_millis(80) && b1 <= Duration::from_millis(120));
        let b3 = backoff(&cfg, 3);
        assert!(b3 >= Duration::from_millis(320) && b3 <= Duration::from_millis(480));
        assert!(backoff(&cfg, 30) <= Duration::from_millis(1200));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let t = transport(5);
        let n = AtomicU32::new(0);
        let out = t
            .execute(
                Api::Graph,
                "t",
                Family::GraphRead,
                "GET",
                Idempotency::Safe,
                || async {
                    if n.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(TenantError::Http {
                            api: "graph",
                            status: 503,
                            message: String::new(),
                            retry_after: None,
                        })
                    } else {
                        Ok(7)
                    }
                },
            )
            .await;
        assert_eq!(out.expect("ok"), 7);
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn terminal_errors_are_not_retried() {
        let t = transport(5);
        let n = AtomicU32::new(0);
        let out: Result<(), _> = t
            .execute(
                Api::Graph,
                "t",
                Family::GraphRead,
                "GET",
                Idempotency::Safe,
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(TenantError::Http {
                        api: "graph",
                        status: 403,
                        message: String::new(),
                        retry_after: None,
                    })
                },
            )
            .await;
        assert!(out.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unsafe_writes_are_not_repeated_after_an_ambiguous_failure() {
        let t = transport(5);
        let n = AtomicU32::new(0);
        let out: Result<(), _> = t
            .execute(
                Api::Graph,
                "t",
                Family::GraphWrite,
                "POST",
                Idempotency::Unsafe,
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(TenantError::Transport {
                        api: "graph",
                        message: "io: connection reset".into(),
                        timeout: false,
                    })
                },
            )
            .await;
        assert!(out.is_err());
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "an unsafe write that may have landed is not sent twice"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_exactly() {
        let t = transport(3);
        let n = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = t
            .execute(
                Api::Exchange,
                "t",
                Family::Exchange,
                "Get",
                Idempotency::Safe,
                || async {
                    if n.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(TenantError::Http {
                            api: "exchange",
                            status: 429,
                            message: String::new(),
                            retry_after: Some(Duration::from_secs(3)),
                        })
                    } else {
                        Ok(())
                    }
                },
            )
            .await;
        assert!(out.is_ok());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100),
            "waited {waited:?}"
        );
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let t = transport(3);
        let n = AtomicU32::new(0);
        let out: Result<(), _> = t
            .execute(
                Api::Graph,
                "t",
                Family::GraphRead,
                "GET",
                Idempotency::Safe,
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(TenantError::Transport {
                        api: "graph",
                        message: "io: reset".into(),
                        timeout: false,
                    })
                },
            )
            .await;
        assert!(matches!(
            out,
            Err(TenantError::RetriesExhausted { attempts: 3, .. })
        ));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }
}
