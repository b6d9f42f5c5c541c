//! btauth/1 for outgoing reqwest requests.

use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth;

/// btauth/1 headers for an outgoing request to `url` with `body`, signed by `hotkey` for
/// `receiver` (`None`: unbound), with nonce `nonce_ns` (use [`crate::clock::now_ns`], fresh per
/// attempt). The signed target is the URL's path plus `?query`, as the server will see it.
pub fn signed_headers(
    hotkey: &Hotkey,
    method: &str,
    url: &reqwest::Url,
    body: &[u8],
    receiver: Option<&str>,
    nonce_ns: i128,
) -> reqwest::header::HeaderMap {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let signed = btauth::sign(hotkey, method, &target, body, receiver, nonce_ns);
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in signed.headers {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
            map.insert(name, v);
        }
    }
    map
}
