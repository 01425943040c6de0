//! Every input the fuzzers (fuzz/, `cargo fuzz`) ever failed on, replayed byte for byte
//! through the same checks the fuzz targets run (fuzz/src/lib.rs, included here), so a crash
//! once fixed stays fixed without libFuzzer. A new crash input goes here as a test named after
//! what it broke.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz;

use dialsync::dialplan::pattern::Pattern;
use dialsync::source::SourceError;

/// `span()` multiplied the digits of a literal prefix into a u64 without a bound: a pattern
/// with 16 or more digits (a foreign rule on the device, say) overflowed (a panic in a debug
/// build, a wrapped value in release).
#[test]
fn pattern_span_of_more_digits_than_a_number_has() {
    fuzz::pattern(b"\n\n+988888888888888888888888");
    let long = Pattern::parse("+988888888888888888888888").unwrap();
    assert_eq!(long.span(), None);
    assert_eq!(Pattern::parse("+9888888888888888#").unwrap().span(), None);
    assert!(Pattern::parse("+988888888888888#")
        .unwrap()
        .span()
        .is_some());
}

/// Fusion's `phone_usage` page was read with serde, which takes a JSON array as the struct's
/// fields in order: `[[]]` passed as an empty page. Replayed through the fuzz check, which
/// now requires the fetch to fail.
#[test]
fn fusion_array_body_replays() {
    fuzz::fusion(b"\x00[[]]");
}

/// An array is not the documented page: the fetch fails as a bad body.
#[test]
fn fusion_array_body_is_not_a_page() {
    for body in [
        &b"[[]]"[..],
        b"[[{\"phoneNumber\":\"+3226127001\",\"tenant\":\"t\",\"group\":\"g\"}]]",
    ] {
        match fuzz::fusion_fetch(fuzz::Feed::PhoneUsage, body) {
            Err(SourceError::BadBody { .. }) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
}

/// The Operator Connect feed reads its items as raw text, so an item that is a number past
/// f64's range rejects itself alone, not the page the other numbers are on.
#[test]
fn fusion_oc_number_past_f64_is_one_rejected_item() {
    let body = br#"{"numbers":[{"msTeams":{"number":"+3226127000","provisionedOnMSTeams":true,"country":"BE"}},3333e30000000000000],"next":""}"#;
    let out = fuzz::fusion_fetch(fuzz::Feed::OcNumbers(false), body).unwrap();
    assert_eq!(out.entries.len(), 1, "{out:?}");
    assert_eq!(out.rejected.len(), 1, "{out:?}");
    assert!(out.rejected[0]
        .reason
        .contains("not an Operator Connect number object"));
    let mut input = vec![0x02];
    input.extend_from_slice(body);
    fuzz::fusion(&input);
}

/// An item that is a number past f64's range (`3333e30000000000000`): valid JSON that
/// serde_json cannot hold as a `Value`. The APIO decoder reads only the fields it uses, so it
/// takes the page and rejects that item as not an object; the fuzz check had assumed the page
/// would be refused.
#[test]
fn apio_number_past_f64_is_one_rejected_item() {
    let body = br#"{"prefixes":[{"prefix":"+32-01","active":true},3333330000000000000,{},3333e30000000000000,{"ctive":true},3333330200000000000,{"prefix":"actinN0","extensionRnsionRanRangeEnd":";9"}]}"#;
    let mut input = vec![0xff];
    input.extend_from_slice(body);
    fuzz::apio(&input);
    assert_eq!(fuzz::decode("apio", &input), (1, 6));
}

/// The committed seed corpus (fuzz/seeds/, what the CI smoke run starts from) passes every
/// check, and the source seeds are real answers: they decode to entries.
#[test]
fn seeds_pass_their_checks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 7] = [
        ("pattern", fuzz::pattern),
        ("number", fuzz::number),
        ("cli_script", fuzz::cli_script),
        ("static_csv", fuzz::static_csv),
        ("apio", fuzz::apio),
        ("livecloud", fuzz::livecloud),
        ("fusion", fuzz::fusion),
    ];
    for (target, check) in targets {
        let mut count = 0;
        for seed in std::fs::read_dir(root.join(target)).unwrap() {
            let bytes = std::fs::read(seed.unwrap().path()).unwrap();
            check(&bytes);
            count += 1;
        }
        assert!(count > 0, "no seed for {target}");
    }
    let seed = |target: &str, name: &str| std::fs::read(root.join(target).join(name)).unwrap();
    for name in ["usage", "ranges", "oc_numbers"] {
        let input = seed("fusion", name);
        let out = fuzz::fusion_fetch(fuzz::Feed::of(input[0]), &input[1..]).unwrap();
        assert_eq!(out.entries.len(), 2, "{name}: {out:?}");
        assert!(out.rejected.is_empty(), "{name}: {out:?}");
    }
    assert_eq!(fuzz::decode("apio", &seed("apio", "numbers")), (1, 1));
    assert_eq!(fuzz::decode("apio", &seed("apio", "prefixes")), (2, 0));
    assert_eq!(
        fuzz::decode("livecloud", &seed("livecloud", "two_pages")),
        (2, 0)
    );
}

/// The static file keeps a line repeated word for word as two entries (resolution collapses
/// identical duplicates later); the fuzz check wrongly demanded distinct entries of it.
#[test]
fn static_csv_repeated_line() {
    fuzz::static_csv(
        b"start,end,tag\n+3226127000,+3226127099,Trunk=.cme\n\"+3226128500\",,\"Trunk=globe26127099,\
          Trunk=.cme\n\"+3226128500\",,\"Trunk=globex;Site=hq\"\n+3201*,,Trunk=pbx\n\n# cx;Site=hq\"\n\
          +3201*,,Trunk=pbx\n\n# comment\n0032,,Trunk=x\n",
    );
}
