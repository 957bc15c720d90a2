//! The HTML pages a beneficiary sees: sign-in, consent, and error pages.

use std::fmt::Write as _;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
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

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #f1f1f1; margin: 0; color: #1b1b1b; }}
  header {{ background: #0b4778; color: #fff; padding: 12px 24px; font-weight: 600; }}
  main {{ max-width: 480px; margin: 32px auto; background: #fff; padding: 24px 32px; border-radius: 6px; box-shadow: 0 1px 3px #0003; }}
  label {{ display: block; margin: 12px 0 4px; font-weight: 600; }}
  input[type=text], input[type=password] {{ width: 100%; padding: 8px; box-sizing: border-box; font-size: 16px; }}
  button {{ padding: 10px 18px; font-size: 16px; margin: 16px 8px 0 0; border-radius: 4px; border: 1px solid #0b4778; cursor: pointer; }}
  button.primary {{ background: #0b4778; color: #fff; }}
  .error {{ color: #b50909; font-weight: 600; }}
  .note {{ color: #555; font-size: 14px; }}
  ul {{ padding-left: 20px; }}
</style>
</head>
<body>
<header>Medicare.gov — Blue Button 2.0 sandbox (offline emulator)</header>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The sign-in page of the mock Medicare login: a form posting the credentials and `hidden`
/// to `action`.
pub(crate) fn login_page(action: &str, hidden: &[(&str, &str)], error: Option<&str>) -> String {
    let mut body = String::from("<h1>Log in to Medicare.gov</h1>\n");
    if let Some(error) = error {
        let _ = writeln!(
            body,
            r#"<p class="error" role="alert">{}</p>"#,
            escape(error)
        );
    }
    let _ = writeln!(
        body,
        r#"<form method="post" action="{}" id="login-form">"#,
        escape(action)
    );
    for (name, value) in hidden {
        let _ = writeln!(
            body,
            r#"<input type="hidden" name="{}" value="{}">"#,
            escape(name),
            escape(value)
        );
    }
    body.push_str(
        r#"<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" class="primary" id="login-submit">Log in</button>
</form>
<p class="note">Synthetic users: BBUser00000 … BBUser00029, passwords PW00000! … PW00029!</p>
"#,
    );
    layout("Log in — Medicare.gov", &body)
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
    let mut body = format!(
        "<h1>Allow {app} to access your Medicare claims data?</h1>\n<p>Signed in as {user}.</p>\n<p>{app} will be able to see:</p>\n<ul id=\"scopes\">\n",
        app = escape(page.app_name),
        user = escape(page.username),
    );
    for scope in page.scopes {
        let _ = writeln!(body, "<li>{}</li>", escape(scope));
    }
    let _ = write!(
        body,
        "</ul>\n<p class=\"note\">{}</p>\n<form method=\"post\" action=\"{}\" id=\"consent-form\">\n",
        escape(page.expiry_text),
        escape(page.action),
    );
    for (name, value) in page.fields {
        let _ = writeln!(
            body,
            r#"<input type="hidden" name="{}" value="{}">"#,
            escape(name),
            escape(value)
        );
    }
    if page.ask_demographics {
        body.push_str(
            r#"<label><input type="checkbox" id="share-demographics" name="share_demographic_scopes" value="True" checked> Share personal information (name, date of birth, address)</label>
"#,
        );
    }
    body.push_str(
        r#"<button type="submit" class="primary" name="allow" value="True" id="allow">Allow</button>
<button type="submit" name="allow" value="False" id="deny">Deny</button>
</form>
"#,
    );
    layout("Authorize — Medicare.gov", &body)
}

/// A bare error page.
pub(crate) fn error_page(title: &str, message: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1>\n<p class=\"error\">{}</p>\n",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let page = login_page(
            "/login",
            &[("next", "/v2/o/authorize/?a=1&b=\"><script>")],
            None,
        );
        assert!(!page.contains("<script>"));
        assert!(page.contains("&amp;b=&quot;&gt;&lt;script&gt;"));
    }
}
