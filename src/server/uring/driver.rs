//! The io_uring driver: the only unsafe code of the uring backend.
//!
//! It owns the ring and the slab of connections, so it alone decides when memory handed to the
//! kernel may be touched or freed. The contract, kept by every method here:
//!
//! - Each connection lives in its own `Box<Slot>`; the kernel only ever holds pointers into
//!   the [`ConnBuffers`](crate::http::buffers::ConnBuffers) the handler's connection owns (its
//!   read buffer and `out`, heap allocations that `ConnBuffers` never reallocates while lending
//!   them), into the buffers of the provided buffer ring, or into the driver's discard buffer,
//!   never into the slab vector itself. The connection is `'static` and reached only through
//!   its slot, so no other code can touch those buffers meanwhile.
//! - At most one buffer operation is in flight per slot (a recv, a send, or a send linked in
//!   front of a recv, whose recv completes last). While it is in flight, `busy` is set and
//!   neither [`Driver::conn_mut`] nor [`Driver::remove`] hands the connection out or frees it.
//! - A connection between requests holds no read buffer: its recv selects one of the provided
//!   buffer ring's ([`BufRing`]) when bytes arrive. A buffer in the ring belongs to the kernel
//!   (the driver keeps only its raw pointer); a completion naming its id hands it back, and
//!   the driver then owns it again as a `Box`, and the id is refilled with the next buffer a
//!   connection gives back (or a spare, before the loop waits).
//! - With the ring (and Linux 6.0+), a connection's receives are one multishot recv
//!   ([`Driver::arm`]), armed beside whatever else is in flight: it only selects ring buffers,
//!   so it points into no memory of the slot and does not make it busy (`armed` is set). Each
//!   arrival's buffer is queued on the slot (`inbox`) and moved into the connection's read
//!   buffer by [`Driver::take_input`], the first one as the read buffer itself, later ones
//!   copied into its tail. Freeing an armed slot cancels its recv; completions for a freed
//!   slot hand their buffer back to the ring, and until the last one the driver counts as
//!   busy, so `Drop` leaks the ring's buffers rather than free ones the recv could select.
//! - Without multishot, a connection with a partial request keeps its buffer and receives into
//!   its free tail. Only while the linked recv is a buffer-select one does the driver take
//!   `out` back at the send's completion (the recv then points into no memory of the slot).
//! - `user_data` is (op, slot index, generation); a completion for an older generation of a
//!   slot is ignored.
//! - If the driver is dropped while operations are still in flight, their memory is leaked,
//!   never freed.
#![allow(unsafe_code)]

use super::op::{decode, user_data, Completion, Op};
use crate::http::buffers::{BufferPool, ConnBuffers};
use crate::server::handler::Handler;
use crate::uring_probe::{build_ring, TaskRun};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Bytes of the shared buffer that lingering closes read into and nobody reads.
const DISCARD_LEN: usize = 16 * 1024;
/// Completions taken per [`Driver::reap`]; the rest stay in the completion queue.
pub const REAP_BATCH: usize = 1024;
/// Buffers in the provided buffer ring (a power of two): more recvs completing in one loop turn
/// than this get `ENOBUFS` and are re-armed.
pub const BUF_RING_ENTRIES: u16 = 1024;
/// The buffer group id of the ring (one ring per io_uring instance).
const BUF_GROUP: u16 = 0;
/// Set (to anything), one recv per request even where the kernel has multishot recv: the path
/// of Linux 5.19, which the tests run this way.
const SINGLE_RECV_ENV: &str = "GLINT_URING_SINGLE_RECV";
/// Spare buffers of each kind the driver keeps; more are freed.
const POOL_LIMIT: usize = BUF_RING_ENTRIES as usize;

struct Slot<H: Handler, S> {
    conn: H::Conn,
    stream: TcpStream,
    /// A buffer operation is in flight: `conn` must not be touched nor freed.
    busy: bool,
    /// The recv in flight selects a provided buffer: it points into no memory of this slot.
    selecting: bool,
    /// Bytes of the linked send in flight (what its success reports).
    sending: u32,
    /// A multishot recv is in flight (it points into no memory of the slot).
    armed: bool,
    /// A cancel of the multishot recv is queued.
    disarming: bool,
    /// Bytes the multishot recv delivered and the connection has not taken, in order: each a
    /// ring buffer, the offset taken up to, and the length received.
    inbox: VecDeque<(Box<[u8]>, usize, usize)>,
    /// The multishot recv reached the end of input (0) or an error (negated errno), after
    /// the bytes in `inbox`.
    ended: Option<i32>,
    state: S,
}

/// What [`Driver::take_input`] found for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Bytes moved into the read buffer.
    Bytes,
    /// Nothing queued, and the input ended with this result (0: the peer closed).
    End(i32),
    /// Bytes are queued but the read buffer has no room for them.
    Full,
    /// Nothing queued.
    Empty,
}

/// One entry of a provided buffer ring, as the kernel reads it (`struct io_uring_buf`); the
/// `resv` field of entry 0 is the ring's tail.
#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// The provided buffer ring: `BUF_RING_ENTRIES` entries the kernel picks receive buffers from.
struct BufRing {
    /// Page-aligned, `BUF_RING_ENTRIES` entries, registered as group `BUF_GROUP`.
    base: *mut RingEntry,
    tail: u16,
    /// By buffer id: the buffer the kernel may pick (from `Box::into_raw`), null once a
    /// completion handed it back.
    bufs: Vec<*mut u8>,
    /// Ids whose buffer a completion handed back: refilled by the next buffer a connection
    /// gives back, or by [`BufRing::top_up`] before the loop waits.
    empty: Vec<u16>,
    buf_len: usize,
}

impl BufRing {
    fn layout() -> std::alloc::Layout {
        let size = usize::from(BUF_RING_ENTRIES) * std::mem::size_of::<RingEntry>();
        std::alloc::Layout::from_size_align(size, 4096).expect("a valid constant layout")
    }

    /// Hands `buf` (`buf_len` bytes) to the kernel under id `bid`, whose buffer is not in the
    /// ring.
    fn provide(&mut self, bid: u16, buf: Box<[u8]>) {
        debug_assert!(self.bufs[usize::from(bid)].is_null() && buf.len() == self.buf_len);
        let ptr = Box::into_raw(buf).cast::<u8>();
        self.bufs[usize::from(bid)] = ptr;
        let at = usize::from(self.tail & (BUF_RING_ENTRIES - 1));
        // SAFETY: `at` < BUF_RING_ENTRIES, the entries `base` was allocated with; the entry at
        // the unpublished tail is not read by the kernel until the tail store below publishes
        // it, and the fields written here (not `resv`, which is the tail on entry 0) are
        // written through raw pointers, so no reference covers memory the kernel reads.
        unsafe {
            let entry = self.base.add(at);
            std::ptr::addr_of_mut!((*entry).addr).write(ptr as u64);
            std::ptr::addr_of_mut!((*entry).len).write(self.buf_len as u32);
            std::ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is the `resv` field of entry 0, a 2-aligned u16 inside the
        // allocation; the kernel only reads it, so an atomic store is the one access from here.
        let tail = unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*self.base).resv)) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Puts `buf` back in the ring if an id is empty; else returns it.
    fn refill(&mut self, buf: Box<[u8]>) -> Option<Box<[u8]>> {
        if buf.len() != self.buf_len {
            return Some(buf);
        }
        match self.empty.pop() {
            Some(bid) => {
                self.provide(bid, buf);
                None
            }
            None => Some(buf),
        }
    }

    /// Refills every empty id, from `pool` (or new buffers): connections that kept theirs
    /// for a partial request leave ids empty.
    fn top_up(&mut self, pool: &mut BufferPool) {
        while let Some(bid) = self.empty.pop() {
            self.provide(bid, pool.take_read(self.buf_len));
        }
    }

    /// The buffer with id `bid`, which a completion says the kernel filled and let go of.
    fn take(&mut self, bid: u16) -> Option<Box<[u8]>> {
        let ptr = std::mem::replace(self.bufs.get_mut(usize::from(bid))?, std::ptr::null_mut());
        if ptr.is_null() {
            return None;
        }
        self.empty.push(bid);
        // SAFETY: `ptr` came from `Box::into_raw` of a `buf_len` slice in `provide`, and the
        // completion naming `bid` means the kernel no longer uses it; the slot was nulled, so
        // it is reconstructed exactly once.
        Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, self.buf_len)) })
    }
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
    /// Set up at the first connection (its read buffer length); `None` if the kernel refused.
    buf_ring: Option<BufRing>,
    buf_ring_tried: bool,
    /// Cleared when the kernel refuses a multishot recv (`EINVAL` before any worked: Linux
    /// 5.19).
    multishot: bool,
    /// A multishot recv has delivered bytes: a later `EINVAL` is that connection's error.
    multishot_worked: bool,
    /// Multishot recvs of freed slots not ended yet: they may still select ring buffers, so
    /// the driver counts as busy ([`Driver::any_busy`]) until their last completion.
    orphans: usize,
    /// Spare read buffers and `out`s for connections and for the ring.
    pool: BufferPool,
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
            buf_ring: None,
            buf_ring_tried: false,
            multishot: std::env::var_os(SINGLE_RECV_ENV).is_none(),
            multishot_worked: false,
            orphans: 0,
            pool: BufferPool::new(POOL_LIMIT),
        })
    }

    /// Registers the provided buffer ring with buffers of `buf_len` bytes (Linux 5.19+); on a
    /// kernel that refuses, connections receive into buffers of their own, taken from the pool.
    fn set_up_buf_ring(&mut self, buf_len: usize) {
        self.buf_ring_tried = true;
        // SAFETY: a non-zero size with a valid power-of-two alignment.
        let base = unsafe { std::alloc::alloc_zeroed(BufRing::layout()) }.cast::<RingEntry>();
        if base.is_null() {
            return;
        }
        // SAFETY: `base` holds BUF_RING_ENTRIES zeroed entries, page-aligned, and stays
        // allocated until `Drop` unregisters it (or leaks it while operations are in flight).
        let registered = unsafe {
            self.ring.submitter().register_buf_ring_with_flags(
                base as u64,
                BUF_RING_ENTRIES,
                BUF_GROUP,
                0,
            )
        };
        if registered.is_err() {
            // SAFETY: allocated above with this layout; the kernel never saw it.
            unsafe { std::alloc::dealloc(base.cast(), BufRing::layout()) };
            return;
        }
        let mut ring = BufRing {
            base,
            tail: 0,
            bufs: vec![std::ptr::null_mut(); usize::from(BUF_RING_ENTRIES)],
            empty: Vec::with_capacity(usize::from(BUF_RING_ENTRIES)),
            buf_len,
        };
        for bid in 0..BUF_RING_ENTRIES {
            ring.provide(bid, vec![0u8; buf_len].into_boxed_slice());
        }
        self.buf_ring = Some(ring);
    }

    /// Whether receives select provided buffers (the kernel accepted the ring).
    #[cfg(test)]
    pub fn has_buf_ring(&self) -> bool {
        self.buf_ring.is_some()
    }

    /// Open connections (lingering ones included).
    pub fn len(&self) -> usize {
        self.live
    }

    /// Adds a connection; returns its index and generation.
    pub fn insert(&mut self, stream: TcpStream, mut conn: H::Conn, state: S) -> (u32, u32) {
        if !self.buf_ring_tried {
            self.set_up_buf_ring(H::buffers(&mut conn).read_len());
        }
        let slot = Some(Box::new(Slot {
            conn,
            stream,
            busy: false,
            selecting: false,
            sending: 0,
            armed: false,
            disarming: false,
            inbox: VecDeque::new(),
            ended: None,
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
        live_slot(&mut self.entries, index)
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

    /// Gives the connection's read buffer back to the ring (or the pool) unless it holds a
    /// partial request, and `out` to the pool if it is empty.
    pub fn release(&mut self, index: u32) {
        if let Some(slot) = live_slot(&mut self.entries, index) {
            if !slot.busy {
                give_back(
                    H::buffers(&mut slot.conn),
                    &mut self.buf_ring,
                    &mut self.pool,
                );
            }
        }
    }

    /// Lends the connection a read buffer and `out` from the pool, where it holds none.
    pub fn equip(&mut self, index: u32) {
        if let Some(slot) = live_slot(&mut self.entries, index) {
            if !slot.busy {
                H::buffers(&mut slot.conn).equip(&mut self.pool);
            }
        }
    }

    /// Closes and frees a connection; refused (false) while the kernel holds one of its buffers.
    pub fn remove(&mut self, index: u32) -> bool {
        let Some(entry) = self.entries.get_mut(index as usize) else {
            return false;
        };
        let Some(slot) = entry.slot.as_deref_mut().filter(|s| !s.busy) else {
            return false;
        };
        let io = H::buffers(&mut slot.conn);
        io.out.clear();
        give_back(io, &mut self.buf_ring, &mut self.pool);
        for (buf, ..) in slot.inbox.drain(..) {
            recycle(buf, &mut self.buf_ring, &mut self.pool);
        }
        // The recv holds the socket open until it ends; its completions find no slot of this
        // generation and hand their buffers back.
        let armed = slot.armed.then_some(entry.gen);
        entry.slot = None;
        self.free.push(index);
        self.live -= 1;
        if let Some(gen) = armed {
            self.orphans += 1;
            // A failed push leaves the recv armed until the peer closes or the ring is dropped.
            let _ = self.cancel(user_data(Op::RecvMulti, index, gen));
        }
        true
    }

    /// Whether multishot recvs will be tried (`GLINT_URING_SINGLE_RECV` is not set).
    pub fn multishot_allowed(&self) -> bool {
        self.multishot
    }

    /// Whether receives are one multishot recv per connection ([`Driver::arm`]): the buffer
    /// ring is registered and the kernel has not refused a multishot recv.
    pub fn multishot(&self) -> bool {
        self.multishot && self.buf_ring.is_some()
    }

    /// Arms the connection's multishot recv, unless it is armed or its input ended. Every
    /// arrival of bytes selects a ring buffer, which [`Driver::reap`] queues on the slot for
    /// [`Driver::take_input`]; a send may be in flight beside it.
    pub fn arm(&mut self, index: u32) -> io::Result<()> {
        let gen = self.gen(index).unwrap_or(0);
        let slot = self
            .slot_mut(index)
            .ok_or_else(|| io::Error::other("uring driver: slot missing"))?;
        if slot.armed || slot.ended.is_some() {
            return Ok(());
        }
        let entry = opcode::RecvMulti::new(types::Fd(slot.stream.as_raw_fd()), BUF_GROUP)
            .build()
            .user_data(user_data(Op::RecvMulti, index, gen));
        slot.armed = true;
        let pushed = self.push_plain(&entry);
        if pushed.is_err() {
            if let Some(slot) = self.slot_mut(index) {
                slot.armed = false;
            }
        }
        pushed
    }

    /// Stops the connection's multishot recv (to stop reading a client that sends faster than
    /// it reads, or before a lingering close); its last completion clears `armed`. Queued
    /// bytes stay queued.
    pub fn disarm(&mut self, index: u32) -> io::Result<()> {
        let gen = self.gen(index).unwrap_or(0);
        match self.slot_mut(index) {
            Some(slot) if slot.armed && !slot.disarming => slot.disarming = true,
            _ => return Ok(()),
        }
        self.cancel(user_data(Op::RecvMulti, index, gen))
    }

    /// The operation a connection waiting for bytes has in flight, for cancelling it.
    pub fn reading_op(&mut self, index: u32) -> Op {
        match self.slot_mut(index) {
            Some(slot) if slot.armed => Op::RecvMulti,
            _ => Op::Recv,
        }
    }

    /// Moves queued bytes into the connection's read buffer, as many as fit: the first
    /// arrival's ring buffer becomes the read buffer when the connection holds none (no copy),
    /// the rest are copied into its free tail and their buffers go back to the ring.
    pub fn take_input(&mut self, index: u32) -> Input {
        let Some(slot) = live_slot(&mut self.entries, index).filter(|s| !s.busy) else {
            return Input::Empty;
        };
        let io = H::buffers(&mut slot.conn);
        let mut moved = false;
        while let Some((buf, from, len)) = slot.inbox.front_mut() {
            if !io.holds_read_buf() && *from == 0 && buf.len() == io.read_len() {
                let (buf, _, len) = slot.inbox.pop_front().expect("the front exists");
                io.install_read_buf(buf);
                io.filled(len);
                moved = true;
                continue;
            }
            if !io.holds_read_buf() {
                io.install_read_buf(self.pool.take_read(io.read_len()));
            }
            let tail = io.read_buf();
            let n = tail.len().min(*len - *from);
            if n == 0 {
                break;
            }
            tail[..n].copy_from_slice(&buf[*from..*from + n]);
            io.filled(n);
            *from += n;
            moved = true;
            if *from == *len {
                let (buf, ..) = slot.inbox.pop_front().expect("the front exists");
                recycle(buf, &mut self.buf_ring, &mut self.pool);
            }
        }
        match (moved, slot.inbox.is_empty(), slot.ended) {
            (true, ..) => Input::Bytes,
            (false, false, _) => Input::Full,
            (false, true, Some(result)) => Input::End(result),
            (false, true, None) => Input::Empty,
        }
    }

    /// Drops the bytes queued for the connection (a lingering close reads to discard) and
    /// returns how many there were.
    pub fn discard_input(&mut self, index: u32) -> usize {
        let Some(slot) = live_slot(&mut self.entries, index) else {
            return 0;
        };
        let mut dropped = 0;
        for (buf, from, len) in slot.inbox.drain(..) {
            dropped += len - from;
            recycle(buf, &mut self.buf_ring, &mut self.pool);
        }
        dropped
    }

    /// Pushes entries that only carry numbers (no pointers); submits first if the queue is full.
    fn push_plain(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: callers pass only entries without pointers (accept without an address,
        // cancel, a multishot recv that selects ring buffers), so there is no memory whose
        // lifetime could be violated; the ring's buffers stay allocated while it is registered.
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
    /// Without a partial request (and with the ring), the recv selects a provided buffer.
    pub fn recv(&mut self, index: u32) -> io::Result<()> {
        let recv = self.recv_entry(index)?;
        // SAFETY: see `recv_entry`: the read buffer is a heap allocation owned by the boxed
        // slot (or a ring buffer, owned by the kernel until a completion returns it); `claim`
        // set `busy`, so the slot is neither freed nor its connection touched until this recv
        // completes (`reap` clears `busy`), and `Drop` leaks busy slots.
        let pushed = unsafe { self.push_raw(&[recv]) };
        self.unclaim_on_error(index, pushed)
    }

    /// Claims the slot and builds its recv: a buffer-select one if the connection holds no
    /// read buffer and the ring's buffers have its length, else into its read buffer's tail
    /// (taken from the pool if it holds none).
    fn recv_entry(&mut self, index: u32) -> io::Result<squeue::Entry> {
        let gen = self.gen(index).unwrap_or(0);
        let slot = match live_slot(&mut self.entries, index) {
            Some(slot) if !slot.busy => slot,
            _ => return Err(io::Error::other("uring driver: slot missing or busy")),
        };
        slot.busy = true;
        let fd = types::Fd(slot.stream.as_raw_fd());
        let data = user_data(Op::Recv, index, gen);
        let io = H::buffers(&mut slot.conn);
        if !io.holds_read_buf() {
            if let Some(ring) = self
                .buf_ring
                .as_ref()
                .filter(|r| r.buf_len == io.read_len())
            {
                slot.selecting = true;
                return Ok(
                    opcode::Recv::new(fd, std::ptr::null_mut(), ring.buf_len as u32)
                        .buf_group(BUF_GROUP)
                        .build()
                        .flags(squeue::Flags::BUFFER_SELECT)
                        .user_data(data),
                );
            }
            io.install_read_buf(self.pool.take_read(io.read_len()));
        }
        slot.selecting = false;
        let buf = io.read_buf();
        Ok(opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(data))
    }

    /// Sends `out[from..]` with `MSG_WAITALL`, then receives, as one linked pair: a single
    /// completion (the recv's) on success.
    /// With a buffer-select recv, the send's success posts a completion that `reap` consumes
    /// to give `out` back to the pool at once.
    pub fn send_then_recv(&mut self, index: u32, from: usize) -> io::Result<()> {
        let recv = self.recv_entry(index)?;
        let gen = self.gen(index).unwrap_or(0);
        let Some(slot) = self.slot_mut(index) else {
            return Err(io::Error::other("uring driver: slot missing"));
        };
        let fd = types::Fd(slot.stream.as_raw_fd());
        let out = &H::buffers(&mut slot.conn).out[from..];
        slot.sending = out.len() as u32;
        let link = if slot.selecting {
            squeue::Flags::IO_LINK
        } else {
            squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS
        };
        let send = opcode::Send::new(fd, out.as_ptr(), out.len() as u32)
            .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
            .build()
            .flags(link)
            .user_data(user_data(Op::LinkedSend, index, gen));
        // SAFETY: `out` and the read buffer are distinct heap allocations owned by the boxed
        // slot (or the recv selects a ring buffer, owned by the kernel), marked busy by
        // `recv_entry`; the recv is linked behind the send, so its completion (which clears
        // `busy`) comes after the send finished or failed. `read_buf` may move bytes inside the
        // read buffer but never reallocates it, and `out` is not touched until the send's
        // completion (`reap` takes it back then only behind a buffer-select recv).
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
    /// Refills the ring's empty ids first, so recvs find buffers.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        if let Some(ring) = &mut self.buf_ring {
            ring.top_up(&mut self.pool);
        }
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
            let slot = self
                .entries
                .get_mut(index as usize)
                .filter(|e| e.gen == gen)
                .and_then(|e| e.slot.as_deref_mut());
            // A buffer the kernel selected is ours again: to the connection, a spare in its place.
            let selected = match (op, cqueue::buffer_select(cqe.flags()), &mut self.buf_ring) {
                (Op::Recv | Op::RecvMulti, Some(bid), Some(ring)) => ring.take(bid),
                _ => None,
            };
            let more = cqueue::more(cqe.flags());
            if op == Op::RecvMulti {
                match slot {
                    Some(slot) => {
                        if !more {
                            slot.armed = false;
                            slot.disarming = false;
                        }
                        match selected {
                            Some(buf) if result > 0 => {
                                self.multishot_worked = true;
                                slot.inbox.push_back((buf, 0, result as usize))
                            }
                            Some(buf) => recycle(buf, &mut self.buf_ring, &mut self.pool),
                            None if result == -libc::EINVAL && !self.multishot_worked => {
                                self.multishot = false
                            }
                            None if result == 0
                                || !matches!(-result, libc::ENOBUFS | libc::ECANCELED) =>
                            {
                                slot.ended = Some(result)
                            }
                            None => {}
                        }
                    }
                    None => {
                        if let Some(buf) = selected {
                            recycle(buf, &mut self.buf_ring, &mut self.pool);
                        }
                        if !more {
                            self.orphans = self.orphans.saturating_sub(1);
                        }
                    }
                }
            } else if op == Op::LinkedSend {
                if let Some(slot) = slot {
                    if slot.selecting && result >= 0 && result as u32 == slot.sending {
                        // Sent whole; the buffer-select recv behind it points into no memory
                        // of the slot, so `out` can go back to the pool at once.
                        let io = H::buffers(&mut slot.conn);
                        io.out.clear();
                        if let Some(out) = io.take_out() {
                            self.pool.put_out(out);
                        }
                        continue;
                    }
                }
            } else if matches!(op, Op::Recv | Op::Send | Op::Linger) {
                // A recv (plain or linked) or a lone send ends the slot's only buffer operation.
                if let Some(slot) = slot {
                    slot.busy = false;
                    if let Some(buf) = selected {
                        let io = H::buffers(&mut slot.conn);
                        if io.holds_read_buf() {
                            self.pool.put_read(buf);
                        } else {
                            io.install_read_buf(buf);
                        }
                    }
                } else if let Some(buf) = selected {
                    self.pool.put_read(buf);
                }
            }
            out.push(Completion {
                op,
                index,
                gen,
                result,
                more,
                accepted,
            });
        }
    }

    /// Whether any slot's buffers are still held by the kernel, or a multishot recv (of a
    /// live slot or a freed one) may still select ring buffers.
    pub fn any_busy(&self) -> bool {
        self.orphans > 0
            || self
                .entries
                .iter()
                .any(|e| e.slot.as_ref().is_some_and(|s| s.busy || s.armed))
    }
}

/// The live slot at `index` of `entries`: [`Driver::slot_mut`] for methods that also borrow
/// the driver's ring or pool while holding it.
fn live_slot<H: Handler, S>(entries: &mut [Entry<H, S>], index: u32) -> Option<&mut Slot<H, S>> {
    entries.get_mut(index as usize)?.slot.as_deref_mut()
}

/// Gives a ring buffer back to the ring (to an empty id) or else to the pool.
fn recycle(buf: Box<[u8]>, ring: &mut Option<BufRing>, pool: &mut BufferPool) {
    let left = match ring {
        Some(ring) => ring.refill(buf),
        None => Some(buf),
    };
    if let Some(buf) = left {
        pool.put_read(buf);
    }
}

/// Gives a connection's read buffer back to the ring (to an empty id) or else to the pool,
/// unless it holds a partial request, and `out` to the pool if it is empty.
fn give_back(io: &mut ConnBuffers, ring: &mut Option<BufRing>, pool: &mut BufferPool) {
    if let Some(buf) = io.take_read_buf() {
        recycle(buf, ring, pool);
    }
    if let Some(out) = io.take_out() {
        pool.put_out(out);
    }
}

impl<H: Handler, S> Drop for Driver<H, S> {
    fn drop(&mut self) {
        if self.any_busy() {
            // The kernel may still write into these buffers: leak them rather than free them
            // (the ring's buffers and entries too, which `buf_ring` only points to).
            for entry in &mut self.entries {
                if let Some(slot) = entry.slot.take() {
                    if slot.busy {
                        std::mem::forget(slot);
                    }
                }
            }
            return;
        }
        if let Some(mut ring) = self.buf_ring.take() {
            if self.ring.submitter().unregister_buf_ring(BUF_GROUP).is_ok() {
                for bid in 0..BUF_RING_ENTRIES {
                    drop(ring.take(bid));
                }
                // SAFETY: allocated in `set_up_buf_ring` with this layout; unregistered just
                // above, so the kernel no longer reads it.
                unsafe { std::alloc::dealloc(ring.base.cast(), BufRing::layout()) };
            }
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
