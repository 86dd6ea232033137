//! The embedded default: a simulated register in this process, the shipped pipeline into a local
//! lake, a citizen list printed. Needs no external service.

use anyhow::Result;
use tokio_util::sync::CancellationToken;

/// The shipped pipeline file, with the simulator's address substituted in.
const PIPELINE: &str = include_str!("../pipelines/freg.toml");

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
    let pipeline = ingest::Pipeline::parse(PIPELINE, |k| match k {
        "REGSYNC_FREG_URL" => Some(url.clone()),
        _ => None,
    })
    .map_err(|e| anyhow::anyhow!("pipelines/freg.toml: {e}"))?;
    // Let the register produce a few seconds of changes to follow after the seed.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let options = ingest::RunOptions {
        lake: Some(lake.to_owned()),
        until_caught_up: true,
        kafka: None,
    };
    let first = ingest::run(pipeline.clone(), options.clone(), CancellationToken::new()).await?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let second = ingest::run(pipeline, options, CancellationToken::new()).await?;
    stop.cancel();
    println!(
        "Synced {} persons and {} register changes into {lake} (feed position {}).\n",
        first.seeded,
        first.events + second.events,
        second.position
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
    println!("\nExplore further:");
    println!("  regsync sql --lake {lake} \"SELECT status, count(*) FROM person GROUP BY status\"");
    println!(
        "  regsync sql --lake {lake} \"SELECT event_type, count(*) FROM person_event GROUP BY 1 ORDER BY 2 DESC\""
    );
    println!(
        "  regsync cohort --lake {lake} --municipality {kommune} --born-from 2019-01-01 --born-to 2019-12-31 --status bosatt --format xlsx --output vaksine-2019.xlsx"
    );
    println!(
        "  regsync cohort --lake {lake} --municipality {kommune} --born-from 2019-01-01 --born-to 2019-12-31 --as-of 2024-06-01"
    );
    Ok(())
}
