//! What each ring operation is, packed into its `user_data`, and the completions the driver
//! hands to the event loop.

use std::net::TcpStream;

/// What an operation was; the top byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Multishot accept; the index is the listener's.
    Accept = 1,
    /// A recv into the connection's read buffer, maybe behind a linked send.
    Recv,
    /// A multishot recv into provided buffers: one completion per arrival of bytes.
    RecvMulti,
    /// A linked send's failure (its success posts nothing); its recv completes after it.
    LinkedSend,
    /// A send of `out` alone.
    Send,
    /// A recv into the discard buffer while closing, maybe behind a linked shutdown.
    Linger,
    /// A linked shutdown's failure; ignored, its linger recv reports the outcome.
    Shutdown,
    /// An `ASYNC_CANCEL` request.
    Cancel,
}

impl Op {
    const ALL: [Op; 8] = [
        Op::Accept,
        Op::Recv,
        Op::RecvMulti,
        Op::LinkedSend,
        Op::Send,
        Op::Linger,
        Op::Shutdown,
        Op::Cancel,
    ];
}

/// Packs (op, index, generation) into `user_data`: 8 bits, 24 bits of generation, 32 of index.
pub fn user_data(op: Op, index: u32, gen: u32) -> u64 {
    (op as u64) << 56 | u64::from(gen & 0xFF_FFFF) << 32 | u64::from(index)
}

/// Unpacks `user_data`; `None` for values no operation of ours carries.
pub fn decode(data: u64) -> Option<(Op, u32, u32)> {
    let op = Op::ALL.into_iter().find(|op| *op as u64 == data >> 56)?;
    Some((op, data as u32, (data >> 32) as u32 & 0xFF_FFFF))
}

/// One completion, copied out of the completion queue.
#[derive(Debug)]
pub struct Completion {
    pub op: Op,
    pub index: u32,
    pub gen: u32,
    /// The kernel's result: a count, or a negated errno.
    pub result: i32,
    /// Multishot accept or recv: more completions follow from the same request.
    pub more: bool,
    /// Multishot accept: the accepted connection.
    pub accepted: Option<TcpStream>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        for op in Op::ALL {
            for (index, gen) in [(0, 0), (7, 1), (u32::MAX, 0xFF_FFFF), (12345, 0x12_3456)] {
                assert_eq!(decode(user_data(op, index, gen)), Some((op, index, gen)));
            }
        }
        assert_eq!(decode(0), None);
        assert_eq!(decode(0xFF << 56), None);
    }
}
