//! The recording file.
//!
//! ```text
//! file   = MAGIC header block*
//! MAGIC  = "FICUSREC"                                  8 bytes
//! header = u32 LE length, then that many bytes of JSON ([`FileHeader`])
//! block  = u32 LE length, then one zstd frame of that length (with its content checksum)
//!          whose content is record*
//! record = u32 LE length, then that many bytes of one exchange: in format 2 (written
//!          now) its binary encoding ([`crate::binary`]), in format 1 JSON ([`Exchange`])
//! ```
//!
//! The reader reads both formats (a file says which in its header); the writer writes
//! format 2 unless its header asks for 1 (kept so tests can write what older versions
//! wrote). Blocks are compressed with one zstd context per file, reused block after block.
//!
//! The writer appends whole blocks: records wait in memory until the block reaches
//! [`WriterOptions::block_bytes`] or the caller flushes (the gateway flushes at least every
//! second), then the block is compressed and written with one `write_all`. A crash can leave
//! at most the last block torn (cut short, or its frame incomplete): the reader stops there,
//! reports where ([`Reader::torn`]) and returns every record before it. A flipped bit inside
//! a block fails its checksum and is reported the same way.
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exchange::Exchange;

/// The first bytes of every recording.
pub const MAGIC: &[u8; 8] = b"FICUSREC";
/// The version of the layout above that the writer writes; a reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 2;
/// The first version, whose records are JSON: still read.
pub const JSON_FORMAT: u32 = 1;
/// The largest header, block or record a reader accepts (a corrupt length must not make it
/// allocate gigabytes).
pub const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// What the file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// [`FORMAT_VERSION`] when written.
    pub format: u32,
    /// The ficus version that wrote it.
    pub ficus: String,
    /// SHA-256 of the redaction policy (its rules, not its key): two files with the same
    /// hash were redacted alike.
    pub policy: String,
    /// The route recorded (`None`: several, e.g. an import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The node that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Unix nanoseconds when the file was opened.
    pub created_ns: u64,
    /// Where the records came from: `ficus`, `har`, `goreplay`.
    #[serde(default = "ficus_source")]
    pub source: String,
}

fn ficus_source() -> String {
    "ficus".to_string()
}

/// How the writer groups and compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Uncompressed bytes of records after which a block is written.
    pub block_bytes: usize,
    /// zstd level (1 is fast and compresses HTTP well; 3 is zstd's default).
    pub level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            block_bytes: 256 * 1024,
            level: 1,
        }
    }
}

/// Appends records to a new recording.
pub struct Writer<W: Write> {
    out: W,
    options: WriterOptions,
    /// The header's format: how records are encoded.
    format: u32,
    /// One zstd context for every block of the file.
    zstd: zstd::bulk::Compressor<'static>,
    pending: Vec<u8>,
    pending_records: u64,
    /// Bytes written to `out` so far (header included).
    written: u64,
    records: u64,
}

impl Writer<File> {
    /// Creates `path` (failing if it exists) and writes the header.
    pub fn create(
        path: &Path,
        header: &FileHeader,
        options: WriterOptions,
    ) -> io::Result<Writer<File>> {
        let f = File::options().write(true).create_new(true).open(path)?;
        Writer::new(f, header, options)
    }
}

impl<W: Write> Writer<W> {
    /// Writes the magic and the header to `out`.
    pub fn new(mut out: W, header: &FileHeader, options: WriterOptions) -> io::Result<Writer<W>> {
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        let mut head = Vec::with_capacity(12 + json.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
        head.extend_from_slice(&json);
        out.write_all(&head)?;
        out.flush()?;
        let mut zstd = zstd::bulk::Compressor::new(options.level)?;
        zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
        Ok(Writer {
            out,
            options,
            format: header.format,
            zstd,
            pending: Vec::new(),
            pending_records: 0,
            written: head.len() as u64,
            records: 0,
        })
    }

    /// Adds a record; writes a block when enough is pending.
    pub fn append(&mut self, ex: &Exchange) -> io::Result<()> {
        let mut rec = Vec::new();
        if self.format == JSON_FORMAT {
            let json = serde_json::to_vec(ex).map_err(io::Error::other)?;
            rec.extend_from_slice(&(json.len() as u32).to_le_bytes());
            rec.extend_from_slice(&json);
        } else {
            encode_record(ex, &mut rec)?;
        }
        self.append_encoded(&rec)
    }

    /// Adds a record made by [`encode_record`] (for a file of [`FORMAT_VERSION`]).
    pub fn append_encoded(&mut self, rec: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(rec);
        self.pending_records += 1;
        if self.pending.len() >= self.options.block_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending records as one block (nothing when none is pending).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let frame = self.zstd.compress(&self.pending)?;
        let mut block = Vec::with_capacity(4 + frame.len());
        block.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        block.extend_from_slice(&frame);
        self.out.write_all(&block)?;
        self.out.flush()?;
        self.written += block.len() as u64;
        self.records += self.pending_records;
        self.pending.clear();
        self.pending_records = 0;
        Ok(())
    }

    /// Bytes in the file so far (written blocks only).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records in written blocks.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records waiting for the next block, and their bytes.
    pub fn pending(&self) -> (u64, usize) {
        (self.pending_records, self.pending.len())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Appends `ex` as a record of a [`FORMAT_VERSION`] file: its length, then its binary
/// encoding. Refused (nothing appended) when it would exceed [`MAX_FRAME`].
pub fn encode_record(ex: &Exchange, out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    crate::binary::encode(ex, out);
    let len = out.len() - start - 4;
    if len > MAX_FRAME as usize {
        out.truncate(start);
        return Err(io::Error::other(format!("a record of {len} bytes")));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Why a recording cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the recording: {0}")]
    Io(#[from] io::Error),
    #[error("not a ficus recording (it does not start with FICUSREC)")]
    NotARecording,
    #[error("the recording's header is damaged: {0}")]
    BadHeader(String),
    #[error(
        "the recording has format {0}; this ficus reads format {FORMAT_VERSION} (upgrade ficus)"
    )]
    NewerFormat(u32),
}

/// Reads a recording's records in order, stopping at a torn or damaged tail.
pub struct Reader<R: Read> {
    input: R,
    header: FileHeader,
    /// Records of the current block not yet returned.
    block: Vec<u8>,
    at: usize,
    /// File offset of the next block.
    offset: u64,
    torn: Option<Torn>,
    done: bool,
}

/// Where and why reading stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// File offset of the block that could not be read.
    pub offset: u64,
    pub why: String,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Reader<BufReader<File>>, ReadError> {
        Reader::new(BufReader::new(File::open(path)?))
    }
}

impl<R: Read> Reader<R> {
    /// Reads the magic and the header.
    pub fn new(mut input: R) -> Result<Reader<R>, ReadError> {
        let mut magic = [0u8; 8];
        if read_full(&mut input, &mut magic)? != 8 || &magic != MAGIC {
            return Err(ReadError::NotARecording);
        }
        let len = read_len(&mut input)?.ok_or_else(|| ReadError::BadHeader("cut short".into()))?;
        if len > MAX_FRAME {
            return Err(ReadError::BadHeader(format!("length {len}")));
        }
        let mut json = vec![0u8; len as usize];
        if read_full(&mut input, &mut json)? != json.len() {
            return Err(ReadError::BadHeader("cut short".into()));
        }
        let header: FileHeader =
            serde_json::from_slice(&json).map_err(|e| ReadError::BadHeader(e.to_string()))?;
        if header.format > FORMAT_VERSION {
            return Err(ReadError::NewerFormat(header.format));
        }
        if header.format < JSON_FORMAT {
            return Err(ReadError::BadHeader(format!("format {}", header.format)));
        }
        Ok(Reader {
            input,
            header,
            block: Vec::new(),
            at: 0,
            offset: 12 + u64::from(len),
            torn: None,
            done: false,
        })
    }

    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Where reading stopped before the end of the file, once the records are exhausted.
    pub fn torn(&self) -> Option<&Torn> {
        self.torn.as_ref()
    }

    fn stop(&mut self, why: impl Into<String>) {
        self.torn = Some(Torn {
            offset: self.offset,
            why: why.into(),
        });
        self.done = true;
    }

    /// Loads the next block; `false` at the end (clean or torn).
    fn next_block(&mut self) -> bool {
        let len = match read_len(&mut self.input) {
            Ok(Some(l)) => l,
            Ok(None) => {
                self.done = true;
                return false;
            }
            Err(e) => {
                self.stop(format!("block length: {e}"));
                return false;
            }
        };
        if len == 0 || len > MAX_FRAME {
            self.stop(format!("block length {len}"));
            return false;
        }
        let mut frame = vec![0u8; len as usize];
        match read_full(&mut self.input, &mut frame) {
            Ok(n) if n == frame.len() => {}
            Ok(n) => {
                self.stop(format!("block cut short: {n} of {len} bytes"));
                return false;
            }
            Err(e) => {
                self.stop(format!("block: {e}"));
                return false;
            }
        }
        match zstd::stream::decode_all(&frame[..]) {
            Ok(content) => {
                self.block = content;
                self.at = 0;
                self.offset += 4 + u64::from(len);
                true
            }
            Err(e) => {
                self.stop(format!("block damaged: {e}"));
                false
            }
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Exchange;

    /// The next record. A record that does not decode inside a sound block (which the
    /// writer never produces) ends reading like a torn block.
    fn next(&mut self) -> Option<Exchange> {
        if self.done || (self.at >= self.block.len() && !self.next_block()) {
            return None;
        }
        let rest = &self.block[self.at..];
        if rest.len() < 4 {
            self.stop("record length cut short inside a block");
            return None;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(record) = rest.get(4..4 + len) else {
            self.stop("record cut short inside a block");
            return None;
        };
        let decoded = if self.header.format == JSON_FORMAT {
            serde_json::from_slice::<Exchange>(record).map_err(|e| e.to_string())
        } else {
            crate::binary::decode(record).map_err(str::to_string)
        };
        match decoded {
            Ok(ex) => {
                self.at += 4 + len;
                Some(ex)
            }
            Err(e) => {
                self.stop(format!("record does not decode: {e}"));
                None
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A u32 LE length; `None` at a clean end (no byte at all), an error when cut inside it.
fn read_len<R: Read>(r: &mut R) -> io::Result<Option<u32>> {
    let mut b = [0u8; 4];
    match read_full(r, &mut b)? {
        0 => Ok(None),
        4 => Ok(Some(u32::from_le_bytes(b))),
        n => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{n} of 4 bytes"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Body, Message};

    pub(crate) fn exchange(i: u64) -> Exchange {
        Exchange {
            at_ns: 1_700_000_000_000_000_000 + i * 1_000_000,
            duration_ns: 1_500_000,
            route: "orders".into(),
            stage: "canary".into(),
            side: if i.is_multiple_of(3) {
                "modern"
            } else {
                "legacy"
            }
            .into(),
            fallback: false,
            key: Some(format!("hmac:user-{}", i % 7)),
            version: "HTTP/1.1".into(),
            method: "GET".into(),
            target: format!("/orders/{i}?expand=items"),
            request: Message {
                headers: vec![("accept".into(), Body::text("application/json"))],
                body: Body::default(),
                truncated_from: None,
            },
            status: 200,
            response: Message {
                headers: vec![("content-type".into(), Body::text("application/json"))],
                body: Body(format!("{{\"id\":{i},\"bin\":\"\u{1}\"}}").into_bytes()),
                truncated_from: None,
            },
            shadow: None,
        }
    }

    fn header() -> FileHeader {
        FileHeader {
            format: FORMAT_VERSION,
            ficus: "test".into(),
            policy: "p".into(),
            route: Some("orders".into()),
            node: None,
            created_ns: 1,
            source: "ficus".into(),
        }
    }

    fn write(n: u64, block_bytes: usize) -> Vec<u8> {
        let mut w = Writer::new(
            Vec::new(),
            &header(),
            WriterOptions {
                block_bytes,
                level: 1,
            },
        )
        .unwrap();
        for i in 0..n {
            w.append(&exchange(i)).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn records_round_trip_in_order_across_blocks() {
        let bytes = write(1000, 4096);
        let r = Reader::new(&bytes[..]).unwrap();
        assert_eq!(r.header(), &header());
        let back: Vec<Exchange> = r.collect();
        assert_eq!(back.len(), 1000);
        for (i, ex) in back.iter().enumerate() {
            assert_eq!(ex, &exchange(i as u64));
        }
        // Compressed: far smaller than the JSON.
        let json: usize = (0..1000)
            .map(|i| serde_json::to_vec(&exchange(i)).unwrap().len())
            .sum();
        assert!(bytes.len() * 4 < json, "{} vs {json}", bytes.len());
    }

    #[test]
    fn binary_bodies_survive() {
        let mut ex = exchange(1);
        ex.request.body = Body(vec![0, 159, 146, 150, 255]);
        ex.response.body = Body(b"b64:looks like the prefix".to_vec());
        let mut w = Writer::new(Vec::new(), &header(), WriterOptions::default()).unwrap();
        w.append(&ex).unwrap();
        let bytes = w.finish().unwrap();
        let back: Vec<Exchange> = Reader::new(&bytes[..]).unwrap().collect();
        assert_eq!(back, [ex]);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_reported_wherever_the_cut_is() {
        let bytes = write(300, 2048);
        let whole: Vec<Exchange> = Reader::new(&bytes[..]).unwrap().collect();
        // Wherever the file is cut, what is read is a prefix of the records, in order.
        let head = 12 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert!(
            Reader::new(&bytes[..head - 1]).is_err(),
            "a cut header is refused"
        );
        for cut in (head..bytes.len()).step_by(97) {
            let got: Vec<Exchange> = Reader::new(&bytes[..cut]).unwrap().collect();
            assert_eq!(got[..], whole[..got.len()], "cut at {cut}");
        }
        // Cut in the middle of the last block: everything before it, and it says where.
        let mut r = Reader::new(&bytes[..bytes.len() - 10]).unwrap();
        let got: Vec<Exchange> = r.by_ref().collect();
        assert!(got.len() < 300 && got.len() > 200, "{}", got.len());
        let torn = r.torn().unwrap();
        assert!(torn.why.contains("cut short"), "{torn:?}");
    }

    #[test]
    fn a_flipped_bit_fails_the_blocks_checksum() {
        let bytes = write(300, 2048);
        let mut bad = bytes.clone();
        let at = bytes.len() - 40;
        bad[at] ^= 0x10;
        let mut r = Reader::new(&bad[..]).unwrap();
        let got: Vec<Exchange> = r.by_ref().collect();
        assert!(got.len() < 300);
        assert!(r.torn().unwrap().why.contains("damaged"), "{:?}", r.torn());
    }

    #[test]
    fn not_a_recording_or_a_newer_format_is_refused() {
        assert!(matches!(
            Reader::new(&b"GET / HTTP/1.1\r\n"[..]),
            Err(ReadError::NotARecording)
        ));
        let mut h = header();
        h.format = FORMAT_VERSION + 1;
        let bytes = Writer::new(Vec::new(), &h, WriterOptions::default())
            .unwrap()
            .finish()
            .unwrap();
        assert!(matches!(
            Reader::new(&bytes[..]),
            Err(ReadError::NewerFormat(n)) if n == FORMAT_VERSION + 1
        ));
    }

    /// Files of format 1 (JSON records) written before format 2 still read, torn tails
    /// included; format 2 holds the same exchanges in fewer bytes.
    #[test]
    fn json_records_of_format_1_still_read() {
        let mut h = header();
        h.format = JSON_FORMAT;
        let mut w = Writer::new(
            Vec::new(),
            &h,
            WriterOptions {
                block_bytes: 2048,
                level: 1,
            },
        )
        .unwrap();
        for i in 0..300 {
            w.append(&exchange(i)).unwrap();
        }
        let v1 = w.finish().unwrap();
        // The records really are JSON.
        let mut r = Reader::new(&v1[..]).unwrap();
        assert_eq!(r.header().format, 1);
        let first_block_len = u32::from_le_bytes(v1[r.offset as usize..][..4].try_into().unwrap());
        let frame = &v1[r.offset as usize + 4..][..first_block_len as usize];
        let content = zstd::stream::decode_all(frame).unwrap();
        assert_eq!(content[4], b'{');
        let back: Vec<Exchange> = r.by_ref().collect();
        assert_eq!(back, (0..300).map(exchange).collect::<Vec<_>>());
        assert!(r.torn().is_none());
        let torn: Vec<Exchange> = Reader::new(&v1[..v1.len() - 10]).unwrap().collect();
        assert!(torn.len() < 300 && torn[..] == back[..torn.len()]);
        // Format 2: the same exchanges, records smaller than their JSON.
        let v2 = write(300, 2048);
        let again: Vec<Exchange> = Reader::new(&v2[..]).unwrap().collect();
        assert_eq!(again, back);
        let binary: usize = (0..300)
            .map(|i| {
                let mut out = Vec::new();
                encode_record(&exchange(i), &mut out).unwrap();
                out.len()
            })
            .sum();
        let json: usize = (0..300)
            .map(|i| serde_json::to_vec(&exchange(i)).unwrap().len() + 4)
            .sum();
        assert!(binary * 10 < json * 7, "{binary} vs {json}");
    }
}
