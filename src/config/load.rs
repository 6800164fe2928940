//! Loading: the TOML file, then `NODEWATCH__SECTION__KEY` environment variables, then the
//! command line, merged in that order; the result is validated once ([`Config::validate`]).

use std::net::SocketAddr;
use std::path::Path;

use super::{Config, ConfigError, LogFormat, UpstreamConfig, ValidConfig};

/// Values given on the command line; each `Some` wins over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--upstream` URLs in rank order; non-empty replaces the file's list.
    pub upstreams: Vec<String>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the optional file, then `NODEWATCH__*` environment variables, then `overrides`,
    /// and validates the result.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<ValidConfig, ConfigError> {
        Self::load_with_env(path, overrides, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        overrides: Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ValidConfig, ConfigError> {
        let mut builder = ::config::Config::builder();
        if let Some(path) = path {
            if !path.is_file() {
                return Err(ConfigError::new(
                    format!("--config {}", path.display()),
                    "no such file",
                ));
            }
            builder =
                builder.add_source(::config::File::from(path).format(::config::FileFormat::Toml));
        }
        let env: ::config::Map<String, String> = env.into_iter().collect();
        let all = env.clone();
        let env: ::config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("NODEWATCH__"))
            .collect();
        builder = builder.add_source(
            ::config::Environment::with_prefix("NODEWATCH")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let merged = builder
            .build()
            .map_err(|e| ConfigError::loader(one_line(&e.to_string())))?;
        let mut config: Config = merged
            .try_deserialize()
            .map_err(|e| ConfigError::loader(one_line(&e.to_string())))?;
        // After the overrides: `--upstream` flags replace the file's entries, url_env included.
        config.apply(overrides);
        config.resolve_url_env(&all)?;
        config.validate()
    }

    /// Fills each `url_env` upstream's `url` from the environment.
    fn resolve_url_env(&mut self, env: &::config::Map<String, String>) -> Result<(), ConfigError> {
        for (i, upstream) in self.upstreams.iter_mut().enumerate() {
            let Some(name) = &upstream.url_env else {
                continue;
            };
            let key = format!("upstreams[{i}].url_env");
            if !upstream.url.is_empty() {
                return Err(ConfigError::new(key, "set url or url_env, not both"));
            }
            match env.get(name).filter(|v| !v.trim().is_empty()) {
                Some(url) => upstream.url = url.trim().to_owned(),
                None => {
                    let why = format!("environment variable {name} is not set (or empty)");
                    return Err(ConfigError::new(key, why));
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, o: Overrides) {
        if !o.upstreams.is_empty() {
            self.upstreams = o
                .upstreams
                .into_iter()
                .map(UpstreamConfig::from_url)
                .collect();
        }
        if let Some(listen) = o.listen {
            self.listen = listen;
        }
        if let Some(admin) = o.admin_listen {
            self.admin_listen = admin;
        }
        if let Some(format) = o.log_format {
            self.log_format = format;
        }
    }
}

/// A loader error on one line, without the source excerpt a TOML parse error quotes (`3 |
/// url = "…/KEY"` and its `^^^` marker): the excerpt spans lines and can hold a secret.
/// String values quoted in the message (`invalid type: string "…"`) are cut too: a header
/// value or keyed URL written under the wrong key would otherwise be printed.
fn one_line(message: &str) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(start) = rest.find("string \"") {
        let (head, quoted) = rest.split_at(start + "string \"".len());
        out.push_str(head);
        out.push_str("…\"");
        // The value is Debug-escaped: skip to the first quote not preceded by a backslash.
        let mut escaped = false;
        let end = quoted.char_indices().find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        rest = end.map_or("", |(i, _)| &quoted[i + 1..]);
    }
    out.push_str(rest);
    out
}
