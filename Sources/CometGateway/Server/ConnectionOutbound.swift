import CometCore
import NIOCore
import Synchronization

/// The outbound side of one connection that carries subscriptions: its writer, the bounded queue of a slow
/// consumer, and its writability. Every subscription on the connection (one for an HTTP stream or poll, any number
/// on a WebSocket) writes through it, so the bound holds for the connection as a whole. Confined to the
/// connection's event loop.
///
/// While the connection is writable, bytes go straight to the ``ConnectionWriter``; while it is not, they are held
/// (shared buffers, not copies) up to `limits.max_outbound_bytes`, and past that the connection is closed as a slow
/// consumer.
final class ConnectionOutbound {
    /// What became of bytes handed to ``send(_:)``.
    enum SendResult {
        /// Written, or handed to NIO: nothing more to do.
        case sent
        /// Gathered or waiting in NIO: call ``flush()`` (the shard does, once per batch).
        case needsFlush
        /// Held until the connection is writable again.
        case held
        /// Past the bound: the connection was closed as a slow consumer.
        case closed
    }

    let writer: ConnectionWriter
    private var queue: OutboundQueue
    private let shard: LoopShard
    /// The connection was closed as a slow consumer, or ended.
    private(set) var isClosed = false

    init(writer: ConnectionWriter, shard: LoopShard, maxBytes: Int) {
        self.writer = writer
        self.shard = shard
        // Writability is read once here, then tracked from the connection's writability events: querying the
        // channel on every delivery costs more than the rest of the user-space fan-out work.
        self.queue = OutboundQueue(maxBytes: maxBytes, writable: writer.isWritable)
    }

    /// Sends `buffer` unless the connection is held back (not writable) or overflows. Several messages for this
    /// connection in one shard batch are gathered and go out together at the batch's flush.
    @inline(__always)
    func send(_ buffer: ByteBuffer) -> SendResult {
        guard !self.isClosed else { return .closed }
        switch self.queue.enqueue(buffer) {
        case .write:
            let flush = self.shard.coalescing ? self.writer.gather(buffer) : self.writer.write(buffer)
            return flush ? .needsFlush : .sent
        case .held:
            return .held
        case .overflow:
            self.closeAsSlowConsumer()
            return .closed
        }
    }

    /// Closes the connection now, counted as a slow consumer; what is held is dropped.
    func closeAsSlowConsumer() {
        guard !self.isClosed else { return }
        self.shard.stats.slowConsumerCloses.add(1, ordering: .relaxed)
        self.isClosed = true
        self.writer.close()
    }

    /// Sends `buffer` and flushes it (outside a shard batch: a start, a control message, a heartbeat).
    /// - Returns: false when the connection is closed (or was closed as a slow consumer by this call).
    @discardableResult
    func sendNow(_ buffer: ByteBuffer) -> Bool {
        switch self.send(buffer) {
        case .sent, .held: return true
        case .needsFlush:
            self.writer.flush()
            return true
        case .closed: return false
        }
    }

    /// Writes what was gathered or handed to NIO.
    @inline(__always)
    func flush() {
        self.writer.flush()
    }

    /// The channel became writable again (or not): held bytes go out once it is.
    func writabilityChanged(_ writable: Bool) {
        guard let held = self.queue.writabilityChanged(writable), !self.isClosed else { return }
        for buffer in held {
            self.writer.enqueue(buffer)
        }
        self.writer.flush()
    }

    /// Sends `final` after everything held for a lagging client, in order, then closes the connection once it is
    /// written (or after the writer's close timeout if the client does not read it).
    func end(with final: ByteBuffer?) {
        guard !self.isClosed else { return }
        self.isClosed = true
        for buffer in self.queue.takeAll() {
            self.writer.enqueue(buffer)
        }
        if let final {
            self.writer.enqueue(final)
        }
        self.writer.closeWhenWritten()
    }
}

@available(*, unavailable)
extension ConnectionOutbound: Sendable {}
