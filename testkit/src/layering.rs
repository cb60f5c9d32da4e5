//! The module graph of a crate's sources, and the cycles in it.
//!
//! muxpool's crates are layered: each module imports only from modules below
//! it (see `docs/architecture.md`). Nothing in the compiler keeps that true, so
//! the suite reads the sources and fails on a cycle. The reading is textual
//! and small on purpose: it knows files, `mod` declarations, `use` trees and
//! `crate::`, `super::` and `self::` paths in code, which is all this
//! project's code uses to name another module.
//!
//! # What counts as an edge
//!
//! A module depends on another when its code (not its comments or doc links)
//! names a path into it. A path is followed through the modules it names and
//! through re-exports (`pub use`), so `crate::Client` counts as a use of the
//! module that defines `Client`, not of the crate root. A module's re-export
//! of one of its own descendants is its public face, not a dependency, and is
//! not an edge; a declaration `mod x;` is not one either.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// A module's path inside its crate: `""` for the root, `"pool::checkout"`.
pub type ModulePath = String;

/// One reason for an edge: the file and line that name the other module.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Evidence {
    /// The file that names the module.
    pub file: PathBuf,
    /// Its line, from 1.
    pub line: usize,
}

/// The modules of one crate and which of them import which.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Every module, with the file it is read from.
    pub modules: BTreeMap<ModulePath, PathBuf>,
    /// `from -> to`, each with the places that make it.
    pub edges: BTreeMap<(ModulePath, ModulePath), Vec<Evidence>>,
}

/// A cycle of modules that import each other, with one place per edge.
#[derive(Debug)]
pub struct Cycle {
    /// The modules of the cycle, in order; the last imports the first.
    pub modules: Vec<ModulePath>,
    /// For each module, where it imports the next.
    pub evidence: Vec<Evidence>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, module) in self.modules.iter().enumerate() {
            let next = &self.modules[(i + 1) % self.modules.len()];
            let at = &self.evidence[i];
            writeln!(
                f,
                "  {} -> {} ({}:{})",
                display(module),
                display(next),
                at.file.display(),
                at.line
            )?;
        }
        Ok(())
    }
}

fn display(module: &str) -> &str {
    if module.is_empty() {
        "crate"
    } else {
        module
    }
}

/// A `use` or path found in a module's code.
struct Reference {
    /// Absolute segments, after `crate`/`super`/`self` were resolved.
    segments: Vec<String>,
    line: usize,
    /// Part of a `pub use` (of any visibility): a re-export.
    reexport: bool,
}

impl ModuleGraph {
    /// Reads the crate whose root is `src/lib.rs` under `src`.
    ///
    /// # Errors
    ///
    /// A file that cannot be read.
    pub fn read(src: &Path) -> std::io::Result<ModuleGraph> {
        let mut files = Vec::new();
        collect(src, &mut files)?;
        let mut modules = BTreeMap::new();
        for file in &files {
            if let Some(module) = module_of(src, file) {
                modules.insert(module, file.clone());
            }
        }
        let mut references = BTreeMap::new();
        for (module, file) in &modules {
            let text = std::fs::read_to_string(file)?;
            let refs = references_in(module, &strip(&text), &modules);
            references.insert(module.clone(), refs);
        }
        // What each module re-exports, by name: `pub use a::b::X` makes `X` of
        // this module mean the module `a::b` (or `a::b::X`, if that is one).
        let mut reexports: BTreeMap<ModulePath, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (module, refs) in &references {
            for r in refs.iter().filter(|r| r.reexport) {
                if let Some(name) = r.segments.last() {
                    reexports
                        .entry(module.clone())
                        .or_default()
                        .insert(name.clone(), r.segments.clone());
                }
            }
        }
        let mut graph = ModuleGraph {
            modules,
            edges: BTreeMap::new(),
        };
        for (module, refs) in &references {
            for r in refs {
                let target = graph.resolve(&r.segments, &reexports, 0);
                if target == *module {
                    continue;
                }
                let own_descendant =
                    target != *module && (module.is_empty() || is_within(&target, module));
                if r.reexport && own_descendant {
                    continue;
                }
                let file = graph.modules[module].clone();
                graph
                    .edges
                    .entry((module.clone(), target))
                    .or_default()
                    .push(Evidence { file, line: r.line });
            }
        }
        Ok(graph)
    }

    /// The deepest module a path reaches, through modules and re-exports.
    fn resolve(
        &self,
        segments: &[String],
        reexports: &BTreeMap<ModulePath, BTreeMap<String, Vec<String>>>,
        depth: usize,
    ) -> ModulePath {
        let mut module = String::new();
        for (i, segment) in segments.iter().enumerate() {
            let deeper = join(&module, segment);
            if self.modules.contains_key(&deeper) {
                module = deeper;
                continue;
            }
            if let Some(path) = reexports.get(&module).and_then(|r| r.get(segment)) {
                // A re-export of a re-export is followed a few steps at most.
                if depth < 8 && path.as_slice() != &segments[..=i] {
                    return self.resolve(path, reexports, depth + 1);
                }
            }
            break;
        }
        module
    }

    /// Every cycle: one per strongly connected set of modules, shown as a
    /// shortest loop through it.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (from, to) in self.edges.keys() {
            next.entry(from).or_default().insert(to);
        }
        let mut cycles = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for start in self.modules.keys() {
            if seen.contains(start.as_str()) {
                continue;
            }
            if let Some(path) = shortest_loop(&next, start) {
                seen.extend(path.iter().copied());
                let modules: Vec<ModulePath> = path.iter().map(|m| m.to_string()).collect();
                let evidence = (0..modules.len())
                    .map(|i| {
                        let key = (modules[i].clone(), modules[(i + 1) % modules.len()].clone());
                        self.edges[&key][0].clone()
                    })
                    .collect();
                cycles.push(Cycle { modules, evidence });
            }
        }
        cycles
    }

    /// The edges between any two of `modules`, which must not import each
    /// other at all (siblings such as one connection per protocol).
    pub fn edges_among(&self, modules: &[&str]) -> Vec<(ModulePath, ModulePath, Evidence)> {
        let within = |m: &str| modules.iter().find(|s| is_within(m, s)).copied();
        self.edges
            .iter()
            .filter_map(|((from, to), at)| match (within(from), within(to)) {
                (Some(a), Some(b)) if a != b => Some((from.clone(), to.clone(), at[0].clone())),
                _ => None,
            })
            .collect()
    }
}

/// A shortest path from `start` back to itself, if there is one.
fn shortest_loop<'a>(
    next: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    start: &'a str,
) -> Option<Vec<&'a str>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut after = Vec::new();
        for node in frontier {
            for &n in next.get(node).into_iter().flatten() {
                if n == start {
                    let mut path = vec![node];
                    let mut at = node;
                    while at != start {
                        at = parent[at];
                        path.push(at);
                    }
                    path.reverse();
                    return Some(path);
                }
                if !parent.contains_key(n) {
                    parent.insert(n, node);
                    after.push(n);
                }
            }
        }
        frontier = after;
    }
    None
}

/// Whether `module` is `ancestor` or inside it.
fn is_within(module: &str, ancestor: &str) -> bool {
    module
        .strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

fn join(module: &str, segment: &str) -> String {
    if module.is_empty() {
        segment.to_string()
    } else {
        format!("{module}::{segment}")
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// `lib.rs` is the root, `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`.
fn module_of(src: &Path, file: &Path) -> Option<ModulePath> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match stem {
        "lib" | "main" if parts.is_empty() => {}
        "mod" => {}
        other => parts.push(other.to_string()),
    }
    Some(parts.join("::"))
}

/// The code of a file with its comments, strings and characters blanked
/// (newlines kept, so lines still count).
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&ch) => {
                        out.push(blank(ch));
                        j += 1;
                    }
                }
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{..}'), not a lifetime.
            let close = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(end) => i = end + 1,
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Every path into another module that the (stripped) code of `module` names.
fn references_in(
    module: &str,
    code: &str,
    modules: &BTreeMap<ModulePath, PathBuf>,
) -> Vec<Reference> {
    let tokens = tokenize(code);
    let mut out = Vec::new();
    // Inline modules (`mod tests { … }`) open at a brace depth: their
    // `super` is the file's module, their `self` themselves.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = (&tokens[i].0, tokens[i].1);
        let here = inline
            .iter()
            .fold(module.to_string(), |m, (name, _)| join(&m, name));
        match token.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t.0 == "{") => {
                inline.push((tokens[i + 1].0.clone(), depth));
            }
            _ => {}
        }
        let module = here.as_str();
        if token == "use" {
            let reexport = i > 0 && is_visibility_end(&tokens, i);
            let end = (i..tokens.len())
                .find(|&j| tokens[j].0 == ";")
                .unwrap_or(tokens.len());
            let mut paths = Vec::new();
            use_tree(&tokens[i + 1..end], &mut Vec::new(), &mut paths);
            for path in paths {
                if let Some(segments) = absolute(module, &path, modules) {
                    out.push(Reference {
                        segments,
                        line,
                        reexport,
                    });
                }
            }
            i = end;
            continue;
        }
        if (token == "crate" || token == "super" || token == "self")
            && tokens.get(i + 1).is_some_and(|t| t.0 == "::")
            && !(i > 0 && (tokens[i - 1].0 == "$" || tokens[i - 1].0 == "::"))
        {
            let mut path = vec![token.clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t.0 == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(&t.0))
            {
                path.push(tokens[j + 1].0.clone());
                j += 2;
            }
            if let Some(segments) = absolute(module, &path, modules) {
                out.push(Reference {
                    segments,
                    line,
                    reexport: false,
                });
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Whether the `use` at `i` follows a visibility: `pub`, `pub(crate)`,
/// `pub(super)`, `pub(in …)`.
fn is_visibility_end(tokens: &[(String, usize)], i: usize) -> bool {
    match tokens[i - 1].0.as_str() {
        "pub" => true,
        ")" => (0..i - 1)
            .rev()
            .find(|&j| tokens[j].0 == "(")
            .is_some_and(|j| j > 0 && tokens[j - 1].0 == "pub"),
        _ => false,
    }
}

fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Expands a `use` tree (`a::{b, c::{d, e as f}}`) into its paths.
fn use_tree(tokens: &[(String, usize)], prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut i = 0;
    let start = prefix.len();
    while i < tokens.len() {
        let t = tokens[i].0.as_str();
        match t {
            "::" => i += 1,
            "{" => {
                // Split the group on its top-level commas.
                let mut depth = 0;
                let mut from = i + 1;
                let mut j = i + 1;
                while j < tokens.len() {
                    match tokens[j].0.as_str() {
                        "{" => depth += 1,
                        "}" if depth == 0 => {
                            use_tree(&tokens[from..j], prefix, out);
                            break;
                        }
                        "}" => depth -= 1,
                        "," if depth == 0 => {
                            use_tree(&tokens[from..j], prefix, out);
                            from = j + 1;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                prefix.truncate(start);
                return;
            }
            "as" => break,
            "*" => break,
            _ if is_ident(t) => {
                prefix.push(t.to_string());
                i += 1;
            }
            _ => i += 1,
        }
    }
    if prefix.len() > start {
        out.push(prefix.clone());
    }
    prefix.truncate(start);
}

/// `crate::a::b` stays as `a::b`; `super::`, `self::` and a path that starts
/// with a child module's name are made absolute from `module`; a path into
/// another crate is none of ours.
fn absolute(
    module: &str,
    path: &[String],
    modules: &BTreeMap<ModulePath, PathBuf>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) if modules.contains_key(&join(module, first)) => {}
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Identifiers, `::` and single punctuation, each with its line.
fn tokenize(code: &str) -> Vec<(String, usize)> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, n)) = chars.peek() {
                if n.is_alphanumeric() || n == '_' {
                    end = i + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push((code[start..end].to_string(), line));
        } else if c == ':' && chars.peek().is_some_and(|&(_, n)| n == ':') {
            chars.next();
            tokens.push(("::".to_string(), line));
        } else if !c.is_whitespace() {
            tokens.push((c.to_string(), line));
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the testkit sits in the workspace")
            .to_path_buf()
    }

    fn assert_acyclic(crate_src: &str) -> ModuleGraph {
        let graph = ModuleGraph::read(&workspace().join(crate_src)).expect("the sources read");
        assert!(graph.modules.len() > 5, "{crate_src}: too few modules read");
        let cycles = graph.cycles();
        assert!(
            cycles.is_empty(),
            "modules of {crate_src} import each other in a cycle (see docs/architecture.md):\n{}",
            cycles
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        graph
    }

    #[test]
    fn the_core_is_layered() {
        assert_acyclic("core/src");
    }

    #[test]
    fn the_client_is_layered() {
        let graph = assert_acyclic("adapters/client/src");
        let siblings = graph.edges_among(&["conn::h1", "conn::h2", "conn::ws"]);
        assert!(
            siblings.is_empty(),
            "one connection per protocol: conn::h1, conn::h2 and conn::ws never import each other: {siblings:?}"
        );
        // The leaves import nothing above them.
        const LEAVES: [&str; 11] = [
            "error",
            "config",
            "runtime",
            "h1",
            "tls",
            "proxy",
            "resolve",
            "decompress",
            "timeout",
            "session",
            "service",
        ];
        let is_leaf = |m: &str| LEAVES.iter().any(|leaf| is_within(m, leaf));
        let above: Vec<_> = graph
            .edges
            .keys()
            .filter(|(from, to)| is_leaf(from) && !is_leaf(to))
            .collect();
        assert!(above.is_empty(), "a leaf imports from above: {above:?}");
    }

    fn graph_of(files: &[(&str, &str)]) -> ModuleGraph {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("muxpool-layering-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let graph = ModuleGraph::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        graph
    }

    #[test]
    fn a_cycle_through_a_use_tree_and_a_code_path_is_found() {
        let graph = graph_of(&[
            ("lib.rs", "mod a;\nmod b;\npub use a::Thing;\n"),
            ("a.rs", "use crate::{b::{self, Other}};\npub struct Thing;\n"),
            ("b.rs", "// crate::a::Thing in a comment is no edge\nfn f() { let _ = crate::Thing; let _ = \"crate::a\"; }\n"),
        ]);
        let cycles = graph.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].modules.len(), 2);
    }

    #[test]
    fn comments_strings_and_own_reexports_are_no_edges() {
        let graph = graph_of(&[
            ("lib.rs", "mod p;\n"),
            ("p/mod.rs", "mod c;\npub use c::Child;\n/// [`crate::p::c::Child`]\nfn f() { let _ = r#\"super::x\"#; }\n"),
            ("p/c.rs", "use super::Parent;\npub struct Child;\n"),
        ]);
        assert!(graph.cycles().is_empty(), "{:?}", graph.edges);
        assert!(graph
            .edges
            .contains_key(&("p::c".to_string(), "p".to_string())));
    }

    #[test]
    fn super_in_an_inline_module_is_the_file() {
        let graph = graph_of(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::b;\n}\n"),
            ("b.rs", "pub struct B;\n"),
        ]);
        let edges: Vec<_> = graph.edges.keys().cloned().collect();
        assert_eq!(edges, [("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn a_sibling_import_is_seen() {
        let graph = graph_of(&[
            ("lib.rs", "mod conn;\n"),
            ("conn/mod.rs", "mod h1;\nmod h2;\n"),
            ("conn/h1.rs", "pub struct A;\n"),
            ("conn/h2.rs", "use super::h1::A;\n"),
        ]);
        assert_eq!(graph.edges_among(&["conn::h1", "conn::h2"]).len(), 1);
    }
}
