//! Fusion's Operator Connect numbers (DESIGN.md §5.3, `feed = "oc_numbers"`): the feed that
//! says which numbers each Teams customer has. Per configured subscription,
//! `GET /draas/{draas_instance}/tenants/{tenant}/subscriptions/{subscription}/msteams/oc/numbers`
//! answers `{"numbers":[{"draas":{...},"msTeams":{...}}],"next":"..."}`, the shape Netaxis's
//! own portal reads, paginated with `page_size` and a `next` cursor.
//!
//! This module reads one item of that list. The page chain, authentication, retries, body cap
//! and the whole-fetch timeout are the Fusion source's, the same for every feed.

use serde_json::Value;

use super::country_code;
use crate::net::preview::preview_json;
use crate::number::Number;
use crate::source::tag::{TagRule, TagTemplate, TemplateError};

/// The fields a tag template of this feed may use: the configured tenant and subscription,
/// and the item's `msTeams.usage` and `msTeams.country`.
pub const TAG_FIELDS: &[&str] = &["tenant", "subscription", "usage", "country"];

/// `page_size` when the configuration gives none. Netaxis's portal asks for 24 at a time and
/// nothing documents a maximum: a moderate page keeps each answer small, and the cursor does
/// the rest.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Parses a tag template of this feed, accepting only [`TAG_FIELDS`].
pub fn parse_template(text: &str) -> Result<TagTemplate, TemplateError> {
    TagTemplate::parse(text, TAG_FIELDS)
}

/// One configured `(tenant, subscription)` and the tag rule of its numbers (its own `tag`, or
/// the source's template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcSubscription {
    pub tenant: String,
    pub subscription: String,
    pub tags: TagRule,
}

impl OcSubscription {
    /// The list's path under `/draas/{draas_instance}/`.
    pub(super) fn path(&self) -> String {
        format!(
            "tenants/{}/subscriptions/{}/msteams/oc/numbers",
            super::encode(&self.tenant),
            super::encode(&self.subscription)
        )
    }
}

/// A JSON object of an item (`draas`, `msTeams`).
type Object = serde_json::Map<String, Value>;

/// What a desired item says.
#[derive(Debug)]
pub(super) struct OcNumber<'a> {
    pub number: Number,
    /// `msTeams.usage` and `msTeams.country`, for the tag template.
    pub usage: Option<&'a str>,
    pub country: Option<&'a str>,
}

/// The item's number as text, for its label in reports: the first of the three places that
/// holds one, whatever its shape.
pub(super) fn shown_number(item: &Value) -> String {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
    let draas = item.get("draas");
    if let Some(full) = text(draas.and_then(|d| d.get("fullNumber"))) {
        return full.to_string();
    }
    let part = |key: &str| match draas.and_then(|d| d.get(key)) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let (cc, nsn) = (part("countryCode"), part("nsn"));
    if !cc.is_empty() && !nsn.is_empty() {
        return format!("+{cc}{nsn}");
    }
    text(item.get("msTeams").and_then(|m| m.get("number")))
        .unwrap_or_default()
        .to_string()
}

/// One item of the list: `Ok(None)` when it is not wanted (not provisioned on Microsoft
/// Teams, unless `include_unprovisioned`), `Err` with the reason when it cannot be used.
///
/// The number is `draas.fullNumber`, else `+{draas.countryCode}{draas.nsn}`, else
/// `msTeams.number`, as the portal shows it: `draas` is absent for a number Teams knows and
/// Fusion's inventory does not. A field that is there but of the wrong kind is a reason, not
/// a cue to look elsewhere: a number taken from a fallback the upstream did not mean could
/// route calls to the wrong place.
pub(super) fn read(
    item: &Value,
    include_unprovisioned: bool,
) -> Result<Option<OcNumber<'_>>, String> {
    if !item.is_object() {
        return Err(format!(
            "not an Operator Connect number object: {}",
            preview_json(item)
        ));
    }
    let draas = object(item, "draas")?;
    let teams = object(item, "msTeams")?;
    if !include_unprovisioned {
        let provisioned = match teams.and_then(|t| t.get("provisionedOnMSTeams")) {
            Some(Value::Bool(provisioned)) => *provisioned,
            // The portal shows these as "No": not (yet) on Teams, so not routed.
            None | Some(Value::Null) => false,
            Some(other) => {
                return Err(format!(
                    "msTeams.provisionedOnMSTeams {} is not a boolean",
                    preview_json(other)
                ))
            }
        };
        if !provisioned {
            return Ok(None);
        }
    }
    let (field, text) = number_text(draas, teams)?;
    let number = Number::parse(&text).map_err(|e| format!("{field} {text:?}: {e}"))?;
    Ok(Some(OcNumber {
        number,
        usage: teams.and_then(|t| text_field(t, "usage")),
        country: teams.and_then(|t| text_field(t, "country")),
    }))
}

/// `item[key]` as an object; absent and null are `None`.
fn object<'a>(item: &'a Value, key: &str) -> Result<Option<&'a Object>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(format!("{key} {} is not an object", preview_json(other))),
    }
}

/// A text field with something in it; anything else is `None` (only the tag uses these, and
/// a template that needs one says so when it is missing).
fn text_field<'a>(object: &'a Object, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The number's text and the field it came from (for the reason if it does not parse).
fn number_text(
    draas: Option<&Object>,
    teams: Option<&Object>,
) -> Result<(&'static str, String), String> {
    if let Some(draas) = draas {
        match draas.get("fullNumber") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(Value::String(s)) => return Ok(("draas.fullNumber", s.trim().to_string())),
            Some(other) => {
                return Err(format!(
                    "draas.fullNumber {} is not a string",
                    preview_json(other)
                ))
            }
        }
        let cc = country_code(draas.get("countryCode"), "draas.countryCode")?;
        let nsn = match draas.get("nsn") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
            Some(other) => {
                return Err(format!(
                    "draas.nsn {} is not a national number",
                    preview_json(other)
                ))
            }
        };
        // Half a number (a country code without its national part) says nothing: the
        // number may still be in msTeams.number.
        if let (Some(cc), Some(nsn)) = (cc, nsn) {
            if nsn.starts_with('+') {
                return Err(format!(
                    "draas.nsn {nsn:?} is international, but it is the national part behind \
                     draas.countryCode"
                ));
            }
            return Ok(("draas.countryCode and draas.nsn", format!("+{cc}{nsn}")));
        }
    }
    match teams.map(|t| t.get("number")) {
        None | Some(None) | Some(Some(Value::Null)) => {}
        Some(Some(Value::String(s))) if s.trim().is_empty() => {}
        Some(Some(Value::String(s))) => return Ok(("msTeams.number", s.trim().to_string())),
        Some(Some(other)) => {
            return Err(format!(
                "msTeams.number {} is not a string",
                preview_json(other)
            ))
        }
    }
    Err(
        "no number: draas.fullNumber, draas.countryCode with draas.nsn, and msTeams.number \
         are all missing"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(item: Value) -> Result<Option<String>, String> {
        read(&item, false).map(|n| n.map(|n| n.number.to_string()))
    }

    #[test]
    fn the_number_falls_back_from_draas_to_teams() {
        let teams = json!({"number": "+3226127009", "provisionedOnMSTeams": true});
        let full = json!({"draas": {"fullNumber": "+3226127000", "countryCode": 32,
                                    "nsn": "26127001"}, "msTeams": teams});
        assert_eq!(number(full).unwrap().as_deref(), Some("+3226127000"));
        let parts = json!({"draas": {"countryCode": 32, "nsn": "26127001"}, "msTeams": teams});
        assert_eq!(number(parts).unwrap().as_deref(), Some("+3226127001"));
        let text_parts =
            json!({"draas": {"countryCode": "+32", "nsn": 26127002}, "msTeams": teams});
        assert_eq!(number(text_parts).unwrap().as_deref(), Some("+3226127002"));
        let half = json!({"draas": {"countryCode": 32, "fullNumber": ""}, "msTeams": teams});
        assert_eq!(number(half).unwrap().as_deref(), Some("+3226127009"));
        let no_draas = json!({"msTeams": teams});
        assert_eq!(number(no_draas).unwrap().as_deref(), Some("+3226127009"));
        let null_draas = json!({"draas": null, "msTeams": teams});
        assert_eq!(number(null_draas).unwrap().as_deref(), Some("+3226127009"));
    }

    #[test]
    fn a_field_of_the_wrong_kind_is_a_reason_not_a_fallback() {
        let teams = json!({"number": "+3226127009", "provisionedOnMSTeams": true});
        for (item, reason) in [
            (
                json!({"draas": {"fullNumber": 3226127000u64}, "msTeams": teams}),
                "draas.fullNumber 3226127000 is not a string",
            ),
            (
                json!({"draas": {"countryCode": "BE", "nsn": "26127000"}, "msTeams": teams}),
                "draas.countryCode \"BE\" is not a country code",
            ),
            (
                json!({"draas": {"countryCode": 32, "nsn": "+3226127000"}, "msTeams": teams}),
                "is international",
            ),
            (
                json!({"draas": "x", "msTeams": teams}),
                "draas \"x\" is not an object",
            ),
            (
                json!({"msTeams": {"number": 3226127000u64, "provisionedOnMSTeams": true}}),
                "msTeams.number 3226127000 is not a string",
            ),
            (
                json!({"msTeams": {"provisionedOnMSTeams": true}}),
                "no number",
            ),
            (
                json!({"msTeams": {"number": "+32abc", "provisionedOnMSTeams": true}}),
                "msTeams.number \"+32abc\"",
            ),
            (
                json!({"msTeams": {"number": "+3226127000", "provisionedOnMSTeams": "yes"}}),
                "provisionedOnMSTeams \"yes\" is not a boolean",
            ),
            (
                json!(["+3226127000"]),
                "not an Operator Connect number object",
            ),
        ] {
            let got = number(item.clone()).unwrap_err();
            assert!(got.contains(reason), "{item}: {got}");
        }
    }

    #[test]
    fn only_numbers_provisioned_on_teams_unless_asked() {
        let item = |provisioned: Value| {
            json!({"draas": {"fullNumber": "+3226127000"},
                   "msTeams": {"provisionedOnMSTeams": provisioned, "usage": "CallingUserAssignment",
                               "country": "BE"}})
        };
        assert!(number(item(json!(true))).unwrap().is_some());
        for not_yet in [json!(false), Value::Null] {
            assert!(number(item(not_yet.clone())).unwrap().is_none());
            let not_yet = item(not_yet);
            let all = read(&not_yet, true).unwrap().expect("included");
            assert_eq!(all.usage, Some("CallingUserAssignment"));
            assert_eq!(all.country, Some("BE"));
        }
        // Without msTeams, nothing says the number is on Teams.
        let inventory = json!({"draas": {"fullNumber": "+3226127000"}});
        assert!(number(inventory.clone()).unwrap().is_none());
        assert!(read(&inventory, true).unwrap().is_some());
    }

    #[test]
    fn labels_show_the_number_wherever_it_is() {
        assert_eq!(
            shown_number(&json!({"draas": {"countryCode": 32, "nsn": "26127001"}})),
            "+3226127001"
        );
        assert_eq!(
            shown_number(&json!({"msTeams": {"number": "+3226127009"}})),
            "+3226127009"
        );
        assert_eq!(shown_number(&json!(42)), "");
    }
}
