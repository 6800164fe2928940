//! Property-based fuzzing of configuration loading: any file text and any `NODEWATCH__*`
//! environment either loads into a configuration that validates or is refused with a
//! one-line error; never a panic.

use std::io::Write as _;

use proptest::prelude::*;

use super::*;
use crate::fuzzing::check;

/// Keys and values that real files use, mixed with wrong ones.
fn toml_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "listen",
            "admin_listen",
            "log_format",
            "chain_id",
            "admin_reload",
            "bogus",
            "[probe]",
            "[health]",
            "[proxy]",
            "[breaker]",
            "[retry]",
            "[methods]",
            "[filters]",
            "[[upstreams]]",
            "interval",
            "timeout",
            "fail_threshold",
            "recover_threshold",
            "max_lag",
            "request_timeout",
            "attempt_timeout",
            "body_limit",
            "max_batch",
            "ratio",
            "min_per_second",
            "window",
            "allow",
            "deny",
            "url",
            "name",
            "max_concurrency",
            "max_rps",
            "ca_file",
            "headers",
        ][..],
    );
    let value = prop_oneof![
        Just("\"http://127.0.0.1:8546\"".to_string()),
        Just("\"https://user:pw@h:1/path?k=v\"".to_string()),
        Just("\"ftp://x\"".to_string()),
        Just("\"127.0.0.1:0\"".to_string()),
        Just("\"2s\"".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"json\"".to_string()),
        Just("[\"eth_*\", \"[\"]".to_string()),
        Just("{ Authorization = \"Bearer x\\n\" }".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        ".{0,12}".prop_map(|s| format!("{s:?}")),
        ".{0,8}",
    ];
    // Secrets are written where they belong (an upstream's url and headers), well-formed
    // or with a syntax error on their line.
    let secret = prop_oneof![
        Just("url = \"https://user:pw@h:1/v3/KEY?k=KEY\"".to_string()),
        Just("url = \"https://h/v3/KEY".to_string()),
        Just("url = https://h/v3/KEY".to_string()),
        Just("headers = { Authorization = \"Bearer KEY\" }".to_string()),
        Just("headers = { Authorization = \"Bearer KEY }".to_string()),
    ];
    let line = (key, value).prop_map(|(k, v)| {
        if k.starts_with('[') {
            k.to_string()
        } else {
            format!("{k} = {v}")
        }
    });
    prop_oneof![4 => line, 1 => secret]
}

fn env_var() -> impl Strategy<Value = (String, String)> {
    let key = prop::sample::select(
        &[
            "NODEWATCH__LISTEN",
            "NODEWATCH__CHAIN_ID",
            "NODEWATCH__PROBE__INTERVAL",
            "NODEWATCH__HEALTH__MAX_LAG",
            "NODEWATCH__PROXY__MAX_BATCH",
            "NODEWATCH__PROXY__BODY_LIMIT",
            "NODEWATCH__RETRY__RATIO",
            "NODEWATCH__UPSTREAMS",
            "NODEWATCH__NOPE",
            "NODEWATCH__",
            "NODEWATCH____",
        ][..],
    );
    (key, ".{0,12}").prop_map(|(k, v)| (k.to_string(), v))
}

#[test]
fn fuzz_config_files_and_environment_load_or_refuse() {
    let case = (
        prop::collection::vec(toml_line(), 0..12),
        prop::collection::vec(env_var(), 0..3),
        any::<bool>(),
    );
    check("config/load", case, |(lines, env, with_upstream)| {
        let mut text = lines.join("\n");
        if with_upstream {
            text = format!("[[upstreams]]\nurl = \"http://127.0.0.1:8546\"\n{text}");
        }
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        match Config::load_with_env(Some(file.path()), Overrides::default(), env) {
            Ok(config) => {
                prop_assert!(config.validate().is_ok());
                prop_assert!(!config.upstreams.is_empty());
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains('\n'), "one line: {}", message);
                // The temporary file's random name may spell KEY itself: it is not a secret.
                let name = file.path().file_name().unwrap().to_string_lossy();
                let without_name = message.replace(name.as_ref(), "");
                prop_assert!(!without_name.contains("KEY"), "secret in {}", message);
            }
        }
        Ok(())
    });
}
