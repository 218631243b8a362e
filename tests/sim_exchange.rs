//! Exchange Online InvokeCommand over HTTPS: transport, authorisation, error shape, paging and
//! the tenant-setup / MailUser-preparation cmdlets.
#![cfg(feature = "dev")]

use serde_json::{Value, json};
use t2t_operator::sim::fixture::AppFixture;
use t2t_operator::sim::testkit::{EXCHANGE_SCOPE, GRAPH_SCOPE, encrypt_secure_string};
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";
const FABRIKAM: &str = "9c4e7d2b-1a5f-4c8e-b3d6-7e0f1a2b3c02";
const MIG_APP: &str = "0b7e4f52-3c1d-4a6b-9e8f-2d3c4b5a6f03";
const MIG_SECRET: &str = "migration-app-secret-W1n~q4";

fn fixture() -> Fixture {
    let mut fx =
        Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("example fixture");
    // The cross-tenant migration app, registered (multitenant) and consented in the target.
    fx.tenants[1].apps.push(AppFixture {
        client_id: MIG_APP.parse().expect("guid"),
        display_name: "fabrikam_Friends_contoso".into(),
        client_secret: Some(MIG_SECRET.into()),
        certificate_pem: None,
        graph_roles: vec![],
        exchange_roles: vec!["Mailbox.Migration".into()],
        directory_roles: vec![],
        sign_in_audience: Some("AzureADMultipleOrgs".into()),
        redirect_uris: vec!["https://office.com".into()],
        federated_credentials: vec![],
    });
    // An app with Exchange.ManageAsApp but no directory role, and a read-only one.
    fx.tenants[0].apps.push(AppFixture {
        client_id: "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a04"
            .parse()
            .expect("guid"),
        display_name: "no directory role".into(),
        client_secret: Some("norole-secret".into()),
        certificate_pem: None,
        graph_roles: vec![],
        exchange_roles: vec!["Exchange.ManageAsApp".into()],
        directory_roles: vec![],
        sign_in_audience: None,
        redirect_uris: vec![],
        federated_credentials: vec![],
    });
    fx.tenants[0].apps.push(AppFixture {
        client_id: "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a05"
            .parse()
            .expect("guid"),
        display_name: "global reader".into(),
        client_secret: Some("reader-secret".into()),
        certificate_pem: None,
        graph_roles: vec![],
        exchange_roles: vec!["Exchange.ManageAsApp".into()],
        directory_roles: vec!["Global Reader".into()],
        sign_in_audience: None,
        redirect_uris: vec![],
        federated_credentials: vec![],
    });
    fx
}

struct Env {
    sim: RunningSimulator,
    src: String,
    tgt: String,
}

async fn env() -> Env {
    let sim = Simulator::start(SimConfig::new(fixture()))
        .await
        .expect("start");
    let src = sim.admin_token(CONTOSO, EXCHANGE_SCOPE).await.expect("src");
    let tgt = sim
        .admin_token(FABRIKAM, EXCHANGE_SCOPE)
        .await
        .expect("tgt");
    Env { sim, src, tgt }
}

impl Env {
    async fn call(&self, tenant: &str, cmdlet: &str, params: Value) -> (u16, Value) {
        let token = if tenant == CONTOSO {
            &self.src
        } else {
            &self.tgt
        };
        let (s, b) = self
            .sim
            .invoke(token, tenant, cmdlet, params)
            .await
            .expect("invoke");
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn ok(&self, tenant: &str, cmdlet: &str, params: Value) -> Value {
        let (s, b) = self.call(tenant, cmdlet, params).await;
        assert_eq!(s, 200, "{cmdlet}: {b}");
        assert!(b["@adminapi.warnings"].is_array(), "{b}");
        b
    }

    async fn err(&self, tenant: &str, cmdlet: &str, params: Value) -> (String, String) {
        let (s, b) = self.call(tenant, cmdlet, params).await;
        assert_eq!(s, 400, "{cmdlet}: {b}");
        assert_eq!(b["error"]["code"], "BadRequest");
        let msg = b["error"]["details"][0]["message"]
            .as_str()
            .expect("details");
        let parts: Vec<&str> = msg.splitn(3, '|').collect();
        assert_eq!(parts.len(), 3, "{msg}");
        assert_eq!(
            b["error"]["innererror"]["internalexception"]["type"],
            parts[1]
        );
        (parts[1].to_string(), parts[2].to_string())
    }
}

#[tokio::test]
async fn authorization_is_strict() {
    let e = env().await;
    let params = json!({});
    // No token.
    let c = e.sim.http_client().expect("client");
    let r = c
        .post(format!(
            "{}/adminapi/beta/{CONTOSO}/InvokeCommand",
            e.sim.base_url()
        ))
        .json(&json!({"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // A Graph token.
    let graph = e.sim.admin_token(CONTOSO, GRAPH_SCOPE).await.expect("t");
    let (s, _) = e
        .sim
        .invoke(&graph, CONTOSO, "Get-OrganizationConfig", params.clone())
        .await
        .expect("invoke");
    assert_eq!(s, 401);
    // Another tenant's token.
    let (s, _) = e
        .sim
        .invoke(&e.tgt, CONTOSO, "Get-OrganizationConfig", params.clone())
        .await
        .expect("invoke");
    assert_eq!(s, 401);
    // Exchange.ManageAsApp without a directory role: 403 with a NUL body.
    let t = e
        .sim
        .token_for(
            CONTOSO,
            "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a04",
            "norole-secret",
            EXCHANGE_SCOPE,
        )
        .await
        .expect("t");
    let (s, body) = e
        .sim
        .invoke(&t, CONTOSO, "Get-OrganizationConfig", params.clone())
        .await
        .expect("invoke");
    assert_eq!(s, 403);
    assert!(!body.is_empty() && body.iter().all(|b| *b == 0));
    // Global Reader: reads yes, writes no.
    let t = e
        .sim
        .token_for(
            CONTOSO,
            "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a05",
            "reader-secret",
            EXCHANGE_SCOPE,
        )
        .await
        .expect("t");
    let (s, _) = e
        .sim
        .invoke(&t, CONTOSO, "Get-Mailbox", json!({"Identity": "alice"}))
        .await
        .expect("invoke");
    assert_eq!(s, 200);
    let (s, _) = e
        .sim
        .invoke(&t, CONTOSO, "Enable-OrganizationCustomization", json!({}))
        .await
        .expect("invoke");
    assert_eq!(s, 403);
    // Unknown cmdlet: 403 too.
    let (s, _) = e
        .sim
        .invoke(&e.src, CONTOSO, "Get-NoSuchThing", json!({}))
        .await
        .expect("invoke");
    assert_eq!(s, 403);
    // v1.0 does not answer InvokeCommand.
    let r = c
        .post(format!(
            "{}/adminapi/v1.0/{CONTOSO}/InvokeCommand",
            e.sim.base_url()
        ))
        .bearer_auth(&e.src)
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 405);
    // The tenant's domain works in the URL as well as its id.
    let (s, _) = e
        .sim
        .invoke(
            &e.src,
            "contoso.onmicrosoft.com",
            "Get-OrganizationConfig",
            json!({}),
        )
        .await
        .expect("invoke");
    assert_eq!(s, 200);
}

#[tokio::test]
async fn error_shape_and_parameter_binding() {
    let e = env().await;
    let (ty, text) = e
        .err(
            CONTOSO,
            "Get-Mailbox",
            json!({"Identity": "nobody@contoso.com"}),
        )
        .await;
    assert_eq!(
        ty,
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    );
    assert!(text.starts_with("The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found on '"), "{text}");
    let (_, b) = e
        .call(CONTOSO, "Get-Mailbox", json!({"Identity": "nobody"}))
        .await;
    assert!(
        b["error"]["details"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Ex6F9304|"))
    );

    let (ty, text) = e
        .err(
            CONTOSO,
            "Get-Mailbox",
            json!({"Identity": "alice", "Bogus": 1}),
        )
        .await;
    assert_eq!(ty, "System.Management.Automation.ParameterBindingException");
    assert_eq!(
        text,
        "A parameter cannot be found that matches parameter name 'Bogus'."
    );

    let (ty, text) = e.err(CONTOSO, "Set-MailUser", json!({})).await;
    assert_eq!(ty, "System.Management.Automation.ParameterBindingException");
    assert_eq!(
        text,
        "Cannot process command because of one or more missing mandatory parameters: Identity."
    );
}

#[tokio::test]
async fn get_mailbox_properties_result_size_and_paging() {
    let e = env().await;
    let b = e
        .ok(
            CONTOSO,
            "Get-Mailbox",
            json!({"Identity": "carol@contoso.com"}),
        )
        .await;
    let m = &b["value"][0];
    assert_eq!(m["RecipientTypeDetails"], "UserMailbox");
    assert_eq!(m["ArchiveStatus"], "Active");
    let aux = m["MailboxLocations"]
        .as_array()
        .expect("locations")
        .iter()
        .filter(|l| {
            l.as_str()
                .is_some_and(|s| s.to_lowercase().contains("auxarchive"))
        })
        .count();
    assert_eq!(aux, 2);
    assert_eq!(m["PersistedCapabilities"], json!(["ExchangeT2TMbxMove"]));
    assert!(
        m["LegacyExchangeDN"]
            .as_str()
            .is_some_and(|s| s.starts_with("/o=ExchangeLabs/"))
    );
    let b = e
        .ok(CONTOSO, "Get-Mailbox", json!({"Identity": "info"}))
        .await;
    assert_eq!(b["value"][0]["RecipientTypeDetails"], "SharedMailbox");
    assert_eq!(b["value"][0]["GrantSendOnBehalfTo"], json!(["bob"]));

    // ResultSize truncates with a warning.
    let b = e.ok(CONTOSO, "Get-Mailbox", json!({"ResultSize": 2})).await;
    assert_eq!(b["value"].as_array().map(Vec::len), Some(2));
    assert!(
        b["@adminapi.warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("ResultSize"))
    );
    let all = e
        .ok(CONTOSO, "Get-Mailbox", json!({"ResultSize": "Unlimited"}))
        .await;
    let total = all["value"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(total, 11);

    // $select trims output.
    let c = e.sim.http_client().expect("client");
    let r: Value = c
        .post(format!("{}/adminapi/beta/{CONTOSO}/InvokeCommand?$select=Name,ExchangeGuid", e.sim.base_url()))
        .bearer_auth(&e.src)
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": "alice"}}}))
        .send().await.expect("send").json().await.expect("json");
    let keys: Vec<&String> = r["value"][0].as_object().expect("obj").keys().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");

    // Prefer: odata.maxpagesize pages with an opaque nextLink re-POSTed with the same body.
    let body = json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}});
    let mut url = format!("{}/adminapi/beta/{CONTOSO}/InvokeCommand", e.sim.base_url());
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let r: Value = c
            .post(&url)
            .bearer_auth(&e.src)
            .header("Prefer", "odata.maxpagesize=4")
            .json(&body)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        seen += r["value"].as_array().map(Vec::len).unwrap_or(0);
        pages += 1;
        match r["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!((seen, pages), (total, 3));
    // A tampered cursor is refused.
    let r = c
        .post(format!(
            "{}/adminapi/beta/{CONTOSO}/InvokeCommand?$skiptoken=bogus",
            e.sim.base_url()
        ))
        .bearer_auth(&e.src)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Expired or Invalid pagination request"))
    );
}

#[tokio::test]
async fn organization_customization_and_relationships() {
    let e = env().await;
    let b = e.ok(FABRIKAM, "Get-OrganizationConfig", json!({})).await;
    assert_eq!(b["value"][0]["IsDehydrated"], true);
    let rel = json!({"Name": "contoso", "DomainNames": [CONTOSO], "Enabled": true,
                     "MailboxMoveEnabled": true, "MailboxMoveCapability": "Inbound"});
    let mut probe = rel.clone();
    probe["WhatIf"] = json!(true);
    let (ty, text) = e
        .err(FABRIKAM, "New-OrganizationRelationship", probe.clone())
        .await;
    assert!(ty.ends_with("CmdletInvalidOperationInDehydratedContextException"));
    assert!(text.contains("Enable-OrganizationCustomization"));
    e.ok(FABRIKAM, "Enable-OrganizationCustomization", json!({}))
        .await;
    let (_, text) = e
        .err(FABRIKAM, "Enable-OrganizationCustomization", json!({}))
        .await;
    assert_eq!(
        text,
        "This operation is not required. Organization is already enabled for customization."
    );
    // -WhatIf now passes and changes nothing.
    let b = e.ok(FABRIKAM, "New-OrganizationRelationship", probe).await;
    assert_eq!(b["value"], json!([]));
    let b = e
        .ok(FABRIKAM, "Get-OrganizationRelationship", json!({}))
        .await;
    assert_eq!(b["value"], json!([]));

    let b = e
        .ok(FABRIKAM, "New-OrganizationRelationship", rel.clone())
        .await;
    assert_eq!(b["value"][0]["MailboxMoveCapability"], "Inbound");
    assert_eq!(b["value"][0]["DomainNames"], json!([CONTOSO]));
    let (ty, _) = e.err(FABRIKAM, "New-OrganizationRelationship", rel).await;
    assert!(ty.ends_with("ManagementObjectAlreadyExistsException"));
    let (ty, text) = e
        .err(
            FABRIKAM,
            "Set-OrganizationRelationship",
            json!({"Identity": "contoso", "MailboxMoveCapability": "Sideways"}),
        )
        .await;
    assert!(ty.contains("ParameterBinding"));
    assert!(text.contains("None, Inbound, Outbound, RemoteInbound, RemoteOutbound"));
    let b = e
        .ok(
            FABRIKAM,
            "Set-OrganizationRelationship",
            json!({"Identity": "contoso", "MailboxMoveEnabled": true}),
        )
        .await;
    assert!(
        b["@adminapi.warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("no settings"))
    );
    e.ok(
        FABRIKAM,
        "Set-OrganizationRelationship",
        json!({"Identity": "contoso", "MailboxMoveCapability": "Inbound, RemoteOutbound"}),
    )
    .await;
    let b = e
        .ok(
            FABRIKAM,
            "Get-OrganizationRelationship",
            json!({"Identity": "contoso"}),
        )
        .await;
    assert_eq!(
        b["value"][0]["MailboxMoveCapability"],
        "Inbound, RemoteOutbound"
    );
    e.ok(
        FABRIKAM,
        "Remove-OrganizationRelationship",
        json!({"Identity": "contoso"}),
    )
    .await;
    e.err(
        FABRIKAM,
        "Get-OrganizationRelationship",
        json!({"Identity": "contoso"}),
    )
    .await;
}

#[tokio::test]
async fn scope_group_membership() {
    let e = env().await;
    let b = e
        .ok(
            CONTOSO,
            "New-DistributionGroup",
            json!({"Name": "Wave 2 Scope", "Type": "Security"}),
        )
        .await;
    assert_eq!(
        b["value"][0]["RecipientTypeDetails"],
        "MailUniversalSecurityGroup"
    );
    e.ok(
        CONTOSO,
        "Add-DistributionGroupMember",
        json!({"Identity": "Wave 2 Scope", "Member": "heidi@contoso.com"}),
    )
    .await;
    let (ty, _) = e
        .err(
            CONTOSO,
            "Add-DistributionGroupMember",
            json!({"Identity": "Wave 2 Scope", "Member": "heidi"}),
        )
        .await;
    assert!(ty.ends_with("MemberAlreadyExistsException"));
    let b = e
        .ok(
            CONTOSO,
            "Get-DistributionGroupMember",
            json!({"Identity": "Wave 2 Scope"}),
        )
        .await;
    assert_eq!(b["value"][0]["Name"], "heidi");
    e.ok(
        CONTOSO,
        "Remove-DistributionGroupMember",
        json!({"Identity": "Wave 2 Scope", "Member": "heidi"}),
    )
    .await;
    let (ty, _) = e
        .err(
            CONTOSO,
            "Remove-DistributionGroupMember",
            json!({"Identity": "Wave 2 Scope", "Member": "heidi"}),
        )
        .await;
    assert!(ty.ends_with("MemberNotFoundException"));
    let (ty, _) = e
        .err(
            CONTOSO,
            "New-DistributionGroup",
            json!({"Name": "Wave 2 Scope"}),
        )
        .await;
    assert!(ty.ends_with("ADObjectAlreadyExistsException"));
}

/// The whole cross-tenant setup of the article, then MailUser preparation, checked by
/// Test-MigrationServerAvailability.
#[tokio::test]
async fn cross_tenant_setup_and_mail_user_preparation() {
    let e = env().await;
    let key = e.sim.securestring_key().await.expect("key");
    let enc = encrypt_secure_string(&key, MIG_SECRET).expect("encrypt");
    let endpoint = json!({"Name": "contoso-ep", "ExchangeRemoteMove": true,
        "RemoteServer": "outlook.office.com", "RemoteTenant": "contoso.onmicrosoft.com",
        "ApplicationId": MIG_APP, "Credentials": {"UserName": MIG_APP, "Password": enc}});
    // Not consented in the source yet: the connectivity check fails.
    let (ty, text) = e
        .err(FABRIKAM, "New-MigrationEndpoint", endpoint.clone())
        .await;
    assert!(ty.ends_with("MigrationServerConnectionFailedException"));
    assert!(text.contains("AADSTS700016"), "{text}");
    // A wrong secret fails too.
    let mut wrong = endpoint.clone();
    wrong["Credentials"]["Password"] = json!(encrypt_secure_string(&key, "nope").expect("enc"));
    // Source admin consents through the adminconsent URL.
    let c = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(e.sim.ca_pem().as_bytes()).expect("ca"),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = c
        .get(format!("{}/contoso.onmicrosoft.com/adminconsent?client_id={MIG_APP}&redirect_uri=https://office.com&state=s1", e.sim.base_url()))
        .send().await.expect("send");
    assert_eq!(r.status().as_u16(), 303);
    let loc = r.headers()["location"].to_str().expect("loc").to_string();
    assert_eq!(
        loc,
        format!("https://office.com?tenant={CONTOSO}&admin_consent=True&state=s1")
    );
    let (_, text) = e.err(FABRIKAM, "New-MigrationEndpoint", wrong).await;
    assert!(text.contains("AADSTS7000215"), "{text}");
    let b = e.ok(FABRIKAM, "New-MigrationEndpoint", endpoint).await;
    assert_eq!(b["value"][0]["EndpointType"], "ExchangeRemoteMove");
    assert_eq!(b["value"][0]["MaxConcurrentMigrations"], 100);
    assert_eq!(b["value"][0]["MaxConcurrentIncrementalSyncs"], 20);

    let tmsa = json!({"Endpoint": "contoso-ep"});
    let b = e
        .ok(FABRIKAM, "Test-MigrationServerAvailability", tmsa.clone())
        .await;
    assert_eq!(b["value"][0]["Result"], "Failed");
    assert!(
        b["value"][0]["Message"]
            .as_str()
            .is_some_and(|m| m.contains("No Organization relationship on TARGET"))
    );

    e.ok(FABRIKAM, "Enable-OrganizationCustomization", json!({}))
        .await;
    e.ok(
        FABRIKAM,
        "New-OrganizationRelationship",
        json!({"Name": "contoso", "DomainNames": [CONTOSO],
        "Enabled": true, "MailboxMoveEnabled": true, "MailboxMoveCapability": "Inbound"}),
    )
    .await;
    e.ok(CONTOSO, "Enable-OrganizationCustomization", json!({}))
        .await;
    e.ok(
        CONTOSO,
        "New-OrganizationRelationship",
        json!({"Name": "fabrikam", "DomainNames": [FABRIKAM],
        "Enabled": true, "MailboxMoveEnabled": true, "MailboxMoveCapability": "RemoteOutbound",
        "OAuthApplicationId": MIG_APP, "MailboxMovePublishedScopes": ["T2T-Migration-Scope"]}),
    )
    .await;
    let b = e
        .ok(FABRIKAM, "Test-MigrationServerAvailability", tmsa)
        .await;
    assert_eq!(b["value"][0]["Result"], "Success", "{b}");

    // Prepare Alice's target MailUser step by step; TMSA names the first missing piece.
    let src = e
        .ok(
            CONTOSO,
            "Get-Mailbox",
            json!({"Identity": "alice@contoso.com"}),
        )
        .await;
    let src = &src["value"][0];
    let pw = encrypt_secure_string(&key, "P@ssw0rd!").expect("enc");
    let b = e
        .ok(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": "alice", "MicrosoftOnlineServicesID": "alice@fabrikam.com",
        "PrimarySmtpAddress": "alice@fabrikam.com", "ExternalEmailAddress": "alice@contoso.com",
        "Password": pw, "FirstName": "Alice", "LastName": "Archer", "DisplayName": "Alice Archer"}),
        )
        .await;
    assert_eq!(b["value"][0]["RecipientTypeDetails"], "MailUser");
    assert_eq!(
        b["value"][0]["ExternalEmailAddress"],
        "SMTP:alice@contoso.com"
    );
    assert_eq!(b["value"][0]["PrimarySmtpAddress"], "alice@fabrikam.com");
    let test = json!({"Endpoint": "contoso-ep", "TestMailbox": "alice@fabrikam.com"});
    let b = e
        .ok(FABRIKAM, "Test-MigrationServerAvailability", test.clone())
        .await;
    assert_eq!(b["value"][0]["Result"], "Failed");
    assert!(
        b["value"][0]["ErrorDetail"]
            .as_str()
            .is_some_and(|d| d.contains("MissingExchangeGuidException")),
        "{b}"
    );

    e.ok(
        FABRIKAM,
        "Set-MailUser",
        json!({"Identity": "alice@fabrikam.com",
        "ExchangeGuid": src["ExchangeGuid"], "ArchiveGuid": src["ArchiveGuid"]}),
    )
    .await;
    let b = e
        .ok(FABRIKAM, "Test-MigrationServerAvailability", test.clone())
        .await;
    assert!(
        b["value"][0]["ErrorDetail"]
            .as_str()
            .is_some_and(|d| d.contains("MissingLegacyExchangeDNProxy")),
        "{b}"
    );
    let x500 = format!("X500:{}", src["LegacyExchangeDN"].as_str().expect("dn"));
    e.ok(
        FABRIKAM,
        "Set-MailUser",
        json!({"Identity": "alice@fabrikam.com",
        "EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable", "Add": [x500]}}),
    )
    .await;
    let b = e
        .ok(FABRIKAM, "Test-MigrationServerAvailability", test)
        .await;
    assert_eq!(b["value"][0]["Result"], "Success", "{b}");
    let b = e
        .ok(FABRIKAM, "Get-MailUser", json!({"Identity": "alice"}))
        .await;
    assert_eq!(b["value"][0]["ExchangeGuid"], src["ExchangeGuid"]);

    // Dave (litigation hold) and a foreign SMTP proxy are reported.
    e.ok(
        FABRIKAM,
        "New-MailUser",
        json!({"Name": "dave", "ExternalEmailAddress": "dave@contoso.com",
        "PrimarySmtpAddress": "dave@fabrikam.com"}),
    )
    .await;
    let d = e
        .ok(CONTOSO, "Get-Mailbox", json!({"Identity": "dave"}))
        .await;
    let d = &d["value"][0];
    e.ok(FABRIKAM, "Set-MailUser", json!({"Identity": "dave", "ExchangeGuid": d["ExchangeGuid"],
        "EmailAddresses": {"add": [format!("X500:{}", d["LegacyExchangeDN"].as_str().expect("dn")), "smtp:dave@contoso.onmicrosoft.com"]}})).await;
    let b = e
        .ok(
            FABRIKAM,
            "Test-MigrationServerAvailability",
            json!({"Endpoint": "contoso-ep", "TestMailbox": "dave@fabrikam.com"}),
        )
        .await;
    assert!(
        b["value"][0]["ErrorDetail"]
            .as_str()
            .is_some_and(|m| m.contains("SourceMailboxOnHold")),
        "{b}"
    );

    // Set-User clears previous-mailbox data only on non-mailbox objects.
    let (ty, _) = e
        .err(
            CONTOSO,
            "Set-User",
            json!({"Identity": "bob", "PermanentlyClearPreviousMailboxInfo": true}),
        )
        .await;
    assert_eq!(ty, "System.InvalidOperationException");
    e.ok(
        FABRIKAM,
        "Set-User",
        json!({"Identity": "alice", "PermanentlyClearPreviousMailboxInfo": true, "Confirm": false}),
    )
    .await;
    let b = e
        .ok(FABRIKAM, "Get-User", json!({"Identity": "alice"}))
        .await;
    assert_eq!(b["value"][0]["PreviousRecipientTypeDetails"], "None");
    assert_eq!(b["value"][0]["RecipientTypeDetails"], "MailUser");
}

#[tokio::test]
async fn new_mail_user_validation() {
    let e = env().await;
    let key = e.sim.securestring_key().await.expect("key");
    // A password not encrypted with the service key is refused.
    let (ty, _) = e
        .err(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": "x", "MicrosoftOnlineServicesID": "x@fabrikam.com",
        "Password": "plaintext"}),
        )
        .await;
    assert_eq!(ty, "System.Security.Cryptography.CryptographicException");
    let pw = encrypt_secure_string(&key, "pw").expect("enc");
    let (ty, _) = e
        .err(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": "x", "MicrosoftOnlineServicesID": "x@contoso.com",
        "Password": pw}),
        )
        .await;
    assert_eq!(ty, "Microsoft.Exchange.Data.DataValidationException");
    // Without PrimarySmtpAddress the external address becomes the primary (the article's pitfall).
    let b = e
        .ok(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": "bob", "ExternalEmailAddress": "bob@contoso.com"}),
        )
        .await;
    assert_eq!(b["value"][0]["PrimarySmtpAddress"], "bob@contoso.com");
    let (ty, _) = e
        .err(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": "bob", "ExternalEmailAddress": "bob2@contoso.com"}),
        )
        .await;
    assert!(ty.ends_with("ADObjectAlreadyExistsException"));
    let (ty, _) = e
        .err(
            FABRIKAM,
            "Set-MailUser",
            json!({"Identity": "bob", "PrimarySmtpAddress": "b@fabrikam.com",
        "EmailAddresses": ["SMTP:b@fabrikam.com"]}),
        )
        .await;
    assert_eq!(ty, "Microsoft.Exchange.Data.DataValidationException");
    let b = e.ok(FABRIKAM, "Get-AcceptedDomain", json!({})).await;
    let names: Vec<&str> = b["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|d| d["DomainName"].as_str())
        .collect();
    assert_eq!(names, vec!["fabrikam.onmicrosoft.com", "fabrikam.com"]);
}

#[tokio::test]
async fn recoverable_items_and_hold_tracking() {
    let mut fx = fixture();
    let carol = fx.tenants[0]
        .users
        .iter_mut()
        .find(|u| u.user_principal_name == "carol@contoso.com")
        .expect("carol");
    let m = carol.mailbox.as_mut().expect("mailbox");
    m.substrate_holds_items = 5;
    m.holds.org_wide_hold = true;
    let sim = Simulator::start(SimConfig::new(fx)).await.expect("start");
    let src = sim.admin_token(CONTOSO, EXCHANGE_SCOPE).await.expect("t");
    let e = Env {
        sim,
        tgt: src.clone(),
        src,
    };
    let mbx = e
        .ok(CONTOSO, "Get-Mailbox", json!({"Identity": "carol"}))
        .await;
    let archive = mbx["value"][0]["ArchiveGuid"].clone();
    let b = e
        .ok(
            CONTOSO,
            "Get-MailboxFolderStatistics",
            json!({"Identity": archive, "FolderScope": "RecoverableItems"}),
        )
        .await;
    let sub = b["value"]
        .as_array()
        .expect("v")
        .iter()
        .find(|f| f["Name"] == "SubstrateHolds")
        .expect("folder")
        .clone();
    assert_eq!(sub["ItemsInFolder"], 5);
    let b = e
        .ok(
            CONTOSO,
            "Export-MailboxDiagnosticLogs",
            json!({"Identity": "carol", "ComponentName": "HoldTracking"}),
        )
        .await;
    let log = b["value"][0]["MailboxLog"].as_str().expect("log");
    assert!(
        log.contains("\"hid\":\"mbx") && log.contains("\"ht\":4"),
        "{log}"
    );
    let b = e
        .ok(
            CONTOSO,
            "Export-MailboxDiagnosticLogs",
            json!({"Identity": "alice", "ComponentName": "HoldTracking"}),
        )
        .await;
    assert_eq!(b["value"][0]["MailboxLog"], "[]");
    let (ty, _) = e
        .err(
            CONTOSO,
            "Get-MailboxFolderStatistics",
            json!({"Identity": "bob", "Archive": true}),
        )
        .await;
    assert!(ty.ends_with("MailboxArchiveNotFoundException"));
}

#[tokio::test]
async fn customization_takes_time_to_propagate_when_configured() {
    let mut cfg = SimConfig::new(fixture());
    cfg.time_scale = 0.0;
    cfg.customization_delay = chrono::Duration::hours(2);
    let sim = Simulator::start(cfg).await.expect("start");
    let tgt = sim.admin_token(FABRIKAM, EXCHANGE_SCOPE).await.expect("t");
    let e = Env {
        sim,
        src: tgt.clone(),
        tgt,
    };
    e.ok(FABRIKAM, "Enable-OrganizationCustomization", json!({}))
        .await;
    let b = e.ok(FABRIKAM, "Get-OrganizationConfig", json!({})).await;
    assert_eq!(b["value"][0]["IsDehydrated"], false);
    let rel = json!({"Name": "contoso", "DomainNames": [CONTOSO], "MailboxMoveEnabled": true, "MailboxMoveCapability": "Inbound"});
    let (ty, _) = e
        .err(FABRIKAM, "New-OrganizationRelationship", rel.clone())
        .await;
    assert!(ty.ends_with("CmdletInvalidOperationInDehydratedContextException"));
    e.sim.advance_clock(chrono::Duration::hours(2));
    let e = Env {
        tgt: e
            .sim
            .admin_token(FABRIKAM, EXCHANGE_SCOPE)
            .await
            .expect("t"),
        src: String::new(),
        sim: e.sim,
    };
    e.ok(FABRIKAM, "New-OrganizationRelationship", rel).await;
}

#[tokio::test]
async fn delegates_permissions_groups_and_endpoint_management() {
    let e = env().await;
    // Set-Mailbox -GrantSendOnBehalfTo with add/remove and replace.
    e.ok(CONTOSO, "Set-Mailbox", json!({"Identity": "info", "GrantSendOnBehalfTo":
        {"@odata.type": "#Exchange.GenericHashTable", "add": ["alice@contoso.com"], "remove": ["bob"]}})).await;
    let b = e
        .ok(CONTOSO, "Get-Mailbox", json!({"Identity": "info"}))
        .await;
    assert_eq!(b["value"][0]["GrantSendOnBehalfTo"], json!(["alice"]));
    e.ok(
        CONTOSO,
        "Set-Mailbox",
        json!({"Identity": "info", "GrantSendOnBehalfTo": ["bob", "carol"]}),
    )
    .await;
    let b = e
        .ok(CONTOSO, "Get-Mailbox", json!({"Identity": "info"}))
        .await;
    assert_eq!(
        b["value"][0]["GrantSendOnBehalfTo"],
        json!(["bob", "carol"])
    );
    let (ty, _) = e
        .err(
            CONTOSO,
            "Set-Mailbox",
            json!({"Identity": "info", "GrantSendOnBehalfTo": ["ghost"]}),
        )
        .await;
    assert!(ty.ends_with("ManagementObjectNotFoundException"));
    let (ty, _) = e
        .err(
            CONTOSO,
            "Set-Mailbox",
            json!({"Identity": "alice", "EmailAddresses": {"add": ["smtp:a@foreign.example"]}}),
        )
        .await;
    assert_eq!(ty, "Microsoft.Exchange.Data.DataValidationException");
    let b = e
        .ok(
            CONTOSO,
            "Get-MailboxPermission",
            json!({"Identity": "alice"}),
        )
        .await;
    assert_eq!(b["value"][0]["User"], "NT AUTHORITY\\SELF");
    // Get-DistributionGroup.
    let b = e
        .ok(
            CONTOSO,
            "Get-DistributionGroup",
            json!({"Identity": "T2T-Migration-Scope"}),
        )
        .await;
    assert_eq!(b["value"][0]["GroupType"], "Universal, SecurityEnabled");
    e.err(
        CONTOSO,
        "Get-DistributionGroup",
        json!({"Identity": "nope"}),
    )
    .await;
    // Endpoint management without verification.
    e.ok(FABRIKAM, "New-MigrationEndpoint", json!({"Name": "ep2", "ExchangeRemoteMove": true,
        "RemoteServer": "outlook.office.com", "RemoteTenant": "contoso.onmicrosoft.com",
        "ApplicationId": MIG_APP, "SkipVerification": true, "MaxConcurrentMigrations": "Unlimited"})).await;
    let (ty, _) = e
        .err(
            FABRIKAM,
            "New-MigrationEndpoint",
            json!({"Name": "ep2", "ExchangeRemoteMove": true,
        "RemoteServer": "outlook.office.com", "SkipVerification": true}),
        )
        .await;
    assert!(ty.ends_with("MigrationEndpointDuplicateException"));
    let (ty, _) = e
        .err(
            FABRIKAM,
            "New-MigrationEndpoint",
            json!({"Name": "ep3", "RemoteServer": "outlook.office.com"}),
        )
        .await;
    assert_eq!(ty, "System.Management.Automation.ParameterBindingException");
    // The tenant budget (300 by default) counts every endpoint.
    let (ty, _) = e
        .err(
            FABRIKAM,
            "New-MigrationEndpoint",
            json!({"Name": "ep3", "ExchangeRemoteMove": true, "RemoteServer": "outlook.office.com",
                   "SkipVerification": true, "MaxConcurrentMigrations": 301}),
        )
        .await;
    assert!(ty.ends_with("MaximumConcurrentMigrationLimitExceededException"));
    e.ok(
        FABRIKAM,
        "Set-MigrationEndpoint",
        json!({"Identity": "ep2", "MaxConcurrentMigrations": 50}),
    )
    .await;
    let b = e
        .ok(
            FABRIKAM,
            "Get-MigrationEndpoint",
            json!({"Identity": "ep2"}),
        )
        .await;
    assert_eq!(b["value"][0]["MaxConcurrentMigrations"], 50);
    assert_eq!(b["value"][0]["RemoteTenant"], "contoso.onmicrosoft.com");
    assert_eq!(b["value"][0]["IsRemote"], true);
    e.ok(
        FABRIKAM,
        "Remove-MigrationEndpoint",
        json!({"Identity": "ep2", "Confirm": false}),
    )
    .await;
    let b = e.ok(FABRIKAM, "Get-MigrationEndpoint", json!({})).await;
    assert_eq!(b["value"], json!([]));
    let b = e.ok(FABRIKAM, "Get-MoveRequest", json!({})).await;
    assert_eq!(b["value"], json!([]));
    e.err(
        FABRIKAM,
        "Get-MoveRequestStatistics",
        json!({"Identity": "nobody"}),
    )
    .await;
}

#[tokio::test]
async fn opath_filters() {
    let e = env().await;
    let b = e
        .ok(
            CONTOSO,
            "Get-Mailbox",
            json!({"Filter": "RecipientTypeDetails -eq 'SharedMailbox'"}),
        )
        .await;
    let names: Vec<&str> = b["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert_eq!(names, vec!["info"]);
    let b = e
        .ok(
            CONTOSO,
            "Get-Mailbox",
            json!({"Filter": "LitigationHoldEnabled -eq $true -or InPlaceHolds -like 'mbx*'"}),
        )
        .await;
    let names: Vec<&str> = b["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert_eq!(names, vec!["dave", "grace"]);
    let b = e
        .ok(
            CONTOSO,
            "Get-User",
            json!({"Filter": "UserPrincipalName -like 'a*'"}),
        )
        .await;
    assert_eq!(b["value"].as_array().map(Vec::len), Some(1));
    let (ty, text) = e
        .err(CONTOSO, "Get-Mailbox", json!({"Filter": "Name -gt 'a'"}))
        .await;
    assert_eq!(ty, "System.Management.Automation.ParameterBindingException");
    assert!(text.contains("Invalid filter syntax"), "{text}");
    let (ty, _) = e
        .err(
            CONTOSO,
            "Get-Mailbox",
            json!({"Filter": "Colour -eq 'blue'"}),
        )
        .await;
    assert!(ty.ends_with("InvalidFilterException"));
    let (ty, _) = e
        .err(
            CONTOSO,
            "Get-Mailbox",
            json!({"Identity": "alice", "Filter": "Name -eq 'x'"}),
        )
        .await;
    assert_eq!(ty, "System.Management.Automation.ParameterBindingException");
    let b = e
        .ok(
            CONTOSO,
            "Get-DistributionGroup",
            json!({"Filter": "GroupType -like '*SecurityEnabled'"}),
        )
        .await;
    assert_eq!(b["value"][0]["Name"], "T2T-Migration-Scope");
}
