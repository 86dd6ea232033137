//! A simulated person's full state, and its rendering as a register person document.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

/// One residence (bostedsadresse version).
#[derive(Debug, Clone, PartialEq)]
pub struct Residence {
    /// Kommunenummer.
    pub kommune: String,
    /// Street name (for a matrikkeladresse: none).
    pub street: Option<String>,
    /// House number.
    pub number: u16,
    /// House letter.
    pub letter: Option<char>,
    /// Postcode.
    pub postcode: String,
    /// Postal place.
    pub place: String,
    /// Valid from.
    pub from: DateTime<Utc>,
    /// Valid until (a historic residence).
    pub to: Option<DateTime<Utc>>,
}

/// A person as the simulator knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonState {
    /// Identity number.
    pub id: String,
    /// A D-nummer holder.
    pub d_number: bool,
    /// Date of birth.
    pub birth: NaiveDate,
    /// Kommune of birth (for persons born in Norway).
    pub birth_kommune: Option<String>,
    /// Female.
    pub female: bool,
    /// Given name.
    pub given: String,
    /// Middle name.
    pub middle: Option<String>,
    /// Family name, and earlier ones with the time they ended.
    pub family: String,
    /// Earlier names: (given, family, valid from, valid to).
    pub earlier_names: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)>,
    /// Status history, last is current: (status, valid from).
    pub statuses: Vec<(String, DateTime<Utc>)>,
    /// Date of death.
    pub death: Option<NaiveDate>,
    /// Residences, the current one last (with `to: None`) while resident.
    pub residences: Vec<Residence>,
    /// `ugradert`, `klientadresse`, `fortrolig`, `strengtFortrolig`.
    pub protection: String,
    /// Citizenship (alpha-3).
    pub citizenship: String,
    /// Marital status.
    pub marital: String,
    /// Spouse.
    pub spouse: Option<String>,
    /// Mother.
    pub mother: Option<String>,
    /// Father.
    pub father: Option<String>,
    /// Children.
    pub children: Vec<String>,
    /// Emigrated to (country, date), while emigrated.
    pub emigrated: Option<(String, NaiveDate)>,
    /// Immigrated from (country, date).
    pub immigrated: Option<(String, NaiveDate)>,
}

impl PersonState {
    /// A resident created by an event (a birth, an immigration) at `at`, living at `residence`.
    pub fn newcomer(
        id: String,
        birth: NaiveDate,
        female: bool,
        given: String,
        family: String,
        residence: Residence,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            d_number: false,
            birth,
            birth_kommune: None,
            female,
            given,
            middle: None,
            family,
            earlier_names: Vec::new(),
            statuses: vec![("bosatt".to_owned(), at)],
            death: None,
            residences: vec![residence],
            protection: "ugradert".to_owned(),
            citizenship: "NOR".to_owned(),
            marital: "ugift".to_owned(),
            spouse: None,
            mother: None,
            father: None,
            children: Vec::new(),
            emigrated: None,
            immigrated: None,
        }
    }

    /// Ends the current residence at `at` (a move or an emigration).
    pub fn end_residence(&mut self, at: DateTime<Utc>) {
        if let Some(r) = self.residences.last_mut().filter(|r| r.to.is_none()) {
            r.to = Some(at);
        }
    }

    /// The current status.
    pub fn status(&self) -> &str {
        self.statuses
            .last()
            .map(|(s, _)| s.as_str())
            .unwrap_or("bosatt")
    }

    /// The current residence, if any.
    pub fn residence(&self) -> Option<&Residence> {
        self.residences.last().filter(|r| r.to.is_none())
    }

    /// The residence valid at `at`.
    pub fn residence_at(&self, at: DateTime<Utc>) -> Option<&Residence> {
        self.residences
            .iter()
            .rev()
            .find(|r| r.from <= at && r.to.is_none_or(|to| to > at))
    }

    /// The status valid at `at`.
    pub fn status_at(&self, at: DateTime<Utc>) -> Option<&str> {
        self.statuses
            .iter()
            .rev()
            .find(|(_, from)| *from <= at)
            .map(|(s, _)| s.as_str())
    }

    /// Whether the register withholds this person's addresses (strengt fortrolig).
    pub fn strictly_protected(&self) -> bool {
        self.protection
            .replace('_', "")
            .eq_ignore_ascii_case("strengtfortrolig")
    }

    /// The person document (`Folkeregisterperson`), as the register serves it.
    pub fn document(&self) -> Value {
        let meta = |current: bool, from: DateTime<Utc>| {
            json!({
                "ajourholdstidspunkt": from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "erGjeldende": current,
                "kilde": "Synutopia",
                "gyldighetstidspunkt": from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
        };
        let with = |mut base: Value, extra: Value| {
            if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
                b.extend(e);
            }
            base
        };
        let born = self
            .birth
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        let mut doc = serde_json::Map::new();
        doc.insert(
            "identifikasjonsnummer".into(),
            json!([with(
                meta(true, born),
                json!({
                    "status": "iBruk",
                    "foedselsEllerDNummer": self.id,
                    "identifikatortype": if self.d_number { "dNummer" } else { "foedselsnummer" },
                })
            )]),
        );
        let n = self.statuses.len();
        doc.insert(
            "status".into(),
            Value::Array(
                self.statuses
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, (s, from))| with(meta(i + 1 == n, *from), json!({ "status": s })))
                    .collect(),
            ),
        );
        doc.insert("kjoenn".into(), json!([{ "erGjeldende": true, "kilde": "Synutopia", "kjoenn": if self.female { "kvinne" } else { "mann" } }]));
        let mut birth = json!({
            "foedselsdato": self.birth.format("%Y-%m-%d").to_string(),
            "foedselsaar": self.birth.format("%Y").to_string(),
            "foedeland": if self.immigrated.is_some() && self.birth_kommune.is_none() { "SWE" } else { "NOR" },
        });
        if let Some(k) = &self.birth_kommune {
            birth["foedekommuneINorge"] = json!(k);
        }
        doc.insert("foedsel".into(), json!([with(meta(true, born), birth)]));
        let mut names = vec![with(meta(true, born), {
            let mut n = json!({ "fornavn": self.given.to_uppercase(), "etternavn": self.family.to_uppercase() });
            if let Some(m) = &self.middle {
                n["mellomnavn"] = json!(m.to_uppercase());
            }
            n
        })];
        for (given, family, from, to) in self.earlier_names.iter().rev() {
            let mut old = with(
                meta(false, *from),
                json!({ "fornavn": given.to_uppercase(), "etternavn": family.to_uppercase() }),
            );
            old["opphoerstidspunkt"] = json!(to.to_rfc3339());
            names.push(old);
        }
        doc.insert("navn".into(), Value::Array(names));
        if !self.protection.eq_ignore_ascii_case("ugradert") {
            doc.insert(
                "adressebeskyttelse".into(),
                json!([with(
                    meta(true, born),
                    json!({ "graderingsnivaa": self.protection })
                )]),
            );
        }
        let residences: Vec<Value> = self
            .residences
            .iter()
            .rev()
            // Strengt fortrolig: the register withholds the current residence; historic ones stay.
            .filter(|r| !(self.strictly_protected() && r.to.is_none()))
            .map(|r| residence_json(r, meta(r.to.is_none(), r.from)))
            .collect();
        if !residences.is_empty() {
            doc.insert("bostedsadresse".into(), Value::Array(residences));
        }
        if self.strictly_protected() {
            doc.insert("postadresse".into(), json!([with(meta(true, born), json!({
                "adressegradering": "ugradert",
                "postboksadresse": { "postbokseier": "SOT 6", "postboks": "Postboks 2094 Vika",
                    "poststed": { "poststedsnavn": "OSLO", "postnummer": "0125" } }
            }))]));
        }
        doc.insert(
            "statsborgerskap".into(),
            json!([with(
                meta(true, born),
                json!({ "statsborgerskap": self.citizenship })
            )]),
        );
        let mut marital = json!({ "sivilstand": self.marital });
        if let Some(s) = &self.spouse {
            marital["relatertVedSivilstand"] = json!(s);
        }
        doc.insert(
            "sivilstand".into(),
            json!([with(meta(true, born), marital)]),
        );
        let mut relations = Vec::new();
        for (who, role) in [(&self.mother, "mor"), (&self.father, "far")] {
            if let Some(id) = who {
                relations.push(with(meta(true, born), json!({ "relatertPerson": id, "relatertPersonsRolle": role, "minRolleForPerson": "barn" })));
            }
        }
        for child in &self.children {
            relations.push(with(meta(true, born), json!({ "relatertPerson": child, "relatertPersonsRolle": "barn", "minRolleForPerson": if self.female { "mor" } else { "far" } })));
        }
        if let Some(s) = &self.spouse {
            relations.push(with(meta(true, born), json!({ "relatertPerson": s, "relatertPersonsRolle": "ektefelleEllerPartner", "minRolleForPerson": "ektefelleEllerPartner" })));
        }
        if !relations.is_empty() {
            doc.insert("familierelasjon".into(), Value::Array(relations));
        }
        if let Some(death) = self.death {
            // The spec names a single object for doedsfall (regsync also reads an array).
            doc.insert(
                "doedsfall".into(),
                json!({ "erGjeldende": true, "kilde": "Synutopia", "doedsdato": death.format("%Y-%m-%d").to_string() }),
            );
        }
        if let Some((country, date)) = &self.emigrated {
            doc.insert("utflytting".into(), json!([{ "erGjeldende": true, "kilde": "Synutopia", "tilflyttingsland": country, "utflyttingsdato": date.to_string() }]));
        }
        if let Some((country, date)) = &self.immigrated {
            doc.insert("innflytting".into(), json!([{ "erGjeldende": true, "kilde": "Synutopia", "fraflyttingsland": country, "innflyttingsdato": date.to_string() }]));
        }
        Value::Object(doc)
    }
}

impl Residence {
    /// Its identity in the property register.
    pub fn key(&self) -> crate::matrikkel::Key {
        (
            self.kommune.clone(),
            self.street.clone(),
            self.number,
            self.letter,
        )
    }

    /// The dwelling (`bruksenhetsnummer`, `H0101` to `H0404`): the same for everyone who moved in
    /// together (a household shares its residence), most often another for those who did not.
    pub fn dwelling(&self) -> String {
        let h = crate::matrikkel::stable(&format!("{:?}|{}", self.key(), self.from.timestamp()));
        format!("H0{}0{}", 1 + h % 4, 1 + (h >> 4) % 4)
    }
}

fn residence_json(r: &Residence, mut meta: Value) -> Value {
    let poststed = json!({ "poststedsnavn": r.place, "postnummer": r.postcode });
    let key = r.key();
    let id = crate::matrikkel::address_id(&key).to_string();
    let address = match &r.street {
        Some(street) => {
            let mut number = json!({ "husnummer": r.number.to_string() });
            if let Some(l) = r.letter {
                number["husbokstav"] = json!(l.to_string());
            }
            json!({ "vegadresse": {
                "kommunenummer": r.kommune, "bruksenhetsnummer": r.dwelling(), "bruksenhetstype": "bolig",
                "adressenavn": street, "adressenummer": number,
                "adressekode": crate::matrikkel::street_code(&r.kommune, street).to_string(),
                "poststed": poststed,
            }})
        }
        None => {
            let (gnr, bnr) = crate::matrikkel::cadastre(&key);
            json!({ "matrikkeladresse": {
                "matrikkelnummer": { "kommunenummer": r.kommune, "gaardsnummer": gnr, "bruksnummer": bnr },
                "bruksenhetsnummer": r.dwelling(), "poststed": poststed,
            }})
        }
    };
    let m = meta.as_object_mut().expect("meta is an object");
    if let Value::Object(a) = address {
        m.extend(a);
    }
    m.insert("adressegradering".into(), json!("ugradert"));
    m.insert("adresseIdentifikatorFraMatrikkelen".into(), json!(id));
    m.insert("flyttedato".into(), json!(r.from.date_naive().to_string()));
    if let Some(to) = r.to {
        m.insert("opphoerstidspunkt".into(), json!(to.to_rfc3339()));
    }
    meta
}
