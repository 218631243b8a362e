//! Microsoft's Python clients (`msal`, `msgraph-sdk`, `msgraph-beta-sdk` with `azure-identity`)
//! against the simulator over TLS. Needs a Python with those packages: `SIM_PYTHON`, else
//! `.venv/bin/python` (create it with
//! `python3 -m venv .venv && .venv/bin/pip install msal azure-identity msgraph-sdk msgraph-beta-sdk`).
//! Without one the test reports that it was skipped and passes.
#![cfg(feature = "dev")]

use t2t_operator::sim::{Fixture, SimConfig, Simulator};

const CERT_APP: &str = "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a07";

const SCRIPT: &str = r#"
import asyncio
import os
import sys

base, ca, tenant, client_id, secret, cert_client_id, cert_pem, key_pem = sys.argv[1:9]
os.environ["REQUESTS_CA_BUNDLE"] = ca
os.environ["SSL_CERT_FILE"] = ca
host = base.removeprefix("https://")

import msal  # noqa: E402

app = msal.ConfidentialClientApplication(
    client_id, client_credential=secret, authority=f"{base}/{tenant}", instance_discovery=False)
r = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
assert "access_token" in r, r
assert r.get("token_type") == "Bearer", r
bad = msal.ConfidentialClientApplication(
    client_id, client_credential="wrong", authority=f"{base}/{tenant}", instance_discovery=False)
r = bad.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
assert r.get("error") == "invalid_client" and 7000215 in r.get("error_codes", []), r
# Certificate credential: msal signs the client assertion (x5t) with the app's private key.
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
cert = x509.load_pem_x509_certificate(open(cert_pem, "rb").read())
thumbprint = cert.fingerprint(hashes.SHA1()).hex()
capp = msal.ConfidentialClientApplication(
    cert_client_id,
    client_credential={"private_key": open(key_pem).read(), "thumbprint": thumbprint},
    authority=f"{base}/{tenant}", instance_discovery=False)
r = capp.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
assert "access_token" in r, r
print("msal: ok (secret and certificate)")

from azure.identity.aio import ClientSecretCredential  # noqa: E402
from msgraph import GraphServiceClient  # noqa: E402
from msgraph.generated.users.users_request_builder import UsersRequestBuilder  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from msgraph_beta import GraphServiceClient as BetaClient  # noqa: E402


async def main():
    cred = ClientSecretCredential(tenant, client_id, secret, authority=host,
                                  disable_instance_discovery=True)
    scopes = ["https://graph.microsoft.com/.default"]
    client = GraphServiceClient(credentials=cred, scopes=scopes)
    client.request_adapter.base_url = f"{base}/v1.0"
    org = await client.organization.get()
    initial = [d.name for d in org.value[0].verified_domains if d.is_initial]
    assert initial == [f"{tenant}"] or initial[0].endswith(".onmicrosoft.com"), initial
    skus = await client.subscribed_skus.get()
    assert any(s.sku_part_number == "Cross_tenant_user_data_migration" for s in skus.value)
    q = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "usageLocation"], top=4)
    page = await client.users.get(request_configuration=RequestConfiguration(query_parameters=q))
    n = len(page.value)
    while page.odata_next_link:
        page = await client.users.with_url(page.odata_next_link).get()
        n += len(page.value)
    assert n >= 2, n
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    try:
        await client.users.by_user_id("nobody@nowhere.example").get()
        raise AssertionError("expected a 404")
    except ODataError as e:
        assert e.response_status_code == 404 and e.error.code == "Request_ResourceNotFound", e
    print(f"msgraph-sdk: ok ({n} users)")
    beta = BetaClient(credentials=cred, scopes=scopes)
    beta.request_adapter.base_url = f"{base}/beta"
    org = await beta.organization.get()
    assert org.value[0].id, org
    # The fixture's Contoso admin app has no CrossTenantContentMigration permission.
    from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaError
    try:
        await beta.solutions.migrations.cross_tenant_migration_jobs.get()
        raise AssertionError("expected a 403")
    except BetaError as e:
        assert e.response_status_code == 403 and e.error.code == "Authorization_RequestDenied", e
    print("msgraph-beta-sdk: ok")
    await cred.close()


asyncio.run(main())
print("OK")
"#;

fn python() -> Option<String> {
    let candidates = [
        std::env::var("SIM_PYTHON").ok(),
        Some(".venv/bin/python".to_string()),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import msal, msgraph, msgraph_beta, azure.identity"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test]
async fn msal_and_msgraph_sdks_work_against_the_simulator() {
    let Some(py) = python() else {
        // .ci/run installs the clients and sets SIM_PYTHON: in CI a missing client is a failure.
        assert!(
            std::env::var("CI").is_err(),
            "no Python with msal, azure-identity, msgraph-sdk, msgraph-beta-sdk: .ci/run should have set SIM_PYTHON"
        );
        eprintln!(
            "SKIPPED: no Python with msal, azure-identity, msgraph-sdk, msgraph-beta-sdk (set SIM_PYTHON or create .venv)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let mut fixture =
        Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("fixture");
    // An app in Contoso that signs in with tests/fixtures/app-cert.pem.
    let mut cert_app = fixture.tenants[0].admin_app.clone();
    cert_app.client_id = CERT_APP.parse().expect("guid");
    cert_app.display_name = "certificate-app".into();
    cert_app.client_secret = None;
    cert_app.certificate_pem = Some(include_str!("fixtures/app-cert.pem").into());
    fixture.tenants[0].apps.push(cert_app);
    let mut cfg = SimConfig::new(fixture);
    cfg.ca_out = Some(dir.path().to_path_buf());
    let sim = Simulator::start(cfg).await.expect("start");
    let script = dir.path().join("clients.py");
    std::fs::write(&script, SCRIPT).expect("write script");
    let t = sim
        .tenants()
        .into_iter()
        .find(|t| t.initial_domain == "contoso.onmicrosoft.com")
        .expect("contoso");
    let base = sim.base_url().to_string();
    let ca = dir.path().join("ca.pem");
    let out = tokio::process::Command::new(&py)
        .arg(&script)
        .arg(&base)
        .arg(&ca)
        .arg(t.id.to_string())
        .arg(t.client_id.to_string())
        .arg(t.client_secret.clone().unwrap_or_default())
        .arg(CERT_APP)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/app-cert.pem"
        ))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/app-key.pem"
        ))
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "python clients failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    sim.shutdown().await;
}
