//! The Netaxis APIO source (DESIGN.md §5.4): the Immediate Trunking Connectivity (ITC) numbers
//! and prefixes of each configured tenant/group, read from the APIO gateway.
//!
//! Authentication is either an APIO core JWT (`POST {url}/api/v01/auth/login`, Bearer; the
//! gateway's paths are proxied under a configurable prefix such as `/api/v01/p1`, which takes
//! the place of the gateway's own `/api/v1`), or a session on the gateway itself
//! (`POST {url}/api/v1/login/`, whose `sessionid` cookie is sent back on every request). On a
//! 401 (or a 403 for a session) the source logs in again once per request: never a loop.
//! Every gateway URL ends with `/`.
//!
//! Assumption kept in this file (DESIGN.md §3): a prefix `+CC-digits` is country code `CC`
//! followed by `digits`; the dash is only a separator. A prefix with an extension range is the
//! closed set `prefix || [start..end]`; without one it is an open prefix.
//!
//! Items are checked one by one: a bad number, prefix or tag rejects that item with a reason
//! naming tenant, group and item, and the rest still counts. A failure of the fetch itself (an
//! error answer, 207 partial success, a body that is not the documented JSON) fails the whole
//! fetch, so the agent falls back on the last good snapshot. A 404 on an ITC endpoint means
//! "service not assigned to this group": an empty set for that group.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use reqwest::header::SET_COOKIE;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::http::{check_url, within, Auth, HttpAnswer, HttpConfig, SourceHttp};
use super::tag::{SlugClaims, TagRule, TagTemplate, TemplateError};
use super::{Fetched, ItemLimits, LastAnswer, Rejected, SourceEntries, SourceError};
use crate::dialplan::rule::Tag;
use crate::net::answer_digest::AnswerHasher;
use crate::net::preview::{json_failure, preview_bytes, preview_json};
use crate::net::secret::Secret;
use crate::number::{Number, NumberRange, OpenPrefix};
use crate::resolve::{Coverage, Entry, Provenance};

/// The fields an APIO tag template may use.
pub const TAG_FIELDS: &[&str] = &["tenant", "group"];

/// The name of the gateway's session cookie.
pub const SESSION_COOKIE: &str = "sessionid";

/// Parses an APIO tag template (`Trunk={tenant}`), accepting only [`TAG_FIELDS`].
pub fn parse_template(text: &str) -> Result<TagTemplate, TemplateError> {
    TagTemplate::parse(text, TAG_FIELDS)
}

/// How the source authenticates.
#[derive(Clone, Debug)]
pub enum ApioAuth {
    /// APIO core JWT; gateway paths under `proxy_prefix` (e.g. `/api/v01/p1`).
    Jwt {
        username: String,
        password: Secret,
        proxy_prefix: String,
    },
    /// A session on the gateway (`/api/v1/login/`, `sessionid` cookie).
    Session { username: String, password: Secret },
}

/// One configured `(tenant, group, tag)`.
#[derive(Clone, Debug)]
pub struct ApioGroup {
    pub tenant: String,
    pub group: String,
    /// The group's tag: a template over `tenant` and `group`, overrides keyed by tenant.
    pub tags: TagRule,
}

/// One `[[sources]]` entry of kind `apio`, resolved (secrets read, templates parsed).
#[derive(Clone, Debug)]
pub struct ApioConfig {
    pub name: String,
    /// The APIO host, e.g. `https://apio.example.net`.
    pub url: String,
    pub auth: ApioAuth,
    pub groups: Vec<ApioGroup>,
    /// Keep entries whose `active` is false.
    pub include_inactive: bool,
    pub limits: ItemLimits,
    /// The whole fetch, every group and retry included.
    pub timeout: Duration,
    pub http: HttpConfig,
}

impl ApioConfig {
    /// A configuration with the defaults for everything but the identity of the groups.
    pub fn new(name: &str, url: &str, auth: ApioAuth, groups: Vec<ApioGroup>) -> ApioConfig {
        ApioConfig {
            name: name.to_string(),
            url: url.to_string(),
            auth,
            groups,
            include_inactive: false,
            limits: ItemLimits::default(),
            timeout: Duration::from_secs(30),
            http: HttpConfig::default(),
        }
    }
}

/// An APIO source. Keeps its token or session between fetches.
pub struct ApioSource {
    config: ApioConfig,
    http: SourceHttp,
    origin: String,
    /// The gateway's base: `{url}{proxy_prefix}` or `{url}/api/v1`.
    gateway: String,
    /// The JWT or the session id, shared by the requests of one fetch.
    credential: tokio::sync::Mutex<Credential>,
}

/// Groups fetched at once. Sequential requests left a 2,000-group fetch waiting on round trips
/// (1 s on loopback, more across a WAN); eight in flight hide that latency without looking
/// like a flood to the gateway.
const CONCURRENT_GROUPS: usize = 8;

/// One group's fetch in flight: the group and its lists' JSON.
type GroupFetch<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<(&'a ApioGroup, Vec<(List, String, HttpAnswer)>), SourceError>,
            > + Send
            + 'a,
    >,
>;

/// The current JWT or session, with a generation so that requests refused together log in
/// again once, not once each.
#[derive(Default)]
struct Credential {
    secret: Option<Secret>,
    generation: u64,
}

impl fmt::Debug for ApioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApioSource")
            .field("name", &self.config.name)
            .field("gateway", &self.gateway)
            .field("groups", &self.config.groups.len())
            .finish_non_exhaustive()
    }
}

impl ApioSource {
    /// Checks the configuration and builds the client (no request is sent yet).
    pub fn new(config: ApioConfig) -> Result<ApioSource, SourceError> {
        let origin = config.url.trim_end_matches('/').to_string();
        check_url(&config.name, &config.url)?;
        let gateway = match &config.auth {
            ApioAuth::Jwt { proxy_prefix, .. } => {
                let prefix = proxy_prefix.trim_matches('/');
                if prefix.is_empty() {
                    return Err(SourceError::Config {
                        source_name: config.name.clone(),
                        message: "auth = \"jwt\" needs proxy_prefix (where APIO core proxies \
                                  the gateway, e.g. \"/api/v01/p1\")"
                            .into(),
                    });
                }
                format!("{origin}/{prefix}")
            }
            ApioAuth::Session { .. } => format!("{origin}/api/v1"),
        };
        let http = SourceHttp::new(&config.name, config.http.clone())?;
        Ok(ApioSource {
            config,
            http,
            origin,
            gateway,
            credential: tokio::sync::Mutex::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Reads the ITC numbers and prefixes of every configured group within `timeout`.
    pub async fn fetch(&mut self) -> Result<SourceEntries, SourceError> {
        self.fetch_since(&LastAnswer::default())
            .await
            .map(Fetched::into_decoded)
    }

    /// [`Self::fetch`], decoding the answers unless they are the very answers `last` names.
    pub async fn fetch_since(&mut self, last: &LastAnswer) -> Result<Fetched, SourceError> {
        let (name, timeout) = (self.config.name.clone(), self.config.timeout);
        within(&name, timeout, self.fetch_all(last)).await
    }

    async fn fetch_all(&self, last: &LastAnswer) -> Result<Fetched, SourceError> {
        // With a last answer to compare with, the pages are first only digested: decoding was
        // a third of an unchanged cycle. At the first page that differs from the last
        // answer's, the pages are read again from the start and decoded: that costs a change
        // a second read of the pages before it. (Holding the pages to decode them after the
        // comparison held the whole answer at once: 50 MB at 100k items, the gateway's items
        // being about 270 bytes of mostly empty fields.)
        if let Some(known) = &last.digest {
            let following = AnswerHasher::following(last.trail.clone());
            if let Some(digest) = self.read_all(None, following).await? {
                let digest = digest.finish(&last.context);
                if &digest == known {
                    return Ok(Fetched::Unchanged(digest));
                }
            }
        }
        let mut decoder = Decoder::new(&self.config);
        let digest = self
            .read_all(Some(&mut decoder), AnswerHasher::default())
            .await?
            .unwrap_or_default();
        Ok(Fetched::Decoded(
            decoder.finish().decoded_from(digest, &last.context),
        ))
    }

    /// Reads every list of every group into `decoder` (if any), each page as it comes, and
    /// into `digest`. Without a decoder, stops (`None`) at the first page that leaves the
    /// trail `digest` follows.
    async fn read_all(
        &self,
        mut decoder: Option<&mut Decoder>,
        mut digest: AnswerHasher,
    ) -> Result<Option<AnswerHasher>, SourceError> {
        // A `FuturesOrdered` yields the answers in the configured order, so what the decoder
        // sees (duplicates kept first, rejected items numbered) does not depend on timing.
        let mut groups = self.config.groups.iter();
        let mut answers: FuturesOrdered<GroupFetch<'_>> = FuturesOrdered::new();
        for group in groups.by_ref().take(CONCURRENT_GROUPS) {
            answers.push_back(Box::pin(self.fetch_group(group)));
        }
        while let Some(answer) = answers.next().await {
            if let Some(group) = groups.next() {
                answers.push_back(Box::pin(self.fetch_group(group)));
            }
            let (group, lists) = answer?;
            for (list, url, answer) in lists {
                // A 404's body says nothing the decoder reads, and may carry a request id or
                // a time: digested, it would make every cycle's answer differ.
                let said: &[u8] = match answer.status {
                    StatusCode::NOT_FOUND => &[],
                    _ => &answer.body,
                };
                digest.answer(&url, answer.status.as_u16(), said);
                match decoder.as_deref_mut() {
                    None if digest.diverged() => return Ok(None),
                    Some(_) | None if answer.status == StatusCode::NOT_FOUND => {}
                    Some(decoder) => self.decode(decoder, group, list, url, &answer)?,
                    None => {}
                }
            }
        }
        Ok(Some(digest))
    }

    /// Decodes one answer of `list` for `group` into `decoder`.
    fn decode(
        &self,
        decoder: &mut Decoder,
        group: &ApioGroup,
        list: List,
        url: String,
        answer: &HttpAnswer,
    ) -> Result<(), SourceError> {
        decoder.page(group, list, &answer.body).map_err(|reason| {
            // Not JSON at all is said as for any other answer; JSON of another shape, in the
            // decoder's words. (Checking every answer as JSON first was a whole extra pass
            // over every body, on the path where nothing is wrong.)
            match self.http.json::<serde::de::IgnoredAny>(&url, answer) {
                Err(not_json) => not_json,
                Ok(_) => SourceError::BadBody {
                    source_name: self.config.name.clone(),
                    url,
                    reason,
                },
            }
        })
    }

    /// The ITC numbers and prefixes of one group, as JSON, or 404 for a list the group does
    /// not have (the service is not assigned to it), which the caller leaves out.
    async fn fetch_group<'g>(
        &self,
        group: &'g ApioGroup,
    ) -> Result<(&'g ApioGroup, Vec<(List, String, HttpAnswer)>), SourceError> {
        let base = format!(
            "{}/tenant/{}/group/{}/services/immediate_trunking_connectivity",
            self.gateway,
            encode(&group.tenant),
            encode(&group.group)
        );
        let mut lists = Vec::with_capacity(2);
        for list in [List::Numbers, List::Prefixes] {
            let url = format!("{base}/{}/", list.key());
            let answer = self.get_authorised(&url).await?;
            if answer.status != StatusCode::OK && answer.status != StatusCode::NOT_FOUND {
                return Err(self.refused(&url, &answer));
            }
            lists.push((list, url, answer));
        }
        Ok((group, lists))
    }

    /// `GET url` with a valid credential: logs in first if needed; on 401 (or 403 for a
    /// session) logs in again once, then gives up.
    async fn get_authorised(&self, url: &str) -> Result<HttpAnswer, SourceError> {
        let (mut generation, mut credential) = self.current_credential().await?;
        let mut relogged = false;
        loop {
            let answer = self.get(url, Some(&credential)).await?;
            let refused = answer.status == StatusCode::UNAUTHORIZED
                || (self.is_session() && answer.status == StatusCode::FORBIDDEN);
            if !refused {
                return Ok(answer);
            }
            if !relogged {
                relogged = true;
                (generation, credential) = self.fresh_credential(generation).await?;
                continue;
            }
            let mut current = self.credential.lock().await;
            if current.generation == generation {
                current.secret = None;
            }
            return Err(self.unauthorized(&format!(
                "{url} refused a fresh login ({})",
                error_message(&answer)
            )));
        }
    }

    /// The credential to use, logging in if there is none. Requests waiting here while one
    /// logs in then use its credential.
    async fn current_credential(&self) -> Result<(u64, Secret), SourceError> {
        let mut current = self.credential.lock().await;
        if let Some(secret) = &current.secret {
            return Ok((current.generation, secret.clone()));
        }
        let secret = self.login().await?;
        current.secret = Some(secret.clone());
        current.generation += 1;
        Ok((current.generation, secret))
    }

    /// A credential newer than the refused one of `generation`: another request's fresh
    /// login if there was one since, else a login of our own.
    async fn fresh_credential(&self, generation: u64) -> Result<(u64, Secret), SourceError> {
        let mut current = self.credential.lock().await;
        if current.generation != generation {
            if let Some(secret) = &current.secret {
                return Ok((current.generation, secret.clone()));
            }
        }
        current.secret = None;
        let secret = self.login().await?;
        current.secret = Some(secret.clone());
        current.generation += 1;
        Ok((current.generation, secret))
    }

    async fn get(&self, url: &str, credential: Option<&Secret>) -> Result<HttpAnswer, SourceError> {
        let auth = match (self.is_session(), credential) {
            (true, Some(session)) => Auth::Cookie(SESSION_COOKIE, session),
            (false, Some(token)) => Auth::Bearer(token),
            (_, None) => Auth::None,
        };
        self.http.get(url, auth).await
    }

    fn is_session(&self) -> bool {
        matches!(self.config.auth, ApioAuth::Session { .. })
    }

    async fn login(&self) -> Result<Secret, SourceError> {
        let (username, password) = match &self.config.auth {
            ApioAuth::Jwt {
                username, password, ..
            }
            | ApioAuth::Session { username, password } => (username, password),
        };
        let body = serde_json::json!({"username": username, "password": password.expose()});
        let url = if self.is_session() {
            format!("{}/api/v1/login/", self.origin)
        } else {
            format!("{}/api/v01/auth/login", self.origin)
        };
        let answer = self.http.post_json(&url, &body, Auth::None).await?;
        if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(&format!(
                "login as {username:?} refused: {}",
                error_message(&answer)
            )));
        }
        if !answer.status.is_success() {
            let mut error = self.refused(&url, &answer);
            if let SourceError::Refused { method, .. } = &mut error {
                *method = "POST";
            }
            return Err(error);
        }
        if self.is_session() {
            return session_cookie(&answer.headers).ok_or_else(|| SourceError::BadBody {
                source_name: self.config.name.clone(),
                url: url.clone(),
                reason: format!("the login answer set no {SESSION_COOKIE} cookie"),
            });
        }
        let value: Value = self.http.json(&url, &answer)?;
        value
            .get("access_token")
            .or_else(|| value.get("token"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .ok_or_else(|| SourceError::BadBody {
                source_name: self.config.name.clone(),
                url,
                reason: "no access_token in the login answer".into(),
            })
    }

    fn unauthorized(&self, message: &str) -> SourceError {
        SourceError::Unauthorized {
            source_name: self.config.name.clone(),
            message: message.to_string(),
        }
    }

    fn refused(&self, url: &str, answer: &HttpAnswer) -> SourceError {
        let mut message = error_message(answer);
        if answer.status == StatusCode::MULTI_STATUS {
            message = format!("207 partial success counts as a failure: {message}");
        }
        SourceError::Refused {
            source_name: self.config.name.clone(),
            method: "GET",
            url: url.to_string(),
            status: answer.status.as_u16(),
            message,
        }
    }
}

/// The `sessionid` an answer sets, if any.
fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<Secret> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| Secret::new(value.trim_matches('"')))
}

/// The message of an APIO error body (`{"error":"..."}`, `{"error":{"message"|"reason"}}`,
/// `{"detail":"..."}`), else the body itself (cut).
pub fn error_message(answer: &HttpAnswer) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let field = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("message")
                .or_else(|| o.get("reason"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        }
    };
    match parsed
        .as_ref()
        .and_then(|v| v.get("error").or_else(|| v.get("detail")))
        .and_then(field)
    {
        Some(message) => message,
        None if answer.body.is_empty() => "empty body".to_string(),
        None => answer.text(),
    }
}

/// Percent-encodes one path segment (a tenant or group id).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Which ITC list of a group an answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// `.../numbers/`: `{"numbers": [{"minPhoneNumber", "maxPhoneNumber", "active"}...]}`.
    Numbers,
    /// `.../prefixes/`: `{"prefixes": [{"prefix", "extensionRangeStart", ...}...]}`.
    Prefixes,
}

impl List {
    /// The list's path segment, and the key of the list in its answer.
    pub fn key(self) -> &'static str {
        match self {
            List::Numbers => "numbers",
            List::Prefixes => "prefixes",
        }
    }
}

/// The fields of an ITC item that dialsync reads, each left as raw JSON; the rest of the item
/// (names, e-mail addresses, trunk names) is skipped without being built. Reading 100,000
/// items into `Value` trees was about a third of a no-change cycle's CPU.
#[derive(Debug, Deserialize)]
struct ItemFields<'a> {
    #[serde(rename = "minPhoneNumber", borrow, default)]
    min: Option<&'a RawValue>,
    #[serde(rename = "maxPhoneNumber", borrow, default)]
    max: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prefix: Option<&'a RawValue>,
    #[serde(rename = "extensionRangeStart", borrow, default)]
    start: Option<&'a RawValue>,
    #[serde(rename = "extensionRangeEnd", borrow, default)]
    end: Option<&'a RawValue>,
    #[serde(borrow, default)]
    active: Option<&'a RawValue>,
}

impl<'a> ItemFields<'a> {
    /// The item's fields, or why it is not an item.
    fn read(item: &'a RawValue) -> Result<ItemFields<'a>, String> {
        if !item.get().starts_with('{') {
            return Err(format!(
                "not an object: {}",
                preview_bytes(item.get().as_bytes())
            ));
        }
        serde_json::from_str(item.get()).map_err(|e| format!("not a valid item: {e}"))
    }
}

/// A JSON string's text, unescaped (borrowed unless it has escapes); `None` if not a string.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(borrowed) => Some(Cow::Borrowed(borrowed)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// A field for an item's label: as the gateway sent it, or "" if it is not a string.
fn shown(raw: Option<&RawValue>) -> Cow<'_, str> {
    raw.and_then(json_str).unwrap_or_default()
}

/// A text field that may be absent, null or an empty string (all "not given").
fn text<'a>(raw: Option<&'a RawValue>, key: &str) -> Result<Option<Cow<'a, str>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    match json_str(raw) {
        Some(Cow::Borrowed(s)) if s.trim().is_empty() => Ok(None),
        Some(Cow::Borrowed(s)) => Ok(Some(Cow::Borrowed(s.trim()))),
        Some(Cow::Owned(s)) if s.trim().is_empty() => Ok(None),
        Some(Cow::Owned(s)) => Ok(Some(Cow::Owned(s.trim().to_string()))),
        None if raw.get() == "null" => Ok(None),
        None => Err(format!("{key} {} is not a string", raw.get())),
    }
}

/// `active`: a boolean (or "true"/"false"); absent, null or "" counts as active, so a field
/// the gateway left out never deletes a working route.
fn active(raw: Option<&RawValue>) -> Result<bool, String> {
    let Some(raw) = raw else { return Ok(true) };
    match (raw.get(), json_str(raw)) {
        ("true" | "null", _) => Ok(true),
        ("false", _) => Ok(false),
        (_, Some(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("active {s:?} is not a boolean")),
        },
        (other, None) => Err(format!("active {other} is not a boolean")),
    }
}

/// `+CC-digits` (country code, dash separator, digits) or plain `+digits`, as an E.164 digit
/// string with its `+`.
fn prefix_digits(text: &str) -> Result<String, String> {
    let bare = text.trim().trim_start_matches('+');
    let (cc, rest) = bare.split_once('-').unwrap_or(("", bare));
    if !cc.is_empty() && (cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("prefix {text:?}: {cc:?} is not a country code"));
    }
    let rest: String = rest.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if let Some(bad) = rest.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!("prefix {text:?}: '{bad}' is not a digit"));
    }
    Ok(format!("+{cc}{rest}"))
}

/// "an object", "a string"...: what a JSON value is, for a message.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The array under one key of an answer's top-level object, each item left as raw JSON, in
/// one pass over the answer: the other keys' values are skipped, checked only as JSON.
/// `None` when the key is absent; should a key appear twice, the last counts.
struct ListOf(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for ListOf {
    type Value = Option<Vec<&'de RawValue>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ListOf {
    type Value = Option<Vec<&'de RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object holding {:?}", self.0)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut list = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 {
                list = Some(map.next_value::<Vec<&'de RawValue>>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(list)
    }
}

/// Why `body` is not an answer holding `list`: the whole answer read as a tree, only when the
/// fast reading of [`Decoder::page`] failed.
fn shape_error(list: List, body: &[u8]) -> String {
    let body: Value = match serde_json::from_slice(body) {
        Ok(body) => body,
        // The fetch only checked the JSON's structure: strings are read here.
        Err(e) => return json_failure(body, &e),
    };
    match body {
        Value::Object(mut object) => match object.remove(list.key()) {
            None | Some(Value::Null) => format!("no {:?} list", list.key()),
            Some(other) => format!(
                "{:?} is {}, expected an array: {}",
                list.key(),
                json_kind(&other),
                preview_json(&other)
            ),
        },
        other => format!("expected an object, found {}", preview_json(&other)),
    }
}

/// Decodes the answer `body` of one ITC list of `group` into entries and rejected items, as a
/// fetch does; `Err` is the reason the whole fetch would fail ([`SourceError::BadBody`]).
///
/// For the fuzzers and tests: the fetch itself runs the same [`Decoder`] over every answer.
pub fn decode_page(
    config: &ApioConfig,
    group: &ApioGroup,
    list: List,
    body: &[u8],
) -> Result<SourceEntries, String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut decoder = Decoder::new(config);
    decoder.page(group, list, body)?;
    Ok(decoder.finish())
}

/// Turns the answers of one fetch into entries, rejecting bad items one by one and collapsing
/// exact duplicates across every group and list. Public for the fuzzers and tests.
pub struct Decoder {
    /// The source's name, shared by the provenance of every entry.
    name: std::sync::Arc<String>,
    limits: ItemLimits,
    include_inactive: bool,
    /// Tags made through `{field:slug}` in this fetch, across every group, and the values
    /// each came from.
    slugs: SlugClaims,
    out: SourceEntries,
}

impl Decoder {
    /// A decoder for one fetch of the source `config` describes.
    pub fn new(config: &ApioConfig) -> Decoder {
        Decoder {
            name: std::sync::Arc::new(config.name.clone()),
            limits: config.limits,
            include_inactive: config.include_inactive,
            slugs: SlugClaims::default(),
            out: SourceEntries::default(),
        }
    }

    /// One answer (JSON text) of `list` for `group`: an object holding the list under
    /// [`List::key`]. `Err` (the answer is not of that shape) fails the whole fetch.
    pub fn page(&mut self, group: &ApioGroup, list: List, body: &[u8]) -> Result<(), String> {
        // Only the list is read, and of each item only its fields; the other fields of the
        // answer are skipped. An answer of another shape is read again as a tree, for the
        // message that says what is wrong with it.
        let mut reader = serde_json::Deserializer::from_slice(body);
        let items = serde::de::DeserializeSeed::deserialize(ListOf(list.key()), &mut reader)
            .and_then(|items| reader.end().map(|()| items));
        match items {
            Ok(Some(items)) => {
                self.items(group, list, &items);
                Ok(())
            }
            Ok(None) | Err(_) => Err(shape_error(list, body)),
        }
    }

    /// What the fetch yields.
    pub fn finish(mut self) -> SourceEntries {
        self.out.drop_exact_duplicates();
        self.out
    }

    fn items(&mut self, group: &ApioGroup, list: List, items: &[&RawValue]) {
        // The tag depends on the group alone: made once, when the first item needs it (a
        // page with no good item claims no slug), and shared by every entry of the page.
        let mut tag: Option<Result<Tag, String>> = None;
        for (index, raw) in items.iter().enumerate() {
            let fields = ItemFields::read(raw);
            let what = match (list, fields.as_ref().ok()) {
                (List::Numbers, f) => format!(
                    "min={:?} max={:?}",
                    shown(f.and_then(|f| f.min)),
                    shown(f.and_then(|f| f.max))
                ),
                (List::Prefixes, f) => format!("prefix={:?}", shown(f.and_then(|f| f.prefix))),
            };
            let label = format!(
                "tenant={} group={} {} #{} {what}",
                group.tenant,
                group.group,
                list.key(),
                index + 1
            );
            let result =
                match fields.and_then(|f| Ok((self.include_inactive || active(f.active)?, f))) {
                    Ok((false, _)) => continue,
                    Ok((true, fields)) => match list {
                        List::Numbers => self.number(&fields),
                        List::Prefixes => self.prefix(&fields),
                    },
                    Err(reason) => Err(reason),
                };
            let result = result.and_then(|coverage| {
                let tag = tag.get_or_insert_with(|| {
                    let field = |name: &str| match name {
                        "tenant" => Some(group.tenant.as_str()),
                        "group" => Some(group.group.as_str()),
                        _ => None,
                    };
                    group.tags.tag_for(
                        Some(&group.tenant),
                        field,
                        self.limits.max_tag_len,
                        &mut self.slugs,
                    )
                });
                Ok((coverage, tag.clone()?))
            });
            self.push(label, result);
        }
    }

    fn push(&mut self, item: String, result: Result<(Coverage, Tag), String>) {
        match result {
            Ok((coverage, tag)) => {
                self.out.entries.push(Entry {
                    coverage,
                    tag,
                    provenance: Provenance {
                        source: self.name.clone(),
                        item: item.into(),
                    },
                });
            }
            Err(reason) => self.out.rejected.push(Rejected { item, reason }),
        }
    }

    fn number(&self, item: &ItemFields<'_>) -> Result<Coverage, String> {
        let min = text(item.min, "minPhoneNumber")?.ok_or("no minPhoneNumber")?;
        let max = text(item.max, "maxPhoneNumber")?;
        let lo = Number::parse(&min).map_err(|e| format!("minPhoneNumber {min:?}: {e}"))?;
        let hi = match &max {
            None => lo,
            Some(max) => Number::parse(max).map_err(|e| format!("maxPhoneNumber {max:?}: {e}"))?,
        };
        let range = NumberRange::new(lo, hi, self.limits.max_range_size)
            .map_err(|e| format!("range {min}..{}: {e}", max.as_deref().unwrap_or(&min)))?;
        Ok(Coverage::Range(range))
    }

    fn prefix(&self, item: &ItemFields<'_>) -> Result<Coverage, String> {
        let raw = text(item.prefix, "prefix")?.ok_or("no prefix")?;
        let digits = prefix_digits(&raw)?;
        let start = text(item.start, "extensionRangeStart")?;
        let end = text(item.end, "extensionRangeEnd")?;
        match (start.as_deref(), end.as_deref()) {
            (None, None) => {
                let prefix =
                    OpenPrefix::parse(&digits).map_err(|e| format!("prefix {raw:?}: {e}"))?;
                Ok(Coverage::Prefix(prefix))
            }
            (Some(start), Some(end)) => {
                for (key, value) in [("extensionRangeStart", start), ("extensionRangeEnd", end)] {
                    if !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("{key} {value:?} is not digits"));
                    }
                }
                if start.len() != end.len() {
                    return Err(format!(
                        "extension range {start}..{end}: ends of different widths ({} and {} \
                         digits)",
                        start.len(),
                        end.len()
                    ));
                }
                let lo_text = format!("{digits}{start}");
                let hi_text = format!("{digits}{end}");
                let lo = Number::parse(&lo_text).map_err(|e| format!("{lo_text}: {e}"))?;
                let hi = Number::parse(&hi_text).map_err(|e| format!("{hi_text}: {e}"))?;
                let range = NumberRange::new(lo, hi, self.limits.max_range_size)
                    .map_err(|e| format!("prefix {raw:?} extensions {start}..{end}: {e}"))?;
                Ok(Coverage::Range(range))
            }
            (Some(_), None) => Err("extensionRangeStart without extensionRangeEnd".into()),
            (None, Some(_)) => Err("extensionRangeEnd without extensionRangeStart".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_with_a_dash_are_country_code_then_digits() {
        assert_eq!(prefix_digits("+32-01").unwrap(), "+3201");
        assert_eq!(prefix_digits("+3201").unwrap(), "+3201");
        assert_eq!(prefix_digits("32-2-61").unwrap(), "+32261");
        assert!(prefix_digits("+32-0a").is_err());
        assert!(prefix_digits("+3244-01").is_err());
    }

    #[test]
    fn active_defaults_to_true_when_not_given() {
        let active_of = |item: &str| {
            let raw: Box<RawValue> = serde_json::from_str(item).unwrap();
            let fields = ItemFields::read(&raw).unwrap();
            active(fields.active)
        };
        assert!(active_of("{}").unwrap());
        assert!(active_of(r#"{"active": null}"#).unwrap());
        assert!(active_of(r#"{"active": ""}"#).unwrap());
        assert!(active_of(r#"{"active": " TRUE "}"#).unwrap());
        assert!(!active_of(r#"{"active": false}"#).unwrap());
        assert!(!active_of(r#"{"active": "false"}"#).unwrap());
        assert!(active_of(r#"{"active": 3}"#).is_err());
        assert!(active_of(r#"{"active": "maybe"}"#).is_err());
    }

    #[test]
    fn text_fields_are_trimmed_unescaped_and_typed() {
        let fields_of = |item: &str| serde_json::from_str::<Box<RawValue>>(item).unwrap();
        let raw =
            fields_of(r#"{"minPhoneNumber": " +32\u0032 ", "maxPhoneNumber": "", "prefix": 5}"#);
        let fields = ItemFields::read(&raw).unwrap();
        assert_eq!(
            text(fields.min, "minPhoneNumber").unwrap().as_deref(),
            Some("+322")
        );
        assert_eq!(text(fields.max, "maxPhoneNumber").unwrap(), None);
        assert_eq!(text(fields.start, "extensionRangeStart").unwrap(), None);
        assert_eq!(
            text(fields.prefix, "prefix").unwrap_err(),
            "prefix 5 is not a string"
        );
        assert!(ItemFields::read(&fields_of("[1]"))
            .unwrap_err()
            .starts_with("not an object: [1]"));
    }
}
