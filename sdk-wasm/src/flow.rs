//! The authorization code flow in the browser: start it (`connect`), finish it
//! (`handleRedirect`).
//!
//! Starting takes three calls around the JS layer's `POST /v1/flows`: [`connect_request`]
//! makes `state` and the verifier (kept here, never handed to JS) and the request body;
//! [`connect_finish`] validates the authorize request the broker answered with against the
//! broker's published configuration and this tab's own `state` and challenge, and keeps the
//! flow in storage; [`navigate`] follows the validated request.

use connect_medicare_protocol::{
    AuthorizeRedirect, Callback, Error as RuleError, OAuthErrorCode, PkceVerifier, State,
    contract::ProviderInfo, strip_callback_params,
};
use js_sys::{Function, Map, Promise};
use wasm_bindgen::prelude::*;

use crate::{
    browser, config,
    error::{code, fail, invalid_config, refused},
    js,
    prelude::*,
    storage::{FlowStorage, PendingFlow, is_return_path},
};

/// How long a flow lives when the broker does not say (seconds).
const DEFAULT_FLOW_TTL_S: u64 = 600;
/// Connects started but not finished that this page remembers (a failed `POST /v1/flows`
/// leaves one behind); a new one replaces the oldest.
const MAX_STARTED: usize = 4;

/// A connect between its two calls.
struct Started {
    /// When it started, in connects since the page loaded (the oldest is replaced first).
    seq: u64,
    state: State,
    verifier: PkceVerifier,
    provider: ProviderInfo,
    post: bool,
    return_to: Option<String>,
}

/// The connects this page has started and not finished.
struct Memory {
    /// Connects so far (orders `started`).
    seq: u64,
    started: [Option<Started>; MAX_STARTED],
}

static MEMORY: spin::Mutex<Memory> = spin::Mutex::new(Memory {
    seq: 0,
    started: [const { None }; MAX_STARTED],
});

/// Starts a connect to `provider` (an entry of `/v1/config`): checks `method` (`"get"` or
/// `"post"`) and `return_to` (a same-origin path), makes `state` and a PKCE verifier from
/// `crypto.getRandomValues`, and returns the `POST /v1/flows` body.
#[wasm_bindgen(js_name = connectRequest)]
pub fn connect_request(
    provider: JsValue,
    method: Option<String>,
    return_to: Option<String>,
) -> Result<JsValue, JsValue> {
    let provider = config::provider(&provider).ok_or_else(config::unusable)?;
    let post = match method.as_deref() {
        None | Some("get") => false,
        Some("post") if provider.authorize_post => true,
        Some("post") => {
            return Err(invalid_config(
                "This provider does not accept a form POST authorize request",
            ));
        }
        Some(_) => return Err(invalid_config("method must be \"get\" or \"post\"")),
    };
    if return_to.as_deref().is_some_and(|p| !is_return_path(p)) {
        return Err(invalid_config(
            "returnTo must be a same-origin path such as /claims",
        ));
    }
    let state = State::from_random_bytes(browser::random_32()?);
    let verifier = PkceVerifier::from_random_bytes(browser::random_32()?);
    let body = js::object(&[
        ("provider", provider.id.as_str().into()),
        ("state", state.as_str().into()),
        ("code_challenge", verifier.challenge().as_str().into()),
        ("redirect_uri", provider.redirect_uri.as_str().into()),
        ("method", if post { "post" } else { "get" }.into()),
    ]);
    {
        let mut m = MEMORY.lock();
        m.seq += 1;
        let seq = m.seq;
        // A free slot (key 0), else the oldest connect.
        if let Some(slot) = m
            .started
            .iter_mut()
            .min_by_key(|s| s.as_ref().map_or(0, |s| s.seq))
        {
            *slot = Some(Started {
                seq,
                state,
                verifier,
                provider,
                post,
                return_to,
            });
        }
    }
    Ok(body)
}

/// Finishes a connect with the broker's answer to `POST /v1/flows`: validates the authorize
/// request, keeps the flow in `storage` under its `state` (TTL from `expires_in`, at most an
/// hour) and returns the validated request for [`navigate`].
#[wasm_bindgen(js_name = connectFinish)]
pub fn connect_finish(
    state: &str,
    answer: JsValue,
    storage: FlowStorage,
) -> Result<JsValue, JsValue> {
    let started = MEMORY
        .lock()
        .started
        .iter_mut()
        .find(|s| s.as_ref().is_some_and(|s| s.state.matches_str(state)))
        .and_then(Option::take)
        .ok_or_else(|| invalid_config("connectFinish without connectRequest"))?;
    let refused = |e: &RuleError| {
        refused(
            code::INVALID_CONFIG,
            "The broker's authorize request does not match its configuration",
            e,
        )
    };
    let authorize = js::get(&answer, "authorize");
    let redirect =
        redirect(&authorize).ok_or_else(|| refused(&RuleError::MissingParameter("authorize")))?;
    if matches!(redirect, AuthorizeRedirect::Post { .. }) != started.post {
        return Err(refused(&RuleError::ParameterMismatch("method")));
    }
    let challenge = started.verifier.challenge();
    redirect
        .validate(&started.provider.expectations(&started.state, &challenge))
        .map_err(|e| refused(&e))?;
    let expires_in = js::get(&answer, "expires_in")
        .as_f64()
        .filter(|s| *s > 0.0)
        .map_or(DEFAULT_FLOW_TTL_S, |s| s as u64);
    let now = browser::now_ms();
    storage.sweep(now);
    storage.save(&PendingFlow::new(
        started.state,
        started.verifier,
        started.provider.id,
        now,
        expires_in,
        started.return_to,
    ))?;
    Ok(authorize)
}

/// Sends the browser to the authorization server with a request [`connect_finish`]
/// validated: a GET navigation or an auto-submitted form POST.
#[wasm_bindgen]
pub fn navigate(redirect: JsValue) -> Result<(), JsValue> {
    let redirect = self::redirect(&redirect)
        .ok_or_else(|| invalid_config("navigate takes what connectFinish returned"))?;
    browser::go(&redirect)
}

/// Reads the contract's `{method: "get", url}` / `{method: "post", action, fields}`.
fn redirect(value: &JsValue) -> Option<AuthorizeRedirect> {
    match js::get_str(value, "method")?.as_str() {
        "get" => Some(AuthorizeRedirect::Get {
            url: js::get_str(value, "url")?,
        }),
        "post" => {
            let list = js::get_array(value, "fields")?;
            let mut fields = Vec::new();
            for i in 0..list.length() {
                let pair = js::array(list.get(i))?;
                fields.push((pair.get(0).as_string()?, pair.get(1).as_string()?));
            }
            Some(AuthorizeRedirect::Post {
                action: js::get_str(value, "action")?,
                fields,
            })
        }
        _ => None,
    }
}

/// The completion kept under `key` in `completions`.
fn completion(completions: &Map, key: &str) -> Option<Promise> {
    let found = completions.get(&JsValue::from_str(key));
    (!found.is_undefined()).then(|| found.unchecked_into())
}

/// `handleRedirect(url?)`: resolves to `null` when `url` (default: the address bar) is not a
/// callback. Otherwise, once per callback however often it is called (React StrictMode calls
/// twice): `state` first — a flow this tab started, unexpired, unused, and taking it from
/// `storage` uses it — then the callback's `error`, then
/// `complete(body, provider, returnTo)`, the JS layer's `POST /v1/flows/complete`, whose
/// promise every caller shares. `code` and `state` leave the address bar before anything else.
///
/// `completions` is the page's `Map` of those promises (one for every client on the page: React
/// StrictMode may build two), kept under `s:<state>` and under `u:<address bar after
/// stripping>`.
#[wasm_bindgen(js_name = handleRedirect)]
pub fn handle_redirect(
    url: Option<String>,
    storage: FlowStorage,
    complete: Function,
    completions: Map,
) -> Promise {
    let current = browser::current_url();
    let Some(url) = url.or_else(|| current.clone()) else {
        return Promise::reject(&fail(
            code::NOT_IN_BROWSER,
            "handleRedirect needs a URL outside a browser page",
        ));
    };
    let callback = match Callback::parse(&url) {
        Ok(Some(callback)) => callback,
        // A second call after the first one cleaned the address bar shares its completion.
        Ok(None) => {
            return completion(&completions, &js::concat(&["u:", &url]))
                .unwrap_or_else(|| Promise::resolve(&JsValue::NULL));
        }
        Err(e) => {
            return Promise::reject(&refused(
                code::INVALID_REQUEST,
                "The callback URL is malformed",
                &e,
            ));
        }
    };
    let state = js::concat(&["s:", callback.state().as_str()]);
    if let Some(promise) = completion(&completions, &state) {
        return promise;
    }
    let stripped = current
        .filter(|here| names_state(here, callback.state()))
        .and_then(|here| {
            browser::replace_url(&strip_callback_params(&here)).ok()?;
            browser::current_url()
        });
    let promise = match begin(&storage, callback) {
        Ok((body, flow)) => {
            let provider = JsValue::from_str(flow.provider.as_str());
            let return_to = flow
                .return_to
                .as_deref()
                .map_or(JsValue::NULL, JsValue::from_str);
            match complete.call3(&JsValue::NULL, &body, &provider, &return_to) {
                Ok(value) => Promise::resolve(&value),
                Err(thrown) => Promise::reject(&thrown),
            }
        }
        Err(failure) => Promise::reject(&failure),
    };
    completions.set(&JsValue::from_str(&state), &promise);
    if let Some(stripped) = stripped {
        completions.set(&js::concat(&["u:", &stripped]).into(), &promise);
    }
    promise
}

/// Whether `url` is a callback for `state`.
fn names_state(url: &str, state: &State) -> bool {
    matches!(Callback::parse(url), Ok(Some(c)) if c.state().matches(state))
}

/// State, then error, then the `POST /v1/flows/complete` body.
fn begin(storage: &FlowStorage, callback: Callback) -> Result<(JsValue, PendingFlow), JsValue> {
    let flow = storage
        .take(callback.state(), browser::now_ms())?
        .ok_or_else(|| {
            fail(
                code::FLOW_NOT_FOUND,
                "No sign-in started in this tab matches this callback (expired or already used)",
            )
        })?;
    let code = callback.verify(&flow.state).map_err(|e| match e {
        // The error a callback carried, once its `state` matched. The server's
        // `error_description` is not shown: anyone can put text in a URL.
        RuleError::Authorization(error) if *error.code() == OAuthErrorCode::AccessDenied => fail(
            code::ACCESS_DENIED,
            "The user did not allow access to their data",
        ),
        RuleError::Authorization(error) => fail(
            code::UPSTREAM_ERROR,
            &js::concat(&[
                "The authorization server refused the request (",
                error.code().as_str(),
                ")",
            ]),
        ),
        other => refused(
            code::INVALID_REQUEST,
            "The callback does not match this sign-in",
            &other,
        ),
    })?;
    let body = js::object(&[
        ("state", flow.state.as_str().into()),
        ("code", code.expose_secret().into()),
        ("code_verifier", flow.verifier.expose_secret().into()),
    ]);
    Ok((body, flow))
}
