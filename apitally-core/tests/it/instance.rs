//! Instance UUIDs across real processes: distinct side by side, stable across a restart.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use apitally_core::adapter::{ApitallyClient, ClientConfig, StartupData};

const CLIENT_ID: &str = "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9";

/// Run in a child process by the test below: starts a client, prints its instance UUID, holds
/// it for `APITALLY_PROBE_HOLD_MS`, then exits.
#[test]
#[ignore = "run as a child process by processes_get_distinct_uuids_and_restarts_keep_them"]
fn probe_instance_uuid() {
    let Ok(hold) = std::env::var("APITALLY_PROBE_HOLD_MS") else {
        return;
    };
    let client = ApitallyClient::try_new(
        ClientConfig::new(CLIENT_ID, "prod")
            .hub_base_url("http://127.0.0.1:9")
            .shutdown_timeout(Duration::from_millis(100)),
        StartupData::default(),
    )
    .unwrap();
    println!("UUID={}", client.instance_uuid().unwrap());
    std::thread::sleep(Duration::from_millis(hold.parse().unwrap()));
    client.shutdown_blocking();
}

fn spawn(tmp: &std::path::Path, hold_ms: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "instance::probe_instance_uuid",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("TMPDIR", tmp)
        .env("APITALLY_PROBE_HOLD_MS", hold_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the UUID line (printed while the child still holds its slot), and keeps draining the
/// child's output so that it can finish writing.
fn uuid_of(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(uuid) = line.strip_prefix("UUID=") {
                let _ = tx.send(uuid.to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("child printed its UUID")
}

#[test]
fn processes_get_distinct_uuids_and_restarts_keep_them() {
    let tmp = std::env::temp_dir().join(format!("apitally-procs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&tmp).unwrap();

    // Two processes at once.
    let mut a = spawn(&tmp, 1500);
    let mut b = spawn(&tmp, 1500);
    let (ua, ub) = (uuid_of(&mut a), uuid_of(&mut b));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_ne!(ua, ub);
    let slot = |n: u8| {
        std::fs::read_to_string(tmp.join(format!("apitally/instance_0ee479ef_{n}.lock"))).unwrap()
    };
    let (slot0, slot1) = (slot(0), slot(1));
    let mut both = [ua.clone(), ub.clone()];
    both.sort();
    let mut slots = [slot0.clone(), slot1.clone()];
    slots.sort();
    assert_eq!(
        both, slots,
        "the UUIDs are the ones in the py/go-compatible slot files"
    );

    // A restart of one process gets slot 0's UUID back; of two, both back.
    let mut c = spawn(&tmp, 0);
    assert_eq!(uuid_of(&mut c), slot0);
    assert!(c.wait().unwrap().success());
    let mut d = spawn(&tmp, 1500);
    let mut e = spawn(&tmp, 1500);
    let mut again = [uuid_of(&mut d), uuid_of(&mut e)];
    assert!(d.wait().unwrap().success() && e.wait().unwrap().success());
    again.sort();
    assert_eq!(again, slots);
    std::fs::remove_dir_all(tmp).unwrap();
}
