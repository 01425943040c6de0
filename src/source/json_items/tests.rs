use super::*;

/// Scans `body` cut every `step` bytes: the items, the fields, and the outcome.
fn scan(body: &[u8], step: usize) -> (Vec<String>, Vec<String>, Result<Scanned, ScanError>) {
    let mut scanner = ItemScanner::new("list", &["next"]);
    let (mut items, mut fields) = (Vec::new(), Vec::new());
    for chunk in body.chunks(step.max(1)) {
        let fed = scanner.feed(chunk, |piece| {
            match piece {
                Piece::Item(item) => {
                    serde_json::from_slice::<serde::de::IgnoredAny>(item)?;
                    items.push(String::from_utf8_lossy(item).into_owned());
                }
                Piece::Field(_, value) => fields.push(String::from_utf8_lossy(value).into_owned()),
            }
            Ok(())
        });
        if let Err(e) = fed {
            return (items, fields, Err(e));
        }
    }
    (items, fields, scanner.finish(|_| Ok(())))
}

fn refusal(body: &str) -> ScanError {
    let mut last = None;
    for step in [1, 2, 3, 7, body.len()] {
        let e = scan(body.as_bytes(), step).2.expect_err(body);
        if let Some(last) = &last {
            assert_eq!(last, &e, "{body} at step {step}");
        }
        last = Some(e);
    }
    last.expect("an error")
}

#[test]
fn items_and_fields_come_whole_at_any_cut() {
    let body = r#" {"a": [1, {"list": 2}], "list" : [ {"x":"a\"}]b"} , [1,[2]], "s\\", -1.5e3, null, true ],
        "next": {"c": "d"}, "z": "\u00e9\n" } "#;
    for step in 1..body.len() {
        let (items, fields, outcome) = scan(body.as_bytes(), step);
        assert_eq!(outcome, Ok(Scanned::Object { listed: true }), "step {step}");
        assert_eq!(
            items,
            [
                r#"{"x":"a\"}]b"}"#,
                "[1,[2]]",
                r#""s\\""#,
                "-1.5e3",
                "null",
                "true"
            ],
            "step {step}"
        );
        assert_eq!(fields, [r#"{"c": "d"}"#], "step {step}");
    }
}

#[test]
fn lists_absent_null_or_empty() {
    assert_eq!(
        scan(br#"{"a":1}"#, 3).2,
        Ok(Scanned::Object { listed: false })
    );
    assert_eq!(
        scan(br#"{"list":null}"#, 3).2,
        Ok(Scanned::Object { listed: false })
    );
    assert_eq!(
        scan(br#"{"list":[]}"#, 3).2,
        Ok(Scanned::Object { listed: true })
    );
    assert_eq!(scan(b"{}", 1).2, Ok(Scanned::Object { listed: false }));
    assert_eq!(
        scan(br#"{"li\u0073t":[]}"#, 1).2,
        Ok(Scanned::Object { listed: true })
    );
    assert_eq!(scan(b" [1, 2] ", 2).2, Ok(Scanned::NotAnObject));
    assert_eq!(scan(b"5", 2).2, Ok(Scanned::NotAnObject));
}

#[test]
fn refusals_say_what_serde_json_says_where_it_says_it() {
    let said = |body: &str| refusal(body).to_string();
    assert_eq!(said(""), "EOF while parsing a value at line 1 column 0");
    assert_eq!(
        said(r#"{"list":[1,]}"#),
        "trailing comma at line 1 column 12"
    );
    assert_eq!(
        said(r#"{"list":[1}"#),
        "expected `,` or `]` at line 1 column 11"
    );
    assert_eq!(
        said(r#"{"list":[1]} x"#),
        "trailing characters at line 1 column 14"
    );
    assert_eq!(
        said("{\"list\":[1],\n\"a\" 1}"),
        "expected `:` at line 2 column 5"
    );
    assert_eq!(
        said(r#"{"list":{"0":1}}"#),
        "invalid type: map, expected a sequence at line 1 column 8"
    );
    assert_eq!(refusal(r#"{"list":{}}"#).category, Category::Data);
    assert_eq!(
        said(r#"{"list":[],"list":[]}"#).split(" at ").next(),
        Some("duplicate field `list`")
    );
    assert_eq!(
        said(r#"{"next":1,"next":2}"#).split(" at ").next(),
        Some("duplicate field `next`")
    );
    assert_eq!(
        said(r#"{"list":[{"a":1]}"#),
        "expected `,` or `}` at line 1 column 16"
    );
    assert_eq!(
        said(r#"{"list":[{"a":1}"#),
        "EOF while parsing a list at line 1 column 16"
    );
    assert_eq!(
        said(r#"{"list":[{"a":"#),
        "EOF while parsing a value at line 1 column 14"
    );
    assert_eq!(
        said(r#"{"list":[tru]}"#),
        "expected ident at line 1 column 13"
    );
    assert_eq!(said(r#"{"a":"x\q"}"#), "invalid escape at line 1 column 9");
    assert_eq!(
        said(r#"{"a":"\u12x4"}"#),
        "invalid escape at line 1 column 12"
    );
    assert_eq!(said(r#"{"a":01}"#), "invalid number at line 1 column 7");
    assert_eq!(said(r#"{"a":1.}"#), "invalid number at line 1 column 8");
    assert_eq!(said(r#"{"a":[1,]}"#), "expected value at line 1 column 9");
    assert_eq!(
        said(r#"{"a":{"b":1,}}"#),
        "key must be a string at line 1 column 13"
    );
    assert_eq!(said(r#"{"a":1,}"#), "trailing comma at line 1 column 8");
    assert_eq!(
        said(r#"{"a":"b"#),
        "EOF while parsing a string at line 1 column 7"
    );
    assert_eq!(
        said("{\"a\":\"\x01\"}"),
        "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 6"
    );
    assert_eq!(refusal("{").category, Category::Eof);
    assert_eq!(refusal("<html>").category, Category::Syntax);
}

/// A page as the whole-body decoder read it before the scanner: serde_json over the whole
/// body, the list's items as raw JSON text.
#[derive(serde::Deserialize)]
struct WholePage {
    list: Option<Vec<Box<serde_json::value::RawValue>>>,
    #[serde(default)]
    next: Option<serde_json::Value>,
}

/// What a body says, read whole: the list's items and `next`, or why it is refused.
#[derive(Debug, PartialEq)]
enum Read {
    Page {
        items: Option<Vec<String>>,
        next: Option<serde_json::Value>,
    },
    NotAnObject,
    Refused(String),
}

fn whole(body: &[u8]) -> Read {
    if !body.trim_ascii_start().starts_with(b"{") {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Read::NotAnObject,
            Err(e) => Read::Refused(e.to_string()),
        };
    }
    match serde_json::from_slice::<WholePage>(body) {
        Ok(page) => Read::Page {
            items: page
                .list
                .map(|items| items.iter().map(|raw| raw.get().to_string()).collect()),
            next: page.next,
        },
        Err(e) => Read::Refused(e.to_string()),
    }
}

/// The same body through the scanner, fed in pieces cut at `cuts`.
fn streamed(body: &[u8], cuts: &[usize]) -> Read {
    let mut scanner = ItemScanner::new("list", &["next"]);
    let (mut items, mut next) = (Vec::new(), None);
    let mut at = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(body.len());
    for end in ends {
        let fed = scanner.feed(&body[at..end], |piece| {
            match piece {
                Piece::Item(item) => {
                    serde_json::from_slice::<serde::de::IgnoredAny>(item)?;
                    items.push(String::from_utf8_lossy(item).into_owned());
                }
                Piece::Field(_, value) => next = serde_json::from_slice(value)?,
            }
            Ok(())
        });
        if let Err(e) = fed {
            return Read::Refused(e.to_string());
        }
        at = end;
    }
    let finished = scanner.finish(|piece| match piece {
        Piece::Field(_, value) => {
            serde_json::from_slice::<Option<serde_json::Value>>(value).map(drop)
        }
        Piece::Item(_) => Ok(()),
    });
    match finished {
        Err(e) => Read::Refused(e.to_string()),
        Ok(Scanned::NotAnObject) => Read::NotAnObject,
        Ok(Scanned::Object { listed }) => Read::Page {
            items: listed.then_some(items),
            next,
        },
    }
}

#[test]
fn refusals_are_serde_jsons_own() {
    let bodies: &[&str] = &[
        "",
        "  \n ",
        "{",
        "[",
        "<html>",
        "nul",
        "[1,]",
        r#"{"list":[1,]}"#,
        r#"{"list":[1}"#,
        r#"{"list":[1]} x"#,
        "{\"list\":[1],\n\"a\" 1}",
        r#"{"list":{"0":1}}"#,
        r#"{"list":"x"}"#,
        r#"{"list":[],"list":[]}"#,
        r#"{"next":1,"next":2}"#,
        r#"{"list":null,"list":[]}"#,
        r#"{"list":[{"a":1]}"#,
        r#"{"list":[{"a":1}"#,
        r#"{"list":[{"a":"#,
        r#"{"list":[tru]}"#,
        r#"{"list":[1.]}"#,
        r#"{"list":[-]}"#,
        r#"{"list":["a\qb"]}"#,
        r#"{"list":[{"a" 1}]}"#,
        r#"{"list":[{"a":1,}]}"#,
        r#"{"list":[{,}]}"#,
        r#"{"a":"x\q"}"#,
        r#"{"a":"\u12x4"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":1.5e}"#,
        r#"{"a":1e+}"#,
        r#"{"a":-x}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[,1]}"#,
        r#"{"a":{"b":1,}}"#,
        r#"{"a":{"b" 1}}"#,
        r#"{"a":{"b":}}"#,
        r#"{"a":{1:2}}"#,
        r#"{"a":1,}"#,
        r#"{"a":1 "b":2}"#,
        r#"{1:2}"#,
        r#"{"a":"b"#,
        "{\"a\":\"\x01\"}",
        "{\"list\":[\"\x01\"]}",
        r#"{"a":tx}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a":[1}"#,
        r#"{"a":{"b":1]}"#,
        r#"{"next":{"a":1}"#,
        r#"{"next":"\ud800"}"#,
        r#"{"next":"\ud800\u00"#,
        r#"{"next":[1,]}"#,
        r#"{"next":{"a":1,"#,
        r#"{"next":{"a":1,}"#,
        r#"{"list":"\ud800\u00"#,
        r#"{"list":tru"#,
        "{\"next\":\"\n\"}",
        "{\"a\n\":1}",
        "{\"list\":\"\n\"}",
        r#"{"a":5"#,
        r#"{"a":5}}"#,
        r#"{"a":[]"#,
        r#"{"list":[]"#,
        r#"{"list":[] "#,
        r#"{"list":["#,
        r#"{"list":[1,"#,
        r#"{"list" "#,
        "{\"a\":1,\n\n  \"b\":[1,\n 2,\n x]}",
        "{\"list\":[{\"a\":\n1,\n\"b\" 2}]}",
        "{\"list\":[1,\n  {\"a\":\n1,\n\"b\" 2}]}",
    ];
    for body in bodies {
        let want = whole(body.as_bytes());
        for step in [1, 2, 5, body.len().max(1)] {
            let cuts: Vec<usize> = (step..body.len()).step_by(step).collect();
            assert_eq!(
                streamed(body.as_bytes(), &cuts),
                want,
                "{body:?} cut every {step}"
            );
        }
    }
}

mod generated {
    use proptest::prelude::*;
    use serde_json::{Map, Number, Value};

    use super::{streamed, whole, Read};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            // Eighths: exact in binary, so read back as written.
            (-1_000_000i32..1_000_000).prop_map(|n| {
                Number::from_f64(f64::from(n) / 8.0).map_or(Value::Null, Value::Number)
            }),
            "(\\PC|[\"\\\\/\u{1}\n\t\u{7f}é€😀]){0,12}".prop_map(Value::String),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\é]{0,6}", inner), 0..5)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// A phone usage object, with the odd field of another kind.
    fn item() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => prop::collection::vec(("[a-zA-Z]{1,12}", leaf()), 1..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
            1 => value(),
        ]
    }

    /// How a document is written: whitespace and escapes chosen from these.
    #[derive(Clone, Debug)]
    struct Style {
        spaces: Vec<u8>,
        escapes: Vec<bool>,
    }

    fn style() -> impl Strategy<Value = Style> {
        (
            prop::collection::vec(0u8..12, 1..40),
            prop::collection::vec(any::<bool>(), 1..40),
        )
            .prop_map(|(spaces, escapes)| Style { spaces, escapes })
    }

    struct Writer<'a> {
        style: &'a Style,
        n: usize,
        out: String,
    }

    impl Writer<'_> {
        fn pick(&mut self) -> usize {
            self.n += 1;
            self.n
        }

        fn ws(&mut self) {
            let i = self.pick();
            let s = self.style.spaces[i % self.style.spaces.len()];
            self.out.push_str(match s {
                0 => " ",
                1 => "\n",
                2 => "\r\n  ",
                3 => "\t",
                _ => "",
            });
        }

        fn string(&mut self, s: &str) {
            self.out.push('"');
            for c in s.chars() {
                let i = self.pick();
                let escape = self.style.escapes[i % self.style.escapes.len()];
                match c {
                    '"' => self.out.push_str("\\\""),
                    '\\' => self.out.push_str("\\\\"),
                    '/' if escape => self.out.push_str("\\/"),
                    c if escape || (c as u32) < 0x20 => {
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            self.out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }

        /// `items` between `open` and `close`, each written by `write`, with commas.
        fn seq<T>(
            &mut self,
            open: char,
            close: char,
            items: impl Iterator<Item = T>,
            write: impl Fn(&mut Self, T),
        ) {
            self.out.push(open);
            for (i, item) in items.enumerate() {
                if i > 0 {
                    self.ws();
                    self.out.push(',');
                }
                self.ws();
                write(self, item);
            }
            self.ws();
            self.out.push(close);
        }

        fn value(&mut self, v: &Value) {
            match v {
                Value::Array(items) => self.seq('[', ']', items.iter(), |w, item| w.value(item)),
                Value::Object(fields) => self.seq('{', '}', fields.iter(), |w, (key, item)| {
                    w.string(key);
                    w.ws();
                    w.out.push(':');
                    w.ws();
                    w.value(item);
                }),
                Value::String(s) => self.string(s),
                other => self.out.push_str(&other.to_string()),
            }
        }
    }

    /// A page: other keys before and after the list, perhaps a `next`, in any style.
    fn page() -> impl Strategy<Value = (String, Vec<Value>, Option<Value>)> {
        (
            prop::collection::vec(item(), 0..12),
            prop::collection::vec(("[a-z]{1,5}", value()), 0..3),
            prop::collection::vec(("[a-z]{1,5}", value()), 0..3),
            prop::option::of(leaf()),
            any::<bool>(),
            style(),
        )
            .prop_map(|(items, before, after, next, list_first, style)| {
                let mut w = Writer {
                    style: &style,
                    n: 0,
                    out: String::new(),
                };
                w.ws();
                w.out.push('{');
                let mut first = true;
                let mut field = |w: &mut Writer, key: &str, value: &Value| {
                    if !first {
                        w.ws();
                        w.out.push(',');
                    }
                    first = false;
                    w.ws();
                    w.string(key);
                    w.ws();
                    w.out.push(':');
                    w.ws();
                    w.value(value);
                };
                let list = Value::Array(items.clone());
                if list_first {
                    field(&mut w, "list", &list);
                }
                for (key, value) in before.iter().filter(|(k, _)| k != "list" && k != "next") {
                    field(&mut w, key, value);
                }
                if let Some(next) = &next {
                    field(&mut w, "next", next);
                }
                if !list_first {
                    field(&mut w, "list", &list);
                }
                for (key, value) in after.iter().filter(|(k, _)| k != "list" && k != "next") {
                    field(&mut w, key, value);
                }
                w.ws();
                w.out.push('}');
                w.ws();
                let next = next.filter(|n| !n.is_null());
                (w.out, items, next)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_items_are_those_of_the_whole_document(
            (doc, items, next) in page(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let Read::Page { items: Some(got), next: got_next } = streamed(doc.as_bytes(), &cuts)
            else {
                return Err(TestCaseError::fail(format!("refused: {doc}")));
            };
            let got: Vec<Value> = got
                .iter()
                .map(|item| serde_json::from_str(item).expect("an item"))
                .collect();
            let whole: Value = serde_json::from_str(&doc).expect("the document");
            prop_assert_eq!(Some(&Value::Array(got.clone())), whole.get("list"));
            prop_assert_eq!(got.len(), items.len());
            prop_assert_eq!(got_next, next);
        }

        #[test]
        fn a_spoiled_document_reads_as_it_reads_whole(
            (doc, _, _) in page(),
            spoil in prop::collection::vec((any::<usize>(), 0usize..4, prop::sample::select(
                b"\"\\{}[],: a0e-.\x01\xff\xc3".to_vec())), 1..3),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut body = doc.into_bytes();
            for (at, how, byte) in spoil {
                let at = at % (body.len() + 1);
                match how {
                    0 => body.truncate(at),
                    1 if at < body.len() => body[at] = byte,
                    2 => body.insert(at, byte),
                    _ if at < body.len() => drop(body.remove(at)),
                    _ => {}
                }
            }
            let read = whole(&body);
            let got = streamed(&body, &cuts);
            // The stream checks UTF-8 on its own (the reader, see `body_seen`); serde_json
            // does not in a string it skips, so a body that is not UTF-8 is left to that.
            if std::str::from_utf8(&body).is_ok() {
                prop_assert_eq!(got, read, "{}", String::from_utf8_lossy(&body));
            } else if matches!(read, Read::Refused(_)) {
                prop_assert!(matches!(got, Read::Refused(_)) || std::str::from_utf8(&body).is_err());
            }
        }
    }
}

#[test]
fn quotes_and_backslashes_are_found_word_by_word() {
    let text = b"abcdefgh\"ijklmnopqrstu\\vwxyz0123456789";
    for start in 0..text.len() {
        let want = text[start..].iter().position(|&b| b == b'"' || b == b'\\');
        assert_eq!(quote_or_backslash(&text[start..]), want, "{start}");
    }
    assert_eq!(quote_or_backslash("é€😀\"".as_bytes()), Some(9));
    assert_eq!(quote_or_backslash(&[0x80; 20]), None);
}
