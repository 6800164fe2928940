//! The workspace's layout rules, checked over the sources of every crate:
//!
//! - no import cycle between modules: a module that uses another (`crate::a::b`,
//!   `super::b`, `use crate::{a, b}`) must not be used back by it, directly or through
//!   others. A module using its own ancestors (a child reading its parent's types) is not a
//!   cycle; test-only code (`#[cfg(test)]` blocks, `tests.rs`, `proptests.rs`) is left out;
//! - every module opens with a `//!` doc saying its job;
//! - each crate root has a `# Layout` section naming every module the root declares.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The library crates' source roots, relative to the workspace root: the proxy's `src` and
/// every `crates/*/src` with a `lib.rs` (a new crate is covered as soon as it exists).
fn crates() -> Vec<String> {
    let dir = root().join("crates");
    let mut roots = vec!["src".to_string()];
    let mut found: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| dir.join(name).join("src/lib.rs").is_file())
        .map(|name| format!("crates/{name}/src"))
        .collect();
    found.sort();
    roots.extend(found);
    roots
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file (`upstream::monitor`), or None for a binary's main or
/// a file under `src/bin`. The crate root is `""`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") || rel == Path::new("main.rs") {
        return None;
    }
    let last = parts.pop().unwrap();
    match last.trim_end_matches(".rs") {
        "lib" | "mod" => {}
        name => parts.push(name.to_string()),
    }
    Some(parts.join("::"))
}

/// The source without test-only code: from the first top-level `#[cfg(test)]` on.
fn non_test(text: &str) -> &str {
    text.find("\n#[cfg(test)]\nmod tests {")
        .map_or(text, |at| &text[..at])
}

/// The module paths a source text refers to, resolved against `module` (for `super::`).
fn references(module: &str, text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let own: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let mut prefixes = vec![
        ("crate::".to_string(), Vec::new()),
        ("super::".to_string(), parent(module)),
    ];
    // A child declared here (`mod round;`) and used by a bare path (`round::Round`).
    for child in declared_children(&code) {
        let mut base = own.clone();
        base.push(child.clone());
        prefixes.push((format!("{child}::"), base));
    }
    for (prefix, base) in &prefixes {
        let prefix = prefix.as_str();
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut base = base.clone();
            let mut rest = rest;
            while let Some(up) = rest.strip_prefix("super::").filter(|_| prefix == "super::") {
                base.pop();
                rest = up;
            }
            for path in paths(rest) {
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// The modules a file declares: `mod x;` / `pub mod x;` / `pub(crate) mod x;`.
fn declared_children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub ")
                .or_else(|| l.strip_prefix("pub(crate) "))
                .unwrap_or(l);
            rest.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(String::from)
        })
        .collect()
}

fn parent(module: &str) -> Vec<String> {
    let mut parts: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    parts.pop();
    parts
}

/// The paths at the start of `rest`: `a::b::C`, `{a::b, c}`, `a::{b::{C, D}, e}`.
fn paths(rest: &str) -> Vec<Vec<String>> {
    if let Some(group) = rest.strip_prefix('{') {
        return split_group(group)
            .iter()
            .flat_map(|item| paths(item.trim()))
            .collect();
    }
    let mut prefix = Vec::new();
    let mut rest = rest;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            return vec![prefix];
        }
        rest = &rest[ident.len()..];
        prefix.push(ident);
        match rest.strip_prefix("::") {
            Some(next) if next.starts_with('{') => {
                return paths(next)
                    .into_iter()
                    .map(|tail| prefix.iter().cloned().chain(tail).collect())
                    .collect();
            }
            Some(next) => rest = next,
            None => return vec![prefix],
        }
    }
}

/// The items of a brace group (after its `{`), split at its own commas, up to its `}`.
fn split_group(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(modules: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn is_ancestor(of: &str, module: &str) -> bool {
    module.starts_with(&format!("{of}::")) || of.is_empty()
}

/// One crate's module graph: module -> modules it uses (ancestors left out).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let test_file = |f: &Path| {
        let name = f.file_name().unwrap().to_string_lossy();
        name == "tests.rs" || name == "proptests.rs"
    };
    let sources: Vec<(String, String)> = files
        .iter()
        .filter(|f| !test_file(f))
        .filter_map(|f| Some((module_of(src, f)?, fs::read_to_string(f).unwrap())))
        .collect();
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &sources {
        let used: BTreeSet<String> = references(module, non_test(text))
            .iter()
            .filter_map(|path| resolve(&modules, path))
            .filter(|target| target != module && !is_ancestor(target, module))
            .collect();
        edges.insert(module.clone(), used);
    }
    edges
}

/// A cycle in the graph, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut edges_seen = 0;
    let proxy = graph(&root().join("src"));
    for (from, to) in [
        ("forward::plan", "router"),
        ("server", "reload"),
        ("upstream", "upstream::breaker"),
    ] {
        assert!(proxy[from].contains(to), "the scan missed {from} -> {to}");
    }
    let crates = crates();
    for krate in [
        "src",
        "crates/http/src",
        "crates/export/src",
        "crates/testkit/src",
    ] {
        assert!(crates.iter().any(|c| c == krate), "{krate} not found");
    }
    for krate in &crates {
        let edges = graph(&root().join(krate));
        edges_seen += edges.values().map(BTreeSet::len).sum::<usize>();
        if let Some(cycle) = find_cycle(&edges) {
            panic!("{krate}: import cycle {}", cycle.join(" -> "));
        }
    }
    // The scan found the imports at all (a broken parser would find no cycle either).
    assert!(edges_seen > 100, "only {edges_seen} imports found");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
    let refs = references(
        "upstream::monitor",
        "use super::{health, Snapshot};\nuse crate::config::{Config, x::{Y, Z}};\n// crate::ignored\n",
    );
    assert!(refs.contains(&vec!["upstream".into(), "health".into()]));
    assert!(refs.contains(&vec!["config".into(), "Config".into()]));
    assert!(refs.contains(&vec!["config".into(), "x".into(), "Z".into()]));
    assert!(!refs
        .iter()
        .any(|r| r.first().is_some_and(|s| s == "ignored")));
}

#[test]
fn every_module_says_its_job_and_every_crate_root_has_a_layout() {
    for krate in crates() {
        let src = root().join(&krate);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in &files {
            let text = fs::read_to_string(file).unwrap();
            assert!(
                text.trim_start().starts_with("//!"),
                "{} does not open with a //! doc",
                file.display()
            );
        }
        let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
        match unnamed_in_layout(&lib) {
            Err(why) => panic!("{krate}/lib.rs: {why}"),
            Ok(unnamed) => assert!(
                unnamed.is_empty(),
                "{krate}/lib.rs: its # Layout does not name the module(s) {unnamed:?} \
                 (name each as `x`, [`x`] or [`crate::x`], or a path into it)"
            ),
        }
    }
}

/// The `//!` text of a crate root's `# Layout` section: from its heading to the next
/// heading or the end of the crate doc.
fn layout_section(lib: &str) -> Option<String> {
    let doc = lib
        .lines()
        .map(str::trim_start)
        .take_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| l.trim_start_matches("//!").trim());
    let mut section = None::<Vec<&str>>;
    for line in doc {
        match &mut section {
            None if line == "# Layout" => section = Some(Vec::new()),
            None => {}
            Some(_) if line.starts_with('#') => break,
            Some(lines) => lines.push(line),
        }
    }
    section.map(|lines| lines.join("\n"))
}

/// The modules a crate root declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`, behind
/// attributes or not), outside comments.
fn declared_modules(lib: &str) -> Vec<String> {
    lib.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .filter_map(|l| {
            let l = l.rsplit_once(']').map_or(l, |(_, item)| item.trim());
            let l = match l.strip_prefix("pub") {
                Some(rest) if rest.starts_with('(') => rest.split_once(')')?.1.trim_start(),
                Some(rest) => rest.trim_start(),
                None => l,
            };
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?.trim();
            Some(name.to_string())
        })
        .collect()
}

/// The modules `lib` (a crate root's text) declares that its `# Layout` section does not
/// name, in declaration order; an error when it has no `# Layout` section. A module is named
/// by a code span holding it or a path into it: `x`, [`x`], [`crate::x`], [`x::Item`].
fn unnamed_in_layout(lib: &str) -> Result<Vec<String>, String> {
    let layout = layout_section(lib).ok_or("no # Layout section")?;
    let named: BTreeSet<&str> = layout
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|span| span.trim_start_matches("crate::"))
        .map(|path| path.split("::").next().unwrap_or(path))
        .collect();
    Ok(declared_modules(lib)
        .into_iter()
        .filter(|module| !named.contains(module.as_str()))
        .collect())
}

#[test]
fn the_layout_check_fails_on_a_module_left_out() {
    let lib = "\
//! The crate.
//!
//! # Layout
//!
//! - [`alpha`]: named as a link; [`crate::beta::Thing`] names `beta` through a path;
//! - `gamma` as a plain code span; delta only in prose does not count.
//!
//! # Other
//!
//! `delta` under another heading does not count either.
#![forbid(unsafe_code)]

pub mod alpha;
pub(crate) mod beta;
mod gamma;
#[cfg(test)]
mod delta;
// mod commented;
pub use alpha::Alpha;
";
    assert_eq!(unnamed_in_layout(lib).unwrap(), ["delta"]);
    let fixed = lib.replace("delta only in prose", "[`delta`] (tests only)");
    assert_eq!(unnamed_in_layout(&fixed).unwrap(), Vec::<String>::new());
    assert!(unnamed_in_layout("//! No layout.\npub mod alpha;\n").is_err());
    // The proxy's own root is read the same way: every module it declares is found.
    let proxy = fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let declared = declared_modules(&proxy);
    for module in ["admin", "forward", "upstream", "fuzzing"] {
        assert!(declared.iter().any(|m| m == module), "{module} not found");
    }
}
