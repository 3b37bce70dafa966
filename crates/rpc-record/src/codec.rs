//! [`RecordCodec`]: record marking for tokio-util's `Framed`.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::{AcceptAll, Admission, Config, Error, Record, RecordDecoder, encode_record};

/// Decodes [`Record`]s through an [`Admission`] rule and encodes payloads as records, for
/// `Framed`, `FramedRead` and `FramedWrite`.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use rpc_record::{Config, Record, RecordCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = RecordCodec::new(&Config::default());
/// let mut wire = BytesMut::new();
/// codec.encode(Bytes::from_static(b"call"), &mut wire)?;
/// assert_eq!(codec.decode(&mut wire)?, Some(Record::Accept("call".into())));
/// # Ok::<(), rpc_record::Error>(())
/// ```
#[derive(Debug)]
pub struct RecordCodec<A = AcceptAll> {
    decoder: RecordDecoder,
    admission: A,
    fragment_size: u32,
}

impl RecordCodec {
    /// A codec that accepts every record within `config`'s limits.
    pub fn new(config: &Config) -> RecordCodec {
        RecordCodec::with_admission(config, AcceptAll)
    }
}

impl<A: Admission> RecordCodec<A> {
    /// A codec that asks `admission` at each fragment header.
    pub fn with_admission(config: &Config, admission: A) -> RecordCodec<A> {
        RecordCodec {
            decoder: RecordDecoder::new(config),
            admission,
            fragment_size: config.fragment_size,
        }
    }

    /// The decoder, to ask where it is.
    pub fn decoder(&self) -> &RecordDecoder {
        &self.decoder
    }
}

impl<A: Admission> Decoder for RecordCodec<A> {
    type Item = Record;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Record>, Error> {
        let record = self.decoder.decode(src, &mut self.admission)?;
        if record.is_none() {
            // Room for the rest of a record, but never more than has arrived of it already
            // (doubling as it comes): a declared length alone reserves nothing.
            let arrived = src.len() + self.decoder.held();
            src.reserve(self.decoder.wanted().min(arrived.max(8 * 1024)));
        }
        Ok(record)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Record>, Error> {
        self.decoder.decode_eof(src, &mut self.admission)
    }
}

impl<A> Encoder<&[u8]> for RecordCodec<A> {
    type Error = Error;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), Error> {
        encode_record(payload, self.fragment_size, dst);
        Ok(())
    }
}

impl<A> Encoder<Bytes> for RecordCodec<A> {
    type Error = Error;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), Error> {
        encode_record(&payload, self.fragment_size, dst);
        Ok(())
    }
}
