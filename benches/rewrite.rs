//! Benches for mailroom-rewrite (acceptance 4): table loading, address lookups, and resolve plus
//! virtual alias expansion over 100,000-entry tables. Goals: median lookup <= 1 us; a
//! 100,000-line table loads in <= 0.5 s.
//!
//! The baseline in the same run is a plain `HashMap<String, String>` get of the same keys, so
//! a figure reads as a ratio to the cheapest possible lookup on this machine.
//!
//! `cargo bench --bench rewrite`

// Bench code: set-up failures should stop the bench with their message.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use mailroom::rewrite::ForwardPath;
use mailroom::rewrite::canonical::cleanup_recipient;
use mailroom::rewrite::lookup;
use mailroom::rewrite::params::{DomainList, Params};
use mailroom::rewrite::resolve::resolve;
use mailroom::rewrite::table::{Maps, Table, TableKind};

const N: usize = 100_000;

fn virtual_text() -> String {
    let mut s = String::with_capacity(N * 60);
    for i in 0..N {
        // A third are lists of two, the rest one address; every tenth goes through a second hop.
        match i % 10 {
            0 => s.push_str(&format!("user{i}@example.com    hop{i}@example.com\n")),
            1 | 4 | 7 => s.push_str(&format!(
                "user{i}@example.com    box{i}@mbox.example.net, copy{i}@archive.example.org\n"
            )),
            _ => s.push_str(&format!("user{i}@example.com    box{i}@mbox.example.net\n")),
        }
    }
    for i in (0..N).step_by(10) {
        s.push_str(&format!(
            "hop{i}@example.com    final{i}@mbox.example.net\n"
        ));
    }
    s
}

fn transport_text() -> String {
    let mut s = String::with_capacity(N * 40);
    for i in 0..N {
        s.push_str(&format!("domain{i}.example    smtp:[mx{i}.example]:25\n"));
    }
    s.push_str("mbox.example.net    lmtp:inet:[127.0.0.1]:24\n");
    s
}

fn bench(c: &mut Criterion) {
    let vtext = virtual_text();
    let ttext = transport_text();

    let mut g = c.benchmark_group("rewrite/load");
    g.sample_size(10);
    g.bench_function("100k_lines_source_format", |b| {
        b.iter(|| Table::parse(TableKind::Hash, Path::new("virtual"), black_box(&vtext)).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let vpath = dir.path().join("virtual");
    std::fs::write(&vpath, &vtext).unwrap();
    g.bench_function("100k_lines_file", |b| {
        b.iter(|| Table::load(TableKind::Hash, &vpath).unwrap())
    });
    g.bench_function("baseline_hashmap_insert_100k", |b| {
        b.iter(|| {
            let mut m: HashMap<String, String> = HashMap::new();
            for line in black_box(&vtext).lines() {
                if let Some((k, v)) = line.split_once(char::is_whitespace) {
                    m.entry(k.to_lowercase())
                        .or_insert_with(|| v.trim().to_string());
                }
            }
            m
        })
    });
    g.finish();

    let vtable = Table::parse(TableKind::Hash, Path::new("virtual"), &vtext).unwrap();
    let ttable = Table::parse(TableKind::Hash, Path::new("transport"), &ttext).unwrap();
    let mut params = Params::new("mail.example.com");
    params.recipient_delimiter = "+".into();
    params.virtual_alias_maps = Maps::from(vtable);
    params.transport_maps = Maps::from(ttable);
    params.virtual_alias_domains = DomainList::of(["example.com"]);
    params.relayhost = "[smarthost.example]:587".into();

    let baseline: HashMap<String, String> = vtext
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k.to_lowercase(), v.trim().to_string()))
        .collect();
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("user{}@example.com", i * 97 % N))
        .collect();
    let ext_keys: Vec<String> = (0..1000)
        .map(|i| format!("User{}+tag@Example.COM", i * 97 % N))
        .collect();
    let rcpts: Vec<ForwardPath> = keys
        .iter()
        .map(|k| ForwardPath::Mailbox(k.parse().unwrap()))
        .collect();

    let mut g = c.benchmark_group("rewrite/lookup");
    let mut i = 0;
    g.bench_function("baseline_hashmap_get", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(baseline.get(black_box(keys[i].as_str())))
        })
    });
    g.bench_function("table_get_100k", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(params.virtual_alias_maps.find(black_box(&keys[i]), false))
        })
    });
    g.bench_function("address_find_with_extension_100k", |b| {
        b.iter(|| {
            i = (i + 1) % ext_keys.len();
            black_box(lookup::find(
                &params.virtual_alias_maps,
                &params,
                black_box(&ext_keys[i]),
            ))
        })
    });
    g.bench_function("miss_full_order_100k", |b| {
        b.iter(|| {
            black_box(lookup::find(
                &params.virtual_alias_maps,
                &params,
                black_box("nobody+x@nowhere.example"),
            ))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("rewrite/resolve");
    g.bench_function("virtual_expand_plus_resolve_100k", |b| {
        b.iter(|| {
            i = (i + 1) % rcpts.len();
            let finals = cleanup_recipient(&params, black_box(&rcpts[i])).unwrap();
            for f in finals {
                black_box(resolve(&params, f));
            }
        })
    });
    g.bench_function("resolve_only_transport_100k", |b| {
        let m: mailroom::rewrite::Mailbox = "joe@domain77777.example".parse().unwrap();
        b.iter(|| black_box(resolve(&params, black_box(m.clone()))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
