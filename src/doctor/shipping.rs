//! The shipper (`glint ship`): its settings from the config's `[ship]` table and how far its
//! cursor is behind the segments on disk.

use super::checks::{Context, Finding, Verdict};
use crate::compact::segment::{list_segments, SegmentReader};
use crate::ship::cursor::ShipCursor;
use crate::units::format_bytes;
use std::path::Path;

pub fn shipper(ctx: &Context) -> Finding {
    let settings = match &ctx.config {
        Some(path) => settings(path),
        None => Ok(None),
    };
    let cursor = ShipCursor::load(&ctx.data_dir);
    shipper_finding(&ctx.data_dir, settings, cursor)
}

/// `topic T on BROKERS` or `s3://BUCKET/PREFIX every W window` from the config's `[ship]`
/// table, checked the way `glint ship` checks it (flags it knows, fixed librdkafka settings,
/// S3 target, window and part size); `None` without a `[ship]` table.
fn settings(path: &Path) -> Result<Option<String>, String> {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Ship {
        #[command(flatten)]
        args: crate::ship::ShipArgs,
    }
    let words = match crate::ship::config_flags(path) {
        Ok(w) => w,
        Err(e) if e.ends_with("no [ship] table") => return Ok(None),
        Err(e) => return Err(e),
    };
    let parsed =
        Ship::try_parse_from(std::iter::once("glint ship".into()).chain(words)).map_err(|e| {
            format!(
                "config {}: [ship]: {}",
                path.display(),
                e.to_string().lines().next().unwrap_or("invalid")
            )
        })?;
    let a = parsed.args;
    if let Some(to) = &a.to {
        crate::ship::check_lake_args(&a)?;
        return Ok(Some(format!("{to} every {:?} window", a.window)));
    }
    let brokers = a.brokers.unwrap_or_default();
    crate::ship::settings::check_user_settings(&a.kafka_opts)?;
    Ok(Some(format!(
        "topic {} on {brokers}",
        a.topic.unwrap_or_else(|| "(none)".into())
    )))
}

/// The row: not configured (INFO), settings or cursor unusable (CHANGE), else what is left to
/// ship (OK).
pub fn shipper_finding(
    data_dir: &Path,
    settings: Result<Option<String>, String>,
    cursor: Result<Option<ShipCursor>, String>,
) -> Finding {
    let settings = match settings {
        Ok(s) => s,
        Err(e) => return Finding::new("bad [ship] settings", Verdict::Change, e),
    };
    let cursor = match cursor {
        Ok(c) => c,
        Err(e) => {
            return Finding::new(
                "cursor unreadable",
                Verdict::Change,
                format!("{e}; retention keeps every segment until it reads"),
            )
        }
    };
    match (settings, cursor) {
        (None, None) => Finding::new(
            "not configured",
            Verdict::Info,
            "no [ship] table in --config and no ship-cursor.json: segments are kept by --retain/--retain-bytes alone",
        ),
        (Some(s), None) => Finding::new(
            format!("{s}, not started"),
            Verdict::Info,
            "no ship-cursor.json yet: the first `glint ship` creates it, and from then on retention keeps unshipped segments",
        ),
        (s, Some(cursor)) => {
            let (count, bytes) = unshipped(data_dir, &cursor);
            let what = s.unwrap_or_else(|| "cursor present".into());
            Finding::ok(format!(
                "{what}; {count} segments ({}) not shipped",
                format_bytes(bytes)
            ))
        }
    }
}

/// Segments whose checkpoint the cursor has not passed, and their bytes.
fn unshipped(data_dir: &Path, cursor: &ShipCursor) -> (u64, u64) {
    let mut count = 0;
    let mut bytes = 0;
    for path in list_segments(data_dir).unwrap_or_default() {
        let passed = SegmentReader::open(&path)
            .and_then(|mut r| r.checkpoint())
            .is_ok_and(|c| cursor.covers(&c));
        if !passed {
            count += 1;
            bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
        }
    }
    (count, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_for_each_shipper_state() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let f = shipper_finding(dir, Ok(None), Ok(None));
        assert_eq!(f.verdict, Verdict::Info);
        let f = shipper_finding(dir, Err("config x: [ship]: bad".into()), Ok(None));
        assert_eq!(f.verdict, Verdict::Change);
        let f = shipper_finding(
            dir,
            Ok(Some("topic t on k:9092".into())),
            Ok(Some(ShipCursor::default())),
        );
        assert_eq!(f.verdict, Verdict::Ok);
        assert!(
            f.current.starts_with("topic t on k:9092; 0 segments"),
            "{}",
            f.current
        );
    }

    #[test]
    fn an_s3_target_is_described_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("glint.toml");
        let row = |text: &str| {
            std::fs::write(&config, text).unwrap();
            settings(&config)
        };
        let ok = row("[ship]\nto = \"s3://lake/beacons\"\nwindow = \"15m\"\n[ship.s3]\nregion = \"eu-west-1\"\n");
        assert_eq!(ok.unwrap().unwrap(), "s3://lake/beacons every 900s window");
        let e = row("[ship]\nto = \"s3://lake/b\"\nwindow = \"7m\"\n").unwrap_err();
        assert!(e.contains("--window"), "{e}");
        let e = row("[ship]\nto = \"http://lake/b\"\n").unwrap_err();
        assert!(e.contains("s3://BUCKET/PREFIX"), "{e}");
        let e = row("[ship]\nto = \"s3://lake/b\"\n[ship.s3]\nno_such = \"x\"\n").unwrap_err();
        assert!(e.contains("no_such"), "{e}");
    }
}
