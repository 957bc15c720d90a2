//! gzip over real HTTP: only when `Accept-Encoding` asks for it, and only for bodies over
//! 1 KB.

mod common;

use std::io::Read as _;

use common::*;
use reqwest::{Client, header};
use serde_json::Value;

/// A client that neither asks for nor undoes compression by itself.
fn raw_client() -> Client {
    Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    encoding: Option<String>,
    body: Vec<u8>,
}

async fn fetch(url: &str, token: &str, accept: Option<&str>) -> Answer {
    let mut request = raw_client()
        .get(url)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        encoding: header_value(&response, "content-encoding"),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

#[tokio::test]
async fn gzip_only_when_asked_and_over_one_kilobyte() {
    let sandbox = sandbox().await;
    let token = token_for(&sandbox, 4).await;
    let patient = format!("{}/v2/fhir/Patient/-20140000008329", sandbox.origin());

    // Over 1 KB, asked: gzip, and the same document once inflated.
    let plain = fetch(&patient, &token, None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.encoding, None, "not asked, not compressed");
    assert!(plain.body.len() > 1024, "{}", plain.body.len());
    let zipped = fetch(&patient, &token, Some("gzip, deflate, br")).await;
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.encoding.as_deref(), Some("gzip"));
    assert!(zipped.body.len() < plain.body.len());
    let inflated: Value = serde_json::from_slice(&gunzip(&zipped.body)).unwrap();
    assert_eq!(
        inflated,
        serde_json::from_slice::<Value>(&plain.body).unwrap()
    );

    // Under 1 KB, asked: as is. (userinfo is a few hundred bytes; so is a 401.)
    let userinfo = format!("{}/v2/connect/userinfo", sandbox.origin());
    let small = fetch(&userinfo, &token, Some("gzip")).await;
    assert_eq!(small.status, 200);
    assert!(small.body.len() < 1024, "{}", small.body.len());
    assert_eq!(small.encoding, None);
    serde_json::from_slice::<Value>(&small.body).expect("plain JSON");
    let denied = fetch(&patient, "not-a-token", Some("gzip")).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.encoding, None);

    // Only gzip: another coding alone, or gzip refused, gives the body as is.
    for accept in ["br", "deflate", "gzip;q=0", "identity"] {
        let answer = fetch(&patient, &token, Some(accept)).await;
        assert_eq!(answer.encoding, None, "{accept}");
        assert_eq!(answer.body.len(), plain.body.len(), "{accept}");
    }

    // A bundle of megabytes shrinks a lot.
    let big = format!(
        "{}/v2/fhir/ExplanationOfBenefit?_count=50&type=outpatient",
        sandbox.origin()
    );
    let plain = fetch(&big, &token, None).await;
    let zipped = fetch(&big, &token, Some("gzip")).await;
    assert_eq!(zipped.encoding.as_deref(), Some("gzip"));
    assert!(zipped.body.len() * 5 < plain.body.len());
    let inflated: Value = serde_json::from_slice(&gunzip(&zipped.body)).unwrap();
    assert_eq!(
        inflated["total"],
        serde_json::from_slice::<Value>(&plain.body).unwrap()["total"]
    );
}
