//! The Vertex AI adapter: Vertex's URLs and bearer tokens around the Gemini bodies, and the
//! service-account flow (an RS256 JWT exchanged for an access token at the key file's
//! `token_uri`, here the local server, cached across calls).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use switchyard_providers::{AnyProvider, Provider, ProviderConfig, ProviderErrorKind};

use crate::gemini::{
    assert_stream_chunks, assert_tool_request_body, stream_events, tool_answer, tool_request,
};
use crate::upstream::{Recorded, Reply, Upstream};
use crate::{collect, request};

const KEY_PEM: &str = include_str!("fixtures/test-service-account-key.pem");

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
fn provider(toml: &str) -> AnyProvider {
    let config: ProviderConfig = toml::from_str(toml).unwrap();
    assert_eq!(config.kind_name(), "vertex");
    let p = config.build_named("vertex-eu").unwrap();
    assert!(matches!(p, AnyProvider::Vertex(_)));
    p
}

#[tokio::test]
async fn static_token_vertex_urls_and_gemini_bodies() {
    let upstream = Upstream::start(|r: &Recorded| {
        if r.target.contains(":streamGenerateContent") {
            let body: String = stream_events()
                .iter()
                .map(|e| format!("data: {e}\r\n\r\n"))
                .collect();
            Reply::sse_cut(&body, 13)
        } else {
            Reply::json(200, tool_answer())
        }
    })
    .await
    .unwrap();
    let p = provider(&format!(
        "kind = \"vertex\"\nproject = \"my-proj\"\nlocation = \"europe-west4\"\naccess_token = \"ya29.static\"\nbase_url = \"{}\"\n",
        upstream.url("")
    ));
    let r = p
        .complete("gemini-2.5-flash", &request(tool_request()))
        .await
        .unwrap();
    assert_eq!(
        r.choices[0].message.content.as_deref(),
        Some("Checking tomorrow.")
    );
    let chunks: Vec<_> = collect(
        p.stream("gemini-2.5-flash", &request(tool_request()))
            .await
            .unwrap(),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert_stream_chunks(&chunks);

    let sent = upstream.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].target,
        "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        sent[1].target,
        "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    for s in &sent {
        assert_eq!(s.header("authorization"), Some("Bearer ya29.static"));
        assert_eq!(s.header("x-goog-api-key"), None);
        assert_tool_request_body(&s.body);
    }
}

/// Writes a service account key file whose `token_uri` is `token_uri`.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
fn key_file(token_uri: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "switchyard-vertex-test-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = json!({
        "type": "service_account",
        "project_id": "my-proj",
        "private_key_id": "kid-123",
        "private_key": KEY_PEM,
        "client_email": "router@my-proj.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

/// Checks a JWT-bearer token request as Google's token endpoint would: the grant type, and an
/// RS256 assertion signed by the key, for the service account, scope and audience.
fn check_token_request(r: &Recorded, token_uri: &str) -> Result<(), String> {
    if r.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Err(format!("content-type {:?}", r.header("content-type")));
    }
    let form = String::from_utf8(r.raw.clone()).map_err(|e| e.to_string())?;
    let mut grant = None;
    let mut assertion = None;
    for pair in form.split('&') {
        match pair.split_once('=') {
            Some(("grant_type", v)) => grant = Some(v.to_owned()),
            Some(("assertion", v)) => assertion = Some(v.to_owned()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
        return Err(format!("grant_type {grant:?}"));
    }
    let assertion = assertion.ok_or("no assertion")?;
    let parts: Vec<&str> = assertion.split('.').collect();
    let &[header, claims, signature] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    if header != json!({"alg": "RS256", "typ": "JWT", "kid": "kid-123"}) {
        return Err(format!("header {header}"));
    }
    let expected = (
        "router@my-proj.iam.gserviceaccount.com",
        "https://www.googleapis.com/auth/cloud-platform",
        token_uri,
    );
    let got = (
        claims["iss"].as_str().unwrap_or(""),
        claims["scope"].as_str().unwrap_or(""),
        claims["aud"].as_str().unwrap_or(""),
    );
    if got != expected {
        return Err(format!("claims {claims}"));
    }
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp - iat != 3600 || iat < 1_700_000_000 {
        return Err(format!("iat {iat} exp {exp}"));
    }
    // Verify the signature with the key's public half.
    let der: String = KEY_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let pair =
        ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(der).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| "bad signature".to_owned())
}

#[tokio::test]
async fn service_account_tokens_are_exchanged_once_and_reused() {
    let exchanges = Arc::new(AtomicUsize::new(0));
    let counter = exchanges.clone();
    let token_uri = Arc::new(std::sync::OnceLock::<String>::new());
    let uri = token_uri.clone();
    let upstream = Upstream::start(move |r: &Recorded| {
        if r.target == "/token" {
            counter.fetch_add(1, Ordering::SeqCst);
            let token_uri = uri.get().cloned().unwrap_or_default();
            return match check_token_request(r, &token_uri) {
                Ok(()) => Reply::json(200, json!({"access_token": "ya29.from-jwt", "expires_in": 3599, "token_type": "Bearer"})),
                Err(why) => Reply::json(400, json!({"error": "invalid_grant", "error_description": why})),
            };
        }
        if r.header("authorization") != Some("Bearer ya29.from-jwt") {
            return Reply::json(401, json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}));
        }
        Reply::json(200, tool_answer())
    })
    .await
    .unwrap();
    let _ = token_uri.set(upstream.url("/token"));
    let key = key_file(&upstream.url("/token"));
    let p = provider(&format!(
        "kind = \"vertex\"\nproject = \"my-proj\"\nlocation = \"us-central1\"\nservice_account_file = \"{}\"\nbase_url = \"{}\"\n",
        key.display(),
        upstream.url("")
    ));
    for _ in 0..3 {
        let r = p
            .complete("gemini-2.5-pro", &request(json!({})))
            .await
            .unwrap();
        assert_eq!(r.choices.len(), 1);
    }
    assert_eq!(exchanges.load(Ordering::SeqCst), 1, "the token is cached");
    let calls: Vec<Recorded> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.target != "/token")
        .collect();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| {
        c.target
            .starts_with("/v1/projects/my-proj/locations/us-central1/")
    }));
    let _ = std::fs::remove_file(key);
}

#[tokio::test]
async fn a_refused_token_exchange_is_unauthorized_and_nothing_is_called() {
    let upstream = Upstream::start(|r: &Recorded| {
        if r.target == "/token" {
            Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            )
        } else {
            Reply::json(200, tool_answer())
        }
    })
    .await
    .unwrap();
    let key = key_file(&upstream.url("/token"));
    let p = provider(&format!(
        "kind = \"vertex\"\nproject = \"p\"\nlocation = \"global\"\nservice_account_file = \"{}\"\nbase_url = \"{}\"\n",
        key.display(),
        upstream.url("")
    ));
    for err in [
        p.complete("m", &request(json!({}))).await.unwrap_err(),
        p.stream("m", &request(json!({}))).await.err().unwrap(),
    ] {
        assert_eq!(err.kind, ProviderErrorKind::Unauthorized);
        assert!(err.message.contains("Invalid JWT Signature."), "{err}");
    }
    assert!(upstream.requests().iter().all(|r| r.target == "/token"));
    let _ = std::fs::remove_file(key);
}

#[test]
fn config_needs_exactly_one_credential_and_a_readable_key_file() {
    let build = |extra: &str| {
        let config: ProviderConfig = toml::from_str(&format!(
            "kind = \"vertex\"\nproject = \"p\"\nlocation = \"us-central1\"\n{extra}"
        ))
        .unwrap();
        config.build()
    };
    assert!(build("").is_err());
    assert!(build("access_token = \"a\"\nservice_account_file = \"/x.json\"\n").is_err());
    assert!(build("service_account_file = \"/nonexistent/key.json\"\n").is_err());
    let not_a_key = key_file("https://oauth2.googleapis.com/token");
    let text = std::fs::read_to_string(&not_a_key)
        .unwrap()
        .replace("BEGIN PRIVATE KEY", "BEGIN NOTHING")
        .replace('M', "!");
    std::fs::write(&not_a_key, text).unwrap();
    assert!(
        build(&format!(
            "service_account_file = \"{}\"\n",
            not_a_key.display()
        ))
        .is_err()
    );
    let _ = std::fs::remove_file(not_a_key);

    let p = build("access_token = \"ya29.secret\"\n").unwrap();
    assert!(!format!("{p:?}").contains("ya29.secret"));
    // The documented hosts.
    let AnyProvider::Vertex(v) = p else {
        unreachable!("vertex")
    };
    assert_eq!(
        v.generate_url("gemini-2.5-pro", false).as_str(),
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    let global: ProviderConfig = toml::from_str(
        "kind = \"vertex\"\nproject = \"p\"\nlocation = \"global\"\naccess_token = \"t\"\n",
    )
    .unwrap();
    let AnyProvider::Vertex(g) = global.build().unwrap() else {
        unreachable!("vertex")
    };
    assert_eq!(
        g.generate_url("gemini-2.5-pro", true).as_str(),
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
}
