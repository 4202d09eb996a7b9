//! The page frame (head, navigation, the read-only note) and HTML escaping. Views build their bodies as strings
//! with every dynamic value passed through [`esc`].

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The views, in navigation order: (path, label).
pub const VIEWS: [(&str, &str); 5] = [
    ("/ui/plugins", "Plugins"),
    ("/ui/quotas", "Quotas"),
    ("/ui/calls", "Calls"),
    ("/ui/charts", "Charts"),
    ("/ui/ledger", "Ledger"),
];

/// A rendered page.
#[derive(Debug)]
pub struct Html(pub String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut r = self.0.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    }
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `active` is the current view's path (`None` for the sign-in page, which has no navigation).
pub fn frame(title: &str, active: Option<&str>, body: &str) -> String {
    let nav = match active {
        Some(active) => {
            let links: String = VIEWS
                .iter()
                .map(|(path, label)| {
                    let current = if *path == active {
                        " aria-current=\"page\""
                    } else {
                        ""
                    };
                    format!("<li><a href=\"{path}\"{current}>{label}</a></li>")
                })
                .collect();
            format!(
                "<nav aria-label=\"Views\"><ul>{links}</ul>\
                 <form method=\"post\" action=\"/ui/logout\"><button type=\"submit\">Sign out</button></form></nav>"
            )
        }
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · plughost</title><link rel=\"stylesheet\" href=\"/ui/assets/style.css\">\
         <script src=\"/ui/assets/app.js\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><a class=\"brand\" href=\"/ui\">plughost</a>{nav}</header><main id=\"main\" tabindex=\"-1\">{body}</main>\
         <footer>Read-only. Grants, installs, limits and config are changed on the CLI \
         (<code>plughost grant</code>, <code>install</code>, <code>limits</code>, <code>config</code>).</footer>\
         </body></html>",
        esc(title)
    )
}

/// A page whose data could not be read: the reason, in the frame.
pub fn unavailable(title: &str, active: &str, why: &str) -> Html {
    Html(frame(
        title,
        Some(active),
        &format!(
            "<h1>{}</h1><p class=\"error\" role=\"alert\">Cannot show this: {}</p>",
            esc(title),
            esc(why)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
