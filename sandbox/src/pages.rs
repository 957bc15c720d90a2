//! The HTML pages a beneficiary sees: sign-in, consent, and error pages.
//!
//! Written with maud's `html!`: every interpolated value (a client's name, a redirect URI, a
//! `state`, an error's text) is escaped for HTML by the engine, in element content and in
//! (double-quoted) attributes alike; only the constant style sheet goes in as it is.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The pages' style sheet.
const STYLE: &str = "
  body { font-family: system-ui, sans-serif; background: #f1f1f1; margin: 0; color: #1b1b1b; }
  header { background: #0b4778; color: #fff; padding: 12px 24px; font-weight: 600; }
  main { max-width: 480px; margin: 32px auto; background: #fff; padding: 24px 32px; border-radius: 6px; box-shadow: 0 1px 3px #0003; }
  label { display: block; margin: 12px 0 4px; font-weight: 600; }
  input[type=text], input[type=password] { width: 100%; padding: 8px; box-sizing: border-box; font-size: 16px; }
  button { padding: 10px 18px; font-size: 16px; margin: 16px 8px 0 0; border-radius: 4px; border: 1px solid #0b4778; cursor: pointer; }
  button.primary { background: #0b4778; color: #fff; }
  .error { color: #b50909; font-weight: 600; }
  .note { color: #555; font-size: 14px; }
  ul { padding-left: 20px; }
";

fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="icon" href="data:,";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { "Medicare.gov — Blue Button 2.0 sandbox (offline emulator)" }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// `<input type="hidden">` for each field.
fn hidden_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Markup {
    html! {
        @for (name, value) in fields {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// The sign-in page of the mock Medicare login: a form posting the credentials and `hidden`
/// to `action`.
pub(crate) fn login_page(action: &str, hidden: &[(&str, &str)], error: Option<&str>) -> String {
    let body = html! {
        h1 { "Log in to Medicare.gov" }
        @if let Some(error) = error {
            p class="error" role="alert" { (error) }
        }
        form method="post" action=(action) id="login-form" {
            (hidden_fields(hidden.iter().copied()))
            label for="username" { "Username" }
            input type="text" id="username" name="username" autocomplete="username" required;
            label for="password" { "Password" }
            input type="password" id="password" name="password" autocomplete="current-password" required;
            button type="submit" class="primary" id="login-submit" { "Log in" }
        }
        p class="note" { "Synthetic users: BBUser00000 … BBUser00029, passwords PW00000! … PW00029!" }
    };
    layout("Log in — Medicare.gov", body)
}

/// What the consent page shows and posts back.
pub(crate) struct ConsentPage<'a> {
    pub(crate) app_name: &'a str,
    pub(crate) action: &'a str,
    pub(crate) fields: &'a [(String, String)],
    pub(crate) scopes: &'a [String],
    pub(crate) ask_demographics: bool,
    pub(crate) expiry_text: &'a str,
    pub(crate) username: &'a str,
}

/// The consent page: what the app asks for, the "share personal information" choice, and
/// Allow / Deny.
pub(crate) fn consent_page(page: &ConsentPage<'_>) -> String {
    let body = html! {
        h1 { "Allow " (page.app_name) " to access your Medicare claims data?" }
        p { "Signed in as " (page.username) "." }
        p { (page.app_name) " will be able to see:" }
        ul id="scopes" {
            @for scope in page.scopes {
                li { (scope) }
            }
        }
        p class="note" { (page.expiry_text) }
        form method="post" action=(page.action) id="consent-form" {
            (hidden_fields(page.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            @if page.ask_demographics {
                label {
                    input type="checkbox" id="share-demographics" name="share_demographic_scopes" value="True" checked;
                    " Share personal information (name, date of birth, address)"
                }
            }
            button type="submit" class="primary" name="allow" value="True" id="allow" { "Allow" }
            button type="submit" name="allow" value="False" id="deny" { "Deny" }
        }
    };
    layout("Authorize — Medicare.gov", body)
}

/// A bare error page.
pub(crate) fn error_page(title: &str, message: &str) -> String {
    let body = html! {
        h1 { (title) }
        p class="error" { (message) }
    };
    layout(title, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that would run a script in element content, and one that would leave a
    /// double-quoted attribute.
    const SCRIPT: &str = "<script>alert(1)</script>";
    const QUOTE: &str = r#"x" onfocus="alert(1)"#;

    /// Neither hostile value appears as markup, and each appears escaped.
    fn assert_escaped(page: &str) {
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains(r#"" onfocus=""#), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("x&quot; onfocus=&quot;alert(1)"), "{page}");
    }

    #[test]
    fn the_login_page_escapes_its_fields_action_and_error() {
        let page = login_page(
            "/login?a=1&b=\"><script>",
            &[("next", SCRIPT), ("relay", QUOTE)],
            Some(SCRIPT),
        );
        assert_escaped(&page);
        assert!(page.contains(r#"action="/login?a=1&amp;b=&quot;&gt;&lt;script&gt;""#));
        assert!(page.contains(
            r#"<input type="hidden" name="relay" value="x&quot; onfocus=&quot;alert(1)">"#
        ));
        assert!(page.contains(r#"<p class="error" role="alert">&lt;script&gt;"#));
    }

    #[test]
    fn the_consent_page_escapes_the_app_scopes_and_authorize_fields() {
        let fields = [
            ("redirect_uri".to_owned(), QUOTE.to_owned()),
            ("state".to_owned(), SCRIPT.to_owned()),
        ];
        let scopes = [SCRIPT.to_owned()];
        let page = consent_page(&ConsentPage {
            app_name: SCRIPT,
            action: QUOTE,
            fields: &fields,
            scopes: &scopes,
            ask_demographics: true,
            expiry_text: SCRIPT,
            username: QUOTE,
        });
        assert_escaped(&page);
        assert!(page.contains(r#"<input type="hidden" name="state" value="&lt;script&gt;"#));
        assert!(page.contains(r#"<form method="post" action="x&quot; onfocus="#));
        assert!(page.contains("<h1>Allow &lt;script&gt;"));
        assert!(page.contains("<li>&lt;script&gt;"));
    }

    #[test]
    fn the_error_page_escapes_its_title_and_message() {
        let page = error_page(
            QUOTE,
            &format!("invalid_request : Duplicate {SCRIPT} parameter."),
        );
        assert_escaped(&page);
        assert!(page.contains("<title>x&quot; onfocus=&quot;alert(1)</title>"));
        assert!(page.contains("Duplicate &lt;script&gt;alert(1)&lt;/script&gt; parameter."));
    }
}
