//! Bearer tokens with read/write scopes and signed, expiring URLs (XET-PROTOCOL.md
//! §9.4, §10.7, §11).
//!
//! Both are stateless MACs (keyed BLAKE3 under the server secret), so several server
//! processes sharing one secret and one bucket accept each other's tokens and URLs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a CAS token allows (§11.2): `Write` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Downloads, dedup queries, HEADs.
    Read,
    /// Uploads too.
    Write,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// Authentication settings of a server.
#[derive(Clone)]
pub struct AuthConfig {
    /// User tokens (the Hub-token stand-in) that may get CAS tokens from the
    /// `/api/.../xet-{read,write}-token/...` endpoints.
    pub user_tokens: Vec<String>,
    /// Key of every MAC the server issues. Servers sharing a bucket share it.
    pub secret: [u8; 32],
    /// Lifetime of issued CAS tokens.
    pub token_ttl: Duration,
    /// Lifetime of signed fetch and upload URLs.
    pub url_ttl: Duration,
    /// No token needed on CAS routes (tests and trusted networks only).
    pub open: bool,
}

impl std::fmt::Debug for AuthConfig {
    // Keep tokens and the secret out of logs (§11.4).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "user_tokens",
                &format_args!("[{} redacted]", self.user_tokens.len()),
            )
            .field("token_ttl", &self.token_ttl)
            .field("url_ttl", &self.url_ttl)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Tokens required, these user tokens, a random secret, one-hour CAS tokens and
    /// URLs (the Hub's tokens last about as long).
    pub fn new(user_tokens: Vec<String>) -> Self {
        let mut secret = [0u8; 32];
        xet_store::random_bytes(&mut secret);
        AuthConfig {
            user_tokens,
            secret,
            token_ttl: Duration::from_secs(3600),
            url_ttl: Duration::from_secs(3600),
            open: false,
        }
    }

    /// No authentication at all on CAS routes; token endpoints still work.
    pub fn open() -> Self {
        AuthConfig {
            open: true,
            ..AuthConfig::new(Vec::new())
        }
    }
}

/// Why a token or URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// 401: missing, malformed, forged or expired.
    Unauthenticated(String),
    /// 403: valid but its scope is too small.
    Forbidden(String),
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AuthConfig {
    fn mac(&self, parts: &[&str]) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        for p in parts {
            h.update(p.as_bytes());
            h.update(&[0]);
        }
        xet_format::hash::hex(&h.finalize().as_bytes()[..16])
    }

    /// A CAS token of `scope` and its expiry (Unix seconds), bound to no repository.
    pub fn issue_token(&self, scope: Scope) -> (String, u64) {
        let exp = now() + self.token_ttl.as_secs();
        (self.token_with_expiry(scope, exp), exp)
    }

    /// A CAS token of `scope` that records the repository and revision it was issued
    /// for (`repo`, e.g. `models/acme/weights@main`), and its expiry. The token
    /// endpoints issue these.
    ///
    /// The claim is MAC'd (it cannot be changed without invalidating the token) and
    /// logged with each request, but it does not narrow what the token may read or
    /// write: this server is single-tenant, with one CAS namespace shared by every
    /// repository name (as content-addressed storage is: a xorb or file hash is the
    /// same whichever repository uploaded it), and it keeps no repository -> file
    /// records to check against. Per-repository authorization would need such
    /// records (the Hub keeps them in its git/LFS layer, outside the CAS protocol);
    /// the claim is where that check would read the repository from.
    pub fn issue_repo_token(&self, scope: Scope, repo: &str) -> (String, u64) {
        let exp = now() + self.token_ttl.as_secs();
        let exp_s = exp.to_string();
        // Hex keeps the claim free of the token's `.` separators and of the MAC's NUL.
        let claim = xet_format::hash::hex(repo.as_bytes());
        let mac = self.mac(&["token", scope.as_str(), &exp_s, "repo", &claim]);
        (format!("xet1.{}.{exp_s}.{claim}.{mac}", scope.as_str()), exp)
    }

    /// The repository claim of a well-formed token (`None` for tokens bound to no
    /// repository, or malformed ones). Does not check the MAC or expiry: use it
    /// only on tokens the server already accepted, e.g. for logs.
    pub fn token_repo(token: &str) -> Option<String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [_, _, _, claim, _] = parts.as_slice() else {
            return None;
        };
        let bytes = (0..claim.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(claim.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        String::from_utf8(bytes).ok()
    }

    /// A CAS token expiring at `exp` (tests use a past `exp`).
    pub fn token_with_expiry(&self, scope: Scope, exp: u64) -> String {
        let exp_s = exp.to_string();
        format!(
            "xet1.{}.{exp_s}.{}",
            scope.as_str(),
            self.mac(&["token", scope.as_str(), &exp_s])
        )
    }

    /// Checks an `Authorization` header value against the scope a route needs.
    pub(crate) fn check(&self, authorization: Option<&str>, need: Scope) -> Result<(), Denied> {
        if self.open {
            return Ok(());
        }
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| {
                Denied::Unauthenticated("missing bearer token: get one from a xet token endpoint".into())
            })?;
        let bad = || Denied::Unauthenticated("invalid token: get a new one from a xet token endpoint".into());
        // `xet1.{scope}.{exp}.{mac}`, or with a repository claim (hex) before the MAC.
        let parts: Vec<&str> = token.splitn(6, '.').collect();
        let (scope, exp_s, claim, mac) = match parts.as_slice() {
            ["xet1", scope, exp, mac] => (*scope, *exp, None, *mac),
            ["xet1", scope, exp, claim, mac] => (*scope, *exp, Some(*claim), *mac),
            _ => return Err(bad()),
        };
        let scope = match scope {
            "read" => Scope::Read,
            "write" => Scope::Write,
            _ => return Err(bad()),
        };
        let expected = match claim {
            None => self.mac(&["token", scope.as_str(), exp_s]),
            Some(c) => self.mac(&["token", scope.as_str(), exp_s, "repo", c]),
        };
        if !ct_eq(mac, &expected) {
            return Err(bad());
        }
        let exp: u64 = exp_s.parse().map_err(|_| bad())?;
        if exp <= now() {
            return Err(Denied::Unauthenticated(
                "token expired: refresh it at the xet token endpoint".into(),
            ));
        }
        if scope < need {
            return Err(Denied::Forbidden(format!(
                "this {} token cannot do this: it needs a {} token",
                scope.as_str(),
                need.as_str()
            )));
        }
        Ok(())
    }

    /// Whether `token` is one of the configured user tokens.
    pub(crate) fn is_user_token(&self, token: &str) -> bool {
        self.user_tokens.iter().any(|t| ct_eq(t, token))
    }

    /// Query string (without `?`) authorising GETs of `ranges` of a xorb until expiry.
    pub(crate) fn sign_fetch(&self, xorb: &str, ranges: &str) -> String {
        let exp = (now() + self.url_ttl.as_secs()).to_string();
        let sig = self.mac(&["fetch", xorb, ranges, &exp]);
        format!("ranges={ranges}&exp={exp}&sig={sig}")
    }

    pub(crate) fn verify_fetch(&self, xorb: &str, ranges: &str, exp: &str, sig: &str) -> Result<(), Denied> {
        self.verify_signed(&["fetch", xorb, ranges, exp], exp, sig)
    }

    /// Query string authorising one PUT of a xorb of `len` bytes and CRC `crc`.
    pub(crate) fn sign_upload(&self, xorb: &str, grant: &str, len: u64, crc: u64) -> String {
        let exp = (now() + self.url_ttl.as_secs()).to_string();
        let (len, crc) = (len.to_string(), crc.to_string());
        let sig = self.mac(&["upload", xorb, grant, &len, &crc, &exp]);
        format!("grant={grant}&len={len}&crc={crc}&exp={exp}&sig={sig}")
    }

    pub(crate) fn verify_upload(
        &self,
        xorb: &str,
        grant: &str,
        len: &str,
        crc: &str,
        exp: &str,
        sig: &str,
    ) -> Result<(), Denied> {
        self.verify_signed(&["upload", xorb, grant, len, crc, exp], exp, sig)
    }

    fn verify_signed(&self, parts: &[&str], exp: &str, sig: &str) -> Result<(), Denied> {
        // 403, not 401, for URLs: the client reacts to 403 by asking for fresh URLs (§9.4).
        if !ct_eq(sig, &self.mac(parts)) {
            return Err(Denied::Forbidden(
                "bad URL signature: do not modify signed URLs".into(),
            ));
        }
        match exp.parse::<u64>() {
            Ok(e) if e > now() => Ok(()),
            _ => Err(Denied::Forbidden(
                "signed URL expired: request a new reconstruction or grant".into(),
            )),
        }
    }
}

/// Constant-time string comparison, so MACs and tokens cannot be guessed byte by byte.
fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_scopes_and_expiry() {
        let a = AuthConfig::new(vec!["u".into()]);
        let (w, _) = a.issue_token(Scope::Write);
        let (r, _) = a.issue_token(Scope::Read);
        let h = |t: &str| format!("Bearer {t}");
        assert_eq!(a.check(Some(&h(&w)), Scope::Write), Ok(()));
        assert_eq!(a.check(Some(&h(&w)), Scope::Read), Ok(()));
        assert_eq!(a.check(Some(&h(&r)), Scope::Read), Ok(()));
        assert!(matches!(
            a.check(Some(&h(&r)), Scope::Write),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            a.check(None, Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        let expired = a.token_with_expiry(Scope::Write, now() - 1);
        assert!(matches!(
            a.check(Some(&h(&expired)), Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        let forged = r.replace(".read.", ".write.");
        assert!(matches!(
            a.check(Some(&h(&forged)), Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        let other = AuthConfig::new(vec![]);
        assert!(other.check(Some(&h(&w)), Scope::Read).is_err());
    }

    /// Repository-bound tokens carry their claim under the MAC: they authorize like
    /// unbound ones (single-tenant server), and a changed claim, scope or expiry
    /// makes them invalid.
    #[test]
    fn repo_tokens_record_their_repository() {
        let a = AuthConfig::new(vec![]);
        let h = |t: &str| format!("Bearer {t}");
        let (t, _) = a.issue_repo_token(Scope::Read, "models/acme/w.e.i.g.h.t.s@main");
        assert_eq!(
            AuthConfig::token_repo(&t).as_deref(),
            Some("models/acme/w.e.i.g.h.t.s@main")
        );
        assert_eq!(a.check(Some(&h(&t)), Scope::Read), Ok(()));
        assert!(matches!(
            a.check(Some(&h(&t)), Scope::Write),
            Err(Denied::Forbidden(_))
        ));
        let (other, _) = a.issue_repo_token(Scope::Read, "models/acme/other@main");
        let parts: Vec<&str> = t.split('.').collect();
        let other_claim = other.split('.').nth(3).unwrap();
        let swapped = [parts[0], parts[1], parts[2], other_claim, parts[4]].join(".");
        assert!(matches!(
            a.check(Some(&h(&swapped)), Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        // Dropping the claim does not turn it into a valid unbound token either.
        let dropped = [parts[0], parts[1], parts[2], parts[4]].join(".");
        assert!(a.check(Some(&h(&dropped)), Scope::Read).is_err());
        assert_eq!(AuthConfig::token_repo(&a.issue_token(Scope::Read).0), None);
    }

    #[test]
    fn signed_urls() {
        let a = AuthConfig::new(vec![]);
        let q = a.sign_fetch("x", "0-9");
        let get = |k: &str| {
            q.split('&')
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_string()
        };
        assert_eq!(a.verify_fetch("x", "0-9", &get("exp"), &get("sig")), Ok(()));
        assert!(a.verify_fetch("x", "0-10", &get("exp"), &get("sig")).is_err());
        assert!(a.verify_fetch("y", "0-9", &get("exp"), &get("sig")).is_err());
    }
}
