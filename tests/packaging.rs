//! The Debian package's pieces agree with each other and with the code, without building it
//! (`packaging/check-deb.sh` builds, installs and purges the real package): the unit runs the
//! agent on the installed config, the config's state and secret files lie where the unit and
//! the maintainer scripts make room for them, every asset exists, and build.rs renders the man
//! page with the real default config path.

use std::path::Path;
use std::time::Duration;

use dialsync::app::daemon::STOP_GRACE;
use dialsync::config::{Config, DEFAULT_PATH};

const UNIT: &str = include_str!("../packaging/dialsync.service");
const MANIFEST: &str = include_str!("../Cargo.toml");

/// The values of `key=` in the unit, in order.
fn unit_values(key: &str) -> Vec<&'static str> {
    UNIT.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn unit_value(key: &str) -> &'static str {
    match unit_values(key).as_slice() {
        [one] => one,
        other => panic!("{key}= appears {} times in the unit", other.len()),
    }
}

fn seconds(value: &str) -> Duration {
    humantime::parse_duration(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

#[test]
fn the_unit_runs_the_agent_on_the_installed_config_and_waits_for_reloads() {
    assert_eq!(unit_value("Type"), "notify");
    assert_eq!(
        unit_value("ExecStart"),
        format!("/usr/bin/dialsync run --config {DEFAULT_PATH}")
    );
    let reload = unit_value("ExecReload");
    assert!(
        reload.starts_with("/usr/bin/dialsync reload --pid $MAINPID"),
        "{reload}"
    );
    // `dialsync reload` gives up before systemd kills it: TimeoutStartSec= bounds ExecReload=.
    let waits = reload
        .split_once("--timeout ")
        .map_or(Duration::from_secs(80), |(_, t)| seconds(t));
    assert!(waits < seconds(unit_value("TimeoutStartSec")));
    // The agent stops within STOP_GRACE plus a second; systemd waits longer before SIGKILL.
    assert!(seconds(unit_value("TimeoutStopSec")) > STOP_GRACE + Duration::from_secs(1));
    // Longer than the loop's longest silence with default settings: one batch with its
    // retries (sbc.timeout 30 s plus a 60 s retry budget) or one source fetch (30 s).
    assert!(seconds(unit_value("WatchdogSec")) >= Duration::from_secs(180));
    assert_eq!(unit_value("User"), "dialsync");
    assert_eq!(unit_value("StateDirectory"), "dialsync");
    assert_eq!(unit_value("RuntimeDirectory"), "dialsync");
    assert_eq!(unit_value("ProtectSystem"), "strict");
    assert_eq!(
        unit_value("RestrictAddressFamilies"),
        "AF_UNIX AF_INET AF_INET6"
    );
}

#[test]
fn the_example_config_keeps_state_and_secrets_where_the_package_makes_room() {
    let config = Config::parse(
        include_str!("../config/dialsync.toml"),
        Path::new(DEFAULT_PATH),
    )
    .expect("config/dialsync.toml is valid");
    // ProtectSystem=strict leaves only the StateDirectory= writable.
    assert!(
        config.agent.state_db.starts_with("/var/lib/dialsync"),
        "{}",
        config.agent.state_db.display()
    );
    let text = include_str!("../config/dialsync.toml");
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some((key, value)) = line.split_once('=') {
            if key.trim().ends_with("_file") {
                let path = value
                    .split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches('"');
                assert!(path.starts_with("/etc/dialsync/secrets/"), "{line}");
            }
        }
    }
    // The static source the example names is shipped next to it.
    assert!(text.contains("path = \"static.csv\""));
    assert!(MANIFEST.contains(r#"["packaging/static.csv", "etc/dialsync/static.csv", "640"]"#));
}

#[test]
fn every_asset_of_the_package_exists_or_is_built() {
    let manifest: toml::Value = toml::from_str(MANIFEST).expect("Cargo.toml");
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().expect("assets");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for asset in assets {
        let source = asset[0].as_str().expect("asset source");
        if let Some(built) = source.strip_prefix("target/release/") {
            // The binary, or what build.rs writes next to it.
            let rendered = built
                .strip_prefix("assets/")
                .is_some_and(|file| include_str!("../build.rs").contains(file));
            assert!(
                built == "dialsync" || rendered,
                "{source} is neither the binary nor rendered by build.rs"
            );
        } else {
            assert!(root.join(source).is_file(), "{source} is missing");
        }
    }
    let scripts = deb["maintainer-scripts"]
        .as_str()
        .expect("maintainer-scripts");
    for script in ["postinst", "postrm"] {
        let text = std::fs::read_to_string(root.join(scripts).join(script)).expect(script);
        assert!(text.contains("#DEBHELPER#"), "{script} lacks #DEBHELPER#");
    }
}

#[test]
fn the_man_page_is_rendered_with_the_real_default_config_path() {
    let stand_in = format!("const DEFAULT_PATH: &str = {DEFAULT_PATH:?};");
    assert!(
        include_str!("../build.rs").contains(&stand_in),
        "build.rs must declare {stand_in}"
    );
}

#[test]
fn the_changelog_names_this_version_and_the_package_maintainer() {
    // Lintian reads these from the package; here a version bump without a changelog entry, or
    // a new maintainer address in one place only, fails before any package is built.
    let changelog = include_str!("../packaging/changelog");
    let manifest: toml::Value = toml::from_str(MANIFEST).expect("Cargo.toml");
    let version = manifest["package"]["version"].as_str().expect("version");
    let first = changelog.lines().next().expect("a first line");
    assert!(
        first.starts_with(&format!("dialsync ({version}) ")),
        "the newest entry is {first:?}, the crate is {version}"
    );
    let maintainer = manifest["package"]["metadata"]["deb"]["maintainer"]
        .as_str()
        .expect("maintainer");
    let trailer = changelog
        .lines()
        .find_map(|l| l.strip_prefix(" -- "))
        .expect("a trailer line");
    assert!(
        trailer.starts_with(&format!("{maintainer}  ")),
        "{trailer:?} is not by {maintainer}"
    );
    let copyright = include_str!("../packaging/copyright");
    assert!(
        copyright.contains(&format!("Upstream-Contact: {maintainer}\n")),
        "packaging/copyright names another contact than {maintainer}"
    );
}
