import CometCore
import NIOCore

/// What a subscription needs from the connection that holds it.
protocol SubscriptionOwner: AnyObject {
    /// A poll subscription wrote its whole response; the connection may serve its next request.
    func subscriptionFinishedResponse(keepAlive: Bool)
    /// A poll subscription waits for live messages: time it out after `seconds` (it then calls ``Subscription/pollTimedOut()``).
    func holdPoll(for seconds: Double)
    /// A stream subscription ended (channel deleted, drain, recycle): `final` is its last bytes, to go out after
    /// everything it sent before.
    func streamEnded(_ subscription: Subscription, final: ByteBuffer)
    /// The broker could not replay for a subscription that has not started: refuse it with `error`.
    func subscriptionFailed(_ subscription: Subscription, error: GatewayError)
}

/// One held subscriber: a stream (SSE, XHR streaming, forever iframe, one channel of a WebSocket) or a long poll
/// (XHR, JSONP). Confined to its connection's event loop.
///
/// It runs a ``SubscriptionStateMachine`` (exact resume, exactly-once delivery) and writes through its connection's
/// ``ConnectionOutbound``. What it writes comes from its transport (``StreamTransport``, ``PollTransport``). On the
/// hot path (``receive(_:channelIndex:)``) a one-channel stream writes the message's shared frame for its transport
/// and nothing else: no allocation, no lock.
final class Subscription: HubSubscriber, HeartbeatReceiver {
    let channels: [ChannelName]
    let shard: LoopShard
    /// This subscription's index in each channel's entry list of ``shard`` (maintained by the shard).
    var slots: [Int]
    /// Index in the shard's heartbeat list, or -1.
    var heartbeatSlot = -1

    let transport: SubscriberTransport
    let kind: SubscriberKind
    /// Whether the transport is a stream (read once per message; the transport itself is not touched then).
    let isStream: Bool
    /// The shared frame a one-channel stream writes per message.
    private let format: WireFormat
    var machine: SubscriptionStateMachine
    let outbound: ConnectionOutbound
    unowned let owner: any SubscriptionOwner
    private let hub: Hub
    let singleChannel: Bool
    var keepAlive: Bool
    var extraHeaders: [(String, String)]
    let maxOutboundBytes: Int
    /// Bytes of messages after which a stream ends with a reconnect (the transport's ``StreamTransport/recycleBytes``).
    private let recycleBytes: Int
    private var streamedBytes = 0
    private(set) var registered = false
    private var flushScheduled = false
    private var wroteSinceHeartbeat = false
    /// Heartbeat ticks counted towards the transport's ``HeartbeatPace``.
    private var quietTicks = 0
    var pollBatch: [(message: Message, channelIndex: Int)] = []
    /// Payload bytes (JSON) held in `pollBatch` while parked.
    var parkedBytes = 0
    /// The positions the last poll response told the client (its `last_event_id`), on several channels.
    var answeredPositions: [UInt64] = []
    /// The same on a single channel, kept in this object: checking a resumed poll then touches no other memory (and
    /// the state machine's positions are not shared, so receiving the next message copies nothing).
    var answeredPosition: UInt64 = 0
    /// The first channel (on a single channel, the only one), kept in this object for the same reason.
    let firstChannel: ChannelName
    /// A poll answered on a keep-alive connection that stays registered, collecting messages for the next poll.
    var isParked = false
    /// Whether the subscription ended (closed, answered, or its connection went away).
    private(set) var isFinished = false

    /// - Parameters:
    ///   - channels: The channels, in cursor order.
    ///   - cursor: The client's cursor, if any.
    ///   - transport: What the subscription writes.
    ///   - outbound: The connection's outbound side.
    init(
        channels: [ChannelName],
        cursor: Cursor?,
        transport: SubscriberTransport,
        shard: LoopShard,
        outbound: ConnectionOutbound,
        owner: any SubscriptionOwner,
        hub: Hub,
        keepAlive: Bool,
        extraHeaders: [(String, String)],
        maxOutboundBytes: Int
    ) {
        self.channels = channels
        self.firstChannel = channels[0]
        self.transport = transport
        switch transport {
        case .stream(let stream): self.kind = stream.kind
        case .poll(let poll): self.kind = poll.kind
        case .gripResponse: self.kind = .gripResponse
        }
        switch transport {
        case .stream(let stream):
            self.isStream = true
            self.format = stream.format
            self.recycleBytes = stream.recycleBytes ?? .max
        case .poll, .gripResponse:
            self.isStream = false
            self.format = .ndjsonLine
            self.recycleBytes = .max
        }
        self.shard = shard
        self.slots = Array(repeating: -1, count: channels.count)
        self.machine = SubscriptionStateMachine(channels: channels, cursor: cursor)
        self.outbound = outbound
        self.owner = owner
        self.hub = hub
        self.singleChannel = channels.count == 1
        self.keepAlive = keepAlive
        self.extraHeaders = extraHeaders
        self.maxOutboundBytes = maxOutboundBytes
    }

    /// The positions to replay from (nil: live only).
    var requestedPositions: [UInt64]? { self.machine.requestedPositions }

    /// Registers for live messages. Call before asking the broker for the replay.
    func register() {
        self.registered = true
        self.hub.add(self, on: self.shard)
    }

    private func unregister() {
        if self.registered {
            self.registered = false
            self.hub.remove(self, on: self.shard)
        }
    }

    // MARK: - Start

    /// Applies the broker's replay: writes the start and the catch-up, then goes live.
    func replayed(_ replays: [ChannelReplay], pollTimeout: Double) {
        guard !self.isFinished else { return }
        let catchUp = self.machine.replayed(replays)
        switch self.transport {
        case .stream(let stream):
            self.startStream(stream, catchUp)
        case .poll:
            if !catchUp.messages.isEmpty || !catchUp.gapChannels.isEmpty {
                self.respondToPoll(catchUp.messages, gapChannels: catchUp.gapChannels)
            } else {
                self.owner.holdPoll(for: pollTimeout)
            }
        case .gripResponse(let hold):
            if !self.answerHold(catchUp.messages, hold) {
                self.owner.holdPoll(for: Double(hold.timeout))
            }
        }
    }

    private func startStream(_ stream: any StreamTransport, _ catchUp: SubscriptionStateMachine.CatchUp) {
        // Start the running cursor below the catch-up, so that each message carries the cursor just after it: a
        // connection lost midway resumes exactly where it stopped.
        var running = self.machine.positions
        for (message, index) in catchUp.messages.reversed() {
            running[index] = min(running[index], message.id - 1)
        }
        let start = stream.start(StreamStart(
            cursor: Cursor(positions: running).description,
            gapChannels: catchUp.gapChannels,
            date: self.shard.dateCache.current,
            headers: self.extraHeaders
        ))
        if stream.heartbeat != nil {
            self.shard.addHeartbeat(self)
        }
        // The start and the catch-up go out together, in one system call: once something is gathered, the writer
        // gathers what follows until the flush.
        self.outbound.writer.gather(start)
        for (message, index) in catchUp.messages {
            running[index] = message.id
            _ = self.writeStreamMessage(message, positions: running)  // gathered: flushed below
        }
        self.outbound.flush()
    }

    // MARK: - Hot path

    /// A live message for the channel at `channelIndex`.
    func receive(_ message: Message, channelIndex: Int) {
        switch self.machine.receive(message, channelIndex: channelIndex) {
        case .none:
            return
        case .overflow:
            self.finish()
            self.outbound.closeAsSlowConsumer()
        case .deliver:
            if self.isStream {
                // Usually written straight to the socket; only gathered bytes or bytes left in NIO need the batch's flush.
                guard self.writeStreamMessage(message, positions: self.machine.positions) else { return }
            } else {
                self.pollBatch.append((message, channelIndex))
                if self.isParked {
                    self.parkedBytes += message.wire.json.readableBytes
                    if self.parkedBytes > self.maxOutboundBytes { self.finish() }  // the next poll uses history
                    return
                }
            }
            if !self.flushScheduled {
                self.flushScheduled = true
                self.shard.needsFlush(self)
            }
        }
    }

    /// Writes one message on a stream: the shared frame (one channel) or the transport's own frame with this
    /// subscription's cursor (several).
    /// - Returns: Whether a flush is needed (bytes gathered or waiting in NIO).
    @inline(__always)
    private func writeStreamMessage(_ message: Message, positions: [UInt64]) -> Bool {
        let frame: ByteBuffer
        if self.singleChannel {
            frame = message.frame(self.format)
        } else {
            guard case .stream(let stream) = self.transport else { return false }
            frame = stream.frame(message, cursor: Cursor(positions: positions).description)
        }
        guard frame.readableBytes > 0 else { return false }  // not for this transport (a GRIP format it lacks)
        self.wroteSinceHeartbeat = true
        let flush = self.send(frame)
        self.streamedBytes &+= frame.readableBytes
        if self.streamedBytes >= self.recycleBytes {
            // The cursor just after this message (during a catch-up the machine's own is already past the replay).
            self.endStream { $0.reconnect(cursor: Cursor(positions: positions).description, retry: 0) }
        }
        return flush
    }

    /// Sends `buffer` unless the connection is held back (not writable) or overflows.
    /// - Returns: Whether a flush is needed (bytes gathered or waiting in NIO).
    @inline(__always)
    private func send(_ buffer: ByteBuffer) -> Bool {
        guard !self.isFinished else { return false }
        switch self.outbound.send(buffer) {
        case .needsFlush:
            return true
        case .sent, .held:
            return false
        case .closed:
            self.finish()  // a slow consumer: the connection is closing
            return false
        }
    }

    /// Called by the shard once per batch in which this subscription was written to.
    func flush() {
        self.flushScheduled = false
        guard !self.isFinished else { return }
        if self.isStream {
            self.outbound.flush()
        } else if !self.isParked {
            self.respondToPollBatch()
        }
    }

    /// Shard heartbeat tick: a heartbeat when the transport's pace says so (usually: nothing was written since the
    /// last tick).
    func heartbeatTick() {
        guard !self.isFinished, case .stream(let stream) = self.transport, let heartbeat = stream.heartbeat else { return }
        let pace = stream.heartbeatPace
        if self.wroteSinceHeartbeat && pace.onlyWhenIdle {
            self.quietTicks = 0
        } else {
            self.quietTicks += 1
        }
        self.wroteSinceHeartbeat = false
        if self.quietTicks >= pace.ticks {
            self.quietTicks = 0
            if self.send(heartbeat) { self.outbound.flush() }
        }
    }

    // MARK: - Endings

    /// The channel was deleted by a publisher: tell the subscriber and end.
    func channelDeleted(_ channel: ChannelName) {
        guard !self.isFinished else { return }
        switch self.transport {
        case .stream:
            self.endStream { $0.closed(channel) }
        case .poll(let poll):
            self.pollChannelDeleted(channel, poll)
        case .gripResponse(let hold):
            self.answerHoldWithHeld(hold, keepAlive: self.keepAlive)
        }
    }

    /// A publisher ended the channel's GRIP streams: a GRIP stream ends; other subscriptions ignore it.
    func streamsClosed(_ channel: ChannelName) {
        guard !self.isFinished, case .stream(let stream) = self.transport, let final = stream.closedByPublisher() else {
            return
        }
        self.finish()
        self.owner.streamEnded(self, final: final)
    }

    /// Never called: a subscription names its channels and is never registered for a wildcard pattern.
    func gap(pattern: ChannelPattern) {}

    /// Messages of `channel` may have been missed (the broker lost them): the subscriber is told as a resume would tell
    /// it. A stream writes its transport's gap notice and goes on; a waiting poll is answered at once with what it has
    /// and the gap; a parked one ends, so that the next poll resumes through its cursor and history (which reports
    /// the gap); a GRIP response hold, which has no such notice, keeps waiting.
    func gap(_ channel: ChannelName) {
        guard !self.isFinished else { return }
        switch self.transport {
        case .stream(let stream):
            let notice = stream.gap(channel)
            if notice.readableBytes > 0, self.send(notice) { self.outbound.flush() }
        case .poll:
            if self.isParked {
                self.finish()
            } else {
                var batch: [(message: Message, channelIndex: Int)] = []
                swap(&batch, &self.pollBatch)
                self.respondToPoll(batch, gapChannels: [channel])
            }
        case .gripResponse:
            break
        }
    }

    /// Graceful shutdown: answer a poll with its cursor, tell a stream to reconnect, then end.
    func quiesce(drainRetry: Int) {
        guard !self.isFinished else { return }
        switch self.transport {
        case .stream:
            self.endStream { $0.reconnect(cursor: self.machine.currentCursor.description, retry: drainRetry) }
        case .poll:
            self.pollQuiesced()
        case .gripResponse(let hold):
            self.answerHoldWithHeld(hold, keepAlive: false)
        }
    }

    /// The broker could not replay: the owner refuses the subscription.
    func replayFailed() {
        guard !self.isFinished else { return }
        self.finish()
        self.owner.subscriptionFailed(self, error: GatewayError(.serviceUnavailable, "broker unavailable"))
    }

    /// Ends a stream with the transport's last bytes.
    private func endStream(_ final: (any StreamTransport) -> ByteBuffer) {
        guard !self.isFinished, case .stream(let stream) = self.transport else { return }
        let bytes = final(stream)
        self.finish()
        self.owner.streamEnded(self, final: bytes)
    }

    /// Ends the subscription without writing (its connection closed, or the client unsubscribed).
    func connectionClosed() {
        self.finish()
    }

    func finish() {
        guard !self.isFinished else { return }
        self.isFinished = true
        self.machine.close()
        self.unregister()
        if self.heartbeatSlot >= 0 {
            self.shard.removeHeartbeat(self)
        }
    }
}

@available(*, unavailable)
extension Subscription: Sendable {}
