//! What the sink tests plan with: routes, the plan settings of an agent that owns rules named
//! `dialsync` and lets any change through, and a journal in a directory of the test's.

use std::path::Path;

use dialsync::dialplan::pattern::Pattern;
use dialsync::dialplan::rule::Tag;
use dialsync::plan::{plan, Plan, PlanSettings, Policy, Route, Safety};
use dialsync::sink::DeviceDialPlan;
use dialsync::store::Store;

/// A route to `tag` for numbers matching `prefix`.
pub fn route(prefix: &str, tag: &str) -> Route {
    Route {
        prefix: Pattern::parse(prefix).expect("prefix"),
        tag: Tag::parse(tag, 256).expect("tag"),
    }
}

/// `n` distinct single-number routes spread over a few trunks, sorted.
pub fn routes(n: usize) -> Vec<Route> {
    let mut routes: Vec<Route> = (0..n)
        .map(|i| {
            route(
                &format!("+3226{:07}#", 1_000_000 + i),
                &format!("Trunk=t{}", i % 7),
            )
        })
        .collect();
    routes.sort();
    routes
}

/// Sync, with the change gate wide open: the sink tests are about the sink.
pub fn plan_settings() -> PlanSettings {
    PlanSettings {
        rule_name: "dialsync".into(),
        policy: Policy::Sync,
        adopt_foreign: false,
        safety: Safety {
            max_delete_fraction: 1.0,
            max_update_fraction: 1.0,
            min_existing: 10,
        },
        max_rules: 1_000_000,
    }
}

/// The plan of one agent cycle from `device` to `desired`, which no sink test expects blocked.
pub fn planned(desired: &[Route], device: &DeviceDialPlan) -> Plan {
    let plan = plan(
        desired,
        &device.rules,
        &device.unreadable,
        &[],
        &plan_settings(),
    );
    assert!(plan.blocked.is_empty(), "{:?}", plan.blocked);
    plan
}

/// A state database (the journal) in `dir`.
pub fn store_in(dir: &Path) -> Store {
    Store::open(dir.join("state.db")).expect("store")
}
