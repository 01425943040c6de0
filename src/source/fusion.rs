//! The Netaxis Fusion source (DESIGN.md §5.3), one feed per source: the numbers of one Fusion
//! group from the `phone_usage` report (one number per user, tagged per tenant), the Operator
//! Connect numbers of listed Teams subscriptions (see `fusion/oc_numbers.rs`), or a
//! number-range feed (national integer bounds behind a country code, one fixed tag). Every
//! feed shares one page loop, one authentication and one HTTP client.
//!
//! Authentication is a login with username and password (refreshed with the refresh token,
//! then renewed by a new login, once each per request: never a loop), or a static machine
//! token. A login answered with a `2fa_payload` cannot be completed by a daemon: that is a
//! configuration error telling the operator what to change.
//!
//! Items are checked one by one: a bad number, range or tag rejects that item with a reason
//! naming it, and the rest still counts. A failure of the fetch itself (an error answer, a
//! broken page chain, a body that is not the documented JSON) fails the whole fetch, so the
//! agent falls back on the last good snapshot: a partial list is never used.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::ControlFlow;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::body_seen::BodySeen;
use super::http::{check_url, within, Auth, HttpAnswer, HttpConfig, Opened, SourceHttp};
use super::rendered_tags::RenderedTags;
use super::tag::{SlugClaims, TagRule, TagTemplate, TemplateError};
use super::{Fetched, ItemLimits, LastAnswer, Rejected, SourceEntries, SourceError};
use crate::dialplan::rule::Tag;
use crate::net::answer_digest::{AnswerDigest, AnswerHasher};
use crate::net::preview::{preview_json, truncate};
use crate::net::secret::Secret;
use crate::number::{Number, NumberRange};
use crate::resolve::{Coverage, Entry, Item, Provenance};

mod oc_numbers;
mod phone_usage;

pub use oc_numbers::{OcSubscription, DEFAULT_PAGE_SIZE as OC_DEFAULT_PAGE_SIZE};

/// The fields a tag template of the Operator Connect feed may use: the configured tenant and
/// subscription, and the item's usage and country.
pub const OC_TAG_FIELDS: &[&str] = oc_numbers::TAG_FIELDS;

/// The fields a tag template of the `phone_usage` feed may use (`user` is the item's
/// `username`); the Operator Connect feed has its own, [`OC_TAG_FIELDS`].
pub const TAG_FIELDS: &[&str] = &["tenant", "group", "reseller", "distributor", "user"];

/// How the source authenticates.
#[derive(Clone, Debug)]
pub enum FusionAuth {
    /// `POST /auth/login`, then refresh tokens.
    Login { username: String, password: Secret },
    /// A static machine token (`token_file`), sent as the Bearer token.
    Token(Secret),
}

/// What the source reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FusionFeed {
    /// `groups/{group_uuid}/sdrs/phone_usage`.
    PhoneUsage,
    /// A number-range feed at this path under `/draas/{draas_instance}/` (`{group_uuid}` is
    /// substituted), e.g. `groups/{group_uuid}/number_ranges`.
    Ranges { path: String },
    /// The Operator Connect numbers of each listed Teams subscription
    /// (`tenants/{tenant}/subscriptions/{subscription}/msteams/oc/numbers`), each tagged by its
    /// own rule. Only numbers provisioned on Microsoft Teams, unless `include_unprovisioned`.
    OcNumbers {
        subscriptions: Vec<OcSubscription>,
        include_unprovisioned: bool,
    },
}

/// One `[[sources]]` entry of kind `fusion`, resolved (secrets read, template parsed).
#[derive(Clone, Debug)]
pub struct FusionConfig {
    /// The source's name in logs, provenance and errors.
    pub name: String,
    /// The Fusion host, e.g. `https://apioaas-prov.netaxis.cloud` (`/api/v01` is appended).
    pub url: String,
    pub draas_instance: String,
    pub group_uuid: String,
    pub auth: FusionAuth,
    pub feed: FusionFeed,
    /// The tag rule of the `phone_usage` and range feeds (the Operator Connect feed's rules are
    /// per subscription).
    pub tags: TagRule,
    pub limits: ItemLimits,
    /// Sent as `page_size` when set (the Operator Connect feed always sends one, by default
    /// [`OC_DEFAULT_PAGE_SIZE`]); a `next` in an answer is followed either way.
    pub page_size: Option<u32>,
    /// The whole fetch, every page and retry included.
    pub timeout: Duration,
    pub http: HttpConfig,
}

impl FusionConfig {
    /// A configuration with the defaults for everything but the identity of the group.
    pub fn new(
        name: &str,
        url: &str,
        draas_instance: &str,
        group_uuid: &str,
        auth: FusionAuth,
        tags: TagRule,
    ) -> FusionConfig {
        FusionConfig {
            name: name.to_string(),
            url: url.to_string(),
            draas_instance: draas_instance.to_string(),
            group_uuid: group_uuid.to_string(),
            auth,
            feed: FusionFeed::PhoneUsage,
            tags,
            limits: ItemLimits::default(),
            page_size: None,
            timeout: Duration::from_secs(30),
            http: HttpConfig::default(),
        }
    }
}

/// Parses a Fusion tag template (`Trunk={tenant}`), accepting only [`TAG_FIELDS`].
pub fn parse_template(text: &str) -> Result<TagTemplate, TemplateError> {
    TagTemplate::parse(text, TAG_FIELDS)
}

/// Parses a tag template of the Operator Connect feed (`Trunk={tenant:slug}`), accepting only
/// [`OC_TAG_FIELDS`].
pub fn parse_oc_template(text: &str) -> Result<TagTemplate, TemplateError> {
    oc_numbers::parse_template(text)
}

/// Which list of Fusion one run of pages reads.
#[derive(Clone, Copy)]
enum List<'a> {
    PhoneUsage,
    Ranges,
    OcNumbers {
        subscription: &'a OcSubscription,
        include_unprovisioned: bool,
    },
}

#[derive(Clone)]
struct Tokens {
    access: Secret,
    refresh: Option<Secret>,
}

/// A Fusion source. Keeps its tokens between fetches.
pub struct FusionSource {
    config: FusionConfig,
    http: SourceHttp,
    base: String,
    tokens: Option<Tokens>,
    /// The range feed's fixed tag, checked when the source is built.
    fixed_tag: Option<Tag>,
}

impl fmt::Debug for FusionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FusionSource")
            .field("name", &self.config.name)
            .field("base", &self.base)
            .field("feed", &self.config.feed)
            .finish_non_exhaustive()
    }
}

impl FusionSource {
    /// Checks the configuration and builds the client (no request is sent yet).
    pub fn new(config: FusionConfig) -> Result<FusionSource, SourceError> {
        let base = format!("{}/api/v01", config.url.trim_end_matches('/'));
        check_url(&config.name, &config.url)?;
        let refuse = |message: String| SourceError::Config {
            source_name: config.name.clone(),
            message,
        };
        let fixed_tag = match &config.feed {
            FusionFeed::PhoneUsage if config.group_uuid.trim().is_empty() => {
                return Err(refuse("the phone_usage feed needs a group_uuid".into()))
            }
            FusionFeed::PhoneUsage => None,
            FusionFeed::OcNumbers { subscriptions, .. } if subscriptions.is_empty() => {
                return Err(refuse(
                    "the oc_numbers feed needs at least one subscription".into(),
                ))
            }
            FusionFeed::OcNumbers { .. } => None,
            FusionFeed::Ranges { .. } => Some(
                config
                    .tags
                    .template
                    .render(
                        |_| None,
                        config.limits.max_tag_len,
                        &mut SlugClaims::default(),
                    )
                    .map_err(|reason| {
                        refuse(format!(
                            "a Fusion number-range feed carries no tenant, group or user, so its \
                             tag must be fixed (a template without fields): {reason}"
                        ))
                    })?,
            ),
        };
        let http = SourceHttp::new(&config.name, config.http.clone())?;
        Ok(FusionSource {
            config,
            http,
            base,
            tokens: None,
            fixed_tag,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Reads the whole feed, every page, within the source's `timeout`.
    pub async fn fetch(&mut self) -> Result<SourceEntries, SourceError> {
        self.fetch_since(&LastAnswer::default())
            .await
            .map(Fetched::into_decoded)
    }

    /// [`Self::fetch`], its answers' digest keyed by `last`'s context. A `phone_usage` feed
    /// given the digest of its last answer first only digests the body (a million items are
    /// about 190 MiB, and decoding them was most of an unchanged cycle), stopping at the
    /// first MiB that differs from the last answer's; only then is it read again and decoded.
    /// The other feeds, small pages that must be read to be followed, decode as they read.
    pub async fn fetch_since(&mut self, last: &LastAnswer) -> Result<Fetched, SourceError> {
        let (name, timeout) = (self.config.name.clone(), self.config.timeout);
        within(&name, timeout, async {
            if let (FusionFeed::PhoneUsage, Some(known)) = (&self.config.feed, &last.digest) {
                if let Some(same) = self.unchanged_usage(last, known).await? {
                    return Ok(Fetched::Unchanged(same));
                }
            }
            self.fetch_all(last).await.map(Fetched::Decoded)
        })
        .await
    }

    /// The `phone_usage` answer digested along `last`'s trail, without decoding its items:
    /// its digest if it is `known`, else `None` (it differs, or cannot even be read as the
    /// last one was: decoding it will say why).
    async fn unchanged_usage(
        &mut self,
        last: &LastAnswer,
        known: &AnswerDigest,
    ) -> Result<Option<AnswerDigest>, SourceError> {
        let url = self.phone_usage_url();
        let mut parser = Parser::new(&self.config, self.fixed_tag.clone());
        parser.digest_only = true;
        let mut answer = AnswerHasher::following(last.trail.clone());
        let size = self.config.page_size;
        match self
            .read_list(&url, size, List::PhoneUsage, &mut parser, &mut answer)
            .await
        {
            Ok(()) if !answer.diverged() => {
                let digest = answer.finish(&last.context);
                Ok((&digest == known).then_some(digest))
            }
            Ok(()) | Err(SourceError::BadBody { .. } | SourceError::Pagination { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn phone_usage_url(&self) -> String {
        format!(
            "{}/draas/{}/groups/{}/sdrs/phone_usage",
            self.base, self.config.draas_instance, self.config.group_uuid
        )
    }

    async fn fetch_all(&mut self, last: &LastAnswer) -> Result<SourceEntries, SourceError> {
        let mut answer = AnswerHasher::default();
        let instance = format!("{}/draas/{}", self.base, self.config.draas_instance);
        let mut parser = Parser::new(&self.config, self.fixed_tag.clone());
        match self.config.feed.clone() {
            FusionFeed::PhoneUsage => {
                let url = self.phone_usage_url();
                let size = self.config.page_size;
                self.read_list(&url, size, List::PhoneUsage, &mut parser, &mut answer)
                    .await?;
            }
            FusionFeed::Ranges { path } => {
                let url = format!(
                    "{instance}/{}",
                    path.trim_start_matches('/')
                        .replace("{group_uuid}", &self.config.group_uuid)
                );
                let size = self.config.page_size;
                self.read_list(&url, size, List::Ranges, &mut parser, &mut answer)
                    .await?;
            }
            FusionFeed::OcNumbers {
                subscriptions,
                include_unprovisioned,
            } => {
                let size = Some(self.config.page_size.unwrap_or(OC_DEFAULT_PAGE_SIZE));
                for subscription in &subscriptions {
                    let url = format!("{instance}/{}", subscription.path());
                    let list = List::OcNumbers {
                        subscription,
                        include_unprovisioned,
                    };
                    self.read_list(&url, size, list, &mut parser, &mut answer)
                        .await?;
                }
            }
        }
        Ok(parser.finish().decoded_from(answer, &last.context))
    }

    /// Reads every page of one list into `parser`, and into `answer` as it came: the first
    /// page at `url`, then each page its predecessor's `next` names, until a page names none.
    /// A 404 for the first page is an empty list (Fusion's list endpoints answer so); for a
    /// later page, or a cursor that comes back, the chain is broken and the whole fetch
    /// fails. A parser that only digests stops where `answer` leaves the trail it follows.
    async fn read_list(
        &mut self,
        url: &str,
        page_size: Option<u32>,
        list: List<'_>,
        parser: &mut Parser,
        answer: &mut AnswerHasher,
    ) -> Result<(), SourceError> {
        parser.start_list();
        let mut seen_cursors = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut page = 0usize;
        loop {
            let page_url = self.page_url(url, cursor.as_deref(), page_size);
            // phone_usage is one answer of a whole group: decoded as it arrives.
            let stream = matches!(list, List::PhoneUsage);
            let next = match self.get_authorised(&page_url, stream).await? {
                Opened::Streaming(body) => {
                    let status = body.status;
                    let mut decoder = phone_usage::UsageDecoder::new();
                    answer.start(&page_url, status.as_u16());
                    let seen = self
                        .http
                        .read_stream(&page_url, body, |chunk| {
                            answer.body(chunk);
                            if parser.digest_only && answer.diverged() {
                                return ControlFlow::Break(());
                            }
                            decoder.feed(parser, chunk);
                            ControlFlow::Continue(())
                        })
                        .await?;
                    answer.end();
                    if parser.digest_only && answer.diverged() {
                        return Ok(());
                    }
                    self.usage_page(&page_url, status, &seen, decoder, parser)?
                }
                Opened::Whole(whole) => {
                    // A 404 ends the list (or breaks the chain) whatever its body says, which
                    // may carry a request id or a time: not digested.
                    let said: &[u8] = match whole.status {
                        StatusCode::NOT_FOUND => &[],
                        _ => &whole.body,
                    };
                    answer.answer(&page_url, whole.status.as_u16(), said);
                    self.whole_page(&page_url, page, whole, list, parser)?
                }
            };
            page += 1;
            if parser.digest_only && answer.diverged() {
                return Ok(());
            }
            match self.follow(&page_url, next, &mut seen_cursors)? {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// One page read whole (every list but a 2xx `phone_usage`): its `next`. A 404 on the
    /// first page is a list the group does not have, which ends it as a last page does.
    fn whole_page(
        &self,
        page_url: &str,
        page: usize,
        answer: HttpAnswer,
        list: List<'_>,
        parser: &mut Parser,
    ) -> Result<Option<Value>, SourceError> {
        if answer.status == StatusCode::NOT_FOUND {
            if page == 0 {
                return Ok(None);
            }
            return Err(SourceError::Pagination {
                source_name: self.config.name.clone(),
                url: page_url.to_string(),
                reason: format!(
                    "page {} answered 404 ({}): the chain broke off",
                    page + 1,
                    error_message(&answer)
                ),
            });
        }
        if !answer.status.is_success() {
            return Err(self.refused(page_url, &answer));
        }
        Ok(match list {
            List::Ranges => {
                let body: Value = self.http.json(page_url, &answer)?;
                drop(answer);
                parser.ranges_page(body, page_url)?
            }
            // A 2xx phone_usage answer streams; read whole, it is decoded the same way.
            List::PhoneUsage => {
                let mut decoder = phone_usage::UsageDecoder::new();
                decoder.feed(parser, &answer.body);
                let seen = BodySeen::of(&answer.body);
                self.usage_page(page_url, answer.status, &seen, decoder, parser)?
            }
            List::OcNumbers {
                subscription,
                include_unprovisioned,
            } => {
                self.object_page(page_url, &answer, "numbers")?;
                let body: OcPage = self.http.json(page_url, &answer)?;
                let Some(items) = body.numbers else {
                    return Err(self.bad_body(page_url, "no numbers list"));
                };
                parser.oc_numbers(subscription, include_unprovisioned, &items);
                body.next
            }
        })
    }

    /// The cursor of the page after `page_url`'s, if any; a cursor that comes back, or one
    /// that is not a cursor, breaks the chain.
    fn follow(
        &self,
        page_url: &str,
        next: Option<Value>,
        seen_cursors: &mut HashSet<String>,
    ) -> Result<Option<String>, SourceError> {
        let broken = |reason| SourceError::Pagination {
            source_name: self.config.name.clone(),
            url: page_url.to_string(),
            reason,
        };
        match next_cursor(next).map_err(broken)? {
            None => Ok(None),
            Some(next) if !seen_cursors.insert(next.clone()) => Err(broken(format!(
                "cursor {next:?} came back: the chain loops"
            ))),
            Some(next) => Ok(Some(next)),
        }
    }

    /// A `phone_usage` answer decoded to its end: its `next`, or why it is not a page, in the
    /// words said of any answer that is not the documented JSON (not UTF-8 at an offset, not
    /// JSON, empty, not of the documented shape), with the start of the body.
    fn usage_page(
        &self,
        page_url: &str,
        status: StatusCode,
        seen: &BodySeen,
        decoder: phone_usage::UsageDecoder,
        parser: &mut Parser,
    ) -> Result<Option<Value>, SourceError> {
        let refused = |failure: String| SourceError::BadBody {
            source_name: self.config.name.clone(),
            url: page_url.to_string(),
            reason: format!(
                "HTTP {status}, {} bytes: {failure}; body: {}",
                seen.bytes,
                seen.preview()
            ),
        };
        let page = decoder
            .finish(parser)
            .map_err(|e| refused(seen.failure(e.category, &e)))?;
        if seen.not_utf8_at().is_some() {
            let reason = "invalid unicode code point";
            return Err(refused(
                seen.failure(serde_json::error::Category::Syntax, &reason),
            ));
        }
        match page.listed {
            Some(true) => Ok(page.next),
            Some(false) => Err(self.bad_body(page_url, "no phoneUsages list")),
            None => Err(self.bad_body(
                page_url,
                &format!(
                    "expected an object with phoneUsages, found {}",
                    seen.preview()
                ),
            )),
        }
    }

    /// Refuses an answer that is not a JSON object, as a page of `list_key` must be: serde
    /// would also read a JSON array as the page's fields in order, and anything but an object
    /// is not a page. Not JSON at all (or not UTF-8) is said as such; JSON of another kind is
    /// checked without building it.
    fn object_page(
        &self,
        url: &str,
        answer: &HttpAnswer,
        list_key: &str,
    ) -> Result<(), SourceError> {
        if answer.body.trim_ascii_start().starts_with(b"{") {
            return Ok(());
        }
        self.http.json::<serde::de::IgnoredAny>(url, answer)?;
        Err(self.bad_body(
            url,
            &format!(
                "expected an object with {list_key}, found {}",
                answer.text()
            ),
        ))
    }

    fn bad_body(&self, url: &str, reason: &str) -> SourceError {
        SourceError::BadBody {
            source_name: self.config.name.clone(),
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The URL of a page: the first, or the one `cursor` names (an absolute URL, a path, or
    /// an opaque cursor sent as `next=`).
    fn page_url(&self, url: &str, cursor: Option<&str>, page_size: Option<u32>) -> String {
        let mut params = Vec::new();
        let base = match cursor {
            Some(c) if c.starts_with("http://") || c.starts_with("https://") => c.to_string(),
            Some(c) if c.starts_with('/') => {
                let origin = self.config.url.trim_end_matches('/');
                match c.starts_with("/api/") {
                    true => format!("{origin}{c}"),
                    false => format!("{}{c}", self.base),
                }
            }
            Some(c) => {
                params.push(format!("next={}", encode(c)));
                url.to_string()
            }
            None => url.to_string(),
        };
        if let Some(size) = page_size {
            if !base.contains("page_size=") {
                params.insert(0, format!("page_size={size}"));
            }
        }
        if params.is_empty() {
            return base;
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{}", params.join("&"))
    }

    /// `GET url` with a valid access token: logs in first if needed; on 401 refreshes once,
    /// then logs in again once, then gives up. With `stream`, a 2xx answer's body is left to
    /// be decoded as it arrives.
    async fn get_authorised(&mut self, url: &str, stream: bool) -> Result<Opened, SourceError> {
        if self.tokens.is_none() {
            self.tokens = Some(self.authenticate().await?);
        }
        let mut refreshed = false;
        let mut relogged = false;
        loop {
            let access = self.tokens.as_ref().map(|t| t.access.clone());
            let auth = match &access {
                Some(token) => Auth::Bearer(token),
                None => Auth::None,
            };
            let answer = match stream {
                true => match self.http.get_streaming(url, auth).await? {
                    Opened::Whole(answer) => answer,
                    streaming => return Ok(streaming),
                },
                false => self.http.get(url, auth).await?,
            };
            if answer.status != StatusCode::UNAUTHORIZED {
                return Ok(Opened::Whole(answer));
            }
            if let FusionAuth::Token(_) = self.config.auth {
                return Err(self.unauthorized(&format!(
                    "the machine token was refused ({}); replace token_file",
                    error_message(&answer)
                )));
            }
            if !refreshed {
                refreshed = true;
                if let Some(tokens) = self.refresh().await? {
                    self.tokens = Some(tokens);
                    continue;
                }
            }
            if !relogged {
                relogged = true;
                self.tokens = None;
                self.tokens = Some(self.login().await?);
                continue;
            }
            self.tokens = None;
            return Err(self.unauthorized(&format!(
                "{url} refused a fresh login's token ({})",
                error_message(&answer)
            )));
        }
    }

    async fn authenticate(&self) -> Result<Tokens, SourceError> {
        match &self.config.auth {
            FusionAuth::Token(token) => Ok(Tokens {
                access: token.clone(),
                refresh: None,
            }),
            FusionAuth::Login { .. } => self.login().await,
        }
    }

    async fn login(&self) -> Result<Tokens, SourceError> {
        let FusionAuth::Login { username, password } = &self.config.auth else {
            return Err(self.unauthorized("the machine token was refused"));
        };
        let url = format!("{}/auth/login", self.base);
        let body = serde_json::json!({"username": username, "password": password.expose()});
        let answer = self.http.post_json(&url, &body, Auth::None).await?;
        if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(&format!(
                "login as {username:?} refused: {}",
                error_message(&answer)
            )));
        }
        if !answer.status.is_success() {
            return Err(self.refused(&url, &answer));
        }
        let value: Value = self.http.json(&url, &answer)?;
        if value.get("2fa_payload").is_some() {
            return Err(SourceError::Config {
                source_name: self.config.name.clone(),
                message: format!(
                    "Fusion asks for two-factor authentication for {username:?} because this \
                     host is not trusted; a daemon cannot answer it. Mark this host as trusted \
                     for that user in Fusion, or configure a machine token (token_file) \
                     instead of password_file"
                ),
            });
        }
        self.tokens_from(&url, &value, true)
    }

    /// A new access token from the refresh token; `None` when it was refused (log in again).
    async fn refresh(&self) -> Result<Option<Tokens>, SourceError> {
        let Some(refresh) = self.tokens.as_ref().and_then(|t| t.refresh.clone()) else {
            return Ok(None);
        };
        let url = format!("{}/auth/access_token", self.base);
        let answer = self.http.get(&url, Auth::Bearer(&refresh)).await?;
        if matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self.refused(&url, &answer));
        }
        let value: Value = self.http.json(&url, &answer)?;
        let mut tokens = self.tokens_from(&url, &value, false)?;
        if tokens.refresh.is_none() {
            tokens.refresh = Some(refresh);
        }
        Ok(Some(tokens))
    }

    fn tokens_from(&self, url: &str, value: &Value, login: bool) -> Result<Tokens, SourceError> {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
        };
        let Some(access) = text("access_token") else {
            return Err(SourceError::BadBody {
                source_name: self.config.name.clone(),
                url: url.to_string(),
                reason: "no access_token in the answer".into(),
            });
        };
        let refresh = text("refresh_token");
        if login && refresh.is_none() {
            return Err(SourceError::BadBody {
                source_name: self.config.name.clone(),
                url: url.to_string(),
                reason: "no refresh_token in the login answer".into(),
            });
        }
        Ok(Tokens { access, refresh })
    }

    fn unauthorized(&self, message: &str) -> SourceError {
        SourceError::Unauthorized {
            source_name: self.config.name.clone(),
            message: message.to_string(),
        }
    }

    fn refused(&self, url: &str, answer: &HttpAnswer) -> SourceError {
        SourceError::Refused {
            source_name: self.config.name.clone(),
            method: "GET",
            url: url.to_string(),
            status: answer.status.as_u16(),
            message: error_message(answer),
        }
    }
}

/// The message of a Fusion error body, `{"error":{"code":N,"reason":"..."}}` or
/// `{"error":"..."}`, else the body itself (cut).
pub fn error_message(answer: &HttpAnswer) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(Value::String(reason)) => reason.clone(),
        Some(Value::Object(error)) => {
            let reason = error
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            match error.get("code") {
                Some(code) => format!("error {code}: {reason}"),
                None => reason.to_string(),
            }
        }
        _ if answer.body.is_empty() => "empty body".to_string(),
        _ => answer.text(),
    }
}

fn next_cursor(next: Option<Value>) -> Result<Option<String>, String> {
    match next {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("next is neither a string nor null: {other}")),
    }
}

/// Percent-encodes a cursor for a query string.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One `phone_usage` item. Its fields borrow from the item's text (copied only when escaped).
#[derive(Deserialize)]
struct PhoneUsage<'a> {
    #[serde(rename = "phoneNumber", borrow, default)]
    phone_number: Option<UsageText<'a>>,
    #[serde(borrow, default)]
    tenant: Option<UsageText<'a>>,
    #[serde(borrow, default)]
    group: Option<UsageText<'a>>,
    #[serde(borrow, default)]
    reseller: Option<UsageText<'a>>,
    #[serde(borrow, default)]
    distributor: Option<UsageText<'a>>,
    #[serde(borrow, default)]
    username: Option<UsageText<'a>>,
}

/// A string field of a `phone_usage` item. serde borrows a `Cow` field only when it is the
/// field's whole type: as `Option<Cow<str>>` every field of a million items was copied.
#[derive(Deserialize)]
#[serde(transparent)]
struct UsageText<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for UsageText<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// One page of the Operator Connect numbers of a subscription. Its items are small objects
/// (`draas`, `msTeams`), taken as raw JSON text and read one by one, so one odd item (even
/// one a JSON tree cannot hold, such as a number past f64's range) rejects itself, not the
/// page.
#[derive(Deserialize)]
struct OcPage<'a> {
    #[serde(borrow, default)]
    numbers: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    next: Option<Value>,
}

/// Turns items into entries, rejecting bad ones and collapsing exact duplicates.
struct Parser {
    /// The source's name, shared by the provenance of every entry.
    name: std::sync::Arc<String>,
    /// The `phone_usage` tag rule, remembering its answers for this fetch's `slugs`.
    tags: RenderedTags,
    limits: ItemLimits,
    fixed_tag: Option<Tag>,
    /// Items seen so far, for item labels.
    index: usize,
    tags_seen: HashSet<Tag>,
    /// Every tenant named so far, one copy each for the labels of its items.
    tenants: HashMap<String, std::sync::Arc<String>>,
    /// Items are cut out of the answer (to find its `next`) but not read: the answer is
    /// only being digested.
    digest_only: bool,
    /// Tags made through `{field:slug}` in this fetch, and the values each came from.
    slugs: SlugClaims,
    out: SourceEntries,
}

impl Parser {
    fn new(config: &FusionConfig, fixed_tag: Option<Tag>) -> Parser {
        Parser {
            name: std::sync::Arc::new(config.name.clone()),
            tags: RenderedTags::new(config.tags.clone(), config.limits.max_tag_len),
            limits: config.limits,
            fixed_tag,
            index: 0,
            tags_seen: HashSet::new(),
            tenants: HashMap::new(),
            digest_only: false,
            slugs: SlugClaims::default(),
            out: SourceEntries::default(),
        }
    }

    fn finish(mut self) -> SourceEntries {
        self.out.drop_exact_duplicates();
        self.out
    }

    /// A new list begins: its items are numbered from 1 in their labels.
    fn start_list(&mut self) {
        self.index = 0;
    }

    fn push(&mut self, item: impl Into<Item>, result: Result<(Coverage, Tag), String>) {
        let item = item.into();
        match result {
            Ok((coverage, tag)) => {
                // Every item renders its own tag; keep one copy of each distinct one.
                let tag = match self.tags_seen.get(&tag) {
                    Some(shared) => shared.clone(),
                    None => {
                        self.tags_seen.insert(tag.clone());
                        tag
                    }
                };
                self.out.entries.push(Entry {
                    coverage,
                    tag,
                    provenance: Provenance {
                        source: self.name.clone(),
                        item,
                    },
                });
            }
            Err(reason) => self.out.rejected.push(Rejected {
                item: item.into_text(),
                reason,
            }),
        }
    }

    /// One page of `subscription`'s Operator Connect numbers.
    fn oc_numbers(
        &mut self,
        subscription: &OcSubscription,
        include_unprovisioned: bool,
        items: &[&RawValue],
    ) {
        for raw in items {
            self.index += 1;
            let item = serde_json::from_str::<Value>(raw.get());
            let shown = item.as_ref().map(oc_numbers::shown_number);
            let label = format!(
                "oc_number tenant={} subscription={} #{} number={:?}",
                subscription.tenant,
                subscription.subscription,
                self.index,
                shown.as_deref().unwrap_or_default()
            );
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    let reason = format!(
                        "not an Operator Connect number object ({e}): {}",
                        truncate(raw.get())
                    );
                    self.push(label, Err(reason));
                    continue;
                }
            };
            let result = match oc_numbers::read(&item, include_unprovisioned) {
                Ok(None) => continue,
                Ok(Some(number)) => {
                    let field = |name: &str| match name {
                        "tenant" => Some(subscription.tenant.as_str()),
                        "subscription" => Some(subscription.subscription.as_str()),
                        "usage" => number.usage,
                        "country" => number.country,
                        _ => None,
                    };
                    subscription
                        .tags
                        .tag_for(
                            Some(&subscription.tenant),
                            field,
                            self.limits.max_tag_len,
                            &mut self.slugs,
                        )
                        .map(|tag| (Coverage::Range(NumberRange::single(number.number)), tag))
                }
                Err(reason) => Err(reason),
            };
            self.push(label, result);
        }
    }

    /// One `phone_usage` item, as its JSON text: an entry, or a rejection naming it. An item
    /// that is JSON of another shape rejects itself only; one that is not JSON at all is an
    /// error, which refuses the whole answer (as serde_json refuses a body holding it).
    fn usage_item(&mut self, item: &[u8]) -> Result<(), serde_json::Error> {
        if self.digest_only {
            return Ok(());
        }
        self.index += 1;
        let index = self.index;
        // Checked as UTF-8 once, the item's strings are not checked again one by one.
        let read = match std::str::from_utf8(item) {
            Ok(text) => serde_json::from_str::<PhoneUsage>(text),
            Err(_) => serde_json::from_slice::<PhoneUsage>(item),
        };
        match read {
            Ok(usage) => {
                let result = self.usage(&usage);
                let number = match &result {
                    Ok((Coverage::Range(range), _)) => Some(range.lo()),
                    _ => None,
                };
                let tenant = self.tenant(usage.tenant.as_deref().unwrap_or(""));
                let label = Item::phone_usage(
                    index,
                    usage.phone_number.as_deref().unwrap_or(""),
                    number,
                    &tenant,
                );
                self.push(label, result);
            }
            Err(e) => {
                // A shape error may come before a syntax error further on in the item.
                serde_json::from_slice::<serde::de::IgnoredAny>(item)?;
                self.push(
                    format!(
                        "phone_usage #{index} {}",
                        truncate(&String::from_utf8_lossy(item))
                    ),
                    Err(format!("not a phone usage object: {e}")),
                );
            }
        }
        Ok(())
    }

    /// The one copy of tenant `name`.
    fn tenant(&mut self, name: &str) -> std::sync::Arc<String> {
        match self.tenants.get(name) {
            Some(shared) => shared.clone(),
            None => {
                let shared = std::sync::Arc::new(name.to_string());
                self.tenants.insert(name.to_string(), shared.clone());
                shared
            }
        }
    }

    fn usage(&mut self, usage: &PhoneUsage) -> Result<(Coverage, Tag), String> {
        let raw = usage
            .phone_number
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or("no phoneNumber")?;
        let number = Number::parse(raw).map_err(|e| format!("number {raw:?}: {e}"))?;
        let field = |name: &str| match name {
            "tenant" => usage.tenant.as_deref(),
            "group" => usage.group.as_deref(),
            "reseller" => usage.reseller.as_deref(),
            "distributor" => usage.distributor.as_deref(),
            "user" => usage.username.as_deref(),
            _ => None,
        };
        let tag = self
            .tags
            .tag_for(usage.tenant.as_deref(), field, &mut self.slugs)?;
        Ok((Coverage::Range(NumberRange::single(number)), tag))
    }

    /// One answer of the range feed: an array, or an object holding the list (`ranges`, or
    /// its one array field). Returns the object's `next`.
    fn ranges_page(&mut self, body: Value, url: &str) -> Result<Option<Value>, SourceError> {
        let bad = |reason: String| SourceError::BadBody {
            source_name: self.name.to_string(),
            url: url.to_string(),
            reason,
        };
        let (items, next) = match body {
            Value::Array(items) => (items, None),
            Value::Object(mut object) => {
                let next = object.remove("next");
                let key = if object.get("ranges").is_some_and(Value::is_array) {
                    "ranges".to_string()
                } else {
                    let arrays: Vec<&String> = object
                        .iter()
                        .filter(|(_, v)| v.is_array())
                        .map(|(k, _)| k)
                        .collect();
                    match arrays.as_slice() {
                        [one] => (*one).clone(),
                        [] => return Err(bad("an object without a list of ranges".into())),
                        many => {
                            return Err(bad(format!(
                                "an object with several lists ({}); expected one, or \"ranges\"",
                                many.iter()
                                    .map(|k| k.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )))
                        }
                    }
                };
                match object.remove(&key) {
                    Some(Value::Array(items)) => (items, next),
                    _ => return Err(bad("no list of ranges".into())),
                }
            }
            other => {
                return Err(bad(format!(
                    "expected an array or an object of ranges, found {}",
                    preview_json(&other)
                )))
            }
        };
        for item in items {
            self.index += 1;
            let label = match item.get("id") {
                Some(id) => format!("range #{} id={id}", self.index),
                None => format!("range #{}", self.index),
            };
            let result = self.range(&item);
            self.push(label, result);
        }
        Ok(next)
    }

    /// One number-range object. Its bounds are national significant numbers: Fusion keeps
    /// every number as country code plus NSN, and its portal shows a range as
    /// `{countryCode}{rangeStart}`. The country code is therefore always prepended; a Belgian
    /// range `32001000..32001099` (Antwerp) is `+3232001000..`, and guessing from whether the
    /// digits happen to start with the country code would have made it `+32001000`.
    fn range(&self, item: &Value) -> Result<(Coverage, Tag), String> {
        if !item.is_object() {
            return Err(format!("not a range object: {}", preview_json(item)));
        }
        let Some(country) = country_code(item.get("countryCode"), "countryCode")? else {
            return Err("no countryCode, and the bounds are national numbers".into());
        };
        let start = bound(item, "rangeStart")?;
        let end = bound(item, "rangeEnd")?;
        let (lo_text, hi_text) = (format!("+{country}{start}"), format!("+{country}{end}"));
        let lo = Number::parse(&lo_text).map_err(|e| format!("rangeStart {lo_text}: {e}"))?;
        let hi = Number::parse(&hi_text).map_err(|e| format!("rangeEnd {hi_text}: {e}"))?;
        let range = NumberRange::new(lo, hi, self.limits.max_range_size)
            .map_err(|e| format!("range {lo_text}..{hi_text}: {e}"))?;
        let tag = self
            .fixed_tag
            .clone()
            .ok_or("the range feed has no fixed tag")?;
        Ok((Coverage::Range(range), tag))
    }
}

/// A country code (`32`, `"32"` or `"+32"`) as its digits; absent, null or blank is `None`.
/// `key` names the field in the reason.
fn country_code(value: Option<&Value>, key: &str) -> Result<Option<String>, String> {
    let digits = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().trim_start_matches('+').to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("{key} {other} is not a country code")),
    };
    let valid = (1..=3).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    match valid {
        true => Ok(Some(digits)),
        false => Err(format!("{key} {digits:?} is not a country code")),
    }
}

/// A range bound as its digits: a JSON integer (the documented form) or a string of digits
/// (whose other characters, if any, the number parser then names). A bound written with a
/// `+` is refused: it claims to be international, and the country code is prepended to every
/// bound, so taking it as it is would bring the guess back.
fn bound(item: &Value, key: &str) -> Result<String, String> {
    match item.get(key) {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Err(format!("{key} is 0")),
            Some(v) => Ok(v.to_string()),
            None => Err(format!("{key} {n} is not a positive integer")),
        },
        Some(Value::String(s)) if s.trim().starts_with('+') => Err(format!(
            "{key} {s:?} is international, but range bounds are national numbers (the \
             countryCode is prepended)"
        )),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        None | Some(Value::Null) => Err(format!("no {key}")),
        Some(other) => Err(format!("{key} {other} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_items_strings_are_borrowed_unless_escaped() {
        let text = r#"{"phoneNumber":"+3225400010","tenant":"a\"b","group":null}"#;
        let usage: PhoneUsage = serde_json::from_str(text).unwrap();
        let number = usage.phone_number.unwrap();
        assert!(matches!(number.0, Cow::Borrowed("+3225400010")));
        let tenant = usage.tenant.unwrap();
        assert!(matches!(tenant.0, Cow::Owned(_)));
        assert_eq!(&*tenant, "a\"b");
        assert!(usage.group.is_none());
    }
}
