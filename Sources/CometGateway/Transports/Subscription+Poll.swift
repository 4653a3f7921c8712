import CometCore
import NIOCore

/// Long polls: answering, parking between polls on a keep-alive connection, and resuming.
extension Subscription {
    /// Whether `request`, the next request on this subscription's connection, continues this parked poll: the
    /// same channels, the same transport and exactly the cursor the last response gave. Then every message after that
    /// cursor is in this subscription's batch or still to come, so the poll needs neither a registration nor a replay.
    func canResume(_ request: SubscribeRequest, transport: SubscriberTransport) -> Bool {
        guard self.isParked, !self.isFinished, let cursor = request.cursor,
              case .poll(let next) = transport, case .poll(let current) = self.transport,
              next.variant == current.variant, type(of: next) == type(of: current)
        else { return false }
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
    func respondToPollBatch() {
        var batch: [(message: Message, channelIndex: Int)] = []
        swap(&batch, &self.pollBatch)
        self.respondToPoll(batch, gapChannels: [])
        if self.pollBatch.isEmpty && self.pollBatch.capacity == 0 && batch.capacity <= 16 {
            batch.removeAll(keepingCapacity: true)
            self.pollBatch = batch
        }
    }

    func respondToPoll(_ messages: [(message: Message, channelIndex: Int)], gapChannels: [ChannelName]) {
        let poll: any PollTransport
        switch self.transport {
        case .poll(let transport): poll = transport
        case .gripResponse(let hold):
            _ = self.answerHold(messages, hold)  // none meant for a response hold: it keeps waiting
            return
        case .stream: return
        }
        guard !self.isFinished else { return }
        if self.keepAlive && self.registered {
            // Stay registered for the connection's next poll (see ``canResume(_:transport:)``).
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
            // loop that gets the same messages in the same transport, rendered once.
            bytes = self.shard.pollResponses.response(for: messages, variant: poll.variant, keepAlive: keepAlive,
                                                      dateCache: self.shard.dateCache) { date in
                Self.renderPollResponse(messages, gapChannels: [], positions: self.machine.positions, channelCount: 1,
                                        poll: poll, headers: poll.headers, keepAlive: keepAlive, date: date)
            }
        } else {
            bytes = Self.renderPollResponse(messages, gapChannels: gapChannels, positions: self.machine.positions,
                                            channelCount: self.channels.count, poll: poll,
                                            headers: self.pollHeaders(poll), keepAlive: keepAlive,
                                            date: self.shard.dateCache.current)
        }
        self.writeFinal(bytes, keepAlive: keepAlive)
    }

    /// A complete poll response: `{"messages":[…],"last_event_id":"CURSOR"}`, plus the gap fields when there was one,
    /// in the transport's framing. On several channels each message carries the cursor just after it.
    private static func renderPollResponse(
        _ messages: [(message: Message, channelIndex: Int)],
        gapChannels: [ChannelName],
        positions: [UInt64],
        channelCount: Int,
        poll: any PollTransport,
        headers: [(String, String)],
        keepAlive: Bool,
        date: String
    ) -> ByteBuffer {
        let singleChannel = channelCount == 1
        var capacity = 64 + 21 * channelCount + poll.framingLength
        for (message, _) in messages {
            capacity += message.wire.json.readableBytes + 1 + (singleChannel ? 0 : 21 * channelCount)
        }
        return HTTPResponse.serialize(
            status: 200, phrase: "OK", headers: headers, contentType: poll.contentType,
            keepAlive: keepAlive, date: date, bodyCapacity: capacity
        ) { body in
            poll.writePrefix(into: &body)
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
                body.writeString(NDJSONTransport.channelsJSON(gapChannels))
            }
            body.writeStaticString("}")
            poll.writeSuffix(into: &body)
        }
    }

    private func pollHeaders(_ poll: any PollTransport) -> [(String, String)] {
        self.extraHeaders.isEmpty ? poll.headers : poll.headers + self.extraHeaders
    }

    /// Writes a poll's whole response (a JSON `body` in the transport's framing), then hands the connection back.
    private func writeFinalPollResponse(status: Int, phrase: String, json: String, poll: any PollTransport,
                                        keepAlive: Bool) {
        var body = ByteBuffer()
        poll.writePrefix(into: &body)
        body.writeString(json)
        poll.writeSuffix(into: &body)
        let response = HTTPResponse(status: status, phrase: phrase, headers: self.pollHeaders(poll),
                                    contentType: poll.contentType, body: body)
        self.writeFinal(response.serialize(keepAlive: keepAlive, date: self.shard.dateCache.current), keepAlive: keepAlive)
    }

    /// Writes a poll's whole response, then hands the connection back (or closes it).
    func writeFinal(_ response: ByteBuffer, keepAlive: Bool) {
        self.outbound.writer.writeAndFlush(response)
        if !keepAlive {
            self.outbound.writer.closeWhenWritten()
        }
        self.owner.subscriptionFinishedResponse(keepAlive: keepAlive)
    }

    /// The poll's hold time passed without a message: answer with an empty batch and the cursor.
    func pollTimedOut() {
        if case .gripResponse(let hold) = self.transport {
            self.answerHoldWithHeld(hold, keepAlive: self.keepAlive)
            return
        }
        self.respondToPoll([], gapChannels: [])
    }

    /// A poll's channel was deleted: `{"closed":true,…}` (`410` for JSON, `200` for JSONP).
    func pollChannelDeleted(_ channel: ChannelName, _ poll: any PollTransport) {
        guard !self.isParked else {
            self.finish()  // no request is waiting; the next poll starts afresh
            return
        }
        self.finish()
        let json = "{\"closed\":true,\"channel\":\"\(channel.rawValue)\",\"last_event_id\":\"\(self.machine.currentCursor)\"}"
        let (status, phrase) = poll.closedStatus
        self.writeFinalPollResponse(status: status, phrase: phrase, json: json, poll: poll, keepAlive: self.keepAlive)
    }

    /// Graceful shutdown: answer the poll at once with its cursor, and close the connection.
    func pollQuiesced() {
        guard case .poll(let poll) = self.transport else { return }
        self.finish()
        let json = "{\"messages\":[],\"last_event_id\":\"\(self.machine.currentCursor)\"}"
        self.writeFinalPollResponse(status: 200, phrase: "OK", json: json, poll: poll, keepAlive: false)
    }
}
