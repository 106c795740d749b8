//! The object store side of the S3 sink: the target URL, the client settings, object names,
//! and the upload of one spool file, streamed from disk in bounded memory.

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart};
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Smallest multipart part S3 accepts (but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Parts of one multipart upload in flight at once: the upload holds at most this many parts
/// plus the one being read from the spool file in memory.
pub const PARTS_IN_FLIGHT: usize = 2;
/// How long the client retries one request (connection refused, 5xx) before the upload fails
/// and the sink's own back-off takes over (which logs, counts and keeps the cursor).
const REQUEST_RETRY_TIMEOUT: Duration = Duration::from_secs(15);

/// `s3://BUCKET/PREFIX` split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("--to {url:?}: expected s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("--to {url:?}: no bucket"));
        }
        Ok(Target {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// The S3 client: `AWS_*` environment variables, then the `--s3-opt` settings.
pub fn store(
    target: &Target,
    s3_opts: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>, String> {
    let retry = RetryConfig {
        max_retries: 5,
        retry_timeout: REQUEST_RETRY_TIMEOUT,
        ..RetryConfig::default()
    };
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&target.bucket)
        .with_retry(retry);
    for (k, v) in s3_opts {
        let key: AmazonS3ConfigKey = k
            .parse()
            .map_err(|e| format!("--s3-opt {k}: not an S3 setting ({e})"))?;
        b = b.with_config(key, v);
    }
    b.build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| format!("S3 settings: {e}"))
}

/// Parses `--s3-opt KEY=VALUE`.
pub fn parse_s3_opt(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))?;
    let _: AmazonS3ConfigKey = k
        .parse()
        .map_err(|e| format!("{k}: not an S3 setting ({e})"))?;
    Ok((k.to_string(), v.to_string()))
}

/// `PREFIX/dt=YYYY-MM-DD/hour=HH/NAME` for a window starting at `start_ns`.
pub fn object_key(prefix: &str, start_ns: u64, spool: &Path) -> ObjectPath {
    let secs = start_ns / 1_000_000_000;
    let days = secs / 86_400;
    let (y, m, d) = crate::clock::civil_from_days(days as i64);
    let hour = secs % 86_400 / 3600;
    let name = spool.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let part = format!("dt={y:04}-{m:02}-{d:02}/hour={hour:02}/{name}");
    if prefix.is_empty() {
        ObjectPath::from(part)
    } else {
        ObjectPath::from(format!("{prefix}/{part}"))
    }
}

/// How one object went up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploaded {
    pub bytes: u64,
    /// Multipart parts; 0 for a single PUT.
    pub parts: u64,
}

/// Uploads the file at `path` as `key`: one PUT up to `part_size` bytes, else a multipart
/// upload read from the file part by part (memory: [`PARTS_IN_FLIGHT`] + 1 parts, whatever
/// the file's size). A failed multipart upload is aborted, so the store drops its parts; one
/// cut short by a kill stays incomplete and invisible until the bucket's lifecycle rule
/// removes it (docs/analytics.md), and the retry uploads the whole object again.
pub fn upload_file(
    rt: &tokio::runtime::Runtime,
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    key: &ObjectPath,
    part_size: u64,
) -> Result<Uploaded, String> {
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(at)?;
    let len = file.metadata().map_err(at)?.len();
    let part =
        usize::try_from(part_size).map_err(|_| format!("part size {part_size}: too large"))?;
    if len <= part_size {
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(at)?;
        rt.block_on(store.put(key, bytes.into()))
            .map_err(|e| e.to_string())?;
        return Ok(Uploaded {
            bytes: len,
            parts: 0,
        });
    }
    let parts = len.div_ceil(part_size);
    crate::info!("ship: {key}: multipart upload of {len} bytes in {parts} parts started");
    rt.block_on(async {
        let upload = store.put_multipart(key).await.map_err(|e| e.to_string())?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, part);
        let mut buf = vec![0u8; part];
        let sent = async {
            loop {
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| e.to_string())?;
                let n = read_full(&mut file, &mut buf).map_err(at)?;
                if n == 0 {
                    return Ok::<(), String>(());
                }
                w.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            // `finish` aborts the upload itself when a part or the completion fails.
            Ok(()) => w.finish().await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    })?;
    Ok(Uploaded { bytes: len, parts })
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
