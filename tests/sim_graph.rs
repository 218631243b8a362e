//! Microsoft Graph over HTTPS: auth errors, organization, subscribedSkus, users with
//! $filter/$select/$top/$count and nextLink paging, assignLicense, app registration with
//! addPassword, service principals and app-role grants, $batch.
#![cfg(feature = "dev")]

use serde_json::{Value, json};
use t2t_operator::sim::fixture::AppFixture;
use t2t_operator::sim::testkit::{EXCHANGE_SCOPE, GRAPH_SCOPE};
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";
const FABRIKAM: &str = "9c4e7d2b-1a5f-4c8e-b3d6-7e0f1a2b3c02";
const T2T_SKU: &str = "946ce899-873d-44bb-9d8b-671870cbfdbf";
const E3_SKU: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
const READER: &str = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a06";

struct G {
    sim: RunningSimulator,
    c: reqwest::Client,
}

impl G {
    async fn new() -> Self {
        let mut fx = Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("fixture");
        fx.tenants[0].apps.push(AppFixture {
            client_id: READER.parse().expect("guid"),
            display_name: "user reader".into(),
            client_secret: Some("reader".into()),
            certificate_pem: None,
            graph_roles: vec!["User.Read.All".into()],
            exchange_roles: vec![],
            directory_roles: vec![],
            sign_in_audience: None,
            redirect_uris: vec![],
            federated_credentials: vec![],
        });
        let sim = Simulator::start(SimConfig::new(fx)).await.expect("start");
        let c = sim.http_client().expect("client");
        G { sim, c }
    }

    async fn token(&self, tenant: &str) -> String {
        self.sim
            .admin_token(tenant, GRAPH_SCOPE)
            .await
            .expect("token")
    }

    async fn send(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/v1.0/{path}", self.sim.base_url())
        };
        let mut r = self
            .c
            .request(method.parse().expect("method"), url)
            .bearer_auth(token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("send");
        let s = resp.status().as_u16();
        let text = resp.text().await.expect("text");
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(token, "GET", path, None, &[]).await
    }
}

fn assert_graph_error(s: u16, b: &Value, status: u16, code: &str) {
    assert_eq!(s, status, "{b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    assert!(b["error"]["message"].is_string());
    assert!(b["error"]["innerError"]["request-id"].is_string(), "{b}");
}

#[tokio::test]
async fn authentication_and_authorization_errors() {
    let g = G::new().await;
    let (s, b) = g.get("", "users").await;
    assert_graph_error(s, &b, 401, "InvalidAuthenticationToken");
    let exo = g.sim.admin_token(CONTOSO, EXCHANGE_SCOPE).await.expect("t");
    let (s, b) = g.get(&exo, "users").await;
    assert_graph_error(s, &b, 401, "InvalidAuthenticationToken");
    assert_eq!(
        b["error"]["message"],
        "Access token validation failure. Invalid audience."
    );
    let reader = g
        .sim
        .token_for(CONTOSO, READER, "reader", GRAPH_SCOPE)
        .await
        .expect("t");
    let (s, _) = g.get(&reader, "users").await;
    assert_eq!(s, 200);
    let (s, b) = g
        .send(
            &reader,
            "POST",
            "applications",
            Some(json!({"displayName": "x"})),
            &[],
        )
        .await;
    assert_graph_error(s, &b, 403, "Authorization_RequestDenied");
    assert_eq!(
        b["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let (s, b) = g.get(&reader, "organization").await;
    assert_graph_error(s, &b, 403, "Authorization_RequestDenied");
    let t = g.token(CONTOSO).await;
    let (s, b) = g.get(&t, "nosuchthing").await;
    assert_graph_error(s, &b, 400, "BadRequest");
}

#[tokio::test]
async fn organization_and_skus() {
    let g = G::new().await;
    let t = g.token(FABRIKAM).await;
    let (s, b) = g.get(&t, "organization").await;
    assert_eq!(s, 200);
    let org = &b["value"][0];
    assert_eq!(org["id"], FABRIKAM);
    let initial: Vec<&Value> = org["verifiedDomains"]
        .as_array()
        .expect("d")
        .iter()
        .filter(|d| d["isInitial"] == true)
        .collect();
    assert_eq!(initial.len(), 1);
    assert_eq!(initial[0]["name"], "fabrikam.onmicrosoft.com");
    let t = g.token(CONTOSO).await;
    let (s, b) = g.get(&t, "subscribedSkus").await;
    assert_eq!(s, 200);
    let sku = b["value"]
        .as_array()
        .expect("v")
        .iter()
        .find(|s| s["skuId"] == T2T_SKU)
        .expect("t2t sku")
        .clone();
    assert_eq!(sku["skuPartNumber"], "Cross_tenant_user_data_migration");
    assert_eq!(sku["prepaidUnits"]["enabled"], 10);
    assert_eq!(sku["consumedUnits"], 8);
    assert_eq!(sku["id"], format!("{CONTOSO}_{T2T_SKU}"));
    let (s, b) = g.get(&t, "subscribedSkus?$filter=skuId eq 'x'").await;
    assert_graph_error(s, &b, 400, "Request_UnsupportedQuery");
}

#[tokio::test]
async fn users_filter_select_and_paging() {
    let g = G::new().await;
    let t = g.token(CONTOSO).await;
    let (s, b) = g.get(&t, "users?$filter=userPrincipalName eq 'alice@contoso.com'&$select=id,userPrincipalName,usageLocation,assignedLicenses").await;
    assert_eq!(s, 200, "{b}");
    let u = &b["value"][0];
    assert_eq!(u.as_object().map(|m| m.len()), Some(4), "{u}");
    assert_eq!(u["usageLocation"], "US");
    // Default property set without $select.
    let (_, b) = g.get(&t, "users/bob@contoso.com").await;
    assert!(
        b.get("usageLocation").is_none() && b["userPrincipalName"] == "bob@contoso.com",
        "{b}"
    );
    let (s, b) = g.get(&t, "users/nobody@contoso.com").await;
    assert_graph_error(s, &b, 404, "Request_ResourceNotFound");
    let (s, b) = g.get(&t, "users?$select=id,nosuch").await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    let (_, b) = g
        .get(
            &t,
            "users?$filter=startswith(displayName,'Gr')&$select=displayName",
        )
        .await;
    assert_eq!(b["value"], json!([{"displayName": "Grace Green"}]));
    let (_, b) = g
        .get(
            &t,
            "users?$filter=userPrincipalName in ('alice@contoso.com','bob@contoso.com')&$select=id",
        )
        .await;
    assert_eq!(b["value"].as_array().map(Vec::len), Some(2));
    let (_, b) = g
        .get(
            &t,
            &format!("users?$filter=assignedLicenses/any(x:x/skuId eq {T2T_SKU})&$select=id"),
        )
        .await;
    assert_eq!(b["value"].as_array().map(Vec::len), Some(8));
    // endsWith needs advanced query mode.
    let (s, b) = g
        .get(&t, "users?$filter=endswith(mail,'@contoso.com')")
        .await;
    assert_graph_error(s, &b, 400, "Request_UnsupportedQuery");
    let (s, b) = g
        .send(
            &t,
            "GET",
            "users?$filter=endswith(mail,'@contoso.com')&$count=true&$select=id",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["@odata.count"], 11);
    let (s, b) = g.get(&t, "users?$top=1000").await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    // Paging: follow @odata.nextLink verbatim.
    let mut url = "users?$top=4&$select=id".to_string();
    let mut n = 0;
    let mut pages = 0;
    loop {
        let (s, b) = g.get(&t, &url).await;
        assert_eq!(s, 200, "{b}");
        n += b["value"].as_array().map(Vec::len).unwrap_or(0);
        pages += 1;
        match b["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="));
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!((n, pages), (11, 3));
}

#[tokio::test]
async fn assign_license_rules_and_effects() {
    let g = G::new().await;
    let t = g.token(CONTOSO).await;
    let add = |sku: &str| json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []});
    let (s, b) = g
        .send(
            &t,
            "POST",
            "users/info@contoso.com/assignLicense",
            Some(add(T2T_SKU)),
            &[],
        )
        .await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("usage location"))
    );
    let (s, _) = g
        .send(
            &t,
            "PATCH",
            "users/info@contoso.com",
            Some(json!({"usageLocation": "US"})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = g
        .send(
            &t,
            "POST",
            "users/info@contoso.com/assignLicense",
            Some(add(T2T_SKU)),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = g
        .send(
            &t,
            "POST",
            "users/erin@contoso.com/assignLicense",
            Some(add(T2T_SKU)),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["assignedLicenses"]
            .as_array()
            .expect("l")
            .iter()
            .any(|l| l["skuId"] == T2T_SKU)
    );
    // Ten of ten seats used now.
    g.send(
        &t,
        "PATCH",
        "users/boardroom@contoso.com",
        Some(json!({"usageLocation": "US"})),
        &[],
    )
    .await;
    let (s, b) = g
        .send(
            &t,
            "POST",
            "users/boardroom@contoso.com/assignLicense",
            Some(add(T2T_SKU)),
            &[],
        )
        .await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not have any available licenses"))
    );
    let (s, _) = g
        .send(
            &t,
            "POST",
            "users/boardroom@contoso.com/assignLicense",
            Some(json!({"addLicenses": []})),
            &[],
        )
        .await;
    assert_eq!(s, 400);
    let (s, b) = g
        .send(
            &t,
            "PATCH",
            "users/boardroom@contoso.com",
            Some(json!({"favouriteColour": "red"})),
            &[],
        )
        .await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");

    // Licensing a target MailUser before its ExchangeGuid is stamped provisions a new mailbox.
    let ft = g.token(FABRIKAM).await;
    let exo = g
        .sim
        .admin_token(FABRIKAM, EXCHANGE_SCOPE)
        .await
        .expect("t");
    let (s, _) = g.sim.invoke(&exo, FABRIKAM, "New-MailUser", json!({"Name": "zoe", "ExternalEmailAddress": "zoe@contoso.com",
        "PrimarySmtpAddress": "zoe@fabrikam.com", "MicrosoftOnlineServicesID": "zoe@fabrikam.com",
        "Password": t2t_operator::sim::testkit::encrypt_secure_string(&g.sim.securestring_key().await.expect("k"), "pw").expect("enc")})).await.expect("invoke");
    assert_eq!(s, 200);
    g.send(
        &ft,
        "PATCH",
        "users/zoe@fabrikam.com",
        Some(json!({"usageLocation": "US"})),
        &[],
    )
    .await;
    let (s, _) = g
        .send(
            &ft,
            "POST",
            "users/zoe@fabrikam.com/assignLicense",
            Some(add(E3_SKU)),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = g
        .sim
        .invoke(
            &exo,
            FABRIKAM,
            "Get-Mailbox",
            json!({"Identity": "zoe@fabrikam.com"}),
        )
        .await
        .expect("invoke");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn app_registration_secret_service_principal_and_grant() {
    let g = G::new().await;
    let t = g.token(FABRIKAM).await;
    let (s, app) = g
        .send(
            &t,
            "POST",
            "applications",
            Some(json!({
        "displayName": "fabrikam_Friends_contoso", "signInAudience": "AzureADMultipleOrgs",
        "web": {"redirectUris": ["https://office.com"]},
        "requiredResourceAccess": [{"resourceAppId": "00000002-0000-0ff1-ce00-000000000000",
            "resourceAccess": [{"id": "f7264778-fba9-422d-8e9e-2675a2c4b513", "type": "Role"}]}]})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{app}");
    let app_id = app["appId"].as_str().expect("appId").to_string();
    let obj_id = app["id"].as_str().expect("id").to_string();
    let (s, pw) = g
        .send(
            &t,
            "POST",
            &format!("applications/{obj_id}/addPassword"),
            Some(json!({"passwordCredential": {"displayName": "exo"}})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{pw}");
    let secret = pw["secretText"].as_str().expect("secretText").to_string();
    assert_eq!(pw["hint"].as_str(), Some(&secret[..3]));
    let (_, again) = g.get(&t, &format!("applications(appId='{app_id}')")).await;
    assert_eq!(again["passwordCredentials"][0]["secretText"], Value::Null);
    // Federated identity credentials: one audience, unique name, at most 20.
    let fic = json!({"name": "k8s-operator", "issuer": "https://kube.example", "subject": "system:serviceaccount:t2t:operator",
        "audiences": ["api://AzureADTokenExchange"]});
    let (s, f) = g
        .send(
            &t,
            "POST",
            &format!("applications/{obj_id}/federatedIdentityCredentials"),
            Some(fic.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{f}");
    let (s, _) = g
        .send(
            &t,
            "POST",
            &format!("applications/{obj_id}/federatedIdentityCredentials"),
            Some(fic),
            &[],
        )
        .await;
    assert_eq!(s, 409);
    let (_, l) = g
        .get(
            &t,
            &format!("applications/{obj_id}/federatedIdentityCredentials"),
        )
        .await;
    assert_eq!(
        l["value"][0]["subject"],
        "system:serviceaccount:t2t:operator"
    );
    // No service principal yet: the app cannot get a token in its own tenant.
    let err = g
        .sim
        .token_for(FABRIKAM, &app_id, &secret, EXCHANGE_SCOPE)
        .await;
    assert!(err.is_err());
    let (s, sp) = g
        .send(
            &t,
            "POST",
            "servicePrincipals",
            Some(json!({"appId": app_id})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{sp}");
    let (s, _) = g
        .send(
            &t,
            "POST",
            "servicePrincipals",
            Some(json!({"appId": app_id})),
            &[],
        )
        .await;
    assert_eq!(s, 409);
    let (_, exo) = g
        .get(
            &t,
            "servicePrincipals(appId='00000002-0000-0ff1-ce00-000000000000')?$select=id,appRoles",
        )
        .await;
    let role = exo["appRoles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["value"] == "Mailbox.Migration")
        .expect("role")["id"]
        .clone();
    let exo_id = exo["id"].as_str().expect("id").to_string();
    let grant = json!({"principalId": sp["id"], "resourceId": exo_id, "appRoleId": role});
    let (s, a) = g
        .send(
            &t,
            "POST",
            &format!("servicePrincipals/{exo_id}/appRoleAssignedTo"),
            Some(grant.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["principalType"], "ServicePrincipal");
    let (s, b) = g
        .send(
            &t,
            "POST",
            &format!("servicePrincipals/{exo_id}/appRoleAssignedTo"),
            Some(grant),
            &[],
        )
        .await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    let token = g
        .sim
        .token_for(FABRIKAM, &app_id, &secret, EXCHANGE_SCOPE)
        .await
        .expect("token");
    let payload = token.split('.').nth(1).expect("p");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["roles"], json!(["Mailbox.Migration"]));
    // The source sees the app only after consent.
    let ct = g.token(CONTOSO).await;
    let (s, _) = g
        .get(&ct, &format!("servicePrincipals(appId='{app_id}')"))
        .await;
    assert_eq!(s, 404);
    let r =
        g.c.post(format!("{}/_sim/consent", g.sim.base_url()))
            .json(&json!({"tenant": CONTOSO, "clientId": app_id}))
            .send()
            .await
            .expect("consent");
    assert_eq!(r.status().as_u16(), 200);
    let (s, b) = g
        .get(
            &ct,
            &format!("servicePrincipals?$filter=appId eq '{app_id}'"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"][0]["appOwnerOrganizationId"], FABRIKAM);
}

#[tokio::test]
async fn json_batching() {
    let g = G::new().await;
    let t = g.token(CONTOSO).await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/alice@contoso.com?$select=id"},
        {"id": "2", "method": "GET", "url": "/users/ghost@contoso.com"},
        {"id": "3", "method": "GET", "url": "/organization", "dependsOn": ["2"]},
        {"id": "4", "method": "PATCH", "url": "/users/bob@contoso.com", "body": {"usageLocation": "FR"}, "headers": {"Content-Type": "application/json"}},
    ]});
    let (s, b) = g.send(&t, "POST", "$batch", Some(body), &[]).await;
    assert_eq!(s, 200, "{b}");
    let status = |id: &str| {
        b["responses"]
            .as_array()
            .expect("r")
            .iter()
            .find(|r| r["id"] == id)
            .expect("id")["status"]
            .clone()
    };
    assert_eq!(status("1"), 200);
    assert_eq!(status("2"), 404);
    assert_eq!(status("3"), 424);
    assert_eq!(status("4"), 204);
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/organization"}))
        .collect();
    let (s, b) = g
        .send(&t, "POST", "$batch", Some(json!({"requests": many})), &[])
        .await;
    assert_graph_error(s, &b, 400, "BadRequest");
    let dup = json!({"requests": [{"id": "1", "method": "GET", "url": "/organization"}, {"id": "1", "method": "GET", "url": "/organization"}]});
    let (s, _) = g.send(&t, "POST", "$batch", Some(dup), &[]).await;
    assert_eq!(s, 400);
    let nobody = json!({"requests": [{"id": "1", "method": "PATCH", "url": "/users/bob@contoso.com", "body": {"usageLocation": "FR"}}]});
    let (_, b) = g.send(&t, "POST", "$batch", Some(nobody), &[]).await;
    assert_eq!(b["responses"][0]["status"], 400);
}

#[tokio::test]
async fn application_listing_password_removal_and_assignments() {
    let g = G::new().await;
    let t = g.token(FABRIKAM).await;
    let (_, app) = g
        .send(
            &t,
            "POST",
            "applications",
            Some(json!({"displayName": "tmp"})),
            &[],
        )
        .await;
    let id = app["id"].as_str().expect("id").to_string();
    let app_id = app["appId"].as_str().expect("appId").to_string();
    let (_, pw) = g
        .send(
            &t,
            "POST",
            &format!("applications/{id}/addPassword"),
            Some(json!({})),
            &[],
        )
        .await;
    let (_, list) = g
        .get(&t, &format!("applications?$filter=appId eq '{app_id}'"))
        .await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        list["value"][0]["passwordCredentials"][0]["keyId"],
        pw["keyId"]
    );
    let (s, _) = g
        .send(
            &t,
            "POST",
            &format!("applications/{id}/removePassword"),
            Some(json!({"keyId": pw["keyId"]})),
            &[],
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = g
        .send(
            &t,
            "POST",
            &format!("applications/{id}/removePassword"),
            Some(json!({"keyId": pw["keyId"]})),
            &[],
        )
        .await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    let (s, b) = g
        .get(&t, "applications?$filter=startswith(displayName,'t')")
        .await;
    assert_graph_error(s, &b, 400, "Request_UnsupportedQuery");
    // The fixture admin app's grants are listed on its service principal.
    let (_, sp) = g
        .get(
            &t,
            "servicePrincipals(appId='5d8f2a10-6c3b-4e9a-8f70-1b2c3d4e5f02')",
        )
        .await;
    let (s, a) = g
        .get(
            &t,
            &format!(
                "servicePrincipals/{}/appRoleAssignments",
                sp["id"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(s, 200);
    assert!(a["value"].as_array().map(Vec::len).unwrap_or(0) >= 8, "{a}");
}
