//! `docs/tutorial.md` shows this crate's code: every `rust` block of the
//! tutorial is one `ANCHOR` region of `src/` (so no snippet is left
//! uncompiled), every region is shown, and the `toml` block naming
//! `platform.toml` is that file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::blocks;

const TUTORIAL: &str = include_str!("../../../docs/tutorial.md");
const SOURCES: [(&str, &str); 2] = [
    ("src/lib.rs", include_str!("../src/lib.rs")),
    ("src/main.rs", include_str!("../src/main.rs")),
];
const PLATFORM_TOML: &str = include_str!("../platform.toml");

/// `(file, name, text)` of every region between `// ANCHOR: name` and
/// `// ANCHOR_END: name`.
fn regions() -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for (file, text) in SOURCES {
        let mut open: Option<(String, Vec<&str>)> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("// ANCHOR: ") {
                assert!(open.is_none(), "{file}: nested anchor {name}");
                open = Some((name.to_owned(), Vec::new()));
            } else if let Some(name) = line.strip_prefix("// ANCHOR_END: ") {
                let (start, lines) = open.take().expect("an open anchor");
                assert_eq!(start, name, "{file}: anchor {start} closed as {name}");
                out.push((file, start, lines.join("\n") + "\n"));
            } else if let Some((_, lines)) = open.as_mut() {
                lines.push(line);
            }
        }
        assert!(open.is_none(), "{file}: an anchor is not closed");
    }
    out
}

#[test]
fn every_rust_block_of_the_tutorial_is_a_region_of_the_sources() {
    let regions = regions();
    let rust = blocks(TUTORIAL, "rust");
    assert!(!rust.is_empty());
    for block in &rust {
        assert!(
            regions.iter().any(|(_, _, text)| text == block),
            "a rust block of docs/tutorial.md is not an ANCHOR region of examples/tutorial-tool/src (edit the source and copy the region):\n{block}"
        );
    }
    for (file, name, text) in &regions {
        assert!(
            rust.contains(text),
            "region {name} of {file} is not shown (verbatim) in docs/tutorial.md"
        );
    }
}

#[test]
fn the_tutorial_shows_platform_toml_as_it_is() {
    assert!(
        blocks(TUTORIAL, "toml").iter().any(|b| b == PLATFORM_TOML),
        "docs/tutorial.md must show examples/tutorial-tool/platform.toml verbatim"
    );
}

#[test]
fn the_anchor_reader_finds_every_region() {
    let names: Vec<String> = regions().into_iter().map(|(_, n, _)| n).collect();
    for name in [
        "state",
        "build_state",
        "app",
        "launched",
        "teacher",
        "done",
        "main",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "no region {name}: {names:?}"
        );
    }
}
