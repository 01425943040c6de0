//! `dialsync demo`, as a newcomer runs it: the whole loop on the embedded emulators, with an
//! OCDialPlan that already holds a PBX's and Live Platform's own rules, which must come out
//! byte-identical.

mod common;

use common::{command, run};

#[test]
fn the_demo_routes_around_live_platform_rules_and_leaves_them_byte_identical() {
    let out = run(command().arg("demo"));
    assert_eq!(out.code, Some(0), "{out}");
    for expected in [
        "OCDialPlan holds 4 rules others own",
        "         2  LivePlatform  +97239753000           sandbox1.audiocodes.be",
        "         3  GSBFZUBGHWOFI +3238200190            EMEA.Customers.AudioCodes.com",
        "requests that changed the SBC: 0",
        "+97239753000: rule 2 +97239753000 -> sandbox1.audiocodes.be, owned by \"LivePlatform\", \
         left alone",
        "5. The rules dialsync does not own, after three syncs: 4 of 4 byte-identical (index, \
         name, prefix and tag), 0 added or removed",
    ] {
        assert!(out.stdout.contains(expected), "{expected:?} in {out}");
    }
    // dialsync's own rules start after the rows others hold.
    assert!(out.stdout.contains("         4  dialsync      "), "{out}");
}
