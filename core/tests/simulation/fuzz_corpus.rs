//! Replays the committed fuzz corpus (`fuzz/corpus/pool_ops/`) through the same
//! entry point as the `pool_ops` fuzz target, on stable, so that every input the
//! fuzzer found interesting stays checked by every test run.
//!
//! `MUXPOOL_FUZZ_INPUT=path cargo test -p muxpool-core --all-features --test simulation -- --ignored input --nocapture`
//! prints the trace of one input (a crash artifact, say) and its verdict.

use std::fs;
use std::path::{Path, PathBuf};

use muxpool_core::sim::fuzz;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pool_ops");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_replays_clean() {
    let files = corpus();
    assert!(files.len() >= 20, "the corpus holds {} inputs", files.len());
    for path in files {
        let data = fs::read(&path).expect("readable corpus file");
        if let (trace, Err(violation)) = fuzz::trace(&data) {
            let tail = &trace[trace.len().saturating_sub(40)..];
            panic!("{}\n{}: {violation}", tail.join("\n"), path.display());
        }
    }
}

/// A tool rather than a test: prints the trace of the input at
/// `MUXPOOL_FUZZ_INPUT` and fails with its violation, if any.
#[test]
#[ignore = "a tool: MUXPOOL_FUZZ_INPUT=path cargo test -p muxpool-core --all-features --test simulation -- --ignored input --nocapture"]
fn input() {
    let path = PathBuf::from(
        std::env::var_os("MUXPOOL_FUZZ_INPUT")
            .expect("MUXPOOL_FUZZ_INPUT names the input to trace"),
    );
    // Cargo runs the test in the core's directory; a relative path is the
    // workspace's, where the command is typed.
    let path = match path.is_relative() {
        true => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path),
        false => path,
    };
    let data = fs::read(&path).expect("readable input");
    let (trace, result) = fuzz::trace(&data);
    trace.iter().for_each(|line| println!("{line}"));
    if let Err(violation) = result {
        panic!("{violation}");
    }
}
