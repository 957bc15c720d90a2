//! The scope grammar's tests: parsing, printing, and what each scope grants; property tests
//! against the grammar's earlier hand-written form, and an oracle.

use super::*;

const BB2_SUPPORTED: &str = "openid profile launch/patient patient/Patient.read \
    patient/ExplanationOfBenefit.read patient/Coverage.read patient/Patient.rs \
    patient/ExplanationOfBenefit.rs patient/Coverage.rs";

fn scope(token: &str) -> Scope {
    Scope::parse(token).unwrap_or_else(|e| panic!("{token:?} should parse: {e}"))
}

fn reason_of(token: &str) -> &'static str {
    match Scope::parse(token) {
        Err(Error::InvalidScope { scope, reason }) => {
            assert_eq!(scope, token, "the error names the offending token");
            reason
        }
        other => panic!("{token:?} should be rejected, got {other:?}"),
    }
}

#[test]
fn well_known_scopes_are_non_resource() {
    for token in WELL_KNOWN {
        let s = scope(token);
        assert!(!s.is_resource(), "{token}");
        assert_eq!(s.as_str(), token);
        assert_eq!(s.compartment(), None);
        assert_eq!(s.resource_type(), None);
        assert_eq!(s.permissions(), None);
        assert_eq!(s.to_v2(), s);
        assert_eq!(s.to_v1(), Some(s.clone()));
    }
}

#[test]
fn other_tokens_are_kept_verbatim() {
    for token in [
        "launch/location",
        "https://example.com/api.read",
        "custom_scope",
        "foo/bar.baz",
        "patient",
        "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
    ] {
        let s = scope(token);
        assert!(!s.is_resource(), "{token}");
        assert_eq!(s.to_string(), token);
    }
}

#[test]
fn v1_resource_scopes() {
    let s = scope("patient/Patient.read");
    assert!(s.is_resource());
    assert!(s.is_v1());
    assert_eq!(s.compartment(), Some("patient"));
    assert_eq!(s.resource_type(), Some("Patient"));
    assert_eq!(s.permissions(), Some(Permissions::V1_READ));
    assert_eq!(s.parameters(), None);
    assert!(s.allows_read() && s.allows_search());

    let w = scope("user/Observation.write");
    assert_eq!(w.compartment(), Some("user"));
    assert_eq!(w.permissions(), Some(Permissions::V1_WRITE));
    assert!(!w.allows_read() && !w.allows_search());

    let all = scope("system/*.*");
    assert_eq!(all.compartment(), Some("system"));
    assert_eq!(all.resource_type(), Some("*"));
    assert_eq!(all.permissions(), Some(Permissions::ALL));
}

#[test]
fn v2_resource_scopes() {
    for (token, c, r, u, d, s) in [
        ("patient/Patient.rs", false, true, false, false, true),
        ("patient/Patient.r", false, true, false, false, false),
        ("patient/Patient.s", false, false, false, false, true),
        ("patient/Patient.cruds", true, true, true, true, true),
        ("patient/Patient.cud", true, false, true, true, false),
        ("user/*.c", true, false, false, false, false),
    ] {
        let scope = scope(token);
        assert!(!scope.is_v1(), "{token}");
        let p = scope.permissions().expect("resource scope");
        assert_eq!(
            (p.create(), p.read(), p.update(), p.delete(), p.search()),
            (c, r, u, d, s),
            "{token}"
        );
        assert_eq!(scope.as_str(), token);
    }
}

#[test]
fn v2_parameters_are_kept_verbatim() {
    let s = scope(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    );
    assert_eq!(s.resource_type(), Some("Observation"));
    assert_eq!(s.permissions(), Some(Permissions::V1_READ));
    assert_eq!(
        s.parameters(),
        Some("category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
    );
    assert_eq!(
        scope("patient/Observation.rs?a=b?c").parameters(),
        Some("a=b?c")
    );
}

#[test]
fn character_rules() {
    assert_eq!(reason_of(""), reason::EMPTY);
    assert_eq!(reason_of("patient/Patient.read "), reason::WHITESPACE);
    assert_eq!(reason_of("open\tid"), reason::WHITESPACE);
    assert_eq!(reason_of("openid\n"), reason::WHITESPACE);
    assert_eq!(reason_of("open\u{0}id"), reason::CONTROL);
    assert_eq!(reason_of("open\u{7f}id"), reason::CONTROL);
    assert_eq!(reason_of("\"openid\""), reason::QUOTE);
    assert_eq!(reason_of("open\\id"), reason::QUOTE);
    assert_eq!(reason_of("patient/Pätient.read"), reason::NON_ASCII);
    assert_eq!(reason_of("open\u{a0}id"), reason::WHITESPACE);
}

#[test]
fn compartment_and_resource_rules() {
    assert_eq!(
        reason_of("practitioner/Patient.read"),
        reason::UNKNOWN_COMPARTMENT
    );
    assert_eq!(reason_of("Patient/Patient.rs"), reason::UNKNOWN_COMPARTMENT);
    assert_eq!(reason_of("launch/*.rs"), reason::UNKNOWN_COMPARTMENT);
    assert_eq!(reason_of("patient/patient.read"), reason::BAD_RESOURCE);
    assert_eq!(reason_of("patient/Pat-ient.rs"), reason::BAD_RESOURCE);
    assert_eq!(reason_of("patient/Patient1.rs"), reason::BAD_RESOURCE);
    assert_eq!(reason_of("patient/**.rs"), reason::BAD_RESOURCE);
    assert_eq!(reason_of("patient/Patient/x.rs"), reason::BAD_RESOURCE);
    assert_eq!(reason_of("patient/.rs"), reason::MISSING_RESOURCE);
    assert_eq!(reason_of("patient/"), reason::MISSING_RESOURCE);
    assert_eq!(reason_of("patient/Patient"), reason::MISSING_DOT);
    assert_eq!(reason_of("patient/Patient?x=1"), reason::MISSING_DOT);
    assert_eq!(reason_of("patient/Patient."), reason::EMPTY_PERMISSIONS);
    assert_eq!(reason_of("patient/Patient.?a=b"), reason::EMPTY_PERMISSIONS);
}

#[test]
fn permission_rules() {
    assert_eq!(reason_of("patient/Patient.sr"), reason::PERMISSION_ORDER);
    assert_eq!(reason_of("patient/Patient.dc"), reason::PERMISSION_ORDER);
    assert_eq!(reason_of("patient/Patient.scrud"), reason::PERMISSION_ORDER);
    assert_eq!(reason_of("patient/Patient.rr"), reason::REPEATED_PERMISSION);
    assert_eq!(
        reason_of("patient/Patient.rsr"),
        reason::REPEATED_PERMISSION
    );
    assert_eq!(reason_of("patient/Patient.rx"), reason::UNKNOWN_PERMISSION);
    assert_eq!(reason_of("patient/Patient.R"), reason::UNKNOWN_PERMISSION);
    assert_eq!(
        reason_of("patient/Patient.Read"),
        reason::UNKNOWN_PERMISSION
    );
    assert_eq!(
        reason_of("patient/Patient.rs.x"),
        reason::UNKNOWN_PERMISSION
    );
    assert_eq!(reason_of("patient/Patient.reads"), reason::MIXED);
    assert_eq!(reason_of("patient/Patient.swrite"), reason::MIXED);
    assert_eq!(reason_of("patient/Patient.r*"), reason::STAR_NOT_ALONE);
    assert_eq!(reason_of("patient/Patient.**"), reason::STAR_NOT_ALONE);
    assert_eq!(reason_of("patient/Patient.read?a=b"), reason::V1_PARAMETERS);
    assert_eq!(reason_of("patient/Patient.*?a=b"), reason::V1_PARAMETERS);
    assert_eq!(reason_of("patient/Patient.rs?"), reason::EMPTY_PARAMETERS);
}

#[test]
fn every_in_order_subset_of_cruds_parses() {
    let letters = ['c', 'r', 'u', 'd', 's'];
    for mask in 1u8..32 {
        let perms: String = (0..5)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| letters[i])
            .collect();
        let s = scope(&format!("patient/Observation.{perms}"));
        assert_eq!(s.permissions(), Some(Permissions(mask)), "{perms}");
        assert_eq!(s.permissions().map(|p| p.to_string()), Some(perms));
    }
}

#[test]
fn v1_v2_conversions() {
    for (v1, v2) in [
        ("patient/Patient.read", "patient/Patient.rs"),
        ("user/Observation.write", "user/Observation.cud"),
        ("system/*.*", "system/*.cruds"),
    ] {
        let (v1, v2) = (scope(v1), scope(v2));
        assert_eq!(v1.to_v2(), v2);
        assert_eq!(v2.to_v1(), Some(v1.clone()));
        assert_eq!(v1.to_v1(), Some(v1.clone()));
        assert_eq!(v2.to_v2(), v2);
        // The converted scope's parts are right, not just its text.
        assert_eq!(v1.to_v2().permissions(), v2.permissions());
        assert!(!v1.to_v2().is_v1());
        assert!(v2.to_v1().is_some_and(|s| s.is_v1()));
        assert_eq!(
            v2.to_v1()
                .and_then(|s| s.resource_type().map(str::to_owned)),
            v2.resource_type().map(str::to_owned)
        );
    }
    assert_eq!(scope("patient/Patient.r").to_v1(), None);
    assert_eq!(scope("patient/Patient.cruds?a=b").to_v1(), None);
    assert_eq!(
        scope("patient/Patient.rs?a=b").to_v2(),
        scope("patient/Patient.rs?a=b")
    );
}

#[test]
fn equivalence_across_versions() {
    let read = scope("patient/Patient.read");
    let rs = scope("patient/Patient.rs");
    assert!(read.equivalent(&rs) && rs.equivalent(&read));
    assert_ne!(read, rs, "equality stays on the exact token");
    assert!(!read.equivalent(&scope("patient/Patient.r")));
    assert!(!read.equivalent(&scope("user/Patient.rs")));
    assert!(!read.equivalent(&scope("patient/Coverage.rs")));
    assert!(!rs.equivalent(&scope("patient/Patient.rs?a=b")));
    assert!(scope("patient/*.*").equivalent(&scope("patient/*.cruds")));
    assert!(scope("patient/X.write").equivalent(&scope("patient/X.cud")));
    assert!(scope("openid").equivalent(&scope("openid")));
    assert!(!scope("openid").equivalent(&scope("profile")));
    assert!(!scope("openid").equivalent(&rs));
}

#[test]
fn coverage() {
    let read = scope("patient/Patient.read");
    // v1 granted, v2 needed.
    for needed in [
        "patient/Patient.rs",
        "patient/Patient.r",
        "patient/Patient.s",
    ] {
        assert!(read.covers(&scope(needed)), "{needed}");
    }
    assert!(!read.covers(&scope("patient/Patient.rds")));
    assert!(!read.covers(&scope("patient/Patient.c")));
    // v2 granted, v1 needed.
    assert!(scope("patient/Patient.rs").covers(&read));
    assert!(!scope("patient/Patient.r").covers(&read));
    assert!(scope("patient/Patient.cruds").covers(&scope("patient/Patient.write")));
    assert!(scope("patient/Patient.cruds").covers(&scope("patient/Patient.*")));
    assert!(!scope("patient/Patient.cud").covers(&scope("patient/Patient.*")));
    // Compartments must match.
    assert!(!read.covers(&scope("user/Patient.r")));
    assert!(!scope("user/Patient.read").covers(&scope("patient/Patient.r")));
    // Wildcard resource.
    let star = scope("patient/*.rs");
    assert!(star.covers(&scope("patient/Observation.r")));
    assert!(star.covers(&scope("patient/*.s")));
    assert!(!read.covers(&scope("patient/*.r")));
    assert!(!read.covers(&scope("patient/Coverage.r")));
    // Parameters narrow.
    let narrow = scope("patient/Observation.rs?category=x");
    assert!(scope("patient/Observation.rs").covers(&narrow));
    assert!(scope("patient/Observation.read").covers(&narrow));
    assert!(star.covers(&narrow));
    assert!(!narrow.covers(&scope("patient/Observation.rs")));
    assert!(!narrow.covers(&scope("patient/Observation.rs?category=y")));
    assert!(narrow.covers(&scope("patient/Observation.r?category=x")));
    assert!(narrow.covers(&narrow));
    // Non-resource scopes cover only themselves.
    assert!(scope("openid").covers(&scope("openid")));
    assert!(!scope("openid").covers(&scope("profile")));
    assert!(!scope("launch").covers(&scope("launch/patient")));
    assert!(!scope("openid").covers(&read));
    assert!(!read.covers(&scope("openid")));
}

#[test]
fn scopes_parse_and_display() {
    let s = Scopes::parse("  openid   profile patient/Patient.read openid ").expect("parses");
    assert_eq!(s.len(), 3);
    assert_eq!(s.to_string(), "openid profile patient/Patient.read");
    assert_eq!(s.as_string(), "openid profile patient/Patient.read");
    let order: Vec<&str> = s.iter().map(Scope::as_str).collect();
    assert_eq!(order, ["openid", "profile", "patient/Patient.read"]);
    assert!(s.contains(&scope("openid")));
    assert!(
        !s.contains(&scope("patient/Patient.rs")),
        "contains is exact"
    );
    assert_eq!(
        format!("{s:?}"),
        r#"Scopes["openid", "profile", "patient/Patient.read"]"#
    );

    for empty in ["", " ", "    "] {
        assert!(matches!(
            Scopes::parse(empty),
            Err(Error::InvalidScope { reason, .. }) if reason == reason::EMPTY_LIST
        ));
    }
    assert!(matches!(
        Scopes::parse("openid patient/Patient.sr"),
        Err(Error::InvalidScope { scope, reason })
            if scope == "patient/Patient.sr" && reason == reason::PERMISSION_ORDER
    ));
    assert!(matches!(
        Scopes::parse("openid\tprofile"),
        Err(Error::InvalidScope { reason, .. }) if reason == reason::WHITESPACE
    ));
    assert_eq!("openid profile".parse::<Scopes>().map(|s| s.len()), Ok(2));
}

#[test]
fn scopes_editing() {
    let mut s: Scopes = [scope("openid"), scope("profile"), scope("openid")]
        .into_iter()
        .collect();
    assert_eq!(s.len(), 2);
    assert!(!s.insert(scope("profile")));
    assert!(s.insert(scope("patient/Coverage.rs")));
    assert_eq!(s.to_string(), "openid profile patient/Coverage.rs");
    s.retain(Scope::is_resource);
    assert_eq!(s.to_string(), "patient/Coverage.rs");
    s.retain(|_| false);
    assert!(s.is_empty());
    assert_eq!(s.to_string(), "");
    assert_eq!(Scopes::new(), s);
}

#[test]
fn round_trip_is_exact() {
    for raw in [
        "openid profile fhirUser launch launch/patient launch/encounter offline_access online_access",
        "patient/Patient.read user/*.* system/Observation.cud patient/Observation.rs?category=laboratory",
        "custom:scope https://example.com/x",
    ] {
        let parsed = Scopes::parse(raw).expect("parses");
        assert_eq!(parsed.to_string(), raw);
        for token in raw.split(' ') {
            assert_eq!(scope(token).to_string(), token);
            assert_eq!(
                token.parse::<Scope>().map(|s| s.to_string()),
                Ok(token.to_owned())
            );
        }
    }
}

#[test]
fn blue_button_supported_list() {
    let bb2 = Scopes::parse(BB2_SUPPORTED).expect("BB2 list parses");
    assert_eq!(bb2.len(), 9);
    for ok in [
        "openid profile launch/patient patient/Patient.rs patient/ExplanationOfBenefit.rs patient/Coverage.rs",
        "patient/Coverage.r",
        "patient/Coverage.s",
        "patient/Coverage.read",
        "patient/Patient.r patient/ExplanationOfBenefit.s",
    ] {
        let wanted = Scopes::parse(ok).expect("parses");
        assert_eq!(wanted.check_supported(&bb2), Ok(()), "{ok}");
    }
    for (bad, first) in [
        ("offline_access", "offline_access"),
        ("openid offline_access", "offline_access"),
        ("patient/Observation.rs", "patient/Observation.rs"),
        (
            "patient/Patient.rs patient/Patient.cruds",
            "patient/Patient.cruds",
        ),
        ("patient/*.rs", "patient/*.rs"),
        ("user/Patient.rs", "user/Patient.rs"),
        ("launch", "launch"),
    ] {
        let wanted = Scopes::parse(bad).expect("parses");
        assert_eq!(
            wanted.check_supported(&bb2),
            Err(Error::UnsupportedScope(first.to_owned())),
            "{bad}"
        );
    }
    assert!(bb2.allows_read("Coverage"));
    assert!(bb2.allows_search("ExplanationOfBenefit"));
    assert!(!bb2.allows_read("Observation"));
    assert!(!bb2.allows_read("*"));
}

#[test]
fn allows_read_and_search() {
    let s = Scopes::parse("user/*.r patient/Coverage.s system/Patient.rs").expect("parses");
    assert!(s.allows_read("Observation"));
    assert!(!s.allows_search("Observation"));
    assert!(s.allows_search("Coverage"));
    assert!(s.allows_read("Coverage"));
    assert!(
        !s.allows_search("Patient"),
        "system compartment does not count"
    );
    let narrow = Scopes::parse("patient/Observation.rs?category=x").expect("parses");
    assert!(
        !narrow.allows_read("Observation"),
        "parameters restrict the grant"
    );
    assert!(
        !Scopes::parse("openid")
            .expect("parses")
            .allows_read("Patient")
    );
}

#[test]
fn serde_shapes() {
    let s = Scopes::parse("openid patient/Patient.rs").expect("parses");
    assert_eq!(
        serde_json::to_string(&s).expect("serializes"),
        r#"["openid","patient/Patient.rs"]"#
    );
    let from_array: Scopes =
        serde_json::from_str(r#"["openid","patient/Patient.rs","openid"]"#).expect("array");
    assert_eq!(from_array, s);
    let from_string: Scopes =
        serde_json::from_str(r#""openid  patient/Patient.rs""#).expect("string");
    assert_eq!(from_string, s);
    let empty: Scopes = serde_json::from_str("[]").expect("empty array");
    assert!(empty.is_empty());
    assert_eq!(serde_json::to_string(&empty).expect("serializes"), "[]");

    for bad in [
        r#""""#,
        r#""openid patient/Patient.sr""#,
        r#"["openid profile"]"#,
        r#"["patient/patient.read"]"#,
        r#"[1]"#,
        r#"{"scope":"openid"}"#,
        "42",
    ] {
        assert!(serde_json::from_str::<Scopes>(bad).is_err(), "{bad}");
    }
    let err =
        serde_json::from_str::<Scopes>(r#"["practitioner/Patient.read"]"#).expect_err("invalid");
    assert!(
        err.to_string().contains(reason::UNKNOWN_COMPARTMENT),
        "{err}"
    );

    let one = scope("patient/Observation.rs?category=x");
    let json = serde_json::to_string(&one).expect("serializes");
    assert_eq!(json, r#""patient/Observation.rs?category=x""#);
    assert_eq!(serde_json::from_str::<Scope>(&json).expect("parses"), one);
    // Owned strings (escapes) deserialize too.
    assert_eq!(
        serde_json::from_str::<Scope>(r#""open\u0069d""#).expect("parses"),
        scope("openid")
    );
    assert!(serde_json::from_str::<Scope>(r#""patient/Patient.""#).is_err());
    let value = serde_json::json!(["openid", "profile"]);
    assert_eq!(
        serde_json::from_value::<Scopes>(value)
            .map(|s| s.to_string())
            .ok(),
        Some("openid profile".to_owned())
    );
}

#[test]
fn error_message_names_token_and_reason() {
    let err = Scope::parse("patient/Patient.sr").expect_err("invalid");
    assert_eq!(err.code(), "invalid_scope");
    let message = err.to_string();
    assert!(message.contains("patient/Patient.sr"), "{message}");
    assert!(message.contains(reason::PERMISSION_ORDER), "{message}");
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    const LETTERS: [char; 5] = ['c', 'r', 'u', 'd', 's'];

    fn compartment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["patient", "user", "system"])
    }

    fn resource_type() -> impl Strategy<Value = String> {
        prop_oneof![Just("*".to_owned()), "[A-Z][A-Za-z]{0,20}"]
    }

    fn v2_permissions() -> impl Strategy<Value = String> {
        prop::sample::subsequence(LETTERS.to_vec(), 1..=5).prop_map(|l| l.into_iter().collect())
    }

    fn v1_scope() -> impl Strategy<Value = String> {
        (
            compartment(),
            resource_type(),
            prop::sample::select(vec!["read", "write", "*"]),
        )
            .prop_map(|(c, r, p)| format!("{c}/{r}.{p}"))
    }

    fn v2_scope() -> impl Strategy<Value = String> {
        (
            compartment(),
            resource_type(),
            v2_permissions(),
            prop::option::of("[a-z_-]{1,10}=[A-Za-z0-9|:/.?=&,-]{1,20}"),
        )
            .prop_map(|(c, r, p, q)| match q {
                Some(q) => format!("{c}/{r}.{p}?{q}"),
                None => format!("{c}/{r}.{p}"),
            })
    }

    proptest! {
        #[test]
        fn well_formed_resource_scopes_parse_and_round_trip(
            token in prop_oneof![v1_scope(), v2_scope()],
        ) {
            let parsed = Scope::parse(&token).expect("well-formed scope parses");
            prop_assert!(parsed.is_resource());
            prop_assert_eq!(parsed.as_str(), token.as_str());
            prop_assert_eq!(parsed.to_string(), token.clone());
            let (head, _) = token.split_once('.').expect("has a dot");
            let (c, r) = head.split_once('/').expect("has a slash");
            prop_assert_eq!(parsed.compartment(), Some(c));
            prop_assert_eq!(parsed.resource_type(), Some(r));
            prop_assert_eq!(parsed.parameters(), token.split_once('?').map(|(_, q)| q));
            // The v2 form grants the same, and covers and is covered by the original.
            let v2 = parsed.to_v2();
            prop_assert!(v2.equivalent(&parsed) && parsed.equivalent(&v2));
            prop_assert!(v2.covers(&parsed) && parsed.covers(&v2));
            prop_assert_eq!(Scope::parse(v2.as_str()), Ok(v2.clone()));
        }

        #[test]
        fn v1_to_v2_to_v1_is_identity(token in v1_scope()) {
            let v1 = Scope::parse(&token).expect("parses");
            let v2 = v1.to_v2();
            prop_assert!(!v2.is_v1());
            prop_assert_eq!(v2.to_v1(), Some(v1));
        }

        #[test]
        fn v2_to_v1_to_v2_is_identity_where_defined(token in v2_scope()) {
            let v2 = Scope::parse(&token).expect("parses");
            match v2.to_v1() {
                Some(v1) => {
                    prop_assert!(v1.is_v1());
                    prop_assert_eq!(Scope::parse(v1.as_str()), Ok(v1.clone()));
                    prop_assert_eq!(v1.to_v2(), v2);
                }
                None => prop_assert!(
                    v2.parameters().is_some()
                        || v2.permissions().and_then(Permissions::v1_name).is_none()
                ),
            }
        }

        #[test]
        fn permutations_out_of_order_are_rejected(
            letters in prop::sample::subsequence(LETTERS.to_vec(), 1..=5)
                .prop_flat_map(|l| Just(l).prop_shuffle()),
        ) {
            let perms: String = letters.iter().collect();
            let in_order = letters.windows(2).all(|w| {
                LETTERS.iter().position(|&l| l == w[0]) < LETTERS.iter().position(|&l| l == w[1])
            });
            let result = Scope::parse(&format!("patient/Observation.{perms}"));
            if in_order {
                prop_assert!(result.is_ok(), "{perms}");
            } else {
                let is_order_error = matches!(
                    result,
                    Err(Error::InvalidScope { reason, .. }) if reason == reason::PERMISSION_ORDER
                );
                prop_assert!(is_order_error, "{perms}");
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in any::<String>()) {
            if let Ok(scope) = Scope::parse(&raw) {
                prop_assert_eq!(scope.as_str(), raw.as_str());
                let _ = (scope.to_v1(), scope.to_v2(), scope.covers(&scope));
            }
            let _ = Scopes::parse(&raw);
        }

        #[test]
        fn scope_like_strings_never_panic(raw in "[a-zA-Z*/.?=&cruds \\-]{0,30}") {
            if let Ok(scope) = Scope::parse(&raw) {
                prop_assert_eq!(scope.as_str(), raw.as_str());
                prop_assert!(scope.covers(&scope));
                prop_assert!(scope.equivalent(&scope));
                prop_assert!(scope.to_v2().equivalent(&scope));
                if let Some(v1) = scope.to_v1() {
                    prop_assert!(v1.equivalent(&scope));
                }
            }
            if let Ok(scopes) = Scopes::parse(&raw) {
                prop_assert_eq!(Scopes::parse(&scopes.to_string()), Ok(scopes.clone()));
                prop_assert_eq!(scopes.check_supported(&scopes), Ok(()));
            }
        }
    }
}

/// `Permissions::parse_v2` as it was before its single pass, as the oracle of the new one.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod oracle {
    use proptest::prelude::*;

    use super::*;

    fn old_parse_v2(letters: &str) -> Result<Permissions, &'static str> {
        let rank = |b: u8| {
            Permissions::LETTERS
                .iter()
                .position(|&(letter, _)| letter == b)
        };
        if letters.is_empty() {
            return Err(reason::EMPTY_PERMISSIONS);
        }
        if letters.bytes().any(|b| rank(b).is_none()) {
            return Err(reason::UNKNOWN_PERMISSION);
        }
        let mut set = Permissions::NONE;
        for b in letters.bytes() {
            let (_, bit) = Permissions::LETTERS[rank(b).unwrap_or_default()];
            if set.contains(bit) {
                return Err(reason::REPEATED_PERMISSION);
            }
            set |= bit;
        }
        let in_order = letters
            .as_bytes()
            .windows(2)
            .all(|pair| rank(pair[0]) < rank(pair[1]));
        if in_order {
            Ok(set)
        } else {
            Err(reason::PERMISSION_ORDER)
        }
    }

    proptest! {
        #[test]
        fn parse_v2_is_unchanged(letters in "[crudsx*é]{0,7}") {
            prop_assert_eq!(Permissions::parse_v2(&letters), old_parse_v2(&letters));
        }
    }
}
