//! The module graph of `src/` has no cycle, between files and between top-level modules.
//!
//! A cycle is how a layered design quietly stops being one: once `error` imports `sink` and
//! `sink` imports `error`, neither can be understood, tested or moved alone. ARCHITECTURE.md
//! states the layering; this test holds the code to it on every run, with no tool beyond the
//! Rust toolchain. `cargo test --test module_graph -- --nocapture` prints the graph.
//!
//! What counts as an edge: every path a file names through `crate::`, `super::` or `self::`,
//! in `use` trees (braces expanded) and inline, and `use child::…` of a module's own child.
//! A path points at the deepest module file it names. Two readings of the graph:
//! - **files:** a folder's `mod.rs` declaring and re-exporting its own children is ownership,
//!   not use, so those edges are left out; every other edge counts, children naming their
//!   parent's types included. No cycle may remain.
//! - **top-level modules:** a folder counts as one module (`sink/*` is `sink`); the crate root
//!   `lib.rs` is left out. No cycle at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Module = Vec<String>;

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// Enough of Rust's lexer to find paths: comments, strings and char literals are skipped, so
/// a `crate::` inside a doc comment or a message is not an edge.
fn tokens(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
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
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && raw_string_end(&chars, i).is_some()
        {
            i = raw_string_end(&chars, i).unwrap_or(i + 1);
            out.push(Token::Other);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Token::Other);
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1F}') or a lifetime ('a): skip the literal only.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
            out.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && next == Some(':') {
            i += 2;
            out.push(Token::PathSep);
        } else {
            i += 1;
            out.push(match c {
                '{' => Token::Open,
                '}' => Token::Close,
                ',' => Token::Comma,
                ';' => Token::Semi,
                '*' => Token::Star,
                c if c.is_whitespace() => continue,
                _ => Token::Other,
            });
        }
    }
    out
}

/// Where a raw string `r"…"` or `r#"…"#` starting at `i` ends, if it is one.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    loop {
        if *chars.get(j)? == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
}

/// Expands a `use` tree from `tokens[*at]` into full paths (`a::{b, c::d}` is `a::b`, `a::c::d`).
fn use_tree(tokens: &[Token], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*at) {
            Some(Token::Ident(name)) if name == "as" => {
                *at += 2;
                out.push(path);
                return;
            }
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                *at += 1;
            }
            Some(Token::PathSep) => *at += 1,
            Some(Token::Star) => {
                *at += 1;
                out.push(path);
                return;
            }
            Some(Token::Open) => {
                *at += 1;
                loop {
                    match tokens.get(*at) {
                        Some(Token::Close) => {
                            *at += 1;
                            return;
                        }
                        Some(Token::Comma) => *at += 1,
                        None => return,
                        _ => use_tree(tokens, at, &path, out),
                    }
                }
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Every path the file names, as written: `use` trees expanded, and inline `a::b::c`. Each
/// comes with the inline modules (`mod tests { … }`) it sits in, which `super::` counts from.
fn paths(src: &str) -> Vec<(Module, Vec<String>)> {
    let tokens = tokens(src);
    let mut out = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut at = 0;
    let here = |inline: &[(String, usize)]| inline.iter().map(|(m, _)| m.clone()).collect();
    while at < tokens.len() {
        match &tokens[at] {
            Token::Open => {
                depth += 1;
                at += 1;
            }
            Token::Close => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                at += 1;
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(at + 1), tokens.get(at + 2))
                {
                    inline.push((name.clone(), depth));
                }
                at += 1;
            }
            Token::Ident(word) if word == "use" => {
                at += 1;
                let mut trees = Vec::new();
                use_tree(&tokens, &mut at, &[], &mut trees);
                out.extend(trees.into_iter().map(|t| (here(&inline), t)));
            }
            Token::Ident(word)
                if word != "use"
                    && tokens.get(at + 1) == Some(&Token::PathSep)
                    && (at == 0 || tokens[at - 1] != Token::PathSep) =>
            {
                let mut path = vec![word.clone()];
                at += 1;
                while tokens.get(at) == Some(&Token::PathSep) {
                    match tokens.get(at + 1) {
                        Some(Token::Ident(name)) => path.push(name.clone()),
                        _ => break,
                    }
                    at += 2;
                }
                out.push((here(&inline), path));
            }
            _ => at += 1,
        }
    }
    out
}

/// The module each file under `src/` is (`sink/audiocodes/mod.rs` is `sink::audiocodes`).
fn modules(root: &Path) -> BTreeMap<Module, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<Module, String>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .expect("src/ is readable")
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(root).expect("under src/");
            let mut module: Module = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            if module == ["main"] {
                // The binary names the library as `dialsync::`, never `crate::`.
                continue;
            }
            let text = fs::read_to_string(&path).expect("source file is readable");
            out.insert(module, text);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Whether `module` is a folder's `mod.rs` (it has children), so `use child::…` is its own.
fn children(module: &Module, all: &BTreeMap<Module, String>) -> BTreeSet<String> {
    all.keys()
        .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
        .map(|m| m[module.len()].clone())
        .collect()
}

/// The file-level dependency graph: which module files each module file names.
fn file_graph(all: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut graph = BTreeMap::new();
    for (module, text) in all {
        let own_children = children(module, all);
        let mut targets = BTreeSet::new();
        for (inline, path) in paths(text) {
            let Some(first) = path.first() else { continue };
            // Inside `mod tests { … }`, `super::` is the file's own module.
            let here: Module = module.iter().chain(&inline).cloned().collect();
            let mut absolute: Module = match first.as_str() {
                "crate" => Vec::new(),
                "self" | "super" => here.clone(),
                name if inline.is_empty() && own_children.contains(name) => {
                    // `use child::…` in a facade: ownership, left out (see the module doc).
                    continue;
                }
                _ => continue,
            };
            let mut rest = &path[1..];
            if first == "super" {
                absolute.pop();
                while rest.first().map(String::as_str) == Some("super") {
                    absolute.pop();
                    rest = &rest[1..];
                }
            }
            absolute.extend(rest.iter().cloned());
            let deepest = (0..=absolute.len())
                .rev()
                .map(|n| absolute[..n].to_vec())
                .find(|m| all.contains_key(m));
            let Some(target) = deepest else { continue };
            let parent_owns_child = target.len() == module.len() + 1 && target.starts_with(module);
            if target != *module && !target.is_empty() && !parent_owns_child {
                targets.insert(target);
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The same graph with each file folded into its top-level module.
fn top_level_graph(
    files: &BTreeMap<Module, BTreeSet<Module>>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in files {
        let Some(from) = from.first() else { continue };
        let entry = graph.entry(from.clone()).or_default();
        for to in targets {
            if let Some(to) = to.first() {
                if to != from {
                    entry.insert(to.clone());
                }
            }
        }
    }
    graph
}

/// One cycle of the graph, as the list of nodes around it, if there is any.
fn find_cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<N: Ord + Clone>(
        node: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        marks: &mut BTreeMap<N, Mark>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// Every group of nodes that reach each other (strongly connected, more than one node).
fn tangles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Vec<BTreeSet<N>> {
    let reach = |from: &N| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(node) = todo.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&N, BTreeSet<N>> = graph.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<BTreeSet<N>> = Vec::new();
    for (node, seen) in &reaches {
        if out.iter().any(|t| t.contains(*node)) {
            continue;
        }
        let tangle: BTreeSet<N> = seen
            .iter()
            .filter(|other| reaches.get(other).is_some_and(|r| r.contains(*node)))
            .cloned()
            .collect();
        if tangle.len() > 1 {
            out.push(tangle);
        }
    }
    out
}

fn src() -> BTreeMap<Module, String> {
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_two_files_of_src_depend_on_each_other_even_through_others() {
    let files = file_graph(&src());
    if let Some(cycle) = find_cycle(&files) {
        let name = |m: &Module| m.join("::");
        let tangles: Vec<String> = tangles(&files)
            .iter()
            .map(|t| t.iter().map(name).collect::<Vec<_>>().join(", "))
            .collect();
        panic!(
            "files of src/ import each other in a circle: {}\nall tangles:\n{}",
            cycle.iter().map(name).collect::<Vec<_>>().join(" -> "),
            tangles.join("\n")
        );
    }
}

#[test]
fn the_top_level_modules_form_layers() {
    let top = top_level_graph(&file_graph(&src()));
    for (from, to) in &top {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("{from:>9} -> {}", to.join(", "));
    }
    if let Some(cycle) = find_cycle(&top) {
        panic!(
            "top-level modules import each other in a circle: {}\nall tangles: {:?}",
            cycle.join(" -> "),
            tangles(&top)
        );
    }
}

/// Which top-level modules name a path starting with `prefix` (`["rusqlite"]`, `["std", "fs"]`).
fn modules_naming(all: &BTreeMap<Module, String>, prefix: &[&str]) -> BTreeSet<String> {
    all.iter()
        .filter(|(_, text)| {
            paths(text).iter().any(|(_, path)| {
                path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
            })
        })
        .map(|(module, _)| module.first().cloned().unwrap_or_else(|| "lib".into()))
        .collect()
}

/// The pure core does no I/O and reads no clock (ARCHITECTURE.md, invariants).
#[test]
fn the_core_does_no_io_and_reads_no_clock() {
    let all = src();
    let core = [
        "number", "dialplan", "index", "resolve", "compile", "plan", "audit",
    ];
    for io in [
        &["tokio"][..],
        &["reqwest"],
        &["rusqlite"],
        &["axum"],
        &["std", "fs"],
        &["std", "net"],
        &["std", "env"],
        &["std", "process"],
        &["std", "time", "Instant"],
        &["std", "time", "SystemTime"],
    ] {
        let offenders: Vec<String> = modules_naming(&all, io)
            .into_iter()
            .filter(|m| core.contains(&m.as_str()))
            .collect();
        assert!(offenders.is_empty(), "{offenders:?} name {}", io.join("::"));
    }
}

/// SQL in `store` only; HTTP clients in `net`, `source` and `sink` only (servers: the admin
/// port and the emulators).
#[test]
fn only_the_store_speaks_sql_and_only_the_edges_speak_http() {
    let all = src();
    let sql: Vec<String> = modules_naming(&all, &["rusqlite"]).into_iter().collect();
    assert_eq!(sql, ["store"]);
    let http: Vec<String> = modules_naming(&all, &["reqwest"]).into_iter().collect();
    assert_eq!(http, ["net", "sink", "source"]);
    let servers: Vec<String> = modules_naming(&all, &["axum"]).into_iter().collect();
    assert_eq!(servers, ["app", "sim"]);
}

/// The checker itself must see the edges it is meant to see, or a green run proves nothing.
#[test]
fn the_checker_finds_a_planted_cycle_and_reads_use_trees() {
    let mut all = BTreeMap::new();
    let module = |s: &str| s.split("::").map(String::from).collect::<Module>();
    all.insert(
        module("a"),
        "use crate::{b::{Thing, other as o}, c};\n// crate::d\n".to_string(),
    );
    all.insert(
        module("b"),
        "fn f() { let s = \"crate::c\"; crate::a::g(); std::fs::read(s); }".to_string(),
    );
    all.insert(
        module("c"),
        "use super::b::x;\nmod tests { use super::*; }".to_string(),
    );
    all.insert(module("c::inner"), "use super::super::a;".to_string());
    all.insert(module("d"), "pub mod x;".to_string());
    let files = file_graph(&all);
    assert_eq!(
        files[&module("a")],
        [module("b"), module("c")].into_iter().collect()
    );
    assert_eq!(files[&module("b")], [module("a")].into_iter().collect());
    assert_eq!(
        files[&module("c::inner")],
        [module("a")].into_iter().collect()
    );
    assert!(find_cycle(&files).is_some());
    assert_eq!(
        modules_naming(&all, &["std", "fs"]),
        ["b".to_string()].into()
    );
    assert_eq!(
        tangles(&files),
        vec![[module("a"), module("b"), module("c")]
            .into_iter()
            .collect()]
    );
    let top = top_level_graph(&files);
    assert!(top["c"].contains("a"), "c::inner folds into c: {top:?}");

    all.insert(module("b"), String::new());
    all.insert(module("c"), String::new());
    all.insert(module("c::inner"), String::new());
    assert_eq!(find_cycle(&file_graph(&all)), None);
}
