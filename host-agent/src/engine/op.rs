//! One allreduce operation: how a tensor maps to packets (chunking and the
//! float pipeline), what each packet carries, and how results assemble
//! into the output.
//!
//! The operation keeps at most one copy of the tensor ([`Storage`]).
//! Started plainly, that copy is the input, overwritten block by block by
//! the results: a block's packets are only (re)built before its result
//! arrives. Started in place, results go to the caller's buffer and the
//! copy, made block by block as packets are first sent, stays the input
//! (for retransmissions and for a restore after a failure). Started out of
//! place, input and output are the caller's and nothing is copied. No
//! second tensor-sized buffer is ever filled before the first packet or
//! copied out after the last result.

use std::ops::Range;

use packet_format::{Flags, MsgType, Packet, PacketSink, Repr, NO_EXPONENT};

use crate::quantize;

/// Elements copied at once from the caller's buffer when a block is first
/// sent (64 KiB): with 1 KiB packets, one copy per block was measurably
/// slower (BENCHMARKS.md, run E8), as each short copy of memory not yet
/// in the cache waits for it anew.
const COPY_AHEAD: usize = 16 * 1024;

/// Element type of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    I32,
    F32,
}

/// Where an operation's input lives and where its results go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// The engine's copy is the input; results overwrite it and are taken
    /// at the end.
    Owned,
    /// Results go to the caller's buffer; each block of it is copied when
    /// first sent, so the input stays for retransmissions and a restore.
    InPlace,
    /// The caller's input and output buffers are apart: packets are built
    /// from the input, results written to the output, nothing copied.
    OutOfPlace,
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No operation, or its result was taken or aborted.
    Idle,
    /// Packets are being exchanged.
    Running,
    /// Every result is in; the output waits to be taken.
    Done,
}

/// What every packet of the job shares: header fields, and the slot
/// range a packet's counter maps into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    pub job_id: u16,
    pub key: u32,
    pub rank: u16,
    pub slot_base: u16,
    /// Slots leased (W).
    pub window: u64,
}

/// State of the current operation. Buffers are reused across operations.
#[derive(Debug)]
pub(crate) struct Op {
    pub phase: Phase,
    pub dtype: Dtype,
    /// Elements (N).
    len: usize,
    /// Elements per packet (E).
    epp: usize,
    /// Blocks (C = ceil(N / E)).
    blocks: usize,
    /// Float pipeline lead (L = min(W, C)); 0 for i32.
    pub lead: usize,
    /// Packets of the operation (C for i32, C + L for f32).
    pub packets: usize,
    /// Global packet counter of packet 0.
    pub base: u64,
    /// Next packet to send for the first time.
    pub next_packet: usize,
    /// Results received.
    pub results: usize,
    /// No packet before this one is missing its result.
    pub oldest: usize,
    world: u16,
    /// The i32 input; a block holds its result once that is accepted.
    values_i32: Vec<i32>,
    /// The f32 input; a block holds its result once that is accepted.
    values_f32: Vec<f32>,
    /// This worker's exponent of each block.
    exponents: Vec<i16>,
    /// Max exponent over workers of each block, learned from results.
    max_exponents: Vec<i16>,
    /// Where the input is and where results go.
    pub storage: Storage,
}

/// The caller's buffer that results of an in-place or out-of-place
/// operation are written to.
#[derive(Debug)]
pub enum Output<'a> {
    /// For an i32 operation.
    I32(&'a mut [i32]),
    /// For an f32 operation.
    F32(&'a mut [f32]),
}

impl Output<'_> {
    /// The same buffer, borrowed again (for one call of a loop).
    pub fn reborrow(&mut self) -> Output<'_> {
        match self {
            Output::I32(out) => Output::I32(out),
            Output::F32(out) => Output::F32(out),
        }
    }

    /// The same buffer, to read from (in place it is also the input).
    pub fn as_input(&self) -> Input<'_> {
        match self {
            Output::I32(out) => Input::I32(out),
            Output::F32(out) => Input::F32(out),
        }
    }
}

/// The caller's input of an out-of-place operation, lent again for every
/// packet built from it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// For an i32 operation.
    I32(&'a [i32]),
    /// For an f32 operation.
    F32(&'a [f32]),
}

impl Input<'_> {
    fn dtype_and_len(&self) -> (Dtype, usize) {
        match self {
            Input::I32(b) => (Dtype::I32, b.len()),
            Input::F32(b) => (Dtype::F32, b.len()),
        }
    }
}

impl Op {
    pub(crate) fn new(world: u16, elements_per_packet: u16) -> Self {
        Op {
            phase: Phase::Idle,
            dtype: Dtype::I32,
            len: 0,
            epp: usize::from(elements_per_packet),
            blocks: 0,
            lead: 0,
            packets: 0,
            base: 0,
            next_packet: 0,
            results: 0,
            oldest: 0,
            world,
            values_i32: Vec::new(),
            values_f32: Vec::new(),
            exponents: Vec::new(),
            max_exponents: Vec::new(),
            storage: Storage::Owned,
        }
    }

    fn begin(&mut self, dtype: Dtype, len: usize, base: u64, window: u64, storage: Storage) {
        self.storage = storage;
        self.dtype = dtype;
        self.len = len;
        self.blocks = len.div_ceil(self.epp);
        self.lead = match dtype {
            Dtype::I32 => 0,
            Dtype::F32 => self.blocks.min(window as usize),
        };
        self.packets = self.blocks + self.lead;
        self.base = base;
        self.next_packet = 0;
        self.results = 0;
        self.oldest = 0;
        self.phase = if self.packets == 0 {
            Phase::Done
        } else {
            Phase::Running
        };
    }

    /// Starts an i32 operation whose packet 0 has global counter `base`.
    /// In place, blocks are copied as they are first sent ([`Op::copy_block`]).
    pub(crate) fn start_i32(&mut self, data: &[i32], base: u64, window: u64, storage: Storage) {
        self.values_i32.clear();
        if storage == Storage::Owned {
            self.values_i32.extend_from_slice(data);
        }
        self.begin(Dtype::I32, data.len(), base, window, storage);
    }

    /// Starts an f32 operation, or refuses a tensor holding NaN or an
    /// infinity with the index of the first one (then nothing is started
    /// and a finished result not yet taken is discarded).
    /// In place or out of place, this only reads `data`; in place, blocks
    /// are copied as they are first sent ([`Op::copy_block`]).
    pub(crate) fn start_f32(
        &mut self,
        data: &[f32],
        base: u64,
        window: u64,
        storage: Storage,
    ) -> Result<(), usize> {
        // One pass: each block is copied (if owned), and its exponent and
        // finiteness read while it is in the cache.
        self.values_f32.clear();
        self.exponents.clear();
        let epp = self.epp.max(1);
        for (b, block) in data.chunks(epp).enumerate() {
            if storage == Storage::Owned {
                self.values_f32.extend_from_slice(block);
            }
            match quantize::finite_block_exponent(block) {
                Some(e) => self.exponents.push(e),
                None => {
                    self.phase = Phase::Idle;
                    let first = quantize::first_non_finite(block).unwrap_or(0);
                    return Err(b * epp + first);
                }
            }
        }
        self.begin(Dtype::F32, data.len(), base, window, storage);
        self.max_exponents.clear();
        self.max_exponents.resize(self.blocks, NO_EXPONENT);
        Ok(())
    }

    /// Element range of block `b`.
    fn block(&self, b: usize) -> Range<usize> {
        let start = b * self.epp;
        start..(start + self.epp).min(self.len)
    }

    /// The block whose data packet `k` carries, if any.
    fn data_block(&self, k: usize) -> Option<usize> {
        match self.dtype {
            Dtype::I32 => Some(k),
            Dtype::F32 => k.checked_sub(self.lead),
        }
    }

    /// Elements packet `k` (and its result) carries.
    fn elem_count(&self, k: usize) -> usize {
        self.data_block(k).map_or(0, |b| self.block(b).len())
    }

    /// Makes sure the block packet `k` carries can be built: in place,
    /// blocks are copied from the caller's buffer `input` when their packet
    /// is first built, [`COPY_AHEAD`] elements at a time (in block order,
    /// and always before the block's result can overwrite that buffer).
    /// False if the block is missing and `input` cannot supply it (absent,
    /// or not the operation's buffer). Out of place nothing is copied: the
    /// caller checks the input with [`Op::can_read`].
    pub(crate) fn copy_block(&mut self, k: usize, input: Option<Input<'_>>) -> bool {
        if self.storage == Storage::OutOfPlace {
            return true;
        }
        let Some(b) = self.data_block(k) else {
            return true;
        };
        let range = self.block(b);
        let have = match self.dtype {
            Dtype::I32 => self.values_i32.len(),
            Dtype::F32 => self.values_f32.len(),
        };
        if have >= range.end {
            return true;
        }
        let Some(input) = input.filter(|i| have == range.start && self.fits(i.dtype_and_len()))
        else {
            return false;
        };
        // Whole blocks, as many as fill COPY_AHEAD (at least this one):
        // blocks not yet sent are unchanged input, so copying ahead is safe.
        let chunk =
            range.start..(range.start + self.epp * (COPY_AHEAD / self.epp).max(1)).min(self.len);
        match input {
            Input::I32(data) => self.values_i32.extend_from_slice(&data[chunk]),
            Input::F32(data) => self.values_f32.extend_from_slice(&data[chunk]),
        }
        true
    }

    /// Whether packets can be built with `input`: out of place, it must be
    /// the operation's input; otherwise it is not read.
    pub(crate) fn can_read(&self, input: Option<Input<'_>>) -> bool {
        self.storage != Storage::OutOfPlace || input.is_some_and(|i| self.fits(i.dtype_and_len()))
    }

    /// Whether a caller's buffer of this type and length can be this
    /// operation's input or output.
    fn fits(&self, (dtype, len): (Dtype, usize)) -> bool {
        dtype == self.dtype && len == self.len
    }

    /// Appends packet `k` (global counter `counter`) to `out` and returns
    /// its length; [`Op::copy_block`] must have accepted it with the same
    /// `input`. Every byte is written: `out` may hand out space holding
    /// old bytes.
    pub(crate) fn build<S: PacketSink + ?Sized>(
        &self,
        k: usize,
        counter: u64,
        id: Identity,
        input: Option<Input<'_>>,
        out: &mut S,
    ) -> usize {
        let (flags, exponent) = match self.dtype {
            Dtype::I32 => (Flags::default(), NO_EXPONENT),
            Dtype::F32 => (
                Flags::FLOAT,
                self.exponents.get(k).copied().unwrap_or(NO_EXPONENT),
            ),
        };
        let repr = Repr {
            msg_type: MsgType::Contribution,
            set: (counter / id.window) % 2 == 1,
            flags,
            job_id: id.job_id,
            rank: id.rank,
            key: id.key,
            seq: counter as u32,
            slot: id.slot_base.wrapping_add((counter % id.window) as u16),
            elem_count: self.elem_count(k) as u16,
            exponent,
        };
        match (self.dtype, self.data_block(k)) {
            (Dtype::I32, Some(b)) => {
                let values = match input {
                    Some(Input::I32(data)) if self.storage == Storage::OutOfPlace => data,
                    _ => &self.values_i32,
                };
                let values = &values[self.block(b)];
                repr.emit_with(out, |words| cpu_dispatch::words::store(words, values));
            }
            (Dtype::F32, Some(b)) => {
                let values = match input {
                    Some(Input::F32(data)) if self.storage == Storage::OutOfPlace => data,
                    _ => &self.values_f32,
                };
                let values = &values[self.block(b)];
                let e_max = self.max_exponents[b];
                let world = self.world;
                // Quantized straight into the payload, in network order; a
                // block that is zero on every worker is sent as zeros.
                repr.emit_with(out, |words| {
                    if e_max == NO_EXPONENT {
                        words.fill([0; 4]);
                    } else {
                        let f = quantize::scale(world, e_max);
                        quantize::quantize(values, f, quantize::clamp_limit(world), words);
                    }
                });
            }
            (_, None) => repr.emit_with(out, |_| {}),
        }
        repr.buffer_len()
    }

    /// Takes the result of packet `k` into the output. Returns false (and
    /// changes nothing) if it does not fit what packet `k` carried.
    /// In place or out of place, the result goes to `out`, which must be
    /// given and fit the operation; otherwise `out` must be `None`.
    pub(crate) fn accept(
        &mut self,
        k: usize,
        repr: &Repr,
        packet: &Packet<&[u8]>,
        out: Option<Output<'_>>,
    ) -> bool {
        if usize::from(repr.elem_count) != self.elem_count(k) {
            return false;
        }
        let fits = match &out {
            None => self.storage == Storage::Owned,
            Some(buffer) => {
                self.storage != Storage::Owned && self.fits(buffer.as_input().dtype_and_len())
            }
        };
        if !fits {
            return false;
        }
        // The max over workers can be neither invalid nor below our own.
        if self.dtype == Dtype::F32
            && k < self.blocks
            && (!quantize::is_valid_exponent(repr.exponent) || repr.exponent < self.exponents[k])
        {
            return false;
        }
        let words = packet.payload_words();
        match (self.dtype, self.data_block(k)) {
            (Dtype::I32, Some(b)) => {
                let range = self.block(b);
                let dest = match out {
                    Some(Output::I32(o)) => &mut o[range],
                    _ => &mut self.values_i32[range],
                };
                cpu_dispatch::words::load(dest, words);
            }
            (Dtype::F32, Some(b)) => {
                let range = self.block(b);
                let e_max = self.max_exponents[b];
                let dest = match out {
                    Some(Output::F32(o)) => &mut o[range],
                    _ => &mut self.values_f32[range],
                };
                if e_max == NO_EXPONENT {
                    dest.fill(0.0);
                } else {
                    let f = quantize::scale(self.world, e_max);
                    quantize::dequantize(words, f, dest);
                }
            }
            (_, None) => {}
        }
        if self.dtype == Dtype::F32 && k < self.blocks {
            self.max_exponents[k] = repr.exponent;
        }
        self.results += 1;
        if self.results == self.packets {
            self.phase = Phase::Done;
        }
        true
    }

    /// Elements of the operation.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The i32 values: owned, the output once `phase` is `Done`; in place,
    /// the input of the blocks copied so far; out of place, empty.
    pub(crate) fn values_i32(&self) -> &[i32] {
        &self.values_i32
    }

    /// The f32 values, as [`Op::values_i32`].
    pub(crate) fn values_f32(&self) -> &[f32] {
        &self.values_f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_of_a_tensor_not_a_multiple_of_e() {
        let mut op = Op::new(2, 4);
        op.start_i32(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0, 8, Storage::Owned);
        assert_eq!((op.blocks, op.lead, op.packets), (3, 0, 3));
        assert_eq!(op.block(2), 8..10);
        assert_eq!((op.elem_count(0), op.elem_count(2)), (4, 2));
    }

    #[test]
    fn in_place_blocks_are_copied_ahead_in_chunks() {
        let mut op = Op::new(1, 4);
        let data: Vec<i32> = (0..(2 * COPY_AHEAD + 6) as i32).collect();
        let buf = data.clone();
        op.start_i32(&data, 0, 8, Storage::InPlace);
        assert!(op.copy_block(0, Some(Input::I32(&buf))));
        assert_eq!(op.values_i32(), &data[..COPY_AHEAD]);
        // The rest of the chunk needs no buffer; the next chunk does.
        let per_chunk = COPY_AHEAD / 4;
        assert!(op.copy_block(per_chunk - 1, None));
        assert!(!op.copy_block(per_chunk, None));
        assert!(op.copy_block(per_chunk, Some(Input::I32(&buf))));
        // The last chunk is short.
        assert!(op.copy_block(2 * per_chunk, Some(Input::I32(&buf))));
        assert_eq!(op.values_i32(), &data[..]);
        // A buffer of another length is not the operation's.
        op.start_i32(&data, 0, 8, Storage::InPlace);
        assert!(!op.copy_block(0, Some(Input::I32(&buf[1..]))));
    }

    #[test]
    fn copies_ahead_end_on_block_boundaries() {
        // Blocks that do not divide the chunk (and one larger than it):
        // every block is copied whole, in order, to the end.
        for epp in [3u16, 2237, 16370, 20000] {
            let mut op = Op::new(1, epp);
            let data: Vec<f32> = (0..3 * COPY_AHEAD + 5).map(|i| i as f32).collect();
            let buf = data.clone();
            op.start_f32(&data, 0, 4, Storage::InPlace).unwrap();
            for k in op.lead..op.packets {
                assert!(
                    op.copy_block(k, Some(Input::F32(&buf))),
                    "epp {epp}, packet {k}"
                );
                let b = op.data_block(k).unwrap();
                let have = op.values_f32().len();
                assert!(have >= op.block(b).end);
                assert!(have == data.len() || have.is_multiple_of(usize::from(epp)));
            }
            assert_eq!(op.values_f32(), &data[..], "epp {epp}");
        }
    }

    #[test]
    fn float_pipeline_layout() {
        let mut op = Op::new(2, 4);
        let data = [1.0f32; 10];
        op.start_f32(&data, 0, 2, Storage::Owned).unwrap();
        assert_eq!((op.blocks, op.lead, op.packets), (3, 2, 5));
        let counts: Vec<usize> = (0..5).map(|k| op.elem_count(k)).collect();
        assert_eq!(counts, [0, 0, 4, 4, 2]);
        // A window wider than the tensor: the lead is the block count.
        op.start_f32(&data, 0, 64, Storage::Owned).unwrap();
        assert_eq!((op.lead, op.packets), (3, 6));
        // An empty tensor is done at once.
        op.start_f32(&[], 0, 4, Storage::Owned).unwrap();
        assert_eq!((op.packets, op.phase), (0, Phase::Done));
    }
}
