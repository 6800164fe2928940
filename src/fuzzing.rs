//! The driver of the property-based fuzz tests (`proptest` on stable Rust: no nightly, so no
//! libFuzzer).
//!
//! Each target calls [`check`] with a strategy and a property. Cases per target follow
//! proptest's own `PROPTEST_CASES` (default 256, so `cargo test` runs a few thousand in all);
//! `make fuzz` raises it and `PROPTEST_RNG_SEED` replays a run. Every target prints one
//! `FIGURE fuzz <target>: <n> cases` line, so the case counts can be collected.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `property` on values of `strategy`; panics with the minimal failing input.
pub(crate) fn check<S: Strategy>(
    target: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        // Failures are printed with their minimal input; no regression files in src/.
        failure_persistence: None,
        ..Config::default()
    };
    let cases = AtomicU64::new(0);
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |value| {
        cases.fetch_add(1, Ordering::Relaxed);
        property(value)
    }) {
        panic!("fuzz {target}: {e}");
    }
    eprintln!(
        "FIGURE fuzz {target}: {} cases, no failure",
        cases.load(Ordering::Relaxed)
    );
}
