//! CRD rendering. `crds/` holds exactly what [`all`] renders; a test keeps them equal.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{MigrationBatch, MigrationEndpoint, TenantPair};

/// Every CRD the operator serves, in install order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        TenantPair::crd(),
        MigrationEndpoint::crd(),
        MigrationBatch::crd(),
    ]
}

/// File name of a CRD in `crds/`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// Render one CRD as YAML.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(crd)
}

/// `t2t-operator crdgen`: print every CRD as a multi-document YAML stream, or write one file per kind.
pub fn run(out_dir: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for crd in all() {
        let yaml = to_yaml(&crd)?;
        match out_dir {
            Some(dir) => std::fs::write(dir.join(file_name(&crd)), yaml)?,
            // A closed pipe (`crdgen | head`) is an error to report, not a panic.
            None => write!(stdout, "---\n{yaml}")?,
        }
    }
    Ok(())
}
