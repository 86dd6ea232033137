//! The embedded default: the simulated registers in this process, the shipped pipelines of the
//! population, business and property registers into one local lake, a citizen list and an
//! answer across the three registers printed. Needs no external service.

use anyhow::Result;
use tokio_util::sync::CancellationToken;

/// The shipped pipeline files, with the simulator's address substituted in.
const PIPELINES: [(&str, &str); 3] = [
    (
        "pipelines/freg.toml",
        include_str!("../pipelines/freg.toml"),
    ),
    (
        "pipelines/brreg.toml",
        include_str!("../pipelines/brreg.toml"),
    ),
    (
        "pipelines/matrikkel.toml",
        include_str!("../pipelines/matrikkel.toml"),
    ),
];

/// Runs the demo into `lake` with `persons` synthetic persons.
pub async fn run(lake: &str, persons: u32) -> Result<()> {
    let stop = CancellationToken::new();
    let config = simulator::Config {
        persons,
        seed: 2019,
        events_per_sec: 500.0,
        max_events: Some(3_000),
        faults: 0.0,
        ..simulator::Config::default()
    };
    let sim = simulator::start(config, "127.0.0.1:0", stop.clone()).await?;
    let url = sim.url();
    let pipelines = PIPELINES
        .iter()
        .map(|(name, text)| {
            ingest::Pipeline::parse(text, |k| match k {
                "REGSYNC_FREG_URL" | "REGSYNC_BRREG_URL" | "REGSYNC_MATRIKKEL_URL" => {
                    Some(url.clone())
                }
                "REGSYNC_MATRIKKEL_CSV" => {
                    Some(format!("{url}{}", simulator::matrikkel_http::ADDRESS_FILE))
                }
                _ => None,
            })
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    // Let the registers produce a few seconds of changes to follow after the seed.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let options = ingest::RunOptions {
        lake: Some(lake.to_owned()),
        until_caught_up: true,
        kafka: None,
    };
    let all = |options: &ingest::RunOptions| {
        let runs = pipelines
            .iter()
            .map(|p| ingest::run(p.clone(), options.clone(), CancellationToken::new()));
        run_all(runs.collect())
    };
    let first = all(&options).await?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let second = all(&options).await?;
    stop.cancel();
    println!(
        "Synced {} persons and {} register changes, {} business units and {} of their updates, and {} addresses and cadastral units and {} of their changes into {lake}.\n",
        first[0].seeded,
        first[0].events + second[0].events,
        first[1].seeded,
        first[1].events + second[1].events,
        first[2].seeded,
        first[2].events + second[2].events,
    );
    let ctx = query::context::session(lake).await?;
    let batches = query::sql::query(&ctx, "SELECT municipality_number, count(*) AS residents FROM person WHERE status = 'bosatt' AND municipality_number IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 5").await?;
    println!("Largest kommuner in the lake:");
    query::sql::write(
        &batches,
        query::sql::Format::Table,
        &mut std::io::stdout().lock(),
    )?;
    let municipality = query::sql::query(
        &ctx,
        "SELECT municipality_number FROM person WHERE municipality_number = '5035' LIMIT 1",
    )
    .await?
    .iter()
    .map(|b| b.num_rows())
    .sum::<usize>();
    let kommune = if municipality > 0 { "5035" } else { "0301" };
    let cohort = query::Cohort {
        municipality: kommune.into(),
        born_from: chrono::NaiveDate::from_ymd_opt(2019, 1, 1).expect("a date"),
        born_to: chrono::NaiveDate::from_ymd_opt(2019, 12, 31).expect("a date"),
        status: Some("bosatt".into()),
        as_of: None,
    };
    let list = cohort.run(&ctx).await?;
    println!(
        "\nCitizen list: residents of {kommune} born in 2019 ({} persons), first rows:",
        list.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    let head: Vec<_> = list
        .iter()
        .take(1)
        .map(|b| b.slice(0, b.num_rows().min(10)))
        .collect();
    query::sql::write(
        &head,
        query::sql::Format::Table,
        &mut std::io::stdout().lock(),
    )?;
    let summary = query::sql::query(
        &ctx,
        &format!(
            "SELECT s.address_key, a.address_id, a.gnr, a.bnr, s.residents, s.units, s.unit_names \
             FROM address_summary s LEFT JOIN (SELECT DISTINCT municipality_number, address_key, \
             address_id, gnr, bnr FROM resident_addresses) a \
             ON s.municipality_number = a.municipality_number AND s.address_key = a.address_key \
             WHERE s.municipality_number = '{kommune}' AND s.residents > 0 AND s.units > 0 \
             ORDER BY s.units DESC, s.residents DESC, s.address_key LIMIT 5"
        ),
    )
    .await?;
    println!(
        "\nAcross the registers: addresses in {kommune} where people live and businesses are registered:"
    );
    query::sql::write(
        &summary,
        query::sql::Format::Table,
        &mut std::io::stdout().lock(),
    )?;
    println!("\nExplore further:");
    println!("  regsync sql --lake {lake} \"SELECT status, count(*) FROM person GROUP BY status\"");
    println!(
        "  regsync sql --lake {lake} \"SELECT event_type, count(*) FROM person_event GROUP BY 1 ORDER BY 2 DESC\""
    );
    println!(
        "  regsync sql --lake {lake} \"SELECT * FROM municipality_businesses WHERE municipality_number = '{kommune}' ORDER BY units DESC LIMIT 10\""
    );
    println!(
        "  regsync cohort --lake {lake} --municipality {kommune} --born-from 2019-01-01 --born-to 2019-12-31 --status bosatt --format xlsx --output vaksine-2019.xlsx"
    );
    println!(
        "  regsync cohort --lake {lake} --municipality {kommune} --born-from 2019-01-01 --born-to 2019-12-31 --as-of 2024-06-01"
    );
    Ok(())
}

/// Runs the pipelines' workers side by side and waits for all: their reports in order, or the
/// first failure.
async fn run_all(
    runs: Vec<
        impl std::future::Future<Output = Result<ingest::Report, ingest::IngestError>> + Send + 'static,
    >,
) -> Result<Vec<ingest::Report>> {
    let handles: Vec<_> = runs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await??);
    }
    Ok(out)
}
