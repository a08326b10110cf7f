//! The layering of gpubox's modules, checked on the source: every `crate::<module>` a file names
//! must be an edge the table below allows, and the allowed edges themselves have no cycle. The
//! same table is drawn in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and the modules it may use. Lower layers first.
const LAYERS: &[(&str, &[&str])] = &[
    // Leaves: the HTTP vocabulary (errors, cookies, headers, coding, pages, the route record),
    // random ids, sizes and durations for people, the configuration, and child processes.
    ("http", &[]),
    ("random", &[]),
    ("human", &[]),
    ("config", &[]),
    // Child processes: spawning (sessions, PTYs, users) and reaping.
    ("process", &[]),
    // Files written whole (a temporary name, then a rename).
    ("atomic", &[]),
    ("logs", &["config"]),
    ("auth", &["config", "random", "atomic"]),
    ("supervisor", &["config", "process", "logs", "human"]),
    // The tunnels' public addresses, read from cloudflared's output.
    ("tunnels", &["config", "logs", "supervisor"]),
    // The machine's and GPUs' history; alerts and the idle stop, which watch the services, the
    // logs and the history and are told of activity by the apps, the proxy and the gateway.
    ("metrics", &["config", "supervisor", "atomic"]),
    ("alerts", &["config", "process", "logs", "supervisor", "metrics", "human"]),
    ("provision", &["config", "logs", "supervisor", "http", "human"]),
    ("control", &["config", "process", "logs", "supervisor", "tunnels", "http", "human"]),
    ("proxy", &["config", "logs", "supervisor", "http", "human", "alerts"]),
    (
        "apps",
        &[
            "config",
            "process",
            "logs",
            "supervisor",
            "tunnels",
            "auth",
            "provision",
            "http",
            "random",
            "human",
            "metrics",
            "alerts",
        ],
    ),
    (
        "gateway",
        &[
            "config",
            "logs",
            "supervisor",
            "tunnels",
            "auth",
            "http",
            "apps",
            "proxy",
            "human",
            "metrics",
            "alerts",
            "atomic",
        ],
    ),
    (
        "cli",
        &[
            "config",
            "process",
            "logs",
            "supervisor",
            "tunnels",
            "auth",
            "http",
            "provision",
            "control",
            "gateway",
            "human",
            "alerts",
        ],
    ),
];

/// Every `crate::x` named in `text`, `use crate::{a, b}` included.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let m: String = part.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !m.is_empty() {
                    out.insert(m);
                }
            }
        } else {
            let m: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !m.is_empty() {
                out.insert(m);
            }
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_import_follows_the_layer_table_and_the_table_has_no_cycle() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut bad = Vec::new();
    let mut seen = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(may) = allowed.get(top.as_str()) else {
            bad.push(format!("{}: module `{top}` is not in the layer table", rel.display()));
            continue;
        };
        for to in named(&std::fs::read_to_string(f).unwrap()) {
            seen += 1;
            if to != top && !may.contains(&to.as_str()) {
                bad.push(format!(
                    "{}: `{top}` uses `crate::{to}`, which the layer table does not allow",
                    rel.display()
                ));
            }
        }
    }
    assert!(seen > 50, "the scan found only {seen} crate paths");
    assert!(bad.is_empty(), "{}", bad.join("\n"));

    // No cycle: each module's allowed modules come earlier in the table.
    for (i, (m, may)) in LAYERS.iter().enumerate() {
        for d in *may {
            let j = LAYERS.iter().position(|(n, _)| n == d).unwrap_or_else(|| panic!("{m} allows unknown {d}"));
            assert!(j < i, "`{m}` may use `{d}`, which comes later: a cycle is possible");
        }
    }
}

#[test]
fn the_scanner_sees_groups_and_paths() {
    let found = named("use crate::{config, http::pages};\nlet x = crate::gateway::Site;");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["config", "gateway", "http"]);
}
