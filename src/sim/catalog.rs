//! Well-known identifiers of Microsoft first-party applications, their app roles and Entra
//! directory roles. Values are the published ones where the references confirm them; the rest
//! are marked and derived deterministically so they stay stable between runs.

use uuid::Uuid;

pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
pub const EXCHANGE_RESOURCE: &str = "https://outlook.office365.com";

/// Cross Tenant User Data Migration add-on (practitioners' values; the reference marks them unconfirmed).
pub const T2T_SKU_ID: &str = "946ce899-873d-44bb-9d8b-671870cbfdbf";
pub const T2T_SKU_PART: &str = "Cross_tenant_user_data_migration";
pub const T2T_EXCHANGE_PLAN: &str = "EXCHANGEONLINE_T2TMBXMOVE";
/// What the licence shows up as in `PersistedCapabilities`.
pub const T2T_CAPABILITY: &str = "ExchangeT2TMbxMove";

pub struct AppRoleDef {
    pub value: &'static str,
    pub id: &'static str,
    pub display: &'static str,
}

/// Microsoft Graph application permissions the operator uses. Ids are the published ones except
/// the two CrossTenantContentMigration roles, whose ids the reference could not find.
pub const GRAPH_ROLES: &[AppRoleDef] = &[
    AppRoleDef {
        value: "User.Read.All",
        id: "df021288-bdef-4463-88db-98f22de89214",
        display: "Read all users' full profiles",
    },
    AppRoleDef {
        value: "User.ReadWrite.All",
        id: "741f803b-c850-494e-b5df-cde7c675a1ca",
        display: "Read and write all users' full profiles",
    },
    AppRoleDef {
        value: "Directory.Read.All",
        id: "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        display: "Read directory data",
    },
    AppRoleDef {
        value: "Directory.ReadWrite.All",
        id: "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
        display: "Read and write directory data",
    },
    AppRoleDef {
        value: "Organization.Read.All",
        id: "498476ce-e0fe-48b0-b801-37ba7e2685c6",
        display: "Read organization information",
    },
    AppRoleDef {
        value: "Application.Read.All",
        id: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
        display: "Read all applications",
    },
    AppRoleDef {
        value: "Application.ReadWrite.All",
        id: "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        display: "Read and write all applications",
    },
    AppRoleDef {
        value: "AppRoleAssignment.ReadWrite.All",
        id: "06b708a9-e830-4db3-a914-8e69da51d44f",
        display: "Manage app permission grants and app role assignments",
    },
    AppRoleDef {
        value: "LicenseAssignment.ReadWrite.All",
        id: "5facf0c1-8979-4e95-abcf-ff3d079771c0",
        display: "Manage all license assignments",
    },
    AppRoleDef {
        value: "Group.Read.All",
        id: "5b567255-7703-4780-807c-7be8301ae99b",
        display: "Read all groups",
    },
    AppRoleDef {
        value: "CrossTenantContentMigration.Read.All",
        id: "b0e1f4a6-6a29-5c31-9d61-3e8f5d0a7c11",
        display: "Read cross-tenant content migration jobs (id simulated)",
    },
    AppRoleDef {
        value: "CrossTenantContentMigration.ReadWrite.All",
        id: "b0e1f4a6-6a29-5c31-9d61-3e8f5d0a7c12",
        display: "Read and write cross-tenant content migration jobs (id simulated)",
    },
];

pub const EXCHANGE_ROLES: &[AppRoleDef] = &[
    AppRoleDef {
        value: "Exchange.ManageAsApp",
        id: "dc50a0fb-09a3-484d-be87-e023b12c6440",
        display: "Manage Exchange As Application",
    },
    AppRoleDef {
        value: "Mailbox.Migration",
        id: "f7264778-fba9-422d-8e9e-2675a2c4b513",
        display: "Move mailboxes between organizations",
    },
];

/// Entra directory roles that let an app-only caller run Exchange cmdlets (reference §1.2).
pub const EXCHANGE_DIRECTORY_ROLES: &[&str] = &[
    "Exchange Administrator",
    "Global Administrator",
    "Exchange Recipient Administrator",
    "Global Reader",
    "Helpdesk Administrator",
    "Compliance Administrator",
    "Security Administrator",
    "Security Reader",
];

/// Roles that may change things (the read-only ones above only run Get- cmdlets).
pub const EXCHANGE_WRITE_DIRECTORY_ROLES: &[&str] = &[
    "Exchange Administrator",
    "Global Administrator",
    "Exchange Recipient Administrator",
];

pub fn roles_for(resource_app_id: &str) -> &'static [AppRoleDef] {
    match resource_app_id {
        GRAPH_APP_ID => GRAPH_ROLES,
        EXCHANGE_APP_ID => EXCHANGE_ROLES,
        _ => &[],
    }
}

pub fn role_by_value(resource_app_id: &str, value: &str) -> Option<&'static AppRoleDef> {
    roles_for(resource_app_id)
        .iter()
        .find(|r| r.value.eq_ignore_ascii_case(value))
}

pub fn role_by_id(resource_app_id: &str, id: &str) -> Option<&'static AppRoleDef> {
    roles_for(resource_app_id)
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id))
}

/// Deterministic ids: the same fixture always yields the same object ids, which keeps test
/// expectations and demo output stable.
pub fn stable_id(namespace: Uuid, kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(
        &namespace,
        format!("{kind}:{}", name.to_ascii_lowercase()).as_bytes(),
    )
}
