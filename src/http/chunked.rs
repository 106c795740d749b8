//! Incremental decoder for the chunked transfer coding (RFC 9112 7.1).
//!
//! Strict: chunk sizes are 1*HEXDIG without prefix, sign, underscore or whitespace, checked
//! for overflow; every line ends in CRLF; chunk data must be followed by CRLF exactly.
//! Extensions (RFC 9112 7.1.1: `*( BWS ";" BWS name [ BWS "=" BWS value ] )`, the name a token,
//! the value a token or quoted-string) and trailer fields are checked, then discarded, within a
//! byte budget; an extension without a name (`5;`) is malformed.

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Syntax error (bad size, missing CRLF, bad byte in an extension or trailer).
    Malformed,
    /// Extensions or trailers longer than the budget.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SizeStart,
    Size,
    /// Whitespace after the size: only before a `;`.
    SizeBws,
    /// After `;`: optional whitespace, then the extension's name.
    ExtNameStart,
    ExtName,
    /// Whitespace after a name: `=`, `;` follows.
    ExtNameBws,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    /// After a backslash inside a quoted string.
    ExtQuotedPair,
    /// Right after a quoted value: `;`, whitespace or the line's end.
    ExtValueEnd,
    /// Whitespace after a value: only a `;` may follow (BWS precedes `;`, never CRLF).
    ExtValueBws,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLineLf,
    EndLf,
    Done,
}

/// Decoder state for one body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    meta_bytes: usize,
    /// Sum of the chunk sizes read so far, including the chunk being received.
    declared: u64,
}

/// Budget for chunk extensions plus trailer fields, bytes.
const META_BUDGET: usize = 4096;

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            meta_bytes: 0,
            declared: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Whether the final CRLF after the last chunk (and trailers) has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes announced so far: every chunk size read, the current chunk in full. Lets the
    /// caller refuse an oversized body (413) as soon as its size line arrives.
    pub fn declared_len(&self) -> u64 {
        self.declared
    }

    /// Consumes bytes of `input`, handing decoded data to `sink`; returns how many bytes were
    /// consumed (all of them unless the body ended inside `input`).
    pub fn feed(&mut self, input: &[u8], mut sink: impl FnMut(&[u8])) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if let State::Data(rem) = self.state {
                let take = rem.min((input.len() - i) as u64) as usize;
                sink(&input[i..i + take]);
                i += take;
                let left = rem - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data(left)
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = self.step(b)?;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<State, ChunkError> {
        use State::*;
        let next = match (self.state, b) {
            (SizeStart | Size, _) if b.is_ascii_hexdigit() => {
                let digit = u64::from((b as char).to_digit(16).expect("hex digit"));
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkError::Malformed)?;
                Size
            }
            (Size, b' ' | b'\t') | (SizeBws, b' ' | b'\t') => self.meta(SizeBws)?,
            (Size | SizeBws, b';') => self.meta(ExtNameStart)?,
            (Size, b'\r') => SizeLf,
            (ExtNameStart, b' ' | b'\t') => self.meta(ExtNameStart)?,
            (ExtNameStart | ExtName, b) if is_tchar(b) => self.meta(ExtName)?,
            (ExtName | ExtNameBws, b' ' | b'\t') => self.meta(ExtNameBws)?,
            (ExtName | ExtNameBws, b'=') => self.meta(ExtValueStart)?,
            (ExtName | ExtNameBws | ExtToken | ExtValueEnd | ExtValueBws, b';') => {
                self.meta(ExtNameStart)?
            }
            (ExtName | ExtToken | ExtValueEnd, b'\r') => SizeLf,
            (ExtValueStart, b' ' | b'\t') => self.meta(ExtValueStart)?,
            (ExtValueStart | ExtToken, b) if is_tchar(b) => self.meta(ExtToken)?,
            (ExtValueStart, b'"') => self.meta(ExtQuoted)?,
            (ExtToken | ExtValueEnd | ExtValueBws, b' ' | b'\t') => self.meta(ExtValueBws)?,
            (ExtQuoted, b'"') => self.meta(ExtValueEnd)?,
            (ExtQuoted, b'\\') => self.meta(ExtQuotedPair)?,
            (ExtQuoted | ExtQuotedPair, b) if is_field_text(b) => self.meta(ExtQuoted)?,
            (SizeLf, b'\n') if self.size == 0 => TrailerLineStart,
            (SizeLf, b'\n') => {
                self.declared = self.declared.saturating_add(self.size);
                Data(std::mem::take(&mut self.size))
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => SizeStart,
            (TrailerLineStart, b'\r') => EndLf,
            // A trailer is a field line: token ":" value; no obs-fold, no space before the colon.
            (TrailerLineStart | TrailerName, b) if is_tchar(b) => self.meta(TrailerName)?,
            (TrailerName, b':') => self.meta(TrailerValue)?,
            (TrailerValue, b'\r') => TrailerLineLf,
            (TrailerValue, b) if is_field_text(b) => self.meta(TrailerValue)?,
            (TrailerLineLf, b'\n') => TrailerLineStart,
            (EndLf, b'\n') => Done,
            _ => return Err(ChunkError::Malformed),
        };
        Ok(next)
    }

    fn meta(&mut self, next: State) -> Result<State, ChunkError> {
        self.meta_bytes += 1;
        if self.meta_bytes > META_BUDGET {
            return Err(ChunkError::TooLong);
        }
        Ok(next)
    }
}

/// HTAB, SP, visible ASCII and obs-text: what a field value or a quoted string may hold (a
/// quoted string's `"` and `\\` are handled before this).
fn is_field_text(b: u8) -> bool {
    b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80
}

/// RFC 9110 5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(raw: &[u8], piece: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut used = 0;
        for chunk in raw.chunks(piece) {
            used += d.feed(chunk, |b| out.extend_from_slice(b))?;
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done(), "not done after {used} bytes");
        Ok((out, used))
    }

    #[test]
    fn decodes_sizes_extensions_trailers_in_any_split() {
        let raw =
            b"5;name=val\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1";
        for piece in [1, 2, 3, 7, raw.len()] {
            let (body, used) = decode_in_pieces(raw, piece).unwrap();
            assert_eq!(body, b"hello, world!!!");
            assert_eq!(
                used,
                raw.len() - b"GET / HTTP/1.1".len(),
                "stops exactly at the body's end"
            );
        }
        let trailers = b"1\r\nx\r\n0\r\nX-A:\r\nx-b: v\tw \xff\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(decode_in_pieces(trailers, 1).unwrap().0, b"x");
        assert_eq!(
            decode_in_pieces(b"a\r\n0123456789\r\n0\r\n\r\n", 4)
                .unwrap()
                .0,
            b"0123456789"
        );
    }

    #[test]
    fn chunk_extension_grammar() {
        let good: &[&[u8]] = &[
            b"5;a\r\n",
            b"5;a=b\r\n",
            b"5;a=b;c;d=e\r\n",
            b"5 ;a\r\n",
            b"5\t; a = b ; c\r\n",
            b"5;a=\"\"\r\n",
            b"5;a=\"x; y=\\\"z\\\\ \xff\"\r\n",
            b"5;a=\"q\" ;b\r\n",
        ];
        for ext in good {
            let raw = [*ext, b"hello\r\n0\r\n\r\n"].concat();
            let got = decode_in_pieces(&raw, 1).map(|(body, _)| body);
            assert_eq!(
                got,
                Ok(b"hello".to_vec()),
                "{}",
                String::from_utf8_lossy(ext)
            );
        }
    }

    #[test]
    fn declared_length_counts_sizes_before_their_data() {
        let mut d = ChunkedDecoder::default();
        d.feed(b"5\r\nhello\r\nfffffff\r\nab", |_| {}).unwrap();
        assert_eq!(d.declared_len(), 5 + 0xfff_ffff);
        assert!(!d.is_done());
        let mut d = ChunkedDecoder::default();
        d.feed(b"3\r\nabc\r\n0\r\n\r\n", |_| {}).unwrap();
        assert_eq!((d.declared_len(), d.is_done()), (3, true));
    }

    #[test]
    fn rejects_malformed_sizes_and_framing() {
        let bad: &[&[u8]] = &[
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX\r\n0\r\n\r\n",
            b"5\r\nhello0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b"\r\n",
            b"0\r\n\n",
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\nX-T : 1\r\n\r\n",
            b"0\r\nX-T: 1\r\n folded\r\n\r\n",
            b"0\r\n: no-name\r\n\r\n",
            b"0\r\nX-T: a\x01b\r\n\r\n",
            b"0\r\nX-T: 1\r\n\n",
            // Chunk extensions without a name, or with a bad name or value (RFC 9112 7.1.1).
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5; \r\nhello\r\n0\r\n\r\n",
            b"5;;a\r\nhello\r\n0\r\n\r\n",
            b"5;=v\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a;\r\nhello\r\n0\r\n\r\n",
            b"5;a b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",
            b"5;a(b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b\x01\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n",
            b"0;\r\n\r\n",
            b"5;a \r\nhello\r\n0\r\n\r\n",
            b"5;a=b \r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\" \r\nhello\r\n0\r\n\r\n",
        ];
        for raw in bad {
            let mut d = ChunkedDecoder::default();
            let r = d.feed(raw, |_| {});
            assert!(
                r.is_err() || !d.is_done(),
                "{:?} accepted",
                String::from_utf8_lossy(raw)
            );
            assert!(
                r.is_err(),
                "{:?} not rejected",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
