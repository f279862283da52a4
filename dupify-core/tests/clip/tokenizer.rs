//! Token ids of the Rust CLIP tokenizer vs `open_clip.tokenizer.SimpleTokenizer` on the
//! 1,200-string corpus written by `weights/gen_clip.py` (product titles, accents, CJK, emoji,
//! punctuation runs, HTML entities, curly quotes, control characters, over-long inputs).

use std::path::PathBuf;

use dupify_core::clip::{ClipTokenizer, BPE_FILE};

fn clip_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../weights/test/clip");
    assert!(
        d.join("tokenizer_corpus.json").is_file(),
        "missing {}: run scripts/setup.sh (weights/gen_clip.py) first",
        d.display()
    );
    d
}

fn tokenizer() -> ClipTokenizer {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../weights")
        .join(BPE_FILE);
    ClipTokenizer::from_file(&p)
        .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh to put {BPE_FILE} in weights/"))
}

#[test]
fn ids_match_open_clip_on_the_generated_corpus() {
    let corpus: serde_json::Value = serde_json::from_slice(
        &std::fs::read(clip_dir().join("tokenizer_corpus.json")).expect("read corpus"),
    )
    .expect("corpus is JSON");
    let ctx = corpus["context_length"].as_u64().expect("context_length") as usize;
    let items = corpus["items"].as_array().expect("items");
    assert!(
        items.len() >= 1000,
        "corpus has only {} strings",
        items.len()
    );
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 49408);
    let ids_of = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    let mut bad = Vec::new();
    let mut truncated = 0;
    for it in items {
        let text = it["text"].as_str().expect("text");
        let want = ids_of(&it["ids"]);
        let want_row = ids_of(&it["row"]);
        if want.len() + 2 > ctx {
            truncated += 1;
        }
        let got = tok.encode(text);
        let got_row = tok.encode_with_context(text, ctx);
        if got != want || got_row != want_row {
            bad.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        truncated >= 50,
        "corpus should exercise truncation, has {truncated}"
    );
    assert!(
        bad.is_empty(),
        "{} of {} strings differ from open_clip, first ones:\n{}",
        bad.len(),
        items.len(),
        bad.iter().take(8).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn rows_carry_start_and_end_tokens_and_truncate_keeping_the_end() {
    let tok = tokenizer();
    let row = tok.encode_with_context("a photo of a dress", 77);
    assert_eq!(row.len(), 77);
    assert_eq!(row[0], tok.sot_id());
    assert_eq!(row[6], tok.eot_id(), "sot + 5 words + eot");
    assert!(row[7..].iter().all(|&x| x == 0));
    let long = "dress ".repeat(200);
    let row = tok.encode_with_context(&long, 77);
    assert_eq!((row[0], row[76]), (tok.sot_id(), tok.eot_id()));
    let batch = tok.encode_batch(&["a", "b c"], 8);
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(|r| r.len() == 8));
}

#[test]
fn bad_merges_files_are_refused() {
    assert!(ClipTokenizer::from_bytes(b"").is_err());
    assert!(ClipTokenizer::from_bytes(b"#version\na b\n").is_err());
    assert!(ClipTokenizer::from_bytes(&[0x1f, 0x8b, 0, 1, 2]).is_err());
    // A missing tokenizer file is a broken model installation (the library's own file), not a
    // bad request: a server answers it with 500, never blames the caller.
    let e = ClipTokenizer::from_file("/nonexistent/merges.txt").unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("internal_error", 500));
    assert!(e.to_string().contains("/nonexistent/merges.txt"), "{e}");
}
