//! CAS tokens: a bearer token with an expiry, refreshed through a caller-supplied
//! [`TokenRefresher`] before it expires and when the server answers 401 (§11.3).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;
use xet_format::api::XetTokenResponse;

use crate::cas::BoxFuture;
use crate::{Error, Result};

/// A CAS access token.
#[derive(Clone, PartialEq, Eq)]
pub struct CasToken {
    /// The bearer token (never logged).
    pub token: String,
    /// Expiry, unix seconds; `None` = never expires.
    pub expires_at: Option<u64>,
    /// The CAS base URL this token is for, if the issuer said (Hub token endpoints
    /// do: `casUrl`).
    pub cas_url: Option<String>,
}

impl std::fmt::Debug for CasToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // §11.4: keep tokens out of logs.
        f.debug_struct("CasToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("cas_url", &self.cas_url)
            .finish()
    }
}

impl CasToken {
    /// A token that never expires.
    pub fn fixed(token: impl Into<String>) -> Self {
        CasToken {
            token: token.into(),
            expires_at: None,
            cas_url: None,
        }
    }

    fn expires_within(&self, margin: Duration) -> bool {
        match self.expires_at {
            None => false,
            Some(exp) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                exp <= now + margin.as_secs()
            }
        }
    }
}

impl From<XetTokenResponse> for CasToken {
    fn from(r: XetTokenResponse) -> Self {
        CasToken {
            token: r.access_token,
            expires_at: Some(r.exp),
            cas_url: Some(r.cas_url),
        }
    }
}

/// Gets a fresh CAS token. Called at most once at a time per [`TokenSource`].
pub trait TokenRefresher: Send + Sync {
    /// A new token.
    fn refresh(&self) -> BoxFuture<'_, Result<CasToken>>;
}

impl<F, Fut> TokenRefresher for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<CasToken>> + Send + 'static,
{
    fn refresh(&self) -> BoxFuture<'_, Result<CasToken>> {
        Box::pin(self())
    }
}

/// How an [`HttpCas`](crate::HttpCas) authenticates.
#[derive(Clone, Default)]
pub enum Auth {
    /// No `Authorization` header (an open local server).
    #[default]
    None,
    /// A token that is never refreshed.
    Static(String),
    /// A token from a refresher, optionally with a first token already in hand.
    Refreshing {
        /// Gets new tokens.
        refresher: Arc<dyn TokenRefresher>,
        /// A token to start with (e.g. from an LFS batch answer), if any.
        initial: Option<CasToken>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Static(_) => f.write_str("Auth::Static(<redacted>)"),
            Auth::Refreshing { initial, .. } => write!(f, "Auth::Refreshing({initial:?})"),
        }
    }
}

/// The current token of one [`Auth`], refreshed as needed; shared by all requests.
pub(crate) struct TokenSource {
    auth: Auth,
    margin: Duration,
    current: Mutex<Option<CasToken>>,
}

impl TokenSource {
    pub(crate) fn new(auth: Auth, margin: Duration) -> Self {
        let current = match &auth {
            Auth::Static(t) => Some(CasToken::fixed(t.clone())),
            Auth::Refreshing { initial, .. } => initial.clone(),
            Auth::None => None,
        };
        TokenSource {
            auth,
            margin,
            current: Mutex::new(current),
        }
    }

    /// The bearer token to send now, refreshing first if it expires within the margin.
    pub(crate) async fn token(&self) -> Result<Option<String>> {
        let refresher = match &self.auth {
            Auth::None => return Ok(None),
            Auth::Static(t) => return Ok(Some(t.clone())),
            Auth::Refreshing { refresher, .. } => refresher,
        };
        // The lock is held across the refresh so concurrent requests wait for one
        // refresh instead of each starting their own (§11.3).
        let mut cur = self.current.lock().await;
        if let Some(t) = cur.as_ref().filter(|t| !t.expires_within(self.margin)) {
            return Ok(Some(t.token.clone()));
        }
        let fresh = refresher.refresh().await?;
        tracing::debug!(expires_at = ?fresh.expires_at, "refreshed CAS token");
        let tok = fresh.token.clone();
        *cur = Some(fresh);
        Ok(Some(tok))
    }

    /// Called after a 401 with the token that was refused: refreshes unless
    /// another request already did. Returns false if there is nothing to refresh.
    pub(crate) async fn invalidate(&self, refused: Option<&str>) -> bool {
        if !matches!(self.auth, Auth::Refreshing { .. }) {
            return false;
        }
        let mut cur = self.current.lock().await;
        if cur.as_ref().map(|t| t.token.as_str()) == refused {
            *cur = None;
        }
        true
    }
}

/// A [`TokenRefresher`] that calls a Hub-style token endpoint (§11.1):
/// `GET {hub}/api/{type}s/{repo}/xet-{read|write}-token/{rev}` with the user's Hub
/// token, answering `{accessToken, exp, casUrl}`. Works with the Hub and with our
/// server's token endpoints.
#[derive(Clone)]
pub struct HubTokenRefresher {
    url: String,
    hub_token: Option<String>,
    client: reqwest::Client,
}

impl HubTokenRefresher {
    /// `repo` is `TYPE/NAMESPACE/NAME` or `NAMESPACE/NAME` (a model); `write` asks for
    /// a write token; `rev` defaults to `main`.
    pub fn new(
        hub_url: &str,
        repo: &str,
        rev: Option<&str>,
        write: bool,
        hub_token: Option<String>,
    ) -> Result<Self> {
        let (kind, name) = split_repo(repo)?;
        let rev = rev.unwrap_or("main");
        // A branch name with `/` must stay one path segment (§11.1).
        let rev_enc: String = rev
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let scope = if write { "write" } else { "read" };
        let url = format!(
            "{}/api/{kind}s/{name}/xet-{scope}-token/{rev_enc}",
            hub_url.trim_end_matches('/')
        );
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(HubTokenRefresher {
            url,
            hub_token,
            client,
        })
    }

    /// The token endpoint URL this refresher calls.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn split_repo(repo: &str) -> Result<(&str, &str)> {
    let parts: Vec<&str> = repo.splitn(2, '/').collect();
    match parts.as_slice() {
        [kind @ ("model" | "dataset" | "space" | "models" | "datasets" | "spaces"), rest]
            if rest.contains('/') =>
        {
            Ok((kind.trim_end_matches('s'), rest))
        }
        [_, _] => Ok(("model", repo)),
        _ => Err(Error::Config(format!(
            "repo `{repo}` should be TYPE/NAMESPACE/NAME, e.g. dataset/acme/data"
        ))),
    }
}

impl TokenRefresher for HubTokenRefresher {
    fn refresh(&self) -> BoxFuture<'_, Result<CasToken>> {
        Box::pin(async move {
            let mut req = self.client.get(&self.url);
            if let Some(t) = &self.hub_token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.map_err(|e| Error::Token {
                message: format!("{}: {e}", self.url),
                retryable: true,
            })?;
            let status = resp.status();
            if !status.is_success() {
                let body = resp.text().await.unwrap_or_default();
                return Err(Error::Token {
                    message: format!("{} answered {status}: {}", self.url, body.trim()),
                    retryable: status.is_server_error() || status.as_u16() == 429,
                });
            }
            let raw = resp.bytes().await.map_err(|e| Error::Token {
                message: format!("{}: {e}", self.url),
                retryable: true,
            })?;
            let body: XetTokenResponse = serde_json::from_slice(&raw).map_err(|e| Error::Token {
                message: format!("{}: bad token response: {e}", self.url),
                retryable: false,
            })?;
            Ok(body.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls() {
        let r = HubTokenRefresher::new("https://hub/", "dataset/acme/data", Some("a/b"), true, None).unwrap();
        assert_eq!(
            r.url(),
            "https://hub/api/datasets/acme/data/xet-write-token/a%2Fb"
        );
        let r = HubTokenRefresher::new("https://hub", "acme/model", None, false, None).unwrap();
        assert_eq!(r.url(), "https://hub/api/models/acme/model/xet-read-token/main");
        assert!(HubTokenRefresher::new("https://hub", "nope", None, false, None).is_err());
    }

    #[tokio::test]
    async fn refreshes_before_expiry_and_after_401() {
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let n2 = n.clone();
        let refresher = move || {
            let k = n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Ok(CasToken {
                    token: format!("t{k}"),
                    // The first token is already inside the margin.
                    expires_at: Some(if k == 0 { 1 } else { u64::MAX / 2 }),
                    cas_url: None,
                })
            }
        };
        let src = TokenSource::new(
            Auth::Refreshing {
                refresher: Arc::new(refresher),
                initial: None,
            },
            Duration::from_secs(30),
        );
        assert_eq!(src.token().await.unwrap().as_deref(), Some("t0"));
        assert_eq!(src.token().await.unwrap().as_deref(), Some("t1"));
        assert_eq!(src.token().await.unwrap().as_deref(), Some("t1"));
        assert!(src.invalidate(Some("t1")).await);
        assert_eq!(src.token().await.unwrap().as_deref(), Some("t2"));
    }
}
