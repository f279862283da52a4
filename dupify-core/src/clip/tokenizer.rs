//! CLIP's byte-level BPE tokenizer, as in OpenAI CLIP / `open_clip.tokenizer.SimpleTokenizer`
//! (<https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py>), which is the token-id
//! reference the tests check against on 1,200 generated strings.
//!
//! Pipeline (same order as `open_clip`'s default `clean="lower"`):
//! 1. `ftfy.fix_text`, reproduced for everything except mojibake repair: HTML entities ending
//!    in `;` (plus upper-cased Latin ones such as `&EACUTE;`, off from the first line holding a
//!    `<`), C1 controls read as Windows-1252, Latin ligatures (`ﬁ` → `fi`), half/full-width
//!    forms (`ＡＢＣ` → `ABC`, U+3000 → space), curly quotes → straight, line breaks, ANSI
//!    terminal escapes, control characters, NFC normalisation, repeated to a fixed point.
//!    **Not reproduced**: ftfy's `fix_encoding` family (mojibake such as `cafÃ©` → `café`,
//!    `restore_byte_a0`, `replace_lossy_sequences`, `decode_inconsistent_utf8`): text that is
//!    mis-decoded UTF-8 is tokenized as written, where `open_clip` would first repair it.
//! 2. `html.unescape` twice (Python's algorithm, including entities without `;`).
//! 3. Whitespace runs (Python's `str.split()` definition) collapse to one space; lower-case.
//! 4. The CLIP split regex, byte-to-unicode mapping, BPE with the 48,894 merges of
//!    `bpe_simple_vocab_16e6.txt.gz`, `<start_of_text>`/`<end_of_text>` around the ids;
//!    truncation to the context length keeps the end token last.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// Merges used by CLIP: the merges file holds more, CLIP's vocabulary stops at 49,408 ids.
const NUM_MERGES: usize = 49152 - 256 - 2;
/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;
const SOT: &str = "<start_of_text>";
const EOT: &str = "<end_of_text>";

/// CLIP's tokenizer. Immutable after construction, so `Send + Sync` and shareable by `Arc`.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    encoder: HashMap<String, u32>,
    /// (left id, right id) → (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Id of each byte's unicode stand-in, without and with the `</w>` suffix.
    byte_ids: [u32; 256],
    byte_ids_end: [u32; 256],
    sot: u32,
    eot: u32,
}

impl ClipTokenizer {
    /// Loads the merges from `bpe_simple_vocab_16e6.txt.gz` (the file in the open-clip-torch
    /// wheel; gzip detected by its magic bytes) or a Hugging Face `merges.txt` (plain text,
    /// same merges).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Storage {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            Error::ModelLoad { reason, .. } => Error::ModelLoad {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// Like [`ClipTokenizer::from_file`], from the file's bytes (gzip or plain).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let text: Cow<'_, str> = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            flate2::read::GzDecoder::new(bytes)
                .read_to_string(&mut s)
                .map_err(|e| bad(format!("merges file: gzip: {e}")))?;
            Cow::Owned(s)
        } else {
            Cow::Borrowed(std::str::from_utf8(bytes).map_err(|e| bad(format!("merges file: {e}")))?)
        };
        // Line 0 is a version header in both formats.
        let merges: Vec<(&str, &str)> = text
            .split('\n')
            .skip(1)
            .filter(|l| !l.is_empty())
            .take(NUM_MERGES)
            .map(|l| {
                let mut it = l.split(' ');
                match (it.next(), it.next(), it.next()) {
                    (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => Ok((a, b)),
                    _ => Err(bad(format!("merges file: bad line `{l}`"))),
                }
            })
            .collect::<Result<_>>()?;
        if merges.len() != NUM_MERGES {
            return Err(bad(format!(
                "merges file has {} merges, CLIP needs {NUM_MERGES}",
                merges.len()
            )));
        }
        let b2u = bytes_to_unicode();
        // Python's dict order: printable bytes first, then the remapped ones (by code point).
        let mut order: Vec<char> = b2u.to_vec();
        order.sort_by_key(|&c| (u32::from(c) > 255, u32::from(c)));
        let mut vocab: Vec<String> = order.iter().map(|c| c.to_string()).collect();
        vocab.extend(order.iter().map(|c| format!("{c}</w>")));
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push(SOT.to_string());
        vocab.push(EOT.to_string());
        let encoder: HashMap<String, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let id = |t: &str| {
            encoder.get(t).copied().ok_or_else(|| {
                bad(format!(
                    "merges file: symbol `{t}` is not in the vocabulary"
                ))
            })
        };
        let mut merge_map = HashMap::with_capacity(NUM_MERGES);
        for (rank, (a, b)) in merges.iter().enumerate() {
            let key = (id(a)?, id(b)?);
            // Python's dict keeps the last rank of a duplicated pair; the first one always
            // wins in `min`, so keep the first.
            merge_map
                .entry(key)
                .or_insert((rank as u32, id(&format!("{a}{b}"))?));
        }
        let mut byte_ids = [0u32; 256];
        let mut byte_ids_end = [0u32; 256];
        for (b, c) in b2u.iter().enumerate() {
            byte_ids[b] = id(&c.to_string())?;
            byte_ids_end[b] = id(&format!("{c}</w>"))?;
        }
        Ok(Self {
            sot: id(SOT)?,
            eot: id(EOT)?,
            encoder,
            merges: merge_map,
            byte_ids,
            byte_ids_end,
        })
    }

    /// Vocabulary size (49,408 for CLIP).
    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    /// Id of `<start_of_text>`.
    pub fn sot_id(&self) -> u32 {
        self.sot
    }

    /// Id of `<end_of_text>`.
    pub fn eot_id(&self) -> u32 {
        self.eot
    }

    /// Token ids of `text`, without start/end tokens and without truncation
    /// (`SimpleTokenizer.encode`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let cleaned = clean(text);
        let mut out = Vec::new();
        for m in split_regex().find_iter(&cleaned) {
            let tok = m.as_str();
            if tok == SOT {
                out.push(self.sot);
            } else if tok == EOT {
                out.push(self.eot);
            } else {
                self.bpe(tok.as_bytes(), &mut out);
            }
        }
        out
    }

    /// `<start_of_text>` + ids + `<end_of_text>`, truncated to `context_len` with the end
    /// token kept last, and padded with 0 to `context_len` (`SimpleTokenizer.__call__`).
    pub fn encode_with_context(&self, text: &str, context_len: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(context_len.max(2));
        ids.push(self.sot);
        ids.extend(self.encode(text));
        ids.push(self.eot);
        if ids.len() > context_len {
            ids.truncate(context_len);
            if let Some(last) = ids.last_mut() {
                *last = self.eot;
            }
        }
        ids.resize(context_len, 0);
        ids
    }

    /// [`ClipTokenizer::encode_with_context`] over a batch: one padded row per text.
    pub fn encode_batch(&self, texts: &[&str], context_len: usize) -> Vec<Vec<u32>> {
        texts
            .iter()
            .map(|t| self.encode_with_context(t, context_len))
            .collect()
    }

    /// Byte-level BPE of one pre-token, appending its ids to `out`.
    fn bpe(&self, token: &[u8], out: &mut Vec<u32>) {
        let Some((&last, init)) = token.split_last() else {
            return;
        };
        let mut word: Vec<u32> = init.iter().map(|&b| self.byte_ids[b as usize]).collect();
        word.push(self.byte_ids_end[last as usize]);
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|w| {
                    self.merges
                        .get(&(w[0], w[1]))
                        .map(|m| (m.0, w[0], w[1], m.1))
                })
                .min_by_key(|m| m.0);
            let Some((_, a, b, merged)) = best else { break };
            let mut next = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == a && word[i + 1] == b {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(word[i]);
                    i += 1;
                }
            }
            word = next;
        }
        out.extend(word);
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::ModelLoad {
        path: "<tokenizer bytes>".into(),
        reason: reason.into(),
    }
}

/// GPT-2/CLIP's reversible byte → printable-unicode table, indexed by byte.
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut n = 0;
    for b in 0u32..256 {
        let cp = if printable(b) {
            b
        } else {
            n += 1;
            255 + n
        };
        table[b as usize] = char::from_u32(cp).unwrap_or('\u{fffd}');
    }
    table
}

fn split_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )
        .expect("the CLIP split regex is valid")
    })
}

// ---- text cleaning ----------------------------------------------------------------------------

/// `whitespace_clean(basic_clean(text)).lower()` of `open_clip`.
pub(crate) fn clean(text: &str) -> String {
    let fixed = ftfy_fix_text(text);
    let once = html_unescape(&fixed).into_owned();
    let unescaped = html_unescape(&once);
    let mut out = String::with_capacity(unescaped.len());
    for word in unescaped.split(is_py_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.to_lowercase()
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+1C..U+1F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `ftfy.fix_text` with the default config, minus `fix_encoding` (see the module docs).
fn ftfy_fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    // ftfy works line by line; HTML unescaping switches off for good at the first line
    // holding a `<` (it may be markup).
    for segment in text.split_inclusive('\n') {
        if segment.contains('<') {
            unescape = false;
        }
        let mut s = segment.to_string();
        // fix_and_explain repeats every fix until nothing changes.
        for _ in 0..32 {
            let next = ftfy_pass(&s, unescape);
            if next == s {
                break;
            }
            s = next;
        }
        out.push_str(&s);
    }
    out
}

fn ftfy_pass(text: &str, unescape: bool) -> String {
    let s: Cow<'_, str> = if unescape {
        ftfy_unescape_html(text)
    } else {
        Cow::Borrowed(text)
    };
    let mut t = String::with_capacity(s.len());
    for c in s.chars() {
        // fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes: all
        // per-character maps, applied in ftfy's order.
        let c = c1_to_cp1252(c);
        match c {
            'Ĳ' => t.push_str("IJ"),
            'ĳ' => t.push_str("ij"),
            'ŉ' => t.push_str("ʼn"),
            'Ǳ' => t.push_str("DZ"),
            'ǲ' => t.push_str("Dz"),
            'ǳ' => t.push_str("dz"),
            'Ǆ' => t.push_str("DŽ"),
            'ǅ' => t.push_str("Dž"),
            'ǆ' => t.push_str("dž"),
            'Ǉ' => t.push_str("LJ"),
            'ǈ' => t.push_str("Lj"),
            'ǉ' => t.push_str("lj"),
            'Ǌ' => t.push_str("NJ"),
            'ǋ' => t.push_str("Nj"),
            'ǌ' => t.push_str("nj"),
            'ﬀ' => t.push_str("ff"),
            'ﬁ' => t.push_str("fi"),
            'ﬂ' => t.push_str("fl"),
            'ﬃ' => t.push_str("ffi"),
            'ﬄ' => t.push_str("ffl"),
            'ﬅ' => t.push_str("ſt"),
            'ﬆ' => t.push_str("st"),
            '\u{3000}' => t.push(' '),
            '\u{ff01}'..='\u{ffef}' => {
                // ftfy's width map: the NFKC form of every changed char in this block.
                let mut buf = [0u8; 4];
                let one: &str = c.encode_utf8(&mut buf);
                let nfkc: String = one.nfkc().collect();
                if nfkc != one {
                    push_uncurled(&mut t, &nfkc);
                } else {
                    t.push(c);
                }
            }
            _ => push_uncurled_char(&mut t, c),
        }
    }
    // fix_line_breaks
    let t = t
        .replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
    // remove_terminal_escapes
    let t = ansi_regex().replace_all(&t, "");
    // remove_control_chars
    let t: String = t.chars().filter(|&c| !is_ftfy_control(c)).collect();
    // normalization = NFC
    t.nfc().collect()
}

fn push_uncurled(t: &mut String, s: &str) {
    for c in s.chars() {
        push_uncurled_char(t, c);
    }
}

fn push_uncurled_char(t: &mut String, c: char) {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => t.push('\''),
        '\u{201c}'..='\u{201f}' => t.push('"'),
        _ => t.push(c),
    }
}

fn ansi_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new("\x1b\\[((?:\\d|;)*)([a-zA-Z])").expect("valid regex"))
}

fn is_ftfy_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}'
        | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
}

/// Windows-1252 reading of a C1 control (ftfy's "sloppy" codec keeps the five undefined
/// bytes as they are). Python's `html._invalid_charrefs` is the same table.
fn c1_to_cp1252(c: char) -> char {
    const TABLE: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    let cp = c as u32;
    if (0x80..=0x9f).contains(&cp) {
        TABLE[(cp - 0x80) as usize]
    } else {
        c
    }
}

/// ftfy's `unescape_html`: `&name;` entities of HTML5, a limited set of upper-cased ones, and
/// numeric references that decode completely.
fn ftfy_unescape_html(text: &str) -> Cow<'_, str> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").expect("valid regex"));
    re.replace_all(text, |caps: &regex::Captures<'_>| {
        let m = &caps[0];
        if let Some(v) = entity(m) {
            return v.to_string();
        }
        if let Some(v) = upper_entity(m) {
            return v;
        }
        if m.starts_with("&#") {
            let u = html_unescape(m);
            if !u.contains(';') {
                return u.into_owned();
            }
        }
        m.to_string()
    })
}

/// Value of an HTML5 named entity written with its `&` (and `;` if it has one).
fn entity(name: &str) -> Option<&'static str> {
    htmlize::ENTITIES
        .get(name.as_bytes())
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// ftfy decodes `&EACUTE;` as `É`: an all-caps spelling of a lower-case entity name, when the
/// caps spelling is not itself an entity (or a prefix-decodable one).
fn upper_entity(m: &str) -> Option<String> {
    if m.chars().any(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let lower = m.to_ascii_lowercase();
    let v = entity(&lower)?;
    if html_unescape(m) != m {
        return None;
    }
    Some(v.to_uppercase())
}

/// Python's `html.unescape` (3.11), character for character.
pub(crate) fn html_unescape(s: &str) -> Cow<'_, str> {
    static RE: OnceLock<Regex> = OnceLock::new();
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let re = RE.get_or_init(|| {
        Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0c <&#;]{1,32};?)")
            .expect("valid regex")
    });
    re.replace_all(s, |caps: &regex::Captures<'_>| replace_charref(&caps[1]))
}

fn replace_charref(s: &str) -> String {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix) = match num.strip_prefix(['x', 'X']) {
            Some(h) => (h, 16),
            None => (num, 10),
        };
        let digits = digits.trim_end_matches(';');
        // Anything past U+10FFFF is replaced; saturate instead of overflowing.
        let n = u32::from_str_radix(digits, radix).unwrap_or(u32::MAX);
        if n == 0 {
            return "\u{fffd}".into();
        }
        if n == 0x0d {
            return "\r".into();
        }
        if (0x80..=0x9f).contains(&n) {
            return c1_to_cp1252(char::from_u32(n).unwrap_or('\u{fffd}')).to_string();
        }
        if (0xd800..=0xdfff).contains(&n) || n > 0x10ffff {
            return "\u{fffd}".into();
        }
        let invalid = matches!(n, 0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef)
            || (n & 0xfffe) == 0xfffe;
        if invalid {
            return String::new();
        }
        return char::from_u32(n).map(String::from).unwrap_or_default();
    }
    let full = format!("&{s}");
    if let Some(v) = entity(&full) {
        return v.to_string();
    }
    // Longest prefix that is an entity (only the legacy ones without `;` can match).
    let idx: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    for x in (2..idx.len()).rev() {
        if let Some(v) = entity(&full[..1 + idx[x]]) {
            return format!("{v}{}", &s[idx[x]..]);
        }
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_onto_printables() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], 'Ġ');
        let mut seen: Vec<char> = t.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn html_unescape_follows_python() {
        // Expected values from Python 3.11 `html.unescape`.
        for (i, o) in [
            ("&amp;", "&"),
            ("&amp", "&"),
            ("&ampfoo", "&foo"),
            ("&notit;", "¬it;"),
            ("&#39;", "'"),
            ("&#x1F600;", "😀"),
            ("&#128;", "€"),
            ("&#0;", "\u{fffd}"),
            ("&#1;", ""),
            ("&#x110000;", "\u{fffd}"),
            ("&#99999999999999999999;", "\u{fffd}"),
            ("&nosuch;", "&nosuch;"),
            ("a & b", "a & b"),
            ("&eacute", "é"),
        ] {
            assert_eq!(html_unescape(i), o, "{i}");
        }
    }

    #[test]
    fn cleaning_reproduces_the_simple_ftfy_fixes() {
        assert_eq!(clean("  Levi’s\t“501”\n"), "levi's \"501\"");
        assert_eq!(clean("ＡＢＣ\u{3000}ﬁne"), "abc fine");
        assert_eq!(clean("P&EACUTE;REZ &amp;amp; co"), "pérez & co");
        assert_eq!(clean("e\u{301}te\u{301}"), "été");
        assert_eq!(clean("a\x1b[31mred\x1b[0m\u{feff}"), "ared");
    }
}
