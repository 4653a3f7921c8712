import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one connection's outbound bytes, in order: straight to its socket (one `send(2)`, or one `sendmsg(2)` for
/// several buffers gathered until a flush) while none of its bytes wait in NIO, otherwise through the channel
/// pipeline. Confined to the connection's event loop.
///
/// Most writes of a push gateway are one small, complete message or response to a socket with room in its kernel
/// buffer. Handing each to NIO (pipeline, pending-write queue, promise bookkeeping, flush) costs more user-space time
/// than the rest of a delivery: about 1.5 µs of 9 µs per SSE delivery at 1k subscribers, measured. Those writes go
/// to the socket directly. When the kernel takes only part of a write (its buffer is full) or refuses it (an error),
/// the rest goes to NIO, which waits for writability, reports the error and closes as usual; from then on every
/// write goes to NIO until NIO has written all it holds, so bytes never overtake each other. NIO's writability, and
/// with it the write-buffer water marks and the slow-consumer bound, works as before, since everything that waits,
/// waits in NIO.
///
/// When one batch delivers several messages to a connection, they are gathered (``gather(_:)``) and go out together
/// at the batch's flush, so a burst still costs one system call per connection.
///
/// Direct writes are used only where the pipeline does not transform outbound bytes (plain HTTP: one handler) and
/// the descriptor was proven (``SocketDescriptor``). The descriptor is given up (``detach()``) when the channel goes
/// inactive. Between NIO closing the socket and that event, NIO runs only its own code, the callbacks of failed
/// write promises and of the close promise, and `errorCaught` for a failed deregistration. None of them writes
/// here: this writer's own promise callback only counts, the module's other callbacks and `errorCaught` only close,
/// and close promises are never passed. So a descriptor number reused by another connection is never written to;
/// code added to those callbacks must keep it so (debug builds assert it on every direct write).
final class ConnectionWriter {
    private let context: ChannelHandlerContext
    /// The socket's descriptor while direct writes are allowed; -1 otherwise.
    private var descriptor: CInt
    /// Writes handed to NIO and not completed yet. While any is, new bytes go to NIO too.
    private var inNIO = 0
    /// NIO holds writes not flushed yet.
    private var unflushed = false
    /// Buffers to write together, straight to the socket, at the next flush (nothing of the connection is in NIO).
    private var gathered: [ByteBuffer] = []
    /// The most buffers one `sendmsg` takes (Linux's IOV_MAX is 1024).
    private static let maxGather = 1024
    private let stats: GatewayStats
    /// How long ``closeWhenWritten()`` waits for the peer to read what is still queued.
    private let closeTimeout: TimeAmount

    /// Creates a writer that writes through NIO until ``writeDirectly(to:)``.
    /// - Parameters:
    ///   - context: The context of the connection's (only) handler.
    ///   - stats: Counts writes that could not go straight to the socket.
    ///   - closeTimeout: How long ``closeWhenWritten()`` waits for queued bytes to be written before it closes anyway.
    init(context: ChannelHandlerContext, stats: GatewayStats, closeTimeout: TimeAmount) {
        self.context = context
        self.descriptor = -1
        self.stats = stats
        self.closeTimeout = closeTimeout
    }

    /// Starts direct writes to the channel's socket, `descriptor` (proven by ``SocketDescriptor``). Call when the
    /// channel becomes active, before anything is written.
    func writeDirectly(to descriptor: CInt) {
        precondition(self.inNIO == 0 && !self.unflushed, "direct writes start before anything is written")
        self.descriptor = descriptor
    }

    /// The channel's writability (NIO's water marks).
    var isWritable: Bool { self.context.channel.isWritable }

    /// Writes `buffer` now if the socket takes all of it; otherwise hands (the rest of) it to NIO, unflushed. After a
    /// ``gather(_:)`` and until the next ``flush()``, it gathers too, so that bytes keep their order.
    /// - Returns: Whether a ``flush()`` is needed (bytes gathered or waiting in NIO).
    @inline(__always)
    @discardableResult
    func write(_ buffer: ByteBuffer) -> Bool {
        if !self.gathered.isEmpty {
            return self.gather(buffer)  // after what waits for the flush
        }
        if self.descriptor >= 0 && self.inNIO == 0 {
            assert(self.context.channel.isActive, "a direct write after the channel closed")
            let written = buffer.withUnsafeReadableBytes { bytes in
                send(self.descriptor, bytes.baseAddress, bytes.count, Self.sendFlags)
            }
            if written == buffer.readableBytes {
                return false
            }
            if written > 0 {
                self.enqueue(buffer.getSlice(at: buffer.readerIndex + written, length: buffer.readableBytes - written)!)
                return true
            }
            // EAGAIN: NIO waits for room. Any other error: NIO's write meets it, reports it and closes.
        }
        self.enqueue(buffer)
        return true
    }

    /// Adds `buffer` to what goes out at the next ``flush()``: with the other gathered buffers in one `sendmsg`
    /// straight to the socket, or after what NIO holds.
    /// - Returns: true: call ``flush()``.
    @inline(__always)
    @discardableResult
    func gather(_ buffer: ByteBuffer) -> Bool {
        if self.descriptor >= 0 && self.inNIO == 0 && self.gathered.count < Self.maxGather {
            self.gathered.append(buffer)
        } else {
            self.enqueue(buffer)
        }
        return true
    }

    /// Hands `buffer` to NIO, to go out at the next ``flush()`` after what NIO holds (several writes then go out in
    /// one `writev`).
    func enqueue(_ buffer: ByteBuffer) {
        if !self.gathered.isEmpty {
            self.enqueueGathered(from: 0, skippingBytes: 0)  // they come first
        }
        if self.descriptor >= 0 {
            self.stats.queuedWrites.add(1, ordering: .relaxed)
        }
        self.unflushed = true
        guard self.descriptor >= 0 else {
            self.context.write(NIOAny(buffer), promise: nil)
            return
        }
        self.inNIO += 1
        let promise = self.context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { _ in
            self.inNIO -= 1
        }
        self.context.write(NIOAny(buffer), promise: promise)
    }

    /// Writes what was gathered and flushes what NIO holds.
    @inline(__always)
    func flush() {
        if !self.gathered.isEmpty {
            self.writeGathered()
        }
        if self.unflushed {
            self.unflushed = false
            self.context.flush()
        }
    }

    /// ``write(_:)`` and ``flush()``.
    func writeAndFlush(_ buffer: ByteBuffer) {
        if self.write(buffer) {
            self.flush()
        }
    }

    /// Closes the connection once every byte written so far has reached the socket, or after the close timeout if
    /// the peer does not read them (a connection must not stay open forever for a client that stopped reading).
    func closeWhenWritten() {
        self.flush()
        guard self.inNIO > 0 || self.descriptor < 0 else {
            self.context.close(promise: nil)
            return
        }
        let context = self.context
        let loop = context.eventLoop.assumeIsolatedUnsafeUnchecked()
        let deadline = loop.scheduleTask(in: self.closeTimeout) {
            context.close(promise: nil)
        }
        context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolatedUnsafeUnchecked().whenComplete { _ in
            deadline.cancel()
            context.close(promise: nil)
        }
    }

    /// Closes the connection now; bytes gathered or held by NIO are dropped.
    func close() {
        self.gathered.removeAll()
        self.context.close(promise: nil)
    }

    /// Stops direct writes for good: the channel went inactive (its descriptor may be reused). Gathered bytes are
    /// dropped, as NIO drops what it holds.
    func detach() {
        self.descriptor = -1
        self.gathered.removeAll()
    }

    /// Writes the gathered buffers with one `sendmsg`; what the socket does not take goes to NIO.
    private func writeGathered() {
        assert(self.descriptor >= 0 && self.inNIO == 0)
        assert(self.context.channel.isActive, "a direct write after the channel closed")
        let count = self.gathered.count
        var total = 0
        let written = withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors -> Int in
            for index in 0..<count {
                // The array holds each buffer, and so its storage, for the duration of the call.
                self.gathered[index].withUnsafeReadableBytesWithStorageManagement { bytes, _ in
                    vectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                    total += bytes.count
                }
            }
            var message = msghdr()
            message.msg_iov = vectors.baseAddress
            message.msg_iovlen = numericCast(count)
            return sendmsg(self.descriptor, &message, Self.sendFlags)
        }
        if written == total {
            self.clearGathered()
            return
        }
        // Partial, EAGAIN or an error: the rest goes to NIO (see ``write(_:)``).
        var skip = max(written, 0)
        var first = 0
        while first < count && skip >= self.gathered[first].readableBytes {
            skip -= self.gathered[first].readableBytes
            first += 1
        }
        self.enqueueGathered(from: first, skippingBytes: skip)
    }

    /// Moves the gathered buffers from index `first` on (less `skippingBytes` of the first) to NIO.
    private func enqueueGathered(from first: Int, skippingBytes: Int) {
        let buffers = self.gathered
        self.clearGathered()
        for index in first..<buffers.count {
            var buffer = buffers[index]
            if index == first && skippingBytes > 0 {
                buffer.moveReaderIndex(forwardBy: skippingBytes)
            }
            self.enqueue(buffer)
        }
    }

    /// Empties the gathered list, keeping a small capacity for the next burst.
    private func clearGathered() {
        self.gathered.removeAll(keepingCapacity: self.gathered.count <= 16)
    }

    #if os(Linux)
    private static let sendFlags = CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT)
    #else
    private static let sendFlags = CInt(MSG_DONTWAIT)  // NIO sets SO_NOSIGPIPE on Darwin sockets
    #endif
}

@available(*, unavailable)
extension ConnectionWriter: Sendable {}
