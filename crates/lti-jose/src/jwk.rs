//! JSON Web Keys (RFC 7517) and key selection.

use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alg::{Algorithm, Family};
use crate::error::{clip, json_kind};
use crate::verifying::{Material, VerifyingKey};
use crate::{Error, b64};

/// Private-key members that are dropped when a JWK Set is parsed: a public key
/// set must never carry them, and we never use them.
const PRIVATE_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/// One public JSON Web Key: RSA, EC (P-256, P-384) or OKP (Ed25519).
///
/// Unknown members are kept in [`Jwk::extra`] and written back on serialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `"RSA"`, `"EC"` or `"OKP"`.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The algorithm the key is meant for; when present it is enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use; when present it must be `"sig"` for verification.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations; when present it must contain `"verify"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// Curve for EC/OKP keys (`"P-256"`, `"P-384"`, `"Ed25519"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Any other members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn member<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, Error> {
    value
        .as_deref()
        .ok_or_else(|| Error::invalid_key(format!("JWK member {name:?}"), "it missing"))
}

impl Jwk {
    pub(crate) fn from_material(family: Family, material: &Material) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            kid: None,
            alg: None,
            use_: None,
            key_ops: None,
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
            extra: Map::new(),
        };
        match material {
            Material::Rsa { n, e } => {
                jwk.kty = "RSA".to_owned();
                jwk.n = Some(b64::encode(n));
                jwk.e = Some(b64::encode(e));
            }
            Material::Raw(bytes) if family == Family::Ed25519 => {
                jwk.kty = "OKP".to_owned();
                jwk.crv = Some("Ed25519".to_owned());
                jwk.x = Some(b64::encode(bytes));
            }
            Material::Raw(point) => {
                let len = (point.len() - 1) / 2;
                jwk.kty = "EC".to_owned();
                jwk.crv = Some(
                    if family == Family::EcP256 {
                        "P-256"
                    } else {
                        "P-384"
                    }
                    .to_owned(),
                );
                jwk.x = Some(b64::encode(&point[1..=len]));
                jwk.y = Some(b64::encode(&point[1 + len..]));
            }
        }
        jwk
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key family described by `kty` and `crv`.
    pub(crate) fn family(&self) -> Result<Family, Error> {
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => Ok(Family::Rsa),
            ("EC", Some("P-256")) => Ok(Family::EcP256),
            ("EC", Some("P-384")) => Ok(Family::EcP384),
            ("OKP", Some("Ed25519")) => Ok(Family::Ed25519),
            (kty, crv) => Err(Error::UnsupportedKey {
                found: match crv {
                    Some(crv) => format!("kty {:?} with crv {:?}", clip(kty), clip(crv)),
                    None => format!("kty {:?}", clip(kty)),
                },
            }),
        }
    }

    /// Why this key may not verify `alg`, or `Ok` if it may (family, `alg`, `use`, `key_ops`).
    fn check_usable_for(&self, alg: Algorithm) -> Result<(), Error> {
        let family = self.family()?;
        let mismatch = |found: String| Error::KeyAlgorithmMismatch {
            expected: format!("{} usable for {alg} signatures", alg.family().describe()),
            found,
        };
        if family != alg.family() {
            return Err(mismatch(family.describe().to_owned()));
        }
        if let Some(own) = self.alg.as_deref()
            && own != alg.as_str()
        {
            return Err(mismatch(format!("a key restricted to alg {:?}", clip(own))));
        }
        if let Some(use_) = self.use_.as_deref()
            && use_ != "sig"
        {
            return Err(mismatch(format!("a key with use {:?}", clip(use_))));
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|op| op == "verify")
        {
            return Err(mismatch(
                "a key whose key_ops do not include \"verify\"".to_owned(),
            ));
        }
        Ok(())
    }

    /// RFC 7638 JWK thumbprint (SHA-256 over the required members), base64url.
    ///
    /// # Errors
    /// [`Error::UnsupportedKey`] for other key types, [`Error::InvalidKey`] if a required member is missing.
    pub fn thumbprint(&self) -> Result<String, Error> {
        let q = |s: &str| Value::String(s.to_owned()).to_string();
        let canonical = match self.family()? {
            Family::Rsa => format!(
                r#"{{"e":{},"kty":"RSA","n":{}}}"#,
                q(member(&self.e, "e")?),
                q(member(&self.n, "n")?)
            ),
            Family::EcP256 | Family::EcP384 => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                q(member(&self.crv, "crv")?),
                q(member(&self.x, "x")?),
                q(member(&self.y, "y")?)
            ),
            Family::Ed25519 => format!(
                r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
                q(member(&self.crv, "crv")?),
                q(member(&self.x, "x")?)
            ),
        };
        Ok(b64::encode(
            digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref(),
        ))
    }

    /// Builds a verifying key for `alg`, honouring the JWK's own `alg`, `use` and `key_ops`.
    ///
    /// # Errors
    /// [`Error::KeyAlgorithmMismatch`] if the key's family or its own restrictions forbid `alg`;
    /// [`Error::UnsupportedKey`] / [`Error::InvalidKey`] / [`Error::Base64`] on bad key material.
    pub fn to_verifying_key(&self, alg: Algorithm) -> Result<VerifyingKey, Error> {
        self.check_usable_for(alg)?;
        let key = match self.family()? {
            Family::Rsa => {
                let n = b64::decode(member(&self.n, "n")?)?;
                let e = b64::decode(member(&self.e, "e")?)?;
                VerifyingKey::from_rsa_components(&n, &e, alg)?
            }
            Family::EcP256 | Family::EcP384 => {
                let x = b64::decode(member(&self.x, "x")?)?;
                let y = b64::decode(member(&self.y, "y")?)?;
                VerifyingKey::from_ec_coordinates(&x, &y, alg)?
            }
            Family::Ed25519 => {
                VerifyingKey::from_ed25519(&b64::decode(member(&self.x, "x")?)?, alg)?
            }
        };
        Ok(match &self.kid {
            Some(kid) => key.with_kid(kid.clone()),
            None => key,
        })
    }

    /// Checks that the key material is complete and decodable for some algorithm of its family.
    fn validate(&self) -> Result<(), Error> {
        let alg = match self.family()? {
            Family::Rsa => match self.alg.as_deref().map(str::parse::<Algorithm>) {
                Some(Ok(alg)) if alg.family() == Family::Rsa => alg,
                _ => Algorithm::RS256,
            },
            Family::EcP256 => Algorithm::ES256,
            Family::EcP384 => Algorithm::ES384,
            Family::Ed25519 => Algorithm::EdDSA,
        };
        let probe = Jwk {
            alg: None,
            use_: None,
            key_ops: None,
            ..self.clone()
        };
        probe.to_verifying_key(alg).map(drop)
    }
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// A JWK Set document as read: the members are judged one by one.
#[derive(Deserialize)]
struct RawSet {
    keys: Value,
}

impl JwkSet {
    /// Parses a JWK Set document. Members that are not valid public keys of a supported
    /// type are skipped, not fatal; private-key members are dropped.
    ///
    /// # Errors
    /// [`Error::InvalidJson`] if the document is not JSON, [`Error::Malformed`] if it is not
    /// an object with a `keys` array.
    pub fn from_slice(bytes: &[u8]) -> Result<JwkSet, Error> {
        let raw: RawSet = serde_json::from_slice(bytes).map_err(|e| Error::json("JWK Set", &e))?;
        Self::from_raw(raw)
    }

    /// [`JwkSet::from_slice`] for a document already decoded as JSON (e.g. a key set
    /// kept in configuration), with the same rules and errors.
    ///
    /// # Errors
    /// As [`JwkSet::from_slice`].
    pub fn from_value(doc: &Value) -> Result<JwkSet, Error> {
        let raw = RawSet::deserialize(doc).map_err(|e| Error::json("JWK Set", &e))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawSet) -> Result<JwkSet, Error> {
        let Value::Array(members) = raw.keys else {
            return Err(Error::malformed(
                "JWK Set",
                "\"keys\" to be an array",
                json_kind(&raw.keys),
            ));
        };
        let keys = members
            .into_iter()
            .filter_map(|member| serde_json::from_value::<Jwk>(member).ok())
            .map(|mut jwk| {
                for name in PRIVATE_MEMBERS {
                    jwk.extra.remove(name);
                }
                jwk
            })
            .filter(|jwk| jwk.validate().is_ok())
            .collect();
        Ok(JwkSet { keys })
    }

    /// Selects the verifying key for a token with header `kid` and `alg`.
    ///
    /// With a `kid`, exactly the keys with that id are considered; without one, every key
    /// usable for `alg` is, and more than one is ambiguous.
    ///
    /// # Errors
    /// [`Error::UnknownKid`] if no key has `kid`; [`Error::AmbiguousKey`] if several keys
    /// qualify; [`Error::KeyAlgorithmMismatch`] if the matching key cannot do `alg`;
    /// [`Error::NoKeys`] if the set is empty.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<VerifyingKey, Error> {
        let by_kid: Vec<&Jwk> = match kid {
            Some(kid) => {
                let found: Vec<&Jwk> = self.keys.iter().filter(|k| k.kid() == Some(kid)).collect();
                if found.is_empty() {
                    return Err(Error::UnknownKid { kid: clip(kid) });
                }
                found
            }
            None if self.keys.is_empty() => return Err(Error::NoKeys),
            None => self.keys.iter().collect(),
        };
        if let [only] = by_kid.as_slice() {
            return only.to_verifying_key(alg);
        }
        let usable: Vec<&Jwk> = by_kid
            .iter()
            .copied()
            .filter(|k| k.check_usable_for(alg).is_ok())
            .collect();
        match usable.as_slice() {
            [only] => only.to_verifying_key(alg),
            [] => Err(by_kid[0]
                .check_usable_for(alg)
                .err()
                .unwrap_or(Error::NoKeys)),
            several => Err(Error::AmbiguousKey {
                candidates: several.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let jwk: Jwk = serde_json::from_str(include_str!(
            "../../../tests/fixtures/lti-jose/rfc7638-jwk.json"
        ))
        .unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn unknown_members_round_trip() {
        let json = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","x5t":"abc"}"#;
        let jwk: Jwk = serde_json::from_str(json).unwrap();
        assert_eq!(jwk.extra.get("x5t"), Some(&Value::String("abc".to_owned())));
        let back: Value = serde_json::to_value(&jwk).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(json).unwrap());
    }
}
