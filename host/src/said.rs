//! An error and its causes, each said once. Library errors often show their source in their own text and chain
//! it as well, so `{:#}` prints `cannot use X: File exists (os error 17): File exists (os error 17)`; [`once`]
//! skips a cause whose text the message already carries.

use std::fmt::Display;

/// The causes in `chain` (outermost first) joined by `: `, without one already said.
pub fn once<D: Display>(chain: impl IntoIterator<Item = D>) -> String {
    let mut out = String::new();
    for cause in chain {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::once;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot use /x: {source}")]
    struct Shows {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "File exists");
        let e = anyhow::Error::new(Shows { source: io }).context("opening the data dir");
        assert_eq!(
            format!("{e:#}"),
            "opening the data dir: cannot use /x: File exists: File exists"
        );
        assert_eq!(
            once(e.chain()),
            "opening the data dir: cannot use /x: File exists"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(once(plain.chain()), "outer: inner");
    }
}
