//! Reading the fenced code blocks of the documents these tests check.

/// The fenced code blocks of `text` whose info string is `info`, in order.
pub(crate) fn blocks(text: &str, info: &str) -> Vec<String> {
    let fence = format!("```{info}\n");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```\n").expect("a closed code block");
        out.push(body[..end].to_owned());
        rest = &body[end..];
    }
    out
}
