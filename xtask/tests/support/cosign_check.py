#!/usr/bin/env python3
"""An independent checker of cosign signatures and attestations in an OCI registry.

Written from the published formats only (it shares no code with the xtask):
- cosign specs/SIGNATURE_SPEC.md: tag `sha256-<hex>.sig`, an OCI image manifest whose
  layers have media type application/vnd.dev.cosign.simplesigning.v1+json and the
  annotation dev.cosignproject.cosign/signature (base64 of a DER ECDSA-P256-SHA256
  signature over the layer's bytes); the payload is the containers/image simple-signing
  document with critical.type `cosign container image signature`;
- cosign specs/ATTESTATION_SPEC.md: tag `sha256-<hex>.att`, one layer per attestation,
  media type application/vnd.dsse.envelope.v1+json, annotation `predicateType` (what
  `cosign attest` writes);
- DSSE protocol.md (secure-systems-lab/dsse): the signature is over
  PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body; standard or
  URL-safe base64 both accepted;
- in-toto attestation spec v1, statement.md: `_type` https://in-toto.io/Statement/v1,
  subject [{name, digest: {sha256: hex}}], predicateType, predicate;
- SLSA provenance v1 (slsa.dev/spec/v1.0/provenance): buildDefinition.buildType,
  externalParameters, resolvedDependencies; runDetails.builder.id;
- CycloneDX: bomFormat "CycloneDX", specVersion.

The registry is read over its HTTP API (distribution spec), with basic auth from a netrc
file, never from argv. Every blob and manifest is checked against its digest.

Usage:
  cosign_check.py verify --registry HOST:PORT --netrc FILE --repository NAME
                         --digest sha256:HEX --key PUBLIC.pem
      prints a JSON report on stdout and exits 0 when everything verifies;
      exit 1 (and `invalid: WHY` on stderr) when something does not;
      exit 3 when the registry cannot be reached.
  cosign_check.py fingerprint --key PUBLIC.pem
      prints SHA256:<hex> of the key's DER SubjectPublicKeyInfo.
  cosign_check.py append-attestation --registry HOST:PORT --netrc FILE --repository NAME
                         --digest sha256:HEX --private-key KEY.pem --predicate-type URI
      adds one attestation signed by KEY to the image's `.att` (as `cosign attest`
      does), prints the new manifest's digest.

Attestations the key does not verify are skipped, not refused (cosign verify-attestation
does the same: several parties may attest one image); the required ones must verify.
"""

import argparse
import base64
import binascii
import hashlib
import json
import netrc
import sys
import urllib.error
import urllib.parse
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
SIG_TYPE = "cosign container image signature"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_V1 = "https://slsa.dev/provenance/v1"
CYCLONEDX = "https://cyclonedx.org/bom"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


class Invalid(Exception):
    """A signature or attestation that does not hold."""


class Unreachable(Exception):
    """The registry did not answer."""


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, host, netrc_file):
        self.host = host
        auth = netrc.netrc(netrc_file).authenticators(host.split(":")[0])
        if auth is None:
            raise SystemExit(f"usage: {netrc_file} has no machine {host.split(':')[0]}")
        token = base64.b64encode(f"{auth[0]}:{auth[2]}".encode()).decode()
        self.auth = f"Basic {token}"

    def get(self, path, accept=None):
        req = urllib.request.Request(f"http://{self.host}/v2/{path}")
        req.add_header("Authorization", self.auth)
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None, {}
            raise Unreachable(f"GET /v2/{path}: HTTP {e.code}") from e
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise Unreachable(f"GET /v2/{path}: {e}") from e

    def send(self, method, url, data, content_type):
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", self.auth)
        req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return dict(r.headers)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise Unreachable(f"{method} {url}: {e}") from e

    def upload(self, repo, data):
        """A blob, monolithically (POST for a session, PUT with the digest)."""
        where = self.send("POST", f"http://{self.host}/v2/{repo}/blobs/uploads/", b"", "application/octet-stream")
        location = {k.lower(): v for k, v in where.items()}["location"]
        if location.startswith("/"):
            location = f"http://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        self.send("PUT", f"{location}{sep}digest={urllib.parse.quote(sha256(data))}", data, "application/octet-stream")

    def manifest(self, repo, ref):
        """(raw bytes, parsed JSON, digest) of a manifest, checked against its digest."""
        raw, headers = self.get(f"{repo}/manifests/{ref}", ACCEPT)
        if raw is None:
            return None
        digest = sha256(raw)
        said = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
        if said is not None and said != digest:
            raise Invalid(f"{repo}:{ref}: the registry says {said}, the bytes hash to {digest}")
        if ref.startswith("sha256:") and ref != digest:
            raise Invalid(f"{repo}@{ref}: the manifest's bytes hash to {digest}")
        return raw, json.loads(raw), digest

    def blob(self, repo, descriptor):
        raw, _ = self.get(f"{repo}/blobs/{descriptor['digest']}")
        if raw is None:
            raise Invalid(f"{repo}: blob {descriptor['digest']} is missing")
        if sha256(raw) != descriptor["digest"]:
            raise Invalid(f"{repo}: blob {descriptor['digest']} hashes to {sha256(raw)}")
        if descriptor.get("size") is not None and descriptor["size"] != len(raw):
            raise Invalid(f"{repo}: blob {descriptor['digest']} has {len(raw)} bytes, the descriptor says {descriptor['size']}")
        return raw


def load_key(path):
    with open(path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SystemExit(f"usage: {path} is not an EC P-256 public key")
    return key


def fingerprint(key):
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def verifies(key, signature, data):
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def b64(text):
    """Standard or URL-safe base64, padded (DSSE verifiers must accept both)."""
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Invalid(f"not base64: {e}") from e


def pae(payload_type, body):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def oci_manifest(m, what):
    if m.get("schemaVersion") != 2 or m.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise Invalid(f"{what} is not an OCI image manifest (mediaType {m.get('mediaType')})")
    if not isinstance(m.get("layers"), list) or not m["layers"]:
        raise Invalid(f"{what} has no layers")


def check_signature(reg, repo, full, digest, key):
    tag = digest.replace(":", "-", 1) + ".sig"
    got = reg.manifest(repo, tag)
    if got is None:
        raise Invalid(f"{full}@{digest} has no {tag}")
    _, m, manifest_digest = got
    oci_manifest(m, tag)
    payloads = []
    for layer in m["layers"]:
        if layer.get("mediaType") != SIMPLESIGNING:
            raise Invalid(f"{tag}: a layer has media type {layer.get('mediaType')}, not {SIMPLESIGNING}")
        sig = (layer.get("annotations") or {}).get(SIG_ANNOTATION)
        if not sig:
            raise Invalid(f"{tag}: a layer has no {SIG_ANNOTATION} annotation")
        payload = reg.blob(repo, layer)
        if not verifies(key, b64(sig), payload):
            raise Invalid(f"{tag}: the signature does not verify with the public key")
        p = json.loads(payload)
        c = p.get("critical") or {}
        if c.get("type") != SIG_TYPE:
            raise Invalid(f"{tag}: critical.type is {c.get('type')!r}")
        named = (c.get("image") or {}).get("docker-manifest-digest")
        if named != digest:
            raise Invalid(f"{tag}: the signed payload names {named}, not {digest}")
        ref = (c.get("identity") or {}).get("docker-reference")
        if ref != full:
            raise Invalid(f"{tag}: the signed payload names {ref}, not {full}")
        payloads.append(p)
    return {"tag": tag, "digest": manifest_digest, "payloads": payloads, "layers": len(m["layers"])}


def check_attestations(reg, repo, full, digest, key):
    tag = digest.replace(":", "-", 1) + ".att"
    got = reg.manifest(repo, tag)
    if got is None:
        raise Invalid(f"{full}@{digest} has no {tag}")
    _, m, manifest_digest = got
    oci_manifest(m, tag)
    predicates, foreign = {}, []
    for layer in m["layers"]:
        if layer.get("mediaType") != DSSE:
            raise Invalid(f"{tag}: a layer has media type {layer.get('mediaType')}, not {DSSE}")
        annotated = (layer.get("annotations") or {}).get("predicateType")
        env = json.loads(reg.blob(repo, layer))
        if env.get("payloadType") != IN_TOTO:
            raise Invalid(f"{tag}: payloadType {env.get('payloadType')!r}")
        body = b64(env.get("payload", ""))
        signed = pae(env["payloadType"], body)
        sigs = env.get("signatures") or []
        if not any(verifies(key, b64(s.get("sig", "")), signed) for s in sigs):
            # Another signer's attestation (`cosign attest` appends to the same tag):
            # cosign skips what the key does not verify.
            foreign.append(annotated)
            continue
        st = json.loads(body)
        if st.get("_type") != STATEMENT_V1:
            raise Invalid(f"{tag}: _type {st.get('_type')!r}")
        if st.get("predicateType") != annotated:
            raise Invalid(f"{tag}: predicateType {st.get('predicateType')!r}, annotation {annotated!r}")
        hexd = digest.split(":", 1)[1]
        subjects = st.get("subject") or []
        if not any(s.get("name") == full and (s.get("digest") or {}).get("sha256") == hexd for s in subjects):
            raise Invalid(f"{tag}: the {annotated} statement's subject is {subjects}, not {full}@{digest}")
        if annotated in predicates:
            raise Invalid(f"{tag}: two {annotated} attestations")
        predicates[annotated] = st.get("predicate")
    for want in (SLSA_V1, CYCLONEDX):
        if want not in predicates:
            raise Invalid(f"{tag}: no {want} attestation that verifies (has {sorted(predicates)}, others {foreign})")
    return {"tag": tag, "digest": manifest_digest, "layers": len(m["layers"]), "predicates": predicates, "foreign": foreign}


def check_provenance(p):
    bd, rd = p.get("buildDefinition") or {}, p.get("runDetails") or {}
    if not bd.get("buildType") or not isinstance(bd.get("externalParameters"), dict):
        raise Invalid("the provenance lacks buildDefinition.buildType or externalParameters")
    for d in bd.get("resolvedDependencies") or []:
        if not d.get("uri") and not d.get("digest"):
            raise Invalid(f"a resolved dependency has neither uri nor digest: {d}")
    if not (rd.get("builder") or {}).get("id"):
        raise Invalid("the provenance has no runDetails.builder.id")


def check_sbom(b):
    if b.get("bomFormat") != "CycloneDX" or not isinstance(b.get("specVersion"), str):
        raise Invalid(f"the SBOM is not CycloneDX (bomFormat {b.get('bomFormat')!r})")
    return len(b.get("components") or [])


def verify(a):
    key = load_key(a.key)
    reg = Registry(a.registry, a.netrc)
    full = f"{a.registry}/{a.repository}"
    image = reg.manifest(a.repository, a.digest)
    if image is None:
        raise Invalid(f"{full}@{a.digest} does not exist")
    config = json.loads(reg.blob(a.repository, image[1]["config"]))
    sig = check_signature(reg, a.repository, full, a.digest, key)
    att = check_attestations(reg, a.repository, full, a.digest, key)
    check_provenance(att["predicates"][SLSA_V1])
    components = check_sbom(att["predicates"][CYCLONEDX])
    report = {
        "reference": f"{full}@{a.digest}",
        "fingerprint": fingerprint(key),
        "labels": (config.get("config") or {}).get("Labels") or {},
        "signature": sig,
        "attestations": {"tag": att["tag"], "digest": att["digest"], "layers": att["layers"], "foreign": att["foreign"]},
        "provenance": att["predicates"][SLSA_V1],
        "sbom": att["predicates"][CYCLONEDX],
        "sbom_components": components,
    }
    json.dump(report, sys.stdout)


def append_attestation(a):
    """What `cosign attest --key OTHER.key --type T` does when the image already has
    attestations: one more DSSE layer in the same `.att` manifest."""
    reg = Registry(a.registry, a.netrc)
    with open(a.private_key, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    full = f"{a.registry}/{a.repository}"
    tag = a.digest.replace(":", "-", 1) + ".att"
    got = reg.manifest(a.repository, tag)
    if got is None:
        raise Invalid(f"{full} has no {tag} to append to")
    statement = {
        "_type": STATEMENT_V1,
        "subject": [{"name": full, "digest": {"sha256": a.digest.split(":", 1)[1]}}],
        "predicateType": a.predicate_type,
        "predicate": {"scanner": "pp-test"},
    }
    body = json.dumps(statement).encode()
    sig = private.sign(pae(IN_TOTO, body), ec.ECDSA(hashes.SHA256()))
    env = json.dumps({
        "payloadType": IN_TOTO,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }).encode()
    reg.upload(a.repository, env)
    m = got[1]
    m["layers"].append({"mediaType": DSSE, "size": len(env), "digest": sha256(env), "annotations": {"predicateType": a.predicate_type}})
    raw = json.dumps(m).encode()
    reg.send("PUT", f"http://{reg.host}/v2/{a.repository}/manifests/{tag}", raw, OCI_MANIFEST)
    print(sha256(raw))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    for f in ("--registry", "--netrc", "--repository", "--digest", "--key"):
        v.add_argument(f, required=True)
    fp = sub.add_parser("fingerprint")
    fp.add_argument("--key", required=True)
    ap_ = sub.add_parser("append-attestation")
    for f in ("--registry", "--netrc", "--repository", "--digest", "--private-key", "--predicate-type"):
        ap_.add_argument(f, required=True)
    a = ap.parse_args()
    if a.cmd == "fingerprint":
        print(fingerprint(load_key(a.key)))
        return 0
    try:
        if a.cmd == "append-attestation":
            append_attestation(a)
        else:
            verify(a)
    except Invalid as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 1
    except Unreachable as e:
        print(f"unreachable: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
