//! A person document (`Folkeregisterperson`) to the canonical [`Person`].
//!
//! Every element is an array of versions with `erGjeldende` marking the current one; `doedsfall`
//! and `falskIdentitet` may be an object or an array. Unknown fields are ignored and unknown
//! enum values kept. Grading values come in two spellings (`strengtFortrolig`,
//! `STRENGT_FORTROLIG`) and are compared without case and underscores.

use crate::TransformError;
use crate::ident;
use crate::json::{Doc, Node};
use crate::model::{Address, Person};
use schemas::tables::protection;

/// The versions of an element: an array, or a single object (as `doedsfall` may be).
pub(crate) fn versions<'a, N: Node>(doc: &'a N, element: &str) -> Vec<&'a N> {
    match doc.get(element) {
        Some(v) if v.is_object() => vec![v],
        Some(v) => v
            .as_array()
            .map(|items| items.iter().filter(|v| v.is_object()).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Whether a version says `erGjeldende: <flag>`.
fn marked<N: Node>(version: &N, flag: bool) -> bool {
    version.get("erGjeldende").and_then(Node::as_bool) == Some(flag)
}

/// The current version of an element: the one with `erGjeldende: true`, else the only one
/// that does not say `erGjeldende: false`.
pub(crate) fn current<'a, N: Node>(doc: &'a N, element: &str) -> Option<&'a N> {
    let all = versions(doc, element);
    all.iter()
        .find(|v| marked(**v, true))
        .or_else(|| all.iter().find(|v| v.get("erGjeldende").is_none()))
        .copied()
}

pub(crate) use crate::fields::{code, date, integer, text, timestamp};

/// `strengtFortrolig`, `STRENGT_FORTROLIG` -> `strengt_fortrolig`; unknown values kept as given.
pub fn protection_level(raw: &str) -> String {
    let folded: String = raw
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_lowercase();
    match folded.as_str() {
        "ugradert" => protection::UNGRADED.to_owned(),
        "klientadresse" => protection::CLIENT_ADDRESS.to_owned(),
        "fortrolig" => protection::CONFIDENTIAL.to_owned(),
        "strengtfortrolig" => protection::STRICTLY_CONFIDENTIAL.to_owned(),
        _ => raw.to_owned(),
    }
}

/// The address's link to the property register: its address id (on the `bostedsadresse`
/// version) and the dwelling (on the address).
fn link<N: Node>(out: &mut Address, entry: &N, a: &N) {
    out.matrikkel_address_id = text(entry, "adresseIdentifikatorFraMatrikkelen");
    out.dwelling_unit = text(a, "bruksenhetsnummer");
}

/// The flattened residence address of one `bostedsadresse` version.
pub(crate) fn residence<N: Node>(entry: &N) -> Address {
    let postal = |a: &N| {
        let nested = a.get("poststed");
        let code = nested
            .and_then(|p| code(p, "postnummer", 4))
            .or_else(|| code(a, "postnummer", 4));
        let place = nested
            .and_then(|p| text(p, "poststedsnavn"))
            .or_else(|| text(a, "poststedsnavn"));
        (code, place)
    };
    if let Some(graded) = entry.get("adressegradering").filter(|g| !g.is_null())
        && withholds_address(&grading(Some(graded)))
    {
        return Address::default();
    }
    let mut out = Address {
        moved_in_date: date(entry, "flyttedato"),
        ..Address::default()
    };
    if let Some(a) = entry.get("vegadresse").filter(|a| a.is_object()) {
        let number = a.get("adressenummer");
        out.municipality_number = code(a, "kommunenummer", 4);
        out.street_name = text(a, "adressenavn");
        out.house_number = number
            .and_then(|n| text(n, "husnummer"))
            .or_else(|| text(a, "husnummer"));
        out.house_letter = number
            .and_then(|n| text(n, "husbokstav"))
            .or_else(|| text(a, "husbokstav"));
        (out.postal_code, out.postal_place) = postal(a);
        out.street_code = integer(a, "adressekode");
        link(&mut out, entry, a);
    } else if let Some(a) = entry.get("matrikkeladresse").filter(|a| a.is_object()) {
        out.municipality_number = a
            .get("matrikkelnummer")
            .and_then(|m| code(m, "kommunenummer", 4))
            .or_else(|| code(a, "kommunenummer", 4));
        out.street_name = text(a, "adressetilleggsnavn");
        (out.postal_code, out.postal_place) = postal(a);
        link(&mut out, entry, a);
    } else if let Some(a) = entry.get("ukjentBosted").filter(|a| a.is_object()) {
        out.municipality_number = code(a, "bostedskommune", 4);
    }
    out
}

/// The identity number in use: the current `identifikasjonsnummer`, else the one asked for.
fn identity<N: Node>(doc: &N, requested: Option<&str>) -> Result<(String, String), TransformError> {
    let entry = current(doc, "identifikasjonsnummer");
    let id = entry
        .and_then(|e| text(e, "foedselsEllerDNummer"))
        .or_else(|| requested.map(str::to_owned))
        .ok_or(TransformError::MissingField {
            person_id: String::new(),
            field: "identifikasjonsnummer",
        })?;
    let kind = ident::validate(&id)?;
    let id_type = entry
        .and_then(|e| text(e, "identifikatortype"))
        .unwrap_or_else(|| kind.as_register_str().to_owned());
    Ok((id, id_type))
}

/// The related person with the given role (`mor`, `far`, `medmor`, ...).
fn relative<N: Node>(doc: &N, role: &str) -> Option<String> {
    versions(doc, "familierelasjon")
        .into_iter()
        .filter(|r| !marked(*r, false))
        .find(|r| text(*r, "relatertPersonsRolle").as_deref() == Some(role))
        .and_then(|r| text(r, "relatertPerson"))
}

/// Normalises a person document. `requested` is the id it was fetched by, used where the
/// document does not name its own.
pub fn normalise<N: Node>(doc: &N, requested: Option<&str>) -> Result<Person, TransformError> {
    if !doc.is_object() {
        return Err(TransformError::Malformed {
            what: "person document",
            reason: "not a JSON object".into(),
        });
    }
    let (person_id, id_type) = identity(doc, requested)?;
    let birth = current(doc, "foedsel");
    let birth_date = birth.and_then(|b| date(b, "foedselsdato"));
    let birth_year = birth_date
        .map(|d| chrono::Datelike::year(&d))
        .or_else(|| {
            birth
                .and_then(|b| text(b, "foedselsaar"))
                .and_then(|y| y.parse().ok())
        })
        .unwrap_or(0);
    let name = current(doc, "navn");
    let protection = protection(doc);
    let address = if withholds_address(&protection) {
        Address::default()
    } else {
        current(doc, "bostedsadresse")
            .map(residence)
            .unwrap_or_default()
    };
    let spouse = current(doc, "sivilstand")
        .and_then(|s| text(s, "relatertVedSivilstand"))
        .or_else(|| relative(doc, "ektefelleEllerPartner"));
    let emigrated = current(doc, "utflytting").filter(|_| {
        current(doc, "status")
            .and_then(|s| text(s, "status"))
            .as_deref()
            == Some("utflyttet")
    });
    Ok(Person {
        person_id,
        id_type,
        birth_date,
        birth_year,
        sex: current(doc, "kjoenn")
            .and_then(|k| text(k, "kjoenn"))
            .map(|s| s.to_lowercase()),
        given_name: name.and_then(|n| text(n, "fornavn")),
        middle_name: name.and_then(|n| text(n, "mellomnavn")),
        family_name: name.and_then(|n| text(n, "etternavn")),
        status: current(doc, "status").and_then(|s| text(s, "status")),
        address,
        address_protection: protection,
        death_date: current(doc, "doedsfall").and_then(|d| date(d, "doedsdato")),
        citizenship: current(doc, "statsborgerskap").and_then(|s| text(s, "statsborgerskap")),
        marital_status: current(doc, "sivilstand").and_then(|s| text(s, "sivilstand")),
        spouse_id: spouse,
        mother_id: relative(doc, "mor"),
        father_id: relative(doc, "far"),
        co_mother_id: relative(doc, "medmor"),
        emigrated_to: emigrated.and_then(|u| text(u, "tilflyttingsland")),
        immigrated_from: current(doc, "innflytting").and_then(|i| text(i, "fraflyttingsland")),
    })
}

/// How strict a protection level is; unknown values rank with the strictest.
fn rank(level: &str) -> u8 {
    match level {
        protection::UNGRADED => 0,
        protection::CLIENT_ADDRESS => 1,
        protection::CONFIDENTIAL => 2,
        protection::STRICTLY_CONFIDENTIAL => 3,
        _ => 4,
    }
}

/// The stricter of two levels (the first of two unknown ones).
fn stricter(a: String, b: String) -> String {
    if rank(&b) > rank(&a) { b } else { a }
}

/// A grading field's level: a string is folded, anything else cannot be read.
fn grading<N: Node>(v: Option<&N>) -> String {
    match v.and_then(Node::as_str) {
        Some(s) => protection_level(s),
        None => protection::UNREADABLE.to_owned(),
    }
}

/// The person's address protection, failing closed: an element absent (or an empty list) is
/// `ugradert`; any shape that cannot be read with certainty (not a list or object, a version
/// that is not an object, `erGjeldende` that is not a boolean, no current version, a
/// `graderingsnivaa` that is not a string) is [`protection::UNREADABLE`], which withholds like
/// strengt fortrolig. Several current versions give the strictest. The current residence's own
/// `adressegradering`, where present, counts too.
pub fn protection<N: Node>(doc: &N) -> String {
    let element = match doc.get("adressebeskyttelse") {
        None => protection::UNGRADED.to_owned(),
        Some(p) => match p.as_array() {
            Some([]) => protection::UNGRADED.to_owned(),
            Some(items) if !items.iter().all(Node::is_object) => protection::UNREADABLE.to_owned(),
            Some(_) => graded(doc),
            None if p.is_object() => graded(doc),
            None => protection::UNREADABLE.to_owned(),
        },
    };
    // Every residence version that may be current counts: the strictest grading wins.
    versions(doc, "bostedsadresse")
        .into_iter()
        .filter(|r| !marked(*r, false))
        .filter_map(|r| r.get("adressegradering").filter(|g| !g.is_null()))
        .fold(element, |level, graded| {
            stricter(level, grading(Some(graded)))
        })
}

/// The level of an `adressebeskyttelse` that is a list of objects or one object: the current
/// versions' strictest, [`protection::UNREADABLE`] where `erGjeldende` is not a boolean or no
/// version is current.
fn graded<N: Node>(doc: &N) -> String {
    let all = versions(doc, "adressebeskyttelse");
    let flags: Vec<Option<&N>> = all.iter().map(|v| v.get("erGjeldende")).collect();
    if flags
        .iter()
        .any(|f| f.is_some_and(|f| f.as_bool().is_none()))
    {
        return protection::UNREADABLE.to_owned();
    }
    let said_current: Vec<&&N> = all.iter().filter(|v| marked(**v, true)).collect();
    let unmarked: Vec<&&N> = all
        .iter()
        .filter(|v| v.get("erGjeldende").is_none())
        .collect();
    let currents = if said_current.is_empty() {
        unmarked
    } else {
        said_current
    };
    currents
        .iter()
        .map(|v| grading(v.get("graderingsnivaa")))
        .reduce(stricter)
        .unwrap_or_else(|| protection::UNREADABLE.to_owned())
}

/// Whether a protection level withholds every address and the municipality. Unknown levels are
/// treated as the strictest: an address is never kept on a guess.
pub fn withholds_address(level: &str) -> bool {
    !matches!(
        level,
        protection::UNGRADED | protection::CLIENT_ADDRESS | protection::CONFIDENTIAL
    )
}

/// Parses raw JSON bytes and normalises them.
pub fn normalise_bytes(raw: &[u8], requested: Option<&str>) -> Result<Person, TransformError> {
    let doc = Doc::parse(raw).map_err(|e| TransformError::Malformed {
        what: "person document",
        reason: e.to_string(),
    })?;
    normalise(&doc, requested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn grading_spellings_fold() {
        assert_eq!(protection_level("STRENGT_FORTROLIG"), "strengt_fortrolig");
        assert_eq!(protection_level("strengtFortrolig"), "strengt_fortrolig");
        assert_eq!(protection_level("UGRADERT"), "ugradert");
        assert_eq!(protection_level("hemmelig"), "hemmelig");
        assert!(withholds_address("hemmelig"));
        assert!(!withholds_address("fortrolig"));
    }

    #[test]
    fn codes_keep_their_leading_zeros_whatever_the_json_type() {
        let entry = serde_json::json!({
            "vegadresse": {"adressenavn": "Storgata", "kommunenummer": 301,
                           "poststed": {"postnummer": 150, "poststedsnavn": "OSLO"}}
        });
        let a = residence(&entry);
        assert_eq!(a.municipality_number.as_deref(), Some("0301"));
        assert_eq!(a.postal_code.as_deref(), Some("0150"));
        let entry = serde_json::json!({
            "vegadresse": {"adressenavn": "Storgata", "kommunenummer": "301", "postnummer": "0150"}
        });
        let a = residence(&entry);
        assert_eq!(a.municipality_number.as_deref(), Some("0301"));
        assert_eq!(a.postal_code.as_deref(), Some("0150"));
        let entry = serde_json::json!({
            "matrikkeladresse": {"matrikkelnummer": {"kommunenummer": 1101}, "postnummer": "4370"}
        });
        assert_eq!(
            residence(&entry).municipality_number.as_deref(),
            Some("1101")
        );
        let entry = serde_json::json!({"ukjentBosted": {"bostedskommune": 301}});
        assert_eq!(
            residence(&entry).municipality_number.as_deref(),
            Some("0301")
        );
        // Not a code: kept as given, never invented.
        let entry = serde_json::json!({"vegadresse": {"kommunenummer": "Oslo"}});
        assert_eq!(
            residence(&entry).municipality_number.as_deref(),
            Some("Oslo")
        );
    }

    fn with_protection(p: Option<Value>) -> Value {
        let mut doc = serde_json::json!({
            "identifikasjonsnummer": [{"foedselsEllerDNummer": "11888500016", "erGjeldende": true}],
            "bostedsadresse": [{"vegadresse": {"adressenavn": "Hemmeligvegen", "kommunenummer": "5035"}, "erGjeldende": true}]
        });
        if let Some(p) = p {
            doc["adressebeskyttelse"] = p;
        }
        doc
    }

    #[test]
    fn unexpected_protection_shapes_fail_closed() {
        use serde_json::json;
        let odd = [
            json!([{"graderingsnivaa": "ugradert", "erGjeldende": null}]),
            json!([{"graderingsnivaa": "ugradert", "erGjeldende": "true"}]),
            json!([{"graderingsnivaa": 0, "erGjeldende": true}]),
            json!([{"graderingsnivaa": null, "erGjeldende": true}]),
            json!([{"erGjeldende": true}]),
            json!("ugradert"),
            json!(0),
            json!(null),
            json!([{"graderingsnivaa": "ugradert", "erGjeldende": false}]),
            json!(["ugradert"]),
        ];
        for p in odd {
            let person = normalise(&with_protection(Some(p.clone())), None).unwrap();
            assert_eq!(person.address_protection, "ukjent", "{p}");
            assert!(withholds_address(&person.address_protection), "{p}");
            assert_eq!(person.address, Address::default(), "{p}: address withheld");
        }
        // Readable shapes keep their level; several current versions give the strictest.
        for (p, level) in [
            (None, "ugradert"),
            (Some(json!([])), "ugradert"),
            (Some(json!({"graderingsnivaa": "fortrolig"})), "fortrolig"),
            (
                Some(
                    json!([{"graderingsnivaa": "ugradert", "erGjeldende": false},
                    {"graderingsnivaa": "STRENGT_FORTROLIG", "erGjeldende": true}]),
                ),
                "strengt_fortrolig",
            ),
            (
                Some(
                    json!([{"graderingsnivaa": "fortrolig", "erGjeldende": true},
                    {"graderingsnivaa": "strengtFortrolig", "erGjeldende": true}]),
                ),
                "strengt_fortrolig",
            ),
        ] {
            let person = normalise(&with_protection(p.clone()), None).unwrap();
            assert_eq!(person.address_protection, level, "{p:?}");
        }
    }

    #[test]
    fn a_residence_graded_strictly_is_withheld_whatever_the_element_says() {
        let mut doc = with_protection(None);
        doc["bostedsadresse"][0]["adressegradering"] = Value::from("strengtFortrolig");
        let person = normalise(&doc, None).unwrap();
        assert_eq!(person.address_protection, "strengt_fortrolig");
        assert_eq!(person.address, Address::default());
        doc["bostedsadresse"][0]["adressegradering"] = Value::from(7);
        assert_eq!(normalise(&doc, None).unwrap().address_protection, "ukjent");
        // Two versions marked current: the strict grading of the second counts too.
        let mut two = with_protection(None);
        two["bostedsadresse"] = serde_json::json!([
            {"vegadresse": {"adressenavn": "Aapenvegen", "kommunenummer": "5035"}, "erGjeldende": true},
            {"vegadresse": {"adressenavn": "Skjultvegen", "kommunenummer": "5035"}, "erGjeldende": true,
             "adressegradering": "strengtFortrolig"}
        ]);
        let person = normalise(&two, None).unwrap();
        assert_eq!(person.address_protection, "strengt_fortrolig");
        assert_eq!(person.address, Address::default());
    }

    #[test]
    fn not_an_object_is_malformed() {
        assert!(normalise(&serde_json::json!([1, 2]), None).is_err());
        assert!(normalise_bytes(b"{\"navn\": [", None).is_err());
        // A member only serde_json gives a meaning (here: a protection version it would read as
        // strengt fortrolig) makes the document unreadable, never a version read otherwise.
        let raw = br#"{"identifikasjonsnummer": [{"foedselsEllerDNummer": "11888500016"}],
            "adressebeskyttelse": [{"graderingsnivaa": "ugradert", "erGjeldende": true},
              {"$serde_json::private::RawValue": "{\"graderingsnivaa\": \"strengtFortrolig\"}"}],
            "bostedsadresse": [{"vegadresse": {"kommunenummer": "0301", "adressenavn": "X"}}]}"#;
        assert!(normalise_bytes(raw, None).is_err());
    }

    /// Documents of the register's element and field names in any shape: values of every JSON
    /// type where the register sends one, lists or single objects, versions current or not.
    fn odd_documents() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        const KEYS: &[&str] = &[
            "identifikasjonsnummer",
            "foedselsEllerDNummer",
            "identifikatortype",
            "foedsel",
            "foedselsdato",
            "foedselsaar",
            "navn",
            "fornavn",
            "etternavn",
            "status",
            "bostedsadresse",
            "vegadresse",
            "matrikkeladresse",
            "ukjentBosted",
            "kommunenummer",
            "adressenavn",
            "adressenummer",
            "husnummer",
            "poststed",
            "postnummer",
            "adressegradering",
            "adressebeskyttelse",
            "graderingsnivaa",
            "erGjeldende",
            "familierelasjon",
            "relatertPersonsRolle",
            "relatertPerson",
            "sivilstand",
            "gyldighetstidspunkt",
            "opphoerstidspunkt",
            "flyttedato",
            "doedsfall",
            "doedsdato",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5000i64..100_000).prop_map(Value::from),
            Just(Value::from(2.5)),
            prop::sample::select(vec![
                "11888500016",
                "03851598730",
                "fortrolig",
                "STRENGT_FORTROLIG",
                "ugradert",
                "mor",
                "bosatt",
                "5035",
                "301",
                " 0150 ",
                "2019-05-17",
                "2020-01-01T00:00:00Z",
                "Tr\u{f8}ndelag \"x\"",
                "",
                "  ",
            ])
            .prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(
                    |members| Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect()
                    )
                ),
            ]
        });
        prop::collection::vec((prop::sample::select(KEYS), value), 0..10).prop_map(|members| {
            let mut doc: serde_json::Map<String, Value> = members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            doc.entry("identifikasjonsnummer")
                .or_insert(serde_json::json!([{"foedselsEllerDNummer": "11888500016"}]));
            Value::Object(doc)
        })
    }

    proptest::proptest! {
        /// A document read as a borrowed `Doc` normalises exactly as through a `Value`.
        #[test]
        fn a_doc_and_a_value_normalise_alike(doc in odd_documents()) {
            let raw = serde_json::to_vec(&doc).unwrap();
            let borrowed = Doc::parse(&raw).unwrap();
            let (a, b) = (normalise(&doc, None), normalise(&borrowed, None));
            proptest::prop_assert_eq!(a.as_ref().ok(), b.as_ref().ok());
            proptest::prop_assert_eq!(a.is_err(), b.is_err());
            if let Ok(person) = a {
                proptest::prop_assert_eq!(
                    super::super::versions::from_document(&person, &doc, 1),
                    super::super::versions::from_document(&person, &borrowed, 1)
                );
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = normalise_bytes(&raw, Some("03851598730"));
        }
    }
}
