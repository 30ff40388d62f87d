//! What a publish really sent to each registry: the layers `docker push` uploaded (it
//! prints `<diff id prefix>: Pushed`, `Layer already exists` or `Mounted from …` per
//! layer), sized by the pushed manifest (compressed bytes, as stored). Pure.

use crate::image::plan::mb;
use serde_json::{json, Value};

/// The layers one push uploaded, and those the registry already had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Compressed size of each layer blob uploaded.
    pub new_layers: Vec<u64>,
    /// Layer blobs the registry already had (or mounted from another of its repositories).
    pub existing_layers: usize,
    /// The image config and the manifest, sent along (a few kB).
    pub config_bytes: u64,
    pub manifest_bytes: u64,
}

impl Transfer {
    /// Layer bytes uploaded.
    pub fn bytes(&self) -> u64 {
        self.new_layers.iter().sum()
    }

    pub fn summary(&self) -> String {
        let n = self.new_layers.len();
        let there = match self.existing_layers {
            1 => "1 layer already there".to_string(),
            k => format!("{k} layers already there"),
        };
        match n {
            0 => format!("pushed no new layer; {there}"),
            1 => format!("pushed 1 new layer, {}; {there}", mb(self.bytes())),
            _ => format!("pushed {n} new layers, {}; {there}", mb(self.bytes())),
        }
    }
}

/// What a publish sent to one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Upload {
    /// No blob: every tag already held the image, or was pointed at its manifest there.
    #[default]
    Nothing,
    /// `docker push` ran.
    Layers(Transfer),
    /// Copied registry-side from another registry (skopeo does not say what it sent).
    Copied { from: String },
    /// A push whose output could not be read, and why.
    Unmeasured(String),
}

impl Upload {
    pub fn summary(&self) -> String {
        match self {
            Upload::Nothing => "pushed nothing: the registry already held the image".to_string(),
            Upload::Layers(t) => t.summary(),
            Upload::Copied { from } => format!("copied from {from} registry-side (bytes not measured)"),
            Upload::Unmeasured(why) => format!("pushed (bytes not measured: {why})"),
        }
    }

    /// For the release record.
    pub fn json(&self) -> Value {
        let mut v = match self {
            Upload::Layers(t) => json!({
                "layers_pushed": t.new_layers.len(),
                "bytes_pushed": t.bytes(),
                "layers_already_there": t.existing_layers,
                "config_bytes": t.config_bytes,
                "manifest_bytes": t.manifest_bytes,
            }),
            Upload::Nothing => json!({ "layers_pushed": 0, "bytes_pushed": 0 }),
            Upload::Copied { .. } | Upload::Unmeasured(_) => json!({ "layers_pushed": null, "bytes_pushed": null }),
        };
        v["summary"] = json!(self.summary());
        v
    }
}

/// Which status `docker push` printed last for each layer: `(12-hex prefix, pushed?)`.
fn statuses(push_output: &str) -> Vec<(String, bool)> {
    push_output
        .lines()
        .filter_map(|l| {
            let (id, status) = l.trim().split_once(": ")?;
            let hex = id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
            let pushed = match status {
                "Pushed" => true,
                "Layer already exists" => false,
                s if s.starts_with("Mounted from ") => false,
                _ => return None,
            };
            hex.then(|| (id.to_string(), pushed))
        })
        .collect()
}

/// The transfer of one `docker push`: its output, the image's diff IDs (oldest first), and
/// the pushed manifest's layers (same order) and config size.
pub fn of_push(
    push_output: &str,
    diff_ids: &[String],
    layers: &[(String, u64)],
    config_bytes: u64,
    manifest_bytes: u64,
) -> Result<Transfer, String> {
    if diff_ids.len() != layers.len() {
        return Err(format!(
            "the image has {} layers but the pushed manifest {}",
            diff_ids.len(),
            layers.len()
        ));
    }
    let seen = statuses(push_output);
    let mut t = Transfer {
        config_bytes,
        manifest_bytes,
        ..Transfer::default()
    };
    let mut done: Vec<&str> = Vec::new();
    for (diff, (blob, size)) in diff_ids.iter().zip(layers) {
        // One blob per distinct layer, however often the image repeats it.
        if done.contains(&blob.as_str()) {
            continue;
        }
        done.push(blob);
        // The classic image store names a layer by its diff ID; accept its blob digest too.
        let short = |d: &str| {
            d.trim_start_matches("sha256:")
                .get(..12)
                .unwrap_or_default()
                .to_string()
        };
        let (by_diff, by_blob) = (short(diff), short(blob));
        match seen.iter().rev().find(|(id, _)| *id == by_diff || *id == by_blob) {
            Some((_, true)) => t.new_layers.push(*size),
            Some((_, false)) => t.existing_layers += 1,
            None => return Err(format!("docker push printed no status for layer {by_diff}")),
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "The push refers to repository [127.0.0.1:5391/pp]\n9bee048244fd: Preparing\n081cb7a01b2b: Preparing\n389a97ed321e: Preparing\n081cb7a01b2b: Layer already exists\n389a97ed321e: Mounted from pp-base\n9bee048244fd: Pushed\nv1.1.0: digest: sha256:895e09d2acab3b83c46354aa71a9aa433e6b6ed5c72732787460288b4bd7f8d8 size: 1153\n";

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|p| format!("sha256:{p}{}", "0".repeat(52))).collect()
    }

    #[test]
    fn only_layers_docker_pushed_count_sized_by_the_manifest() {
        let layers = vec![
            ("sha256:a".to_string(), 7_000_000),
            ("sha256:b".to_string(), 300),
            ("sha256:c".to_string(), 118_400_000),
        ];
        let t = of_push(
            OUT,
            &ids(&["389a97ed321e", "081cb7a01b2b", "9bee048244fd"]),
            &layers,
            1469,
            1153,
        )
        .unwrap();
        assert_eq!(
            t,
            Transfer {
                new_layers: vec![118_400_000],
                existing_layers: 2,
                config_bytes: 1469,
                manifest_bytes: 1153
            }
        );
        assert_eq!(t.summary(), "pushed 1 new layer, 118.4 MB; 2 layers already there");
        let rec = Upload::Layers(t).json();
        assert_eq!(
            (
                rec["layers_pushed"].as_u64(),
                rec["bytes_pushed"].as_u64(),
                rec["layers_already_there"].as_u64()
            ),
            (Some(1), Some(118_400_000), Some(2))
        );
    }

    #[test]
    fn a_repeated_layer_is_one_blob_and_a_missing_status_is_said() {
        let layers = vec![("sha256:a".to_string(), 10), ("sha256:a".to_string(), 10)];
        let t = of_push(
            "aaaaaaaaaaaa: Pushed\n",
            &ids(&["aaaaaaaaaaaa", "aaaaaaaaaaaa"]),
            &layers,
            1,
            1,
        )
        .unwrap();
        assert_eq!((t.new_layers.clone(), t.existing_layers), (vec![10], 0));
        assert!(of_push("", &ids(&["aaaaaaaaaaaa"]), &layers[..1], 1, 1)
            .unwrap_err()
            .contains("aaaaaaaaaaaa"));
        assert!(of_push(OUT, &ids(&["aaaaaaaaaaaa"]), &[], 1, 1)
            .unwrap_err()
            .contains("1 layers but the pushed manifest 0"));
    }

    #[test]
    fn layers_named_by_their_blob_count_too() {
        let blob = format!("sha256:abcdef012345{}", "0".repeat(52));
        let t = of_push("abcdef012345: Pushed\n", &ids(&["aaaaaaaaaaaa"]), &[(blob, 42)], 1, 1).unwrap();
        assert_eq!(t.new_layers, vec![42]);
    }

    #[test]
    fn summaries() {
        let t = Transfer {
            new_layers: vec![1_000_000, 2_500_000],
            existing_layers: 1,
            ..Transfer::default()
        };
        assert_eq!(t.summary(), "pushed 2 new layers, 3.5 MB; 1 layer already there");
        assert_eq!(
            Transfer {
                existing_layers: 6,
                ..Transfer::default()
            }
            .summary(),
            "pushed no new layer; 6 layers already there"
        );
        assert_eq!(Upload::Nothing.json()["bytes_pushed"], 0);
        assert!(Upload::Copied {
            from: "r1/pp@sha256:x".into()
        }
        .json()["bytes_pushed"]
            .is_null());
    }
}
