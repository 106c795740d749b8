//! The io_uring driver: the only unsafe code of the uring backend.
//!
//! It owns the ring and the slab of connections, so it alone decides when memory handed to the
//! kernel may be touched or freed. The contract, kept by every method here:
//!
//! - Each connection lives in its own `Box<Slot>`; the kernel only ever holds pointers into
//!   the [`ConnBuffers`](crate::http::buffers::ConnBuffers) the handler's connection owns (its
//!   read buffer and `out`, heap allocations that `ConnBuffers` never reallocates while lending
//!   them) or into the driver's discard buffer, never into the slab vector itself. The
//!   connection is `'static` and reached only through its slot, so no other code can touch
//!   those buffers meanwhile.
//! - At most one buffer operation is in flight per slot (a recv, a send, or a send linked in
//!   front of a recv, whose recv completes last). While it is in flight, `busy` is set and
//!   neither [`Driver::conn_mut`] nor [`Driver::remove`] hands the connection out or frees it.
//! - `user_data` is (op, slot index, generation); a completion for an older generation of a
//!   slot is ignored.
//! - If the driver is dropped while operations are still in flight, their memory is leaked,
//!   never freed.
#![allow(unsafe_code)]

use super::op::{decode, user_data, Completion, Op};
use crate::server::handler::Handler;
use crate::uring_probe::{build_ring, TaskRun};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

/// Bytes of the shared buffer that lingering closes read into and nobody reads.
const DISCARD_LEN: usize = 16 * 1024;
/// Completions taken per [`Driver::reap`]; the rest stay in the completion queue.
pub const REAP_BATCH: usize = 1024;

struct Slot<H: Handler, S> {
    conn: H::Conn,
    stream: TcpStream,
    /// A buffer operation is in flight: `conn` must not be touched nor freed.
    busy: bool,
    state: S,
}

struct Entry<H: Handler, S> {
    gen: u32,
    slot: Option<Box<Slot<H, S>>>,
}

/// The ring plus the slab of connections whose buffers it may hold. `H` is what answers the
/// connections; `S` is the event loop's per-connection state, which the driver stores but
/// never interprets.
pub struct Driver<H: Handler, S> {
    ring: IoUring,
    entries: Vec<Entry<H, S>>,
    free: Vec<u32>,
    live: usize,
    /// Never read; written concurrently by every lingering recv. Freed in `Drop` only if idle.
    discard: *mut u8,
    pub task_run: TaskRun,
}

impl<H: Handler, S> Driver<H, S> {
    /// A ring with `entries` submission slots and a slab sized for `conns` connections.
    pub fn new(entries: u32, conns: usize) -> io::Result<Driver<H, S>> {
        let (ring, task_run) = build_ring(entries)?;
        let discard = Box::into_raw(vec![0u8; DISCARD_LEN].into_boxed_slice()).cast::<u8>();
        Ok(Driver {
            ring,
            entries: Vec::with_capacity(conns.min(1 << 16)),
            free: Vec::with_capacity(conns.min(1 << 16)),
            live: 0,
            discard,
            task_run,
        })
    }

    /// Open connections (lingering ones included).
    pub fn len(&self) -> usize {
        self.live
    }

    /// Adds a connection; returns its index and generation.
    pub fn insert(&mut self, stream: TcpStream, conn: H::Conn, state: S) -> (u32, u32) {
        let slot = Some(Box::new(Slot {
            conn,
            stream,
            busy: false,
            state,
        }));
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let entry = &mut self.entries[index as usize];
            entry.gen = entry.gen.wrapping_add(1) & 0xFF_FFFF;
            entry.slot = slot;
            (index, entry.gen)
        } else {
            self.entries.push(Entry { gen: 0, slot });
            (self.entries.len() as u32 - 1, 0)
        }
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<H, S>> {
        self.entries.get_mut(index as usize)?.slot.as_deref_mut()
    }

    /// The generation of a live slot.
    pub fn gen(&self, index: u32) -> Option<u32> {
        let entry = self.entries.get(index as usize)?;
        entry.slot.as_ref().map(|_| entry.gen)
    }

    /// One past the highest slot index ever used, for sweeps during shutdown.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The loop's state of a live slot.
    pub fn state_mut(&mut self, index: u32) -> Option<&mut S> {
        self.slot_mut(index).map(|s| &mut s.state)
    }

    /// The connection, unless the kernel holds one of its buffers.
    pub fn conn_mut(&mut self, index: u32) -> Option<&mut H::Conn> {
        self.slot_mut(index)
            .filter(|s| !s.busy)
            .map(|s| &mut s.conn)
    }

    /// Closes and frees a connection; refused (false) while the kernel holds one of its buffers.
    pub fn remove(&mut self, index: u32) -> bool {
        let Some(entry) = self.entries.get_mut(index as usize) else {
            return false;
        };
        if entry.slot.as_ref().is_none_or(|s| s.busy) {
            return false;
        }
        entry.slot = None;
        self.free.push(index);
        self.live -= 1;
        true
    }

    /// Pushes entries that only carry numbers (no pointers); submits first if the queue is full.
    fn push_plain(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: callers pass only entries without pointers (accept without an address,
        // cancel, shutdown), so there is no memory whose lifetime could be violated.
        unsafe { self.push_raw(std::slice::from_ref(entry)) }
    }

    /// # Safety
    /// - Every pointer in `entries` MUST stay valid until the operation's completion.
    unsafe fn push_raw(&mut self, entries: &[squeue::Entry]) -> io::Result<()> {
        let free = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        if free < entries.len() {
            self.ring.submit()?;
        }
        // SAFETY: the caller guarantees the entries' memory; space was made above, and a
        // linked pair goes in one push so no submit can split it.
        unsafe { self.ring.submission().push_multiple(entries) }
            .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))
    }

    /// Arms a multishot accept on `listener`, tagged with `index`.
    pub fn accept_multi(&mut self, index: u32, listener: &TcpListener) -> io::Result<()> {
        let fd = types::Fd(listener.as_raw_fd());
        let entry = opcode::AcceptMulti::new(fd)
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(Op::Accept, index, 0));
        self.push_plain(&entry)
    }

    /// Cancels the operation with `target` user data; its completion reports the outcome.
    pub fn cancel(&mut self, target: u64) -> io::Result<()> {
        let (_, index, gen) = decode(target).unwrap_or((Op::Cancel, u32::MAX, 0));
        let entry = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data(Op::Cancel, index, gen));
        self.push_plain(&entry)
    }

    /// Cancels every operation on the ring (shutdown deadline).
    pub fn cancel_everything(&mut self) -> io::Result<()> {
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(user_data(Op::Cancel, u32::MAX, 0));
        self.push_plain(&entry)
    }

    /// Marks the slot busy and returns its raw parts for building entries.
    fn claim(&mut self, index: u32) -> io::Result<(&mut Slot<H, S>, u32)> {
        let gen = self.gen(index).unwrap_or(0);
        match self.slot_mut(index) {
            Some(slot) if !slot.busy => {
                slot.busy = true;
                Ok((slot, gen))
            }
            _ => Err(io::Error::other("uring driver: slot missing or busy")),
        }
    }

    /// Receives into the connection's read buffer
    /// ([`ConnBuffers::read_buf`](crate::http::buffers::ConnBuffers::read_buf)).
    pub fn recv(&mut self, index: u32) -> io::Result<()> {
        let (slot, gen) = self.claim(index)?;
        let fd = types::Fd(slot.stream.as_raw_fd());
        let buf = H::buffers(&mut slot.conn).read_buf();
        let recv = opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(user_data(Op::Recv, index, gen));
        // SAFETY: the read buffer is a heap allocation owned by the boxed slot; `claim` set
        // `busy`, so the slot is neither freed nor its connection touched until this recv completes
        // (`reap` clears `busy`), and `Drop` leaks busy slots.
        let pushed = unsafe { self.push_raw(&[recv]) };
        self.unclaim_on_error(index, pushed)
    }

    /// Sends `out[from..]` with `MSG_WAITALL`, then receives, as one linked pair: a single
    /// completion (the recv's) on success.
    pub fn send_then_recv(&mut self, index: u32, from: usize) -> io::Result<()> {
        let (slot, gen) = self.claim(index)?;
        let fd = types::Fd(slot.stream.as_raw_fd());
        let io = H::buffers(&mut slot.conn);
        let out = &io.out[from..];
        let send = opcode::Send::new(fd, out.as_ptr(), out.len() as u32)
            .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
            .build()
            .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
            .user_data(user_data(Op::LinkedSend, index, gen));
        let buf = io.read_buf();
        let recv = opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(user_data(Op::Recv, index, gen));
        // SAFETY: `out` and the read buffer are distinct heap allocations owned by the boxed
        // slot, marked busy by `claim`; the recv is linked behind the send, so its completion
        // (which clears `busy`) comes after the send finished or failed. `read_buf` may move
        // bytes inside the read buffer but never reallocates it, and `out` is not touched
        // until then.
        let pushed = unsafe { self.push_raw(&[send, recv]) };
        self.unclaim_on_error(index, pushed)
    }

    /// Sends `out[from..]` alone (before closing, or when `out` filled up mid-batch).
    pub fn send(&mut self, index: u32, from: usize) -> io::Result<()> {
        let (slot, gen) = self.claim(index)?;
        let fd = types::Fd(slot.stream.as_raw_fd());
        let out = &H::buffers(&mut slot.conn).out[from..];
        let send = opcode::Send::new(fd, out.as_ptr(), out.len() as u32)
            .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(Op::Send, index, gen));
        // SAFETY: `out` is a heap allocation of the boxed slot, marked busy by `claim` until
        // this send's completion; nothing appends to it meanwhile.
        let pushed = unsafe { self.push_raw(&[send]) };
        self.unclaim_on_error(index, pushed)
    }

    /// Reads and discards what the client still sends, optionally after `shutdown(SHUT_WR)`.
    pub fn linger(&mut self, index: u32, shutdown_first: bool) -> io::Result<()> {
        let discard = self.discard;
        let (slot, gen) = self.claim(index)?;
        let fd = types::Fd(slot.stream.as_raw_fd());
        let shutdown = opcode::Shutdown::new(fd, libc::SHUT_WR)
            .build()
            .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
            .user_data(user_data(Op::Shutdown, index, gen));
        let recv = opcode::Recv::new(fd, discard, DISCARD_LEN as u32)
            .build()
            .user_data(user_data(Op::Linger, index, gen));
        let entries = [shutdown, recv];
        let entries = if shutdown_first {
            &entries[..]
        } else {
            &entries[1..]
        };
        // SAFETY: the discard buffer lives until `Drop`, which leaks it while any slot is
        // busy; Rust never reads or references it, so concurrent kernel writes race with
        // nothing. The socket belongs to the slot, kept alive by `busy`.
        let pushed = unsafe { self.push_raw(entries) };
        self.unclaim_on_error(index, pushed)
    }

    fn unclaim_on_error(&mut self, index: u32, pushed: io::Result<()>) -> io::Result<()> {
        if pushed.is_err() {
            if let Some(slot) = self.slot_mut(index) {
                slot.busy = false;
            }
        }
        pushed
    }

    /// Submits everything queued and waits for a completion or `timeout`.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves up to `out`'s spare capacity of completions into `out` (never growing it) and
    /// releases the slots whose buffer operation ended.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        let room = out.capacity() - out.len();
        for cqe in self.ring.completion().take(room) {
            let Some((op, index, gen)) = decode(cqe.user_data()) else {
                continue;
            };
            let result = cqe.result();
            let accepted = (op == Op::Accept && result >= 0).then(|| {
                // SAFETY: a successful accept completion's result is a new descriptor that
                // nothing else owns; it is wrapped exactly once, here.
                unsafe { TcpStream::from_raw_fd(result) }
            });
            // A recv (plain or linked) or a lone send ends the slot's only buffer operation.
            if matches!(op, Op::Recv | Op::Send | Op::Linger) {
                if let Some(entry) = self.entries.get_mut(index as usize) {
                    if let (true, Some(slot)) = (entry.gen == gen, entry.slot.as_deref_mut()) {
                        slot.busy = false;
                    }
                }
            }
            out.push(Completion {
                op,
                index,
                gen,
                result,
                more: cqueue::more(cqe.flags()),
                accepted,
            });
        }
    }

    /// Whether any slot's buffers are still held by the kernel.
    pub fn any_busy(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.slot.as_ref().is_some_and(|s| s.busy))
    }
}

impl<H: Handler, S> Drop for Driver<H, S> {
    fn drop(&mut self) {
        if self.any_busy() {
            // The kernel may still write into these buffers: leak them rather than free them.
            for entry in &mut self.entries {
                if let Some(slot) = entry.slot.take() {
                    if slot.busy {
                        std::mem::forget(slot);
                    }
                }
            }
            return;
        }
        // SAFETY: `discard` came from `Box::into_raw` of a DISCARD_LEN slice in `new`, and no
        // operation is in flight (no slot is busy), so nothing references it any more.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.discard,
                DISCARD_LEN,
            ))
        });
    }
}
