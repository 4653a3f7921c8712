import NIOCore

/// A bounded outbound buffer for one slow connection.
///
/// NIO's write-buffer water marks only signal: NIO queues whatever is written. While the channel is writable, writes
/// pass straight through; while it is not, they are held here (shared buffers, not copies) up to `maxBytes`, and past
/// that the connection is a slow consumer to close. When the channel becomes writable again the held buffers are
/// written together, with one flush.
public struct OutboundQueue: Sendable {
    private var held: [ByteBuffer] = []  // empty arrays allocate nothing: most connections never hold anything
    /// Bytes held.
    public private(set) var heldBytes = 0
    /// The most bytes held before the connection counts as a slow consumer.
    public let maxBytes: Int
    private var writable = true

    /// Creates an empty queue.
    /// - Parameters:
    ///   - maxBytes: The most bytes held before the connection counts as a slow consumer.
    ///   - writable: The channel's writability now; later changes arrive through ``writabilityChanged(_:)``.
    public init(maxBytes: Int, writable: Bool = true) {
        self.maxBytes = maxBytes
        self.writable = writable
    }

    /// What to do with a buffer to send.
    public enum EnqueueAction: Sendable, Equatable {
        /// Write it to the channel now.
        case write
        /// Held until the channel is writable.
        case held
        /// The bound is exceeded: close the connection.
        case overflow
    }

    /// A buffer to send, given the writability tracked from ``init(maxBytes:writable:)`` and
    /// ``writabilityChanged(_:)`` (no per-write query of the channel on the fan-out path).
    public mutating func enqueue(_ buffer: ByteBuffer) -> EnqueueAction {
        self.enqueue(buffer, channelWritable: true)
    }

    /// A buffer to send; `channelWritable` is the channel's current writability.
    public mutating func enqueue(_ buffer: ByteBuffer, channelWritable: Bool) -> EnqueueAction {
        if self.writable && channelWritable && self.held.isEmpty {
            return .write
        }
        self.writable = false
        guard self.heldBytes + buffer.readableBytes <= self.maxBytes else {
            return .overflow
        }
        self.heldBytes += buffer.readableBytes
        self.held.append(buffer)
        return .held
    }

    /// Takes every held buffer, in order, whatever the writability: for a connection that ends, whose last bytes
    /// wait behind them.
    public mutating func takeAll() -> [ByteBuffer] {
        let buffers = self.held
        self.held = []
        self.heldBytes = 0
        return buffers
    }

    /// The channel's writability changed; returns the held buffers to write (then flush) when it became writable.
    public mutating func writabilityChanged(_ writable: Bool) -> [ByteBuffer]? {
        self.writable = writable
        guard writable, !self.held.isEmpty else { return nil }
        return self.takeAll()
    }
}
