//! Deep Linking 2.0: the settings claim, content items and the response builder.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::{lenient_u32, uri};
use crate::error::MessageError;
use crate::time::Timestamp;

/// The `deep_linking_settings` claim of an `LtiDeepLinkingRequest`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DeepLinkingSettings {
    /// Where the tool posts its response (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep_link_return_url: Option<String>,
    /// Accepted content item types (`link`, `ltiResourceLink`, `file`, `html`, `image`).
    pub accept_types: Vec<String>,
    /// Accepted presentation targets (`iframe`, `window`, `embed`).
    pub accept_presentation_document_targets: Vec<String>,
    /// Comma-separated accepted media types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_media_types: Option<String>,
    /// Whether more than one item may be returned (absent means no).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_multiple: Option<bool>,
    /// Whether the platform creates line items from `lineItem` (absent means no).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_lineitem: Option<bool>,
    /// Whether items are created without confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_create: Option<bool>,
    /// Default title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Default text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Opaque value the response must echo unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(DeepLinkingSettings {
    deep_link_return_url: "deep_link_return_url",
    accept_types: "accept_types",
    accept_presentation_document_targets: "accept_presentation_document_targets",
    accept_media_types: "accept_media_types",
    accept_multiple: "accept_multiple",
    accept_lineitem: "accept_lineitem",
    auto_create: "auto_create",
    title: "title",
    text: "text",
    data: "data",
});

/// An icon or thumbnail image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Image URL.
    pub url: String,
    /// Width in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<u32>,
}

/// Embed presentation: HTML to embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embed {
    /// The HTML fragment.
    pub html: String,
}

/// New-window presentation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Name of the target window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Width in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<u32>,
    /// `window.open` features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_features: Option<String>,
}

/// Iframe presentation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Iframe {
    /// Iframe source (links only; defaults to the item URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Width in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<u32>,
}

/// A line item the platform should create for an `ltiResourceLink`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeepLinkLineItem {
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Maximum score (required, > 0).
    pub score_maximum: f64,
    /// Tool's own resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Whether grades are released to learners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grades_released: Option<bool>,
}

/// A start/end window (`available`, `submission`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<Timestamp>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<Timestamp>,
}

/// A `link` content item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LinkItem {
    /// URL (required).
    pub url: String,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Image>,
    /// Thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Image>,
    /// Embed presentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed: Option<Embed>,
    /// Window presentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Iframe presentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iframe: Option<Iframe>,
}

/// An `ltiResourceLink` content item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LtiResourceLinkItem {
    /// Launch URL (defaults to the tool's target link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Image>,
    /// Thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Image>,
    /// Window presentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Iframe presentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iframe: Option<Iframe>,
    /// Custom parameters for launches of this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<std::collections::BTreeMap<String, String>>,
    /// Line item to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_item: Option<DeepLinkLineItem>,
    /// Availability window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<TimeWindow>,
    /// Submission window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission: Option<TimeWindow>,
}

/// A `file` content item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileItem {
    /// URL (required).
    pub url: String,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Image>,
    /// Thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Image>,
    /// When the URL stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// An `html` content item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HtmlItem {
    /// HTML fragment (required).
    pub html: String,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// An `image` content item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageItem {
    /// URL (required).
    pub url: String,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Image>,
    /// Thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Image>,
    /// Width in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(
        default,
        deserialize_with = "lenient_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<u32>,
}

/// One deep-linking content item, tagged by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
// Items are built once per response and moved into a Vec; boxing the larger
// variants would only make construction noisier.
#[allow(clippy::large_enum_variant)]
pub enum ContentItem {
    /// `link`.
    #[serde(rename = "link")]
    Link(LinkItem),
    /// `ltiResourceLink`.
    #[serde(rename = "ltiResourceLink")]
    LtiResourceLink(LtiResourceLinkItem),
    /// `file`.
    #[serde(rename = "file")]
    File(FileItem),
    /// `html`.
    #[serde(rename = "html")]
    Html(HtmlItem),
    /// `image`.
    #[serde(rename = "image")]
    Image(ImageItem),
}

impl ContentItem {
    /// The `type` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Link(_) => "link",
            Self::LtiResourceLink(_) => "ltiResourceLink",
            Self::File(_) => "file",
            Self::Html(_) => "html",
            Self::Image(_) => "image",
        }
    }

    /// The presentation targets this item asks for.
    fn presentation_targets(&self) -> Vec<&'static str> {
        let (embed, window, iframe) = match self {
            Self::Link(l) => (l.embed.is_some(), l.window.is_some(), l.iframe.is_some()),
            Self::LtiResourceLink(l) => (false, l.window.is_some(), l.iframe.is_some()),
            _ => (false, false, false),
        };
        [(embed, "embed"), (window, "window"), (iframe, "iframe")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }

    /// Checks the item's own rules (required URLs non-empty, every URL an
    /// absolute `http`/`https` URL, `scoreMaximum` > 0, windows ordered).
    ///
    /// The URLs are what a platform shows as links, images and frames, so a
    /// `javascript:` or `data:` URL (which a browser would run) is refused, as is a
    /// relative one.
    pub fn validate(&self) -> Result<(), MessageError> {
        let non_empty = |what: &'static str, v: &str| {
            if v.trim().is_empty() {
                Err(MessageError::InvalidItem {
                    what,
                    reason: "expected a value, found an empty string".into(),
                })
            } else {
                Ok(())
            }
        };
        let url = |what: &'static str, v: &str| non_empty(what, v).and_then(|()| web_url(what, v));
        let optional = |what: &'static str, v: Option<&str>| v.map_or(Ok(()), |v| url(what, v));
        let image = |what: &'static str, i: &Option<Image>| {
            optional(what, i.as_ref().map(|i| i.url.as_str()))
        };
        let iframe = |what: &'static str, f: &Option<Iframe>| {
            optional(what, f.as_ref().and_then(|f| f.src.as_deref()))
        };
        match self {
            Self::Link(l) => {
                url("link.url", &l.url)?;
                image("link.icon.url", &l.icon)?;
                image("link.thumbnail.url", &l.thumbnail)?;
                iframe("link.iframe.src", &l.iframe)
            }
            Self::File(f) => {
                url("file.url", &f.url)?;
                image("file.icon.url", &f.icon)?;
                image("file.thumbnail.url", &f.thumbnail)
            }
            Self::Image(i) => {
                url("image.url", &i.url)?;
                image("image.icon.url", &i.icon)?;
                image("image.thumbnail.url", &i.thumbnail)
            }
            Self::Html(h) => non_empty("html.html", &h.html),
            Self::LtiResourceLink(l) => {
                optional("ltiResourceLink.url", l.url.as_deref())?;
                image("ltiResourceLink.icon.url", &l.icon)?;
                image("ltiResourceLink.thumbnail.url", &l.thumbnail)?;
                iframe("ltiResourceLink.iframe.src", &l.iframe)?;
                if let Some(li) = &l.line_item
                    && !(li.score_maximum.is_finite() && li.score_maximum > 0.0)
                {
                    return Err(MessageError::InvalidItem {
                        what: "lineItem.scoreMaximum",
                        reason: format!("expected a number > 0, found {}", li.score_maximum),
                    });
                }
                for (what, w) in [("available", &l.available), ("submission", &l.submission)] {
                    if let Some(TimeWindow {
                        start_date_time: Some(s),
                        end_date_time: Some(e),
                    }) = w
                        && e < s
                    {
                        return Err(MessageError::InvalidItem {
                            what,
                            reason: format!("expected endDateTime after {s}, found {e}"),
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Checks the item against the platform's settings. `already` is the number
    /// of items already accepted in the same response.
    pub fn check_accepted(
        &self,
        settings: &DeepLinkingSettings,
        already: usize,
    ) -> Result<(), MessageError> {
        let t = self.type_name();
        if !settings.accept_types.iter().any(|a| a == t) {
            return Err(MessageError::ContentItemTypeNotAccepted {
                found: t,
                accepted: settings.accept_types.clone(),
            });
        }
        if already >= 1 && settings.accept_multiple != Some(true) {
            return Err(MessageError::MultipleItemsNotAccepted);
        }
        if let Self::LtiResourceLink(LtiResourceLinkItem {
            line_item: Some(_), ..
        }) = self
            && settings.accept_lineitem != Some(true)
        {
            return Err(MessageError::LineItemNotAccepted);
        }
        for target in self.presentation_targets() {
            if !settings
                .accept_presentation_document_targets
                .iter()
                .any(|a| a == target)
            {
                return Err(MessageError::PresentationTargetNotAccepted {
                    found: target,
                    accepted: settings.accept_presentation_document_targets.clone(),
                });
            }
        }
        self.validate()
    }
}

/// `value` is an absolute `http`/`https` URL: the scheme at its very start (in any
/// case; browsers skip leading blanks, so none may precede it), then a host, and no
/// whitespace or control character anywhere.
fn web_url(what: &'static str, value: &str) -> Result<(), MessageError> {
    let rest = ["https://", "http://"].into_iter().find_map(|scheme| {
        value
            .get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| &value[scheme.len()..])
    });
    let ok = rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with(['/', '?', '#', '@', ':'])
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if ok {
        Ok(())
    } else {
        Err(MessageError::InvalidItem {
            what,
            reason: format!(
                "expected an absolute http(s) URL, found {:?}",
                value.chars().take(60).collect::<String>()
            ),
        })
    }
}

/// Builds the claims of an `LtiDeepLinkingResponse`, refusing items the
/// platform's settings do not accept.
///
/// The result of [`DeepLinkingResponseBuilder::build`] holds the LTI claims
/// only; the tool layer adds `iss`, `aud`, `iat`, `exp`, `nonce` and signs.
#[derive(Debug, Clone)]
pub struct DeepLinkingResponseBuilder {
    settings: DeepLinkingSettings,
    deployment_id: String,
    items: Vec<ContentItem>,
    msg: Option<String>,
    log: Option<String>,
    errormsg: Option<String>,
    errorlog: Option<String>,
}

impl DeepLinkingResponseBuilder {
    /// Starts a response to a request with these settings and deployment id.
    pub fn new(settings: &DeepLinkingSettings, deployment_id: impl Into<String>) -> Self {
        Self {
            settings: settings.clone(),
            deployment_id: deployment_id.into(),
            items: Vec::new(),
            msg: None,
            log: None,
            errormsg: None,
            errorlog: None,
        }
    }

    /// Adds an item after checking it against the settings.
    pub fn add_item(&mut self, item: ContentItem) -> Result<&mut Self, MessageError> {
        item.check_accepted(&self.settings, self.items.len())?;
        self.items.push(item);
        Ok(self)
    }

    /// User-visible message on success.
    pub fn msg(&mut self, msg: impl Into<String>) -> &mut Self {
        self.msg = Some(msg.into());
        self
    }
    /// Log text on success.
    pub fn log(&mut self, log: impl Into<String>) -> &mut Self {
        self.log = Some(log.into());
        self
    }
    /// User-visible error message.
    pub fn errormsg(&mut self, msg: impl Into<String>) -> &mut Self {
        self.errormsg = Some(msg.into());
        self
    }
    /// Error log text.
    pub fn errorlog(&mut self, log: impl Into<String>) -> &mut Self {
        self.errorlog = Some(log.into());
        self
    }

    /// The items added so far.
    pub fn items(&self) -> &[ContentItem] {
        &self.items
    }

    /// The response claims: message_type, version, deployment_id,
    /// content_items, data (echoed when the settings carried it) and the
    /// msg/log/errormsg/errorlog claims that were set.
    pub fn build(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let s = |v: &str| Value::String(v.to_owned());
        m.insert(uri::MESSAGE_TYPE.into(), s(uri::MSG_DEEP_LINKING_RESPONSE));
        m.insert(uri::VERSION.into(), s(uri::LTI_VERSION));
        m.insert(uri::DEPLOYMENT_ID.into(), s(&self.deployment_id));
        let items = serde_json::to_value(&self.items).unwrap_or_else(|_| Value::Array(Vec::new()));
        m.insert(uri::DL_CONTENT_ITEMS.into(), items);
        if let Some(d) = &self.settings.data {
            m.insert(uri::DL_DATA.into(), s(d));
        }
        for (k, v) in [
            (uri::DL_MSG, &self.msg),
            (uri::DL_LOG, &self.log),
            (uri::DL_ERRORMSG, &self.errormsg),
            (uri::DL_ERRORLOG, &self.errorlog),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), s(v));
            }
        }
        m
    }
}

/// A decoded `LtiDeepLinkingResponse` (platform side), after the JWT was verified.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepLinkingResponse {
    /// The deployment id (same as the request's).
    pub deployment_id: String,
    /// The returned items (may be empty: nothing selected).
    pub content_items: Vec<ContentItem>,
    /// The echoed `data`.
    pub data: Option<String>,
    /// User-visible message.
    pub msg: Option<String>,
    /// Log text.
    pub log: Option<String>,
    /// User-visible error message.
    pub errormsg: Option<String>,
    /// Error log text.
    pub errorlog: Option<String>,
}

impl DeepLinkingResponse {
    /// Decodes the LTI claims of a verified deep-linking response: message type
    /// `LtiDeepLinkingResponse`, version `1.3.0` and a non-empty deployment_id
    /// are required; an absent `content_items` claim means no item.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, MessageError> {
        use crate::error::{RequiredClaim, excerpt};
        let text = |claim: &'static str| -> Result<Option<String>, MessageError> {
            match claims.get(claim) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(MessageError::MalformedClaim {
                    claim,
                    reason: "expected a string, found another JSON type".into(),
                }),
            }
        };
        let message_type = text(uri::MESSAGE_TYPE)?
            .ok_or(MessageError::MissingClaim(RequiredClaim::MessageType))?;
        if message_type != uri::MSG_DEEP_LINKING_RESPONSE {
            return Err(MessageError::WrongMessageType {
                expected: uri::MSG_DEEP_LINKING_RESPONSE,
                found: excerpt(&message_type),
            });
        }
        let version =
            text(uri::VERSION)?.ok_or(MessageError::MissingClaim(RequiredClaim::Version))?;
        if version != uri::LTI_VERSION {
            return Err(MessageError::InvalidVersion {
                found: excerpt(&version),
            });
        }
        let deployment_id = text(uri::DEPLOYMENT_ID)?
            .ok_or(MessageError::MissingClaim(RequiredClaim::DeploymentId))?;
        if deployment_id.is_empty() {
            return Err(MessageError::EmptyDeploymentId);
        }
        let content_items = match claims.get(uri::DL_CONTENT_ITEMS) {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => {
                Vec::<ContentItem>::deserialize(v).map_err(|e| MessageError::MalformedClaim {
                    claim: uri::DL_CONTENT_ITEMS,
                    reason: crate::error::excerpt_n(&e.to_string(), 160),
                })?
            }
        };
        Ok(Self {
            deployment_id,
            content_items,
            data: text(uri::DL_DATA)?,
            msg: text(uri::DL_MSG)?,
            log: text(uri::DL_LOG)?,
            errormsg: text(uri::DL_ERRORMSG)?,
            errorlog: text(uri::DL_ERRORLOG)?,
        })
    }

    /// Checks the response against the settings the platform sent: `data`
    /// echoed unchanged, and every item accepted (type, multiplicity, line
    /// item, presentation targets, own rules).
    pub fn check_against(&self, settings: &DeepLinkingSettings) -> Result<(), MessageError> {
        if self.data != settings.data {
            return Err(MessageError::DataMismatch);
        }
        for (i, item) in self.content_items.iter().enumerate() {
            item.check_accepted(settings, i)?;
        }
        Ok(())
    }
}
