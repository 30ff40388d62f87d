//! `integration` on the real Docker engine: the real Dockerfile built on a busybox base
//! with the stand-in kyverno/helm/pluto (tests/standins/), then the repo's own chart and
//! policies checked inside it, and each way it must fail: a violating chart (exit 1,
//! policy, rule and resource named), a removed API (exit 1; flowcontrol v1beta2 for the
//! default Kubernetes target), a failing policy test (exit 1), a policy folder that loads
//! zero rules (exit 3, the kyverno trap), a chart that renders nothing or does not render
//! (exit 3), a missing image (exit 3).
mod support;

use support::image::{as_strs, xtask_args, ImageGuard, ToolServer};
use support::{docker, need_docker, Run, TempDir, TempRepo, PREFIX};

/// Writes a chart `policies/pp-test-apps/charts/<name>/` with one template.
fn write_chart(repo: &TempRepo, name: &str, values: &str, template: &str) -> String {
    let dir = format!("policies/pp-test-apps/charts/{name}");
    repo.write(
        &format!("{dir}/Chart.yaml"),
        &format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\nappVersion: \"1.0.0\"\n"),
    );
    repo.write(&format!("{dir}/values.yaml"), values);
    repo.write(&format!("{dir}/templates/workload.yaml"), template);
    dir
}

fn remove(repo: &TempRepo, rel: &str) {
    std::fs::remove_dir_all(repo.path().join(rel)).unwrap();
}

/// A pod spec that meets every policy in policies/security-policy/, indented for `at`.
fn good_pod_spec(image: &str, indent: usize) -> String {
    let spec = format!(
        "securityContext:\n  runAsNonRoot: true\ncontainers:\n  - name: main\n    image: {image}\n    securityContext:\n      allowPrivilegeEscalation: false\n      privileged: false\n    resources:\n      requests:\n        cpu: 10m\n        memory: 16Mi\n      limits:\n        memory: 32Mi\n"
    );
    let pad = " ".repeat(indent);
    spec.lines().map(|l| format!("{pad}{l}\n")).collect()
}

fn deployment(values_image: &str, extra_container_lines: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ .Release.Name }}}}-web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n{}{extra_container_lines}",
        good_pod_spec(values_image, 6)
    )
}

/// An image `tag` made FROM `base` with files copied in (as root-owned, world-readable files).
fn derive(base: &str, tag: &str, files: &[(&str, &str)]) {
    let dir = TempDir::new("derive");
    let mut dockerfile = format!("FROM {base}\n");
    for (i, (dest, text)) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("f{i}")), text).unwrap();
        dockerfile.push_str(&format!("COPY f{i} {dest}\n"));
    }
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let b = docker(&["build", "-q", "-t", tag, dir.path().to_str().unwrap()]);
    assert_eq!(b.code, 0, "{b:?}");
}

/// A FlowSchema in flowcontrol.apiserver.k8s.io/v1beta2, served until Kubernetes 1.28.
const FLOW_SCHEMA: &str = "apiVersion: flowcontrol.apiserver.k8s.io/v1beta2\nkind: FlowSchema\nmetadata:\n  name: {{ .Release.Name }}-fs\nspec:\n  priorityLevelConfiguration:\n    name: workload-low\n  matchingPrecedence: 1000\n  rules:\n    - subjects:\n        - kind: ServiceAccount\n          serviceAccount:\n            name: web\n            namespace: default\n      resourceRules:\n        - verbs: [\"get\"]\n          apiGroups: [\"\"]\n          resources: [\"pods\"]\n          namespaces: [\"default\"]\n";

/// The `kubernetes-version` the repo's Cargo.toml sets.
fn configured_k8s(repo: &TempRepo) -> String {
    let toml = repo.read("Cargo.toml");
    let line = toml
        .lines()
        .find_map(|l| l.strip_prefix("kubernetes-version = "))
        .expect("Cargo.toml sets kubernetes-version");
    line.trim_matches('"').to_string()
}

fn integration(repo: &TempRepo, image: &str) -> Run {
    repo.xtask(&["integration", "--image", image])
}

/// The table row of a chart and values file, split into cells.
fn row(run: &Run, chart: &str, values: &str) -> Vec<String> {
    let line = run
        .stdout
        .lines()
        .find(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c.len() > 2 && c[0] == chart && c[1] == values
        })
        .unwrap_or_else(|| panic!("no row for {chart} {values}: {run:?}"));
    line.split_whitespace().map(String::from).collect()
}

#[ignore = "needs Docker"]
#[test]
fn integration_checks_every_chart_inside_the_real_image() {
    need_docker();
    let name = format!("{PREFIX}-integration-{}", std::process::id());
    let repo = TempRepo::named(&name);
    let version = repo.read("VERSION").trim().to_string();
    let reference = format!("{name}:{version}");
    let broken = format!("{name}-zero-rules:{version}");
    let mut guard = ImageGuard::release_tags(&name, &repo);
    let wrong_tests = format!("{name}-wrong-tests:{version}");
    guard.add(broken.clone());
    guard.add(wrong_tests.clone());

    let server = ToolServer::start();
    let built = repo.xtask(&as_strs(&xtask_args("image", &server)));
    assert_eq!(built.code, 0, "the real Dockerfile builds: {built:?}");

    // 1. The repo as it is: every values file of the real chart passes, policy tests pass.
    let run = integration(&repo, &reference);
    assert_eq!(run.code, 0, "{run:?}");
    for values in ["values.yaml", "values-prod.yaml", "values-staging.yaml"] {
        let r = row(&run, "backend-applications/charts/app", values);
        // CHART VALUES RESOURCES RULES PASS FAIL WARN ERROR SKIP DEPRECATED RESULT
        assert_eq!(r[2], "2", "a Deployment and a Service: {r:?}");
        assert!(
            r[3].parse::<u32>().unwrap() >= 6 * 3,
            "every policy rule loaded, with autogen: {r:?}"
        );
        assert!(r[4].parse::<u32>().unwrap() > 0, "{r:?}");
        assert_eq!(&r[5..9], ["0", "0", "0", "0"], "{r:?}");
        assert_eq!(&r[9..], ["-", "ok"], "{r:?}");
    }
    let tests = run
        .stdout
        .lines()
        .find(|l| l.starts_with("/repos/security-policy/"))
        .expect("policy tests row");
    let t: Vec<&str> = tests.split_whitespace().collect();
    assert!(
        t[1].parse::<u32>().unwrap() >= 12 && t[2] == "0" && t[3] == "ok",
        "{run:?}"
    );

    // 2. A chart that breaks two policies: exit 1, naming policy, rule and resource.
    let bad = write_chart(
        &repo,
        "bad",
        "image: registry.example/web:latest\n",
        &deployment("{{ .Values.image }}", "          hostPID: true\n")
            .replace("      privileged: false", "      privileged: true"),
    );
    let run = integration(&repo, &reference);
    assert_eq!(run.code, 1, "{run:?}");
    let err = run.error_line();
    for want in [
        "pp-test-apps/charts/bad values.yaml: policy disallow-privileged-containers, rule autogen-privileged-containers, resource default/Deployment/bad-web",
        "policy disallow-latest-tag, rule autogen-validate-image-tag, resource default/Deployment/bad-web",
    ] {
        assert!(err.contains(want), "want `{want}` in: {err}");
    }
    assert!(
        !err.contains("backend-applications"),
        "the compliant chart is not blamed: {err}"
    );
    assert_eq!(
        row(&run, "pp-test-apps/charts/bad", "values.yaml")[10],
        "FAIL",
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("failed at path /spec/template/spec/containers/0/securityContext/privileged/"),
        "{run:?}"
    );
    remove(&repo, &bad);

    // 3. A removed API (batch/v1beta1 CronJob, gone in 1.25, before the configured target): exit 1.
    let old = write_chart(
        &repo,
        "old",
        "enabled: true\n",
        &format!(
            "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: {{{{ .Release.Name }}}}-job\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n{}",
            good_pod_spec("registry.example/job:2.0.1", 10)
        ),
    );
    let run = integration(&repo, &reference);
    assert_eq!(run.code, 1, "{run:?}");
    let err = run.error_line();
    assert!(err.contains("pp-test-apps/charts/old values.yaml: batch/v1beta1 CronJob \"old-job\" is removed in v1.25.0, use batch/v1"), "{err}");
    assert!(
        !err.contains("policy violation"),
        "the CronJob meets the policies: {err}"
    );
    remove(&repo, &old);

    // 3b. flowcontrol.apiserver.k8s.io/v1beta2 (removed in 1.29) against the default target:
    //     without the key in Cargo.toml the xtask's own default applies, and it must be the
    //     version the shipped Cargo.toml declares. Exit 1, the FlowSchema named as removed.
    let target = configured_k8s(&repo);
    let toml = repo.read("Cargo.toml");
    repo.write(
        "Cargo.toml",
        &toml.replace(&format!("kubernetes-version = \"{target}\"\n"), ""),
    );
    let flow = write_chart(&repo, "flow", "enabled: true\n", FLOW_SCHEMA);
    let run = integration(&repo, &reference);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!("(Kubernetes {target})")),
        "the default target is the one Cargo.toml ships: {run:?}"
    );
    let err = run.error_line();
    assert!(
        err.contains("pp-test-apps/charts/flow values.yaml: flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema \"flow-fs\" is removed in v1.29.0, use flowcontrol.apiserver.k8s.io/v1"),
        "{err}"
    );
    assert!(
        !err.contains("policy violation") && !err.contains("backend-applications"),
        "{err}"
    );
    let r = row(&run, "pp-test-apps/charts/flow", "values.yaml");
    assert_eq!(r.last().map(String::as_str), Some("FAIL"), "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("pp-test-apps/charts/flow "))
        .unwrap();
    assert!(
        line.contains("flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema removed in v1.29.0"),
        "{line}"
    );
    // The image's pluto itself, asked directly: 5.24's exit code and JSON fields.
    let dir = TempDir::new("flow");
    std::fs::write(
        dir.path().join("fs.yaml"),
        FLOW_SCHEMA.replace("{{ .Release.Name }}", "flow"),
    )
    .unwrap();
    let mount = format!("{}:/in:ro", dir.path().display());
    let p = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        "--entrypoint",
        "pluto",
        &reference,
        "detect",
        "/in/fs.yaml",
        "-o",
        "json",
        "-t",
        &format!("k8s={target}"),
    ]);
    assert_eq!(
        p.code, 3,
        "pluto exits 3 for a removed API whose replacement exists: {p:?}"
    );
    let json: serde_json::Value = serde_json::from_str(p.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {p:?}"));
    let item = &json["items"][0];
    assert_eq!(
        (item["api"]["version"].as_str(), item["api"]["removed-in"].as_str()),
        (Some("flowcontrol.apiserver.k8s.io/v1beta2"), Some("v1.29.0")),
        "{json}"
    );
    assert_eq!(
        (
            item["deprecated"].as_bool(),
            item["removed"].as_bool(),
            item["replacementAvailable"].as_bool()
        ),
        (Some(true), Some(true), Some(true)),
        "{json}"
    );
    assert_eq!(json["target-versions"]["k8s"].as_str(), Some(target.as_str()), "{json}");
    repo.write("Cargo.toml", &toml);
    remove(&repo, &flow);

    // 4. A chart whose only template is switched off renders nothing: exit 3, not a pass.
    let off = write_chart(
        &repo,
        "off",
        "enabled: false\n",
        &format!(
            "{{{{- if .Values.enabled }}}}\n{}{{{{- end }}}}\n",
            deployment("registry.example/web:1.0.0", "")
        ),
    );
    let run = integration(&repo, &reference);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.error_line()
            .contains("helm template rendered no resources for pp-test-apps/charts/off values.yaml"),
        "{run:?}"
    );
    remove(&repo, &off);

    // 5. A chart helm cannot render: exit 3 with helm's own message.
    let broken_chart = write_chart(
        &repo,
        "norender",
        "{}\n",
        &deployment("{{ required \"image is required\" .Values.image }}", ""),
    );
    let run = integration(&repo, &reference);
    assert_eq!(run.code, 3, "{run:?}");
    let err = run.error_line();
    assert!(
        err.contains("helm template failed for pp-test-apps/charts/norender values.yaml")
            && err.contains("image is required"),
        "{err}"
    );
    remove(&repo, &broken_chart);

    // 6. The kyverno trap: a Pod manifest dropped into the policy folder makes kyverno load
    //    zero rules and pass everything. Integration must stop with exit 3 instead.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: example\nspec:\n  containers:\n    - name: a\n      image: a:1\n";
    derive(&reference, &broken, &[("/repos/security-policy/example-pod.yaml", pod)]);
    let run = integration(&repo, &broken);
    assert_eq!(run.code, 3, "{run:?}");
    let err = run.error_line();
    assert!(
        err.contains("kyverno loaded 0 policy rules from /repos/security-policy/ for backend-applications/charts/app values.yaml, backend-applications/charts/app values-prod.yaml"),
        "{err}"
    );
    assert_eq!(err.matches("loaded 0 policy rules").count(), 1, "said once: {err}");
    assert_eq!(
        row(&run, "backend-applications/charts/app", "values.yaml")[3],
        "0",
        "{run:?}"
    );

    // 7. A policy test whose expectation is wrong: `kyverno test` fails, exit 1 naming it.
    let rel = "disallow-host-path/.kyverno-test/kyverno-test.yaml";
    let text = std::fs::read_to_string(repo.path().join("policies/security-policy").join(rel)).unwrap();
    assert!(text.contains("result: pass"), "{text}");
    let wrong = text.replacen("result: pass", "result: fail", 1);
    derive(
        &reference,
        &wrong_tests,
        &[(&format!("/repos/security-policy/{rel}"), &wrong)],
    );
    let run = integration(&repo, &wrong_tests);
    assert_eq!(run.code, 1, "{run:?}");
    let err = run.error_line();
    assert!(
        err.contains("kyverno test /repos/security-policy/:")
            && err.contains("disallow-host-path host-path v1/Pod/default/good-pod: Want fail, got pass"),
        "{err}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("/repos/security-policy/") && l.ends_with("FAIL")),
        "{run:?}"
    );

    // 8. No such image: exit 3, saying how to get one.
    let run = integration(&repo, &format!("{PREFIX}-no-such-image:v0"));
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.error_line()
            .contains("is not in the local Docker engine; build it with `cargo xtask image`"),
        "{run:?}"
    );
}

#[test]
fn dry_run_prints_the_container_run_and_runs_nothing() {
    let repo = TempRepo::new();
    let run = repo.xtask(&["integration", "--dry-run", "--image", "pp-test-never-built:v0"]);
    assert_eq!(run.code, 0, "{run:?}");
    let cmd = run
        .stderr
        .lines()
        .find(|l| l.starts_with("[dry-run] $ docker run"))
        .unwrap_or_else(|| panic!("{run:?}"));
    let target = configured_k8s(&repo);
    for want in [
        "--network none",
        ":/workspace:ro",
        "pp-test-never-built:v0",
        "/repos/security-policy/",
        &target,
        "policies/backend-applications/charts/app values-prod.yaml",
    ] {
        assert!(cmd.contains(want), "want `{want}` in: {cmd}");
    }
    assert!(run.stdout.contains("would check 3 chart/values case(s)"), "{run:?}");
}

/// Runs a stand-in under busybox `sh` (as in the image), with `stdin`.
fn standin(tool: &str, args: &[&str], stdin: &str, dir: &std::path::Path) -> Run {
    use std::io::Write;
    let script = support::image::standin(tool, "1.2.3");
    let path = dir.join(tool);
    std::fs::write(&path, script).unwrap();
    let mut child = std::process::Command::new("busybox")
        .arg("sh")
        .arg(&path)
        .args(args)
        .current_dir(support::repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("busybox runs (apt-get install busybox-static)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// The stand-ins answer in the formats of xtask/tests/standins/TOOLS.md (the parsers rely on them).
#[test]
fn standins_follow_the_reference_formats() {
    let dir = TempDir::new("standins");
    let d = dir.path();
    let v = standin("kyverno", &["version"], "", d);
    let lines: Vec<&str> = v.stdout.lines().collect();
    assert_eq!((v.code, lines.len(), lines[0]), (0, 3, "Version: 1.2.3"), "{v:?}");
    assert!(
        lines[1].starts_with("Time: ") && lines[2].len() == "Git commit ID: ".len() + 40,
        "{v:?}"
    );
    let v = standin("helm", &["version", "--short"], "", d);
    assert!(
        v.stdout.starts_with("v1.2.3+g") && v.stdout.trim().len() == "v1.2.3+g".len() + 7,
        "{v:?}"
    );
    assert_eq!(
        standin("helm", &["version", "--template", "{{.Version}}"], "", d).stdout,
        "v1.2.3",
        "no newline"
    );
    assert!(standin("helm", &["version"], "", d)
        .stdout
        .starts_with("version.BuildInfo{Version:\"v1.2.3\", GitCommit:\""));
    let v = standin("pluto", &["version"], "", d);
    assert!(v.stdout.starts_with("Version:1.2.3 Commit:"), "{v:?}");

    // apply: autogen counts 3 rules per Pod rule; the summary ends with a space; exit 1 on fail.
    let policy = "policies/security-policy/disallow-host-path/disallow-host-path.yaml";
    let pod = |name: &str, vol: &str| {
        format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n    - name: a\n      image: a:1\n  volumes:\n    - name: v\n      {vol}\n")
    };
    let input = pod("ok", "emptyDir: {}") + &pod("bad", "hostPath:\n        path: /etc");
    let r = standin("kyverno", &["apply", policy, "--resource", "-"], &input, d);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("\nApplying 3 policy rule(s) to 2 resource(s)...\npolicy disallow-host-path -> resource default/Pod/bad failed:\n1 - host-path validation error: "), "{r:?}");
    assert!(
        r.stdout.ends_with("\npass: 1, fail: 1, warn: 0, error: 0, skip: 0 \n"),
        "{r:?}"
    );
    // The trap: a folder holding a Pod loads nothing, and passes.
    let r = standin(
        "kyverno",
        &[
            "apply",
            "policies/security-policy/disallow-host-path/.kyverno-test/",
            "--resource",
            "-",
        ],
        &input,
        d,
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "\nApplying 0 policy rule(s) to 2 resource(s)...\n\npass: 0, fail: 0, warn: 0, error: 0, skip: 0 \n"
        ),
        "{r:?}"
    );

    // test: the summary line; exit 0 on the repo's own policies.
    let r = standin(
        "kyverno",
        &["test", "policies/security-policy/disallow-latest-tag"],
        "",
        d,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let summary = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Test Summary: "))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        summary.ends_with(" tests passed and 0 tests failed") && r.stdout.ends_with(&format!("\n{summary}\n\n")),
        "{r:?}"
    );
    // A wrong expectation: the row names it, exit 1, `Error: N tests failed` on stderr.
    let test = "policies/security-policy/disallow-latest-tag/.kyverno-test/kyverno-test.yaml";
    let wrong = std::fs::read_to_string(support::repo_root().join(test))
        .unwrap()
        .replacen("result: fail", "result: pass", 1);
    let copy = d.join("latest/.kyverno-test");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(
        copy.join("kyverno-test.yaml"),
        wrong.replace(
            "../disallow-latest-tag.yaml",
            &support::repo_root()
                .join("policies/security-policy/disallow-latest-tag/disallow-latest-tag.yaml")
                .display()
                .to_string(),
        ),
    )
    .unwrap();
    std::fs::copy(
        support::repo_root().join("policies/security-policy/disallow-latest-tag/.kyverno-test/resources.yaml"),
        copy.join("resources.yaml"),
    )
    .unwrap();
    let r = standin("kyverno", &["test", d.join("latest").to_str().unwrap()], "", d);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("│ Fail   │ Want pass, got fail │") && r.stderr.contains("Error: 1 tests failed"),
        "{r:?}"
    );

    // pluto: exit 3 for a removed API (4 over 3 when no replacement exists), JSON on one line.
    let old = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: old\n";
    let r = standin(
        "pluto",
        &["detect", "-", "-o", "json", "--target-versions", "k8s=v1.31.0"],
        old,
        d,
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    let psp = "apiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata:\n  name: p\n";
    assert_eq!(
        standin("pluto", &["detect", "-", "-o", "json", "-t", "k8s=v1.31.0"], psp, d).code,
        4
    );
    assert_eq!(
        standin("pluto", &["detect", "-", "-o", "json", "-t", "k8s=v1.22.0"], old, d).code,
        2,
        "deprecated, not yet removed"
    );
    let plc =
        "apiVersion: flowcontrol.apiserver.k8s.io/v1beta2\nkind: PriorityLevelConfiguration\nmetadata:\n  name: low\n";
    let r = standin("pluto", &["detect", "-", "-o", "json", "-t", "k8s=v1.29.0"], plc, d);
    assert!(
        r.code == 3
            && r.stdout.contains("\"removed-in\":\"v1.29.0\"")
            && r.stdout.contains("\"replacementAvailable\":true"),
        "{r:?}"
    );
    let r = standin("pluto", &["detect", "-", "-o", "json", "-t", "k8s=v1.28.0"], plc, d);
    assert!(
        r.code == 4 && r.stdout.contains("\"removed\":false,\"replacementAvailable\":false"),
        "deprecated, v1 not served before 1.29: {r:?}"
    );
    let r = standin("pluto", &["detect", "-", "-t", "k8s=1.25"], old, d);
    assert!(r.code == 1 && r.stdout.contains("leading 'v' - got k8s 1.25"), "{r:?}");
}
