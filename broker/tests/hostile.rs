//! The project's own hostile suite: what an attacker sends the broker, class by class, each case
//! with its safe outcome — the status and stable error code, nothing reaching the provider that
//! should not, no cookie set or kept that should not be, and the session still working
//! afterwards. Requests go over a raw socket, so anything can be sent (encoded separators, CRLF,
//! absolute targets) exactly as written.
//!
//! `scripts/hostile.sh` runs this file with the other hostile-class tests and prints the totals
//! `SECURITY.md` reports: each case here prints one `hostile:` line.

mod common;

use std::fmt::Write as _;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An answer read off the socket.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim())
            })
            .collect()
    }

    fn code(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()?
            .get("code")?
            .as_str()
            .map(str::to_owned)
    }
}

/// Sends `request` (a whole HTTP/1.1 request but its `Host` and `Connection: close`, added
/// here after the request line) and reads the answer to the end.
async fn send(base: &str, request: &str) -> Answer {
    let addr = base.trim_start_matches("http://");
    let (line, rest) = request.split_once("\r\n").expect("a request line");
    let mut wire = format!("{line}\r\nHost: {addr}\r\nConnection: close\r\n{rest}");
    if !wire.contains("\r\n\r\n") {
        // A request without a body ends at its headers' blank line.
        wire.push_str("\r\n");
    }
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(wire.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // Bodies come chunked or sized; error bodies are small JSON objects either way.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) if start < end => body[start..=end].to_owned(),
        _ => String::new(),
    };
    Answer {
        status: head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0),
        head: head.to_owned(),
        body,
    }
}

/// The safe outcome a case must have.
struct Expect {
    status: u16,
    /// The stable error code, when the answer is an error body.
    code: Option<&'static str>,
}

const fn refused(status: u16, code: &'static str) -> Expect {
    Expect {
        status,
        code: Some(code),
    }
}

struct Case {
    class: &'static str,
    name: &'static str,
    /// The request, without `Host` and `Connection`; `{session}` is the signed-in browser's
    /// `Cookie` and CSRF headers, `{me}` its patient.
    request: String,
    expect: Expect,
    /// Whether the provider may see a request because of it.
    reaches_provider: bool,
    /// Whether the answer must expire the session cookie the browser sent.
    clears_session: bool,
}

fn case(class: &'static str, name: &'static str, request: &str, expect: Expect) -> Case {
    Case {
        class,
        name,
        request: request.to_owned(),
        expect,
        reaches_provider: false,
        clears_session: false,
    }
}

const FHIR_CALLS: &str = r#"cm_broker_upstream_seconds_count{call="fhir"}"#;

fn cases() -> Vec<Case> {
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\n{{session}}\r\n");
    let not_allowed = || refused(403, "not_allowed");
    let invalid = || refused(400, "invalid_request");
    let mut cases = vec![
        // The proxy: traversal, encoded separators and other targets than the provider's.
        case(
            "proxy",
            "dot-dot id",
            &get("/v1/fhir/medicare/Patient/.."),
            not_allowed(),
        ),
        case(
            "proxy",
            "encoded dot-dot id",
            &get("/v1/fhir/medicare/Patient/%2e%2e"),
            not_allowed(),
        ),
        case(
            "proxy",
            "upper-case encoded dot",
            &get("/v1/fhir/medicare/Patient/%2E"),
            not_allowed(),
        ),
        case(
            "proxy",
            "encoded traversal to another path",
            &get("/v1/fhir/medicare/Coverage/..%2F..%2Fadmin"),
            not_allowed(),
        ),
        case(
            "proxy",
            "traversal in the type",
            &get("/v1/fhir/medicare/..%2FPatient/x"),
            not_allowed(),
        ),
        case(
            "proxy",
            "encoded slash in the id",
            &get("/v1/fhir/medicare/Coverage/a%2Fb"),
            not_allowed(),
        ),
        case(
            "proxy",
            "encoded backslash in the id",
            &get("/v1/fhir/medicare/Coverage/a%5Cb"),
            not_allowed(),
        ),
        case(
            "proxy",
            "NUL in the id",
            &get("/v1/fhir/medicare/Coverage/a%00"),
            not_allowed(),
        ),
        case(
            "proxy",
            "CRLF in the id",
            &get("/v1/fhir/medicare/Coverage/a%0d%0aSet-Cookie:%20x=y"),
            not_allowed(),
        ),
        case(
            "proxy",
            "a URL as the id",
            &get("/v1/fhir/medicare/Coverage/https:%2F%2Fevil.example%2Fx"),
            not_allowed(),
        ),
        case(
            "proxy",
            "protocol-relative path",
            &get("//evil.example/v1/fhir/medicare/Patient/{me}"),
            refused(404, "not_found"),
        ),
        case(
            "proxy",
            "absolute-form target on another host",
            &get("http://evil.example/v1/fhir/medicare/Patient/-1"),
            refused(404, "not_found"),
        ),
        case(
            "proxy",
            "another beneficiary's Patient",
            &get("/v1/fhir/medicare/Patient/-20140000008325"),
            refused(404, "not_found"),
        ),
        case(
            "proxy",
            "a type Blue Button does not serve",
            &get("/v1/fhir/medicare/Observation"),
            not_allowed(),
        ),
        case(
            "proxy",
            "an unknown type",
            &get("/v1/fhir/medicare/Binary/x"),
            not_allowed(),
        ),
        case(
            "proxy",
            "an unknown provider",
            &get("/v1/fhir/elsewhere/Patient/x"),
            refused(404, "unknown_provider"),
        ),
        case(
            "proxy",
            "parameters on a read",
            &get("/v1/fhir/medicare/Patient/{me}?_format=xml"),
            not_allowed(),
        ),
        case(
            "proxy",
            "a parameter off the allow-list",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?_elements=id"),
            not_allowed(),
        ),
        case(
            "proxy",
            "another beneficiary's search",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?patient=-20140000008325"),
            not_allowed(),
        ),
        case(
            "proxy",
            "a percent-encoded parameter name",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?pat%69ent=-20140000008325"),
            not_allowed(),
        ),
        case(
            "proxy",
            "a page larger than Blue Button's",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?_count=51"),
            invalid(),
        ),
        case(
            "proxy",
            "a repeated startIndex",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?startIndex=0&startIndex=10"),
            invalid(),
        ),
        case(
            "proxy",
            "a negative startIndex",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?startIndex=-1"),
            invalid(),
        ),
        case(
            "proxy",
            "a sealed-page link on Blue Button",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?_page=AAAA"),
            not_allowed(),
        ),
        case(
            "proxy",
            "a CRLF in a parameter",
            &get("/v1/fhir/medicare/ExplanationOfBenefit?type=carrier%0d%0aX:%20y"),
            invalid(),
        ),
        case(
            "proxy",
            "a _revinclude",
            &get("/v1/fhir/medicare/Coverage?_revinclude=*"),
            not_allowed(),
        ),
    ];
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        cases.push(case(
            "proxy",
            "a method other than GET",
            &format!("{method} /v1/fhir/medicare/Patient/{{me}} HTTP/1.1\r\n{{session}}\r\nContent-Length: 0\r\n"),
            refused(405, "method_not_allowed"),
        ));
    }
    // What the browser sends that must not reach the provider: its own credentials.
    let mut forwarded = case(
        "proxy",
        "a read carrying the browser's own Authorization and X-Forwarded-* is the broker's",
        "GET /v1/fhir/medicare/Patient/{me} HTTP/1.1\r\n{session}\r\nAuthorization: Bearer stolen\r\n\
         X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: evil.example\r\n",
        Expect {
            status: 200,
            code: None,
        },
    );
    forwarded.reaches_provider = true;
    cases.push(forwarded);

    // Cookies, CSRF and CORS.
    cases.extend([
        case(
            "csrf",
            "no CSRF header",
            "GET /v1/session HTTP/1.1\r\n{cookie}\r\n",
            refused(403, "csrf_required"),
        ),
        case(
            "csrf",
            "a CSRF header with another value",
            "GET /v1/session HTTP/1.1\r\n{cookie}\r\nx-connect-medicare: 0\r\n",
            refused(403, "csrf_required"),
        ),
        case(
            "csrf",
            "a foreign Origin",
            "GET /v1/session HTTP/1.1\r\n{session}\r\nOrigin: https://evil.example\r\n",
            refused(403, "origin_not_allowed"),
        ),
        case(
            "csrf",
            "the null Origin",
            "GET /v1/session HTTP/1.1\r\n{session}\r\nOrigin: null\r\n",
            refused(403, "origin_not_allowed"),
        ),
    ]);
    // A preflight from another origin gets no CORS allowance (checked for every case below).
    for (name, origin) in [
        ("a preflight from a foreign origin", "https://evil.example"),
        ("a preflight from the null origin", "null"),
        (
            "a preflight from a look-alike origin",
            "http://localhost:8080.evil.example",
        ),
    ] {
        cases.push(case(
            "cors",
            name,
            &format!(
                "OPTIONS /v1/session/disconnect HTTP/1.1\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-connect-medicare\r\n"
            ),
            Expect {
                status: 200,
                code: None,
            },
        ));
    }
    for (name, cookie) in [
        ("a tampered session cookie", "{tampered}"),
        ("a truncated session cookie", "{truncated}"),
        ("an oversized session cookie", "{oversized}"),
    ] {
        let mut case = case(
            "cookies",
            name,
            &format!("GET /v1/fhir/medicare/Patient/{{me}} HTTP/1.1\r\n{cookie}\r\n"),
            refused(401, "not_connected"),
        );
        case.clears_session = true;
        cases.push(case);
    }

    // Flows and callbacks.
    let post_raw = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nx-connect-medicare: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let post = |path: &str, body: serde_json::Value| post_raw(path, &body.to_string());
    let state = "s".repeat(43);
    let verifier = "v".repeat(43);
    cases.extend([
        case("flows", "completion of a flow never started", &post("/v1/flows/complete", json!({"state": state, "code": "c", "code_verifier": verifier})), refused(400, "flow_not_found")),
        case("flows", "completion without state", &post("/v1/flows/complete", json!({"code": "c", "code_verifier": verifier})), invalid()),
        case("flows", "a verifier of 42 characters", &post("/v1/flows/complete", json!({"state": state, "code": "c", "code_verifier": "v".repeat(42)})), invalid()),
        case("flows", "a verifier of 129 characters", &post("/v1/flows/complete", json!({"state": state, "code": "c", "code_verifier": "v".repeat(129)})), invalid()),
        case("flows", "a verifier outside the unreserved characters", &post("/v1/flows/complete", json!({"state": state, "code": "c", "code_verifier": format!("{}+/", "v".repeat(41))})), invalid()),
        case("flows", "a state too short", &post("/v1/flows", json!({"provider": "medicare", "state": "short", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "redirect_uri": REDIRECT_URI})), invalid()),
        case("flows", "a plain code_challenge_method", &post("/v1/flows", json!({"provider": "medicare", "state": state, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "plain", "redirect_uri": REDIRECT_URI})), invalid()),
        case("flows", "a redirect URI off the configuration", &post("/v1/flows", json!({"provider": "medicare", "state": state, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "redirect_uri": "https://evil.example/callback"})), refused(400, "redirect_uri_mismatch")),
        case("flows", "a redirect URI on a look-alike host", &post("/v1/flows", json!({"provider": "medicare", "state": state, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "redirect_uri": REDIRECT_URI.replace("http://localhost:8080", "https://localhost.evil.example")})), refused(400, "redirect_uri_mismatch")),
        case("flows", "a redirect URI differing by a trailing slash", &post("/v1/flows", json!({"provider": "medicare", "state": state, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "redirect_uri": format!("{REDIRECT_URI}/")})), refused(400, "redirect_uri_mismatch")),
        case("flows", "a duplicated JSON member", &post_raw("/v1/flows/complete", &format!(r#"{{"state":"{state}","state":"{state}","code":"c","code_verifier":"{verifier}"}}"#)), invalid()),
    ]);

    // Limits.
    cases.extend([
        case(
            "limits",
            "a body over the limit",
            &post(
                "/v1/flows",
                json!({"provider": "medicare", "state": "x".repeat(64 * 1024)}),
            ),
            refused(413, "payload_too_large"),
        ),
        case(
            "limits",
            "headers over the limit",
            &format!(
                "GET /v1/config HTTP/1.1\r\nx-connect-medicare: 1\r\nx-filler: {}\r\n",
                "a".repeat(connect_medicare_broker::MAX_HEADER_BYTES + 1024)
            ),
            Expect {
                status: 431,
                code: None,
            },
        ),
    ]);
    cases
}

#[tokio::test]
async fn every_hostile_request_gets_its_safe_outcome() {
    let (_sandbox, _setup, broker, mut browser, session) = signed_in(sandbox().await, 7).await;
    let me = session.connections[0].patient.clone().unwrap();
    let cookie_value = browser.cookies["__Host-cm-session"].clone();
    let cookie = format!("Cookie: __Host-cm-session={cookie_value}");
    let mut tampered = cookie_value.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let with_csrf = |cookie: &str| format!("{cookie}\r\nx-connect-medicare: 1");

    let mut report = String::new();
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let request = case
            .request
            .replace("{session}", &with_csrf(&cookie))
            .replace("{cookie}", &cookie)
            .replace(
                "{tampered}",
                &with_csrf(&format!("Cookie: __Host-cm-session={tampered}")),
            )
            .replace(
                "{truncated}",
                &with_csrf(&format!(
                    "Cookie: __Host-cm-session={}",
                    &cookie_value[..20]
                )),
            )
            .replace(
                "{oversized}",
                &with_csrf(&format!(
                    "Cookie: __Host-cm-session={}",
                    cookie_value.repeat(100)
                )),
            )
            .replace("{me}", me.as_str());
        let before = metric(&broker, FHIR_CALLS).await;
        let answer = send(&broker.base, &request).await;
        let after = metric(&broker, FHIR_CALLS).await;
        let mut problems = Vec::new();
        if answer.status != case.expect.status {
            problems.push(format!(
                "HTTP {} (expected {})",
                answer.status, case.expect.status
            ));
        }
        if case.expect.code.is_some() && answer.code().as_deref() != case.expect.code {
            problems.push(format!(
                "code {:?} (expected {:?})",
                answer.code(),
                case.expect.code
            ));
        }
        if !case.reaches_provider && after != before {
            problems.push("the provider was asked".to_owned());
        }
        // Nothing the API answers may be cached (a preflight is CORS's own answer).
        let api = request
            .split(' ')
            .nth(1)
            .is_some_and(|t| t.starts_with("/v1/"));
        if api
            && !request.starts_with("OPTIONS")
            && answer.status != 431
            && answer.header("cache-control") != ["no-store"]
        {
            problems.push(format!(
                "Cache-Control {:?}",
                answer.header("cache-control")
            ));
        }
        // No answer lets another origin read it.
        let allowed = answer.header("access-control-allow-origin");
        if allowed.iter().any(|o| *o != APP_ORIGIN) {
            problems.push(format!("CORS allows {allowed:?}"));
        }
        let sets: Vec<&str> = answer.header("set-cookie");
        let cleared = sets
            .iter()
            .any(|c| c.starts_with("__Host-cm-session=;") && c.contains("Max-Age=0"));
        if case.clears_session && !cleared {
            problems.push("the invalid session cookie was not expired".to_owned());
        }
        if sets.iter().any(|c| !c.starts_with("__Host-cm-")) {
            problems.push(format!("a foreign cookie was set: {sets:?}"));
        }
        if answer.status == 200 && case.reaches_provider {
            // What the provider said must not set or move anything in the browser.
            if !sets.is_empty() || !answer.header("location").is_empty() {
                problems.push("an upstream Set-Cookie or redirect was relayed".to_owned());
            }
        }
        let _ = writeln!(
            report,
            "hostile: {} | {} | {}",
            case.class,
            case.name,
            if problems.is_empty() {
                "held"
            } else {
                "FAILED"
            }
        );
        if !problems.is_empty() {
            failures.push(format!(
                "{} / {}: {}",
                case.class,
                case.name,
                problems.join("; ")
            ));
        }
    }
    // After all of it, the session still works: nothing above consumed or ended it.
    assert_eq!(
        browser
            .get(&format!("/v1/fhir/medicare/Patient/{}", me.as_str()))
            .await
            .status,
        200,
        "the session did not survive the hostile requests"
    );
    let _ = writeln!(
        report,
        "hostile: session | still signed in afterwards | held"
    );

    // Disconnected, the same cookie reads nothing, and is expired.
    let read = format!(
        "GET /v1/fhir/medicare/Patient/{} HTTP/1.1\r\n{}\r\n",
        me.as_str(),
        with_csrf(&cookie)
    );
    let reply = browser
        .post("/v1/session/disconnect", json!({ "provider": "medicare" }))
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let replayed = send(&broker.base, &read).await;
    assert_eq!(
        (replayed.status, replayed.code().as_deref()),
        (401, Some("not_connected")),
        "a cookie replayed after disconnect"
    );
    let _ = writeln!(
        report,
        "hostile: cookies | a cookie replayed after disconnect | held"
    );
    eprint!("{report}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        cases.len() >= 40,
        "the suite shrank to {} cases",
        cases.len()
    );
}

/// A provider that misbehaves in front of the sandbox: it passes everything through, but on
/// the FHIR API it adds a `Set-Cookie` to every answer, answers Coverage with a redirect to
/// another host, and records the headers each FHIR request arrived with.
async fn hostile_provider(
    sandbox: &str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::{
        body::{Body, to_bytes},
        extract::Request,
        response::Response,
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sandbox, record) = (sandbox.to_owned(), seen.clone());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = axum::Router::new().fallback(move |request: Request| {
        let (sandbox, record, client) = (sandbox.clone(), record.clone(), client.clone());
        async move {
            let path = request
                .uri()
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default();
            let fhir = path.starts_with("/v2/fhir/");
            if fhir {
                let headers: Vec<String> = request
                    .headers()
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap_or("?")))
                    .collect();
                record.lock().unwrap().push(headers.join("\n"));
            }
            if path.starts_with("/v2/fhir/Coverage") {
                return Response::builder()
                    .status(302)
                    .header("location", "http://evil.example/steal")
                    .body(Body::empty())
                    .unwrap();
            }
            let (parts, body) = request.into_parts();
            let mut upstream = client.request(parts.method, format!("{sandbox}{path}"));
            for (name, value) in &parts.headers {
                if name != "host" {
                    upstream = upstream.header(name, value);
                }
            }
            let body = to_bytes(body, 1 << 20).await.unwrap();
            let answer = upstream.body(body).send().await.unwrap();
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !matches!(
                    name.as_str(),
                    "transfer-encoding" | "content-length" | "connection"
                ) {
                    response = response.header(name, value);
                }
            }
            if fhir {
                response = response.header("set-cookie", "stolen=1; Path=/");
            }
            response
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, seen)
}

#[tokio::test]
async fn a_hostile_provider_can_set_no_cookie_redirect_nowhere_and_sees_no_browser_credential() {
    let sandbox = sandbox().await;
    let (provider, seen) = hostile_provider(sandbox.origin()).await;
    let (_sandbox, _setup, _broker, mut browser, session) =
        signed_in_with(sandbox, 7, |setup, _| setup.toml.medicare = provider).await;
    let me = session.connections[0].patient.clone().unwrap();
    let cookie = format!("__Host-cm-session={}", browser.cookies["__Host-cm-session"]);
    let mut report = String::new();

    // The provider's Set-Cookie never reaches the browser; the browser's credentials and
    // forwarding headers never reach the provider.
    let reply = browser
        .send_with(
            reqwest::Method::GET,
            &format!("/v1/fhir/medicare/Patient/{}", me.as_str()),
            None,
            &[
                ("authorization", "Bearer stolen-by-the-browser"),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-host", "evil.example"),
                ("forwarded", "for=10.0.0.1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    let arrived = seen
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("the read reached the provider");
    let arrived = arrived.to_ascii_lowercase();
    for leaked in [
        "stolen-by-the-browser",
        "x-forwarded",
        "forwarded:",
        "cookie:",
        &cookie.to_ascii_lowercase(),
    ] {
        assert!(
            !arrived.contains(leaked),
            "{leaked} reached the provider:\n{arrived}"
        );
    }
    assert!(arrived.contains("authorization: bearer "), "{arrived}");
    let _ = writeln!(
        report,
        "hostile: provider | an upstream Set-Cookie is not relayed | held"
    );
    let _ = writeln!(
        report,
        "hostile: provider | the browser's Authorization, Cookie and forwarding headers stay home | held"
    );

    // A redirect from the provider is not followed, and not relayed.
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 502);
    assert_eq!(
        reply.code(),
        connect_medicare_protocol::contract::ErrorCode::UpstreamError
    );
    assert!(reply.headers.get("location").is_none());
    assert!(reply.set_cookies().is_empty());
    let _ = writeln!(
        report,
        "hostile: provider | an upstream redirect is neither followed nor relayed | held"
    );
    eprint!("{report}");
}
