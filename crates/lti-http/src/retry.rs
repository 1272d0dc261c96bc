//! Retries with exponential backoff and jitter, `Retry-After` handling and
//! status checks.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{LOCATION, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};

use crate::client::{HttpClient, clone_request};
use crate::error::Error;
use crate::url::redact_url;

/// When and how often a request is retried.
///
/// Retried: connection failures and timeouts, `502`, `503`, `504`, and `429`
/// (waiting for `Retry-After` when the server sends one). Only idempotent
/// methods are retried unless [`RetryPolicy::allow_non_idempotent`] is set;
/// a failure to connect is retried for every method because the request
/// never left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub base_delay: Duration,
    /// Upper bound of the backoff delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` that is waited out; a longer one ends the
    /// retries at once.
    pub max_retry_after: Duration,
    /// Whether `POST`/`PATCH` are retried after the request may have reached
    /// the server.
    pub retry_non_idempotent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            retry_non_idempotent: false,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Also retries non-idempotent methods (use when the operation is
    /// idempotent in effect, such as an AGS score with a timestamp).
    pub fn allow_non_idempotent(mut self) -> Self {
        self.retry_non_idempotent = true;
        self
    }

    fn may_retry_method(&self, method: &Method) -> bool {
        self.retry_non_idempotent || is_idempotent(method)
    }

    /// The backoff delay before attempt `next_attempt` (2 = first retry):
    /// `base * 2^(n-2)` capped at `max_delay`, with "equal jitter" (half
    /// fixed, half random).
    pub fn backoff(&self, next_attempt: u32) -> Duration {
        let exp = next_attempt.saturating_sub(2).min(16);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = full / 2;
        let mut b = [0u8; 4];
        let frac = if SystemRandom::new().fill(&mut b).is_ok() {
            f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
        } else {
            1.0
        };
        half + half.mul_f64(frac)
    }
}

/// `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT` and `DELETE`.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether a status is worth retrying: 429, 502, 503, 504.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Attached to every response returned by [`send_with_retry`]: how many
/// attempts it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts(pub u32);

/// Parses `Retry-After`: delta-seconds or an HTTP-date (IMF-fixdate,
/// RFC 850 or asctime). A date in the past yields zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = parse_http_date(v)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds.
pub fn parse_http_date(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (d.parse().ok()?, *m, y.parse().ok()?, *t),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let d = it.next()?.parse().ok()?;
            let m = it.next()?;
            let y: i64 = it.next()?.parse().ok()?;
            let y = if y < 70 {
                2000 + y
            } else if y < 100 {
                1900 + y
            } else {
                y
            };
            (d, m, y, *t)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (d.parse().ok()?, *m, y.parse().ok()?, *t),
        _ => return None,
    };
    let month = match month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let mut hms = time.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let mi: u64 = hms.next()?.parse().ok()?;
    let s: u64 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || h > 23 || mi > 59 || s > 60 || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Runs `attempt` (given the attempt number, starting at 1) under `policy`.
///
/// Returns the first response that is not retried, with an [`Attempts`]
/// extension; a response with a retryable status is returned as is once the
/// attempts are used up (use [`check_status`] to turn it into an error).
/// Transport errors are returned with their `attempts` count filled in.
pub async fn retry<F, Fut>(
    policy: &RetryPolicy,
    method: &Method,
    url: &str,
    mut attempt: F,
) -> Result<Response<Bytes>, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Response<Bytes>, Error>>,
{
    let max = policy.max_attempts.max(1);
    let mut n = 1;
    loop {
        let result = attempt(n).await;
        let delay = match &result {
            Ok(resp) if is_retryable_status(resp.status()) => {
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                match retry_after {
                    Some(d) if d > policy.max_retry_after => None,
                    Some(d) => Some(d),
                    None => Some(policy.backoff(n + 1)),
                }
                .filter(|_| n < max && policy.may_retry_method(method))
            }
            Ok(_) => None,
            Err(e) if e.is_pre_send() || (e.is_transient() && policy.may_retry_method(method)) => {
                Some(policy.backoff(n + 1)).filter(|_| n < max)
            }
            Err(_) => None,
        };
        match delay {
            Some(d) => {
                tracing::debug!(
                    url = %redact_url(url),
                    attempt = n,
                    delay_ms = d.as_millis() as u64,
                    "retrying"
                );
                tokio::time::sleep(d).await;
                n += 1;
            }
            None => {
                return match result {
                    Ok(mut resp) => {
                        resp.extensions_mut().insert(Attempts(n));
                        Ok(resp)
                    }
                    Err(e) => Err(e.with_attempts(n)),
                };
            }
        }
    }
}

/// Sends `req` through `client` under `policy` (see [`retry`]).
pub async fn send_with_retry(
    client: &dyn HttpClient,
    req: Request<Bytes>,
    policy: &RetryPolicy,
) -> Result<Response<Bytes>, Error> {
    let url = req.uri().to_string();
    let method = req.method().clone();
    retry(policy, &method, &url, |_| client.send(clone_request(&req))).await
}

/// Accepts a 2xx response; turns a redirect into [`Error::Redirect`] and any
/// other status into [`Error::Status`] (with the attempt count recorded by
/// [`retry`]).
pub fn check_status(url: &str, resp: Response<Bytes>) -> Result<Response<Bytes>, Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status.is_redirection() {
        return Err(Error::Redirect {
            url: redact_url(url),
            status: status.as_u16(),
            location: resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(redact_url),
        });
    }
    Err(Error::Status {
        url: redact_url(url),
        status: status.as_u16(),
        attempts: resp.extensions().get::<Attempts>().map_or(1, |a| a.0),
        expected: "a 2xx status",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_all_three_date_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:57 GMT", now),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:50:07 1994", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-5",
            "soon",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn http_dates_convert_to_unix_seconds() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let d2 = p.backoff(2);
            assert!(
                d2 >= Duration::from_millis(50) && d2 <= Duration::from_millis(100),
                "{d2:?}"
            );
            let d3 = p.backoff(3);
            assert!(
                d3 >= Duration::from_millis(100) && d3 <= Duration::from_millis(200),
                "{d3:?}"
            );
            let d9 = p.backoff(9);
            assert!(
                d9 >= Duration::from_millis(175) && d9 <= Duration::from_millis(350),
                "{d9:?}"
            );
        }
    }

    #[test]
    fn only_idempotent_methods_are_retried_by_default() {
        let p = RetryPolicy::default();
        assert!(p.may_retry_method(&Method::GET));
        assert!(p.may_retry_method(&Method::PUT));
        assert!(!p.may_retry_method(&Method::POST));
        assert!(!p.may_retry_method(&Method::PATCH));
        assert!(p.allow_non_idempotent().may_retry_method(&Method::POST));
    }

    #[test]
    fn status_check_names_url_status_and_attempts() {
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        resp.extensions_mut().insert(Attempts(3));
        match check_status("https://lms.test/x?access_token=t", resp) {
            Err(Error::Status {
                url,
                status: 503,
                attempts: 3,
                ..
            }) => {
                assert_eq!(url, "https://lms.test/x?access_token=***");
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut redirect = Response::new(Bytes::new());
        *redirect.status_mut() = StatusCode::FOUND;
        redirect.headers_mut().insert(
            LOCATION,
            http::HeaderValue::from_static("https://evil.test/"),
        );
        assert!(matches!(
            check_status("https://lms.test/x", redirect),
            Err(Error::Redirect { status: 302, location: Some(ref l), .. }) if l == "https://evil.test/"
        ));
    }
}
