//! The §9 contract, key by key: what parses, and that every refusal names its key and line.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::dialplan::rule::Tag;
use crate::source::fusion::FusionFeed;

/// DESIGN.md §9's example, verbatim: the contract operators copy from.
const DESIGN_EXAMPLE: &str = r#"
[agent]
policy = "sync"                 # required: sync | upsert-only | create-only
interval = "60s"
state_db = "/var/lib/dialsync/state.db"
dry_run = false                 # plan and record, never write to the SBC

[admin]
listen = "127.0.0.1:9797"

[dialplan]
name = "OCDialPlan"
rule_name = "dialsync"          # the Name stamped on every rule we own (<= 15 chars)
encoding = "ranges"             # ranges | prefixes | numbers
max_rules = 50000
max_bracket_digits = 9
max_tag_len = 64
max_range_size = 1000000
adopt_foreign = false
create = false

[safety]
max_delete_fraction = 0.3
max_update_fraction = 0.3
min_existing = 10

[sbc]
kind = "audiocodes"             # audiocodes | livecloud
url = "https://sbc1.example.net"
username = "dialsync"
password_file = "/etc/dialsync/secrets/sbc-password"
# ca_file = "/etc/dialsync/sbc-ca.pem"
# insecure_skip_verify = false
batch_size = 200                # rule operations per incremental script
save_config = true
timeout = "30s"

[[sources]]
name = "fusion"                 # unique; appears in logs, metrics, lookups
kind = "fusion"
url = "https://apioaas-prov.netaxis.cloud"
draas_instance = "example"
group_uuid = "aaf9dba1-9469-40fa-be50-22298d68010d"
username = "svc-dialsync"
password_file = "/etc/dialsync/secrets/fusion-password"   # or token_file = "..."
feed = "phone_usage"            # phone_usage (default) | oc_numbers | ranges
# ranges_path = "..."           # feed = "ranges" only, and implies it: the path under /draas/{draas_instance}/
tag = "Trunk={tenant}"          # template over the item's fields
timeout = "30s"                 # whole fetch of this source, every page included
allow_empty = false             # true: an empty answer may delete this source's rules
# max_body = "512MiB"           # largest answer accepted (decoded as a stream); any source kind
[sources.tags]                  # optional explicit overrides, key = tenant name
"Netaxis DEV" = "Trunk=netaxis-dev"

[[sources]]
name = "fusion-oc"              # Operator Connect numbers of the listed Teams subscriptions
kind = "fusion"
url = "https://apioaas-prov.netaxis.cloud"
draas_instance = "example"
username = "svc-dialsync"
password_file = "/etc/dialsync/secrets/fusion-password"
feed = "oc_numbers"
subscriptions = [ { tenant = "3f1c9a70-...", subscription = "9a2e41b8-...", tag = "Trunk=acme" } ]
tag = "Trunk={tenant}"          # for entries of `subscriptions` without their own tag
include_unprovisioned = false

[[sources]]
name = "apio"
kind = "apio"
url = "https://apio.example.net"
auth = "jwt"                    # jwt (APIO core) | session (direct gateway)
proxy_prefix = "/api/v01/p1"    # jwt only: where gateway paths are proxied
username = "svc-dialsync"
password_file = "/etc/dialsync/secrets/apio-password"
include_inactive = false
groups = [ { tenant = "footenant", group = "foogroup", tag = "Trunk=foo" } ]

[[sources]]
name = "static"
kind = "file"
path = "static.csv"

[[sources]]
name = "live"
kind = "livecloud"
url = "https://live.example.net"
token_url = "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"
client_id = "00000000-0000-0000-0000-000000000000"
client_secret_file = "/etc/dialsync/secrets/live-secret"
scope = "api://<app>/.default"
ms_tenant_ids = ["3371606b-f589-4b50-b827-1a95cacf7225"]
tag = "Trunk={tenant_id}"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/dialsync/dialsync.toml"))
}

/// The error's text, which must carry `path:line:` and the key.
fn refusal(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str = r#"
[agent]
policy = "sync"

[sbc]
url = "https://sbc1.example.net"
username = "dialsync"
password_file = "secrets/sbc-password"

[[sources]]
name = "static"
kind = "file"
path = "static.csv"
"#;

#[test]
fn the_design_example_is_a_valid_config() {
    let config = parse(DESIGN_EXAMPLE).expect("the §9 example parses");
    assert_eq!(config.agent.policy, Policy::Sync);
    assert_eq!(config.agent.interval, Duration::from_secs(60));
    assert_eq!(config.admin_listen, "127.0.0.1:9797".parse().unwrap());
    assert_eq!(config.dialplan.rule_name, "dialsync");
    assert_eq!(config.dialplan.max_rules, 50_000);
    assert_eq!(config.safety.min_existing, 10);
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fusion", "fusion-oc", "apio", "static", "live"]);
    let SourceKind::Fusion {
        tags, login, feed, ..
    } = &config.sources[0].kind
    else {
        panic!("fusion first");
    };
    assert!(matches!(login, FusionLogin::Password { .. }));
    assert_eq!(*feed, FusionFeed::PhoneUsage);
    assert_eq!(
        tags.overrides.get("Netaxis DEV").map(Tag::as_str),
        Some("Trunk=netaxis-dev")
    );
    let SourceKind::Fusion {
        feed:
            FusionFeed::OcNumbers {
                subscriptions,
                include_unprovisioned,
            },
        group_uuid,
        ..
    } = &config.sources[1].kind
    else {
        panic!("the Operator Connect feed second");
    };
    assert!(!include_unprovisioned);
    assert_eq!(*group_uuid, None);
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].tenant, "3f1c9a70-...");
    assert_eq!(subscriptions[0].tags.template.to_string(), "Trunk=acme");
    let SourceKind::Apio {
        proxy_prefix,
        groups,
        ..
    } = &config.sources[2].kind
    else {
        panic!("apio third");
    };
    assert_eq!(proxy_prefix.as_deref(), Some("/api/v01/p1"));
    assert_eq!(groups.len(), 1);
    let SourceKind::File { path } = &config.sources[3].kind else {
        panic!("file fourth");
    };
    assert_eq!(
        path,
        Path::new("/etc/dialsync/static.csv"),
        "relative to the config"
    );
}

#[test]
fn defaults_fill_what_a_minimal_config_leaves_out() {
    let config = parse(MINIMAL).expect("minimal config");
    assert_eq!(
        config.agent.state_db,
        Path::new("/var/lib/dialsync/state.db")
    );
    assert!(!config.agent.dry_run);
    assert_eq!(config.dialplan.name, "OCDialPlan");
    assert_eq!(config.dialplan.encoding, Encoding::Ranges);
    assert_eq!(config.dialplan.limits, ItemLimits::default());
    assert_eq!(config.safety, Safety::default());
    let SbcSettings::AudioCodes {
        password_file,
        batch_size,
        save_config,
        timeout,
        ..
    } = &config.sbc
    else {
        panic!("audiocodes is the default kind");
    };
    assert_eq!(
        password_file.path,
        Path::new("/etc/dialsync/secrets/sbc-password")
    );
    assert_eq!((*batch_size, *save_config), (200, true));
    assert_eq!(*timeout, Duration::from_secs(30));
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let typo = MINIMAL.replace("[sbc]", "[sbc]\nmax_delete_fractoin = 0.5");
    let error = refusal(&typo);
    assert!(
        error.starts_with("/etc/dialsync/dialsync.toml:6:"),
        "{error}"
    );
    assert!(error.contains("max_delete_fractoin"), "{error}");

    let in_source = format!("{MINIMAL}colour = \"blue\"\n");
    let error = refusal(&in_source);
    assert!(
        error.contains(":14:") && error.contains("colour"),
        "{error}"
    );

    let table = format!("{MINIMAL}\n[extras]\nx = 1\n");
    let error = refusal(&table);
    assert!(
        error.contains(":15:") && error.contains("extras"),
        "{error}"
    );
}

#[test]
fn the_policy_has_no_default() {
    let error = refusal(&MINIMAL.replace("policy = \"sync\"", "interval = \"30s\""));
    assert!(error.contains(":2: agent.policy: is required"), "{error}");
    let error = refusal(&MINIMAL.replace("\"sync\"", "\"mirror\""));
    assert!(
        error.contains(":3: agent.policy:") && error.contains("mirror"),
        "{error}"
    );
    let error = refusal(&MINIMAL.replace("[agent]\npolicy = \"sync\"\n", ""));
    assert!(
        error.contains("agent: the [agent] table is required"),
        "{error}"
    );
}

#[test]
fn bad_values_name_their_key_and_line() {
    let cases = [
        (
            "policy = \"sync\"",
            "policy = \"sync\"\ninterval = \"soon\"",
            ":4: agent.interval:",
        ),
        (
            "policy = \"sync\"",
            "policy = \"sync\"\ninterval = \"0s\"",
            ":4: agent.interval:",
        ),
        (
            "[sbc]",
            "[admin]\nlisten = \"localhost\"\n[sbc]",
            ":6: admin.listen:",
        ),
        (
            "[sbc]",
            "[dialplan]\nrule_name = \"dialsync-agent-01\"\n[sbc]",
            ":6: dialplan.rule_name:",
        ),
        (
            "[sbc]",
            "[dialplan]\nencoding = \"trie\"\n[sbc]",
            ":6: dialplan.encoding:",
        ),
        (
            "[sbc]",
            "[dialplan]\nmax_bracket_digits = 20\n[sbc]",
            ":6: dialplan.max_bracket_digits:",
        ),
        (
            "[sbc]",
            "[safety]\nmax_delete_fraction = 1.5\n[sbc]",
            ":6: safety.max_delete_fraction:",
        ),
        ("https://sbc1", "ftp://sbc1", ":6: sbc.url:"),
        (
            "username = \"dialsync\"\n",
            "",
            ":5: sbc.username: is required",
        ),
        ("kind = \"file\"", "kind = \"ftp\"", ":12: sources[0].kind:"),
        (
            "path = \"static.csv\"",
            "path = \"\"",
            ":13: sources[0].path: must not be empty",
        ),
    ];
    for (from, to, expected) in cases {
        let text = MINIMAL.replace(from, to);
        assert_ne!(text, MINIMAL, "{from:?} not found");
        let error = refusal(&text);
        assert!(error.contains(expected), "expected {expected:?} in {error}");
    }
}

#[test]
fn a_key_of_another_kind_is_refused() {
    let fusion_in_file = MINIMAL.replace("kind = \"file\"", "kind = \"file\"\ngroup_uuid = \"g\"");
    let error = refusal(&fusion_in_file);
    assert!(
        error.contains(":13: sources[0].group_uuid: is not a key of kind \"file\""),
        "{error}"
    );
    let live_sbc_key = MINIMAL.replace("[sbc]", "[sbc]\ncustomer_id = \"c\"");
    let error = refusal(&live_sbc_key);
    assert!(
        error.contains(":6: sbc.customer_id: is not a key of kind \"audiocodes\""),
        "{error}"
    );
}

#[test]
fn sources_need_unique_names_and_at_least_one() {
    let twice =
        format!("{MINIMAL}\n[[sources]]\nname = \"static\"\nkind = \"file\"\npath = \"b.csv\"\n");
    let error = refusal(&twice);
    assert!(
        error.contains(":16: sources[1].name:") && error.contains("unique"),
        "{error}"
    );
    let none = MINIMAL
        .split("[[sources]]")
        .next()
        .unwrap_or_default()
        .to_string();
    let error = refusal(&none);
    assert!(
        error.contains("sources: at least one [[sources]] is required"),
        "{error}"
    );
}

#[test]
fn templates_and_overrides_are_checked_without_network() {
    let fusion = r#"
[agent]
policy = "upsert-only"
[sbc]
url = "https://sbc"
username = "u"
password_file = "p"
[[sources]]
name = "f"
kind = "fusion"
url = "https://fusion"
draas_instance = "d"
group_uuid = "g"
token_file = "t"
tag = "Trunk={customer}"
"#;
    let error = refusal(fusion);
    assert!(
        error.contains(":15: sources[0].tag:") && error.contains("customer"),
        "{error}"
    );
    let no_tag = fusion.replace("tag = \"Trunk={customer}\"\n", "");
    let error = refusal(&no_tag);
    assert!(error.contains("sources[0].tag: is required"), "{error}");
    let both = fusion.replace(
        "token_file = \"t\"",
        "token_file = \"t\"\nusername = \"u\"\npassword_file = \"p\"",
    );
    let error = refusal(&both);
    assert!(
        error.contains("sources[0].token_file: set password_file or token_file"),
        "{error}"
    );
    let bad_override =
        fusion.replace("{customer}", "{tenant}") + "[sources.tags]\n\"acme\" = \"\"\n";
    let error = refusal(&bad_override);
    assert!(error.contains(":17: sources[0].tags.\"acme\":"), "{error}");
    let config = parse(&fusion.replace("{customer}", "{tenant}")).expect("valid");
    let SourceKind::Fusion { login, .. } = &config.sources[0].kind else {
        panic!("fusion");
    };
    assert!(matches!(login, FusionLogin::MachineToken { .. }));
}

#[test]
fn apio_groups_take_the_source_template_unless_they_have_their_own() {
    let text = r#"
[agent]
policy = "sync"
[sbc]
url = "https://sbc"
username = "u"
password_file = "p"
[[sources]]
name = "apio"
kind = "apio"
url = "https://apio"
auth = "session"
username = "svc"
password_file = "apio-password"
tag = "Trunk={tenant}-{group}"
groups = [ { tenant = "foo", group = "hq" }, { tenant = "bar", group = "hq", tag = "Trunk=bar" } ]
"#;
    let config = parse(text).expect("valid");
    let SourceKind::Apio {
        proxy_prefix,
        groups,
        ..
    } = &config.sources[0].kind
    else {
        panic!("apio");
    };
    assert_eq!(*proxy_prefix, None, "session auth is not proxied");
    assert_eq!(groups[0].2.template.to_string(), "Trunk={tenant}-{group}");
    assert_eq!(groups[1].2.template.to_string(), "Trunk=bar");
    let error = refusal(&text.replace(
        "auth = \"session\"",
        "auth = \"session\"\nproxy_prefix = \"/p\"",
    ));
    assert!(
        error.contains("sources[0].proxy_prefix: is not a key of kind"),
        "{error}"
    );
    let error = refusal(&text.replace("\"bar\"", "\"foo\""));
    assert!(
        error.contains(":16: sources[0].groups[1]:") && error.contains("twice"),
        "{error}"
    );
}

#[test]
fn secrets_are_read_only_when_asked_and_refused_when_others_can_read_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dialsync.toml");
    fs::write(&path, MINIMAL).expect("write config");
    fs::write(dir.path().join("static.csv"), "start,end,tag\n").expect("write csv");
    let config = Config::load(&path).expect("loads without the secret file");

    let error = config.sink().expect_err("no secret file yet").to_string();
    assert!(error.contains(":8: sbc.password_file:"), "{error}");

    let secrets = dir.path().join("secrets");
    fs::create_dir(&secrets).expect("mkdir");
    let secret = secrets.join("sbc-password");
    fs::write(&secret, "s3cret\n").expect("write secret");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).expect("chmod");
    let error = config.sink().expect_err("group-readable").to_string();
    assert!(
        error.contains("sbc.password_file") && error.contains("chmod 600"),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");

    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
    let sink = config.sink().expect("the sink is built");
    assert!(!format!("{sink:?}").contains("s3cret"));
    let sources = config.sources().expect("a file source needs no secret");
    assert_eq!(sources[0].name(), "static");
}

#[test]
fn the_livecloud_sink_takes_its_own_keys() {
    let text = MINIMAL.replace(
        "url = \"https://sbc1.example.net\"\nusername = \"dialsync\"\npassword_file = \"secrets/sbc-password\"",
        "kind = \"livecloud\"\nurl = \"https://live\"\ntoken_url = \"https://login/token\"\nclient_id = \"c\"\nclient_secret_file = \"s\"\nscope = \"api://x/.default\"\ncustomer_id = \"cust\"\nsite_location_id = \"site\"\ndial_plan_id = \"dp\"",
    );
    let config = parse(&text).expect("valid");
    assert!(matches!(config.sbc, SbcSettings::LiveCloud { .. }));
    let error = refusal(&text.replace("dial_plan_id = \"dp\"\n", ""));
    assert!(error.contains("sbc.dial_plan_id: is required"), "{error}");
    let error = refusal(&text.replace("[sbc]", "[sbc]\nsave_config = false"));
    assert!(
        error.contains("sbc.save_config: is not a key of kind \"livecloud\""),
        "{error}"
    );
}

#[test]
fn the_shipped_example_is_a_valid_config() {
    let config = parse(include_str!("../../config/dialsync.toml")).expect("config/dialsync.toml");
    assert_eq!(
        config.agent.policy,
        Policy::UpsertOnly,
        "the cautious policy ships"
    );
    // Every commented-out source is valid too once uncommented.
    let uncommented: String = include_str!("../../config/dialsync.toml")
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_setting(rest) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = parse(&uncommented).expect("uncommented example");
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "static",
            "fusion",
            "fusion-oc",
            "fusion-ranges",
            "apio",
            "live"
        ]
    );
}

/// `key = value`, `[table]` or `"quoted key" = value`: a commented-out setting, not prose.
fn is_setting(line: &str) -> bool {
    let key = line.split_once(" = ").map(|(key, _)| key.trim());
    line.starts_with('[')
        || key.is_some_and(|k| {
            k.starts_with('"') || k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[test]
fn every_kind_takes_slug_fields_and_an_unknown_filter_names_the_source() {
    let text = r#"
[agent]
policy = "sync"
[sbc]
url = "https://sbc"
username = "u"
password_file = "p"
[[sources]]
name = "fusion-main"
kind = "fusion"
url = "https://fusion"
draas_instance = "d"
group_uuid = "g"
token_file = "t"
tag = "{tenant:slug}.oc.example.net"
[[sources]]
name = "apio"
kind = "apio"
url = "https://apio"
auth = "session"
username = "svc"
password_file = "apio-password"
tag = "Trunk={tenant:slug}-{group:slug}"
groups = [ { tenant = "Lambiek", group = "Bxl Centre" } ]
[[sources]]
name = "live"
kind = "livecloud"
url = "https://live"
token_url = "https://login/token"
client_id = "c"
client_secret_file = "s"
scope = "api://x/.default"
ms_tenant_ids = ["3371606B-F589-4B50-B827-1A95CACF7225"]
tag = "Trunk={tenant_id:slug}"
"#;
    let config = parse(text).expect("slug fields in every kind");
    assert_eq!(config.sources.len(), 3);
    for (template, line, source) in [
        ("{tenant:slug}.oc.example.net", 15, "fusion-main"),
        ("Trunk={tenant:slug}-{group:slug}", 23, "apio"),
        ("Trunk={tenant_id:slug}", 34, "live"),
    ] {
        let bad = template.replace(":slug", ":ascii");
        let error = refusal(&text.replace(template, &bad));
        assert!(
            error.contains(&format!(":{line}: sources["))
                && error.contains(&format!("source {source:?}"))
                && error.contains("unknown filter :ascii"),
            "{error}"
        );
    }
}

/// A Fusion source of the given body (after `kind = "fusion"`), in a config whose lines are
/// known: the body starts on line 11.
fn fusion_source(body: &str) -> String {
    format!(
        r#"
[agent]
policy = "sync"
[sbc]
url = "https://sbc"
username = "u"
password_file = "p"
[[sources]]
name = "f"
kind = "fusion"
{body}"#
    )
}

const FUSION_LOGIN: &str = r#"url = "https://fusion"
draas_instance = "d"
token_file = "t"
"#;

fn fusion_feed_of(body: &str) -> (FusionFeed, Option<String>, Option<u32>) {
    let config = parse(&fusion_source(&format!("{FUSION_LOGIN}{body}"))).expect("valid");
    let SourceKind::Fusion {
        feed,
        group_uuid,
        page_size,
        ..
    } = &config.sources[0].kind
    else {
        panic!("fusion");
    };
    (feed.clone(), group_uuid.clone(), *page_size)
}

#[test]
fn the_fusion_feed_is_a_key_of_its_own_and_ranges_path_implies_ranges() {
    let (feed, group, size) = fusion_feed_of("group_uuid = \"g\"\ntag = \"Trunk={tenant}\"\n");
    assert_eq!(feed, FusionFeed::PhoneUsage, "phone_usage is the default");
    assert_eq!((group.as_deref(), size), (Some("g"), None));
    let (feed, ..) = fusion_feed_of(
        "feed = \"phone_usage\"\ngroup_uuid = \"g\"\npage_size = 500\ntag = \"Trunk={tenant}\"\n",
    );
    assert_eq!(feed, FusionFeed::PhoneUsage);
    let (feed, group, _) = fusion_feed_of("ranges_path = \"number_ranges\"\ntag = \"Trunk=r\"\n");
    assert_eq!(
        feed,
        FusionFeed::Ranges {
            path: "number_ranges".into()
        },
        "ranges_path implies the range feed"
    );
    assert_eq!(group, None, "a path without {{group_uuid}} needs no group");
    let (feed, group, _) = fusion_feed_of(
        "feed = \"ranges\"\nranges_path = \"groups/{group_uuid}/number_ranges\"\n\
         group_uuid = \"g\"\ntag = \"Trunk=r\"\n",
    );
    assert!(matches!(feed, FusionFeed::Ranges { .. }));
    assert_eq!(group.as_deref(), Some("g"));
    let (feed, group, size) = fusion_feed_of(
        "feed = \"oc_numbers\"\npage_size = 50\ninclude_unprovisioned = true\n\
         tag = \"{tenant:slug}.oc.example.net\"\n\
         subscriptions = [ { tenant = \"Atelier Horta\", subscription = \"s1\" },\n\
         { tenant = \"t2\", subscription = \"s2\", tag = \"Trunk={usage}-{country}\" } ]\n",
    );
    assert_eq!((group, size), (None, Some(50)));
    let FusionFeed::OcNumbers {
        subscriptions,
        include_unprovisioned,
    } = feed
    else {
        panic!("oc_numbers");
    };
    assert!(include_unprovisioned);
    let shown: Vec<(String, String, String)> = subscriptions
        .iter()
        .map(|s| {
            (
                s.tenant.clone(),
                s.subscription.clone(),
                s.tags.template.to_string(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "Atelier Horta".to_string(),
                "s1".to_string(),
                "{tenant:slug}.oc.example.net".to_string()
            ),
            (
                "t2".to_string(),
                "s2".to_string(),
                "Trunk={usage}-{country}".to_string()
            ),
        ]
    );
}

#[test]
fn each_fusion_feed_requires_its_keys_naming_key_and_line() {
    let cases = [
        // phone_usage (the default) without group_uuid: at the table, line 8.
        (
            "tag = \"Trunk={tenant}\"\n",
            ":8: sources[0].group_uuid: is required for feed \"phone_usage\"",
        ),
        // Written out, the feed line is what asks for the key.
        (
            "tag = \"Trunk={tenant}\"\nfeed = \"phone_usage\"\n",
            ":15: sources[0].group_uuid: is required for feed \"phone_usage\"",
        ),
        (
            "feed = \"oc_numbers\"\ntag = \"Trunk={tenant}\"\n",
            ":14: sources[0].subscriptions: is required for feed \"oc_numbers\"",
        ),
        (
            "feed = \"oc_numbers\"\ntag = \"T\"\nsubscriptions = []\n",
            ":16: sources[0].subscriptions: lists no subscription",
        ),
        (
            "feed = \"ranges\"\ntag = \"Trunk=r\"\n",
            ":14: sources[0].ranges_path: is required for feed \"ranges\"",
        ),
        (
            "ranges_path = \"groups/{group_uuid}/number_ranges\"\ntag = \"Trunk=r\"\n",
            ":8: sources[0].group_uuid: is required: ranges_path",
        ),
        (
            "feed = \"numbers\"\ngroup_uuid = \"g\"\ntag = \"T\"\n",
            ":14: sources[0].feed: unknown feed \"numbers\" (expected phone_usage, oc_numbers \
             or ranges)",
        ),
        // A key of another feed is refused, where it is.
        (
            "group_uuid = \"g\"\ntag = \"T\"\nsubscriptions = [ { tenant = \"t\", subscription = \"s\" } ]\n",
            ":16: sources[0].subscriptions: is not a key of feed \"phone_usage\"",
        ),
        (
            "group_uuid = \"g\"\ntag = \"T\"\ninclude_unprovisioned = true\n",
            ":16: sources[0].include_unprovisioned: is not a key of feed \"phone_usage\"",
        ),
        (
            "feed = \"oc_numbers\"\ngroup_uuid = \"g\"\ntag = \"T\"\n\
             subscriptions = [ { tenant = \"t\", subscription = \"s\" } ]\n",
            ":15: sources[0].group_uuid: is not a key of feed \"oc_numbers\"",
        ),
        (
            "feed = \"oc_numbers\"\nranges_path = \"x\"\ntag = \"T\"\n\
             subscriptions = [ { tenant = \"t\", subscription = \"s\" } ]\n",
            ":15: sources[0].ranges_path: is not a key of feed \"oc_numbers\"",
        ),
        (
            "feed = \"phone_usage\"\ngroup_uuid = \"g\"\nranges_path = \"x\"\ntag = \"T\"\n",
            ":16: sources[0].ranges_path: is not a key of feed \"phone_usage\"",
        ),
        // Subscriptions, entry by entry.
        (
            "feed = \"oc_numbers\"\n\
             subscriptions = [ { tenant = \"t\", subscription = \"s\" } ]\n",
            ":15: sources[0].subscriptions[0].tag: is required",
        ),
        (
            "feed = \"oc_numbers\"\ntag = \"T\"\n\
             subscriptions = [ { tenant = \"t\" } ]\n",
            ":16: sources[0].subscriptions[0].subscription: is required",
        ),
        (
            "feed = \"oc_numbers\"\ntag = \"T\"\n\
             subscriptions = [ { tenant = \"t\", subscription = \"s\" },\n\
             { tenant = \"t\", subscription = \"s\" } ]\n",
            ":17: sources[0].subscriptions[1]: tenant \"t\" subscription \"s\" is listed twice",
        ),
        (
            "feed = \"oc_numbers\"\ntag = \"Trunk={group}\"\n\
             subscriptions = [ { tenant = \"t\", subscription = \"s\" } ]\n",
            "unknown field {group}; this source offers {tenant}, {subscription}, {usage}, \
             {country}",
        ),
        (
            "feed = \"oc_numbers\"\ntag = \"T\"\npage_size = 0\n\
             subscriptions = [ { tenant = \"t\", subscription = \"s\" } ]\n",
            ":16: sources[0].page_size: 0 is outside 1..=100000",
        ),
    ];
    for (body, expected) in cases {
        let error = refusal(&fusion_source(&format!("{FUSION_LOGIN}{body}")));
        assert!(error.contains(expected), "expected {expected:?} in {error}");
    }
    // Unknown keys stay errors, inside a subscription too.
    let error = refusal(&fusion_source(&format!(
        "{FUSION_LOGIN}feed = \"oc_numbers\"\ntag = \"T\"\n\
         subscriptions = [ {{ tenant = \"t\", subscription = \"s\", group = \"g\" }} ]\n"
    )));
    assert!(error.contains(":16:") && error.contains("group"), "{error}");
    // And the Fusion keys are keys of no other kind.
    let error = refusal(&MINIMAL.replace("kind = \"file\"", "kind = \"file\"\nfeed = \"ranges\""));
    assert!(
        error.contains(":13: sources[0].feed: is not a key of kind \"file\""),
        "{error}"
    );
}

/// `max_body`: any kind takes it, as a size with a unit or plain bytes; the default admits a
/// 2M-number `phone_usage` answer (about 200 bytes an item); a bad one names key and line.
#[test]
fn max_body_is_a_size_of_any_source_kind() {
    let config = parse(MINIMAL).expect("minimal config");
    assert_eq!(config.sources[0].max_body, 512 << 20);
    assert!(config.sources[0].max_body >= 2_000_000 * 200);
    let with = |value: &str| MINIMAL.replace("path = ", &format!("max_body = {value}\npath = "));
    for (written, bytes) in [
        ("\"512MiB\"", 512usize << 20),
        ("\"64 MiB\"", 64 << 20),
        ("\"400MB\"", 400_000_000),
        ("\"1GiB\"", 1 << 30),
        ("\"2048\"", 2048),
        ("1048576", 1 << 20),
        ("\"16kib\"", 16 << 10),
    ] {
        let config = parse(&with(written)).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(config.sources[0].max_body, bytes, "{written}");
    }
    for written in [
        "\"lots\"",
        "\"1.5GiB\"",
        "\"12 parsecs\"",
        "-1",
        "\"\"",
        "true",
    ] {
        let error = refusal(&with(written));
        assert!(
            error.contains(":13: sources[0].max_body:") && error.contains("not a size"),
            "{written}: {error}"
        );
    }
    for written in ["0", "\"100B\"", "\"65GiB\"", "\"99999999999999999999GiB\""] {
        let error = refusal(&with(written));
        assert!(
            error.contains(":13: sources[0].max_body:"),
            "{written}: {error}"
        );
    }
    // Every kind takes it: a fusion source, say.
    let text = fusion_source(&format!(
        "{FUSION_LOGIN}group_uuid = \"g\"\ntag = \"T\"\nmax_body = \"1GiB\"\n"
    ));
    assert_eq!(parse(&text).expect("fusion").sources[0].max_body, 1 << 30);
}
