//! The layers of ARCHITECTURE.md, enforced: a module may use the modules of its own layer and
//! of the layers below it, never one above. The violations that exist today are listed with
//! their reason; a new one fails this test, and so does a listed one that is gone (so the list
//! only shrinks).

use std::collections::{BTreeMap, BTreeSet};

/// Lowest first. Same number: the same layer.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("config", 1),
    ("telemetry", 1),
    ("notify", 1),
    ("metrics", 2),
    ("http", 3),
    ("store", 4),
    ("sources", 5),
    ("targets", 5),
    ("sandbox", 5),
    ("sync", 6),
    ("push", 6),
    ("webhook", 6),
    ("ops", 6),
    ("daemon", 7),
    ("console", 7),
    ("cli", 8),
];

/// Upward imports allowed for now, each with its reason. Empty since the daemon, the planner and
/// the metrics endpoints moved (issue 12, "layers that cannot loop"); keep it that way.
const KNOWN: &[(&str, &str, &str)] = &[];

/// The modules of `crate::` that `module`'s non-test code names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules may use anything.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for line in code.lines() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        out.entry(module.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let known: BTreeSet<(&str, &str)> = KNOWN.iter().map(|(a, b, _)| (*a, *b)).collect();
    let edges = edges();
    let mut found = BTreeSet::new();
    for (from, tos) in &edges {
        let Some(&lf) = layer.get(from.as_str()) else {
            panic!("module {from} has no layer: add it to LAYERS and ARCHITECTURE.md");
        };
        for to in tos {
            let Some(&lt) = layer.get(to.as_str()) else {
                panic!("module {to} (used by {from}) has no layer");
            };
            if lt > lf {
                found.insert((from.clone(), to.clone()));
            }
        }
    }
    let new: Vec<_> = found
        .iter()
        .filter(|(a, b)| !known.contains(&(a.as_str(), b.as_str())))
        .collect();
    assert!(
        new.is_empty(),
        "lower layers import higher ones (see ARCHITECTURE.md, Layers): {new:?}"
    );
    let stale: Vec<_> = known
        .iter()
        .filter(|(a, b)| !found.contains(&(a.to_string(), b.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "these known violations are gone; remove them from KNOWN and ARCHITECTURE.md: {stale:?}"
    );
}

#[test]
fn the_store_knows_only_the_model() {
    // It hands offers to a `model::Planner` and writes what it decides: no config, no planner
    // rules, no platform, no HTTP.
    let edges = edges();
    let used: Vec<&String> = edges["store"].iter().filter(|m| *m != "model").collect();
    assert!(used.is_empty(), "the store names {used:?}");
}
