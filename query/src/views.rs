//! Views registered in every session whose lake has their tables: questions across registers
//! asked by address and by municipality.
//!
//! An address is matched across registers by kommune and a key of its street, number and
//! letter without spaces or punctuation, in capitals (`Torget 1 B` and `TORGET 1B` are one
//! address): the population register gives the parts, the business register the lines. Where
//! the population register names the property register's address id
//! (`adresseIdentifikatorFraMatrikkelen`), residents are placed by it. A
//! resident appears only if unprotected (`ugradert`): a protected person is not counted, listed
//! or placed anywhere in these views.

use datafusion::prelude::SessionContext;

use crate::QueryError;

/// One view: its name, what it answers, the tables it reads and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Name, as in SQL.
    pub name: &'static str,
    /// What it answers.
    pub description: &'static str,
    /// The tables (and views) it reads.
    pub reads: &'static [&'static str],
    /// Its query.
    pub sql: &'static str,
}

/// A street, number and letter as an address key (SQL over the given expressions).
macro_rules! key {
    ($text:literal) => {
        concat!(
            "regexp_replace(upper(",
            $text,
            "), '[^A-Z0-9ÆØÅ]', '', 'g')"
        )
    };
}

/// Every view, in the order they are created (a view may read one before it).
pub const VIEWS: &[View] = &[
    View {
        name: "address_residents",
        description: "unprotected residents (bosatt, ugradert) with their address and its key",
        reads: &["person"],
        sql: concat!(
            "SELECT municipality_number, street_name, house_number, house_letter, postal_code, postal_place, ",
            key!("concat(street_name, house_number, coalesce(house_letter, ''))"),
            " AS address_key, street_code, matrikkel_address_id, dwelling_unit, ",
            "person_id, given_name, family_name, birth_date ",
            "FROM person WHERE status = 'bosatt' AND address_protection = 'ugradert' ",
            "AND municipality_number IS NOT NULL AND street_name IS NOT NULL"
        ),
    },
    View {
        name: "address_businesses",
        description: "units and subunits not deleted, with their address's key (the first address line)",
        reads: &["business_unit", "business_subunit"],
        sql: concat!(
            "SELECT 'enhet' AS unit_kind, municipality_number, address_lines, postal_code, postal_place, ",
            key!("split_part(address_lines, chr(10), 1)"),
            " AS address_key, organization_number, name, organization_form, industry_code, employees ",
            "FROM business_unit WHERE deleted_date IS NULL AND address_lines IS NOT NULL ",
            "UNION ALL ",
            "SELECT 'underenhet' AS unit_kind, municipality_number, address_lines, postal_code, postal_place, ",
            key!("split_part(address_lines, chr(10), 1)"),
            " AS address_key, organization_number, name, organization_form, industry_code, employees ",
            "FROM business_subunit WHERE deleted_date IS NULL AND address_lines IS NOT NULL"
        ),
    },
    View {
        name: "households",
        description: "unprotected residents sharing an address and a dwelling (bruksenhet): how many, the eldest's and youngest's birth dates",
        reads: &["address_residents"],
        sql: concat!(
            "SELECT municipality_number, address_key, dwelling_unit, min(street_name) AS street_name, ",
            "min(house_number) AS house_number, min(house_letter) AS house_letter, ",
            "count(*) AS residents, min(birth_date) AS eldest_birth_date, max(birth_date) AS youngest_birth_date ",
            "FROM address_residents GROUP BY municipality_number, address_key, dwelling_unit"
        ),
    },
    View {
        name: "address_summary",
        description: "per address of either register: unprotected residents and units registered there",
        reads: &["address_residents", "address_businesses"],
        sql: concat!(
            "SELECT coalesce(r.municipality_number, b.municipality_number) AS municipality_number, ",
            "coalesce(r.address_key, b.address_key) AS address_key, ",
            "coalesce(r.residents, 0) AS residents, coalesce(b.units, 0) AS units, b.names AS unit_names ",
            "FROM (SELECT municipality_number, address_key, count(*) AS residents FROM address_residents ",
            "GROUP BY municipality_number, address_key) r ",
            "FULL OUTER JOIN (SELECT municipality_number, address_key, count(*) AS units, ",
            "string_agg(name, '; ' ORDER BY name) AS names FROM address_businesses ",
            "GROUP BY municipality_number, address_key) b ",
            "ON r.municipality_number = b.municipality_number AND r.address_key = b.address_key"
        ),
    },
    View {
        name: "resident_addresses",
        description: "unprotected residents with the property register's address they live at (id, cadastre numbers, coordinates): by the address id the population register gives, else by street, number and letter",
        reads: &["address_residents", "address"],
        sql: concat!(
            "SELECT r.person_id, r.municipality_number, r.address_key, r.dwelling_unit, ",
            "coalesce(i.address_id, k.address_id) AS address_id, ",
            "CASE WHEN i.address_id IS NOT NULL THEN 'address_id' WHEN k.address_id IS NOT NULL THEN 'street' END AS matched_by, ",
            "coalesce(i.gnr, k.gnr) AS gnr, coalesce(i.bnr, k.bnr) AS bnr, coalesce(i.fnr, k.fnr) AS fnr, ",
            "coalesce(i.snr, k.snr) AS snr, coalesce(i.epsg, k.epsg) AS epsg, ",
            "coalesce(i.north, k.north) AS north, coalesce(i.east, k.east) AS east ",
            "FROM address_residents r ",
            "LEFT JOIN address i ON i.address_id = r.matrikkel_address_id ",
            "LEFT JOIN (SELECT address_id, municipality_number, ",
            key!("concat(street_name, house_number, coalesce(house_letter, ''))"),
            " AS address_key, gnr, bnr, fnr, snr, epsg, north, east FROM address ",
            "WHERE street_name IS NOT NULL) k ",
            "ON i.address_id IS NULL AND r.municipality_number = k.municipality_number ",
            "AND r.address_key = k.address_key"
        ),
    },
    View {
        name: "cadastral_unit_addresses",
        description: "each cadastral unit (gnr/bnr/fnr) with the addresses on it; a unit without an address has one row with none",
        reads: &["cadastral_unit", "address"],
        sql: concat!(
            "SELECT u.unit_id, u.municipality_number, u.gnr, u.bnr, u.fnr, u.snr, u.unit_type, ",
            "u.farm_name, u.area, a.address_id, a.address_type, a.address_text, a.postal_code, ",
            "a.postal_place FROM cadastral_unit u LEFT JOIN address a ",
            "ON a.municipality_number = u.municipality_number AND a.gnr = u.gnr AND a.bnr = u.bnr ",
            "AND coalesce(a.fnr, 0) = coalesce(u.fnr, 0) AND coalesce(u.snr, 0) = 0"
        ),
    },
    View {
        name: "municipality_population",
        description: "unprotected residents per kommune and age band (age at the end of this year)",
        reads: &["address_residents", "person"],
        sql: concat!(
            "SELECT municipality_number, CASE ",
            "WHEN age < 6 THEN '0-5' WHEN age < 16 THEN '6-15' WHEN age < 20 THEN '16-19' ",
            "WHEN age < 67 THEN '20-66' WHEN age < 80 THEN '67-79' ELSE '80+' END AS age_band, ",
            "count(*) AS residents FROM (SELECT municipality_number, ",
            "CAST(date_part('year', now()) AS INT) - birth_year AS age FROM person ",
            "WHERE status = 'bosatt' AND address_protection = 'ugradert' AND municipality_number IS NOT NULL) ",
            "GROUP BY 1, 2"
        ),
    },
    View {
        name: "municipality_businesses",
        description: "units and subunits not deleted per kommune and industry code, with their employees",
        reads: &["address_businesses"],
        sql: concat!(
            "SELECT municipality_number, industry_code, unit_kind, count(*) AS units, ",
            "sum(employees) AS employees FROM address_businesses ",
            "GROUP BY municipality_number, industry_code, unit_kind"
        ),
    },
];

/// Creates every view whose tables (or views) the session has.
pub async fn register(ctx: &SessionContext) -> Result<Vec<&'static str>, QueryError> {
    let mut created = Vec::new();
    for view in VIEWS {
        let mut present = true;
        for name in view.reads {
            present &= ctx.table_exist(*name)?;
        }
        if !present {
            continue;
        }
        // A table an earlier version wrote may lack a column a view reads (until a worker of
        // this version opens the lake and adds it): the view is left out, not the session.
        let made = async {
            ctx.sql(&format!("CREATE VIEW {} AS {}", view.name, view.sql))
                .await?
                .collect()
                .await
        };
        match made.await {
            Ok(_) => created.push(view.name),
            Err(e) => tracing::warn!(view = view.name, error = %e, "view left out"),
        }
    }
    Ok(created)
}
