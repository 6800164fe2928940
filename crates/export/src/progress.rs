//! Progress reporting on stderr: an `indicatif` bar when stderr is a
//! terminal and `--quiet` is not given, nothing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// User-interface settings shared by all commands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// Suppress the progress bar and the closing summary.
    pub quiet: bool,
}

impl Ui {
    /// Prints a summary line on stderr unless quiet.
    pub fn summary(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

/// A progress bar that may be a no-op.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` items (a spinner when unknown), shown only when
    /// stderr is a terminal and the UI is not quiet.
    pub fn new(ui: Ui, total: Option<u64>, unit: &str) -> Progress {
        if ui.quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
                let template =
                    format!("{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})");
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style);
                }
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                let template = format!("{{spinner}} {{pos}} {unit} ({{per_sec}})");
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style);
                }
                bar
            }
        };
        Progress { bar: Some(bar) }
    }

    /// Advances by `n` items.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_progress_is_a_no_op() {
        let p = Progress::new(Ui { quiet: true }, Some(10), "blocks");
        assert!(p.bar.is_none());
        p.inc(3);
        p.finish();
    }
}
