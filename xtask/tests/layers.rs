//! The image's layers follow what changed (issue 9), on the real engine: the repo's real
//! Dockerfile built by `cargo xtask image` with the stand-in tools. The same tool bytes give
//! the same layers on another base, from another checkout and when built again later
//! without cache; a one-tool upgrade changes that tool's layer and no other. Checked by the
//! engine's diff IDs, by each layer's files (`docker save`), and by the manifests a real
//! registry holds after both images were pushed (read with skopeo).
mod support;

use std::process::Command;
use support::image::{as_strs, layer_of, sha256, standin, xtask_args, ImageGuard, ToolServer, PARTS};
use support::registry::{push_image, Registry, Skopeo};
use support::{busybox_base, derive, docker, need_docker, unique, TempDir, TempRepo};

/// `cargo xtask image` with the stand-ins and `extra` flags, in `repo` (which names the
/// image `image`). The result is kept as `<image>-built:<which>` (removed by `guard`) and
/// the xtask's own tags are dropped, since the next build moves them.
fn build(
    repo: &TempRepo,
    image: &str,
    server: &ToolServer,
    extra: &[&str],
    which: &str,
    guard: &mut ImageGuard,
) -> String {
    let mut args = xtask_args("image", server);
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = repo.xtask(&as_strs(&args));
    assert_eq!(run.code, 0, "{run:?}");
    let id = repo.read("target/xtask/image/iid").trim().to_string();
    let keep = format!("{image}-built:{which}");
    assert_eq!(docker(&["tag", &id, &keep]).code, 0);
    guard.add(&keep);
    let tags = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", image]).stdout;
    let mut rmi = vec!["rmi"];
    rmi.extend(tags.lines());
    assert_eq!(docker(&rmi).code, 0, "untag the xtask's tags {tags}");
    keep
}

/// The image's layer diff IDs, base first.
fn diff_ids(image: &str) -> Vec<String> {
    let r = docker(&["image", "inspect", "--format", "{{json .RootFS.Layers}}", image]);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(r.stdout.trim()).unwrap()
}

/// An image's layers as `docker save` writes them: one tar file per layer, base first.
struct Saved {
    dir: TempDir,
    layers: Vec<String>,
}

impl Saved {
    fn new(image: &str) -> Saved {
        let dir = TempDir::new("save");
        let tar = dir.path().join("image.tar");
        assert_eq!(docker(&["save", "-o", tar.to_str().unwrap(), image]).code, 0);
        assert!(Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap()
            .success());
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap()).unwrap();
        let layers = manifest[0]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        Saved { dir, layers }
    }

    fn path(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(&self.layers[i])
    }

    /// `(mode owner mtime, path)` of every entry of layer `i`, as `tar -tv` shows them.
    fn entries(&self, i: usize) -> Vec<(String, String)> {
        let out = Command::new("tar")
            .args(["-tv", "--numeric-owner", "--full-time", "-f"])
            .arg(self.path(i))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (format!("{} {} {} {}", f[0], f[1], f[3], f[4]), f[5..].join(" "))
            })
            .collect()
    }

    fn file(&self, i: usize, path: &str) -> Vec<u8> {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(self.path(i))
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{path} in layer {i}");
        out.stdout
    }
}

/// The layers after `base` hold, in the order of PARTS, the user, each tool (exactly its
/// binary, the stand-in at `versions`, with fixed metadata) and the policies.
fn assert_parts(image: &str, base: &str, versions: &[(&str, &str)]) {
    let n = diff_ids(base).len();
    assert_eq!(
        diff_ids(image)[..n],
        diff_ids(base)[..],
        "{image} starts with its base's layers"
    );
    let saved = Saved::new(image);
    assert_eq!(
        saved.layers.len(),
        n + PARTS.len(),
        "{image}: the base, then one layer per part"
    );
    let user: Vec<String> = saved.entries(layer_of("user", n)).into_iter().map(|e| e.1).collect();
    for want in ["etc/passwd", "etc/group", "workspace/"] {
        assert!(
            user.iter().any(|p| p.trim_start_matches("./") == want),
            "{want} in the user layer: {user:?}"
        );
    }
    for (tool, version) in versions {
        let entries = saved.entries(layer_of(tool, n));
        let bin = format!("usr/local/bin/{tool}");
        let paths: Vec<&str> = entries.iter().map(|e| e.1.trim_start_matches("./")).collect();
        assert_eq!(
            paths,
            ["usr/", "usr/local/", "usr/local/bin/", bin.as_str()],
            "the {tool} layer"
        );
        for (meta, path) in &entries {
            let mode = if path.ends_with('/') {
                "drwxr-xr-x"
            } else {
                "-rwxr-xr-x"
            };
            assert_eq!(
                meta,
                &format!("{mode} 0/0 1970-01-01 00:00:00"),
                "{path} in the {tool} layer"
            );
        }
        let got = sha256(&saved.file(layer_of(tool, n), &bin));
        assert_eq!(
            got,
            sha256(standin(tool, version).as_bytes()),
            "{tool} {version} in its layer"
        );
    }
    let policies = saved.entries(layer_of("policies", n));
    assert!(
        !policies.is_empty()
            && policies
                .iter()
                .all(|(_, p)| p.trim_start_matches("./").starts_with("repos/")),
        "{policies:?}"
    );
    assert!(
        policies.iter().all(|(m, _)| m.ends_with("0/0 1970-01-01 00:00:00")),
        "{policies:?}"
    );
}

/// Indices where two equally long lists differ.
fn differing(a: &[String], b: &[String]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "{a:?}\n{b:?}");
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

fn pinned(server: &ToolServer) -> Vec<(&str, &str)> {
    server
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.version.as_str()))
        .collect()
}

/// A base image of the test's own, FROM the busybox base plus `steps`: the shared busybox
/// tag may be re-imported (new layer) by another test process while this test runs.
/// Give it a guard declared before the images' one, so that it is removed after them.
fn own_base(name: &str, steps: &str, guard: &mut ImageGuard) -> String {
    guard.add(name);
    derive(name, &busybox_base(), steps);
    name.to_string()
}

#[ignore = "needs Docker"]
#[test]
fn the_same_tools_and_policies_give_the_same_layers_on_another_base_checkout_and_time() {
    need_docker();
    let name = unique("layers");
    let server = ToolServer::start();
    let mut bases = ImageGuard::default();
    let mut guard = ImageGuard::default();
    let one = own_base(&format!("{name}-base:one"), "LABEL base=one", &mut bases);
    // Another base: other layers, and no /usr/local at all (the tool copies create it).
    let other = own_base(
        &format!("{name}-base:other"),
        "RUN rm -rf /usr/local && echo other > /etc/base-id",
        &mut bases,
    );

    let a = build(
        &TempRepo::named(&name),
        &name,
        &server,
        &["--build-arg", &format!("BASE_IMAGE={one}")],
        "a",
        &mut guard,
    );
    // Another checkout (other file times), the other base, and no cache: every stage runs
    // again, seconds later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b_args = ["--no-cache", "--build-arg", &format!("BASE_IMAGE={other}")];
    let b = build(&TempRepo::named(&name), &name, &server, &b_args, "b", &mut guard);

    assert_parts(&a, &one, &pinned(&server));
    assert_parts(&b, &other, &pinned(&server));
    let (la, lb) = (diff_ids(&a), diff_ids(&b));
    let (na, nb) = (la.len() - PARTS.len(), lb.len() - PARTS.len());
    assert_ne!(la[..na], lb[..nb], "the bases differ");
    assert_eq!(
        la[na..],
        lb[nb..],
        "same tools and policies, same layers on either base"
    );

    // Pushed to one repository, the two manifests share every layer but the base's.
    let reg = Registry::start(&unique("pw"));
    push_image(&reg, &a, "layers", "a");
    push_image(&reg, &b, "layers", "b");
    let sk = Skopeo::login(&reg);
    let (ma, mb) = (sk.layer_digests("layers", "a"), sk.layer_digests("layers", "b"));
    assert_eq!((ma.len(), mb.len()), (la.len(), lb.len()));
    assert_eq!(
        ma[na..],
        mb[nb..],
        "the registry holds one copy of each tool and of the policies"
    );
    assert_ne!(ma[..na], mb[..nb]);
}

#[ignore = "needs Docker"]
#[test]
fn a_one_tool_upgrade_changes_that_tools_layer_and_no_other() {
    need_docker();
    let name = unique("upgrade");
    let server = ToolServer::start();
    let mut bases = ImageGuard::default();
    let mut guard = ImageGuard::default();
    let base = own_base(&format!("{name}-base:one"), "LABEL base=one", &mut bases);
    let base_arg = format!("BASE_IMAGE={base}");
    let repo = TempRepo::named(&name);
    let before = build(&repo, &name, &server, &["--build-arg", &base_arg], "before", &mut guard);
    // helm sits between pluto and kyverno: the parts after it are copied again, and must
    // come out as the same layers.
    let helm = server.add_release("helm", "3.99.0");
    let mut up = vec!["--build-arg".to_string(), base_arg.clone()];
    up.extend(server.release_args(&helm));
    let after = build(&repo, &name, &server, &as_strs(&up), "after", &mut guard);

    let r = docker(&["run", "--rm", &after, "helm", "version", "--short"]);
    assert!(r.stdout.starts_with("v3.99.0+"), "the upgrade is in the image: {r:?}");
    assert_parts(&before, &base, &pinned(&server));
    let mut versions = pinned(&server);
    versions
        .iter_mut()
        .filter(|v| v.0 == "helm")
        .for_each(|v| v.1 = "3.99.0");
    assert_parts(&after, &base, &versions);
    let n = diff_ids(&base).len();
    let helm_layer = layer_of("helm", n);
    assert_eq!(
        differing(&diff_ids(&before), &diff_ids(&after)),
        vec![helm_layer],
        "only the helm layer changed"
    );

    // Pushed to one repository: the upgrade's manifest differs in that one layer.
    let reg = Registry::start(&unique("pw"));
    push_image(&reg, &before, "upgrade", "before");
    push_image(&reg, &after, "upgrade", "after");
    let sk = Skopeo::login(&reg);
    let (mb, ma) = (
        sk.layer_digests("upgrade", "before"),
        sk.layer_digests("upgrade", "after"),
    );
    assert_eq!(differing(&mb, &ma), vec![helm_layer], "{mb:?}\n{ma:?}");
}
