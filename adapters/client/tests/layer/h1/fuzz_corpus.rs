//! Replays the committed corpus of the `h1_response` fuzz target
//! (`fuzz/corpus/h1_response/`) through the same harness the fuzzer runs, so
//! every input it ever kept, and every crash it found, is a test on stable.

use std::path::Path;

use muxpool_client::h1::harness;

#[test]
fn the_h1_response_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/h1_response");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a readable input");
        let replayed = std::panic::catch_unwind(|| harness::fuzz(&data));
        assert!(replayed.is_ok(), "{} fails", path.display());
        inputs += 1;
    }
    assert!(inputs >= 7, "the corpus is there: {inputs} inputs");
}
