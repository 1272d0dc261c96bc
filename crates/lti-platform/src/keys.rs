//! The platform's signing keys and its published JWKS, with rotation.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Response, StatusCode};
use lti_jose::{JwkSet, SigningKey, VerifyingKey};

use crate::error::{PlatformError, Result};
use crate::web;

#[derive(Debug, Clone)]
struct Ring {
    active: Arc<SigningKey>,
    next: Option<Arc<SigningKey>>,
    retired: Vec<VerifyingKey>,
}

/// The platform's key ring: one active key that signs id_tokens, an optional next key
/// already published so tools cache it before it signs, and retired public keys kept
/// in the JWKS until tokens they signed have expired.
///
/// Keys are parsed once (a [`SigningKey`] holds ring's parsed key pair); minting only
/// clones an `Arc`.
#[derive(Debug)]
pub struct PlatformKeys {
    ring: RwLock<Ring>,
}

impl PlatformKeys {
    /// A key ring whose active key is `active`.
    pub fn new(active: SigningKey) -> Self {
        Self {
            ring: RwLock::new(Ring {
                active: Arc::new(active),
                next: None,
                retired: Vec::new(),
            }),
        }
    }

    fn read(&self) -> Ring {
        match self.ring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut Ring) -> R) -> R {
        match self.ring.write() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The key that signs id_tokens now.
    pub fn active(&self) -> Arc<SigningKey> {
        self.read().active
    }

    /// Publishes `next` in the JWKS without signing with it yet.
    ///
    /// # Errors
    /// [`PlatformError::InvalidConfig`] if its kid equals a published kid.
    pub fn add_next(&self, next: SigningKey) -> Result<()> {
        let ring = self.read();
        let taken = ring.active.kid() == next.kid()
            || ring.retired.iter().any(|k| k.kid() == Some(next.kid()));
        if taken {
            return Err(PlatformError::InvalidConfig {
                field: "next key",
                expected: "a kid not yet published".to_owned(),
                found: format!("kid {:?} already in the JWKS", next.kid()),
            });
        }
        self.write(|r| r.next = Some(Arc::new(next)));
        Ok(())
    }

    /// Makes the next key active; the previous active key stays published as retired.
    ///
    /// # Errors
    /// [`PlatformError::InvalidConfig`] if no next key was added.
    pub fn rotate(&self) -> Result<()> {
        self.write(|r| {
            let Some(next) = r.next.take() else {
                return Err(PlatformError::InvalidConfig {
                    field: "next key",
                    expected: "a next key added with add_next".to_owned(),
                    found: "none".to_owned(),
                });
            };
            let old = std::mem::replace(&mut r.active, next);
            r.retired.push(old.verifying_key());
            Ok(())
        })
    }

    /// Stops publishing the retired key `kid`; returns whether it was published.
    pub fn drop_retired(&self, kid: &str) -> bool {
        self.write(|r| {
            let before = r.retired.len();
            r.retired.retain(|k| k.kid() != Some(kid));
            r.retired.len() != before
        })
    }

    /// The public JWKS: active, next, then retired keys.
    pub fn jwks(&self) -> JwkSet {
        let ring = self.read();
        let mut keys = vec![ring.active.public_jwk()];
        if let Some(next) = &ring.next {
            keys.push(next.public_jwk());
        }
        keys.extend(ring.retired.iter().map(VerifyingKey::to_jwk));
        JwkSet { keys }
    }

    /// The JWKS endpoint's response: `200 application/json`, cacheable for five minutes.
    pub fn jwks_response(&self) -> Response<Bytes> {
        let mut resp = web::json_response(StatusCode::OK, "application/json", &self.jwks());
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("public, max-age=300"),
        );
        resp.headers_mut().remove(http::header::PRAGMA);
        resp
    }
}
