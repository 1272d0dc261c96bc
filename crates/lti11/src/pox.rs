//! Basic Outcomes POX XML (LTI 1.1 §8.3 of the digest): request and response
//! envelopes for `replaceResult`, `readResult` and `deleteResult`.
//!
//! Parsing is defensive: the body is capped ([`PoxLimits`]), any `<!DOCTYPE`
//! or `<!ENTITY` is rejected *before* the parser sees it, entity references
//! other than the five predefined ones and character references are refused,
//! and nesting depth is bounded. Nothing here panics on arbitrary input.

use std::fmt;
use std::fmt::Write as _;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::{Error, Result, snippet};

/// The IMS outcomes namespace.
pub const POX_NAMESPACE: &str = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0";

/// Caps applied before and while parsing a POX body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoxLimits {
    /// Largest accepted body in bytes (default 64 KiB).
    pub max_body_bytes: usize,
    /// Deepest accepted element nesting (default 16).
    pub max_depth: usize,
    /// Longest accepted text content of one element (default 16 KiB).
    pub max_text_bytes: usize,
}

impl Default for PoxLimits {
    fn default() -> Self {
        PoxLimits {
            max_body_bytes: 64 * 1024,
            max_depth: 16,
            max_text_bytes: 16 * 1024,
        }
    }
}

/// A score in `[0.0, 1.0]`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Score(f64);

impl Score {
    /// Checks the range; NaN and infinities are rejected.
    pub fn new(value: f64) -> Result<Self> {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            Ok(Score(value))
        } else {
            Err(Error::InvalidScore {
                found: value.to_string(),
            })
        }
    }

    /// Parses the wire form: a plain decimal with `.` as separator
    /// (`0.92`, `1`, `.5`), in `[0.0, 1.0]`.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let invalid = || Error::InvalidScore { found: snippet(t) };
        let digits = t.bytes().filter(u8::is_ascii_digit).count();
        let dots = t.bytes().filter(|b| *b == b'.').count();
        if t.len() > 32 || digits == 0 || dots > 1 || digits + dots != t.len() {
            return Err(invalid());
        }
        let v: f64 = t.parse().map_err(|_| invalid())?;
        Score::new(v).map_err(|_| invalid())
    }

    /// The value.
    pub fn value(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Optional result data sent with `replaceResult` (Canvas extension, used
/// when the launch's `ext_outcome_data_values_accepted` lists the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultData {
    /// `<resultData><text>…</text></resultData>`.
    Text(String),
    /// `<resultData><url>…</url></resultData>`.
    Url(String),
    /// `<resultData><ltiLaunchUrl>…</ltiLaunchUrl></resultData>`.
    LtiLaunchUrl(String),
}

impl ResultData {
    fn element(&self) -> (&'static str, &str) {
        match self {
            ResultData::Text(t) => ("text", t),
            ResultData::Url(t) => ("url", t),
            ResultData::LtiLaunchUrl(t) => ("ltiLaunchUrl", t),
        }
    }
}

/// A Basic Outcomes operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Operation {
    /// Set the score (and optional result data).
    ReplaceResult {
        /// The score.
        score: Score,
        /// Optional result data.
        result_data: Option<ResultData>,
    },
    /// Read the score.
    ReadResult,
    /// Delete the score.
    DeleteResult,
}

impl Operation {
    /// The operation name as in `imsx_operationRefIdentifier` (`replaceResult`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::ReplaceResult { .. } => "replaceResult",
            Operation::ReadResult => "readResult",
            Operation::DeleteResult => "deleteResult",
        }
    }
}

/// A POX request envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRequest {
    /// `imsx_messageIdentifier`.
    pub message_identifier: String,
    /// `lis_result_sourcedid` of the graded assignment.
    pub sourced_id: String,
    /// The operation.
    pub operation: Operation,
}

impl OutcomeRequest {
    /// A request with a fresh random message identifier.
    pub fn new(sourced_id: impl Into<String>, operation: Operation) -> Self {
        OutcomeRequest {
            message_identifier: crate::oauth::generate_nonce(),
            sourced_id: sourced_id.into(),
            operation,
        }
    }

    /// Renders the XML body.
    pub fn to_xml(&self) -> String {
        let mut x = String::with_capacity(640);
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(x, "<imsx_POXEnvelopeRequest xmlns=\"{POX_NAMESPACE}\">");
        x.push_str("<imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>");
        push_elem(&mut x, "imsx_messageIdentifier", &self.message_identifier);
        x.push_str("</imsx_POXRequestHeaderInfo></imsx_POXHeader><imsx_POXBody>");
        let op = self.operation.name();
        let _ = write!(x, "<{op}Request><resultRecord><sourcedGUID>");
        push_elem(&mut x, "sourcedId", &self.sourced_id);
        x.push_str("</sourcedGUID>");
        if let Operation::ReplaceResult { score, result_data } = &self.operation {
            x.push_str("<result><resultScore><language>en</language>");
            push_elem(&mut x, "textString", &score.to_string());
            x.push_str("</resultScore>");
            if let Some(d) = result_data {
                let (name, value) = d.element();
                x.push_str("<resultData>");
                push_elem(&mut x, name, value);
                x.push_str("</resultData>");
            }
            x.push_str("</result>");
        }
        let _ = write!(
            x,
            "</resultRecord></{op}Request></imsx_POXBody></imsx_POXEnvelopeRequest>"
        );
        x
    }

    /// Parses a request body with default limits.
    pub fn parse(body: &[u8]) -> Result<Self> {
        Self::parse_with(body, &PoxLimits::default())
    }

    /// Parses a request body. A well-formed envelope with an operation other
    /// than the three supported gives [`Error::UnsupportedOperation`], whose
    /// message identifier can still be read with [`message_identifier_of`].
    pub fn parse_with(body: &[u8], limits: &PoxLimits) -> Result<Self> {
        let doc = Doc::parse(body, limits)?;
        if doc.root != "imsx_POXEnvelopeRequest" {
            return Err(Error::MalformedXml {
                expected: "root element imsx_POXEnvelopeRequest",
                found: format!("`{}`", snippet(&doc.root)),
            });
        }
        let message_identifier = doc.require("imsx_messageIdentifier")?.to_owned();
        let op = doc.operation.clone().ok_or_else(|| Error::MalformedXml {
            expected: "an operation element inside imsx_POXBody",
            found: "none".to_owned(),
        })?;
        let operation = match op.as_str() {
            "replaceResultRequest" => {
                let score = Score::parse(doc.require("textString")?)?;
                let result_data = match (doc.get("text"), doc.get("url"), doc.get("ltiLaunchUrl")) {
                    (Some(t), _, _) => Some(ResultData::Text(t.to_owned())),
                    (None, Some(u), _) => Some(ResultData::Url(u.to_owned())),
                    (None, None, Some(l)) => Some(ResultData::LtiLaunchUrl(l.to_owned())),
                    _ => None,
                };
                Operation::ReplaceResult { score, result_data }
            }
            "readResultRequest" => Operation::ReadResult,
            "deleteResultRequest" => Operation::DeleteResult,
            other => {
                return Err(Error::UnsupportedOperation {
                    found: snippet(other),
                });
            }
        };
        let sourced_id = doc.require("sourcedId")?.to_owned();
        Ok(OutcomeRequest {
            message_identifier,
            sourced_id,
            operation,
        })
    }
}

/// Reads `imsx_messageIdentifier` from a body that parsed as XML but not as a
/// supported request (so an `unsupported` answer can reference it).
pub fn message_identifier_of(body: &[u8], limits: &PoxLimits) -> Option<String> {
    Doc::parse(body, limits)
        .ok()
        .and_then(|d| d.get("imsx_messageIdentifier").map(str::to_owned))
}

/// `imsx_codeMajor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodeMajor {
    /// `success`.
    Success,
    /// `processing`.
    Processing,
    /// `failure`.
    Failure,
    /// `unsupported`.
    Unsupported,
}

impl CodeMajor {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeMajor::Success => "success",
            CodeMajor::Processing => "processing",
            CodeMajor::Failure => "failure",
            CodeMajor::Unsupported => "unsupported",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "success" => Ok(CodeMajor::Success),
            "processing" => Ok(CodeMajor::Processing),
            "failure" => Ok(CodeMajor::Failure),
            "unsupported" => Ok(CodeMajor::Unsupported),
            other => Err(Error::MalformedXml {
                expected: "imsx_codeMajor success, processing, failure or unsupported",
                found: format!("`{}`", snippet(other)),
            }),
        }
    }
}

/// `imsx_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// `status`.
    Status,
    /// `warning`.
    Warning,
    /// `error`.
    Error,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Status => "status",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A POX response envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeResponse {
    /// `imsx_messageIdentifier` of this response.
    pub message_identifier: String,
    /// `imsx_codeMajor`.
    pub code_major: CodeMajor,
    /// `imsx_severity`.
    pub severity: Severity,
    /// `imsx_description`.
    pub description: String,
    /// `imsx_messageRefIdentifier`: the request's message identifier.
    pub message_ref_identifier: Option<String>,
    /// `imsx_operationRefIdentifier`: `replaceResult`, `readResult`, ….
    pub operation_ref_identifier: Option<String>,
    /// For a successful `readResult`: the score, `None` when there is no grade.
    pub score: Option<Score>,
}

impl OutcomeResponse {
    /// A response answering `request` with the given status.
    pub fn for_request(
        request: &OutcomeRequest,
        code_major: CodeMajor,
        description: impl Into<String>,
    ) -> Self {
        OutcomeResponse {
            message_identifier: crate::oauth::generate_nonce(),
            severity: if code_major == CodeMajor::Success {
                Severity::Status
            } else {
                Severity::Error
            },
            code_major,
            description: description.into(),
            message_ref_identifier: Some(request.message_identifier.clone()),
            operation_ref_identifier: Some(request.operation.name().to_owned()),
            score: None,
        }
    }

    /// A failure/unsupported response when the request could not be parsed.
    pub fn unparsed(
        code_major: CodeMajor,
        description: impl Into<String>,
        message_ref: Option<String>,
    ) -> Self {
        OutcomeResponse {
            message_identifier: crate::oauth::generate_nonce(),
            code_major,
            severity: Severity::Error,
            description: description.into(),
            message_ref_identifier: message_ref,
            operation_ref_identifier: None,
            score: None,
        }
    }

    /// Renders the XML body.
    pub fn to_xml(&self) -> String {
        let mut x = String::with_capacity(800);
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(x, "<imsx_POXEnvelopeResponse xmlns=\"{POX_NAMESPACE}\">");
        x.push_str("<imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>");
        push_elem(&mut x, "imsx_messageIdentifier", &self.message_identifier);
        x.push_str("<imsx_statusInfo>");
        push_elem(&mut x, "imsx_codeMajor", self.code_major.as_str());
        push_elem(&mut x, "imsx_severity", self.severity.as_str());
        push_elem(&mut x, "imsx_description", &self.description);
        if let Some(r) = &self.message_ref_identifier {
            push_elem(&mut x, "imsx_messageRefIdentifier", r);
        }
        if let Some(o) = &self.operation_ref_identifier {
            push_elem(&mut x, "imsx_operationRefIdentifier", o);
        }
        x.push_str(
            "</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody>",
        );
        match self.operation_ref_identifier.as_deref() {
            Some("readResult") if self.code_major == CodeMajor::Success => {
                x.push_str("<readResultResponse><result><resultScore><language>en</language>");
                push_elem(
                    &mut x,
                    "textString",
                    &self.score.map(|s| s.to_string()).unwrap_or_default(),
                );
                x.push_str("</resultScore></result></readResultResponse>");
            }
            Some(op @ ("replaceResult" | "readResult" | "deleteResult")) => {
                let _ = write!(x, "<{op}Response/>");
            }
            _ => {}
        }
        x.push_str("</imsx_POXBody></imsx_POXEnvelopeResponse>");
        x
    }

    /// Parses a response body with default limits.
    pub fn parse(body: &[u8]) -> Result<Self> {
        Self::parse_with(body, &PoxLimits::default())
    }

    /// Parses a response body.
    pub fn parse_with(body: &[u8], limits: &PoxLimits) -> Result<Self> {
        let doc = Doc::parse(body, limits)?;
        if doc.root != "imsx_POXEnvelopeResponse" {
            return Err(Error::MalformedXml {
                expected: "root element imsx_POXEnvelopeResponse",
                found: format!("`{}`", snippet(&doc.root)),
            });
        }
        let code_major = CodeMajor::parse(doc.require("imsx_codeMajor")?)?;
        let severity = match doc.get("imsx_severity") {
            Some("warning") => Severity::Warning,
            Some("error") => Severity::Error,
            _ => Severity::Status,
        };
        let score = match (doc.operation.as_deref(), doc.get("textString")) {
            (Some("readResultResponse"), Some(t)) if !t.trim().is_empty() => Some(Score::parse(t)?),
            _ => None,
        };
        Ok(OutcomeResponse {
            message_identifier: doc
                .get("imsx_messageIdentifier")
                .unwrap_or_default()
                .to_owned(),
            code_major,
            severity,
            description: doc.get("imsx_description").unwrap_or_default().to_owned(),
            message_ref_identifier: doc.get("imsx_messageRefIdentifier").map(str::to_owned),
            operation_ref_identifier: doc.get("imsx_operationRefIdentifier").map(str::to_owned),
            score,
        })
    }
}

fn push_elem(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", quick_xml::escape::escape(text));
}

/// Rejects DTDs and entity declarations by a byte scan, before any parser runs.
fn reject_dtd(body: &[u8]) -> Result<()> {
    let mut i = 0;
    while let Some(pos) = body[i..].windows(2).position(|w| w == b"<!") {
        let at = i + pos + 2;
        let rest = &body[at..];
        if rest.starts_with(b"--") || rest.starts_with(b"[CDATA[") {
            i = at;
            continue;
        }
        let head: Vec<u8> = rest.iter().take(7).map(u8::to_ascii_uppercase).collect();
        return Err(Error::XmlForbidden {
            found: if head.starts_with(b"DOCTYPE") {
                "a <!DOCTYPE declaration"
            } else if head.starts_with(b"ENTITY") {
                "an <!ENTITY declaration"
            } else {
                "a markup declaration"
            },
        });
    }
    Ok(())
}

/// A flattened view of a small POX document: the root element, the
/// operation element (first child of imsx_POXBody) and the text of each
/// named leaf element (first occurrence wins).
struct Doc {
    root: String,
    operation: Option<String>,
    leaves: Vec<(String, String)>,
}

impl Doc {
    fn get(&self, name: &str) -> Option<&str> {
        self.leaves
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &'static str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::MalformedXml {
            expected: name,
            found: "no such element".to_owned(),
        })
    }

    fn parse(body: &[u8], limits: &PoxLimits) -> Result<Doc> {
        if body.len() > limits.max_body_bytes {
            return Err(Error::BodyTooLarge {
                limit: limits.max_body_bytes,
                found: body.len(),
            });
        }
        reject_dtd(body)?;
        let text = std::str::from_utf8(body).map_err(|e| Error::MalformedXml {
            expected: "UTF-8",
            found: format!("an invalid byte at offset {}", e.valid_up_to()),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let malformed = |e: quick_xml::Error| Error::MalformedXml {
            expected: "well-formed XML",
            found: snippet(&e.to_string()),
        };

        let mut reader = Reader::from_str(text);
        let mut stack: Vec<String> = Vec::new();
        let mut current_text = String::new();
        let mut doc = Doc {
            root: String::new(),
            operation: None,
            leaves: Vec::new(),
        };
        let mut seen_root = false;
        loop {
            match reader.read_event().map_err(malformed)? {
                Event::Start(e) => {
                    let name = local_name(e.name().as_ref());
                    open(&mut doc, &mut stack, &mut seen_root, name, limits)?;
                    current_text.clear();
                }
                Event::Empty(e) => {
                    let name = local_name(e.name().as_ref());
                    open(&mut doc, &mut stack, &mut seen_root, name.clone(), limits)?;
                    stack.pop();
                    if !doc.leaves.iter().any(|(n, _)| *n == name) {
                        doc.leaves.push((name, String::new()));
                    }
                    current_text.clear();
                }
                Event::End(e) => {
                    let name = local_name(e.name().as_ref());
                    match stack.pop() {
                        Some(open) if open == name => {}
                        _ => {
                            return Err(Error::MalformedXml {
                                expected: "matching end tags",
                                found: format!("`</{}>`", snippet(&name)),
                            });
                        }
                    }
                    if !doc.leaves.iter().any(|(n, _)| *n == name) {
                        doc.leaves
                            .push((name, std::mem::take(&mut current_text).trim().to_owned()));
                    }
                    current_text.clear();
                }
                Event::Text(t) => {
                    if stack.is_empty() && !t.xml10_content().trim().is_empty() {
                        return Err(Error::MalformedXml {
                            expected: "no text outside the root element",
                            found: "text".to_owned(),
                        });
                    }
                    push_text(&mut current_text, &t.xml10_content(), limits)?;
                }
                Event::CData(c) => {
                    push_text(&mut current_text, c.as_ref(), limits)?;
                }
                Event::GeneralRef(r) => {
                    let resolved = if r.is_char_ref() {
                        r.resolve_char_ref()
                            .ok()
                            .flatten()
                            .ok_or_else(|| Error::MalformedXml {
                                expected: "a valid character reference",
                                found: format!("`&{};`", snippet(r.as_ref())),
                            })?
                    } else {
                        match r.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            _ => {
                                return Err(Error::XmlForbidden {
                                    found: "a reference to a non-predefined entity",
                                });
                            }
                        }
                    };
                    let mut buf = [0u8; 4];
                    push_text(&mut current_text, resolved.encode_utf8(&mut buf), limits)?;
                }
                Event::DocType(_) => {
                    return Err(Error::XmlForbidden {
                        found: "a <!DOCTYPE declaration",
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() || !seen_root {
            return Err(Error::MalformedXml {
                expected: "a complete document",
                found: "an unterminated element or an empty body".to_owned(),
            });
        }
        Ok(doc)
    }
}

fn open(
    doc: &mut Doc,
    stack: &mut Vec<String>,
    seen_root: &mut bool,
    name: String,
    limits: &PoxLimits,
) -> Result<()> {
    if stack.is_empty() {
        if *seen_root {
            return Err(Error::MalformedXml {
                expected: "a single root element",
                found: format!("a second root `{}`", snippet(&name)),
            });
        }
        *seen_root = true;
        doc.root = name.clone();
    } else if stack.last().is_some_and(|p| p == "imsx_POXBody") && doc.operation.is_none() {
        doc.operation = Some(name.clone());
    }
    if stack.len() >= limits.max_depth {
        return Err(Error::MalformedXml {
            expected: "shallow nesting",
            found: format!("more than {} levels", limits.max_depth),
        });
    }
    stack.push(name);
    Ok(())
}

fn push_text(buf: &mut String, s: &str, limits: &PoxLimits) -> Result<()> {
    if buf.len() + s.len() > limits.max_text_bytes {
        return Err(Error::MalformedXml {
            expected: "element text within the size cap",
            found: format!("more than {} bytes", limits.max_text_bytes),
        });
    }
    buf.push_str(s);
    Ok(())
}

fn local_name(qname: &str) -> String {
    match qname.rsplit_once(':') {
        Some((_, local)) => local.to_owned(),
        None => qname.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_parsing_accepts_plain_decimals_only() {
        assert_eq!(Score::parse("0.92").unwrap().value(), 0.92);
        assert_eq!(Score::parse("1").unwrap().value(), 1.0);
        assert_eq!(Score::parse(" .5 ").unwrap().value(), 0.5);
        for bad in [
            "1.01", "-0.1", "NaN", "inf", "1e-1", "", ".", "0,5", "0.5.1",
        ] {
            assert_eq!(
                Score::parse(bad).unwrap_err().code(),
                "invalid_score",
                "{bad}"
            );
        }
        assert_eq!(Score::new(f64::NAN).unwrap_err().code(), "invalid_score");
    }

    #[test]
    fn replace_request_round_trips_with_result_data() {
        let req = OutcomeRequest::new(
            "sid<&>\"1",
            Operation::ReplaceResult {
                score: Score::new(0.75).unwrap(),
                result_data: Some(ResultData::Url("https://x.example/?a=1&b=2".into())),
            },
        );
        assert_eq!(OutcomeRequest::parse(req.to_xml().as_bytes()).unwrap(), req);
    }

    #[test]
    fn read_response_with_empty_score_means_no_grade() {
        let req = OutcomeRequest::new("s", Operation::ReadResult);
        let resp = OutcomeResponse::for_request(&req, CodeMajor::Success, "no grade");
        let parsed = OutcomeResponse::parse(resp.to_xml().as_bytes()).unwrap();
        assert_eq!(parsed.score, None);
        assert_eq!(
            parsed.message_ref_identifier.as_deref(),
            Some(req.message_identifier.as_str())
        );
        let mut graded = resp.clone();
        graded.score = Some(Score::new(0.5).unwrap());
        assert_eq!(
            OutcomeResponse::parse(graded.to_xml().as_bytes()).unwrap(),
            graded
        );
    }

    #[test]
    fn doctype_and_entities_are_rejected_before_parsing() {
        let doctype = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
        assert_eq!(
            Doc::parse(doctype, &PoxLimits::default())
                .err()
                .unwrap()
                .code(),
            "xml_forbidden_construct"
        );
        let lower = b"<!doctype x><x/>";
        assert_eq!(
            Doc::parse(lower, &PoxLimits::default())
                .err()
                .unwrap()
                .code(),
            "xml_forbidden_construct"
        );
        let undeclared = b"<x>&xxe;</x>";
        assert_eq!(
            Doc::parse(undeclared, &PoxLimits::default())
                .err()
                .unwrap()
                .code(),
            "xml_forbidden_construct"
        );
    }

    #[test]
    fn deep_nesting_and_oversized_bodies_are_rejected() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(
            Doc::parse(deep.as_bytes(), &PoxLimits::default())
                .err()
                .unwrap()
                .code(),
            "xml_malformed"
        );
        let big = vec![b' '; 70 * 1024];
        assert_eq!(
            Doc::parse(&big, &PoxLimits::default())
                .err()
                .unwrap()
                .code(),
            "body_too_large"
        );
    }

    #[test]
    fn unknown_operation_is_unsupported() {
        let xml = format!(
            "<imsx_POXEnvelopeRequest xmlns=\"{POX_NAMESPACE}\"><imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>m1</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader><imsx_POXBody><replaceResultsRequest/></imsx_POXBody></imsx_POXEnvelopeRequest>"
        );
        assert_eq!(
            OutcomeRequest::parse(xml.as_bytes()).unwrap_err().code(),
            "pox_unsupported_operation"
        );
        assert_eq!(
            message_identifier_of(xml.as_bytes(), &PoxLimits::default()).as_deref(),
            Some("m1")
        );
    }
}
