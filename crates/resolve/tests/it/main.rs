//! End-to-end: resolve a small labelled population and hold precision and
//! recall above floors.

#[path = "../../examples/febrl/common.rs"]
mod common;

/// The first 500 people of FEBRL 4: their original in file A and their
/// duplicate in file B, linked across the files.
#[test]
fn febrl4_first_500_people_link_with_high_precision_and_recall() {
    let dir = common::default_dir();
    if !dir.join("febrl4_a.csv").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "FEBRL data missing at {}",
            dir.display()
        );
        eprintln!("skipped: no FEBRL data at {}", dir.display());
        return;
    }
    let person = |id: &str| {
        id.strip_prefix("rec-")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse::<u32>().ok())
    };
    let ds = common::load(&dir, "febrl4", |id| person(id).is_some_and(|n| n < 500)).unwrap();
    assert_eq!(ds.records.len(), 1000);
    assert_eq!(ds.truth.len(), 500);

    let run = common::run(&ds, 100_000, 0.5, true);
    let ids: Vec<String> = ds.records.iter().map(|(id, _, _)| id.clone()).collect();
    let datasets: Vec<u16> = ds.records.iter().map(|(_, d, _)| *d).collect();
    let pairs = common::pairwise(&ids, &run.scored, &ds.truth, 0.5);
    let clusters = common::clusters(&ids, &datasets, &run.labels, &ds.truth, true);
    assert!(pairs["precision"] >= 0.99, "{pairs:?}");
    assert!(pairs["recall"] >= 0.98, "{pairs:?}");
    assert!(clusters["cluster_precision"] >= 0.99, "{clusters:?}");
    assert!(clusters["cluster_recall"] >= 0.98, "{clusters:?}");
    // Each dataset holds each person once, so no party spans more than two records.
    assert_eq!(clusters["max_cluster_size"], 2.0, "{clusters:?}");
}

/// Training twice on the same records gives the same model file, and the
/// model file read back scores as the model did.
#[test]
fn models_are_repeatable_and_round_trip() {
    use kith_model::IdentityAttrs;
    use kith_resolve::{Model, NormalizeOptions, Prepared, TrainOptions};

    let records: Vec<Prepared> = (0..200)
        .map(|i| {
            let attrs = IdentityAttrs {
                given_name: Some(["ann", "bob", "cy", "di"][i % 4].into()),
                family_name: Some(format!("family{}", i / 2)),
                date_of_birth: Some(format!("19{:02}-0{}-1{}", i % 90, i % 9 + 1, i % 10)),
                postcode: Some(format!("P{}", i % 40)),
                ..Default::default()
            };
            Prepared::new(&attrs, &NormalizeOptions::default())
        })
        .collect();
    let opts = TrainOptions {
        u_max_pairs: 10_000,
        min_pairs: 10,
        ..Default::default()
    };
    let a = Model::train(&records, &opts);
    let json = a.to_json();
    assert_eq!(Model::train(&records, &opts).to_json(), json);
    let b = Model::from_json(&json).unwrap();
    for (x, y) in [(0, 1), (2, 3), (10, 11), (0, 199)] {
        assert_eq!(
            a.score(&records[x], &records[y]),
            b.score(&records[x], &records[y])
        );
    }
}

mod index;
