//! The main job, as README's first command runs it: the demo moves every mailbox and says so.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_moves_every_mailbox() {
    let opts = t2t_operator::demo::DemoOptions {
        examples: std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")),
        generate: 50,
        time_scale: 14_400.0,
        timeout: std::time::Duration::from_secs(300),
    };
    let (done, total) = t2t_operator::demo::run(opts).await.expect("demo");
    assert_eq!(total, 55, "5 example users and 50 generated ones");
    assert_eq!(done, total, "completed {done}/{total} mailboxes");
}
