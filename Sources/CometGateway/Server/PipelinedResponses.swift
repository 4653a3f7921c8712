import CometCore
import NIOCore

/// The responses of a publisher connection's pipelined requests while some still wait for the broker, in request
/// order: a response that is ready waits for those before it.
///
/// With a remote broker, a publish is answered when the broker has stored it. Answering one request at a time would
/// make every pipelined publish wait for the previous one's round trip to the broker (and for the event-loop turn
/// that reads its reply): one publish per turn on each connection, and each fanned out alone. Taking the next
/// request while earlier answers wait sends a connection's publishes to the broker together, so they come back and
/// reach subscribers together (one write per subscriber for the lot). At most ``limit`` wait at once; beyond that the
/// connection takes no request until the oldest is answered. Confined to the connection's event loop.
struct PipelinedResponses {
    /// The most responses that may wait at once on one connection.
    static let limit = 32

    /// One answer, in request order.
    enum Slot {
        /// Still waiting for the broker.
        case waiting
        /// A response, serialized when it is written (its last one says whether the connection closes).
        case response(HTTPResponse, onlyHead: Bool, keepAlive: Bool)
        /// Bytes as they are (an interim `100 Continue`, a pre-rendered receipt).
        case bytes(ByteBuffer)
    }

    /// Oldest first.
    private var slots = CircularBuffer<Slot>(initialCapacity: 4)
    /// The ticket of `slots.first`.
    private var firstTicket = 0
    /// Close the connection once every response is written (a `Connection: close` request, draining, idle).
    var closeWhenWritten = false

    /// No response waits: a response is written at once.
    var isEmpty: Bool { self.slots.isEmpty }

    /// Whether ``limit`` responses wait (take no more requests).
    var isFull: Bool { self.slots.count >= Self.limit }

    /// A place for a response that comes later; fill it with ``fill(_:with:)``.
    mutating func reserve() -> Int {
        self.slots.append(.waiting)
        return self.firstTicket + self.slots.count - 1
    }

    /// An answer that is ready, after those that wait.
    mutating func append(_ slot: Slot) {
        self.slots.append(slot)
    }

    /// The answer for `ticket` arrived.
    mutating func fill(_ ticket: Int, with slot: Slot) {
        let index = ticket - self.firstTicket
        guard index >= 0, index < self.slots.count else { return }
        self.slots[self.slots.index(self.slots.startIndex, offsetBy: index)] = slot
    }

    /// The oldest answer if it is ready (write it), in order.
    mutating func popReady() -> Slot? {
        guard let first = self.slots.first else { return nil }
        if case .waiting = first { return nil }
        self.slots.removeFirst()
        self.firstTicket += 1
        return first
    }
}
