//! Deep-linking response builder: every refusal with its specific error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::deep_linking::{
    DeepLinkLineItem, Embed, FileItem, HtmlItem, Iframe, Image, ImageItem, LinkItem,
    LtiResourceLinkItem, TimeWindow, Window,
};
use lti_message::{
    ContentItem, DeepLinkingResponse, DeepLinkingResponseBuilder, DeepLinkingSettings,
    MessageError, Timestamp, uri,
};
use serde_json::{Value, json};

fn settings(v: Value) -> DeepLinkingSettings {
    serde_json::from_value(v).unwrap()
}

fn permissive() -> DeepLinkingSettings {
    settings(json!({
        "deep_link_return_url": "https://lms.example.edu/dl",
        "accept_types": ["link", "ltiResourceLink", "file", "html", "image"],
        "accept_presentation_document_targets": ["iframe", "window", "embed"],
        "accept_multiple": true,
        "accept_lineitem": true,
        "data": "csrf-123"
    }))
}

fn link(url: &str) -> ContentItem {
    ContentItem::Link(LinkItem {
        url: url.into(),
        ..Default::default()
    })
}

fn resource_link() -> LtiResourceLinkItem {
    LtiResourceLinkItem {
        url: Some("https://tool.example.com/a".into()),
        ..Default::default()
    }
}

#[test]
fn a_type_outside_accept_types_is_refused() {
    let s = settings(
        json!({ "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe"] }),
    );
    let err = DeepLinkingResponseBuilder::new(&s, "d")
        .add_item(link("https://x.example"))
        .unwrap_err()
        .clone();
    assert_eq!(
        err,
        MessageError::ContentItemTypeNotAccepted {
            found: "link",
            accepted: vec!["ltiResourceLink".into()]
        }
    );
    assert_eq!(err.code(), "content_item_type_not_accepted");
    assert!(err.to_string().contains("found `link`"));
}

#[test]
fn a_second_item_is_refused_unless_accept_multiple_is_true() {
    for multiple in [json!(false), Value::Null] {
        let s = settings(json!({ "accept_types": ["link"], "accept_multiple": multiple }));
        let mut b = DeepLinkingResponseBuilder::new(&s, "d");
        b.add_item(link("https://a.example")).unwrap();
        assert_eq!(
            b.add_item(link("https://b.example")).unwrap_err(),
            MessageError::MultipleItemsNotAccepted
        );
        assert_eq!(b.items().len(), 1, "the refused item was not added");
    }
    let mut b = DeepLinkingResponseBuilder::new(&permissive(), "d");
    b.add_item(link("https://a.example")).unwrap();
    b.add_item(link("https://b.example")).unwrap();
    assert_eq!(b.items().len(), 2);
}

#[test]
fn a_line_item_is_refused_unless_accept_lineitem_is_true() {
    let item = ContentItem::LtiResourceLink(LtiResourceLinkItem {
        line_item: Some(DeepLinkLineItem {
            label: Some("Quiz".into()),
            score_maximum: 10.0,
            resource_id: Some("quiz-1".into()),
            tag: Some("quiz".into()),
            grades_released: Some(true),
        }),
        ..resource_link()
    });
    for accept in [json!(false), Value::Null] {
        let s = settings(json!({ "accept_types": ["ltiResourceLink"], "accept_lineitem": accept }));
        assert_eq!(
            DeepLinkingResponseBuilder::new(&s, "d")
                .add_item(item.clone())
                .unwrap_err(),
            MessageError::LineItemNotAccepted
        );
    }
    DeepLinkingResponseBuilder::new(&permissive(), "d")
        .add_item(item)
        .unwrap();
}

#[test]
fn presentation_targets_outside_the_accepted_list_are_refused() {
    let s = settings(json!({
        "accept_types": ["link", "ltiResourceLink"],
        "accept_presentation_document_targets": ["window"],
        "accept_multiple": true
    }));
    let embed = ContentItem::Link(LinkItem {
        embed: Some(Embed {
            html: "<b>x</b>".into(),
        }),
        ..LinkItem {
            url: "https://a.example".into(),
            ..Default::default()
        }
    });
    let iframe = ContentItem::LtiResourceLink(LtiResourceLinkItem {
        iframe: Some(Iframe::default()),
        ..resource_link()
    });
    for (item, target) in [(embed, "embed"), (iframe, "iframe")] {
        assert_eq!(
            DeepLinkingResponseBuilder::new(&s, "d")
                .add_item(item)
                .unwrap_err(),
            MessageError::PresentationTargetNotAccepted {
                found: target,
                accepted: vec!["window".into()]
            }
        );
    }
    let window = ContentItem::LtiResourceLink(LtiResourceLinkItem {
        window: Some(Window::default()),
        ..resource_link()
    });
    DeepLinkingResponseBuilder::new(&s, "d")
        .add_item(window)
        .unwrap();
}

#[test]
fn items_breaking_their_own_rules_are_refused() {
    let mut b = DeepLinkingResponseBuilder::new(&permissive(), "d");
    let bad_max = ContentItem::LtiResourceLink(LtiResourceLinkItem {
        line_item: Some(DeepLinkLineItem {
            label: None,
            score_maximum: 0.0,
            resource_id: None,
            tag: None,
            grades_released: None,
        }),
        ..resource_link()
    });
    let err = b.add_item(bad_max).unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::InvalidItem {
                what: "lineItem.scoreMaximum",
                ..
            }
        ),
        "{err}"
    );
    let err = b.add_item(link("  ")).unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::InvalidItem {
                what: "link.url",
                ..
            }
        ),
        "{err}"
    );
    let err = b
        .add_item(ContentItem::Html(HtmlItem::default()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::InvalidItem {
                what: "html.html",
                ..
            }
        ),
        "{err}"
    );
    let backwards = ContentItem::LtiResourceLink(LtiResourceLinkItem {
        available: Some(TimeWindow {
            start_date_time: Some(Timestamp::parse("2025-02-01T00:00:00Z").unwrap()),
            end_date_time: Some(Timestamp::parse("2025-01-01T00:00:00Z").unwrap()),
        }),
        ..resource_link()
    });
    let err = b.add_item(backwards).unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::InvalidItem {
                what: "available",
                ..
            }
        ),
        "{err}"
    );
    assert!(b.items().is_empty());
}

#[test]
fn the_response_claims_carry_every_item_type_with_exact_json_names() {
    let mut b = DeepLinkingResponseBuilder::new(&permissive(), "dep-7");
    let icon = Image {
        url: "https://tool.example.com/i.png".into(),
        width: Some(16),
        height: Some(16),
    };
    b.add_item(ContentItem::Link(LinkItem {
        url: "https://example.com/page".into(),
        title: Some("Page".into()),
        window: Some(Window {
            target_name: Some("w".into()),
            width: Some(800),
            height: None,
            window_features: Some("resizable".into()),
        }),
        icon: Some(icon.clone()),
        ..Default::default()
    }))
    .unwrap();
    b.add_item(ContentItem::LtiResourceLink(LtiResourceLinkItem {
        title: Some("Quiz".into()),
        custom: Some([("quiz_id".to_owned(), "q1".to_owned())].into()),
        line_item: Some(DeepLinkLineItem {
            label: Some("Quiz".into()),
            score_maximum: 20.0,
            resource_id: Some("q1".into()),
            tag: None,
            grades_released: Some(false),
        }),
        submission: Some(TimeWindow {
            start_date_time: None,
            end_date_time: Some(Timestamp::from_unix_seconds(1_700_000_000).unwrap()),
        }),
        ..resource_link()
    }))
    .unwrap();
    b.add_item(ContentItem::File(FileItem {
        url: "https://tool.example.com/f.pdf".into(),
        expires_at: Some(Timestamp::from_unix_seconds(1_800_000_000).unwrap()),
        ..Default::default()
    }))
    .unwrap();
    b.add_item(ContentItem::Html(HtmlItem {
        html: "<p>hi</p>".into(),
        ..Default::default()
    }))
    .unwrap();
    b.add_item(ContentItem::Image(ImageItem {
        url: "https://tool.example.com/x.png".into(),
        width: Some(100),
        height: Some(50),
        thumbnail: Some(icon),
        ..Default::default()
    }))
    .unwrap();
    b.msg("5 items").log("ok").errormsg("none").errorlog("none");
    let claims = Value::Object(b.build());

    assert_eq!(claims[uri::MESSAGE_TYPE], "LtiDeepLinkingResponse");
    assert_eq!(claims[uri::VERSION], "1.3.0");
    assert_eq!(claims[uri::DEPLOYMENT_ID], "dep-7");
    assert_eq!(claims[uri::DL_DATA], "csrf-123");
    assert_eq!(claims[uri::DL_MSG], "5 items");
    assert_eq!(claims[uri::DL_LOG], "ok");
    assert_eq!(claims[uri::DL_ERRORMSG], "none");
    assert_eq!(claims[uri::DL_ERRORLOG], "none");
    let items = &claims[uri::DL_CONTENT_ITEMS];
    assert_eq!(
        items[0],
        json!({
            "type": "link", "url": "https://example.com/page", "title": "Page",
            "icon": { "url": "https://tool.example.com/i.png", "width": 16, "height": 16 },
            "window": { "targetName": "w", "width": 800, "windowFeatures": "resizable" }
        })
    );
    assert_eq!(
        items[1],
        json!({
            "type": "ltiResourceLink", "url": "https://tool.example.com/a", "title": "Quiz",
            "custom": { "quiz_id": "q1" },
            "lineItem": { "label": "Quiz", "scoreMaximum": 20.0, "resourceId": "q1", "gradesReleased": false },
            "submission": { "endDateTime": "2023-11-14T22:13:20.000Z" }
        })
    );
    assert_eq!(
        items[2],
        json!({ "type": "file", "url": "https://tool.example.com/f.pdf", "expiresAt": "2027-01-15T08:00:00.000Z" })
    );
    assert_eq!(items[3], json!({ "type": "html", "html": "<p>hi</p>" }));
    assert_eq!(items[4]["type"], "image");
    assert_eq!(
        items[4]["thumbnail"]["url"],
        "https://tool.example.com/i.png"
    );

    // The platform side can parse the items back.
    let parsed: Vec<ContentItem> = serde_json::from_value(items.clone()).unwrap();
    assert_eq!(parsed.len(), 5);
    assert_eq!(parsed[1].type_name(), "ltiResourceLink");
}

#[test]
fn an_empty_response_omits_data_when_the_request_had_none() {
    let s = settings(
        json!({ "deep_link_return_url": "https://lms.example.edu/dl", "accept_types": ["link"] }),
    );
    let claims = DeepLinkingResponseBuilder::new(&s, "d").build();
    assert_eq!(claims[uri::DL_CONTENT_ITEMS], json!([]));
    assert!(!claims.contains_key(uri::DL_DATA));
    assert!(!claims.contains_key(uri::DL_MSG));
}

#[test]
fn unknown_content_item_types_are_refused_when_parsing() {
    let err =
        serde_json::from_value::<ContentItem>(json!({ "type": "ltiAssetProcessor", "url": "x" }));
    assert!(err.unwrap_err().to_string().contains("ltiAssetProcessor"));
    let err = serde_json::from_value::<ContentItem>(json!({ "type": "link" }));
    assert!(err.unwrap_err().to_string().contains("url"));
}

#[test]
fn the_platform_decodes_and_checks_a_built_response() {
    let s = permissive();
    let mut b = DeepLinkingResponseBuilder::new(&s, "dep-7");
    b.add_item(link("https://a.example")).unwrap();
    b.add_item(ContentItem::LtiResourceLink(resource_link()))
        .unwrap();
    let claims = b.msg("done").build();
    let r = DeepLinkingResponse::from_claims(&claims).unwrap();
    assert_eq!(r.deployment_id, "dep-7");
    assert_eq!(r.content_items.len(), 2);
    assert_eq!(r.msg.as_deref(), Some("done"));
    r.check_against(&s).unwrap();

    // A response for stricter settings: multiplicity is checked item by item.
    let single =
        settings(json!({ "accept_types": ["link", "ltiResourceLink"], "data": "csrf-123" }));
    assert_eq!(
        r.check_against(&single).unwrap_err(),
        MessageError::MultipleItemsNotAccepted
    );
    // data must be echoed unchanged.
    let other_data = settings(
        json!({ "accept_types": ["link", "ltiResourceLink"], "accept_multiple": true, "data": "other" }),
    );
    assert_eq!(
        r.check_against(&other_data).unwrap_err().code(),
        "data_mismatch"
    );
}

#[test]
fn the_platform_refuses_malformed_responses_with_specific_errors() {
    let base = DeepLinkingResponseBuilder::new(&permissive(), "d").build();
    let with = |k: &str, v: Value| {
        let mut m = base.clone();
        m.insert(k.to_owned(), v);
        m
    };
    let code = |m: &serde_json::Map<String, Value>| {
        DeepLinkingResponse::from_claims(m).unwrap_err().code()
    };
    assert_eq!(
        code(&with(uri::MESSAGE_TYPE, json!("LtiResourceLinkRequest"))),
        "wrong_message_type"
    );
    assert_eq!(code(&with(uri::VERSION, json!("1.1"))), "invalid_version");
    assert_eq!(
        code(&with(uri::DEPLOYMENT_ID, json!(""))),
        "empty_deployment_id"
    );
    assert_eq!(
        code(&with(uri::DL_CONTENT_ITEMS, json!([{ "type": "bogus" }]))),
        "malformed_claim"
    );
    assert_eq!(code(&with(uri::DL_MSG, json!(5))), "malformed_claim");
    let mut no_deployment = base.clone();
    no_deployment.remove(uri::DEPLOYMENT_ID);
    assert_eq!(code(&no_deployment), "missing_claim:deployment_id");
    let mut no_items = base.clone();
    no_items.remove(uri::DL_CONTENT_ITEMS);
    assert!(
        DeepLinkingResponse::from_claims(&no_items)
            .unwrap()
            .content_items
            .is_empty()
    );
}

#[test]
fn item_urls_must_be_absolute_http_or_https() {
    let refused = |item: ContentItem| match DeepLinkingResponseBuilder::new(&permissive(), "d")
        .add_item(item)
        .unwrap_err()
    {
        MessageError::InvalidItem { what, reason } => {
            assert!(reason.contains("absolute http(s) URL"), "{reason}");
            what
        }
        other => panic!("expected invalid_item, found {other:?}"),
    };
    // Script and data URLs (however a browser would still read them), relative
    // and scheme-relative URLs, other schemes, and URLs with no host.
    for url in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "\u{1}https://tool.example.com/",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "/relative/path",
        "//tool.example.com/a",
        "ftp://tool.example.com/a",
        "https://",
        "https:///path",
        "http:tool.example.com",
        "https://tool.example.com/a b",
        "https://tool.example.com/\nx",
    ] {
        assert_eq!(refused(link(url)), "link.url", "{url:?}");
    }
    let bad = || {
        Some(Image {
            url: "javascript:alert(1)".into(),
            width: None,
            height: None,
        })
    };
    let bad_frame = || {
        Some(Iframe {
            src: Some("data:text/html,x".into()),
            ..Default::default()
        })
    };
    let cases = [
        (
            ContentItem::LtiResourceLink(LtiResourceLinkItem {
                url: Some("javascript:alert(1)".into()),
                ..resource_link()
            }),
            "ltiResourceLink.url",
        ),
        (
            ContentItem::LtiResourceLink(LtiResourceLinkItem {
                thumbnail: bad(),
                ..resource_link()
            }),
            "ltiResourceLink.thumbnail.url",
        ),
        (
            ContentItem::LtiResourceLink(LtiResourceLinkItem {
                iframe: bad_frame(),
                ..resource_link()
            }),
            "ltiResourceLink.iframe.src",
        ),
        (
            ContentItem::Link(LinkItem {
                url: "https://tool.example.com/".into(),
                icon: bad(),
                ..Default::default()
            }),
            "link.icon.url",
        ),
        (
            ContentItem::Link(LinkItem {
                url: "https://tool.example.com/".into(),
                iframe: bad_frame(),
                ..Default::default()
            }),
            "link.iframe.src",
        ),
        (
            ContentItem::File(FileItem {
                url: "file:///etc/passwd".into(),
                ..Default::default()
            }),
            "file.url",
        ),
        (
            ContentItem::Image(ImageItem {
                url: "https://tool.example.com/i.png".into(),
                thumbnail: bad(),
                ..Default::default()
            }),
            "image.thumbnail.url",
        ),
    ];
    for (item, what) in cases {
        assert_eq!(refused(item), what);
    }
    // What a tool sends: any case of the scheme, ports, queries, fragments,
    // non-ASCII paths; an LTI resource link may leave its URL out.
    let mut b = DeepLinkingResponseBuilder::new(&permissive(), "d");
    for url in [
        "https://tool.example.com/a?x=1#y",
        "HTTPS://TOOL.EXAMPLE.COM/",
        "http://127.0.0.1:3000/lti/app",
        "https://tool.example.com/caf\u{e9}",
    ] {
        b.add_item(link(url)).unwrap();
    }
    b.add_item(ContentItem::LtiResourceLink(LtiResourceLinkItem::default()))
        .unwrap();
    assert_eq!(b.items().len(), 5);
}
