//! The wasm layer in headless Chromium: the PKCE vector, connect's validation and storage,
//! callback handling (state first, single use, one completion for a double call, the address
//! bar), error mapping and paging.

use connect_medicare_protocol::{
    AuthorizeRequest, ClientId, PkceChallenge, PkceVerifier, Provider, RedirectUri, Scopes, State,
};
use js_sys::{Array, Function, JSON, Map, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

use crate::{
    broker_base, check_config, connect_finish, connect_request, eob_query, handle_redirect, js,
    next_page, page_plan,
    storage::{FlowStorage, PendingFlow, is_return_path},
};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/src/tests/support.js")]
extern "C" {
    #[wasm_bindgen(js_name = memoryStorage)]
    fn memory_storage() -> FlowStorage;
    fn recorder() -> Function;
    #[wasm_bindgen(js_name = callCount)]
    fn call_count(complete: &Function) -> u32;
    #[wasm_bindgen(js_name = lastBody)]
    fn last_body(complete: &Function) -> JsValue;
    #[wasm_bindgen(js_name = storageSize)]
    fn storage_size(storage: &FlowStorage) -> u32;
    #[wasm_bindgen(js_name = storageKeys)]
    fn storage_keys(storage: &FlowStorage) -> String;
    #[wasm_bindgen(js_name = setRaw)]
    fn set_raw(storage: &FlowStorage, key: &str, value: &str);
    fn same(a: &JsValue, b: &JsValue) -> bool;
    fn code(e: &JsValue) -> Option<String>;
    #[wasm_bindgen(js_name = retryAfter)]
    fn retry_after(e: &JsValue) -> Option<f64>;
    #[wasm_bindgen(js_name = isError)]
    fn is_error(e: &JsValue) -> bool;
    fn href() -> String;
    #[wasm_bindgen(js_name = setUrl)]
    fn set_url(url: &str);
}

#[wasm_bindgen(module = "/js/error.js")]
extern "C" {
    #[wasm_bindgen(js_name = ConnectMedicareError)]
    type ErrorClass;

    /// The mapping of non-2xx broker answers, which lives next to the class.
    #[wasm_bindgen(js_name = brokerError)]
    fn broker_error(status: u16, body: JsValue, retry_after: Option<String>) -> JsValue;
}

const AUTHORIZE: &str = "https://sandbox.bluebutton.cms.gov/v2/o/authorize/";
const REDIRECT: &str = "http://localhost:8080/callback";

fn provider_json(authorize_post: bool) -> JsValue {
    let json = format!(
        r#"{{"id":"medicare","name":"Medicare","kind":"blue_button","client_id":"client-123",
        "authorization_endpoint":"{AUTHORIZE}","aud":"https://sandbox.bluebutton.cms.gov/v2/fhir/",
        "scopes":["openid","profile","launch/patient","patient/Patient.rs","patient/Coverage.rs","patient/ExplanationOfBenefit.rs"],
        "scopes_supported":["openid","profile","launch/patient","patient/Patient.rs","patient/Coverage.rs","patient/ExplanationOfBenefit.rs","patient/Patient.read"],
        "redirect_uri":"{REDIRECT}","authorize_post":{authorize_post},"max_page_size":50,
        "eob_types":["carrier","pde","dme","hha","hospice","inpatient","outpatient","snf"]}}"#
    );
    JSON::parse(&json).unwrap()
}

fn parse(json: &str) -> JsValue {
    JSON::parse(json).unwrap()
}

/// What a correct broker answers to `POST /v1/flows` for `body`.
fn authorize_for(body: &JsValue) -> AuthorizeRequest {
    let state = State::parse(&js::get_str(body, "state").unwrap()).unwrap();
    let challenge = PkceChallenge::parse(&js::get_str(body, "code_challenge").unwrap()).unwrap();
    AuthorizeRequest::new(
        &Provider::blue_button_sandbox(),
        ClientId::new("client-123").unwrap(),
        RedirectUri::parse(REDIRECT).unwrap(),
        Scopes::parse(
            "openid profile launch/patient patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs",
        )
        .unwrap(),
        &state,
        &challenge,
    )
    .unwrap()
}

fn get_answer(url: &str) -> JsValue {
    let answer = js_sys::Object::new();
    let authorize = js::object(&[("method", "get".into()), ("url", url.into())]);
    js_sys::Reflect::set(&answer, &"authorize".into(), &authorize).unwrap();
    js_sys::Reflect::set(&answer, &"expires_in".into(), &600.into()).unwrap();
    answer.into()
}

/// Starts a connect through the broker double; the state and the storage it used.
fn started(storage: &FlowStorage, return_to: Option<&str>) -> String {
    let body = connect_request(provider_json(false), None, return_to.map(Into::into)).unwrap();
    let url = authorize_for(&body).url();
    let redirect = connect_finish(
        &js::get_str(&body, "state").unwrap(),
        get_answer(&url),
        storage.clone(),
    )
    .unwrap();
    assert_eq!(js::get_str(&redirect, "url").as_deref(), Some(url.as_str()));
    js::get_str(&body, "state").unwrap()
}

async fn settle(promise: Promise) -> Result<JsValue, JsValue> {
    promise.await
}

#[wasm_bindgen_test]
fn pkce_rfc7636_appendix_b() {
    const OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    let verifier = PkceVerifier::from_random_bytes(OCTETS);
    assert_eq!(
        verifier.expose_secret(),
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(
        verifier.challenge().as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[wasm_bindgen_test]
fn connect_request_makes_fresh_256_bit_secrets() {
    let a = connect_request(provider_json(false), None, None).unwrap();
    let b = connect_request(
        provider_json(false),
        Some("get".into()),
        Some("/claims".into()),
    )
    .unwrap();
    let (sa, sb) = (
        js::get_str(&a, "state").unwrap(),
        js::get_str(&b, "state").unwrap(),
    );
    assert_eq!(sa.len(), 43);
    assert_ne!(sa, sb);
    let challenge = js::get_str(&a, "code_challenge").unwrap();
    assert!(PkceChallenge::parse(&challenge).is_ok());
    assert_ne!(challenge, js::get_str(&b, "code_challenge").unwrap());
    assert_eq!(js::get_str(&a, "redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(js::get_str(&a, "method").as_deref(), Some("get"));
    // The verifier never reaches JS.
    assert!(js::get(&a, "verifier").is_undefined());
    assert!(js::get(&a, "code_verifier").is_undefined());
}

#[wasm_bindgen_test]
fn connect_options_are_checked() {
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "claims",
        "/a b",
    ] {
        let err = connect_request(provider_json(false), None, Some(bad.into())).unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("invalid_config"), "{bad}");
    }
    let err = connect_request(provider_json(false), Some("post".into()), None).unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("invalid_config"));
    let err = connect_request(provider_json(false), Some("put".into()), None).unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("invalid_config"));
    assert!(connect_request(provider_json(true), Some("post".into()), None).is_ok());
    let err = connect_request(parse(r#"{"id":"medicare"}"#), None, None).unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("invalid_config"));
}

#[wasm_bindgen_test]
fn connect_keeps_the_flow_only_after_validation() {
    let storage = memory_storage();
    let state = started(&storage, Some("/claims?tab=1"));
    assert_eq!(storage_size(&storage), 1);
    assert!(storage_keys(&storage).ends_with(&state));

    // Every tampered answer is refused, and nothing is kept.
    let tampered: [&dyn Fn(&str) -> String; 6] = [
        &|url| url.replace("client_id=client-123", "client_id=other"),
        &|url| {
            url.replace(
                "aud=https%3A%2F%2Fsandbox.bluebutton.cms.gov%2Fv2%2Ffhir%2F",
                "aud=https%3A%2F%2Fevil.example%2F",
            )
        },
        &|url| url.replace("/v2/o/authorize/?", "/v2/o/authorize?"),
        &|url| format!("{url}&prompt=none"),
        &|url| url.replace("localhost%3A8080", "evil.example"),
        &|url| url.replace("S256", "plain"),
    ];
    for change in tampered {
        let storage = memory_storage();
        let body = connect_request(provider_json(false), None, None).unwrap();
        let url = change(&authorize_for(&body).url());
        let err = connect_finish(
            &js::get_str(&body, "state").unwrap(),
            get_answer(&url),
            storage.clone(),
        )
        .unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("invalid_config"), "{url}");
        assert_eq!(storage_size(&storage), 0, "{url}");
    }

    // Another flow's state in the authorize request is refused too.
    let storage = memory_storage();
    let body = connect_request(provider_json(false), None, None).unwrap();
    let other = connect_request(provider_json(false), None, None).unwrap();
    let url = authorize_for(&other).url();
    let err = connect_finish(
        &js::get_str(&body, "state").unwrap(),
        get_answer(&url),
        storage.clone(),
    )
    .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("invalid_config"));

    // A POST answer to a GET request is refused.
    let body = connect_request(provider_json(true), None, None).unwrap();
    let request = authorize_for(&body);
    let answer = parse(&format!(
        r#"{{"authorize":{{"method":"post","action":"{AUTHORIZE}","fields":{}}},"expires_in":600}}"#,
        JSON::stringify(
            &request
                .form_fields()
                .map(|(k, v)| Array::of2(&k.into(), &v.into()))
                .collect::<Array>()
        )
        .unwrap()
        .as_string()
        .unwrap()
    ));
    let err = connect_finish(
        &js::get_str(&body, "state").unwrap(),
        answer.clone(),
        storage.clone(),
    )
    .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("invalid_config"));
    // ... and accepted when POST was asked for.
    let body = connect_request(provider_json(true), Some("post".into()), None).unwrap();
    let request = authorize_for(&body);
    let answer = parse(&format!(
        r#"{{"authorize":{{"method":"post","action":"{AUTHORIZE}","fields":{}}},"expires_in":600}}"#,
        JSON::stringify(
            &request
                .form_fields()
                .map(|(k, v)| Array::of2(&k.into(), &v.into()))
                .collect::<Array>()
        )
        .unwrap()
        .as_string()
        .unwrap()
    ));
    let redirect = connect_finish(
        &js::get_str(&body, "state").unwrap(),
        answer,
        storage.clone(),
    )
    .unwrap();
    assert_eq!(js::get_str(&redirect, "action").as_deref(), Some(AUTHORIZE));
}

#[wasm_bindgen_test]
fn flow_records_are_single_use_and_expire() {
    let storage = memory_storage();
    let state = State::from_random_bytes([7; 32]);
    let flow = PendingFlow::new(
        State::parse(state.as_str()).unwrap(),
        PkceVerifier::from_random_bytes([8; 32]),
        connect_medicare_protocol::contract::ProviderId::new("medicare").unwrap(),
        1_000,
        600,
        Some("/claims|x".into()),
    );
    storage.save(&flow).unwrap();
    let back = storage.take(&state, 2_000).unwrap().unwrap();
    assert_eq!(back.verifier.expose_secret(), flow.verifier.expose_secret());
    assert_eq!(back.return_to.as_deref(), Some("/claims|x"));
    assert!(storage.take(&state, 2_000).unwrap().is_none(), "read once");

    storage.save(&flow).unwrap();
    assert!(
        storage.take(&state, 1_000 + 600_000).unwrap().is_none(),
        "expired"
    );
    assert_eq!(
        storage_size(&storage),
        0,
        "an expired record is removed too"
    );

    let key = ["connect-medicare:flow:", state.as_str()].concat();
    set_raw(&storage, &key, "1|0|99999999999999|short|medicare|x|");
    assert!(
        storage.take(&state, 5).unwrap().is_none(),
        "unreadable records are refused"
    );
    set_raw(
        &storage,
        &key,
        "1|0|99999999999999|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|medicare|dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk|//evil.example",
    );
    assert!(
        storage.take(&state, 5).unwrap().is_none(),
        "an open redirect in storage is refused"
    );

    assert!(is_return_path("/"));
    assert!(is_return_path("/claims?x=1#top"));
    for bad in ["", "claims", "//x", "/\\x", "/a\\b", "/a\nb", "https://x/"] {
        assert!(!is_return_path(bad), "{bad:?}");
    }
}

#[wasm_bindgen_test]
async fn callback_double_call_completes_once() {
    let storage = memory_storage();
    let completions = Map::new();
    let state = started(&storage, Some("/claims"));
    let complete = recorder();
    let url = format!("http://localhost:8080/callback?code=abc&state={state}");
    // React StrictMode: two calls in the same tick, then one after it settled.
    let first = handle_redirect(
        Some(url.clone()),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    );
    let second = handle_redirect(
        Some(url.clone()),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    );
    assert!(same(&first, &second));
    assert_eq!(storage_size(&storage), 0, "the flow is consumed at once");
    let a = settle(first).await.unwrap();
    let b = settle(second).await.unwrap();
    assert!(same(&a, &b));
    let third = settle(handle_redirect(
        Some(url),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    ))
    .await
    .unwrap();
    assert!(same(&a, &third));
    assert_eq!(call_count(&complete), 1);
    // A URL that is not a callback never finds a completion by its state.
    let other = settle(handle_redirect(
        Some(state.clone()),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    ))
    .await
    .unwrap();
    assert!(other.is_null());
    assert_eq!(js::get_str(&a, "provider").as_deref(), Some("medicare"));
    assert_eq!(js::get_str(&a, "returnTo").as_deref(), Some("/claims"));
    let body = last_body(&complete);
    assert_eq!(js::get_str(&body, "code").as_deref(), Some("abc"));
    assert_eq!(js::get_str(&body, "state").as_deref(), Some(state.as_str()));
    assert_eq!(
        js::get_str(&body, "code_verifier").map(|v| v.len()),
        Some(43)
    );
}

#[wasm_bindgen_test]
async fn callback_checks_state_before_error() {
    let storage = memory_storage();
    let completions = Map::new();
    let complete = recorder();
    let not_a_callback = handle_redirect(
        Some("http://localhost:8080/?tab=1".into()),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    );
    assert!(settle(not_a_callback).await.unwrap().is_null());

    // An unknown state wins over the error it carries.
    let unknown = State::from_random_bytes([9; 32]);
    let url = format!(
        "http://localhost:8080/callback?error=access_denied&state={}",
        unknown.as_str()
    );
    let err = settle(handle_redirect(
        Some(url),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("flow_not_found"));

    // A known state, then the error: access_denied, and the flow is used up.
    let state = started(&storage, None);
    let url = format!(
        "http://localhost:8080/callback?error=access_denied&error_description=Go+to+evil.example&state={state}"
    );
    let err = settle(handle_redirect(
        Some(url),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("access_denied"));
    assert!(
        !js::get_str(&err, "message")
            .unwrap_or_default()
            .contains("evil")
    );
    assert_eq!(storage_size(&storage), 0);

    // Other server errors.
    let state = started(&storage, None);
    let url = format!("http://localhost:8080/callback?error=server_error&state={state}");
    let err = settle(handle_redirect(
        Some(url),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("upstream_error"));

    // Malformed callbacks.
    let url = format!("http://localhost:8080/callback?code=a&state={state}&state={state}");
    let err = settle(handle_redirect(
        Some(url),
        storage.clone(),
        complete.clone(),
        completions.clone(),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("invalid_request"));
    assert_eq!(call_count(&complete), 0);
}

#[wasm_bindgen_test]
async fn callback_strips_the_address_bar() {
    let storage = memory_storage();
    let completions = Map::new();
    let state = started(&storage, None);
    let before = href();
    let origin = before.split('/').take(3).collect::<Vec<_>>().join("/");
    set_url(&format!(
        "{origin}/cb?code=secret-code&state={state}&tab=2#top"
    ));
    let complete = recorder();
    let first = handle_redirect(None, storage.clone(), complete.clone(), completions.clone());
    let now = href();
    assert!(
        !now.contains("secret-code") && !now.contains(&state),
        "{now}"
    );
    assert!(now.ends_with("/cb?tab=2#top"), "{now}");
    // The second call reads the cleaned address bar and still gets the same completion.
    let second = handle_redirect(None, storage.clone(), complete.clone(), completions.clone());
    assert!(same(&first, &second));
    settle(first).await.unwrap();
    assert_eq!(call_count(&complete), 1);
    set_url(&before);
}

#[wasm_bindgen_test]
fn broker_errors_map_to_the_error_class() {
    let err = broker_error(
        429,
        parse(r#"{"code":"rate_limited","message":"slow down","retry_after":3}"#),
        None,
    );
    assert!(err.is_instance_of::<ErrorClass>());
    assert!(is_error(&err));
    assert_eq!(code(&err).as_deref(), Some("rate_limited"));
    assert_eq!(retry_after(&err), Some(3.0));

    let err = broker_error(429, JsValue::UNDEFINED, Some("7".into()));
    assert_eq!(
        (code(&err).as_deref(), retry_after(&err)),
        (Some("rate_limited"), Some(7.0))
    );
    for (status, expected) in [
        (502, "broker_unreachable"),
        (404, "invalid_config"),
        (418, "internal"),
    ] {
        let err = broker_error(status, JsValue::UNDEFINED, None);
        assert_eq!(code(&err).as_deref(), Some(expected), "{status}");
        assert_eq!(retry_after(&err), None);
    }
    for (body, expected) in [
        (r#"{"code":"state_used","message":"m"}"#, "state_used"),
        (
            r#"{"code":"reconnect_required","message":"m"}"#,
            "reconnect_required",
        ),
        (r#"{"code":"some_new_code","message":"m"}"#, "some_new_code"),
        (r#"{"code":"<script>","message":"m"}"#, "upstream_error"),
        (r#"{"code":"","message":"m"}"#, "upstream_error"),
    ] {
        assert_eq!(
            code(&broker_error(400, parse(body), None)).as_deref(),
            Some(expected)
        );
    }
    // The body's message when it is 1–500 bytes, a static one otherwise.
    let message = |body: &str| js::get_str(&broker_error(400, parse(body), None), "message");
    assert_eq!(
        message(r#"{"code":"x","message":"m"}"#).as_deref(),
        Some("m")
    );
    let long = format!(r#"{{"code":"x","message":"{}"}}"#, "é".repeat(251));
    assert_eq!(
        message(&long).as_deref(),
        Some("The broker refused the request")
    );
    assert_eq!(
        message(r#"{"code":"x","message":""}"#).as_deref(),
        Some("The broker refused the request")
    );
    // `Retry-After` as an unsigned integer of seconds, else none.
    for (header, expected) in [
        (" 7 ", Some(7.0)),
        ("+7", Some(7.0)),
        ("7.5", None),
        ("-1", None),
    ] {
        let err = broker_error(503, JsValue::UNDEFINED, Some(header.into()));
        assert_eq!(retry_after(&err), expected, "{header:?}");
    }
}

#[wasm_bindgen_test]
fn config_and_broker_are_checked() {
    for ok in [
        "/cm",
        "/cm/",
        "https://app.example.com/cm",
        "http://localhost:8080",
        "/",
    ] {
        assert!(broker_base(ok).is_ok(), "{ok}");
    }
    assert_eq!(broker_base("/cm/").unwrap(), "/cm");
    for bad in [
        "",
        "//evil.example",
        "http://app.example.com",
        "cm",
        "/cm?x",
        "javascript:alert(1)",
    ] {
        let err = broker_base(bad).unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("invalid_config"), "{bad}");
    }
    let config = js::object(&[("providers", Array::of1(&provider_json(false)).into())]);
    assert_eq!(Array::from(&check_config(config).unwrap()).length(), 1);
    for bad in [
        r#"{}"#,
        r#"{"providers":[]}"#,
        r#"{"providers":[{"id":"medicare"}]}"#,
    ] {
        let err = check_config(parse(bad)).unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("invalid_config"), "{bad}");
    }
}

#[wasm_bindgen_test]
fn paging_reads_only_start_index_and_count() {
    let bundle = parse(
        r#"{"resourceType":"Bundle","link":[
        {"relation":"self","url":"https://evil.example/v2/fhir/ExplanationOfBenefit?startIndex=0&_count=10&patient=-1"},
        {"relation":"next","url":"https://evil.example/other?startIndex=10&_count=10"},
        {"relation":"last","url":"https://evil.example/other?startIndex=30&_count=10"}],
        "entry":[{},{}]}"#,
    );
    let next = next_page(bundle.clone()).unwrap();
    assert_eq!(js::get(&next, "startIndex").as_f64(), Some(10.0));
    assert_eq!(js::get(&next, "count").as_f64(), Some(10.0));
    let plan = Array::from(&page_plan(bundle).unwrap());
    let starts: Vec<f64> = plan
        .iter()
        .map(|p| js::get(&p, "startIndex").as_f64().unwrap())
        .collect();
    assert_eq!(starts, vec![10.0, 20.0, 30.0]);

    let no_last =
        parse(r#"{"resourceType":"Bundle","link":[{"relation":"next","url":"x?startIndex=5"}]}"#);
    assert!(page_plan(no_last.clone()).unwrap().is_null());
    assert!(js::get(&next_page(no_last).unwrap(), "count").is_undefined());
    let last_page = parse(r#"{"resourceType":"Bundle","link":[]}"#);
    assert!(next_page(last_page).unwrap().is_null());
    let bad =
        parse(r#"{"resourceType":"Bundle","link":[{"relation":"next","url":"x?startIndex=-1"}]}"#);
    assert_eq!(
        code(&next_page(bad).unwrap_err()).as_deref(),
        Some("upstream_error")
    );
}

#[wasm_bindgen_test]
fn eob_search_parameters_are_checked() {
    let q = eob_query(
        provider_json(false),
        Some("carrier,PDE".into()),
        Some("2020-01-01".into()),
        Some("2020-12-31".into()),
        Some(50),
    )
    .unwrap();
    let pairs: Vec<String> = q
        .iter()
        .map(|p| {
            let p = Array::from(&p);
            [p.get(0).as_string().unwrap(), p.get(1).as_string().unwrap()].join("=")
        })
        .collect();
    assert_eq!(
        pairs,
        [
            "type=carrier,pde",
            "service-date=ge2020-01-01",
            "service-date=le2020-12-31",
            "_count=50"
        ]
    );
    let bad = [
        (Some("carrier,nope"), None, None),
        (None, Some("2020-1-1"), None),
        (None, None, Some(51)),
        (None, None, Some(0)),
    ];
    for (types, since, size) in bad {
        let err = eob_query(
            provider_json(false),
            types.map(Into::into),
            since.map(Into::into),
            None,
            size,
        )
        .unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("invalid_config"));
    }
}
