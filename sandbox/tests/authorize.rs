//! Discovery, the trailing-slash 301s, authorize-time errors, sign-in and consent — over
//! real HTTP, with Blue Button's statuses and bodies asserted verbatim.

mod common;

use common::*;
use connect_medicare_protocol::AuthorizeRedirect;
use connect_medicare_sandbox::driver::{Consent, Outcome};
use reqwest::header;
use serde_json::json;

#[tokio::test]
async fn smart_configuration_is_shaped_as_blue_buttons() {
    let sandbox = sandbox().await;
    let origin = sandbox.origin();
    let response = client()
        .get(format!("{origin}/v2/fhir/.well-known/smart-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert!(body.get("issuer").is_none(), "Blue Button's has no issuer");
    assert_eq!(
        body["authorization_endpoint"],
        format!("{origin}/v2/o/authorize")
    );
    assert_eq!(
        body["revocation_endpoint"],
        format!("{origin}/v2/o/revoke_token")
    );
    assert_eq!(body["code_challenge_methods_supported"], json!(["S256"]));
    let capabilities = body["capabilities"].as_array().unwrap();
    for needed in ["authorize-post", "permission-v1", "permission-v2"] {
        assert!(capabilities.iter().any(|c| c == needed), "{needed}");
    }
    assert_eq!(body["scopes_supported"].as_array().unwrap().len(), 9);
    assert!(
        !body["scopes_supported"]
            .to_string()
            .contains("offline_access")
    );

    let openid = json(
        client()
            .get(format!(
                "{origin}/v2/connect/.well-known/openid-configuration"
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(openid["issuer"], origin);
    assert_eq!(
        openid["userinfo_endpoint"],
        format!("{origin}/v2/connect/userinfo")
    );
}

#[tokio::test]
async fn unslashed_endpoints_answer_301_even_for_post() {
    let sandbox = sandbox().await;
    let origin = sandbox.origin();
    for (path, query) in [
        ("/v2/o/authorize", "?client_id=x&state=y"),
        ("/v2/o/revoke_token", ""),
        ("/v2/o/revoke", ""),
    ] {
        for post in [false, true] {
            let url = format!("{origin}{path}{query}");
            let request = if post {
                client().post(&url).form(&[("token", "t")])
            } else {
                client().get(&url)
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 301, "{path} post={post}");
            assert_eq!(
                response.headers()[header::LOCATION],
                format!("{path}/{query}").as_str()
            );
        }
    }
}

/// `GET /v2/o/authorize/` with `params`, no sign-in.
async fn authorize_get(
    sandbox: &connect_medicare_sandbox::Sandbox,
    params: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .get(format!("{}/v2/o/authorize/", sandbox.origin()))
        .query(params)
        .send()
        .await
        .unwrap()
}

const STATE: &str = "abcdefghijklmnopqrstuvwxyz012345";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test]
async fn authorize_errors_come_before_sign_in_verbatim() {
    let sandbox = sandbox().await;
    let base = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
    ];

    let response = authorize_get(&sandbox, &base).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"status_code":400,"message":"Missing Required Parameter(s): code_challenge, code_challenge_method, state"}"#
    );

    let mut short = base.to_vec();
    short.extend([
        ("state", "fifteen-chars-x"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let response = authorize_get(&sandbox, &short).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(response).await,
        json!({"status_code": 400, "message": "State parameter should have a minimum of 16 characters"})
    );

    let mut plain = base.to_vec();
    plain.extend([
        ("state", STATE),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "plain"),
    ]);
    let response = authorize_get(&sandbox, &plain).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(response).await,
        json!({"status_code": 400, "error": "invalid_request", "error_description": "code_challenge_method must be S256"})
    );

    let mut unknown = plain.clone();
    unknown[0] = ("client_id", "no-such-app");
    let response = authorize_get(&sandbox, &unknown).await;
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("invalid_client : Application does not exist")
    );

    let mut secret = plain.clone();
    secret.push(("client_secret", CLIENT_SECRET));
    let response = authorize_get(&sandbox, &secret).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.text().await.unwrap(),
        "Illegal query parameter [client_secret] detected"
    );

    let response = client()
        .post(format!("{}/v2/o/authorize/", sandbox.origin()))
        .form(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        json(response).await,
        json!({"status_code": 401, "message": "State required in POST body."})
    );
}

/// The `Location` of a redirect, resolved against the URL that answered it.
fn hop(from: &str, response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "{from}");
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    reqwest::Url::parse(from)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn anonymous_users_go_through_the_medicare_login_on_its_own_origin() {
    let sandbox = sandbox().await;
    assert_ne!(sandbox.login_origin(), sandbox.origin());
    for (seed, post) in [(1u8, false), (5, true)] {
        let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, seed);
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // 1. The authorize request (GET, or a form POST) → Blue Button's own login hop, with
        //    every parameter (a POST's body too) in `next`.
        let start = flow.request.to_redirect(post);
        let (first_url, first) = match &start {
            AuthorizeRedirect::Get { url } => (url.clone(), browser.get(url).send().await),
            AuthorizeRedirect::Post { action, fields } => (
                action.clone(),
                browser.post(action).form(fields).send().await,
            ),
        };
        let login_hop = hop(&first_url, &first.unwrap());
        let url = reqwest::Url::parse(&login_hop).unwrap();
        assert_eq!(url.origin().ascii_serialization(), sandbox.origin());
        assert_eq!(url.path(), "/mymedicare/login");
        let next = param(&login_hop, "next").unwrap();
        assert!(next.starts_with("/v2/o/authorize/?"), "{next}");
        assert_eq!(
            param(&format!("http://x{next}"), "state").as_deref(),
            Some(flow.state.as_str())
        );

        // 2. → the Medicare login, on the other origin, told to come back to Blue Button.
        let medicare = hop(&login_hop, &browser.get(&login_hop).send().await.unwrap());
        assert!(
            medicare.starts_with(&format!("{}/sso/authorize?", sandbox.login_origin())),
            "{medicare}"
        );
        assert_eq!(param(&medicare, "client_id").as_deref(), Some("bb2api"));
        assert_eq!(
            param(&medicare, "redirect_uri").unwrap(),
            format!("{}/mymedicare/sls-callback", sandbox.origin())
        );
        let relay = param(&medicare, "relay").unwrap();
        let page = page_text(&browser, &medicare).await;
        assert!(page.contains(r#"id="login-form""#));
        assert!(page.contains("BBUser00000"));

        // 3. The credentials → back to Blue Button with a one-time request token.
        let callback = medicare_sign_in(&sandbox, &relay).await;
        assert!(callback.starts_with(&format!("{}/mymedicare/sls-callback?", sandbox.origin())));
        assert_eq!(param(&callback, "relay").unwrap(), relay);

        // 4. Signed in to Blue Button → the authorize request again: the consent page.
        let consent_url = hop(&callback, &browser.get(&callback).send().await.unwrap());
        assert_eq!(consent_url, format!("{}{next}", sandbox.origin()));
        let page = page_text(&browser, &consent_url).await;
        assert!(page.contains(r#"id="consent-form""#), "{page}");

        // The request token and the relay were for one use.
        let again = browser.get(&callback).send().await.unwrap();
        assert_eq!(again.status(), 400);
        assert_eq!(
            json(again).await,
            json!({"error": "The requested state was not found"})
        );
    }
}

/// The text of the page at `url`, fetched by `browser`.
async fn page_text(browser: &reqwest::Client, url: &str) -> String {
    browser.get(url).send().await.unwrap().text().await.unwrap()
}

/// Blue Button's login hop for `next`: the relay it gives out.
async fn relay_for(sandbox: &connect_medicare_sandbox::Sandbox, next: &str) -> String {
    let hop = client()
        .get(format!("{}/mymedicare/login?next={next}", sandbox.origin()))
        .send()
        .await
        .unwrap();
    param(hop.headers()[header::LOCATION].to_str().unwrap(), "relay").unwrap()
}

/// Signs in at the Medicare login for `relay`: where it sends the browser back to.
async fn medicare_sign_in(sandbox: &connect_medicare_sandbox::Sandbox, relay: &str) -> String {
    let answer = client()
        .post(format!("{}/sso/authorize", sandbox.login_origin()))
        .form(&[
            ("client_id", "bb2api"),
            ("relay", relay),
            (
                "redirect_uri",
                &format!("{}/mymedicare/sls-callback", sandbox.origin()),
            ),
            ("username", "BBUser00001"),
            ("password", "PW00001!"),
        ])
        .send()
        .await
        .unwrap();
    answer.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_medicare_login_sends_nobody_anywhere_but_blue_button() {
    let sandbox = sandbox().await;
    let elsewhere = format!(
        "{}/sso/authorize?client_id=bb2api&relay=r&redirect_uri=http%3A%2F%2Fevil.example%2F",
        sandbox.login_origin()
    );
    assert_eq!(client().get(&elsewhere).send().await.unwrap().status(), 400);
    let answer = client()
        .post(format!("{}/sso/authorize", sandbox.login_origin()))
        .form(&[
            ("client_id", "bb2api"),
            ("relay", "r"),
            ("redirect_uri", "http://evil.example/"),
            ("username", "BBUser00001"),
            ("password", "PW00001!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert!(answer.headers().get(header::LOCATION).is_none());
    // A request token is for its own relay, once; `next` only ever leads back to authorize.
    let (a, b) = (
        relay_for(&sandbox, "/x").await,
        relay_for(&sandbox, "/%09/evil.example").await,
    );
    let back_a = medicare_sign_in(&sandbox, &a).await;
    let ticket_a = param(&back_a, "req_token").unwrap();
    let crossed = client()
        .get(format!(
            "{}/mymedicare/sls-callback?req_token={ticket_a}&relay={b}",
            sandbox.origin()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), 400, "a ticket works only with its relay");
    let back_b = medicare_sign_in(&sandbox, &b).await;
    let signed_in = client().get(&back_b).send().await.unwrap();
    assert_eq!(signed_in.status(), 302);
    let location = signed_in.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/v2/o/authorize/?"), "{location}");
    let replayed = client().get(&back_b).send().await.unwrap();
    assert_eq!(replayed.status(), 400, "one use");
    // Relay a is still usable with its own ticket (the crossed attempt used up nothing).
    assert_eq!(client().get(&back_a).send().await.unwrap().status(), 302);

    // Blue Button's callback without its relay, or with one it never gave out.
    let no_relay = client()
        .get(format!(
            "{}/mymedicare/sls-callback?req_token=x",
            sandbox.origin()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(no_relay.status(), 400);
    assert_eq!(
        json(no_relay).await,
        json!({"error": "The state parameter is required"})
    );
}

#[tokio::test]
async fn sign_in_and_consent_through_the_pages_get_and_post() {
    let sandbox = sandbox().await;
    for (seed, post) in [(2u8, false), (3, true)] {
        let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, seed);
        let start = flow.request.to_redirect(post);
        match consent(&sandbox, &start, 7, Consent::ALLOW).await {
            Outcome::Redirected(url) => {
                assert!(
                    url.starts_with("http://localhost:8080/callback?code="),
                    "{url}"
                );
                assert_eq!(param(&url, "state").as_deref(), Some(flow.state.as_str()));
                let body =
                    json(redeem(&sandbox, CLIENT_ID, &flow, &param(&url, "code").unwrap()).await)
                        .await;
                assert_eq!(body["patient"], "-20140000008332");
                assert_eq!(body["scope"], ALL_SCOPES);
            }
            other => panic!("post={post}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn wrong_password_stays_on_sign_in() {
    let sandbox = sandbox().await;
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 4);
    let outcome = connect_medicare_sandbox::driver::Browser::new(sandbox.origin())
        .unwrap()
        .authorize(
            &flow.request.to_redirect(false),
            "BBUser00001",
            "PW00002!",
            Consent::ALLOW,
        )
        .await
        .unwrap();
    match outcome {
        Outcome::Page { status, body } => {
            assert_eq!(status, 200);
            assert!(body.contains("Invalid username or password."));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_state() {
    let sandbox = sandbox().await;
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 5);
    match consent(&sandbox, &flow.request.to_redirect(false), 0, Consent::DENY).await {
        Outcome::Redirected(url) => assert_eq!(
            url,
            format!(
                "{REDIRECT_URI}?error=access_denied&state={}",
                flow.state.as_str()
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn withheld_demographics_drop_profile_and_patient_scopes() {
    let sandbox = sandbox().await;
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 6);
    let url = match consent(
        &sandbox,
        &flow.request.to_redirect(false),
        2,
        Consent::ALLOW_WITHOUT_DEMOGRAPHICS,
    )
    .await
    {
        Outcome::Redirected(url) => url,
        other => panic!("{other:?}"),
    };
    let body = json(redeem(&sandbox, CLIENT_ID, &flow, &param(&url, "code").unwrap()).await).await;
    assert_eq!(
        body["scope"],
        "openid launch/patient patient/Coverage.rs patient/ExplanationOfBenefit.rs"
    );
    let token = body["access_token"].as_str().unwrap();
    let patient = get(&sandbox, "/v2/fhir/Patient", token).await;
    assert_eq!(patient.status(), 403);
    assert_eq!(
        json(patient).await,
        json!({"detail": "You do not have permission to perform this action."})
    );
    let userinfo = get(&sandbox, "/v2/connect/userinfo", token).await;
    assert_eq!(userinfo.status(), 403);
    assert_eq!(
        get(&sandbox, "/v2/fhir/Coverage", token).await.status(),
        200
    );
}

/// An authorize request with a raw `scope` value (or none), built by hand: the protocol crate
/// refuses to build these, which is the point.
fn raw_start(
    sandbox: &connect_medicare_sandbox::Sandbox,
    scope: Option<&str>,
) -> (AuthorizeRedirect, String) {
    let flow = flow(sandbox, CLIENT_ID, "openid", 9);
    let mut url = reqwest::Url::parse(&flow.request.url()).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "scope")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
    }
    (
        AuthorizeRedirect::Get {
            url: url.to_string(),
        },
        flow.state.as_str().to_owned(),
    )
}

#[tokio::test]
async fn unlisted_or_empty_scopes_end_on_the_invalid_scopes_page_after_sign_in() {
    let sandbox = sandbox().await;
    for scope in ["openid offline_access", ""] {
        let (start, _) = raw_start(&sandbox, Some(scope));
        // Before sign-in nothing is wrong yet: the user is sent to log in first.
        let first = client()
            .get(match &start {
                AuthorizeRedirect::Get { url } => url.clone(),
                _ => unreachable!(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 302);
        match consent(&sandbox, &start, 3, Consent::ALLOW).await {
            Outcome::Page { status, body } => {
                assert_eq!(status, 400, "{scope:?}");
                assert_eq!(
                    body, r#"{"status_code":400,"message":"Invalid scopes."}"#,
                    "{scope:?}"
                );
            }
            other => panic!("{scope:?}: never a redirect, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_scope_grants_every_scope_the_app_has() {
    let sandbox = sandbox().await;
    let (start, state) = raw_start(&sandbox, None);
    let url = match consent(&sandbox, &start, 4, Consent::ALLOW).await {
        Outcome::Redirected(url) => url,
        other => panic!("{other:?}"),
    };
    assert_eq!(param(&url, "state").as_deref(), Some(state.as_str()));
    let code = param(&url, "code").unwrap();
    let flow = flow(&sandbox, CLIENT_ID, "openid", 9);
    let body = json(redeem(&sandbox, CLIENT_ID, &flow, &code).await).await;
    assert_eq!(
        body["scope"],
        "openid profile launch/patient patient/Patient.read patient/ExplanationOfBenefit.read \
         patient/Coverage.read patient/Patient.rs patient/ExplanationOfBenefit.rs patient/Coverage.rs"
    );
}

#[tokio::test]
async fn redirect_uri_is_checked_after_sign_in_and_never_redirected_to() {
    let sandbox = sandbox().await;
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 10);
    let url = flow
        .request
        .url()
        .replace("localhost%3A8080%2Fcallback", "evil.example%2Fcallback");
    match consent(&sandbox, &AuthorizeRedirect::Get { url }, 1, Consent::ALLOW).await {
        Outcome::Page { status, body } => {
            assert_eq!(status, 400);
            assert!(body.contains("Mismatching redirect URI."));
        }
        other => panic!("{other:?}"),
    }
}
