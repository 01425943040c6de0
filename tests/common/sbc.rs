//! The emulated SBC as the tests set it up and read it back: its users, the dial plans it holds
//! before dialsync comes, the panics that drop its connections on purpose, and dialsync's and
//! everyone else's rules in `OCDialPlan`.

use dialsync::sim::sbc::{DroppedConnection, SbcSim, SbcState, SimRule, SimUser};

/// One incremental script (one batch of rule operations) written to the SBC.
pub const PUT: &str = "PUT /api/v1/files/cliScript/incremental";
/// The rigs' SBC administrator, whose password they write to `sbc-password`.
pub const SBC_USER: &str = "dialsync";
pub const SBC_PASSWORD: &str = "sbc-s3cret";
/// The sink and emulator tests' administrator and Monitor user.
pub const ADMIN: (&str, &str) = ("admin", "s3cret");
pub const MONITOR: (&str, &str) = ("monitor", "watch");

/// What `check` says of the rigs' SBC once all else is well: its row in suffix notation stays a
/// WARNING every cycle until someone looks at it.
pub const CHECK_ONLY_UNREADABLE: &str =
    "DIALSYNC WARNING - 1 unreadable dial-plan row left alone (index 3) | ";

/// A user who may write.
pub fn administrator(username: &str, password: &str) -> SimUser {
    SimUser {
        username: username.into(),
        password: password.into(),
        administrator: true,
    }
}

/// The rigs' one user: [`SBC_USER`], an administrator.
pub fn sbc_users() -> Vec<SimUser> {
    vec![administrator(SBC_USER, SBC_PASSWORD)]
}

/// [`ADMIN`], who may write, and [`MONITOR`], who may only read.
pub fn admin_and_monitor() -> Vec<SimUser> {
    let monitor = SimUser {
        administrator: false,
        ..administrator(MONITOR.0, MONITOR.1)
    };
    vec![administrator(ADMIN.0, ADMIN.1), monitor]
}

pub fn sim_rule(name: &str, prefix: &str, tag: &str) -> SimRule {
    SimRule {
        name: name.into(),
        prefix: prefix.into(),
        tag: tag.into(),
    }
}

/// A device whose `OCDialPlan` (plan 0) holds `rows`: (index, name, prefix, tag).
pub fn oc_dial_plan(rows: &[(u32, &str, &str, &str)]) -> SbcState {
    let mut device = SbcState::with_oc_dial_plan();
    let oc = device.plans.get_mut(&0).expect("OCDialPlan");
    for &(index, name, prefix, tag) in rows {
        oc.rules.insert(index, sim_rule(name, prefix, tag));
    }
    device
}

/// An SBC whose `OCDialPlan` holds what the field puts there before dialsync comes, at the
/// indexes a first sync's adds would otherwise take: Live Platform's own Operator Connect rule
/// (one number, no `#`, a bare FQDN for a tag), a site-coded rule with a 4-digit bracket, a
/// PBX's rule (`+3222`, name `pbx`), and a row in the vendor's suffix notation, which dialsync
/// cannot read. All of them must stay byte-identical whatever dialsync does.
pub fn pbx_device() -> SbcState {
    oc_dial_plan(&[
        (0, "LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
        (
            1,
            "GSBFZUBGHWOFI",
            "+2711123[1000-1999]",
            "sbc01.teams.contoso.com",
        ),
        (2, "pbx", "+3222", "Trunk=pbx"),
        (3, "legacy", "53([2-4])", "A"),
    ])
}

/// The emulator drops a connection by panicking in its handler; those panics are the fault
/// being injected, not failures, so they are kept out of the test output. Any other panic
/// still reaches the default hook.
pub fn quiet_dropped_connections() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<DroppedConnection>().is_none() {
                default(info);
            }
        }));
    });
}

/// Incremental scripts the SBC was sent so far.
pub fn scripts_written(sbc: &SbcSim) -> usize {
    sbc.state().requests.iter().filter(|r| *r == PUT).count()
}

/// The tag the SBC routes `number` with.
pub fn tag_of(sbc: &SbcSim, number: &str) -> Option<String> {
    sbc.state().lookup("OCDialPlan", number)
}

fn rules_named(sbc: &SbcSim, owned: bool) -> Vec<(u32, String, String, String)> {
    let state = sbc.state();
    let (_, plan) = state.plan("OCDialPlan").expect("OCDialPlan");
    plan.rules
        .iter()
        .filter(|(_, r)| (r.name == "dialsync") == owned)
        .map(|(i, r)| (*i, r.name.clone(), r.prefix.clone(), r.tag.clone()))
        .collect()
}

/// dialsync's rules in `OCDialPlan`: (index, prefix, tag), by index.
pub fn owned_rules(sbc: &SbcSim) -> Vec<(u32, String, String)> {
    rules_named(sbc, true)
        .into_iter()
        .map(|(i, _, p, t)| (i, p, t))
        .collect()
}

/// dialsync's rules as (prefix, tag), sorted: what two runs that allocate indexes differently
/// must agree on.
pub fn owned_routes(sbc: &SbcSim) -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = owned_rules(sbc)
        .into_iter()
        .map(|(_, prefix, tag)| (prefix, tag))
        .collect();
    routes.sort();
    routes
}

/// Everyone else's rules in `OCDialPlan`: (index, name, prefix, tag), by index.
pub fn foreign_rules(sbc: &SbcSim) -> Vec<(u32, String, String, String)> {
    rules_named(sbc, false)
}
