//! Base URLs and resource scopes per Microsoft cloud.

use crate::api::{CloudEnvironment, CloudSpec};

/// Where a tenant's APIs live. The operator only ever speaks to these URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Identity platform, e.g. `https://login.microsoftonline.com`.
    pub login: String,
    /// Microsoft Graph, e.g. `https://graph.microsoft.com`.
    pub graph: String,
    /// Exchange Online admin API host, e.g. `https://outlook.office365.com`.
    pub exchange: String,
    /// Resource (audience) for Graph tokens.
    pub graph_resource: String,
    /// Resource (audience) for Exchange tokens.
    pub exchange_resource: String,
    /// The `-RemoteServer` of cross-tenant migration endpoints in this cloud.
    pub remote_server: String,
}

impl Endpoints {
    /// Microsoft's global cloud (the default).
    pub fn global() -> Self {
        Self {
            login: "https://login.microsoftonline.com".into(),
            graph: "https://graph.microsoft.com".into(),
            exchange: "https://outlook.office365.com".into(),
            graph_resource: "https://graph.microsoft.com".into(),
            exchange_resource: "https://outlook.office365.com".into(),
            remote_server: "outlook.office.com".into(),
        }
    }

    /// The built-in endpoints of an environment (`Custom` starts from Global; its URLs come from the spec).
    pub fn for_environment(env: CloudEnvironment) -> Self {
        match env {
            CloudEnvironment::Global | CloudEnvironment::Custom => Self::global(),
            CloudEnvironment::USGovGCCHigh => Self {
                login: "https://login.microsoftonline.us".into(),
                graph: "https://graph.microsoft.us".into(),
                exchange: "https://outlook.office365.us".into(),
                graph_resource: "https://graph.microsoft.us".into(),
                exchange_resource: "https://outlook.office365.us".into(),
                remote_server: "outlook.office365.us".into(),
            },
            CloudEnvironment::USGovDoD => Self {
                login: "https://login.microsoftonline.us".into(),
                graph: "https://dod-graph.microsoft.us".into(),
                exchange: "https://outlook-dod.office365.us".into(),
                graph_resource: "https://dod-graph.microsoft.us".into(),
                exchange_resource: "https://outlook-dod.office365.us".into(),
                remote_server: "dod-outlook.office365.us".into(),
            },
            CloudEnvironment::China => Self {
                login: "https://login.chinacloudapi.cn".into(),
                graph: "https://microsoftgraph.chinacloudapi.cn".into(),
                exchange: "https://partner.outlook.cn".into(),
                graph_resource: "https://microsoftgraph.chinacloudapi.cn".into(),
                exchange_resource: "https://partner.outlook.cn".into(),
                remote_server: "partner.outlook.cn".into(),
            },
        }
    }

    /// Endpoints for a TenantPair's `spec.cloud`: the environment's URLs with the overrides applied.
    /// Token audiences stay the real resource identifiers (a simulator accepts them unchanged).
    pub fn from_spec(spec: &CloudSpec) -> Self {
        let mut e = Self::for_environment(spec.environment);
        if let Some(u) = &spec.login_url {
            e.login = trim(u);
        }
        if let Some(u) = &spec.graph_url {
            e.graph = trim(u);
        }
        if let Some(u) = &spec.exchange_url {
            e.exchange = trim(u);
        }
        e
    }

    /// Token endpoint of a tenant.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.login, tenant)
    }

    /// The admin-consent URL a source admin opens to consent to the migration app.
    pub fn admin_consent_url(&self, tenant_domain: &str, client_id: &str) -> String {
        format!(
            "{}/{}/adminconsent?client_id={}&redirect_uri=https://office.com",
            self.login, tenant_domain, client_id
        )
    }

    /// Graph base for a version (`v1.0` or `beta`).
    pub fn graph_base(&self, version: &str) -> String {
        format!("{}/{}", self.graph, version)
    }

    /// The InvokeCommand URL of a tenant.
    pub fn invoke_command_url(&self, tenant: &str) -> String {
        format!("{}/adminapi/beta/{}/InvokeCommand", self.exchange, tenant)
    }
}

fn trim(u: &str) -> String {
    u.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_urls_are_microsofts() {
        let e = Endpoints::from_spec(&CloudSpec::default());
        assert_eq!(
            e.token_url("t"),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(
            e.invoke_command_url("t"),
            "https://outlook.office365.com/adminapi/beta/t/InvokeCommand"
        );
        assert_eq!(e.graph_base("v1.0"), "https://graph.microsoft.com/v1.0");
        assert_eq!(
            e.admin_consent_url("contoso.onmicrosoft.com", "abc"),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=abc&redirect_uri=https://office.com"
        );
    }

    #[test]
    fn overrides_apply_and_audiences_stay() {
        let spec = CloudSpec {
            environment: CloudEnvironment::Custom,
            login_url: Some("https://127.0.0.1:8443/".into()),
            graph_url: Some("https://127.0.0.1:8443".into()),
            exchange_url: Some("https://127.0.0.1:8443".into()),
            ca_bundle: None,
        };
        let e = Endpoints::from_spec(&spec);
        assert_eq!(
            e.token_url("t"),
            "https://127.0.0.1:8443/t/oauth2/v2.0/token"
        );
        assert_eq!(e.graph_resource, "https://graph.microsoft.com");
        let gcch = Endpoints::for_environment(CloudEnvironment::USGovGCCHigh);
        assert_eq!(gcch.remote_server, "outlook.office365.us");
    }
}
