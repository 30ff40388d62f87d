//! The SLSA provenance v1 predicate of a release: what was built (version, commit, the
//! non-secret build arguments), from what (the commit, the base image by digest, each
//! tool tarball with its sha256, the policies' hash), by whom (the CI job, else a local
//! run) and when. Pure: the caller gathers the facts and the clock.
//!
//! Source: the SLSA v1.0 provenance spec (slsa.dev/spec/v1.0/provenance).

use serde_json::{json, Value};

/// The buildType URI naming this xtask's build process.
pub const BUILD_TYPE: &str = "urn:policy-platform:xtask:publish:v1";

/// One input of the build, as `resolvedDependencies` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub uri: String,
    /// `algorithm → hex` (e.g. `sha256`, `gitCommit`).
    pub digest: Vec<(String, String)>,
}

/// Who ran the build.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Builder {
    pub id: String,
    /// The CI run (`None` for a local run).
    pub invocation: Option<String>,
}

pub struct Input<'a> {
    pub version: &'a str,
    pub commit: &'a str,
    pub source: &'a str,
    /// `KEY=VALUE` build arguments, secrets never among them.
    pub build_args: &'a [(String, String)],
    pub dependencies: &'a [Dependency],
    pub builder: &'a Builder,
    pub started_on: &'a str,
    pub finished_on: &'a str,
}

pub fn predicate(i: &Input<'_>) -> Value {
    let args: serde_json::Map<String, Value> = i.build_args.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut metadata = json!({ "startedOn": i.started_on, "finishedOn": i.finished_on });
    if let Some(inv) = &i.builder.invocation {
        metadata["invocationId"] = json!(inv);
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "version": i.version,
                "commit": i.commit,
                "source": i.source,
                "buildArgs": args,
            },
            "resolvedDependencies": i.dependencies.iter().map(|d| json!({
                "name": d.name,
                "uri": d.uri,
                "digest": d.digest.iter().map(|(a, h)| (a.clone(), json!(h))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        },
        "runDetails": {
            "builder": { "id": i.builder.id },
            "metadata": metadata,
        },
    })
}

/// The dependency `name` of a provenance predicate, if listed.
pub fn dependency<'a>(predicate: &'a Value, name: &str) -> Option<&'a Value> {
    predicate["buildDefinition"]["resolvedDependencies"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == name)
}

/// A build argument may carry a secret when its name says so; those are left out.
pub fn is_secret_arg(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASSWORD", "TOKEN", "SECRET", "CREDENTIAL", "_KEY", "AUTH"]
        .iter()
        .any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_has_the_slsa_v1_shape() {
        let deps = vec![
            Dependency {
                name: "source".into(),
                uri: "git+https://example.invalid/pp@abc".into(),
                digest: vec![("gitCommit".into(), "abc".into())],
            },
            Dependency {
                name: "base-image".into(),
                uri: "pkg:docker/alpine@3.22.2".into(),
                digest: vec![("sha256".into(), "bb".into())],
            },
        ];
        let b = Builder {
            id: "https://github.com/o/r/.github/workflows/publish.yml".into(),
            invocation: Some("https://github.com/o/r/actions/runs/1/attempts/1".into()),
        };
        let args = vec![("BASE_IMAGE".to_string(), "alpine:3.22.2".to_string())];
        let p = predicate(&Input {
            version: "v1.0.0",
            commit: "abc",
            source: "https://example.invalid/pp",
            build_args: &args,
            dependencies: &deps,
            builder: &b,
            started_on: "2026-11-29T10:00:00Z",
            finished_on: "2026-11-29T10:01:00Z",
        });
        assert_eq!(p["buildDefinition"]["buildType"], BUILD_TYPE);
        assert_eq!(
            p["buildDefinition"]["externalParameters"]["buildArgs"]["BASE_IMAGE"],
            "alpine:3.22.2"
        );
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
            "abc"
        );
        assert_eq!(dependency(&p, "base-image").unwrap()["digest"]["sha256"], "bb");
        assert_eq!(
            p["runDetails"]["metadata"]["invocationId"],
            "https://github.com/o/r/actions/runs/1/attempts/1"
        );
        assert!(is_secret_arg("NPM_TOKEN") && is_secret_arg("registry_password") && !is_secret_arg("KYVERNO_SHA256"));
    }
}
