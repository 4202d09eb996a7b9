//! Errors say each thing once: printed as a chain (`outer: cause: …`, the way the CLI prints them), no message
//! repeats its cause's text.

use std::error::Error;

/// The error and its sources joined the way anyhow's `{:#}` does.
fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

#[test]
fn a_data_dir_that_cannot_be_created_is_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"").expect("write");
    let home = plughost::Home::at(file.join("home"));
    let Err(e) = plughost::Host::open(&home) else {
        panic!("a data dir under a file cannot be created");
    };
    let text = chain(&e);
    let cause = "Not a directory (os error 20)";
    assert_eq!(text.matches(cause).count(), 1, "{text}");
}
