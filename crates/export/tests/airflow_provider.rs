//! The Airflow provider's own tests (`providers/airflow-provider-nodewatch/tests`, pytest)
//! on Airflow 2.10 and 3.x: the sensor against a live nodewatch (not ready, then ready when
//! its node comes up; poking and deferred), the operators against anvil through nodewatch
//! (files equal to a direct export, nodewatch-export and ethereumetl, one-line errors,
//! outputs renamed into place only on success), the entry point and the connection type.
//!
//! The provider comes from its wheel (`target/wheels/airflow_provider_nodewatch-*.whl`,
//! `make wheel`), installed with pip into a directory on `PYTHONPATH`; the tests run from the
//! source tree's `tests/` with the binaries cargo built. Under `CI=true` a missing Airflow
//! venv (or its pytest), wheel, anvil or ethereumetl fails; locally the test is skipped.

use nodewatch_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TESTS_DIR: &str = "providers/airflow-provider-nodewatch/tests";
const PYTEST_TIMEOUT: Duration = Duration::from_secs(300);

/// `$env` (else `default` under the workspace root) if it is a python with Airflow and pytest.
fn airflow_python(env: &str, default: &str) -> Option<PathBuf> {
    let python = std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| support::workspace_root().join(default));
    let home = tempfile::tempdir().unwrap();
    let works = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import airflow.version, pytest"])
            .env("AIRFLOW_HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if works {
        return Some(python);
    }
    assert!(
        !support::tools::is_ci(),
        "apache-airflow with pytest not usable at {} (set {env} or run `make tools`); CI=true, \
         so this is a failure",
        python.display()
    );
    eprintln!(
        "skipping: apache-airflow with pytest not usable at {}",
        python.display()
    );
    None
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Runs the provider's pytest suite with `python`; panics with its output unless all pass.
async fn pytest(python: &Path, label: &str) {
    let wheel = support::wheels::require_wheel(
        "airflow_provider_nodewatch",
        &["providers/airflow-provider-nodewatch/nodewatch_provider"],
    );
    let anvil = support::tools::require_anvil();
    let ethereumetl = support::reference::require_ethereumetl310();
    let (Some(wheel), Some(anvil), Some(ethereumetl)) = (wheel, anvil, ethereumetl) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site-packages");
    support::wheels::install_into(python, &wheel, &site);
    let home = work.path().join("airflow-home");
    let t = Instant::now();
    let out = tokio::process::Command::from(support::tools::scrubbed(python))
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:warnings",
            "-q",
        ])
        .arg("--basetemp")
        .arg(work.path().join("pytest"))
        .arg(".")
        .current_dir(support::workspace_root().join(TESTS_DIR))
        .env("AIRFLOW_HOME", &home)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("PYTHONPATH", &site)
        .env("NODEWATCH_BIN", support::binary::path())
        .env("NODEWATCH_EXPORT_BIN", support::binary::exporter_path())
        .env("NODEWATCH_ANVIL", path_str(&anvil))
        .env("NODEWATCH_ETHEREUMETL310", path_str(&ethereumetl))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PYTEST_TIMEOUT, out)
        .await
        .unwrap_or_else(|_| {
            panic!("pytest on Airflow {label} did not finish in {PYTEST_TIMEOUT:?}")
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the provider's tests failed on Airflow {label} ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    // "15 passed in 23.26s": every test ran, none skipped.
    assert!(
        summary.contains(" passed") && !summary.contains("skipped"),
        "Airflow {label}: {stdout}"
    );
    eprintln!(
        "FIGURE provider tests on Airflow {label}: {summary} ({:?})",
        t.elapsed()
    );
}

#[tokio::test]
async fn provider_tests_pass_on_airflow_2_10() {
    if let Some(python) =
        airflow_python("NODEWATCH_AIRFLOW_PYTHON", ".tools/airflow-venv/bin/python")
    {
        pytest(&python, "2.10").await;
    }
}

#[tokio::test]
async fn provider_tests_pass_on_airflow_3() {
    if let Some(python) = airflow_python(
        "NODEWATCH_AIRFLOW3_PYTHON",
        ".tools/airflow3-venv/bin/python",
    ) {
        pytest(&python, "3").await;
    }
}
