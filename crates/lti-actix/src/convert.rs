//! The conversions between actix-web 4 (`http` 0.2) and `lti-tool` (`http` 1).
//! Every conversion goes through strings and bytes, so nothing else in the
//! workspace sees `http` 0.2.

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// `status` as actix-web's status code (every `http` 1 status is valid in 0.2).
pub(crate) fn status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Every header of `headers` as `http` 1 headers, in order, repeats kept.
///
/// # Errors
/// [`Error::MalformedRequest`] for a name or value `http` 1 refuses.
pub(crate) fn headers(headers: &HeaderMap) -> Result<http::HeaderMap, Error> {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header = http::HeaderName::from_bytes(name.as_str().as_bytes())
            .map_err(|_| Error::malformed("a valid header name", name.as_str()))?;
        let value = http::HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
            Error::malformed("a valid header value", &format!("bad bytes in `{name}`"))
        })?;
        out.append(header, value);
    }
    Ok(out)
}

/// The headers of `headers` that `http` 1 accepts (for lookups, where a header
/// that cannot be carried over cannot be the one looked for either).
pub(crate) fn headers_lossy(headers: &HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    out
}

/// An `http` 1 response as an actix-web response: status, every header
/// (including repeated `Set-Cookie`) and the body.
pub(crate) fn response<B: MessageBody + 'static>(response: http::Response<B>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let mut out = HttpResponse::build(status(parts.status));
    for (name, value) in &parts.headers {
        // Both `http` versions share the header grammar, so this never skips a
        // header that `lti-tool` produced.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append_header((name, value));
        }
    }
    out.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_order_and_repeats() {
        let mut map = HeaderMap::new();
        let name = HeaderName::from_static("x-multi");
        map.append(name.clone(), HeaderValue::from_static("one"));
        map.append(name, HeaderValue::from_static("two"));
        let converted = headers(&map).unwrap();
        let values: Vec<_> = converted.get_all("x-multi").iter().collect();
        assert_eq!(values, ["one", "two"]);
        assert_eq!(headers_lossy(&map), converted);
    }

    #[test]
    fn every_status_carries_over() {
        for code in [200, 303, 400, 401, 403, 404, 413, 415, 500, 502, 503] {
            let from = http::StatusCode::from_u16(code).unwrap();
            assert_eq!(status(from).as_u16(), code);
        }
    }
}
