//! cosign's formats, written and read without cosign: the simple-signing payload of a
//! signature, DSSE envelopes of in-toto statements (attestations), and the OCI manifests
//! that carry them under `sha256-<hex>.sig` and `.att`. Pure: signing happens elsewhere
//! (openssl); this module only builds and checks the documents.
//!
//! Sources: cosign's specs/SIGNATURE_SPEC.md and specs/ATTESTATION_SPEC.md, the DSSE
//! envelope spec (secure-systems-lab/dsse envelope.md, protocol.md) and the in-toto
//! attestation spec (Statement v1).

use super::base64;
use serde_json::{json, Value};

pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// `sha256:<hex>` → `sha256-<hex>.sig` / `.att`, where cosign looks for them.
pub fn tag_for(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

/// The simple-signing payload cosign signs for an image: the repository and the digest.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest },
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// What a signature payload claims, or why it is not one of ours.
pub fn read_payload(bytes: &[u8]) -> Result<(String, String), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("the signed payload is not JSON ({e})"))?;
    let c = &v["critical"];
    if c["type"] != SIGNATURE_TYPE {
        return Err(format!(
            "the signed payload's critical.type is {}, not `{SIGNATURE_TYPE}`",
            c["type"]
        ));
    }
    // Older cosign wrote `Docker-manifest-digest`; the spec's key is lower case.
    let digest = c["image"]["docker-manifest-digest"]
        .as_str()
        .or_else(|| c["image"]["Docker-manifest-digest"].as_str());
    let repo = c["identity"]["docker-reference"].as_str().unwrap_or_default();
    match digest {
        Some(d) => Ok((repo.to_string(), d.to_string())),
        None => Err("the signed payload names no critical.image.docker-manifest-digest".into()),
    }
}

/// An in-toto v1 statement about one image.
pub fn statement(repository: &str, digest: &str, predicate_type: &str, predicate: Value) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    json!({
        "_type": STATEMENT_V1,
        "subject": [{ "name": repository, "digest": { "sha256": hex } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// DSSE's pre-authentication encoding: what a DSSE signature is over.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// A DSSE envelope of `body` (the statement's bytes) with one signature.
pub fn envelope(body: &[u8], signature: &[u8]) -> Vec<u8> {
    let v = json!({
        "payloadType": IN_TOTO,
        "payload": base64::encode(body),
        "signatures": [{ "keyid": "", "sig": base64::encode(signature) }],
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// An envelope's body, its signatures, and what the signatures cover (the PAE).
pub struct Opened {
    pub body: Vec<u8>,
    pub signatures: Vec<Vec<u8>>,
    pub signed: Vec<u8>,
}

pub fn open_envelope(bytes: &[u8]) -> Result<Opened, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the attestation is not a JSON DSSE envelope ({e})"))?;
    let ty = v["payloadType"]
        .as_str()
        .ok_or("the DSSE envelope has no payloadType")?;
    if ty != IN_TOTO {
        return Err(format!("the DSSE envelope's payloadType is {ty}, not {IN_TOTO}"));
    }
    let body = base64::decode(v["payload"].as_str().ok_or("the DSSE envelope has no payload")?)
        .ok_or("the DSSE payload is not base64")?;
    let signatures: Vec<Vec<u8>> = v["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| base64::decode(s["sig"].as_str()?))
        .collect();
    let signed = pae(ty, &body);
    Ok(Opened {
        body,
        signatures,
        signed,
    })
}

/// A statement's subject check: it names `repository` and `digest`. Returns its
/// predicate type and predicate.
pub fn read_statement(body: &[u8], repository: &str, digest: &str) -> Result<(String, Value), String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the attestation's statement is not JSON ({e})"))?;
    if !v["_type"]
        .as_str()
        .is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"))
    {
        return Err(format!(
            "the attestation is not an in-toto statement (_type {})",
            v["_type"]
        ));
    }
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let names_it = v["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["name"] == repository && s["digest"]["sha256"] == hex);
    if !names_it {
        return Err(format!(
            "the attestation's subject is {}, not {repository}@{digest}",
            v["subject"]
        ));
    }
    let ty = v["predicateType"]
        .as_str()
        .ok_or("the attestation has no predicateType")?
        .to_string();
    Ok((ty, v["predicate"].clone()))
}

/// One blob of an OCI artifact: its bytes, media type and annotations.
pub struct Layer {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub annotations: Value,
}

impl Layer {
    pub fn signature(payload: Vec<u8>, signature: &[u8]) -> Layer {
        Layer {
            bytes: payload,
            media_type: SIMPLESIGNING,
            annotations: json!({ SIGNATURE_ANNOTATION: base64::encode(signature) }),
        }
    }

    pub fn attestation(envelope: Vec<u8>, predicate_type: &str) -> Layer {
        Layer {
            bytes: envelope,
            media_type: DSSE,
            annotations: json!({ "predicateType": predicate_type }),
        }
    }
}

/// The image config of a signature or attestation manifest, as cosign writes it: empty
/// but for one diff id per layer (the layers are stored uncompressed). `digests` are the
/// layers' `sha256:<hex>`.
pub fn config(digests: &[String]) -> Vec<u8> {
    let v = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": digests.iter().map(|_| json!({ "created": "0001-01-01T00:00:00Z" })).collect::<Vec<_>>(),
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": digests },
        "config": {},
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The OCI image manifest: `config` and `layers` as `(digest, size)` pairs.
pub fn manifest(config: (&str, usize), layers: &[(&Layer, String)]) -> Vec<u8> {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "size": config.1, "digest": config.0 },
        "layers": layers.iter().map(|(l, digest)| json!({
            "mediaType": l.media_type,
            "size": l.bytes.len(),
            "digest": digest,
            "annotations": l.annotations,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The layers of a signature or attestation manifest: `(media type, digest, annotations)`.
pub fn manifest_layers(raw: &[u8]) -> Result<Vec<(String, String, Value)>, String> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| format!("the manifest is not JSON ({e})"))?;
    let layers = v["layers"].as_array().ok_or("the manifest has no layers")?;
    Ok(layers
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap_or_default().to_string(),
                l["digest"].as_str().unwrap_or_default().to_string(),
                l["annotations"].clone(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36";

    #[test]
    fn tags_follow_the_digest() {
        assert_eq!(
            tag_for(D, "sig"),
            "sha256-97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36.sig"
        );
        assert_eq!(
            tag_for(D, "att"),
            "sha256-97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36.att"
        );
        crate::tags::check_tag(&tag_for(D, "sig")).unwrap();
    }

    #[test]
    fn payload_round_trip() {
        let p = payload("reg.example/team/pp", D);
        let v: Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["critical"]["type"], SIGNATURE_TYPE);
        assert_eq!(v["critical"]["image"]["docker-manifest-digest"], D);
        assert_eq!(
            read_payload(&p).unwrap(),
            ("reg.example/team/pp".to_string(), D.to_string())
        );
        assert!(read_payload(b"{\"critical\":{\"type\":\"atomic container signature\"}}").is_err());
        // cosign 1.x's capitalised key is still read.
        let old = format!("{{\"critical\":{{\"identity\":{{\"docker-reference\":\"\"}},\"image\":{{\"Docker-manifest-digest\":\"{D}\"}},\"type\":\"{SIGNATURE_TYPE}\"}}}}");
        assert_eq!(read_payload(old.as_bytes()).unwrap().1, D);
    }

    #[test]
    fn pae_is_dsse_v1() {
        // The example of the DSSE protocol: "DSSEv1 29 http://example.com/HelloWorld 11 hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_and_statements_round_trip() {
        let st = statement("reg.example/pp", D, SLSA_PROVENANCE_V1, json!({"buildDefinition": {}}));
        assert_eq!(st["subject"][0]["digest"]["sha256"], D.trim_start_matches("sha256:"));
        let body = serde_json::to_vec(&st).unwrap();
        let env = envelope(&body, b"\x30\x45sig");
        let o = open_envelope(&env).unwrap();
        assert_eq!(o.body, body);
        assert_eq!(o.signatures, vec![b"\x30\x45sig".to_vec()]);
        assert_eq!(o.signed, pae(IN_TOTO, &body));
        let (ty, pred) = read_statement(&o.body, "reg.example/pp", D).unwrap();
        assert_eq!(
            (ty.as_str(), &pred),
            (SLSA_PROVENANCE_V1, &json!({"buildDefinition": {}}))
        );
        let other = D.replace("97fc", "0000");
        assert!(read_statement(&o.body, "reg.example/pp", &other)
            .unwrap_err()
            .contains("subject"));
        assert!(read_statement(&o.body, "reg.example/other", D).is_err());
    }

    #[test]
    fn manifests_carry_media_types_and_annotations() {
        let l = Layer::signature(payload("r", D), b"sig");
        let ld = "sha256:aa".to_string();
        let cfg = config(std::slice::from_ref(&ld));
        let m = manifest(("sha256:cc", cfg.len()), &[(&l, ld.clone())]);
        let layers = manifest_layers(&m).unwrap();
        assert_eq!(layers[0].0, SIMPLESIGNING);
        assert_eq!(layers[0].1, ld);
        assert_eq!(layers[0].2[SIGNATURE_ANNOTATION], base64::encode(b"sig"));
        let v: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["config"]["mediaType"], OCI_CONFIG);
        let c: Value = serde_json::from_slice(&cfg).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"][0], "sha256:aa");
    }
}
