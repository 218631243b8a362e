//! Identity platform over HTTPS: token endpoint (secret, certificate assertion), AADSTS
//! errors, discovery, admin consent, control API basics.
#![cfg(feature = "dev")]

use base64::Engine;
use serde_json::{Value, json};
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";
const CONTOSO_APP: &str = "7a1c9e40-2b6d-4f83-a5e1-0c9d8b7a6f01";
const CONTOSO_SECRET: &str = "contoso-admin-secret-Q8x~v2";

async fn start(fixture: Fixture) -> RunningSimulator {
    Simulator::start(SimConfig::new(fixture))
        .await
        .expect("simulator starts")
}

fn example() -> Fixture {
    Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("example fixture")
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

async fn post_token(sim: &RunningSimulator, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let c = sim.http_client().expect("client");
    let r = c
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
        .form(form)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

fn secret_form<'a>(client: &'a str, secret: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn control_lists_tenants_and_writes_ca() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = SimConfig::new(example());
    cfg.ca_out = Some(dir.path().to_path_buf());
    let sim = Simulator::start(cfg).await.expect("start");
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).expect("ca.pem");
    assert_eq!(ca, sim.ca_pem());
    let c = sim.http_client().expect("client");
    let v: Value = c
        .get(format!("{}/_sim/tenants", sim.base_url()))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let tenants = v["value"].as_array().expect("value");
    assert_eq!(tenants.len(), 2);
    assert_eq!(tenants[0]["id"], CONTOSO);
    assert_eq!(tenants[0]["initialDomain"], "contoso.onmicrosoft.com");
    assert_eq!(tenants[0]["adminApp"]["clientId"], CONTOSO_APP);
    assert_eq!(tenants[0]["adminApp"]["clientSecret"], CONTOSO_SECRET);
    sim.shutdown().await;
}

#[tokio::test]
async fn client_secret_token_has_real_claims() {
    let sim = start(example()).await;
    let (status, body) = post_token(
        &sim,
        CONTOSO,
        &secret_form(
            CONTOSO_APP,
            CONTOSO_SECRET,
            "https://graph.microsoft.com/.default",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_i64(), "expires_in is a number");
    assert!(body["ext_expires_in"].is_i64());
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["tid"], CONTOSO);
    assert_eq!(c["appid"], CONTOSO_APP);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{CONTOSO}/"));
    let roles: Vec<&str> = c["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(roles.contains(&"User.ReadWrite.All"));
    assert!(!roles.contains(&"Exchange.ManageAsApp"));

    // The tenant's domain works as well as its id; the Exchange audience carries Exchange roles.
    let (status, body) = post_token(
        &sim,
        "contoso.onmicrosoft.com",
        &secret_form(
            CONTOSO_APP,
            CONTOSO_SECRET,
            "https://outlook.office365.com/.default",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["aud"], "https://outlook.office365.com");
    assert_eq!(c["roles"], json!(["Exchange.ManageAsApp"]));
    sim.shutdown().await;
}

fn assert_aadsts(status: u16, body: &Value, want_status: u16, error: &str, code: u64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let desc = body["error_description"].as_str().expect("description");
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(desc.contains("Trace ID: ") && desc.contains("Correlation ID: "));
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

#[tokio::test]
async fn token_errors_are_aadsts_bodies() {
    let sim = start(example()).await;
    let graph = "https://graph.microsoft.com/.default";
    let (s, b) = post_token(&sim, CONTOSO, &secret_form(CONTOSO_APP, "wrong", graph)).await;
    assert_aadsts(s, &b, 401, "invalid_client", 7000215);

    let unknown = "00000000-1111-2222-3333-444444444444";
    let (s, b) = post_token(&sim, CONTOSO, &secret_form(unknown, "x", graph)).await;
    assert_aadsts(s, &b, 400, "unauthorized_client", 700016);

    // The Fabrikam admin app is not consented in Contoso.
    let fab_app = "5d8f2a10-6c3b-4e9a-8f70-1b2c3d4e5f02";
    let (s, b) = post_token(&sim, CONTOSO, &secret_form(fab_app, "x", graph)).await;
    assert_aadsts(s, &b, 400, "unauthorized_client", 700016);

    let (s, b) = post_token(
        &sim,
        "nosuch.onmicrosoft.com",
        &secret_form(CONTOSO_APP, CONTOSO_SECRET, graph),
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 90002);

    let (s, b) = post_token(
        &sim,
        CONTOSO,
        &secret_form(CONTOSO_APP, CONTOSO_SECRET, "User.Read"),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_scope");

    let (s, b) = post_token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CONTOSO_APP),
            ("scope", graph),
        ],
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 7000218);
    sim.shutdown().await;
}

#[tokio::test]
async fn discovery_document_points_at_the_simulator() {
    let sim = start(example()).await;
    let c = sim.http_client().expect("client");
    let v: Value = c
        .get(format!(
            "{}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration",
            sim.base_url()
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        v["token_endpoint"],
        format!("{}/{CONTOSO}/oauth2/v2.0/token", sim.base_url())
    );
    assert_eq!(
        v["issuer"],
        format!("https://login.microsoftonline.com/{CONTOSO}/v2.0")
    );
    let keys: Value = c
        .get(v["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(keys["keys"][0]["kty"], "RSA");
    sim.shutdown().await;
}

/// An RSA certificate registered on an app, and the matching private key (PKCS#1 DER).
fn rsa_cert() -> (String, Vec<u8>, Vec<u8>) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa");
    let pkcs8 = key.to_pkcs8_der().expect("pkcs8");
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("keypair");
    let cert = rcgen::CertificateParams::new(vec!["t2t-operator".to_string()])
        .expect("params")
        .self_signed(&kp)
        .expect("cert");
    let pkcs1 = key.to_pkcs1_der().expect("pkcs1");
    (cert.pem(), cert.der().to_vec(), pkcs1.as_bytes().to_vec())
}

fn cert_fixture(cert_pem: &str) -> Fixture {
    let indented: String = cert_pem.lines().map(|l| format!("        {l}\n")).collect();
    let yaml = format!(
        "tenants:\n  - id: {CONTOSO}\n    displayName: Contoso\n    initialDomain: contoso.onmicrosoft.com\n    adminApp:\n      clientId: {CONTOSO_APP}\n      displayName: cert app\n      graphRoles: [User.Read.All]\n      certificatePem: |\n{indented}"
    );
    Fixture::parse(&yaml).expect("fixture")
}

fn assertion(
    alg: jsonwebtoken::Algorithm,
    der: &[u8],
    key: &[u8],
    aud: &str,
    exp_offset: i64,
) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut h = jsonwebtoken::Header::new(alg);
    if alg == jsonwebtoken::Algorithm::RS256 {
        h.x5t = Some(b64.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            der,
        )));
    } else {
        h.x5t_s256 = Some(b64.encode(ring::digest::digest(&ring::digest::SHA256, der)));
    }
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": aud, "iss": CONTOSO_APP, "sub": CONTOSO_APP,
        "jti": uuid::Uuid::new_v4(), "nbf": now - 60, "exp": now + exp_offset,
    });
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_rsa_der(key)).expect("sign")
}

#[tokio::test]
async fn certificate_assertions_rs256_and_ps256() {
    let (pem, der, key) = rsa_cert();
    let sim = start(cert_fixture(&pem)).await;
    let aud = format!("https://login.microsoftonline.com/{CONTOSO}/oauth2/v2.0/token");
    for alg in [
        jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::Algorithm::PS256,
    ] {
        let a = assertion(alg, &der, &key, &aud, 600);
        let (s, b) = post_token(
            &sim,
            CONTOSO,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CONTOSO_APP),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &a),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
        assert_eq!(s, 200, "{alg:?}: {b}");
        assert_eq!(
            claims(b["access_token"].as_str().expect("t"))["appidacr"],
            "2"
        );
    }
    // Expired beyond the five minutes of skew.
    let a = assertion(jsonwebtoken::Algorithm::RS256, &der, &key, &aud, -900);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CONTOSO_APP),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", a.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (s, b) = post_token(&sim, CONTOSO, &form).await;
    assert_aadsts(s, &b, 401, "invalid_client", 700024);

    // Signed by a key that is not the registered certificate's.
    let (_, _, other_key) = rsa_cert();
    let a = assertion(jsonwebtoken::Algorithm::RS256, &der, &other_key, &aud, 600);
    let mut form2 = form;
    form2[3].1 = a.as_str();
    let (s, b) = post_token(&sim, CONTOSO, &form2).await;
    assert_aadsts(s, &b, 401, "invalid_client", 700027);
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_consent_creates_service_principal_in_foreign_tenant() {
    let sim = start(example()).await;
    // Fabrikam's admin app is single-tenant: consent from Contoso is refused.
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("ca"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = c
        .get(format!(
            "{}/contoso.onmicrosoft.com/adminconsent?client_id=5d8f2a10-6c3b-4e9a-8f70-1b2c3d4e5f02",
            sim.base_url()
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error_codes"], json!([50194]));
    sim.shutdown().await;
}

fn fed_assertion(key: &[u8], iss: &str, sub: &str, aud: &str, exp_offset: i64) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("k1".into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": iss, "sub": sub, "aud": [aud], "iat": now, "nbf": now - 10, "exp": now + exp_offset});
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_rsa_der(key)).expect("sign")
}

/// Workload identity: assertions from a federated issuer, with keys from the fixture or
/// discovered over HTTPS from the issuer (a tiny OIDC issuer served by this test).
#[tokio::test]
async fn federated_assertions_static_and_discovered_keys() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa");
    let der = key.to_pkcs1_der().expect("der").as_bytes().to_vec();
    let pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // The issuer: discovery document + JWKS over HTTPS with its own CA.
    let tls = t2t_operator::sim::tls::generate(&[]).expect("tls");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer = format!(
        "https://127.0.0.1:{}/oidc",
        tcp.local_addr().expect("addr").port()
    );
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": b64.encode(key.n().to_bytes_be()), "e": b64.encode(key.e().to_bytes_be())}]});
    let disco = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")});
    let router = axum::Router::new()
        .route(
            "/oidc/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(disco) }),
        )
        .route(
            "/oidc/keys",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
    let listener =
        t2t_operator::sim::tls::TlsListener::new(tcp, tls.server_config.clone()).expect("listener");
    tokio::spawn(async move { axum::serve(listener, router.into_make_service()).await });

    let indented: String = pem
        .lines()
        .map(|l| format!("              {l}\n"))
        .collect();
    let yaml = format!(
        "tenants:\n  - id: {CONTOSO}\n    displayName: Contoso\n    initialDomain: contoso.onmicrosoft.com\n    adminApp:\n      clientId: {CONTOSO_APP}\n      displayName: wi app\n      graphRoles: [User.Read.All]\n      federatedCredentials:\n        - name: static\n          issuer: https://kube.example\n          subject: system:serviceaccount:t2t:operator\n          publicKeysPem:\n            - |\n{indented}        - name: discovered\n          issuer: {issuer}\n          subject: system:serviceaccount:t2t:operator\n"
    );
    let mut cfg = SimConfig::new(Fixture::parse(&yaml).expect("fixture"));
    cfg.trusted_ca_pems = vec![tls.ca_pem.clone()];
    let sim = Simulator::start(cfg).await.expect("start");
    let form = |a: &str| -> Vec<(String, String)> {
        vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), CONTOSO_APP.into()),
            (
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion".into(), a.into()),
            (
                "scope".into(),
                "https://graph.microsoft.com/.default".into(),
            ),
        ]
    };
    let post = |f: Vec<(String, String)>| {
        let sim = &sim;
        async move {
            let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            post_token(sim, CONTOSO, &refs).await
        }
    };
    let sub = "system:serviceaccount:t2t:operator";
    let aud = "api://AzureADTokenExchange";
    for iss in ["https://kube.example", issuer.as_str()] {
        let (s, b) = post(form(&fed_assertion(&der, iss, sub, aud, 600))).await;
        assert_eq!(s, 200, "{iss}: {b}");
        assert_eq!(
            claims(b["access_token"].as_str().expect("t"))["roles"],
            json!(["User.Read.All"])
        );
    }
    let (s, b) = post(form(&fed_assertion(
        &der,
        "https://other.example",
        sub,
        aud,
        600,
    )))
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 700211);
    let (s, b) = post(form(&fed_assertion(
        &der,
        "https://kube.example",
        "system:serviceaccount:x:y",
        aud,
        600,
    )))
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 700213);
    let (s, b) = post(form(&fed_assertion(
        &der,
        "https://kube.example",
        sub,
        "api://other",
        600,
    )))
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 700212);
    let (s, b) = post(form(&fed_assertion(
        &der,
        "https://kube.example",
        sub,
        aud,
        -900,
    )))
    .await;
    assert_aadsts(s, &b, 400, "invalid_client", 700024);
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa");
    let other = other.to_pkcs1_der().expect("der").as_bytes().to_vec();
    for iss in ["https://kube.example", issuer.as_str()] {
        let (s, b) = post(form(&fed_assertion(&other, iss, sub, aud, 600))).await;
        assert_aadsts(s, &b, 400, "invalid_client", 50013);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_in_simulated_time() {
    let mut cfg = SimConfig::new(example());
    cfg.time_scale = 0.0;
    cfg.token_lifetime = std::time::Duration::from_secs(60);
    let sim = Simulator::start(cfg).await.expect("start");
    let (s, b) = post_token(
        &sim,
        CONTOSO,
        &secret_form(
            CONTOSO_APP,
            CONTOSO_SECRET,
            "https://graph.microsoft.com/.default",
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["expires_in"], 60);
    let graph = b["access_token"].as_str().expect("t").to_string();
    let exo = sim
        .admin_token(CONTOSO, t2t_operator::sim::testkit::EXCHANGE_SCOPE)
        .await
        .expect("t");
    let c = sim.http_client().expect("client");
    let get = || {
        c.get(format!("{}/v1.0/organization", sim.base_url()))
            .bearer_auth(&graph)
            .send()
    };
    assert_eq!(get().await.expect("send").status().as_u16(), 200);
    sim.advance_clock(chrono::Duration::seconds(61));
    let r = get().await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        v["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    let (s, _) = sim
        .invoke(&exo, CONTOSO, "Get-OrganizationConfig", json!({}))
        .await
        .expect("invoke");
    assert_eq!(s, 401);
    sim.shutdown().await;
}
