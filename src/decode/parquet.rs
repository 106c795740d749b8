//! `--format parquet`: the selected columns as one typed Parquet file (arrow-rs `parquet`).
//!
//! The schema is made from the decoder's own column list ([`Column`]) by [`kind`], so a field
//! added there appears here too. Types:
//! - `ts`: TIMESTAMP(MICROS, UTC), the microseconds `glint decode` prints; `ts_ns`, `seq`:
//!   UINT64; `core`, `port`, `status`: UINT16; flags: BOOLEAN.
//! - Text fields (`target`, `path`, `query`, `ua`, `referer`, `cookie`, `body`, ...): STRING,
//!   the text as `glint decode` prints it (U+FFFD for each invalid sequence). A text field
//!   whose bytes may be any bytes has a companion `<name>_bytes` BINARY column, null when the
//!   text is exactly the bytes sent and the exact bytes when it is not (JSON's `<name>_b64`).
//! - `truncated`: LIST of STRING; `orig_len`: a STRUCT of one nullable UINT32 per field;
//!   `ip`, `peer`: STRING; the `*_b64` fields: STRING (base64, as in CSV); `q`: STRING (the
//!   JSON object, as in CSV).
//! - A value `glint decode` leaves out of its default JSON (no cookie, no body, no instance
//!   known, nothing truncated) is null.
//!
//! Pages are zstd-compressed; dictionary encoding is on for every column but timestamps,
//! 64-bit integers and the raw-bytes companions (the writer falls back to plain pages by
//! itself where a column turns out to have many distinct values); row groups hold
//! [`ROW_GROUP_ROWS`] records.

use super::columns::{orig_lens, truncated_names, Column, Selection, Value};
use super::escape::{base64_into, write_ip};
use super::output::{OutputError, PartialFile};
use super::query::QueryExpander;
use super::source::Origin;
use super::time::TsFormatter;
use crate::agent::{Classifier, Labeler};
use crate::record::{Field, RecordView, FIELD_COUNT};
use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::io::Write;
use std::sync::Arc;

/// Records per row group: large enough for readers to skip by statistics and read columns in
/// long runs, small enough that one group (buffered by the writer until it is full) stays
/// within tens of MB for browser beacons, and that DuckDB and ClickHouse get several groups to
/// read in parallel from files of a few hundred thousand records.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Records gathered into one Arrow batch before it goes to the writer.
const BATCH_ROWS: usize = 8192;
/// zstd level of the pages (level 3: zstd's default; higher levels cost CPU for a few %).
pub const ZSTD_LEVEL: i32 = 3;
/// Name suffix of the raw-bytes companion of a text column.
pub const BYTES_SUFFIX: &str = "_bytes";
/// Time zone of the `ts` column.
pub const TS_ZONE: &str = "UTC";

/// The Parquet type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TIMESTAMP(MICROS, UTC).
    Timestamp,
    U64,
    U16,
    Bool,
    /// STRING that may be absent (null), with a BINARY companion when the column has one.
    Text,
    /// STRING always present: names from a fixed set and IP addresses.
    Label,
    /// `LIST<STRING>`: the truncated fields.
    Names,
    /// STRUCT of one UINT32 per field: original lengths.
    Lengths,
}

/// The Parquet type of each column; a column not named here is nullable text.
pub fn kind(c: Column) -> Kind {
    match c {
        Column::Ts => Kind::Timestamp,
        Column::TsNs | Column::Seq => Kind::U64,
        Column::Core | Column::Port | Column::Status => Kind::U16,
        Column::Dnt | Column::Gpc | Column::KeepAlive | Column::Pipelined | Column::Chunked => {
            Kind::Bool
        }
        Column::Ip
        | Column::Peer
        | Column::IpSource
        | Column::Method
        | Column::HttpVersion
        | Column::Agent => Kind::Label,
        Column::Truncated => Kind::Names,
        Column::OrigLen => Kind::Lengths,
        _ => Kind::Text,
    }
}

/// Whether a column is null in records `glint decode` leaves it out of by default.
fn nullable(c: Column) -> bool {
    matches!(kind(c), Kind::Text | Kind::Lengths)
}

/// Whether a text column has a `<name>_bytes` companion (its bytes may be any bytes).
fn has_bytes(c: Column) -> bool {
    kind(c) == Kind::Text && c.b64_companion().is_some()
}

fn names_item() -> Arc<ArrowField> {
    Arc::new(ArrowField::new("item", DataType::Utf8, false))
}

fn length_fields() -> Fields {
    Field::ALL
        .iter()
        .map(|f| ArrowField::new(f.name(), DataType::UInt32, true))
        .collect()
}

/// The Arrow field(s) of a column: itself, then its raw-bytes companion when it has one.
fn arrow_fields(c: Column) -> Vec<ArrowField> {
    let name = c.name();
    let mut fields = vec![match kind(c) {
        Kind::Timestamp => ArrowField::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some(TS_ZONE.into())),
            false,
        ),
        Kind::U64 => ArrowField::new(name, DataType::UInt64, false),
        Kind::U16 => ArrowField::new(name, DataType::UInt16, false),
        Kind::Bool => ArrowField::new(name, DataType::Boolean, false),
        Kind::Text => ArrowField::new(name, DataType::Utf8, nullable(c)),
        Kind::Label => ArrowField::new(name, DataType::Utf8, false),
        Kind::Names => ArrowField::new(name, DataType::List(names_item()), false),
        Kind::Lengths => ArrowField::new(name, DataType::Struct(length_fields()), true),
    }];
    if has_bytes(c) {
        fields.push(ArrowField::new(
            format!("{name}{BYTES_SUFFIX}"),
            DataType::Binary,
            true,
        ));
    }
    fields
}

/// The Arrow schema of a selection.
pub fn schema(sel: &Selection) -> SchemaRef {
    let fields: Vec<ArrowField> = sel.columns.iter().flat_map(|&c| arrow_fields(c)).collect();
    Arc::new(Schema::new(fields))
}

/// The writer settings: zstd, dictionaries where they pay, row group size.
pub fn properties(sel: &Selection) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("glint {}", env!("CARGO_PKG_VERSION")));
    for &c in &sel.columns {
        if matches!(kind(c), Kind::Timestamp | Kind::U64) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(c.name()), false);
        }
        if has_bytes(c) {
            let companion = format!("{}{BYTES_SUFFIX}", c.name());
            props = props.set_column_dictionary_enabled(ColumnPath::from(companion), false);
        }
    }
    props.build()
}

/// One column's values being gathered.
enum Builder {
    Ts(TimestampMicrosecondBuilder),
    U64(UInt64Builder),
    U16(UInt16Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder, Option<BinaryBuilder>),
    Label(StringBuilder),
    Names(ListBuilder<StringBuilder>),
    Lengths(StructBuilder),
}

impl Builder {
    fn new(c: Column) -> Builder {
        match kind(c) {
            Kind::Timestamp => Builder::Ts(
                TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone(TS_ZONE),
            ),
            Kind::U64 => Builder::U64(UInt64Builder::with_capacity(BATCH_ROWS)),
            Kind::U16 => Builder::U16(UInt16Builder::with_capacity(BATCH_ROWS)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            Kind::Text => {
                Builder::Text(StringBuilder::new(), has_bytes(c).then(BinaryBuilder::new))
            }
            Kind::Label => Builder::Label(StringBuilder::new()),
            Kind::Names => {
                Builder::Names(ListBuilder::new(StringBuilder::new()).with_field(names_item()))
            }
            Kind::Lengths => {
                Builder::Lengths(StructBuilder::from_fields(length_fields(), BATCH_ROWS))
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Text(text, bytes) => {
                text.append_null();
                if let Some(b) = bytes {
                    b.append_null();
                }
            }
            Builder::Lengths(s) => {
                for i in 0..Field::ALL.len() {
                    lengths_field(s, i).append_null();
                }
                s.append(false);
            }
            // Only text and lengths columns are ever left out of a record.
            _ => unreachable!("only text and lengths columns are nullable"),
        }
    }

    fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        match self {
            Builder::Ts(b) => out.push(Arc::new(b.finish())),
            Builder::U64(b) => out.push(Arc::new(b.finish())),
            Builder::U16(b) => out.push(Arc::new(b.finish())),
            Builder::Bool(b) => out.push(Arc::new(b.finish())),
            Builder::Text(text, bytes) => {
                out.push(Arc::new(text.finish()));
                if let Some(b) = bytes {
                    out.push(Arc::new(b.finish()));
                }
            }
            Builder::Label(b) => out.push(Arc::new(b.finish())),
            Builder::Names(b) => out.push(Arc::new(b.finish())),
            Builder::Lengths(b) => out.push(Arc::new(b.finish())),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Ts(b) => b.len(),
            Builder::U64(b) => b.len(),
            Builder::U16(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Text(b, _) | Builder::Label(b) => b.len(),
            Builder::Names(b) => b.len(),
            Builder::Lengths(b) => b.len(),
        }
    }
}

fn lengths_field(s: &mut StructBuilder, i: usize) -> &mut UInt32Builder {
    s.field_builder::<UInt32Builder>(i)
        .expect("orig_len children are UInt32")
}

/// Why writing Parquet failed.
pub type ParquetError = parquet::errors::ParquetError;

/// Writes records as Parquet into `W` (a file, or a buffer to upload).
pub struct ParquetWriter<W: Write + Send> {
    columns: Vec<(Column, Builder)>,
    schema: SchemaRef,
    writer: ArrowWriter<W>,
    query: QueryExpander,
    agents: Labeler,
    ts: TsFormatter,
    scratch: Vec<u8>,
    rows: usize,
    total: u64,
}

impl<W: Write + Send> ParquetWriter<W> {
    pub fn new(
        sink: W,
        sel: &Selection,
        agents: Arc<Classifier>,
    ) -> Result<ParquetWriter<W>, ParquetError> {
        let schema = schema(sel);
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(properties(sel)))?;
        Ok(ParquetWriter {
            columns: sel.columns.iter().map(|&c| (c, Builder::new(c))).collect(),
            schema,
            writer,
            query: QueryExpander::default(),
            agents: Labeler::new(agents),
            ts: TsFormatter::default(),
            scratch: Vec::new(),
            rows: 0,
            total: 0,
        })
    }

    /// Records written so far (in the file or still buffered).
    pub fn records(&self) -> u64 {
        self.total
    }

    /// Bytes written to the sink so far plus what is buffered for the current row group.
    pub fn bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Adds one record of instance `origin` (`None`: not known).
    pub fn write(
        &mut self,
        rec: &RecordView<'_>,
        origin: Option<&Origin>,
    ) -> Result<(), ParquetError> {
        for (column, builder) in &mut self.columns {
            if column.only_when_present(rec, origin) && nullable(*column) {
                builder.append_null();
                continue;
            }
            if !append(
                builder,
                column.value(rec, origin),
                &mut self.scratch,
                &mut self.query,
                &mut self.agents,
            ) {
                // A column kind() does not know yet: its CSV text (a test keeps this path
                // for new columns only).
                let Builder::Text(text, companion) = builder else {
                    unreachable!("kind() gives every non-text column its value's type")
                };
                self.scratch.clear();
                super::csv::render_text(
                    *column,
                    rec,
                    origin,
                    &mut self.scratch,
                    &mut self.ts,
                    &mut self.query,
                    &mut self.agents,
                );
                text.append_value(String::from_utf8_lossy(&self.scratch));
                if let Some(c) = companion {
                    c.append_null();
                }
            }
        }
        self.rows += 1;
        self.total += 1;
        if self.rows >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), ParquetError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut arrays = Vec::with_capacity(self.schema.fields().len());
        for (_, b) in &mut self.columns {
            debug_assert_eq!(b.len(), self.rows);
            b.finish(&mut arrays);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.rows = 0;
        self.writer.write(&batch)
    }

    /// Writes what is buffered and the footer; returns the sink.
    pub fn finish(mut self) -> Result<W, ParquetError> {
        self.flush_batch()?;
        self.writer.into_inner()
    }
}

/// Appends one value to its column's builder; false when the value is not of the column's
/// type (then a text column takes the value's CSV text).
fn append(
    b: &mut Builder,
    value: Value<'_>,
    scratch: &mut Vec<u8>,
    query: &mut QueryExpander,
    agents: &mut Labeler,
) -> bool {
    match (b, value) {
        (Builder::Ts(b), Value::Ts(ns)) => {
            // u64 nanoseconds / 1000 is below i64::MAX.
            b.append_value(i64::try_from(ns / 1000).unwrap_or(i64::MAX));
        }
        (Builder::U64(b), Value::Num(n)) => b.append_value(n),
        (Builder::U16(b), Value::Num(n)) => match u16::try_from(n) {
            Ok(n) => b.append_value(n),
            Err(_) => return false,
        },
        (Builder::Bool(b), Value::Bool(v)) => b.append_value(v),
        (Builder::Text(text, companion), Value::Str(bytes)) => match std::str::from_utf8(bytes) {
            Ok(s) => {
                text.append_value(s);
                if let Some(c) = companion {
                    c.append_null();
                }
            }
            Err(_) => {
                text.append_value(String::from_utf8_lossy(bytes));
                if let Some(c) = companion {
                    c.append_value(bytes);
                }
            }
        },
        (Builder::Text(b, _) | Builder::Label(b), Value::Text(t)) => b.append_value(t),
        (Builder::Label(b), Value::Agent(ua, ip)) => b.append_value(agents.label(ua, ip)),
        (Builder::Label(b), Value::Ip(ip)) => {
            scratch.clear();
            write_ip(scratch, ip);
            b.append_value(String::from_utf8_lossy(scratch));
        }
        (Builder::Text(b, _), Value::B64(bytes)) => {
            scratch.clear();
            base64_into(scratch, bytes);
            b.append_value(String::from_utf8_lossy(scratch));
        }
        (Builder::Text(b, _), Value::Query(q)) => {
            scratch.clear();
            query.write_json(scratch, q);
            b.append_value(String::from_utf8_lossy(scratch));
        }
        (Builder::Names(b), Value::Truncated(flags)) => {
            for name in truncated_names(flags) {
                b.values().append_value(name);
            }
            b.append(true);
        }
        (Builder::Lengths(s), Value::OrigLen(flags, lens)) => {
            let mut set = [None; FIELD_COUNT];
            for (name, len) in orig_lens(flags, lens) {
                if let Some(i) = Field::ALL.iter().position(|f| f.name() == name) {
                    set[i] = Some(len);
                }
            }
            for (i, v) in set.into_iter().enumerate() {
                lengths_field(s, i).append_option(v);
            }
            s.append(true);
        }
        _ => return false,
    }
    true
}

/// `glint decode --format parquet -o FILE`: a [`ParquetWriter`] on a [`PartialFile`].
pub struct ParquetFile {
    writer: ParquetWriter<PartialFile>,
}

impl ParquetFile {
    pub fn create(
        path: &std::path::Path,
        sel: &Selection,
        agents: Arc<Classifier>,
    ) -> Result<ParquetFile, String> {
        let file = PartialFile::create(path)?;
        let writer = ParquetWriter::new(file, sel, agents)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(ParquetFile { writer })
    }

    pub fn write(
        &mut self,
        rec: &RecordView<'_>,
        origin: Option<&Origin>,
    ) -> Result<(), OutputError> {
        self.writer.write(rec, origin).map_err(io_error)
    }

    /// Writes the footer and gives the file its name.
    pub fn finish(self) -> Result<(), OutputError> {
        let file = self.writer.finish().map_err(io_error)?;
        file.complete()
            .map_err(|e| OutputError::Io(std::io::Error::other(e)))
    }
}

fn io_error(e: ParquetError) -> OutputError {
    match e {
        ParquetError::External(e) => match e.downcast::<std::io::Error>() {
            Ok(io) => OutputError::Io(*io),
            Err(e) => OutputError::Io(std::io::Error::other(e)),
        },
        other => OutputError::Io(std::io::Error::other(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        crc_init, encode, encoded_len, BodyKind, IpSource, Method, Placement, RecordFields,
    };

    fn record(buf: &mut Vec<u8>, ua: &[u8], body: &[u8]) -> usize {
        let rec = RecordFields {
            ts_ns: 1_764_000_000_123_456_789,
            core: 3,
            status: 204,
            method: Method::Post,
            http_minor: 1,
            flags: crate::record::flags::DNT,
            peer_ip: "::ffff:10.0.0.1".parse().unwrap(),
            peer_port: 40_000,
            client_ip: "2001:db8::1".parse().unwrap(),
            ip_source: IpSource::XForwardedFor,
            body_kind: BodyKind::Json,
            target: b"/p.gif?e=pv&u=%FF",
            user_agent: ua,
            referer: b"https://a.example/",
            cookie: b"",
            body,
        };
        buf.resize(encoded_len(&rec), 0);
        encode(buf, 9, crc_init(1), &rec, Placement::ONE)
    }

    /// Every column has a typed place in the schema: none takes the CSV-text fallback meant
    /// for a column [`kind`] does not know yet.
    #[test]
    fn every_column_value_has_its_kinds_type() {
        let mut buf = Vec::new();
        let len = record(&mut buf, b"Mozilla \xff", b"{\"a\":1}");
        let rec = RecordView::parse(&buf[..len]).unwrap();
        let origin = Origin {
            name: "box-a".into(),
            id_hex: "0123456789abcdef0123456789abcdef".into(),
        };
        let (mut scratch, mut query) = (Vec::new(), QueryExpander::default());
        let mut agents = Labeler::new(Arc::new(Classifier::builtin()));
        for &c in Column::ALL {
            let mut b = Builder::new(c);
            assert!(
                append(
                    &mut b,
                    c.value(&rec, Some(&origin)),
                    &mut scratch,
                    &mut query,
                    &mut agents
                ),
                "column {} has no typed builder for its value",
                c.name()
            );
        }
    }

    #[test]
    fn a_file_of_all_columns_reads_back_with_its_schema() {
        let sel = Selection {
            columns: Column::ALL.to_vec(),
            explicit: true,
        };
        let mut w = ParquetWriter::new(Vec::new(), &sel, Arc::new(Classifier::builtin())).unwrap();
        let mut buf = Vec::new();
        for i in 0..BATCH_ROWS + 10 {
            let body = format!("{{\"n\":{i}}}");
            let len = record(&mut buf, b"ua", body.as_bytes());
            let rec = RecordView::parse(&buf[..len]).unwrap();
            w.write(&rec, None).unwrap();
        }
        assert_eq!(w.records(), (BATCH_ROWS + 10) as u64);
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &w.finish().unwrap()).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.schema().as_ref(), schema(&sel).as_ref());
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, BATCH_ROWS + 10);
    }
}
