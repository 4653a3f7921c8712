import CometCore
import NIOCore
import Synchronization

/// What a subscription needs from the connection that holds it.
protocol SubscriptionOwner: AnyObject {
    /// A poll subscription wrote its whole response; the connection may serve its next request.
    func subscriptionFinishedResponse(keepAlive: Bool)
    /// A poll subscription waits for live messages: time it out after `seconds` (it then calls ``Subscription/pollTimedOut()``).
    func holdPoll(for seconds: Double)
}

/// One held subscriber: an SSE or XHR stream, or a pending long poll. Confined to its connection's event loop.
///
/// It runs a ``SubscriptionStateMachine`` (exact resume, exactly-once delivery) and writes through a bounded
/// ``OutboundQueue``. On the hot path (``receive(_:channelIndex:)``) a single-channel stream writes the message's
/// shared pre-encoded buffer and nothing else: no allocation, no lock.
final class Subscription {
    let channels: [ChannelName]
    let transport: TransportKind
    let shard: LoopShard
    /// This subscription's index in each channel's entry list of ``shard`` (maintained by the shard).
    var slots: [Int]
    /// Index in the shard's stream list, or -1.
    var streamSlot = -1

    private var machine: SubscriptionStateMachine
    private var queue: OutboundQueue
    private let writer: ConnectionWriter
    private unowned let owner: any SubscriptionOwner
    private let hub: Hub
    private let singleChannel: Bool
    private var keepAlive: Bool
    private var extraHeaders: [(String, String)]
    private let sseRetry: Int
    private let maxOutboundBytes: Int
    private var registered = false
    private var flushScheduled = false
    private var wroteSinceHeartbeat = false
    private var pollBatch: [(message: Message, channelIndex: Int)] = []
    /// Payload bytes (JSON) held in `pollBatch` while parked.
    private var parkedBytes = 0
    /// The positions the last poll response told the client (its `last_event_id`), on several channels.
    private var answeredPositions: [UInt64] = []
    /// The same on a single channel, kept in this object: checking a resumed poll then touches no other memory (and
    /// the state machine's positions are not shared, so receiving the next message copies nothing).
    private var answeredPosition: UInt64 = 0
    /// The first channel (on a single channel, the only one), kept in this object for the same reason.
    private let firstChannel: ChannelName
    /// A poll answered on a keep-alive connection that stays registered, collecting messages for the next poll.
    private(set) var isParked = false
    /// Whether the subscription ended (closed, answered, or its connection went away).
    private(set) var isFinished = false

    init(
        request: SubscribeRequest,
        shard: LoopShard,
        writer: ConnectionWriter,
        owner: any SubscriptionOwner,
        hub: Hub,
        keepAlive: Bool,
        extraHeaders: [(String, String)],
        maxOutboundBytes: Int,
        sseRetry: Int
    ) {
        self.channels = request.channels
        self.firstChannel = request.channels[0]
        self.transport = request.transport
        self.shard = shard
        self.slots = Array(repeating: -1, count: request.channels.count)
        self.machine = SubscriptionStateMachine(channels: request.channels, cursor: request.cursor)
        // Writability is read once here, then tracked from the connection's writability events: querying the
        // channel on every delivery costs more than the rest of the user-space fan-out work.
        self.queue = OutboundQueue(maxBytes: maxOutboundBytes, writable: writer.isWritable)
        self.writer = writer
        self.owner = owner
        self.hub = hub
        self.singleChannel = request.channels.count == 1
        self.keepAlive = keepAlive
        self.extraHeaders = extraHeaders
        self.sseRetry = sseRetry
        self.maxOutboundBytes = maxOutboundBytes
    }

    /// The positions to replay from (nil: live only).
    var requestedPositions: [UInt64]? { self.machine.requestedPositions }

    /// Registers for live messages. Call before asking the broker for the replay.
    func register() {
        self.registered = true
        self.hub.add(self)
    }

    private func unregister() {
        if self.registered {
            self.registered = false
            self.hub.remove(self)
        }
    }

    // MARK: - Start

    /// Applies the broker's replay: writes the response start and the catch-up, then goes live.
    func replayed(_ replays: [ChannelReplay], pollTimeout: Double) {
        guard !self.isFinished else { return }
        let catchUp = self.machine.replayed(replays)
        switch self.transport.connectionKind {
        case .stream:
            self.startStream(catchUp)
        case .poll:
            if !catchUp.messages.isEmpty || !catchUp.gapChannels.isEmpty {
                self.respondToPoll(catchUp.messages, gapChannels: catchUp.gapChannels)
            } else {
                self.owner.holdPoll(for: pollTimeout)
            }
        }
    }

    private func startStream(_ catchUp: SubscriptionStateMachine.CatchUp) {
        // Start the running cursor below the catch-up, so that each message carries the cursor just after it: a
        // connection lost midway resumes exactly where it stopped.
        var running = self.machine.positions
        for (message, index) in catchUp.messages.reversed() {
            running[index] = min(running[index], message.id - 1)
        }
        var start = ByteBuffer()
        HTTPResponse.writeHead(
            status: 200,
            phrase: "OK",
            headers: [("Cache-Control", "no-cache, no-store"), ("X-Accel-Buffering", "no")] + self.extraHeaders,
            contentType: self.transport.contentType,
            contentLength: nil,
            keepAlive: false,
            date: self.shard.dateCache.current,
            into: &start
        )
        let startCursor = Cursor(positions: running).description
        switch self.transport {
        case .sse:
            start.writeStaticString("retry: ")
            start.writeString(String(self.sseRetry))
            start.writeStaticString("\n")
            SSEEncoding.writeIDAndEnd(startCursor, into: &start)
            if !catchUp.gapChannels.isEmpty {
                start.writeImmutableBuffer(SSEEncoding.controlEvent("gap", json: Self.gapJSON(catchUp.gapChannels)))
            }
        default:
            start.writeStaticString("{\"last_event_id\":\"")
            start.writeString(startCursor)
            start.writeStaticString("\"}\n")
            if !catchUp.gapChannels.isEmpty {
                start.writeStaticString("{\"gap\":true,\"channels\":")
                start.writeString(Self.channelsJSON(catchUp.gapChannels))
                start.writeStaticString("}\n")
            }
        }
        // The start and the catch-up go out together, in one system call: once something is gathered, the writer
        // gathers what follows until the flush.
        self.writer.gather(start)
        for (message, index) in catchUp.messages {
            running[index] = message.id
            _ = self.writeStreamMessage(message, positions: running)  // gathered: flushed below
        }
        self.writer.flush()
    }

    // MARK: - Hot path

    /// A live message for the channel at `channelIndex`.
    @inline(__always)
    func receive(_ message: Message, channelIndex: Int) {
        switch self.machine.receive(message, channelIndex: channelIndex) {
        case .none:
            return
        case .overflow:
            self.closeSlowConsumer()
        case .deliver:
            switch self.transport.connectionKind {
            case .stream:
                // Usually written straight to the socket; only gathered bytes or bytes left in NIO need the batch's flush.
                guard self.writeStreamMessage(message, positions: self.machine.positions) else { return }
            case .poll:
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

    /// Writes one message on a stream. Single channel: the shared buffer. Several: the shared SSE fields and this
    /// subscription's cursor, or its own NDJSON line around the shared JSON.
    /// - Returns: Whether a flush is needed (bytes gathered or waiting in NIO).
    @inline(__always)
    private func writeStreamMessage(_ message: Message, positions: [UInt64]) -> Bool {
        self.wroteSinceHeartbeat = true
        if self.singleChannel {
            return self.send(self.transport == .sse ? message.wire.sse : message.wire.jsonLine)
        }
        let cursor = Cursor(positions: positions).description
        var own: ByteBuffer
        if self.transport == .sse {
            own = message.wire.sseFields
            SSEEncoding.writeIDAndEnd(cursor, into: &own)  // copies the shared fields: one write, not two
        } else {
            own = ByteBuffer()
            own.writeStaticString("{\"id\":\"")
            own.writeString(cursor)
            own.writeImmutableBuffer(message.wire.jsonAfterID)
            own.writeStaticString("\n")
        }
        return self.send(own)
    }

    /// Sends `buffer` unless the connection is held back (not writable) or overflows.
    /// - Returns: Whether a flush is needed (bytes gathered or waiting in NIO).
    @inline(__always)
    @discardableResult
    private func send(_ buffer: ByteBuffer) -> Bool {
        guard !self.isFinished else { return false }
        switch self.queue.enqueue(buffer) {
        case .write:
            // Several messages for this connection in one batch go out together at the batch's flush.
            if self.shard.coalescing {
                return self.writer.gather(buffer)
            }
            return self.writer.write(buffer)
        case .held:
            return false
        case .overflow:
            self.closeSlowConsumer()
            return false
        }
    }

    /// Called by the shard once per batch in which this subscription was written to.
    func flush() {
        self.flushScheduled = false
        guard !self.isFinished else { return }
        switch self.transport.connectionKind {
        case .stream:
            self.writer.flush()
        case .poll:
            guard !self.isParked else { return }
            self.respondToPollBatch()
        }
    }

    // MARK: - Parking between polls

    /// Whether `request`, the next request on this subscription's connection, continues this parked poll: the
    /// same channels and exactly the cursor the last response gave. Then every message after that cursor is in this
    /// subscription's batch or still to come, so the poll needs neither a registration nor a replay.
    func canResume(_ request: SubscribeRequest) -> Bool {
        guard self.isParked, !self.isFinished, request.transport == .poll, let cursor = request.cursor else { return false }
        if self.singleChannel {
            return request.channels.count == 1 && cursor.positions.count == 1
                && cursor.positions[0] == self.answeredPosition && request.channels[0] == self.firstChannel
        }
        return request.channels == self.channels && cursor.positions == self.answeredPositions
    }

    /// Continues a parked poll for the next request: answers at once with what arrived since the last response,
    /// or waits for up to `pollTimeout` seconds.
    func resume(pollTimeout: Double, keepAlive: Bool, extraHeaders: [(String, String)]) {
        precondition(self.isParked, "only a parked poll resumes")
        self.isParked = false
        self.parkedBytes = 0
        self.keepAlive = keepAlive
        self.extraHeaders = extraHeaders
        if self.pollBatch.isEmpty {
            self.owner.holdPoll(for: pollTimeout)
        } else {
            self.respondToPollBatch()
        }
    }

    /// Answers the poll with the messages collected in `pollBatch`. The batch is taken out first (answering can
    /// start the connection's next, pipelined, poll on this subscription), and its storage is reused afterwards,
    /// unless a large batch made it large.
    private func respondToPollBatch() {
        var batch: [(message: Message, channelIndex: Int)] = []
        swap(&batch, &self.pollBatch)
        self.respondToPoll(batch, gapChannels: [])
        if self.pollBatch.isEmpty && self.pollBatch.capacity == 0 && batch.capacity <= 16 {
            batch.removeAll(keepingCapacity: true)
            self.pollBatch = batch
        }
    }

    /// The channel became writable again (or not).
    func writabilityChanged(_ writable: Bool) {
        guard let held = self.queue.writabilityChanged(writable), !self.isFinished else { return }
        for buffer in held {
            self.writer.enqueue(buffer)
        }
        self.writer.flush()
    }

    /// Shard heartbeat tick: a heartbeat when nothing was written since the last tick.
    func heartbeatTick() {
        guard !self.isFinished else { return }
        if !self.wroteSinceHeartbeat {
            if self.send(self.transport == .sse ? SSEEncoding.heartbeat : Self.ndjsonHeartbeat) {
                self.writer.flush()
            }
        }
        self.wroteSinceHeartbeat = false
    }

    // MARK: - Endings

    private func respondToPoll(_ messages: [(message: Message, channelIndex: Int)], gapChannels: [ChannelName]) {
        guard !self.isFinished else { return }
        if self.keepAlive && self.registered {
            // Stay registered for the connection's next poll (see ``canResume(_:)``).
            self.isParked = true
            if self.singleChannel {
                self.answeredPosition = self.machine.positions[0]
            } else {
                self.answeredPositions = self.machine.positions
            }
        } else {
            self.finish()
        }
        let keepAlive = self.keepAlive
        let bytes: ByteBuffer
        if self.singleChannel, let last = messages.last, gapChannels.isEmpty, self.extraHeaders.isEmpty,
           self.machine.positions[0] == last.message.id {
            // The common answer, to a poller that was caught up: the same bytes for every poller of the channel on this
            // loop that gets the same messages, rendered once.
            bytes = self.shard.pollResponses.response(for: messages, keepAlive: keepAlive,
                                                      dateCache: self.shard.dateCache) { date in
                Self.renderPollResponse(messages, gapChannels: [], positions: self.machine.positions, channelCount: 1,
                                        headers: Self.noCacheHeaders, keepAlive: keepAlive, date: date)
            }
        } else {
            bytes = Self.renderPollResponse(messages, gapChannels: gapChannels, positions: self.machine.positions,
                                            channelCount: self.channels.count, headers: self.pollHeaders,
                                            keepAlive: keepAlive, date: self.shard.dateCache.current)
        }
        self.writeFinal(bytes, keepAlive: keepAlive)
    }

    /// A complete poll response: `{"messages":[…],"last_event_id":"CURSOR"}`, plus the gap fields when there was one.
    /// On several channels each message carries the cursor just after it.
    private static func renderPollResponse(
        _ messages: [(message: Message, channelIndex: Int)],
        gapChannels: [ChannelName],
        positions: [UInt64],
        channelCount: Int,
        headers: [(String, String)],
        keepAlive: Bool,
        date: String
    ) -> ByteBuffer {
        let singleChannel = channelCount == 1
        var capacity = 64 + 21 * channelCount
        for (message, _) in messages {
            capacity += message.wire.json.readableBytes + 1 + (singleChannel ? 0 : 21 * channelCount)
        }
        return HTTPResponse.serialize(
            status: 200, phrase: "OK", headers: headers, contentType: HTTPResponse.jsonContentType,
            keepAlive: keepAlive, date: date, bodyCapacity: capacity
        ) { body in
            body.writeStaticString("{\"messages\":[")
            var running = positions
            if !singleChannel {
                for (message, index) in messages.reversed() { running[index] = min(running[index], message.id - 1) }
            }
            for (offset, (message, index)) in messages.enumerated() {
                if offset > 0 { body.writeStaticString(",") }
                if singleChannel {
                    body.writeImmutableBuffer(message.wire.json)
                } else {
                    running[index] = message.id
                    body.writeStaticString("{\"id\":\"")
                    Cursor.write(running, into: &body)
                    body.writeImmutableBuffer(message.wire.jsonAfterID)
                }
            }
            body.writeStaticString("],\"last_event_id\":\"")
            Cursor.write(positions, into: &body)
            body.writeStaticString("\"")
            if !gapChannels.isEmpty {
                body.writeStaticString(",\"gap\":true,\"gap_channels\":")
                body.writeString(Self.channelsJSON(gapChannels))
            }
            body.writeStaticString("}")
        }
    }

    private var pollHeaders: [(String, String)] {
        self.extraHeaders.isEmpty ? Self.noCacheHeaders : Self.noCacheHeaders + self.extraHeaders
    }

    private static let noCacheHeaders = [("Cache-Control", "no-cache, no-store")]

    private func writeFinalPollResponse(_ response: HTTPResponse, keepAlive: Bool? = nil) {
        let keepAlive = (keepAlive ?? self.keepAlive) && !response.close
        self.writeFinal(response.serialize(keepAlive: keepAlive, date: self.shard.dateCache.current), keepAlive: keepAlive)
    }

    /// Writes a poll's whole response, then hands the connection back (or closes it).
    private func writeFinal(_ response: ByteBuffer, keepAlive: Bool) {
        self.writer.writeAndFlush(response)
        if !keepAlive {
            self.writer.closeWhenWritten()
        }
        self.owner.subscriptionFinishedResponse(keepAlive: keepAlive)
    }

    /// The poll's hold time passed without a message: answer with an empty batch and the cursor.
    func pollTimedOut() {
        self.respondToPoll([], gapChannels: [])
    }

    /// The channel was deleted by a publisher: tell the subscriber and end.
    func channelDeleted(_ channel: ChannelName) {
        guard !self.isFinished else { return }
        let json = "{\"closed\":true,\"channel\":\"\(channel.rawValue)\"}"
        switch self.transport {
        case .sse:
            self.send(SSEEncoding.controlEvent("close", json: json))
            self.endStream()
        case .stream:
            self.send(ByteBuffer(string: json + "\n"))
            self.endStream()
        case .poll:
            guard !self.isParked else {
                self.finish()  // no request is waiting; the next poll starts afresh
                return
            }
            self.finish()
            var body = ByteBuffer(string: "{\"closed\":true,\"channel\":\"\(channel.rawValue)\",\"last_event_id\":\"")
            Cursor.write(self.machine.positions, into: &body)
            body.writeStaticString("\"}")
            self.writeFinalPollResponse(HTTPResponse.json(410, "Gone", body, headers: self.pollHeaders))
        }
    }

    /// Graceful shutdown: answer a poll with its cursor, tell a stream to reconnect, then end.
    func quiesce(drainRetry: Int) {
        guard !self.isFinished else { return }
        switch self.transport {
        case .sse:
            var buffer = SSEEncoding.retry(milliseconds: drainRetry)
            buffer.writeImmutableBuffer(SSEEncoding.controlEvent("reconnect", json: "{\"reason\":\"shutdown\"}"))
            self.send(buffer)
            self.endStream()
        case .stream:
            self.send(ByteBuffer(string: "{\"reconnect\":true,\"last_event_id\":\"\(self.machine.currentCursor)\"}\n"))
            self.endStream()
        case .poll:
            self.finish()
            var body = ByteBuffer(string: "{\"messages\":[],\"last_event_id\":\"")
            Cursor.write(self.machine.positions, into: &body)
            body.writeStaticString("\"}")
            var response = HTTPResponse.json(200, "OK", body, headers: self.pollHeaders)
            response.close = true
            self.writeFinalPollResponse(response, keepAlive: false)
        }
    }

    /// The broker could not replay: answer 503 (poll) or end the stream.
    func replayFailed() {
        guard !self.isFinished else { return }
        self.finish()
        var response = HTTPResponse(error: GatewayError(.serviceUnavailable, "broker unavailable"), close: true)
        response.headers.append(("Retry-After", "1"))
        self.writeFinalPollResponse(response, keepAlive: false)
    }

    private func closeSlowConsumer() {
        guard !self.isFinished else { return }
        self.shard.stats.slowConsumerCloses.add(1, ordering: .relaxed)
        self.finish()
        self.writer.close()
    }

    private func endStream() {
        self.finish()
        // What waits for a lagging subscriber to read (and the final event behind it) still goes out, in order,
        // through NIO's queue; the connection closes once it is written (close() alone would drop it), or after the
        // writer's close timeout if the subscriber does not read it.
        for buffer in self.queue.takeAll() {
            self.writer.enqueue(buffer)
        }
        self.writer.closeWhenWritten()
    }

    /// Ends the subscription without writing (its connection closed).
    func connectionClosed() {
        self.finish()
    }

    private func finish() {
        guard !self.isFinished else { return }
        self.isFinished = true
        self.machine.close()
        self.unregister()
    }

    private static let ndjsonHeartbeat = ByteBuffer(string: "\n")

    private static func channelsJSON(_ channels: [ChannelName]) -> String {
        "[" + channels.map { "\"\($0.rawValue)\"" }.joined(separator: ",") + "]"
    }

    private static func gapJSON(_ channels: [ChannelName]) -> String {
        "{\"channels\":\(channelsJSON(channels))}"
    }
}

@available(*, unavailable)
extension Subscription: Sendable {}
