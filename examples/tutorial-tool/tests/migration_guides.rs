//! The configuration shown in the migration guides is what `lti serve`
//! accepts: every `toml` block parses with `lti_app::Config::parse`, and the
//! PyLTI1.3 guide's conversion script, run on the guide's `config.json`,
//! prints the guide's `[[platforms]]` block.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::blocks;

const GUIDES: [(&str, &str); 2] = [
    (
        "docs/migrating-from-ltijs.md",
        include_str!("../../../docs/migrating-from-ltijs.md"),
    ),
    (
        "docs/migrating-from-pylti1p3.md",
        include_str!("../../../docs/migrating-from-pylti1p3.md"),
    ),
];

#[test]
fn every_toml_block_of_the_guides_is_a_valid_lti_serve_configuration() {
    let mut platforms = 0;
    for (name, text) in GUIDES {
        let tomls = blocks(text, "toml");
        assert!(!tomls.is_empty(), "{name} shows no configuration");
        for block in tomls {
            let config = lti_app::Config::parse(&block).unwrap_or_else(|problems| {
                panic!("{name}: a toml block is not a valid lti serve configuration: {problems:?}\n{block}")
            });
            platforms += config.platforms.len();
        }
    }
    // ltijs: one; PyLTI1.3: three converted, three in the complete file.
    assert_eq!(platforms, 7);
}

#[test]
fn the_pylti1p3_conversion_script_prints_the_documented_platforms() {
    let (_, guide) = GUIDES[1];
    let json = blocks(guide, "json");
    let script = blocks(guide, "python");
    let tomls = blocks(guide, "toml");
    assert_eq!(
        (json.len(), script.len()),
        (1, 1),
        "one config.json, one script"
    );
    let Ok(python) = which_python() else {
        eprintln!("skipped: no python3 on PATH to run the guide's conversion script");
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "tutorial-tool-pylti1p3-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), &json[0]).unwrap();
    std::fs::write(dir.join("convert.py"), &script[0]).unwrap();
    let output = std::process::Command::new(python)
        .arg(dir.join("convert.py"))
        .arg(dir.join("config.json"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed, tomls[0], "the guide shows the script's output");
    assert!(
        output.stderr.is_empty(),
        "nothing to report for the example: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which_python() -> Result<&'static str, std::io::Error> {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .map(|_| "python3")
}
