import FoundationEssentials
import NIOCore

/// A message to publish, validated but not yet sequenced.
public struct MessageDraft: Sendable {
    /// The target channel.
    public var channel: ChannelName
    /// The event name, if any.
    public var event: String?
    /// The publisher's content type, if any.
    public var contentType: String?
    /// The payload (valid UTF-8).
    public var data: ByteBuffer
    /// What GRIP holds get of it, when it was published through Pushpin's endpoint.
    public var grip: GripContent?

    /// Creates a draft from validated parts.
    public init(channel: ChannelName, event: String? = nil, contentType: String? = nil, data: ByteBuffer,
                grip: GripContent? = nil) {
        self.channel = channel
        self.event = event
        self.contentType = contentType
        self.data = data
        self.grip = grip
    }
}

/// Parsing and validation of publish webhooks.
public enum PublishRequest {
    /// The path of the batch endpoint, and the prefix of the per-channel one.
    public static let batchPath = "/pub"
    /// The prefix of `POST /pub/{channel}`.
    public static let channelPathPrefix = channelPathPrefixBytes.description
    /// ``channelPathPrefix`` as a static string, for comparing bytes without a copy.
    public static let channelPathPrefixBytes: StaticString = "/pub/"
    /// The header that names the event of a single-message publish (the `?event=` query parameter also does).
    public static let eventHeader = "X-Comet-Event"
    /// Event names the gateway uses for its own events; publishers cannot use them.
    public static let reservedEventNames: Set<String> = ["gap", "close", "reconnect"]

    /// Validates an event name: 1 to 64 characters from `A-Z a-z 0-9 _ - . :`, not one of ``reservedEventNames``.
    public static func validateEvent(_ name: String) throws -> String {
        guard !name.isEmpty, name.utf8.count <= 64,
            name.utf8.allSatisfy({ ChannelName.isAllowed($0) && $0 != UInt8(ascii: "@") && $0 != UInt8(ascii: "~") })
        else {
            throw GatewayError.badRequest("event name must be 1-64 characters from A-Z a-z 0-9 _ - . :")
        }
        guard !reservedEventNames.contains(name) else {
            throw GatewayError.badRequest("event name '\(name)' is reserved")
        }
        return name
    }

    /// Content types publishers send most; ``RequestHead/first(_:common:)`` returns these without an allocation.
    public static let commonContentTypes = [
        "application/json", "text/plain", "application/json; charset=utf-8", "text/plain; charset=utf-8",
        "text/html", "text/html; charset=utf-8", "application/x-www-form-urlencoded",
    ]

    /// Validates a content type: printable ASCII, at most 200 characters.
    public static func validateContentType(_ value: String) throws -> String {
        let printable = { (byte: UInt8) in byte >= 0x20 && byte < 0x7F }
        let valid = value.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(printable) } ?? value.utf8.allSatisfy(printable)
        guard value.utf8.count <= 200, valid else {
            throw GatewayError.badRequest("malformed Content-Type")
        }
        return value
    }

    /// Checks that a payload is valid UTF-8.
    /// - Throws: ``GatewayError`` (415) otherwise: payloads are carried as text on every transport.
    public static func validatePayload(_ data: ByteBuffer) throws {
        let valid = data.withUnsafeReadableBytes { UTF8Validation.isValid($0) }
        guard valid else {
            throw GatewayError(.unsupportedMediaType, "body is not valid UTF-8 text")
        }
    }

    /// Builds the draft of `POST /pub/{channel}`.
    public static func single(
        channel: some StringProtocol,
        event: String?,
        contentType: String?,
        body: ByteBuffer,
        maxChannelNameLength: Int
    ) throws -> MessageDraft {
        let name = try ChannelName(validating: channel, maxLength: maxChannelNameLength)
        try validatePayload(body)
        return MessageDraft(
            channel: name,
            event: try event.flatMap { $0.isEmpty ? nil : try validateEvent($0) },
            contentType: try contentType.map(validateContentType),
            data: body
        )
    }

    private struct Batch: Decodable {
        struct Entry: Decodable {
            var channel: String
            var data: String
            var event: String?
            var content_type: String?
        }
        var messages: [Entry]
    }

    /// Parses the JSON body of `POST /pub`: `{"messages": [{"channel", "data", "event"?, "content_type"?}, …]}`.
    ///
    /// The whole batch is validated before anything is published: one bad entry rejects it all.
    /// - Throws: ``GatewayError`` (400) for non-JSON, a wrong shape, an empty or oversized batch, or a bad entry.
    public static func batch(body: ByteBuffer, maxMessages: Int, maxChannelNameLength: Int) throws -> [MessageDraft] {
        let parsed: Batch
        do {
            parsed = try body.withUnsafeReadableBytes { bytes in
                try JSONDecoder().decode(Batch.self, from: Data(bytes))
            }
        } catch {
            throw GatewayError.badRequest(
                "malformed batch: expected {\"messages\": [{\"channel\": string, \"data\": string, \"event\"?: string}]}"
            )
        }
        guard !parsed.messages.isEmpty else { throw GatewayError.badRequest("empty batch") }
        guard parsed.messages.count <= maxMessages else {
            throw GatewayError.badRequest("batch has more than \(maxMessages) messages")
        }
        var drafts: [MessageDraft] = []
        drafts.reserveCapacity(parsed.messages.count)
        for (index, entry) in parsed.messages.enumerated() {
            do {
                drafts.append(
                    MessageDraft(
                        channel: try ChannelName(validating: entry.channel, maxLength: maxChannelNameLength),
                        event: try entry.event.flatMap { $0.isEmpty ? nil : try validateEvent($0) },
                        contentType: try entry.content_type.map(validateContentType),
                        data: ByteBuffer(string: entry.data)
                    )
                )
            } catch let error as GatewayError {
                throw GatewayError(error.code, "messages[\(index)]: \(error.reason)")
            }
        }
        return drafts
    }
}
