/// The delivery state of one subscription: it makes resume exact and delivery exactly-once.
///
/// A subscription registers for live messages first and asks the broker for its replay second, so that nothing
/// published in between is missed; live messages that arrive before the replay are held (up to a bound) and every
/// message is delivered only if its id is above the channel's position. The machine is a value type with no I/O;
/// the transport runs what it returns.
public struct SubscriptionStateMachine: Sendable {
    private enum State: Sendable {
        case catchingUp(held: [(Message, Int)])
        case live
        case closed
    }

    /// The channels, in canonical order.
    public let channels: [ChannelName]
    /// One position per channel: every message with an id at or below it was delivered (or reported as a gap).
    public private(set) var positions: [UInt64]
    private var state: State
    private let maxHeld: Int
    private let cursor: Cursor?

    /// Creates the machine for a new subscription.
    /// - Parameters:
    ///   - channels: The subscription's channels in canonical order.
    ///   - cursor: The client's resume cursor, if any.
    ///   - maxHeld: The most live messages held while the replay is pending; more is an overflow.
    public init(channels: [ChannelName], cursor: Cursor?, maxHeld: Int = 4096) {
        self.channels = channels
        self.cursor = cursor
        self.positions = Array(repeating: 0, count: channels.count)
        self.state = .catchingUp(held: [])
        self.maxHeld = maxHeld
    }

    /// The cursor that resumes after everything delivered so far.
    public var currentCursor: Cursor { Cursor(positions: self.positions) }

    /// Whether the replay has been applied.
    public var isLive: Bool {
        if case .live = self.state { return true }
        return false
    }

    /// The cursor position for each channel to ask the broker for, or `nil` for live-only (no cursor). A cursor
    /// for another set of channels asks for everything retained (position 0), which is reported as a gap on every
    /// channel.
    public var requestedPositions: [UInt64]? {
        guard let cursor else { return nil }
        guard cursor.positions.count == self.channels.count else {
            return Array(repeating: 0, count: self.channels.count)
        }
        return cursor.positions
    }

    /// Whether the client's cursor cannot be matched to these channels.
    public var cursorIsForOtherChannels: Bool {
        guard let cursor else { return false }
        return cursor.positions.count != self.channels.count
    }

    /// The result of receiving a live message.
    public enum ReceiveAction: Sendable, Equatable {
        /// Deliver it now.
        case deliver
        /// Nothing to do (held for after the replay, or already delivered).
        case none
        /// Too many messages held while catching up: close the subscription.
        case overflow
    }

    /// A live message for the channel at `channelIndex`.
    public mutating func receive(_ message: Message, channelIndex: Int) -> ReceiveAction {
        switch self.state {
        case .live:
            guard message.id > self.positions[channelIndex] else { return .none }
            self.positions[channelIndex] = message.id
            return .deliver
        case .catchingUp(var held):
            guard held.count < self.maxHeld else {
                self.state = .closed
                return .overflow
            }
            self.state = .closed  // avoid a copy-on-write of `held` while it is mutated
            held.append((message, channelIndex))
            self.state = .catchingUp(held: held)
            return .none
        case .closed:
            return .none
        }
    }

    /// What to send when the replay arrives.
    public struct CatchUp: Sendable {
        /// Messages to deliver, in order, before any later live message.
        public var messages: [(message: Message, channelIndex: Int)]
        /// Channels for which messages may be missing.
        public var gapChannels: [ChannelName]
    }

    /// Applies the broker's replay (one entry per channel, in canonical order) and goes live. A replay that does not
    /// have one entry per channel (a broker's mistake) is taken as a gap on every channel with nothing to replay.
    public mutating func replayed(_ replays: [ChannelReplay]) -> CatchUp {
        guard case .catchingUp(let held) = self.state else { return CatchUp(messages: [], gapChannels: []) }
        guard replays.count == self.channels.count else {
            return self.replayed(self.positions.map { ChannelReplay(head: $0, messages: [], gap: true) })
        }
        var catchUp = CatchUp(messages: [], gapChannels: [])
        catchUp.messages.reserveCapacity(replays.reduce(held.count) { $0 + $1.messages.count })
        let unknownCursor = self.cursorIsForOtherChannels
        for (index, replay) in replays.enumerated() {
            if replay.gap || unknownCursor { catchUp.gapChannels.append(self.channels[index]) }
            // A gap replay carries every retained message (a cursor from the future would filter them all out).
            var position = replay.gap ? 0 : (self.requestedPositions?[index] ?? 0)
            for message in replay.messages where message.id > position {
                catchUp.messages.append((message, index))
                position = message.id
            }
            self.positions[index] = max(position, replay.head)
        }
        if catchUp.messages.count > 1 && self.channels.count > 1 {
            // Interleave channels by id (ids are publish times), keeping each channel's order.
            catchUp.messages = catchUp.messages.enumerated().sorted {
                ($0.element.message.id, $0.offset) < ($1.element.message.id, $1.offset)
            }.map(\.element)
        }
        self.state = .live
        for (message, index) in held where message.id > self.positions[index] {
            self.positions[index] = message.id
            catchUp.messages.append((message, index))
        }
        return catchUp
    }

    /// Marks the subscription closed; later messages are ignored.
    public mutating func close() {
        self.state = .closed
    }
}
