//! deploy/ is checked, not just shipped: the Prometheus rules pass `promtool check` and their
//! unit tests, the Grafana dashboard's queries parse, every metric either names exists in a
//! live nodewatch's `/metrics`, the example configurations load, the manifests hold what the
//! README promises, and the Airflow DAG imports against the real apache-airflow.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use serde_yaml::Value as Yaml;
use support::anvil::Anvil;
use support::fault::{Fault, FaultServer};
use support::nodewatch::Nodewatch;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `promtool` (`$NODEWATCH_PROMTOOL`, else on PATH); None (skip notice) outside CI.
fn require_promtool() -> Option<PathBuf> {
    let found = std::env::var_os("NODEWATCH_PROMTOOL")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("promtool"))
                .find(|p| p.is_file())
        })
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            !support::tools::is_ci(),
            "promtool not found (make tools installs Debian's prometheus); CI=true, so this is \
             a failure"
        );
        eprintln!("skipping: promtool not installed, run make tools");
    }
    found
}

fn promtool(bin: &Path, args: &[&str]) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(repo("deploy/prometheus"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(bin) = require_promtool() else {
        return;
    };
    promtool(&bin, &["check", "rules", "nodewatch.rules.yml"]);
    promtool(&bin, &["test", "rules", "nodewatch.rules.test.yml"]);
    promtool(&bin, &["check", "config", "prometheus.yml"]);
}

/// Every PromQL query of the dashboard, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<String> {
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/nodewatch.json")).unwrap();
    let mut queries = Vec::new();
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            queries.push(
                expr.replace("$__rate_interval", "5m")
                    .replace("$job", ".*")
                    .replace("$instance", ".*"),
            );
        }
    }
    queries
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    let Some(bin) = require_promtool() else {
        return;
    };
    // promtool parses PromQL when it checks rules: one recording rule per query.
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({"record": format!("dashboard:query_{i}"), "expr": q}))
        .collect();
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    let doc = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(file.path(), serde_yaml::to_string(&doc).unwrap()).unwrap();
    promtool(&bin, &["check", "rules", file.path().to_str().unwrap()]);
}

/// Metric names (`nodewatch_…`) that appear in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("nodewatch_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let before = rest[..i].chars().last();
        // Skip `…nodewatch_…` inside a longer word (e.g. a DAG id).
        if end > "nodewatch_".len()
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end.max(1)..];
    }
    names
}

#[test]
fn metric_name_scanner_finds_names_only() {
    let names = metric_names(
        "sum(rate(nodewatch_requests_total{x=\"y\"}[5m])) / nodewatch:ratio + \
         histogram_quantile(0.9, nodewatch_request_duration_seconds_bucket) nodewatch_ \
         ethereum_export_through_nodewatch_x",
    );
    let want: BTreeSet<String> = [
        "nodewatch_requests_total",
        "nodewatch_request_duration_seconds_bucket",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_rules_and_the_dashboard_exists_in_metrics() {
    let mut wanted = metric_names(&read("deploy/prometheus/nodewatch.rules.yml"));
    let rules_only = wanted.len();
    wanted.extend(metric_names(&read("deploy/grafana/nodewatch.json")));
    assert!(rules_only >= 6 && wanted.len() >= 12, "{wanted:?}");
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    // A live nodewatch that has done everything once: rank 1 answers probes but garbles
    // batches (so a batch fails over), rank 2 is a real node billed in compute units with a
    // month's budget shared through a Redis that is not there (the local fallback); answers
    // are verified.
    let node = Anvil::spawn(&anvil).await;
    let flaky = FaultServer::start(&node.url(), Fault::BatchGarbage).await;
    let mut config = support::nodewatch::test_config(&[flaky.url(), node.url()]);
    config.redis.url = Some(format!("redis://127.0.0.1:{}/0", support::free_port()));
    config.upstreams[1].budget_key = Some("provider-key".into());
    config.upstreams[1].credits = Some(nodewatch::config::CreditsConfig {
        per_month: Some(1_000_000),
        ..Default::default()
    });
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId"}
    ]);
    let (status, _) = support::rpc::post(&nw.url, &batch.to_string()).await;
    assert_eq!(status, 200);
    support::rpc::call(&nw.url, "eth_blockNumber", json!([])).await;
    // A verified block, and block receipts verified against a header fetched for them.
    support::rpc::call(&nw.url, "eth_getBlockByNumber", json!(["0x0", false])).await;
    support::rpc::call(&nw.url, "eth_getBlockReceipts", json!(["0x0"])).await;
    // Until what was just done shows in the metrics (the assertion below says what is not).
    let all_there = || {
        let text = String::from_utf8(nw.handle.metrics.encode()).unwrap();
        let exposed: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        wanted.iter().all(|name| exposed.contains(name.as_str()))
    };
    support::poll::poll_until(Duration::from_secs(5), async || all_there().then_some(())).await;

    let text = String::from_utf8(nw.handle.metrics.encode()).unwrap();
    let exposed: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| !exposed.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/ uses metrics nodewatch does not export: {missing:?}\nexported: {exposed:?}"
    );
    assert!(!exposed.contains("nodewatch_no_such_metric"));
    nw.stop().await;
}

#[test]
fn example_configurations_load() {
    use nodewatch::config::{Config, Overrides};
    // The compose file's configuration, as the container reads it.
    let compose = repo("deploy/compose/nodewatch.toml");
    let config = Config::load_with_env(Some(&compose), Overrides::default(), Vec::new())
        .unwrap_or_else(|e| panic!("{}: {e}", compose.display()));
    assert_eq!(
        config.upstream_names()[0],
        "primary",
        "the rules' primary alert"
    );
    // The Kubernetes ConfigMap's, with the sidecar's --upstream flags.
    let configmap = k8s_docs()
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap")
        .unwrap();
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        file.path(),
        configmap["data"]["nodewatch.toml"].as_str().unwrap(),
    )
    .unwrap();
    let overrides = Overrides {
        upstreams: vec![
            "http://geth:8545".into(),
            "https://provider.example/KEY".into(),
        ],
        ..Overrides::default()
    };
    let config = Config::load_with_env(Some(file.path()), overrides, Vec::new()).unwrap();
    assert_eq!(
        config.listen.to_string(),
        "127.0.0.1:8545",
        "JSON-RPC stays in the pod"
    );
}

/// Every Kubernetes document in deploy/: the manifests, and the Airflow task pods' template.
fn k8s_docs() -> Vec<Yaml> {
    let mut docs = Vec::new();
    for file in [
        "kubernetes/configmap.yaml",
        "kubernetes/secret.yaml",
        "kubernetes/etl-worker.yaml",
        "kubernetes/podmonitor.yaml",
        "airflow/pod_template.yaml",
    ] {
        let text = read(&format!("deploy/{file}"));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            docs.push(Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}")));
        }
    }
    docs
}

use serde::Deserialize as _;

#[test]
fn kubernetes_sidecar_has_probes_resources_and_secret_keys() {
    let docs = k8s_docs();
    let kustomization: Yaml =
        serde_yaml::from_str(&read("deploy/kubernetes/kustomization.yaml")).unwrap();
    for resource in kustomization["resources"].as_sequence().unwrap() {
        assert!(repo(&format!("deploy/kubernetes/{}", resource.as_str().unwrap())).is_file());
    }
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "9545");
    let sidecar = &pod["spec"]["initContainers"][0];
    assert_eq!(sidecar["name"], "nodewatch");
    assert_eq!(sidecar["restartPolicy"], "Always", "native sidecar");
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args = args_of(sidecar);
    assert!(args.contains(&"--upstream=$(PROVIDER_URL)"), "{args:?}");
    let env = sidecar["env"].as_sequence().unwrap();
    let provider = env.iter().find(|e| e["name"] == "PROVIDER_URL").unwrap();
    assert_eq!(
        provider["valueFrom"]["secretKeyRef"]["name"],
        "nodewatch-provider"
    );
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    assert!(secret["stringData"]["PROVIDER_URL"].is_string());
    let containers = pod["spec"]["containers"].as_sequence().unwrap();
    for c in containers.iter().chain([sidecar]) {
        for kind in ["requests", "limits"] {
            assert!(
                c["resources"][kind]["cpu"].is_string(),
                "{}: {kind}",
                c["name"].as_str().unwrap()
            );
            assert!(c["resources"][kind]["memory"].is_string());
        }
    }
    let worker_args = format!("{:?}", containers[0]["args"]);
    assert!(
        worker_args.contains("--provider-uri=http://127.0.0.1:8545"),
        "{worker_args}"
    );
}

/// A container's environment as Kubernetes gives it: `value`s with `$(NAME)` expanded from
/// the variables listed before them (later or unknown names stay as they are), and
/// `secretKeyRef` / `configMapKeyRef` read from `secrets` / `configmaps` (a reference to
/// anything else fails the test).
fn container_env(
    container: &Yaml,
    secrets: &[(&str, &str, &str)],
    configmaps: &[&Yaml],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_sequence().into_iter().flatten() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = if let Some(value) = var["value"].as_str() {
            let mut value = value.to_owned();
            for (earlier, earlier_value) in &env {
                value = value.replace(&format!("$({earlier})"), earlier_value);
            }
            value
        } else if var["valueFrom"]["secretKeyRef"].is_mapping() {
            let r = &var["valueFrom"]["secretKeyRef"];
            let (secret, key) = (r["name"].as_str().unwrap(), r["key"].as_str().unwrap());
            secrets
                .iter()
                .find(|(s, k, _)| *s == secret && *k == key)
                .unwrap_or_else(|| panic!("{name}: unexpected secret {secret}/{key}"))
                .2
                .to_owned()
        } else if var["valueFrom"]["configMapKeyRef"].is_mapping() {
            let r = &var["valueFrom"]["configMapKeyRef"];
            let map = configmaps
                .iter()
                .find(|c| c["metadata"]["name"] == r["name"])
                .unwrap_or_else(|| panic!("{name}: no ConfigMap {:?}", r["name"]));
            map["data"][r["key"].as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            panic!("{name}: neither a value nor a secret or ConfigMap key");
        };
        env.push((name, value));
    }
    env
}

#[test]
fn airflow_pod_template_runs_nodewatch_as_a_native_sidecar_wired_to_redis() {
    use nodewatch::config::{Config, Overrides};
    let docs = k8s_docs();
    let pod = docs
        .iter()
        .find(|d| d["kind"] == "Pod")
        .expect("the pod template");
    let spec = &pod["spec"];
    // What Airflow requires of a pod_template_file: a metadata.name, and the task container
    // first, named `base`, with an image. A task pod runs once.
    assert!(pod["metadata"]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    let containers = spec["containers"].as_sequence().unwrap();
    assert_eq!(containers[0]["name"], "base", "Airflow's task container");
    assert!(containers[0]["image"]
        .as_str()
        .is_some_and(|i| !i.is_empty()));
    assert_eq!(spec["restartPolicy"], "Never");

    // nodewatch is a native sidecar, not a plain container (which would outlive `base`).
    let sidecar = spec["initContainers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "nodewatch")
        .expect("nodewatch in initContainers");
    assert_eq!(sidecar["restartPolicy"], "Always", "native sidecar");
    assert!(containers.iter().all(|c| c["name"] != "nodewatch"));
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        sidecar["image"], deployment["spec"]["template"]["spec"]["initContainers"][0]["image"],
        "the same image as etl-worker.yaml's sidecar"
    );
    // Probes on the admin port: the task starts once nodewatch is ready (/readyz).
    let admin = sidecar["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "admin")
        .unwrap();
    assert_eq!(admin["containerPort"], 9545);
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ] {
        assert_eq!(sidecar[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(sidecar[probe]["httpGet"]["port"], "admin", "{probe}");
    }
    // Resources on every container, and nodewatch as non-root with a read-only root.
    for c in containers.iter().chain([sidecar]) {
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    c["resources"][kind][resource].is_string(),
                    "{:?}: {kind}.{resource}",
                    c["name"]
                );
            }
        }
    }
    let security = &sidecar["securityContext"];
    assert!(
        security["runAsUser"].as_u64().is_some_and(|u| u != 0)
            && spec["securityContext"]["runAsNonRoot"] == true,
        "{security:?}"
    );
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);

    // Its configuration: the file the ConfigMap volume puts where --config points.
    let args = args_of(sidecar);
    assert!(
        !args.iter().any(|a| a.starts_with("--upstream")),
        "--upstream would replace the ConfigMap's upstreams and their budget_key: {args:?}"
    );
    let config_path = args
        .iter()
        .find_map(|a| a.strip_prefix("--config="))
        .expect("--config");
    let (dir, file_name) = config_path.rsplit_once('/').unwrap();
    let mount = sidecar["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let item = volume["configMap"]["items"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|i| i["path"] == file_name)
        .unwrap();
    let configmap = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == volume["configMap"]["name"])
        .expect("the ConfigMap of deploy/kubernetes");
    let toml = configmap["data"][item["key"].as_str().unwrap()]
        .as_str()
        .unwrap();
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), toml).unwrap();

    // The environment the sidecar starts with: the provider's URL from the Secret of
    // deploy/kubernetes, the Redis password from the Airflow chart's secret.
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let provider_secret = secret["metadata"]["name"].as_str().unwrap();
    assert!(secret["stringData"]["PROVIDER_URL"].is_string());
    const PROVIDER_URL: &str = "https://provider.example/v3/TEST-KEY";
    const REDIS_PASSWORD: &str = "Test1redis2password";
    let env = container_env(
        sidecar,
        &[
            (provider_secret, "PROVIDER_URL", PROVIDER_URL),
            ("airflow-redis-password", "password", REDIS_PASSWORD),
        ],
        &[configmap],
    );
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not set"))
    };
    // NODEWATCH__REDIS__URL: the chart's Redis service, the password a secretKeyRef'd
    // variable listed before it (else Kubernetes leaves `$(...)` as it is).
    let raw = sidecar["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "NODEWATCH__REDIS__URL")
        .expect("NODEWATCH__REDIS__URL")["value"]
        .as_str()
        .unwrap();
    let password_var = raw
        .split_once("$(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(name, _)| name)
        .unwrap_or_else(|| panic!("the password is not a $(VAR) in {raw}"));
    let password_ref = &sidecar["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == password_var)
        .unwrap()["valueFrom"]["secretKeyRef"];
    assert!(
        password_ref["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-redis-password"))
            && password_ref["key"] == "password",
        "the Airflow chart's <release>-redis-password secret: {password_ref:?}"
    );
    let redis = url::Url::parse(value("NODEWATCH__REDIS__URL")).unwrap();
    assert_eq!(redis.scheme(), "redis");
    assert_eq!(redis.password(), Some(REDIS_PASSWORD), "{redis}");
    assert!(
        redis.host_str().is_some_and(|h| h.ends_with("-redis")),
        "the chart's <release>-redis service: {redis}"
    );
    assert_eq!(redis.port(), Some(6379));

    // nodewatch's own loader, with that environment: the Secret's URL lands on an upstream
    // that has a budget_key (and a max_rps to share), through its url_env, and the Redis URL
    // on [redis].
    let config = Config::load_with_env(Some(file.path()), Overrides::default(), env.clone())
        .unwrap_or_else(|e| panic!("the sidecar's configuration does not load: {e}"));
    let paid = config
        .upstreams
        .iter()
        .find(|u| u.url == PROVIDER_URL)
        .expect("the Secret's provider URL reaches an upstream");
    assert!(
        paid.budget_key.as_deref().is_some_and(|k| !k.is_empty()) && paid.max_rps.is_some(),
        "{paid:?}"
    );
    assert_eq!(
        config.redis.url.as_deref(),
        Some(value("NODEWATCH__REDIS__URL"))
    );
    assert_eq!(
        config.upstreams[0].url,
        configmap["data"]["PRIMARY_URL"].as_str().unwrap(),
        "rank 1 is the cluster's node, as in etl-worker.yaml"
    );
    assert_eq!(config.listen.to_string(), "127.0.0.1:8545");
    // Without the pod's environment it does not start: the provider's URL (and key) exists
    // only in the Secret, and no sidecar runs without its backup by mistake.
    assert!(Config::load_with_env(Some(file.path()), Overrides::default(), Vec::new()).is_err());

    // The task reaches its own nodewatch.
    let base_env = container_env(
        &containers[0],
        &[
            ("airflow-fernet-key", "fernet-key", "k"),
            ("airflow-airflow-metadata", "connection", "postgresql://db"),
        ],
        &[],
    );
    let provider_uri = base_env
        .iter()
        .find(|(n, _)| n == "ETHEREUM_PROVIDER_URI")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        provider_uri,
        Some(format!("http://{}", config.listen).as_str())
    );
}

#[test]
fn compose_wires_nodewatch_etl_prometheus_and_grafana() {
    let compose: Yaml = serde_yaml::from_str(&read("deploy/docker-compose.yml")).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for name in ["nodewatch", "etl", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "service {name}");
    }
    assert_eq!(
        compose["services"]["etl"]["depends_on"]["nodewatch"]["condition"],
        "service_healthy"
    );
    for (name, service) in services {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{name:?} publishes {port:?} beyond loopback"
            );
        }
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if let Some(rel) = source.strip_prefix("./") {
                assert!(
                    repo(&format!("deploy/{rel}")).exists(),
                    "{name:?}: {source} missing"
                );
            }
        }
        if let Some(dockerfile) = service["build"]["dockerfile"].as_str() {
            assert!(repo(dockerfile).is_file(), "{dockerfile}");
        }
    }
}

#[test]
fn dockerfile_runs_as_non_root_with_a_healthcheck() {
    let dockerfile = read("Dockerfile");
    for must in [
        "FROM rust:${RUST_VERSION}-slim",
        "cargo build --release --locked --bins",
        "USER 65532:65532",
        "EXPOSE 8545 9545",
        "CMD [\"/usr/local/bin/nodewatch\", \"healthcheck\"]",
        "NODEWATCH__LISTEN=0.0.0.0:8545",
    ] {
        assert!(dockerfile.contains(must), "Dockerfile lacks {must:?}");
    }
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("rust-version = \"1.95\"")
            && dockerfile.contains("ARG RUST_VERSION=1.95"),
        "the image builds with the pinned Rust"
    );
}

#[test]
fn airflow_dag_imports_against_apache_airflow() {
    let dag = repo("deploy/airflow/dags/ethereum_export_dag.py");
    let python = std::env::var_os("NODEWATCH_AIRFLOW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo(".tools/airflow-venv/bin/python"));
    if !python.is_file() {
        // `make tools` installs apache-airflow (and fails under CI=true when it cannot).
        assert!(
            !support::tools::is_ci(),
            "apache-airflow is not installed ({}); CI=true, so the DAG test is a failure, not a \
             skip (run `make tools`)",
            python.display()
        );
        // Outside CI: compile the DAG at least, and say so.
        eprintln!(
            "apache-airflow is not installed ({}): checking the DAG with py_compile only",
            python.display()
        );
        let out = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&dag)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let script = r#"
import sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
assert not bag.import_errors, bag.import_errors
dag = bag.dags["ethereum_export_through_nodewatch"]
print("TASKS=" + ",".join(t.task_id for t in dag.topological_sort()))
import ethereum_export_dag as m
print("PROVIDER=" + m.PROVIDER_URI)
"#;
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(dag.parent().unwrap())
        .env("AIRFLOW_HOME", home.path())
        // The DAG is written on the provider package: its source tree, as installed.
        .env(
            "PYTHONPATH",
            format!(
                "{}:{}",
                dag.parent().unwrap().display(),
                repo("providers/airflow-provider-nodewatch").display()
            ),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("ETHEREUM_PROVIDER_URI")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "DAG import failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    assert_eq!(
        value("TASKS="),
        "check_nodewatch,get_block_range_for_date,export_blocks_and_transactions,\
         export_receipts_and_logs,extract_token_transfers,export_traces,extract_contracts,\
         extract_tokens"
    );
    assert_eq!(
        value("PROVIDER="),
        "http://127.0.0.1:8545",
        "provider is nodewatch"
    );
}

/// A container's `args`, as strings.
fn args_of(container: &Yaml) -> Vec<&str> {
    container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}
