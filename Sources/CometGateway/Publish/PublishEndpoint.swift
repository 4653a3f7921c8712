import CometCore
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The publisher listener's webhook endpoints: `POST /pub/{channel}`, `POST /pub`, `GET` and `DELETE /pub/{channel}`.
struct PublishEndpoint {
    let gateway: GatewayContext
    private static let batchPathWithSlash = PublishRequest.batchPath + "/"

    /// Publishes one message to the channel named `channelText` (also the demo page's form, see ``ClientPages``).
    func publishSingle(channelText: Substring, head: RequestHead, target: RequestTarget, body: ByteBuffer,
                       eventLoop: any EventLoop) throws -> RouteAction {
        let draft = try PublishRequest.single(
            channel: channelText,
            event: head.first(.cometEvent) ?? target.queryValue("event"),
            contentType: head.first(.contentType, common: PublishRequest.commonContentTypes),
            body: body,
            maxChannelNameLength: self.gateway.configuration.limits.maxChannelNameLength
        )
        if let receipt = self.gateway.broker.publishImmediately(draft) {
            self.gateway.stats.messagesPublished.add(1, ordering: .relaxed)
            return .published(receipt)
        }
        return self.publish([draft], batch: false, eventLoop: eventLoop)
    }

    /// A single publish's response, rendered into `shard`'s reusable response buffer (written at once, it costs no
    /// allocation; see ``LoopShard/renderResponse(_:)``).
    static func response(for receipt: PublishReceipt, keepAlive: Bool, shard: LoopShard) -> ByteBuffer {
        shard.renderResponse { buffer in
            Self.writeResponse(for: receipt, keepAlive: keepAlive, heads: shard.publishHeads, into: &buffer)
        }
    }

    func route(head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        let isBatch = target.path == PublishRequest.batchPath || target.path == Self.batchPathWithSlash
        let isEPCP = target.path == EPCPPublish.path || target.path == EPCPPublish.path + "/"
        guard isBatch || isEPCP || Self.hasChannelPrefix(target.path) else {
            return .respond(HTTPResponse(error: .init(.notFound, "not found")))
        }
        if let key = self.gateway.configuration.server.publishKey, !Self.authorized(head, key: key) {
            var response = HTTPResponse(error: GatewayError(.unauthorized, "missing or wrong publish key"))
            response.headers.append(("WWW-Authenticate", "Bearer realm=\"comet-gateway\""))
            return .respond(response)
        }
        if isEPCP {
            return self.publishEPCP(head: head, body: body, eventLoop: eventLoop)
        }
        let limits = self.gateway.configuration.limits
        do {
            if isBatch {
                guard head.method == .post else { return .respond(Routes.methodNotAllowed("POST")) }
                let drafts = try PublishRequest.batch(
                    body: body,
                    maxMessages: limits.maxBatchMessages,
                    maxChannelNameLength: limits.maxChannelNameLength
                )
                return self.publish(drafts, batch: true, eventLoop: eventLoop)
            }
            let channelText = Substring(target.path.utf8.dropFirst(PublishRequest.channelPathPrefix.utf8.count))
            switch head.method {
            case .post, .put:
                return try self.publishSingle(channelText: channelText, head: head, target: target, body: body,
                                              eventLoop: eventLoop)
            case .get:
                let channel = try ChannelName(validating: channelText, maxLength: limits.maxChannelNameLength)
                return .respondLater(self.info(channel, eventLoop: eventLoop))
            case .delete:
                let channel = try ChannelName(validating: channelText, maxLength: limits.maxChannelNameLength)
                return .respondLater(
                    self.gateway.broker.delete(channel, on: eventLoop).map { existed in
                        existed
                            ? HTTPResponse.json(200, "OK", ByteBuffer(string: "{\"channel\":\"\(channel)\",\"deleted\":true}"))
                            : HTTPResponse(error: GatewayError(.notFound, "unknown channel"))
                    }
                )
            default:
                return .respond(Routes.methodNotAllowed("GET, POST, PUT, DELETE"))
            }
        } catch let error as GatewayError {
            return .respond(HTTPResponse(error: error))
        } catch {
            return .respond(HTTPResponse(error: .init(.badRequest, "bad request")))
        }
    }

    private func publish(_ drafts: [MessageDraft], batch: Bool, eventLoop: any EventLoop) -> RouteAction {
        let stats = self.gateway.stats
        if let receipts = self.gateway.broker.publishImmediately(drafts) {
            stats.messagesPublished.add(receipts.count, ordering: .relaxed)
            return .respond(Self.response(for: receipts, batch: batch))
        }
        return .respondLater(self.gateway.broker.publish(drafts, on: eventLoop).map { receipts in
            stats.messagesPublished.add(receipts.count, ordering: .relaxed)
            return Self.response(for: receipts, batch: batch)
        })
    }

    /// `POST /publish/`: Pushpin's publish endpoint (``EPCPPublish``), with Pushpin's answers: `200` `Published` as
    /// text or `{"message": "Published"}` as JSON (by `Accept`; `406` for anything else), `400` with Pushpin's reason
    /// for a bad body, `405` for another method.
    private func publishEPCP(head: RequestHead, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        var json = false
        if let accept = head.first(.accept) {
            let types = accept.split(separator: ",").map { $0.split(separator: ";")[0].trimmingSpaces.lowercased() }
            if types.contains(where: { ["text/plain", "text/*", "*/*", "*"].contains($0) }) {
                json = false
            } else if types.contains(where: { ["application/json", "application/*"].contains($0) }) {
                json = true
            } else {
                return .respond(Self.plain(406, "Not Acceptable",
                                           "Not Acceptable. Supported formats are text/plain and application/json.\n"))
            }
        }
        guard head.method == .post else {
            var response = Self.plain(405, "Method Not Allowed", "Method not allowed: \(head.method).\n")
            response.headers.append(("Allow", "POST"))
            return .respond(response)
        }
        let limits = self.gateway.configuration.limits
        let items: [EPCPPublish.Item]
        do {
            items = try EPCPPublish.parse(body: body, maxItems: limits.maxBatchMessages,
                                          maxChannelNameLength: limits.maxChannelNameLength)
        } catch {
            return .respond(Self.plain(400, "Bad Request", error.message + "\n"))
        }
        let published = json
            ? HTTPResponse(status: 200, phrase: "OK", headers: [], contentType: "application/json",
                           body: ByteBuffer(string: "{\"message\": \"Published\"}\n"))
            : Self.plain(200, "OK", "Published\n")
        let stats = self.gateway.stats
        let broker = self.gateway.broker
        guard !items.isEmpty else { return .respond(published) }
        if !items.contains(where: \.closesStreams) {
            let drafts = items.compactMap(\.draft)
            if let receipts = broker.publishImmediately(drafts) {
                stats.messagesPublished.add(receipts.count, ordering: .relaxed)
                return .respond(published)
            }
            return .respondLater(broker.publish(drafts, on: eventLoop).map { receipts in
                stats.messagesPublished.add(receipts.count, ordering: .relaxed)
                return published
            })
        }
        // Items that close streams: each item in order, a close after its own message.
        var done = eventLoop.makeSucceededVoidFuture()
        for item in items {
            if let draft = item.draft {
                done = done.flatMap { broker.publish([draft], on: eventLoop) }.map { receipts in
                    stats.messagesPublished.add(receipts.count, ordering: .relaxed)
                }
            }
            if item.closesStreams {
                done = done.flatMap { broker.closeStreams(item.channel, on: eventLoop) }
            }
        }
        // Its commands go to the broker one after another: on a connection that takes pipelined requests, the next
        // request's publish would overtake them, so this one is answered alone (after the answers before it).
        let logger = self.gateway.logger
        return .deferred(done.map { RouteAction.respond(published) }.recover { error in
            logger.error("publish failed", metadata: ["error": "\(error)"])
            return .respond(HTTPResponse(error: GatewayError(.serviceUnavailable, "broker unavailable")))
        })
    }

    private static func plain(_ status: Int, _ phrase: String, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, phrase: phrase, headers: [], contentType: "text/plain", body: ByteBuffer(string: text))
    }

    /// Whether `path` starts with `/pub/`, byte for byte.
    private static func hasChannelPrefix(_ path: String) -> Bool {
        let prefix = PublishRequest.channelPathPrefixBytes
        return path.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.count >= prefix.utf8CodeUnitCount
                && memcmp(bytes.baseAddress!, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
        } ?? path.utf8.starts(with: PublishRequest.channelPathPrefix.utf8)
    }

    /// Writes the whole response to a single-message publish into `buffer`, head and body in one pass: `201` when
    /// the message reached a subscriber, else `202`, with its receipt as JSON. The bytes are those of the one-message
    /// ``response(for:batch:)`` serialized, without building an ``HTTPResponse`` and a separate body buffer, and with
    /// the fixed part of the head copied from `heads`.
    static func writeResponse(for receipt: PublishReceipt, keepAlive: Bool, heads: PublishResponseHeads,
                              into buffer: inout ByteBuffer) {
        var channel = receipt.channel.rawValue
        channel.withUTF8 { channelBytes in
            let channelBytes = UnsafeRawBufferPointer(channelBytes)
            let bodyLength = Self.receiptFixedLength + channelBytes.count + Self.decimalDigits(receipt.id)
                + Self.decimalDigits(UInt64(receipt.subscribers))
            heads.withPrefix(delivered: receipt.subscribers > 0) { prefix in
                // The prefix, up to 20 digits of length, the longer Connection line, the body.
                let capacity = prefix.count + 20 + 30 + bodyLength
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
                    var out = RawWriter(memory)
                    out.append(prefix)
                    out.appendDecimal(UInt64(bodyLength))
                    out.append("\r\n")
                    out.append(HTTPResponse.connectionLine(keepAlive: keepAlive))
                    let bodyStart = out.count
                    Self.writeReceipt(receipt, channelBytes: channelBytes, to: &out)
                    assert(out.count - bodyStart == bodyLength, "Content-Length matches the receipt")
                    return out.count
                }
            }
        }
    }

    /// `{"channel":"","id":"","subscribers":}`: the receipt without its three values.
    private static let receiptFixedLength = 37

    private static func decimalDigits(_ value: UInt64) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }

    /// `201` when any message reached a subscriber, else `202`, with the receipts.
    static func response(for receipts: [PublishReceipt], batch: Bool) -> HTTPResponse {
        let delivered = receipts.contains { $0.subscribers > 0 }
        var body = ByteBuffer()
        body.reserveCapacity(batch ? 80 * receipts.count + 16 : 96)
        if batch {
            body.writeStaticString("{\"results\":[")
            for (index, receipt) in receipts.enumerated() {
                if index > 0 { body.writeStaticString(",") }
                Self.writeReceipt(receipt, into: &body)
            }
            body.writeStaticString("]}")
        } else {
            Self.writeReceipt(receipts[0], into: &body)
        }
        return delivered ? .json(201, "Created", body) : .json(202, "Accepted", body)
    }

    private static func writeReceipt(_ receipt: PublishReceipt, into body: inout ByteBuffer) {
        var channel = receipt.channel.rawValue
        channel.withUTF8 { channelBytes in
            let channelBytes = UnsafeRawBufferPointer(channelBytes)
            _ = body.writeWithUnsafeMutableBytes(minimumWritableBytes: 80 + channelBytes.count) { memory in
                var out = RawWriter(memory)
                Self.writeReceipt(receipt, channelBytes: channelBytes, to: &out)
                return out.count
            }
        }
    }

    /// `{"channel":"…","id":"…","subscribers":…}`: at most 80 bytes besides the channel's.
    private static func writeReceipt(_ receipt: PublishReceipt, channelBytes: UnsafeRawBufferPointer,
                                     to out: inout RawWriter) {
        out.append("{\"channel\":\"")
        out.append(channelBytes)  // the channel charset needs no escaping
        out.append("\",\"id\":\"")
        out.appendDecimal(receipt.id)
        out.append("\",\"subscribers\":")
        out.appendDecimal(UInt64(receipt.subscribers))
        out.appendByte(UInt8(ascii: "}"))
    }

    private func info(_ channel: ChannelName, eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        let subscribers = self.gateway.hub.subscriberCount(channel)
        return self.gateway.broker.info(channel, on: eventLoop).map { info in
            guard let info else {
                if subscribers > 0 {
                    return .json(200, "OK", ByteBuffer(string:
                        "{\"channel\":\"\(channel)\",\"subscribers\":\(subscribers),\"messages\":0,\"bytes\":0,\"last_id\":null}"))
                }
                return HTTPResponse(error: GatewayError(.notFound, "unknown channel"))
            }
            let lastID = info.lastID.map { "\"\($0)\"" } ?? "null"
            return .json(200, "OK", ByteBuffer(string:
                "{\"channel\":\"\(channel)\",\"subscribers\":\(subscribers),\"messages\":\(info.retainedMessages),\"bytes\":\(info.retainedBytes),\"last_id\":\(lastID)}"))
        }
    }

    /// Constant-time check of `Authorization: Bearer KEY`.
    static func authorized(_ head: RequestHead, key: String) -> Bool {
        guard let value = head.first(.authorization) else { return false }
        let prefix = "bearer "
        guard value.count > prefix.count, value.prefix(prefix.count).lowercased() == prefix else { return false }
        let given = Array(value.utf8.dropFirst(prefix.count))
        let expected = Array(key.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<expected.count {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}
