//! The wheels `make wheel` writes to `target/wheels/` (`pip install nodewatch`, and the
//! Airflow provider), found for the packaging and Airflow tests, and installed with pip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Where `make wheel` writes the wheels, under the workspace root.
pub const WHEELS_DIR: &str = "target/wheels";

/// The newest `<name>-*.whl` in `target/wheels/`, or None (after a skip notice) when there is
/// none outside CI; a panic under CI. With `sources` (directories under the workspace root),
/// a wheel older than a file there is stale: a panic that says to run `make wheel`.
pub fn require_wheel(name: &str, sources: &[&str]) -> Option<PathBuf> {
    let dir = crate::workspace_root().join(WHEELS_DIR);
    let prefix = format!("{name}-");
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let file = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            file.starts_with(&prefix) && file.ends_with(".whl")
        })
        .max_by_key(|p| modified(p));
    let Some(wheel) = newest else {
        assert!(
            !crate::tools::is_ci(),
            "no {name} wheel in {} (run `make wheel`); CI=true, so this is a failure",
            dir.display()
        );
        eprintln!(
            "skipping: no {name} wheel in {}, run make wheel",
            dir.display()
        );
        return None;
    };
    let built = modified(&wheel);
    for source in sources {
        if let Some(newer) = newer_file(&crate::workspace_root().join(source), built) {
            panic!(
                "{} is older than {}: run `make wheel`",
                wheel.display(),
                newer.display()
            );
        }
    }
    Some(wheel)
}

/// `python -m pip install --no-deps --no-index --no-compile --target <dir> <wheel>`: the
/// wheel's packages and metadata (entry points included) in `dir`, for `PYTHONPATH`.
pub fn install_into(python: &Path, wheel: &Path, dir: &Path) {
    let out = crate::tools::scrubbed(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--no-index", "--no-compile", "--target"])
        .arg(dir)
        .arg(wheel)
        .output()
        .expect("run pip");
    assert!(
        out.status.success(),
        "pip install {} failed: {}",
        wheel.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh venv at `dir` made by `python` (`python3` on PATH when None); returns its bin/.
pub fn fresh_venv(python: Option<&Path>, dir: &Path) -> PathBuf {
    let python = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
    let out = Command::new(&python)
        .args(["-m", "venv"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{} -m venv: {e}", python.display()));
    assert!(
        out.status.success(),
        "{} -m venv failed: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("bin")
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A file under `dir` (recursively; `__pycache__` and dot entries skipped) modified after
/// `than`.
fn newer_file(dir: &Path, than: SystemTime) -> Option<PathBuf> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            if path.is_dir() {
                todo.push(path);
            } else if modified(&path) > than {
                return Some(path);
            }
        }
    }
    None
}
