//! Unit tests of loading and validation: the example file at its defaults, the merge
//! order, and every rejected value named by its key.

use std::io::Write as _;

use std::path::Path;

use super::*;

fn load(
    toml: &str,
    env: &[(&str, &str)],
    overrides: Overrides,
) -> Result<ValidConfig, ConfigError> {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(toml.as_bytes()).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load_with_env(Some(file.path()), overrides, env)
}

const ONE: &str = "[[upstreams]]\nurl = \"http://127.0.0.1:8546\"\n";

#[test]
fn example_file_loads_with_every_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nodewatch.toml");
    let config = Config::load_with_env(Some(&path), Overrides::default(), []).unwrap();
    let defaults = Config::default();
    assert_eq!(config.listen, defaults.listen);
    assert_eq!(config.admin_listen, defaults.admin_listen);
    assert_eq!(config.log_format, defaults.log_format);
    assert_eq!(config.chain_id, None);
    assert_eq!(config.probe.interval, DEFAULT_PROBE_INTERVAL);
    assert_eq!(config.probe.timeout, DEFAULT_PROBE_TIMEOUT);
    assert_eq!(config.health, HealthConfig::default());
    assert_eq!(config.proxy.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    assert_eq!(config.proxy.attempt_timeout, DEFAULT_ATTEMPT_TIMEOUT);
    assert_eq!(
        config.proxy.light_attempt_timeout,
        DEFAULT_LIGHT_ATTEMPT_TIMEOUT
    );
    assert_eq!(
        config.proxy.heavy_attempt_timeout,
        DEFAULT_HEAVY_ATTEMPT_TIMEOUT
    );
    assert_eq!(
        config.proxy.attempt_timeout_per_item,
        DEFAULT_ATTEMPT_TIMEOUT_PER_ITEM
    );
    assert_eq!(config.proxy.unsupported_ttl, DEFAULT_UNSUPPORTED_TTL);
    assert_eq!(config.hedge, HedgeConfig::default());
    assert_eq!(config.fork, ForkConfig::default());
    assert_eq!(config.proxy.body_limit, DEFAULT_BODY_LIMIT);
    assert_eq!(config.proxy.response_limit, DEFAULT_RESPONSE_LIMIT);
    assert_eq!(config.proxy.max_batch, DEFAULT_MAX_BATCH);
    assert_eq!(config.proxy.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    assert_eq!(
        config.proxy.header_read_timeout,
        DEFAULT_HEADER_READ_TIMEOUT
    );
    assert_eq!(config.redis, RedisConfig::default());
    assert_eq!(config.upstream_names(), ["local", "provider"]);
}

#[test]
fn defaults_match_the_issue() {
    assert_eq!(DEFAULT_PROBE_INTERVAL, Duration::from_secs(2));
    assert_eq!(DEFAULT_PROBE_TIMEOUT, Duration::from_secs(1));
    assert_eq!(
        (
            DEFAULT_FAIL_THRESHOLD,
            DEFAULT_RECOVER_THRESHOLD,
            DEFAULT_MAX_LAG
        ),
        (2, 2, 5)
    );
    // No shorter than ethereum-etl's own HTTP timeout (issue 13: a proxy that gives up
    // before its client makes the export less reliable than no proxy).
    assert_eq!(DEFAULT_REQUEST_TIMEOUT, Duration::from_secs(60));
    assert_eq!(DEFAULT_BODY_LIMIT, 16 << 20);
    assert_eq!(DEFAULT_MAX_BATCH, 1000);
}

#[test]
fn environment_overrides_file_and_cli_overrides_both() {
    let toml = format!("listen = \"127.0.0.1:1000\"\n[health]\nmax_lag = 7\n{ONE}");
    let env = [
        ("NODEWATCH__HEALTH__MAX_LAG", "9"),
        ("NODEWATCH__PROBE__INTERVAL", "500ms"),
        ("NODEWATCH__LISTEN", "127.0.0.1:2000"),
    ];
    let config = load(&toml, &env, Overrides::default()).unwrap();
    assert_eq!(config.health.max_lag, 9);
    assert_eq!(config.probe.interval, Duration::from_millis(500));
    assert_eq!(config.listen.port(), 2000);

    let cli = Overrides {
        listen: Some("127.0.0.1:3000".parse().unwrap()),
        upstreams: vec![
            "https://a.example/v3/KEY".into(),
            "http://127.0.0.1:9".into(),
        ],
        ..Overrides::default()
    };
    let config = load(&toml, &env, cli).unwrap();
    assert_eq!(config.listen.port(), 3000);
    assert_eq!(config.upstream_names(), ["a.example:443", "127.0.0.1:9"]);
}

#[test]
fn upstream_headers_and_names_load() {
    let toml = "[[upstreams]]\nname = \"paid\"\nurl = \"https://p.example/v3/k\"\nheaders = { Authorization = \"Bearer s3cret\" }\n";
    let config = load(toml, &[], Overrides::default()).unwrap();
    assert_eq!(config.upstreams[0].name.as_deref(), Some("paid"));
    assert_eq!(
        config.upstreams[0].headers.values().next().unwrap(),
        "Bearer s3cret"
    );
}

fn rejected(toml: &str, env: &[(&str, &str)]) -> String {
    load(toml, env, Overrides::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_keys_are_rejected_naming_the_key() {
    let e = rejected(&format!("lisen = \"127.0.0.1:1\"\n{ONE}"), &[]);
    assert!(e.contains("lisen"), "{e}");
    let e = rejected(&format!("[health]\nmax_lagg = 1\n{ONE}"), &[]);
    assert!(e.contains("max_lagg"), "{e}");
    let e = rejected(&format!("{ONE}token = \"x\"\n"), &[]);
    assert!(e.contains("token"), "{e}");
    let e = rejected(ONE, &[("NODEWATCH__PROBE__INTERVALL", "1s")]);
    assert!(e.contains("intervall"), "{e}");
}

#[test]
fn zero_upstreams_are_rejected() {
    let e = rejected("", &[]);
    assert!(e.contains("upstreams: at least one upstream"), "{e}");
}

#[test]
fn bad_urls_are_rejected_without_leaking_the_path() {
    let e = rejected("[[upstreams]]\nurl = \"ftp://h.example/secretkey\"\n", &[]);
    assert!(
        e.contains("upstreams[0].url") && e.contains("http or https"),
        "{e}"
    );
    assert!(!e.contains("secretkey"), "{e}");
    let e = rejected("[[upstreams]]\nurl = \"not a url\"\n", &[]);
    assert!(e.contains("upstreams[0].url: not a URL"), "{e}");
}

#[test]
fn duplicate_names_are_rejected() {
    let toml = "[[upstreams]]\nurl = \"http://127.0.0.1:1/a\"\n[[upstreams]]\nurl = \"http://127.0.0.1:1/b\"\n";
    let e = rejected(toml, &[]);
    assert!(
        e.contains("upstreams[1].name: duplicate upstream name \"127.0.0.1:1\""),
        "{e}"
    );
}

#[test]
fn zero_thresholds_and_durations_are_rejected() {
    for (section, key) in [
        ("health", "fail_threshold"),
        ("health", "recover_threshold"),
        ("proxy", "max_batch"),
        ("proxy", "body_limit"),
    ] {
        let e = rejected(&format!("[{section}]\n{key} = 0\n{ONE}"), &[]);
        assert!(
            e.contains(&format!("{section}.{key}: must be at least 1 (got 0)")),
            "{e}"
        );
    }
    let e = rejected(&format!("[probe]\ninterval = \"0s\"\n{ONE}"), &[]);
    assert!(e.contains("probe.interval: must be longer than 0s"), "{e}");
}

#[test]
fn bad_values_are_rejected_not_panicked() {
    let e = rejected(&format!("[health]\nmax_lag = -1\n{ONE}"), &[]);
    assert!(e.contains("max_lag"), "{e}");
    let e = rejected(&format!("[probe]\ntimeout = \"soon\"\n{ONE}"), &[]);
    assert!(e.contains("timeout"), "{e}");
    let e = rejected(&format!("log_format = \"xml\"\n{ONE}"), &[]);
    assert!(e.contains("xml"), "{e}");
    let e = rejected("this is = not toml [", &[]);
    assert!(e.starts_with("configuration:"), "{e}");
}

#[test]
fn missing_file_is_named() {
    let e = Config::load_with_env(
        Some(Path::new("/nonexistent/nw.toml")),
        Overrides::default(),
        [],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/nw.toml"), "{e}");
}

#[test]
fn redaction_keeps_host_and_port_only() {
    assert_eq!(
        redact_url("https://user:pw@h.example/v3/KEY?x=1"),
        "https://h.example:443/…"
    );
    assert_eq!(redact_url("garbage"), "<unparseable URL>");
}

#[test]
fn threads_zero_means_one_per_cpu_and_too_many_are_rejected() {
    let config = load(
        &format!("[proxy]\nthreads = 0\n{ONE}"),
        &[],
        Overrides::default(),
    )
    .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(config.proxy.thread_count(), cpus);
    let config = load(
        ONE,
        &[("NODEWATCH__PROXY__THREADS", "3")],
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.proxy.thread_count(), 3);
    let e = rejected(&format!("[proxy]\nthreads = 257\n{ONE}"), &[]);
    assert!(e.contains("proxy.threads: must be at most 256"), "{e}");
}

#[test]
fn budgets_and_redis_load_and_their_mistakes_are_named() {
    let paid = "[[upstreams]]\nname = \"p\"\nurl = \"http://127.0.0.1:8546\"\nbudget_key = \"k-1\"\n\
                credits = { table = \"alchemy\", per_month = 1000, costs = { eth_getLogs = 75 } }\n";
    let config = load(
        paid,
        &[("NODEWATCH__REDIS__URL", "redis://127.0.0.1:6379/0")],
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.redis.url(), Some("redis://127.0.0.1:6379/0"));
    let credits = config.upstreams[0].credits.as_ref().unwrap();
    assert_eq!(credits.costs().of("eth_getLogs"), 75);
    assert_eq!(credits.per_month, Some(1000));
    let both = format!("{ONE}max_rps = 10\ncredits = {{ per_second = 100 }}\n");
    assert!(rejected(&both, &[]).contains("upstreams[0].max_rps"));
    let key = format!("{ONE}budget_key = \"a key\"\n");
    assert!(rejected(&key, &[]).contains("upstreams[0].budget_key"));
    let tls = [("NODEWATCH__REDIS__URL", "rediss://h:1")];
    assert!(rejected(ONE, &tls).contains("redis.url"));
}

#[test]
fn url_env_reads_an_upstreams_url_from_the_environment() {
    let toml = "[[upstreams]]\nname = \"p\"\nurl_env = \"PROVIDER_URL\"\nbudget_key = \"k\"\n";
    let env = [("PROVIDER_URL", "https://eth.example/v3/secret")];
    let config = load(toml, &env, Overrides::default()).unwrap();
    assert_eq!(config.upstreams[0].url, "https://eth.example/v3/secret");
    assert_eq!(config.upstreams[0].budget_key.as_deref(), Some("k"));
    let unset = rejected(toml, &[]);
    assert!(
        unset.contains("upstreams[0].url_env") && unset.contains("PROVIDER_URL"),
        "{unset}"
    );
    let both = format!("{ONE}url_env = \"PROVIDER_URL\"\n");
    assert!(rejected(&both, &env).contains("not both"));
}
