import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one connection's outbound bytes, in order: straight to its socket with one `send(2)` while none of its bytes
/// wait in NIO, otherwise through the channel pipeline. Confined to the connection's event loop.
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
/// Direct writes are used only where the pipeline does not transform outbound bytes (plain HTTP: one handler) and
/// the descriptor was proven (``SocketDescriptor``). The descriptor is given up (``detach()``) when the channel goes
/// inactive. Between NIO closing the socket and that event, NIO runs only its own code and the callbacks of failed
/// write promises and of the close promise; none of those writes here (the callbacks this module registers close
/// the connection), so a descriptor number reused by another connection is never written to.
final class ConnectionWriter {
    private let context: ChannelHandlerContext
    /// The socket's descriptor while direct writes are allowed; -1 otherwise.
    private var descriptor: CInt
    /// Writes handed to NIO and not completed yet. While any is, new bytes go to NIO too.
    private var inNIO = 0
    /// NIO holds writes not flushed yet.
    private var unflushed = false
    private let stats: GatewayStats

    /// Creates a writer that writes through NIO until ``writeDirectly(to:)``.
    /// - Parameters:
    ///   - context: The context of the connection's (only) handler.
    ///   - stats: Counts writes that could not go straight to the socket.
    init(context: ChannelHandlerContext, stats: GatewayStats) {
        self.context = context
        self.descriptor = -1
        self.stats = stats
    }

    /// Starts direct writes to the channel's socket, `descriptor` (proven by ``SocketDescriptor``). Call when the
    /// channel becomes active, before anything is written.
    func writeDirectly(to descriptor: CInt) {
        precondition(self.inNIO == 0 && !self.unflushed, "direct writes start before anything is written")
        self.descriptor = descriptor
    }

    /// Whether writes go straight to the socket when it has room.
    var writesDirectly: Bool { self.descriptor >= 0 }

    /// The channel's writability (NIO's water marks).
    var isWritable: Bool { self.context.channel.isWritable }

    /// Writes `buffer` now if the socket takes all of it; otherwise hands (the rest of) it to NIO, unflushed.
    /// - Returns: Whether NIO holds bytes to flush (call ``flush()``).
    @inline(__always)
    @discardableResult
    func write(_ buffer: ByteBuffer) -> Bool {
        if self.descriptor >= 0 {
            if self.inNIO == 0 {
                assert(self.context.channel.isActive, "a direct write after the channel closed")
                let written = buffer.withUnsafeReadableBytes { bytes in
                    send(self.descriptor, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT))
                }
                if written == buffer.readableBytes {
                    return false
                }
                if written > 0 {
                    self.stats.queuedWrites.add(1, ordering: .relaxed)
                    self.enqueue(buffer.getSlice(at: buffer.readerIndex + written, length: buffer.readableBytes - written)!)
                    return true
                }
                // EAGAIN: NIO waits for room. Any other error: NIO's write meets it, reports it and closes.
            }
            self.stats.queuedWrites.add(1, ordering: .relaxed)
        }
        self.enqueue(buffer)
        return true
    }

    /// Hands `buffer` to NIO, to go out at the next ``flush()`` after what NIO holds (several writes then go out in
    /// one `writev`).
    func enqueue(_ buffer: ByteBuffer) {
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

    /// Flushes what NIO holds, if anything.
    @inline(__always)
    func flush() {
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

    /// Closes the connection once every byte written so far has reached the socket.
    func closeWhenWritten() {
        self.flush()
        guard self.inNIO > 0 || self.descriptor < 0 else {
            self.context.close(promise: nil)
            return
        }
        let context = self.context
        context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolatedUnsafeUnchecked().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Closes the connection now; bytes NIO still holds are dropped.
    func close() {
        self.context.close(promise: nil)
    }

    /// Stops direct writes for good: the channel went inactive (its descriptor may be reused).
    func detach() {
        self.descriptor = -1
    }
}

@available(*, unavailable)
extension ConnectionWriter: Sendable {}
