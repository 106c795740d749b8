//! Pre-rendered requests. Each template is the request bytes split where the `--id-param`
//! value goes, so sending one is two copies and an integer format into a reused buffer.

use super::args::{LoadMethod, Plan};

/// Templates built with `--vary`; enough to rotate through many combinations.
const VARY_TEMPLATES: usize = 64;

/// One request: `head`, then the id digits (when `--id-param` is set), then `tail`.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// Every template a run rotates through, and whether answers carry no body (HEAD).
#[derive(Debug, Clone)]
pub struct RequestSet {
    pub templates: Vec<RequestTemplate>,
    pub with_id: bool,
    pub head_method: bool,
}

impl RequestSet {
    pub fn build(plan: &Plan) -> RequestSet {
        let count = if plan.vary { VARY_TEMPLATES } else { 1 };
        let mut rng = SplitMix64(0x676c_696e_745f_6c67);
        let templates = (0..count)
            .map(|i| {
                let variant = plan.vary.then(|| Variant::pick(i, &mut rng));
                render(plan, variant.as_ref())
            })
            .collect();
        RequestSet {
            templates,
            with_id: plan.id_param.is_some(),
            head_method: plan.method == LoadMethod::Head,
        }
    }

    /// Appends request number `n` (with id `id` when ids are on) to `out`.
    #[inline]
    pub fn render_into(&self, n: u64, id: u64, out: &mut Vec<u8>) {
        let t = &self.templates[(n % self.templates.len() as u64) as usize];
        out.extend_from_slice(&t.head);
        if self.with_id {
            write_decimal(id, out);
        }
        out.extend_from_slice(&t.tail);
    }
}

/// Appends `v` in decimal without allocating.
#[inline]
pub fn write_decimal(mut v: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// What one `--vary` template changes.
struct Variant {
    query: String,
    user_agent: &'static str,
    referer: &'static str,
}

impl Variant {
    fn pick(i: usize, rng: &mut SplitMix64) -> Variant {
        let event = EVENTS[i % EVENTS.len()];
        let mut query = format!(
            "e={event}&cid={}&uid={:016x}&sid={:08x}&ts={}",
            1000 + rng.next() % 9000,
            rng.next(),
            rng.next() as u32,
            1_760_000_000_000 + rng.next() % 100_000_000
        );
        if i % 4 == 1 {
            query.push_str(
                "&u=https%3A%2F%2Fshop.example.com%2Fcollections%2Fsummer-sale%2Fproducts%2F\
                 linen-shirt-relaxed-fit%3Fvariant%3D4412%26utm_source%3Dnewsletter%26utm_medium%3D\
                 email%26utm_campaign%3Dsummer_sale_week_3%26utm_content%3Dhero_button",
            );
        }
        Variant {
            query,
            user_agent: USER_AGENTS[(i / 2) % USER_AGENTS.len()],
            referer: REFERERS[(i * 7 + 3) % REFERERS.len()],
        }
    }
}

fn render(plan: &Plan, variant: Option<&Variant>) -> RequestTemplate {
    let mut target = plan.target.path_and_query.clone();
    if let Some(v) = variant {
        target.push(if target.contains('?') { '&' } else { '?' });
        target.push_str(&v.query);
    }
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(plan.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    let mut tail = Vec::with_capacity(512);
    if let Some(name) = &plan.id_param {
        head.push(if target.contains('?') { b'&' } else { b'?' });
        head.extend_from_slice(name.as_bytes());
        head.push(b'=');
    }
    tail.extend_from_slice(b" HTTP/1.1\r\n");
    let has = |name: &str| {
        plan.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("host") {
        push_header(&mut tail, "Host", &plan.target.authority);
    }
    if !has("user-agent") {
        let ua = variant.map_or(concat!("glint-loadgen/", env!("CARGO_PKG_VERSION")), |v| {
            v.user_agent
        });
        push_header(&mut tail, "User-Agent", ua);
    }
    if let Some(v) = variant.filter(|_| !has("referer")) {
        push_header(&mut tail, "Referer", v.referer);
    }
    for (name, value) in &plan.headers {
        push_header(&mut tail, name, value);
    }
    if let Some(body) = &plan.body {
        if !has("content-type") {
            push_header(&mut tail, "Content-Type", "text/plain;charset=UTF-8");
        }
        push_header(&mut tail, "Content-Length", &body.len().to_string());
        tail.extend_from_slice(b"\r\n");
        tail.extend_from_slice(body);
    } else {
        tail.extend_from_slice(b"\r\n");
    }
    if plan.id_param.is_none() {
        head.append(&mut tail);
    }
    RequestTemplate { head, tail }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Small deterministic generator so `--vary` runs are reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

const EVENTS: [&str; 7] = [
    "pageview",
    "open",
    "click",
    "impression",
    "scroll",
    "conversion",
    "video_progress",
];

/// Browsers and in-app webviews as they appear in real access logs; the in-app ones are long.
const USER_AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/489.0.0.42.109;FBBV/665207834;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.6.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/667398122;IABMV/1]",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36 Instagram 357.0.0.25.101 Android (33/13; 450dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; en_GB; 656363622)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

/// Referers, including ad-click landing URLs long enough to overflow a 512-byte slot alone.
const REFERERS: [&str; 6] = [
    "https://www.google.com/",
    "https://news.example.org/2025/11/world/markets-rally-as-inflation-cools.html",
    "https://t.co/Ab12Cd34Ef",
    "https://mail.example.com/mail/u/0/#inbox/FMfcgzQXJWDsKtnZlrBGmhpTqXvWvCkP",
    "https://shop.example.com/collections/summer-sale/products/linen-shirt-relaxed-fit?variant=44128812345678&utm_source=google&utm_medium=cpc&utm_campaign=pmax_apparel_eu_2025&utm_term=linen%20shirt%20men&utm_content=ad_group_7781&gclid=Cj0KCQiA6Ou5BhCrARIsAPoTxrA9vTXkR2Qq8YhJ1Wcz3nHf0mZl6XbKp4sLw7Ee2dGfUuVt5yR0aAnqEEALw_wcB&gad_source=1&gbraid=0AAAAADqZ5h7Xw2yVb9QmT4rN8cP1sK6LdFgHjK&wbraid=CkQKCQiA6Ou5BhDqARIsAPoTxrA9vTXkR2Qq8YhJ1Wcz3nHf0mZl6XbKp4sLw7Ee2dGfUuVt5yR0aAnqEEALw_wcB&fbclid=IwZXh0bgNhZW0CMTEAAR2x7vKqP0Lr8sT3nB5mC9dY1eF6gH4jK2lM8nO0pQ7rS5tU3vW1xY9zA_aem_AbCdEfGhIjKlMnOpQrStUv",
    "android-app://com.google.android.gm/",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::target::Target;
    use std::time::Duration;

    fn plan(vary: bool, id: Option<&str>, body: Option<&[u8]>) -> Plan {
        Plan {
            target: Target::parse("http://127.0.0.1:8080/p.gif?a=1").unwrap(),
            connections: 1,
            threads: 1,
            duration: Some(Duration::from_secs(1)),
            requests: None,
            rate: None,
            pipeline: 1,
            method: if body.is_some() {
                LoadMethod::Post
            } else {
                LoadMethod::Get
            },
            headers: vec![("X-Test".into(), "yes".into())],
            body: body.map(<[u8]>::to_vec),
            vary,
            id_param: id.map(str::to_string),
            acked_out: None,
            timeout: Duration::from_secs(1),
        }
    }

    fn parse(bytes: &[u8]) -> (String, Vec<(String, String)>, usize) {
        let mut h = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Request::new(&mut h);
        let httparse::Status::Complete(n) = r.parse(bytes).unwrap() else {
            panic!("incomplete request")
        };
        let headers = r
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into()))
            .collect();
        (r.path.unwrap().to_string(), headers, n)
    }

    #[test]
    fn plain_request_with_id_and_body_is_valid_http() {
        let set = RequestSet::build(&plan(false, Some("rid"), Some(b"hello")));
        let mut out = Vec::new();
        set.render_into(0, 1234567, &mut out);
        let (path, headers, n) = parse(&out);
        assert_eq!(path, "/p.gif?a=1&rid=1234567");
        assert!(headers.contains(&("Host".into(), "127.0.0.1:8080".into())));
        assert!(headers.contains(&("X-Test".into(), "yes".into())));
        assert!(headers.contains(&("Content-Length".into(), "5".into())));
        assert_eq!(&out[n..], b"hello");
    }

    #[test]
    fn vary_rotates_and_some_exceed_a_512_byte_slot() {
        let set = RequestSet::build(&plan(true, None, None));
        assert_eq!(set.templates.len(), VARY_TEMPLATES);
        let mut paths = std::collections::HashSet::new();
        let mut over_slot = 0;
        for n in 0..VARY_TEMPLATES as u64 {
            let mut out = Vec::new();
            set.render_into(n, 0, &mut out);
            let (path, headers, _) = parse(&out);
            assert!(path.starts_with("/p.gif?a=1&e="), "{path}");
            let field = |k: &str| headers.iter().find(|(n, _)| n == k).unwrap().1.len();
            if path.len() + field("User-Agent") + field("Referer") > 512 - 112 {
                over_slot += 1;
            }
            paths.insert(path);
        }
        assert_eq!(paths.len(), VARY_TEMPLATES, "every template differs");
        assert!(over_slot >= 4, "only {over_slot} templates exceed the slot");
    }

    #[test]
    fn decimal_formatting() {
        for v in [0, 7, 10, 99, 12345, u64::MAX] {
            let mut out = Vec::new();
            write_decimal(v, &mut out);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
