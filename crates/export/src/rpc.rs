//! A JSON-RPC batch client over HTTP(S) on `nodewatch-http`, with one or more providers
//! (`-p a,b`). A batch answer is checked before use: it must be an array with exactly one
//! response per request id, and no result may be null. Retriable failures (transport
//! errors, HTTP errors, garbled or short answers, null results, JSON-RPC errors in
//! ethereum-etl's retriable code ranges) and wrong answers (a failed verification) are
//! retried: at once on the next provider of the list, and with exponential back-off once
//! every provider has failed in turn; each provider gets `max_attempts` attempts. When they
//! run out the error names the block or transaction concerned (and, for a wrong answer, the
//! check that failed), so a gap is never silent.

mod node;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use nodewatch_http::ClientOptions;

pub use super::batch::{Call, Failure};
use super::error::{ExportError, Result};
use super::pyvalue::PyValue;
use super::verified::Verifier;
use node::NodeInner;
pub use node::{parse_raw, Node};

/// How often and how patiently a failed batch is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per provider, including the first one (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
        }
    }
}

/// The longest back-off between two rounds of attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// The JSON-RPC providers of an export, in order of preference, with the retry policy
/// and (unless `--no-verify`) the verifier every answer about a block goes through.
#[derive(Clone)]
pub struct RpcClient {
    nodes: Arc<[Node]>,
    retry: RetryPolicy,
    /// Checks and caches of verified headers and receipt sets; `None` with `--no-verify`.
    verifier: Option<Arc<Verifier>>,
}

/// The entries of a comma-separated provider list, trimmed; an empty one is a usage error.
pub fn provider_list(list: &str) -> Result<Vec<String>> {
    let uris: Vec<String> = list.split(',').map(|u| u.trim().to_owned()).collect();
    if let Some(i) = uris.iter().position(String::is_empty) {
        return Err(ExportError::Usage(format!(
            "--provider-uri {list:?}: entry {} of the comma-separated list is empty",
            i + 1
        )));
    }
    Ok(uris)
}

impl RpcClient {
    /// A client for `providers`: one http(s) URI or a comma-separated list, tried in order.
    pub fn new(providers: &str, retry: RetryPolicy) -> Result<Self> {
        Self::from_uris(&provider_list(providers)?, retry)
    }

    /// A client for these URIs, tried in this order.
    pub fn from_uris(uris: &[String], retry: RetryPolicy) -> Result<Self> {
        let options = ClientOptions {
            // ethereum-etl (requests) waits on the operating system's connect timeout; the
            // retry policy handles a node that is not there yet.
            connect_timeout: None,
            ..ClientOptions::default()
        };
        let client = nodewatch_http::client::build(&options);
        let nodes = uris
            .iter()
            .map(|uri| Node::new(uri, &client))
            .collect::<Result<Vec<_>>>()?;
        if nodes.is_empty() {
            return Err(ExportError::Usage("no provider URI given".into()));
        }
        Ok(RpcClient {
            nodes: nodes.into(),
            retry: RetryPolicy {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            verifier: None,
        })
    }

    /// The same client with another per-request timeout (`export_traces -t`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        let nodes: Vec<Node> = self
            .nodes
            .iter()
            .map(|n| {
                Node(Arc::new(NodeInner {
                    client: n.0.client.clone(),
                    endpoint: n.0.endpoint.clone(),
                    timeout,
                }))
            })
            .collect();
        self.nodes = nodes.into();
        self
    }

    /// The same client verifying answers with `verifier` (`None`: `--no-verify`).
    pub fn with_verifier(mut self, verifier: Option<Verifier>) -> Self {
        self.verifier = verifier.map(Arc::new);
        self
    }

    /// The providers, in order (for tests that drive one attempt by hand).
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The verifier, unless verification is off.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.verifier.as_deref()
    }

    /// Runs `attempt` on the providers in turn until it succeeds, fails fatally, or every
    /// provider has had `max_attempts` attempts; the final error mentions `what`.
    pub async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut(Node) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let mut state = Retrying::new(self.retry.base_delay);
        loop {
            let node = self.nodes[state.tries as usize % self.nodes.len()].clone();
            state.tries += 1;
            match attempt(node.clone()).await {
                Ok(v) => return Ok(v),
                Err(failure) => self.back_off(what, &node, failure, &mut state).await?,
            }
        }
    }

    /// After a failed attempt on `node`: the final error, or the wait before the next attempt
    /// (none when the next provider of the round is still to be asked).
    async fn back_off(
        &self,
        what: &str,
        node: &Node,
        failure: Failure,
        state: &mut Retrying,
    ) -> Result<()> {
        let n = state.tries;
        let limit = self
            .retry
            .max_attempts
            .saturating_mul(self.nodes.len() as u32);
        let msg = match failure {
            Failure::Fatal(msg) => return Err(ExportError::Rpc(format!("{what}: {msg}"))),
            Failure::Wrong(verdict) if n >= limit => {
                return Err(ExportError::Wrong {
                    what: what.to_owned(),
                    attempts: n,
                    verdict,
                })
            }
            Failure::Retriable(msg) if n >= limit => {
                let earlier = state.wrong.take().map_or(String::new(), |w| {
                    format!(" (an earlier answer was wrong: {w})")
                });
                return Err(ExportError::Rpc(format!(
                    "{what}: giving up after {n} attempt{}: {msg}{earlier}",
                    if n == 1 { "" } else { "s" }
                )));
            }
            Failure::Wrong(verdict) => {
                state.wrong = Some(verdict.clone());
                format!("wrong answer from {}: {verdict}", node.name())
            }
            Failure::Retriable(msg) => msg,
        };
        let next = n as usize % self.nodes.len();
        if next != 0 {
            let next = &self.nodes[next];
            eprintln!(
                "warning: {what}: attempt {n} failed, asking {} next: {msg}",
                next.name()
            );
            return Ok(());
        }
        eprintln!(
            "warning: {what}: attempt {n} failed, retrying in {:?}: {msg}",
            state.delay
        );
        tokio::time::sleep(state.delay).await;
        state.delay = (state.delay * 2).min(MAX_DELAY);
        Ok(())
    }

    /// Like [`Self::batch`], but a call's JSON-RPC error is its answer
    /// (`Err(error object)`) instead of a failure of the batch.
    pub async fn batch_items<T, V>(&self, what: &str, calls: &[Call], validate: V) -> Result<T>
    where
        V: FnMut(Vec<std::result::Result<PyValue, PyValue>>) -> std::result::Result<T, Failure>,
    {
        let validate = std::sync::Mutex::new(validate);
        self.with_retries(what, |node| {
            let validate = &validate;
            async move {
                let answers = node.answers::<PyValue>(calls).await?;
                let mut validate = validate.lock().unwrap_or_else(|e| e.into_inner());
                (*validate)(answers)
            }
        })
        .await
    }

    /// One batch of `calls` plus a check of every result, retried as a whole.
    pub async fn batch<T, V>(&self, what: &str, calls: &[Call], validate: V) -> Result<T>
    where
        V: FnMut(Vec<PyValue>) -> std::result::Result<T, Failure>,
    {
        // Locked only between awaits (never contended): the futures stay Send.
        let validate = std::sync::Mutex::new(validate);
        self.with_retries(what, |node| {
            let validate = &validate;
            async move {
                let answers = node.batch_once(calls).await?;
                let mut validate = validate.lock().unwrap_or_else(|e| e.into_inner());
                (*validate)(answers)
            }
        })
        .await
    }
}

/// Where a run of attempts stands.
struct Retrying {
    /// Attempts made so far.
    tries: u32,
    /// The wait before the next round of attempts.
    delay: Duration,
    /// The last wrong answer, named in the final error when the last failure is another.
    wrong: Option<String>,
}

impl Retrying {
    fn new(delay: Duration) -> Self {
        Retrying {
            tries: 0,
            delay,
            wrong: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
        }
    }

    #[test]
    fn provider_uri_is_validated() {
        for bad in [
            "not a url",
            "file:///tmp/geth.ipc",
            "ftp://x",
            "http://",
            "http://a:1,",
            " , ",
        ] {
            let err = RpcClient::new(bad, RetryPolicy::default())
                .err()
                .expect(bad);
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(RpcClient::new("http://127.0.0.1:8545", RetryPolicy::default()).is_ok());
        let two = RpcClient::new(" http://a:1 ,https://b:2/x", RetryPolicy::default()).unwrap();
        let names: Vec<String> = two.nodes.iter().map(Node::name).collect();
        assert_eq!(names.len(), 2);
        assert!(names[0].starts_with("http://a:1") && names[1].starts_with("https://b:2"));
    }

    #[test]
    fn credentials_in_the_uri_become_basic_auth() {
        let c = RpcClient::new(
            "https://user:p%40ss@node.example/rpc",
            RetryPolicy::default(),
        )
        .unwrap();
        let endpoint = &c.nodes[0].0.endpoint;
        assert_eq!(
            endpoint.headers()[http::header::AUTHORIZATION],
            "Basic dXNlcjpwQHNz"
        );
        assert_eq!(endpoint.uri().to_string(), "https://node.example/rpc");
        let plain = RpcClient::new("http://127.0.0.1:8545", RetryPolicy::default()).unwrap();
        assert!(plain.nodes[0].0.endpoint.headers().is_empty());
    }

    #[tokio::test]
    async fn retries_then_names_the_item() {
        let client = RpcClient::new("http://127.0.0.1:1", quick(3)).unwrap();
        let mut attempts = 0;
        let err = client
            .with_retries("block 7", |_| {
                attempts += 1;
                async { Err::<(), _>(Failure::Retriable("nope".into())) }
            })
            .await
            .unwrap_err();
        assert_eq!(attempts, 3);
        assert!(err.to_string().contains("block 7"), "{err}");
    }

    /// Runs attempts that answer wrong on the providers named in `liars`; returns the
    /// providers asked, in order, and the outcome.
    async fn ask(
        providers: &str,
        liars: &[&str],
        policy: RetryPolicy,
    ) -> (Vec<String>, Result<String>) {
        let client = RpcClient::new(providers, policy).unwrap();
        let asked = std::sync::Mutex::new(Vec::new());
        let outcome = client
            .with_retries("blocks 5..=5", |node| {
                let name = node.name();
                asked.lock().unwrap().push(name.clone());
                let lies = liars.iter().any(|l| name.contains(l));
                async move {
                    if lies {
                        Err(Failure::Wrong(format!(
                            "block 5: transactions root check failed: from {name}"
                        )))
                    } else {
                        Ok(name)
                    }
                }
            })
            .await;
        (asked.into_inner().unwrap(), outcome)
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_answer_is_asked_again_of_the_next_provider_at_once() {
        let started = tokio::time::Instant::now();
        let (asked, outcome) = ask("http://liar:1,http://honest:2", &["liar"], quick(3)).await;
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(outcome.unwrap().contains("honest"));
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no back-off before the next provider"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_everywhere_fails_naming_the_block_and_the_check() {
        let (asked, outcome) = ask("http://liar:1", &["liar"], quick(3)).await;
        assert_eq!(asked.len(), 3, "one provider: the retry policy's attempts");
        let err = outcome.unwrap_err();
        assert!(
            matches!(err, ExportError::Wrong { attempts: 3, .. }),
            "{err:?}"
        );
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("block 5") && line.contains("transactions root check failed"));
        let (asked, outcome) = ask("http://liar:1,http://liar:2", &["liar"], quick(2)).await;
        assert_eq!(asked.len(), 4, "each provider gets max_attempts: {asked:?}");
        assert!(matches!(
            outcome,
            Err(ExportError::Wrong { attempts: 4, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_last_transport_failure_still_names_an_earlier_wrong_answer() {
        let client = RpcClient::new("http://liar:1,http://down:2", quick(1)).unwrap();
        let err = client
            .with_retries("block 9", |node| {
                let liar = node.name().contains("liar");
                async move {
                    Err::<(), _>(if liar {
                        Failure::Wrong("block 9: receipts root check failed: x".into())
                    } else {
                        Failure::Retriable("connection refused".into())
                    })
                }
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("connection refused") && err.contains("receipts root"),
            "{err}"
        );
    }
}
