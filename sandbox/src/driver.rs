//! A small client that goes through the sandbox's real HTML pages the way a person in a
//! browser would: it follows the authorize request (through Blue Button's hops to the Medicare
//! login on its own origin and back), fills in the sign-in form, answers the consent form, and
//! stops at the redirect back to the app. Other crates' tests use it to get
//! real authorization codes without a browser (the browser suites drive Chromium instead).

use connect_medicare_protocol::AuthorizeRedirect;
use reqwest::{Client, Method, StatusCode, Url, header};

/// What the user answers on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    /// Allow (true) or Deny (false).
    pub allow: bool,
    /// Whether "share personal information" stays ticked.
    pub share_demographics: bool,
}

impl Consent {
    /// Allow, sharing personal information.
    pub const ALLOW: Consent = Consent {
        allow: true,
        share_demographics: true,
    };
    /// Allow, without personal information.
    pub const ALLOW_WITHOUT_DEMOGRAPHICS: Consent = Consent {
        allow: true,
        share_demographics: false,
    };
    /// Deny.
    pub const DENY: Consent = Consent {
        allow: false,
        share_demographics: false,
    };
}

/// Where the flow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A redirect out of the sandbox: the app's redirect URI with `code`/`error` and `state`.
    Redirected(String),
    /// A page the flow stopped on (an error page, or an unexpected page).
    Page {
        /// HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
}

/// One request the browser made, and its answer's status and headers.
#[derive(Debug, Clone)]
pub struct Hop {
    /// GET or POST.
    pub method: Method,
    /// The URL requested.
    pub url: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub headers: reqwest::header::HeaderMap,
}

/// Why driving the pages failed.
#[derive(Debug)]
pub enum DriverError {
    /// The HTTP request failed.
    Http(reqwest::Error),
    /// The page did not look as expected.
    Page(String),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Http(e) => write!(f, "HTTP error: {e}"),
            DriverError::Page(what) => write!(f, "unexpected page: {what}"),
        }
    }
}

impl std::error::Error for DriverError {}

impl From<reqwest::Error> for DriverError {
    fn from(e: reqwest::Error) -> Self {
        DriverError::Http(e)
    }
}

/// A cookie-keeping client for one "person".
#[derive(Debug, Clone)]
pub struct Browser {
    client: Client,
    origin: String,
}

impl Browser {
    /// A browser with an empty cookie jar, for a sandbox at `origin`.
    pub fn new(origin: &str) -> Result<Self, DriverError> {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            origin: origin.trim_end_matches('/').to_owned(),
        })
    }

    /// Follows `start` through sign-in (as `username` / `password`) and consent, and returns
    /// where it ended.
    pub async fn authorize(
        &self,
        start: &AuthorizeRedirect,
        username: &str,
        password: &str,
        consent: Consent,
    ) -> Result<Outcome, DriverError> {
        let (outcome, _) = self
            .authorize_traced(start, username, password, consent)
            .await?;
        Ok(outcome)
    }

    /// As [`Browser::authorize`], with every request made on the way and its answer's status
    /// and headers.
    pub async fn authorize_traced(
        &self,
        start: &AuthorizeRedirect,
        username: &str,
        password: &str,
        consent: Consent,
    ) -> Result<(Outcome, Vec<Hop>), DriverError> {
        let mut hops = Vec::new();
        let (mut method, mut url, mut form) = match start {
            AuthorizeRedirect::Get { url } => (Method::GET, url.clone(), Vec::new()),
            AuthorizeRedirect::Post { action, fields } => {
                (Method::POST, action.clone(), fields.clone())
            }
        };
        let back_to_app = redirect_uri(start);
        for _ in 0..20 {
            let mut request = self.client.request(method.clone(), &url);
            if method == Method::POST {
                request = request.form(&form);
            }
            let response = request.send().await?;
            let status = response.status();
            hops.push(Hop {
                method: method.clone(),
                url: url.clone(),
                status: status.as_u16(),
                headers: response.headers().clone(),
            });
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| DriverError::Page("redirect without Location".into()))?;
                let next = resolve(&url, location)?;
                if self.leaves_for_app(&next, back_to_app.as_deref()) {
                    return Ok((Outcome::Redirected(next), hops));
                }
                // A browser re-sends a 301/302/303 as a bodiless GET.
                (method, url, form) = (Method::GET, next, Vec::new());
                continue;
            }
            let body = response.text().await?;
            if status != StatusCode::OK {
                let status = status.as_u16();
                return Ok((Outcome::Page { status, body }, hops));
            }
            if body.contains("Invalid username or password.") {
                // The sign-in page came back: the credentials were refused.
                return Ok((Outcome::Page { status: 200, body }, hops));
            }
            if let Some(login) = Form::find(&body, "login-form") {
                let mut fields = login.hidden;
                fields.push(("username".into(), username.into()));
                fields.push(("password".into(), password.into()));
                (method, url, form) = (Method::POST, resolve(&url, &login.action)?, fields);
                continue;
            }
            if let Some(consent_form) = Form::find(&body, "consent-form") {
                let mut fields = consent_form.hidden;
                if consent.share_demographics && consent_form.has_demographics_choice {
                    fields.push(("share_demographic_scopes".into(), "True".into()));
                }
                let allow = if consent.allow { "True" } else { "False" };
                fields.push(("allow".into(), allow.into()));
                let action = resolve(&url, &consent_form.action)?;
                (method, url, form) = (Method::POST, action, fields);
                continue;
            }
            return Ok((Outcome::Page { status: 200, body }, hops));
        }
        Err(DriverError::Page("more than 20 steps".into()))
    }

    /// Whether a redirect to `next` is the way back to the app: its redirect URI when the
    /// request named one, else anything outside the sandbox but its login.
    fn leaves_for_app(&self, next: &str, redirect_uri: Option<&str>) -> bool {
        match redirect_uri {
            Some(back) => next
                .strip_prefix(back)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['?', '#'])),
            None => {
                !next.starts_with(&format!("{}/", self.origin))
                    && !Url::parse(next).is_ok_and(|u| u.path().starts_with("/sso/"))
            }
        }
    }
}

/// The `redirect_uri` the authorize request names.
fn redirect_uri(start: &AuthorizeRedirect) -> Option<String> {
    match start {
        AuthorizeRedirect::Get { url } => Url::parse(url)
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned()),
        AuthorizeRedirect::Post { fields, .. } => fields
            .iter()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.clone()),
    }
}

/// `location` resolved against the page it came from, as a browser does.
fn resolve(base: &str, location: &str) -> Result<String, DriverError> {
    Url::parse(base)
        .and_then(|b| b.join(location))
        .map(String::from)
        .map_err(|e| DriverError::Page(format!("unusable location {location:?}: {e}")))
}

/// A form found in one of the sandbox's pages.
struct Form {
    action: String,
    hidden: Vec<(String, String)>,
    has_demographics_choice: bool,
}

impl Form {
    /// The form with `id` in `html`, with its hidden fields.
    fn find(html: &str, id: &str) -> Option<Form> {
        let marker = format!("id=\"{id}\"");
        let at = html.find(&marker)?;
        let open = html[..at].rfind("<form")?;
        let close = html[open..].find("</form>")? + open;
        let tag_end = html[open..].find('>')? + open;
        let action = attribute(&html[open..tag_end], "action")?;
        let mut hidden = Vec::new();
        let mut has_demographics_choice = false;
        let mut rest = &html[tag_end..close];
        while let Some(start) = rest.find("<input") {
            let end = rest[start..].find('>')? + start;
            let tag = &rest[start..end];
            let name = attribute(tag, "name");
            match attribute(tag, "type").as_deref() {
                Some("hidden") => {
                    if let Some(name) = name {
                        hidden.push((name, attribute(tag, "value").unwrap_or_default()));
                    }
                }
                Some("checkbox") if name.as_deref() == Some("share_demographic_scopes") => {
                    has_demographics_choice = true;
                }
                _ => {}
            }
            rest = &rest[end..];
        }
        Some(Form {
            action,
            hidden,
            has_demographics_choice,
        })
    }
}

/// The unescaped value of a double-quoted attribute.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}
