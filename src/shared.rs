//! The store a fleet of sidecars shares: the `[redis]` an Airflow deployment already runs.
//! It holds exact budgets for one provider key (`budget_key`: a GCRA schedule of the key's
//! units per second and the month's count, both decided in one Lua script on Redis's own
//! clock, so sidecars on different machines agree) and, optionally, final answers.
//!
//! Redis is help, never a dependency: every call is bounded by `redis.timeout`, and when one
//! fails the sidecar serves on its own for `redis.retry` — its local pace (the learned rate
//! under `max_rps`) and memory cache — without asking Redis again meanwhile, so requests never
//! wait on a Redis that is down. It says so: a warning when Redis goes and when it is back,
//! `nodewatch_redis_up`, `nodewatch_redis_errors_total`, and `redis` in `/status`.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use prometheus::{IntCounter, IntGauge};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{redact_redis_url, RedisConfig};
use crate::sync::lock;

/// The budget script: month first (a spent month refuses without taking a slot), then the
/// GCRA schedule (the same rule as [`crate::upstream::pace`]: one second's units of
/// tolerance, or the request's own cost when larger). Replies `{wait_ms, month_total}`,
/// `{-1, wait_ms}` when the wait would pass the caller's bound, `{-2, month_total}` when the
/// month is spent.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local units = tonumber(ARGV[1])
local budget = tonumber(ARGV[5])
local total = 0
if budget > 0 then
  total = tonumber(redis.call('GET', KEYS[2]) or '0')
  if total + units > budget then return {-2, total} end
end
local wait = 0
local rate = tonumber(ARGV[2])
if rate > 0 then
  local cost = units * 1000 / rate
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local start = math.max(tat + cost - math.max(tonumber(ARGV[3]), cost), now)
  wait = start - now
  if wait > tonumber(ARGV[4]) then return {-1, math.ceil(wait)} end
  local after = math.max(tat, start) + cost
  redis.call('SET', KEYS[1], string.format('%.3f', after), 'PX', math.ceil(after - now) + 1000)
end
if budget > 0 then
  total = redis.call('INCRBY', KEYS[2], units)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return {math.ceil(wait), total}
";

/// The cache lookup: the epoch (a deep reorg starts a new one), then each key's answer in
/// that epoch (`nil` where none). Keys are built here, so one Redis (not a cluster) holds them.
const LOOKUP: &str = r"
local e = redis.call('GET', ARGV[1] .. ':cache:epoch') or '0'
local out = {e}
for i = 2, #ARGV do
  out[i] = redis.call('GET', ARGV[1] .. ':cache:' .. e .. ':' .. ARGV[i])
end
return out
";

/// The cache store: answers read in epoch `ARGV[2]` are kept only if it is still the epoch.
const STORE: &str = r"
local e = redis.call('GET', ARGV[1] .. ':cache:epoch') or '0'
if e ~= ARGV[2] then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('SET', ARGV[1] .. ':cache:' .. e .. ':' .. ARGV[i], ARGV[i + 1], 'EX', ARGV[3])
end
return 1
";

/// How long a month's count outlives its month in Redis (a restarted sidecar early in the
/// next month still finds last month's for its status).
const MONTH_KEY_TTL: Duration = Duration::from_secs(40 * 24 * 3600);

/// One reservation against a shared budget.
#[derive(Debug, Clone)]
pub struct Reservation<'a> {
    /// The `budget_key`.
    pub key: &'a str,
    /// Units this request costs (calls, or compute units).
    pub units: u64,
    /// The key's units per second (`max_rps` or `credits.per_second`); `None`: no schedule.
    pub rate: Option<f64>,
    /// Tolerance of the schedule: what may go at once after an idle spell.
    pub burst: Duration,
    /// The longest the caller may wait.
    pub most_wait: Duration,
    /// The month (`2026-12`) and its budget, when the key has one.
    pub month: Option<(&'a str, u64)>,
}

/// What Redis decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Go after `wait`; the month's total so far, if counted.
    Go {
        /// The wait the schedule gives.
        wait: Duration,
        /// The fleet's units this month, this request's included.
        month_total: Option<u64>,
    },
    /// The schedule is spent beyond the caller's bound: it could go after this wait.
    Later(Duration),
    /// The month's budget is spent: the fleet's total.
    MonthSpent(u64),
}

/// What `/status` shows of the shared store.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SharedView {
    /// The URL, password hidden.
    pub url: String,
    /// Whether the last call succeeded (false: serving on the local fallback).
    pub up: bool,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Seconds since it.
    pub last_error_age_secs: Option<f64>,
}

/// The shared store of one sidecar.
#[derive(Debug)]
pub struct Shared {
    /// Timeouts, prefix, cache switch.
    config: RedisConfig,
    /// For connecting (holds the URL).
    client: redis::Client,
    /// The connection, made on first use; it reconnects by itself afterwards.
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Up or on the fallback, and why.
    health: Mutex<Health>,
    /// The budget script (sent by hash, loaded on first use).
    reserve: redis::Script,
    /// The cache's lookup and store scripts.
    lookup: redis::Script,
    store: redis::Script,
    /// `nodewatch_redis_up`.
    up: IntGauge,
    /// `nodewatch_redis_errors_total`.
    errors: IntCounter,
}

#[derive(Debug)]
struct Health {
    /// Not asked before this (after a failure).
    down_until: Option<Instant>,
    /// The last failure and when.
    last_error: Option<(String, Instant)>,
}

/// Why a call to Redis did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// Failed recently: not asked until `redis.retry` has passed.
    #[error("redis is on the fallback (failed recently)")]
    Down,
    /// No answer within `redis.timeout`.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Shared {
    /// The store for `config` (`None` when no URL is set); `up`/`errors` are its metrics.
    pub fn new(config: &RedisConfig, up: IntGauge, errors: IntCounter) -> Option<Self> {
        let url = config.url()?;
        let client = match redis::Client::open(url) {
            Ok(client) => client,
            Err(e) => {
                warn!(url = %redact_redis_url(url), error = %e, "redis: cannot use this URL; every budget stays local");
                return None;
            }
        };
        up.set(1);
        Some(Self {
            config: config.clone(),
            client,
            conn: tokio::sync::Mutex::new(None),
            health: Mutex::new(Health {
                down_until: None,
                last_error: None,
            }),
            reserve: redis::Script::new(RESERVE),
            lookup: redis::Script::new(LOOKUP),
            store: redis::Script::new(STORE),
            up,
            errors,
        })
    }

    /// Whether final answers are shared here.
    pub fn caches(&self) -> bool {
        self.config.cache
    }

    /// Reserves against a shared budget (see [`RESERVE`]).
    pub async fn reserve(&self, r: &Reservation<'_>) -> Result<Reserved, SharedError> {
        let prefix = &self.config.prefix;
        let (month, budget) = r.month.unwrap_or(("", 0));
        let mut invocation = self.reserve.prepare_invoke();
        invocation
            .key(format!("{prefix}:budget:{}:schedule", r.key))
            .key(format!("{prefix}:budget:{}:month:{month}", r.key))
            .arg(r.units)
            .arg(r.rate.unwrap_or(0.0))
            .arg(r.burst.as_millis() as u64)
            .arg(r.most_wait.as_millis() as u64)
            .arg(budget)
            .arg(MONTH_KEY_TTL.as_secs());
        let (code, value): (i64, i64) = self
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let value = u64::try_from(value).unwrap_or(0);
        Ok(match code {
            -1 => Reserved::Later(Duration::from_millis(value)),
            -2 => Reserved::MonthSpent(value),
            wait => Reserved::Go {
                wait: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
                month_total: (budget > 0).then_some(value),
            },
        })
    }

    /// The fleet's kept answers for `keys` (one round trip), with the cache's epoch they
    /// were read in (hand it to [`Shared::keep`]).
    pub async fn cached(
        &self,
        keys: &[String],
    ) -> Result<(String, Vec<Option<Bytes>>), SharedError> {
        let mut invocation = self.lookup.prepare_invoke();
        invocation.arg(&self.config.prefix);
        for key in keys {
            invocation.arg(key);
        }
        let got: Vec<Option<Vec<u8>>> = self
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let mut got = got.into_iter();
        let epoch = got
            .next()
            .flatten()
            .map(|e| String::from_utf8_lossy(&e).into_owned())
            .unwrap_or_default();
        Ok((epoch, got.map(|v| v.map(Bytes::from)).collect()))
    }

    /// Keeps final answers for the fleet (each for `redis.cache_ttl`), unless a deep reorg
    /// moved the cache to a new epoch since `epoch` was read (they may be of the old chain).
    pub async fn keep(&self, epoch: &str, entries: &[(String, Bytes)]) -> Result<(), SharedError> {
        let mut invocation = self.store.prepare_invoke();
        invocation
            .arg(&self.config.prefix)
            .arg(epoch)
            .arg(self.config.cache_ttl.as_secs().max(1));
        for (key, answer) in entries {
            invocation.arg(key).arg(answer.as_ref());
        }
        self.call(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(drop)
    }

    /// Starts a new cache epoch: every answer the fleet kept is forgotten (a reorg deeper
    /// than the final line changed blocks they may be about).
    pub async fn forget_answers(&self) -> Result<(), SharedError> {
        let key = format!("{}:cache:epoch", self.config.prefix);
        self.call(|mut conn| async move {
            redis::cmd("INCR")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(drop)
    }

    /// What `/status` shows.
    pub fn view(&self, now: Instant) -> SharedView {
        let health = lock(&self.health);
        let url = self.config.url().map(redact_redis_url).unwrap_or_default();
        SharedView {
            url,
            up: health.down_until.is_none_or(|until| now >= until) && self.up.get() == 1,
            last_error: health.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_age_secs: health
                .last_error
                .as_ref()
                .map(|(_, at)| now.saturating_duration_since(*at).as_secs_f64()),
        }
    }

    /// Runs one Redis call within `redis.timeout`, unless Redis failed recently; a failure
    /// starts a spell on the fallback, a success after one ends it.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, SharedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.is_down() {
            return Err(SharedError::Down);
        }
        let timeout = self.config.timeout;
        let result = match tokio::time::timeout(timeout, self.connection()).await {
            Err(_) => Err(SharedError::Timeout(timeout)),
            // Another request's connect failed while this one waited for it.
            Ok(Err(_)) if self.is_down() => return Err(SharedError::Down),
            Ok(Err(e)) => Err(SharedError::Redis(e)),
            Ok(Ok(conn)) => match tokio::time::timeout(timeout, f(conn)).await {
                Err(_) => Err(SharedError::Timeout(timeout)),
                Ok(result) => result.map_err(SharedError::Redis),
            },
        };
        match &result {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(e),
        }
        result
    }

    /// Whether a failure started a spell on the fallback that is not over.
    fn is_down(&self) -> bool {
        lock(&self.health)
            .down_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// The connection, made on first use (one connect at a time; a request that waited for
    /// another's failed connect does not try again).
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut conn = self.conn.lock().await;
        if let Some(conn) = conn.as_ref() {
            return Ok(conn.clone());
        }
        if self.is_down() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "redis is on the fallback",
            )));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(1);
        let made = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *conn = Some(made.clone());
        Ok(made)
    }

    fn succeeded(&self) {
        if self.up.get() == 0 {
            self.up.set(1);
            info!("redis is back: shared budgets and cache in use again");
        }
        lock(&self.health).down_until = None;
    }

    fn failed(&self, error: &SharedError) {
        self.errors.inc();
        let now = Instant::now();
        let mut health = lock(&self.health);
        health.down_until = Some(now + self.config.retry);
        health.last_error = Some((error.to_string(), now));
        if self.up.get() == 1 {
            self.up.set(0);
            warn!(
                error = %error,
                retry_in = ?self.config.retry,
                "redis unavailable: each budget falls back to this sidecar's local limiter, \
                 the cache to memory; serving on"
            );
        }
    }
}
