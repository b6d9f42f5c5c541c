//! Vocabulary and small formatters for realistic generated text: titles, snippets, tweets,
//! urls, handles, ISO dates, base64 blobs. All of it is static data and string pushes, because
//! it runs inside every simulated call.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

/// Pick one element of a non-empty static list.
pub(crate) fn pick<'a>(rng: &mut ChaCha8Rng, list: &'a [&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

pub(crate) const TITLE_TAILS: &[&str] = &[
    "what the latest upgrade means for miners",
    "a practical guide for 2026",
    "emissions, stake and the road ahead",
    "five things developers should know",
    "how validators score quality",
    "benchmarks, costs and trade-offs",
    "community call recap",
    "why builders are paying attention",
    "an explainer for newcomers",
    "market outlook and on-chain data",
    "lessons from the first hundred days",
    "inside the incentive mechanism",
];

pub(crate) const SENTENCES: &[&str] = &[
    "Analysts expect activity to keep growing as inference costs fall",
    "The subnet rewards miners that return accurate results quickly",
    "Validators re-run a sample of requests to check honesty",
    "Developers can reach it through a simple HTTP API",
    "Stake has moved steadily towards the best performing subnets",
    "The team published new benchmarks and an updated roadmap",
    "Latency dropped after the last release while quality improved",
    "Several applications already route production traffic through it",
    "Critics point out that pricing is still hard to compare",
    "The documentation covers authentication, limits and examples",
    "Community members shared dashboards tracking daily usage",
    "A new version of the protocol is planned for next quarter",
];

pub(crate) const WORDS: &[&str] = &[
    "network",
    "model",
    "subnet",
    "miner",
    "validator",
    "stake",
    "emission",
    "inference",
    "latency",
    "quality",
    "market",
    "data",
    "search",
    "agent",
    "token",
    "reward",
    "protocol",
    "open",
    "decentralised",
    "compute",
    "research",
    "signal",
    "result",
    "query",
    "score",
    "update",
    "release",
    "price",
    "demand",
    "growth",
];

pub(crate) const DOMAINS: &[&str] = &[
    "docs.bittensor.com",
    "www.coindesk.com",
    "taostats.io",
    "github.com/opentensor",
    "medium.com/@opentensor",
    "www.reddit.com/r/bittensor_",
    "news.ycombinator.com",
    "arxiv.org/abs",
    "www.theblock.co",
    "blog.macrocosmos.ai",
];

pub(crate) const HANDLES: &[&str] = &[
    "opentensor",
    "taodaily",
    "subnet_watch",
    "const_reborn",
    "mog_machine",
    "neural_nomad",
    "ai_alice",
    "chain_bob",
    "datura_ai",
    "macrocosmos",
    "chutes_ai",
    "manifoldlabs",
];

pub(crate) const HASHTAGS: &[&str] = &[
    "#bittensor",
    "#TAO",
    "#DeAI",
    "#AI",
    "#crypto",
    "#opensource",
];

pub(crate) const MODELS: &[&str] = &[
    "unsloth/Llama-3.2-3B-Instruct",
    "deepseek-ai/DeepSeek-V3",
    "Qwen/Qwen2.5-72B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
];

pub(crate) const LANGS: &[&str] = &["en", "de", "fr", "es", "it", "pt", "nl", "ja"];

pub(crate) const SOURCES: &[&str] = &["X", "REDDIT", "web", "news"];

pub(crate) const LABELS: &[&str] = &["positive", "neutral", "negative", "news", "question"];

/// A few common words per target language, so translations look like that language.
pub(crate) fn lang_words(lang: &str) -> &'static [&'static str] {
    match lang {
        "de" => &[
            "das", "Netzwerk", "ist", "schnell", "und", "offen", "für", "alle", "Daten", "Hallo",
        ],
        "fr" => &[
            "le", "réseau", "est", "rapide", "et", "ouvert", "pour", "tous", "données", "bonjour",
        ],
        "es" => &[
            "la", "red", "es", "rápida", "y", "abierta", "para", "todos", "datos", "hola",
        ],
        "it" => &[
            "la", "rete", "è", "veloce", "e", "aperta", "per", "tutti", "dati", "ciao",
        ],
        "pt" => &[
            "a", "rede", "é", "rápida", "e", "aberta", "para", "todos", "dados", "olá",
        ],
        "nl" => &[
            "het", "netwerk", "is", "snel", "en", "open", "voor", "iedereen", "gegevens", "hallo",
        ],
        _ => WORDS,
    }
}

/// Push `n` space-separated words from `list`.
pub(crate) fn push_words(out: &mut String, rng: &mut ChaCha8Rng, list: &[&str], n: usize) {
    for i in 0..n {
        if i > 0 || !out.is_empty() {
            out.push(' ');
        }
        out.push_str(list[rng.random_range(0..list.len())]);
    }
}

/// Push `topic` with its first letter upper-cased.
pub(crate) fn push_capitalised(out: &mut String, topic: &str) {
    let mut chars = topic.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// Push a url-safe slug of `topic` (lower-case ASCII alphanumerics and dashes, at most 32).
pub(crate) fn push_slug(out: &mut String, topic: &str) {
    let start = out.len();
    let mut dash = true;
    for c in topic.chars() {
        if out.len() - start >= 32 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    if out.ends_with('-') {
        out.pop();
    }
    if out.len() == start {
        out.push_str("item");
    }
}

/// Push about `n` words of prose: whole sentences from [`SENTENCES`], the last one cut to fit,
/// ending with a full stop.
pub(crate) fn push_sentences(out: &mut String, rng: &mut ChaCha8Rng, n: usize) {
    let mut left = n.max(1);
    while left > 0 {
        let sentence = pick(rng, SENTENCES);
        for w in sentence.split(' ') {
            if left == 0 {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
            left -= 1;
        }
        out.push('.');
    }
}

/// Push `n` base58 characters (ss58 addresses look like this).
pub(crate) fn push_base58(out: &mut String, rng: &mut ChaCha8Rng, n: usize) {
    const B58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    for _ in 0..n {
        out.push(B58[rng.random_range(0..58usize)] as char);
    }
}

/// Push `n` lower-case hex digits.
pub(crate) fn push_hex(out: &mut String, rng: &mut ChaCha8Rng, n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for _ in 0..n {
        out.push(HEX[rng.random_range(0..16usize)] as char);
    }
}

/// Push `n` decimal digits, the first non-zero (tweet ids look like this).
pub(crate) fn push_digits(out: &mut String, rng: &mut ChaCha8Rng, n: usize) {
    for i in 0..n {
        let d = if i == 0 {
            rng.random_range(1..10u8)
        } else {
            rng.random_range(0..10u8)
        };
        out.push((b'0' + d) as char);
    }
}

/// Push `ms` since the Unix epoch as an ISO 8601 UTC timestamp with second precision.
pub(crate) fn push_iso(out: &mut String, ms: u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Push standard base64 (with padding) of a tiny fake PNG: the real magic bytes, then noise.
pub(crate) fn push_png_base64(out: &mut String, rng: &mut ChaCha8Rng, len: usize) {
    const MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut bytes = [0u8; 96];
    let len = len.clamp(MAGIC.len(), bytes.len());
    bytes[..MAGIC.len()].copy_from_slice(&MAGIC);
    for b in &mut bytes[MAGIC.len()..len] {
        *b = rng.random();
    }
    push_base64(out, &bytes[..len]);
}

fn push_base64(out: &mut String, bytes: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn iso_dates_are_right() {
        let mut s = String::new();
        push_iso(&mut s, 0);
        assert_eq!(s, "1970-01-01T00:00:00Z");
        s.clear();
        // 2024-02-29T12:34:56Z, a leap day.
        push_iso(&mut s, 1_709_210_096_000);
        assert_eq!(s, "2024-02-29T12:34:56Z");
    }

    #[test]
    fn base64_matches_known_vectors() {
        let mut s = String::new();
        push_base64(&mut s, b"foobar");
        assert_eq!(s, "Zm9vYmFy");
        s.clear();
        push_base64(&mut s, b"fo");
        assert_eq!(s, "Zm8=");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        s.clear();
        push_png_base64(&mut s, &mut rng, 48);
        assert!(s.starts_with("iVBORw0KGg"));
    }

    #[test]
    fn slugs_are_url_safe() {
        let mut s = String::new();
        push_slug(&mut s, "Bittensor: what's new?");
        assert_eq!(s, "bittensor-what-s-new");
        s.clear();
        push_slug(&mut s, "!!!");
        assert_eq!(s, "item");
    }
}
