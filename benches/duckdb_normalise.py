#!/usr/bin/env python3
"""DuckDB's side of the normalisation benchmark: person documents (JSON lines) to Parquet,
extracting the fields regsync's `person` table holds (the current version of each element is the
first in the register's arrays), on every core. Prints documents per second.

    benches/duckdb_normalise.py docs.jsonl out.parquet
"""
import sys
import time

import duckdb

FIELDS = {
    "person_id": "$.identifikasjonsnummer[0].foedselsEllerDNummer",
    "id_type": "$.identifikasjonsnummer[0].identifikatortype",
    "birth_date": "$.foedsel[0].foedselsdato",
    "sex": "$.kjoenn[0].kjoenn",
    "given_name": "$.navn[0].fornavn",
    "middle_name": "$.navn[0].mellomnavn",
    "family_name": "$.navn[0].etternavn",
    "status": "$.status[0].status",
    "municipality_number": "$.bostedsadresse[0].vegadresse.kommunenummer",
    "street_name": "$.bostedsadresse[0].vegadresse.adressenavn",
    "house_number": "$.bostedsadresse[0].vegadresse.adressenummer.husnummer",
    "house_letter": "$.bostedsadresse[0].vegadresse.adressenummer.husbokstav",
    "postal_code": "$.bostedsadresse[0].vegadresse.poststed.postnummer",
    "postal_place": "$.bostedsadresse[0].vegadresse.poststed.poststedsnavn",
    "moved_in_date": "$.bostedsadresse[0].flyttedato",
    "address_protection": "$.adressebeskyttelse[0].graderingsnivaa",
    "death_date": "$.doedsfall[0].doedsdato",
    "citizenship": "$.statsborgerskap[0].statsborgerskap",
    "marital_status": "$.sivilstand[0].sivilstand",
    "spouse_id": "$.sivilstand[0].relatertVedSivilstand",
    "street_code": "$.bostedsadresse[0].vegadresse.adressekode",
    "matrikkel_address_id": "$.bostedsadresse[0].adresseIdentifikatorFraMatrikkelen",
    "dwelling_unit": "$.bostedsadresse[0].vegadresse.bruksenhetsnummer",
}
DATES = {"birth_date", "moved_in_date", "death_date"}


def main(source, target):
    columns = ",\n  ".join(
        (f"TRY_CAST(json_extract_string(json, '{path}') AS DATE) AS {name}"
         if name in DATES else f"json_extract_string(json, '{path}') AS {name}")
        for name, path in FIELDS.items()
    )
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT\n  {columns},\n  year(TRY_CAST(json_extract_string(json, '$.foedsel[0].foedselsdato') AS DATE)) AS birth_year\n"
        f"FROM read_ndjson_objects('{source}')) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    seconds = time.perf_counter() - started
    (count,) = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
    print(count / seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
