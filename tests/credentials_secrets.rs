//! Tenant credentials read from Kubernetes Secrets (through the API emulator): PEM and PFX
//! certificates, with and without a password, and the errors a user sees when a Secret is wrong.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use t2t_operator::api::{CertificateCredential, CertificateFormat, CredentialsSpec};
use t2t_operator::controller::credentials::load;
use t2t_operator::controller::error::ReconcileError;
use t2t_operator::kubeemu::KubeEmu;
use t2t_operator::tenant::Credential;
use t2t_operator::tenant::identity::CertificateKey;

const TENANT: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT: &str = "22222222-2222-2222-2222-222222222222";
const PASSWORD: &str = "fixture-pass";

async fn secret(api: &Api<Secret>, name: &str, data: &[(&str, &[u8])]) {
    let data: BTreeMap<String, ByteString> = data
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
        .collect();
    api.create(
        &PostParams::default(),
        &Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        },
    )
    .await
    .expect("secret");
}

fn cert_spec(
    secret: &str,
    format: CertificateFormat,
    password_key: Option<&str>,
) -> CredentialsSpec {
    CredentialsSpec {
        client_id: CLIENT.into(),
        client_secret: None,
        certificate: Some(CertificateCredential {
            secret_name: secret.into(),
            certificate_key: None,
            private_key_key: None,
            password_key: password_key.map(str::to_string),
            format,
        }),
        workload_identity: None,
    }
}

fn x5t(c: &Credential) -> String {
    match c {
        Credential::Certificate(k) => k.x5t().to_string(),
        _ => panic!("not a certificate credential"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_load_from_secrets_and_bad_ones_say_what_is_wrong() {
    let emu = KubeEmu::start(Default::default()).await.expect("emu");
    let client = emu.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let pem_x5t = CertificateKey::from_pem(
        include_bytes!("fixtures/app-cert.pem"),
        include_bytes!("fixtures/app-key.pem"),
    )
    .expect("pem")
    .x5t()
    .to_string();

    // PEM under the kubernetes.io/tls keys.
    secret(
        &secrets,
        "pem",
        &[
            ("tls.crt", include_bytes!("fixtures/app-cert.pem")),
            ("tls.key", include_bytes!("fixtures/app-key.pem")),
        ],
    )
    .await;
    let c = load(
        &secrets,
        TENANT,
        &cert_spec("pem", CertificateFormat::Pem, None),
    )
    .await
    .expect("pem");
    assert_eq!(x5t(&c.credential), pem_x5t);

    // PFX with its password (as `kubectl create secret --from-file` leaves it: trailing newline).
    secret(
        &secrets,
        "pfx",
        &[
            ("certificate.pfx", include_bytes!("fixtures/app.pfx")),
            ("password", format!("{PASSWORD}\n").as_bytes()),
        ],
    )
    .await;
    let c = load(
        &secrets,
        TENANT,
        &cert_spec("pfx", CertificateFormat::Pfx, Some("password")),
    )
    .await
    .expect("pfx");
    assert_eq!(
        x5t(&c.credential),
        pem_x5t,
        "the same certificate as the PEM"
    );
    assert!(!format!("{c:?}").contains(PASSWORD));

    // PFX exported without a password: no passwordKey.
    secret(
        &secrets,
        "pfx-nopass",
        &[("certificate.pfx", include_bytes!("fixtures/app-nopass.pfx"))],
    )
    .await;
    let c = load(
        &secrets,
        TENANT,
        &cert_spec("pfx-nopass", CertificateFormat::Pfx, None),
    )
    .await
    .expect("pfx without password");
    assert_eq!(x5t(&c.credential), pem_x5t);

    // Wrong password: InvalidSpec naming the Secret and key, never the password.
    secret(
        &secrets,
        "pfx-wrong",
        &[
            ("certificate.pfx", include_bytes!("fixtures/app.pfx")),
            ("password", b"not-the-password"),
        ],
    )
    .await;
    let err = load(
        &secrets,
        TENANT,
        &cert_spec("pfx-wrong", CertificateFormat::Pfx, Some("password")),
    )
    .await
    .expect_err("wrong password");
    let msg = err.to_string();
    assert!(matches!(err, ReconcileError::InvalidSpec(_)), "{err:?}");
    assert!(
        msg.contains("Secret pfx-wrong key certificate.pfx"),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("password"), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");

    // A PEM file declared as PFX.
    let err = load(
        &secrets,
        TENANT,
        &cert_spec("pem", CertificateFormat::Pfx, None),
    )
    .await
    .expect_err("no certificate.pfx key");
    assert!(err.to_string().contains("certificate.pfx"), "{err}");

    // The password key missing from the Secret.
    let err = load(
        &secrets,
        TENANT,
        &cert_spec("pfx-nopass", CertificateFormat::Pfx, Some("password")),
    )
    .await
    .expect_err("no password key");
    assert!(
        matches!(err, ReconcileError::SecretNotFound(_)) && err.to_string().contains("password"),
        "{err:?}"
    );
    emu.shutdown().await;
}
