//! The Live Platform source (DESIGN.md §5.2): the numbers of each configured Microsoft tenant,
//! from the paginated v3 number list, with an OAuth2 client-credentials Bearer token.
//!
//! `GET {base}/api/v3/oc/numbers?msTenantId=..&pageNumber=..&pageSize=..` (pages from 1) answers
//! `{"currentPage","pageSize","totalPages","totalRecords","data":[...]}`. Every page is read; a
//! chain that breaks off early, changes its totals on the way, or does not add up to
//! `totalRecords` fails the whole fetch (the agent then uses the last good snapshot): a
//! partial list is never used. A number is desired unless its `acquiredNumberStatus` says
//! otherwise: every example answer the vendor publishes carries `"acquiredNumberStatus": null`
//! for numbers in service, so a null or absent status counts as assigned, and only an explicit
//! status other than `Active` ("Release Requested", "Marked For Removal"...) leaves a number
//! out. A malformed number rejects that item alone, with a reason naming tenant and number.
//!
//! The token comes from the shared [`TokenCache`]; on a 401 it is fetched again once, and a
//! second 401 (or a refused secret) is [`SourceError::Unauthorized`].
//!
//! API requests go through [`SourceHttp`]. The token POST is form-encoded, which
//! [`SourceHttp`] does not send, so [`TokenCache`] sends it itself on [`SourceHttp::client`]:
//! the same client, timeouts and User-Agent, without the retries (a token endpoint that
//! fails fails this fetch, and the next cycle asks again).

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::http::{check_url, within, Auth, HttpAnswer, HttpConfig, SourceHttp};
use super::tag::{SlugClaims, TagRule, TagTemplate, TemplateError};
use super::{ItemLimits, LastAnswer, Rejected, SourceEntries, SourceError};
use crate::net::answer_digest::AnswerHasher;
use crate::net::oauth::{ClientCredentials, OAuthError, TokenCache};
use crate::net::preview::{preview_json, truncate};
use crate::net::secret::Secret;
use crate::number::{Number, NumberRange};
use crate::resolve::{Coverage, Entry, Provenance};

/// The fields a Live Platform tag template may use.
pub const TAG_FIELDS: &[&str] = &["tenant_id"];

/// The one explicit status of a number that is desired (a null or absent status is desired
/// too; see [`Decoder::item`]).
pub const ACTIVE: &str = "Active";

/// Parses a Live Platform tag template (`Trunk={tenant_id}`), accepting only [`TAG_FIELDS`].
pub fn parse_template(text: &str) -> Result<TagTemplate, TemplateError> {
    TagTemplate::parse(text, TAG_FIELDS)
}

/// One `[[sources]]` entry of kind `livecloud`, resolved.
#[derive(Clone, Debug)]
pub struct LiveCloudSourceConfig {
    pub name: String,
    /// The API base, e.g. `https://live.example.net`.
    pub url: String,
    pub credentials: ClientCredentials,
    /// The Microsoft tenants whose numbers are read (`msTenantId`).
    pub ms_tenant_ids: Vec<String>,
    /// Tag template over `tenant_id`; overrides keyed by tenant id.
    pub tags: TagRule,
    pub page_size: usize,
    /// A chain claiming more pages than this is refused.
    pub max_pages: usize,
    pub limits: ItemLimits,
    /// The whole fetch, every tenant, page and retry included.
    pub timeout: Duration,
    pub http: HttpConfig,
}

impl LiveCloudSourceConfig {
    pub fn new(
        name: &str,
        url: &str,
        credentials: ClientCredentials,
        ms_tenant_ids: Vec<String>,
        tags: TagRule,
    ) -> LiveCloudSourceConfig {
        LiveCloudSourceConfig {
            name: name.to_string(),
            url: url.to_string(),
            credentials,
            ms_tenant_ids,
            tags,
            page_size: 500,
            max_pages: 100_000,
            limits: ItemLimits::default(),
            timeout: Duration::from_secs(120),
            http: HttpConfig::default(),
        }
    }
}

/// A Live Platform source. Keeps its token between fetches.
pub struct LiveCloudSource {
    config: LiveCloudSourceConfig,
    http: SourceHttp,
    tokens: TokenCache,
    numbers_url: String,
}

impl fmt::Debug for LiveCloudSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCloudSource")
            .field("name", &self.config.name)
            .field("numbers_url", &self.numbers_url)
            .field("tenants", &self.config.ms_tenant_ids.len())
            .finish_non_exhaustive()
    }
}

impl LiveCloudSource {
    /// Checks the configuration and builds the clients (no request is sent yet).
    pub fn new(config: LiveCloudSourceConfig) -> Result<LiveCloudSource, SourceError> {
        for url in [&config.url, &config.credentials.token_url] {
            check_url(&config.name, url)?;
        }
        if config.page_size == 0 || config.max_pages == 0 {
            return Err(SourceError::Config {
                source_name: config.name.clone(),
                message: "page_size and max_pages must be at least 1".into(),
            });
        }
        let http = SourceHttp::new(&config.name, config.http.clone())?;
        let numbers_url = format!("{}/api/v3/oc/numbers", config.url.trim_end_matches('/'));
        let tokens = TokenCache::new(config.credentials.clone());
        Ok(LiveCloudSource {
            config,
            http,
            tokens,
            numbers_url,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Tokens fetched so far.
    pub fn tokens_fetched(&self) -> usize {
        self.tokens.fetched()
    }

    /// Reads every page of every configured tenant within `timeout`.
    pub async fn fetch(&mut self) -> Result<SourceEntries, SourceError> {
        self.fetch_since(&LastAnswer::default()).await
    }

    /// [`Self::fetch`], its answers' digest keyed by `last`'s context.
    pub async fn fetch_since(&mut self, last: &LastAnswer) -> Result<SourceEntries, SourceError> {
        let (name, timeout) = (self.config.name.clone(), self.config.timeout);
        within(&name, timeout, self.fetch_all(last)).await
    }

    async fn fetch_all(&mut self, last: &LastAnswer) -> Result<SourceEntries, SourceError> {
        let mut decoder = Decoder::new(&self.config);
        let mut answer = AnswerHasher::default();
        for tenant in self.config.ms_tenant_ids.clone() {
            let items = self.tenant_numbers(&tenant, &mut answer).await?;
            for item in &items {
                decoder.item(&tenant, &self.config.tags, item);
            }
        }
        Ok(decoder.finish().decoded_from(answer, &last.context))
    }

    /// Every number of `tenant`, all pages, checked for a consistent chain; each page is fed
    /// to `digest` as it came.
    async fn tenant_numbers(
        &self,
        tenant: &str,
        digest: &mut AnswerHasher,
    ) -> Result<Vec<Value>, SourceError> {
        let size = self.config.page_size;
        let mut chain = PageChain::new(size, self.config.max_pages);
        loop {
            let url = format!(
                "{}?msTenantId={}&pageNumber={}&pageSize={size}",
                self.numbers_url,
                encode(tenant),
                chain.page()
            );
            let answer = self.get_authorised(&url).await?;
            if answer.status != StatusCode::OK {
                return Err(SourceError::Refused {
                    source_name: self.config.name.clone(),
                    method: "GET",
                    url,
                    status: answer.status.as_u16(),
                    message: problem_detail(&answer),
                });
            }
            digest.answer(&url, answer.status.as_u16(), &answer.body);
            let body: Value = self.http.json(&url, &answer)?;
            match chain.push(&body) {
                Ok(false) => {}
                Ok(true) => return Ok(chain.into_items()),
                Err(PageError::BadBody(reason)) => {
                    return Err(SourceError::BadBody {
                        source_name: self.config.name.clone(),
                        url,
                        reason,
                    })
                }
                Err(PageError::Pagination(reason)) => {
                    return Err(SourceError::Pagination {
                        source_name: self.config.name.clone(),
                        url,
                        reason,
                    })
                }
            }
        }
    }

    /// `GET url` with a Bearer token; a 401 fetches a new token once, then gives up.
    async fn get_authorised(&self, url: &str) -> Result<HttpAnswer, SourceError> {
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await?;
            let answer = self.http.get(url, Auth::Bearer(&token)).await?;
            if answer.status != StatusCode::UNAUTHORIZED {
                return Ok(answer);
            }
            if !refreshed {
                refreshed = true;
                continue;
            }
            self.tokens.clear().await;
            return Err(SourceError::Unauthorized {
                source_name: self.config.name.clone(),
                message: format!(
                    "{url} refused a freshly fetched token for client {:?}: {}",
                    self.config.credentials.client_id,
                    problem_detail(&answer)
                ),
            });
        }
    }

    async fn token(&self, force: bool) -> Result<Secret, SourceError> {
        let token_url = &self.config.credentials.token_url;
        self.tokens
            .token(self.http.client(), force)
            .await
            .map_err(|e| match e {
                OAuthError::Transport(e) => SourceError::Http {
                    source_name: self.config.name.clone(),
                    method: "POST",
                    url: token_url.clone(),
                    reason: e.to_string(),
                },
                OAuthError::Server { status, body, .. } => SourceError::Server {
                    source_name: self.config.name.clone(),
                    method: "POST",
                    url: token_url.clone(),
                    status,
                    body,
                },
                OAuthError::Refused { status, reason } => SourceError::Unauthorized {
                    source_name: self.config.name.clone(),
                    message: format!(
                        "the token endpoint {token_url} refused client {:?} with HTTP \
                         {status} ({reason}); check client_id, the client secret and scope",
                        self.config.credentials.client_id
                    ),
                },
                OAuthError::BadBody(reason) => SourceError::BadBody {
                    source_name: self.config.name.clone(),
                    url: token_url.clone(),
                    reason,
                },
            })
    }
}

/// The `detail` (or `title`) of a problem-details body, or the body, cut to log size.
fn problem_detail(answer: &HttpAnswer) -> String {
    serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v.get("detail")
                .or_else(|| v.get("title"))
                .and_then(Value::as_str)
                .map(truncate)
        })
        .unwrap_or_else(|| answer.text())
}

/// Percent-encodes a query value.
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

/// Why an answer of the number list fails the whole fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageError {
    /// Not the documented page ([`SourceError::BadBody`]).
    BadBody(String),
    /// A page that does not continue the chain consistently ([`SourceError::Pagination`]).
    Pagination(String),
}

/// The pages of one tenant's number list, taken in order and checked to form one consistent
/// chain: each the page asked for, of the size asked for, with the same totals, adding up to
/// `totalRecords` in `totalPages` pages. Public for the fuzzers and tests; the fetch uses it.
#[derive(Debug)]
pub struct PageChain {
    size: usize,
    max_pages: usize,
    /// The page to ask for next (from 1).
    page: u64,
    /// `totalPages` and `totalRecords` of the first page.
    totals: Option<(u64, u64)>,
    items: Vec<Value>,
}

impl PageChain {
    /// A chain of pages of `page_size` numbers, refused past `max_pages` pages. A source
    /// never has a `page_size` of 0 ([`LiveCloudSource::new`] refuses it); it counts as 1.
    pub fn new(page_size: usize, max_pages: usize) -> PageChain {
        PageChain {
            size: page_size.max(1),
            max_pages,
            page: 1,
            totals: None,
            items: Vec::new(),
        }
    }

    /// The number of the page to ask for next.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Takes the answer to [`PageChain::page`]; `Ok(true)` when it was the last page.
    pub fn push(&mut self, body: &Value) -> Result<bool, PageError> {
        let (page, size) = (self.page, self.size);
        let broken = PageError::Pagination;
        let bad = PageError::BadBody;
        let count = |key: &str| {
            body.get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("no integer {key}")))
        };
        let current = count("currentPage")?;
        let total_pages = count("totalPages")?;
        let total_records = count("totalRecords")?;
        let page_size = count("pageSize")?;
        let data = match body.get("data") {
            Some(Value::Array(data)) => data,
            None | Some(Value::Null) => return Err(bad("no \"data\" list".into())),
            Some(other) => {
                return Err(bad(format!(
                    "\"data\" is {}, expected an array: {}",
                    match other {
                        Value::Object(_) => "an object",
                        Value::String(_) => "a string",
                        Value::Number(_) => "a number",
                        _ => "not a list",
                    },
                    preview_json(other)
                )))
            }
        };
        if current != page {
            return Err(broken(format!("asked for page {page}, got page {current}")));
        }
        if page_size != size as u64 {
            return Err(broken(format!(
                "asked for pages of {size}, got pageSize {page_size}"
            )));
        }
        match self.totals {
            None => self.totals = Some((total_pages, total_records)),
            Some(first) if first != (total_pages, total_records) => {
                return Err(broken(format!(
                    "totals changed during the fetch: first {} pages / {} records, now {} \
                     / {}",
                    first.0, first.1, total_pages, total_records
                )))
            }
            Some(_) => {}
        }
        if total_pages > self.max_pages as u64 {
            return Err(broken(format!(
                "totalPages {total_pages} is more than max_pages {}",
                self.max_pages
            )));
        }
        let expected_pages = total_records.div_ceil(size as u64);
        if total_pages != expected_pages {
            return Err(broken(format!(
                "totalPages {total_pages} contradicts totalRecords {total_records} at \
                 {size} per page ({expected_pages} pages)"
            )));
        }
        let last = page >= total_pages;
        let want = if last {
            total_records.saturating_sub(self.items.len() as u64)
        } else {
            size as u64
        };
        if data.len() as u64 != want {
            return Err(broken(format!(
                "page {page} of {total_pages} holds {} numbers, expected {want}",
                data.len()
            )));
        }
        self.items.extend(data.iter().cloned());
        if !last {
            self.page += 1;
        }
        Ok(last)
    }

    /// Every number of the chain, in page order.
    pub fn into_items(self) -> Vec<Value> {
        self.items
    }
}

/// Decodes the answers to the pages of `tenant`'s number list, in order, into entries and
/// rejected numbers, as a fetch does: `Err` is why the whole fetch would fail. Answers after
/// the one that completes the chain are ignored; running out of answers before it is a
/// [`PageError::Pagination`].
///
/// For the fuzzers and tests: the fetch itself runs the same [`PageChain`] and [`Decoder`].
pub fn decode_pages<'a>(
    config: &LiveCloudSourceConfig,
    tenant: &str,
    bodies: impl IntoIterator<Item = &'a [u8]>,
) -> Result<SourceEntries, PageError> {
    let mut chain = PageChain::new(config.page_size, config.max_pages);
    let mut bodies = bodies.into_iter();
    loop {
        let Some(body) = bodies.next() else {
            return Err(PageError::Pagination(format!(
                "no answer for page {}",
                chain.page()
            )));
        };
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| PageError::BadBody(format!("not JSON: {e}")))?;
        if chain.push(&body)? {
            break;
        }
    }
    let mut decoder = Decoder::new(config);
    for item in &chain.into_items() {
        decoder.item(tenant, &config.tags, item);
    }
    Ok(decoder.finish())
}

/// Turns the numbers of one fetch into entries, rejecting bad ones one by one and collapsing
/// exact duplicates across tenants. Public for the fuzzers and tests.
pub struct Decoder {
    /// The source's name, shared by the provenance of every entry.
    name: std::sync::Arc<String>,
    limits: ItemLimits,
    /// Tags made through `{tenant_id:slug}` in this fetch, and the tenant each came from.
    slugs: SlugClaims,
    out: SourceEntries,
}

impl Decoder {
    /// A decoder for one fetch of the source `config` describes.
    pub fn new(config: &LiveCloudSourceConfig) -> Decoder {
        Decoder {
            name: std::sync::Arc::new(config.name.clone()),
            limits: config.limits,
            slugs: SlugClaims::default(),
            out: SourceEntries::default(),
        }
    }

    /// What the fetch yields.
    pub fn finish(mut self) -> SourceEntries {
        self.out.drop_exact_duplicates();
        self.out
    }

    /// One item of `tenant`'s number list: an entry, a rejection, or nothing (an explicit
    /// status other than `Active`).
    ///
    /// A null or absent `acquiredNumberStatus` is taken as assigned: the vendor's own example
    /// answers carry `null` for numbers in service. Reading null as "not desired" would drop
    /// the route of a number whose status turns null, and refuse a tenant whose numbers all
    /// carry it, although nothing about the numbers changed.
    pub fn item(&mut self, tenant: &str, tags: &TagRule, item: &Value) {
        let number = item.get("telephoneNumber").and_then(Value::as_str);
        let label = format!(
            "tenant={tenant} number={}",
            number.map_or_else(
                || preview_json(item.get("telephoneNumber").unwrap_or(&Value::Null)),
                str::to_string
            )
        );
        let (limits, slugs) = (self.limits, &mut self.slugs);
        let result = (|| {
            if !item.is_object() {
                return Err(format!("not an object: {}", preview_json(item)));
            }
            match item.get("acquiredNumberStatus") {
                None | Some(Value::Null) => {}
                // A blank status states nothing either.
                Some(Value::String(s)) if s.trim().is_empty() || s.trim() == ACTIVE => {}
                Some(Value::String(_)) => return Ok(None),
                Some(other) => {
                    return Err(format!(
                        "acquiredNumberStatus {} is not text",
                        preview_json(other)
                    ))
                }
            }
            let text = match item.get("telephoneNumber") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
                None | Some(Value::Null) | Some(Value::String(_)) => {
                    return Err("no telephoneNumber".into())
                }
                Some(other) => {
                    return Err(format!(
                        "telephoneNumber {} is not a string",
                        preview_json(other)
                    ))
                }
            };
            if let Some(Value::String(id)) = item.get("tenantId") {
                if !id.is_empty() && id != tenant {
                    return Err(format!(
                        "tenantId {id:?} is not the tenant {tenant:?} that was asked for"
                    ));
                }
            }
            let n = Number::parse(text).map_err(|e| format!("telephoneNumber {text:?}: {e}"))?;
            let range = NumberRange::new(n, n, limits.max_range_size)
                .map_err(|e| format!("telephoneNumber {text:?}: {e}"))?;
            let field = |name: &str| (name == "tenant_id").then_some(tenant);
            let tag = tags.tag_for(Some(tenant), field, limits.max_tag_len, slugs)?;
            Ok(Some((Coverage::Range(range), tag)))
        })();
        match result {
            Ok(None) => {}
            Ok(Some((coverage, tag))) => {
                self.out.entries.push(Entry {
                    coverage,
                    tag,
                    provenance: Provenance {
                        source: self.name.clone(),
                        item: label.into(),
                    },
                });
            }
            Err(reason) => self.out.rejected.push(Rejected {
                item: label,
                reason,
            }),
        }
    }
}
